//! The write path as an [`Appender`], for producers inside the process (the ruler's recording
//! rules and `ALERTS` series): their series are validated as remote-written ones are, counted in
//! the ingest metrics, and routed by the same [`Distributor`], so a cluster's distributor sees
//! rule output like any other write.

use std::sync::Arc;

use fenghuo_storage_api::StorageError;
use fenghuo_storage_api::api::{AppendOutcome, Appender, RejectReason, Rejection};
use fenghuo_storage_api::model::{BorrowedBatch, TenantId, WriteBatch};

use crate::distributor::Distributor;
use crate::error::IngestError;
use crate::limits::IngestLimits;
use crate::metrics;
use crate::validate;

/// An [`Appender`] over a [`Distributor`] with remote write's label validation.
///
/// Unlike a remote-write request, which fails as a whole on an invalid series, an invalid
/// series here is refused alone and reported in [`AppendOutcome::rejected`] with
/// [`RejectReason::InvalidSeries`]; the rest of the batch is written (as Prometheus's rule
/// group fails only the sample its appender refuses).
pub struct IngestAppender {
    distributor: Arc<dyn Distributor>,
    limits: IngestLimits,
}

impl IngestAppender {
    pub fn new(distributor: Arc<dyn Distributor>, limits: IngestLimits) -> Self {
        Self { distributor, limits }
    }
}

/// The storage seam's error for a distributor failure: storage errors pass through, an
/// overloaded write path stays retryable, anything else is reported as an I/O failure.
fn to_storage_error(e: IngestError) -> StorageError {
    match e {
        IngestError::Storage(e) => e,
        IngestError::Overloaded(_) => StorageError::Overloaded(e.to_string()),
        other => StorageError::Io(other.to_string()),
    }
}

impl Appender for IngestAppender {
    fn append(&self, tenant: &TenantId, batch: WriteBatch) -> Result<AppendOutcome, StorageError> {
        let mut valid = WriteBatch {
            series: Vec::with_capacity(batch.series.len()),
            metadata: batch.metadata,
        };
        let mut invalid = Vec::new();
        for series in batch.series {
            let pairs: Vec<(&str, &str)> = series.labels.pairs().collect();
            match validate::series_labels(&pairs, &self.limits) {
                Ok(()) => valid.series.push(series),
                Err(e) => {
                    let reason = RejectReason::InvalidSeries(e.to_string());
                    let times = series.samples.iter().map(|s| s.t);
                    let times = times.chain(series.histograms.iter().map(|h| h.t));
                    let before = invalid.len();
                    invalid.extend(times.map(|timestamp| Rejection {
                        series: series.labels.clone(),
                        timestamp,
                        reason: reason.clone(),
                    }));
                    metrics::REJECTED_SAMPLES
                        .with_label_values(&[e.reason_label()])
                        .inc_by((invalid.len() - before) as u64);
                    tracing::debug!(%tenant, error = %e, "Refused an invalid series.");
                }
            }
        }
        let mut outcome = if valid.series.is_empty() && valid.metadata.is_empty() {
            AppendOutcome::default()
        } else {
            self.distributor
                .push(tenant, BorrowedBatch::from_write_batch(&mut valid))
                .map_err(to_storage_error)?
        };
        metrics::record_outcome(tenant.as_str(), &outcome);
        outcome.rejected.extend(invalid);
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use fenghuo_storage_api::api::Queryable;
    use fenghuo_storage_api::memory::MemStore;
    use fenghuo_storage_api::model::{Labels, Matcher, Sample, SeriesWrite};

    use super::*;
    use crate::distributor::LocalDistributor;

    fn series(labels: &[(&str, &str)], t: i64) -> SeriesWrite {
        SeriesWrite {
            labels: Labels::from_pairs(labels.iter().copied()),
            samples: vec![Sample { t, v: 1.0 }],
            ..Default::default()
        }
    }

    #[test]
    fn invalid_series_are_refused_alone_and_counted() {
        let store = Arc::new(MemStore::new());
        let appender = IngestAppender::new(
            Arc::new(LocalDistributor::new(store.clone())),
            IngestLimits {
                max_labels_per_series: 2,
                ..Default::default()
            },
        );
        let tenant = TenantId::new("appender-test").unwrap_or_else(|e| panic!("{e}"));
        let written = || {
            metrics::WRITTEN
                .with_label_values(&["appender-test", "sample"])
                .get()
        };
        let refused = || {
            metrics::REJECTED_SAMPLES
                .with_label_values(&["invalid_series"])
                .get()
        };
        let (written_before, refused_before) = (written(), refused());
        let batch = WriteBatch {
            series: vec![
                series(&[("__name__", "ok"), ("a", "1")], 1_000),
                series(&[("__name__", "wide"), ("a", "1"), ("b", "2")], 1_000),
                series(&[("a", "nameless")], 1_000),
            ],
            metadata: Vec::new(),
        };
        let out = appender.append(&tenant, batch).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.samples_written, 1);
        assert_eq!(out.rejected.len(), 2);
        assert_eq!(
            out.rejected[0].reason.to_string(),
            r#"series has 3 labels, more than the limit of 2 for series {__name__="wide", a="1", b="2"}"#
        );
        assert!(
            out.rejected[1]
                .reason
                .to_string()
                .starts_with("missing metric name"),
            "{}",
            out.rejected[1].reason
        );
        assert_eq!(out.rejected[1].reason.metric_label(), "invalid_series");
        assert_eq!(written(), written_before + 1);
        assert!(refused() >= refused_before + 2);
        let q = store.querier(&tenant).unwrap_or_else(|e| panic!("{e}"));
        let all = q
            .series_labels(0, 2_000, &[Matcher::equal("a", "1")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all, vec![Labels::from_pairs([("__name__", "ok"), ("a", "1")])]);
    }

    #[test]
    fn a_batch_of_only_invalid_series_never_reaches_the_distributor() {
        struct Refuse;
        impl Distributor for Refuse {
            fn push(&self, _: &TenantId, _: BorrowedBatch<'_>) -> Result<AppendOutcome, IngestError> {
                Err(IngestError::Overloaded(1))
            }
        }
        let appender = IngestAppender::new(Arc::new(Refuse), IngestLimits::default());
        let tenant = TenantId::default_tenant();
        let out = appender.append(
            &tenant,
            WriteBatch {
                series: vec![series(&[("a", "1")], 5)],
                metadata: Vec::new(),
            },
        );
        assert!(out.is_ok_and(|o| o.rejected.len() == 1 && o.samples_written == 0));
        let err = appender
            .append(
                &tenant,
                WriteBatch {
                    series: vec![series(&[("__name__", "up")], 5)],
                    metadata: Vec::new(),
                },
            )
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}
