//! The distributor: where a tenant's validated batch goes. It splits the
//! batch by shard (the frozen hash of tenant + labels,
//! `storage-api::placement`) and hands each shard its part: on a single node
//! to the local store's shards ([`ShardedDistributor`]); in a cluster to each
//! shard's leader. [`LocalDistributor`] hands whole batches to an unsharded
//! appender (the in-memory store of tests). The HTTP layer only sees the
//! trait.

use std::sync::Arc;

use fenghuo_storage_api::api::{AppendOutcome, Appender, ShardedAppender};
use fenghuo_storage_api::model::{BorrowedBatch, TenantId};

use crate::error::IngestError;

/// Accepts validated batches.
///
/// Contract: `push` returns `Ok` only when every item counted as written in
/// the outcome is durable; items it refuses are listed in the outcome; an
/// `Err` means the caller must answer with a retryable or client error as
/// [`IngestError::http_status`] says. `push` blocks (it may wait for an
/// fsync); call it from a blocking thread. The batch's label strings
/// borrow from the request; owned copies are storage's business (it makes
/// them only for series it does not hold).
pub trait Distributor: Send + Sync {
    fn push(&self, tenant: &TenantId, batch: BorrowedBatch<'_>) -> Result<AppendOutcome, IngestError>;
}

/// Single-node distributor: everything goes to one local appender.
pub struct LocalDistributor {
    appender: Arc<dyn Appender>,
}

impl LocalDistributor {
    pub fn new(appender: Arc<dyn Appender>) -> Self {
        Self { appender }
    }
}

impl Distributor for LocalDistributor {
    fn push(&self, tenant: &TenantId, batch: BorrowedBatch<'_>) -> Result<AppendOutcome, IngestError> {
        Ok(self.appender.append_borrowed(tenant, batch)?)
    }
}

/// Routes each shard's part of a batch to a sharded store: the distributor,
/// not the store, decides where series go, as it will in a cluster.
pub struct ShardedDistributor {
    store: Arc<dyn ShardedAppender>,
}

impl ShardedDistributor {
    pub fn new(store: Arc<dyn ShardedAppender>) -> Self {
        Self { store }
    }
}

impl Distributor for ShardedDistributor {
    fn push(&self, tenant: &TenantId, batch: BorrowedBatch<'_>) -> Result<AppendOutcome, IngestError> {
        let BorrowedBatch {
            pairs,
            series,
            metadata,
        } = batch;
        let parts = fenghuo_storage_api::placement::split(
            tenant.as_str(),
            &pairs,
            series,
            metadata,
            self.store.shard_count(),
        );
        let mut out = AppendOutcome::default();
        for part in parts {
            out.merge(self.store.append_shard(tenant, &pairs, part)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fenghuo_storage_api::StorageError;
    use fenghuo_storage_api::model::borrowed::labels_in;
    use fenghuo_storage_api::model::{BorrowedSeries, Sample, WriteBatch};
    use fenghuo_storage_api::placement::{ShardPart, shard_of};
    use std::sync::Mutex;

    fn id_of(l: fenghuo_storage_api::model::LabelsRef<'_>) -> String {
        l.pairs()
            .find(|(k, _)| *k == "id")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    }

    /// Records which shard got which series (by their `id` label).
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(u32, String)>>);

    impl Appender for Recorder {
        fn append(&self, _: &TenantId, _: WriteBatch) -> Result<AppendOutcome, StorageError> {
            Err(StorageError::InvalidConfig("unsharded append".into()))
        }
    }

    impl ShardedAppender for Recorder {
        fn shard_count(&self) -> u32 {
            8
        }
        fn append_shard(
            &self,
            _: &TenantId,
            pairs: &[(&str, &str)],
            part: ShardPart,
        ) -> Result<AppendOutcome, StorageError> {
            let mut got = self.0.lock().unwrap();
            for s in &part.series {
                got.push((part.shard, id_of(labels_in(pairs, s))));
            }
            Ok(AppendOutcome {
                samples_written: part.series.iter().map(|s| s.samples.len() as u64).sum(),
                ..AppendOutcome::default()
            })
        }
    }

    #[test]
    fn each_series_goes_to_the_shard_placement_names() {
        let ids: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        let mut pairs = Vec::new();
        let mut series = Vec::new();
        for id in &ids {
            let start = pairs.len() as u32;
            pairs.push(("__name__", "up"));
            pairs.push(("id", id.as_str()));
            series.push(BorrowedSeries {
                labels: start..start + 2,
                samples: vec![Sample { t: 1, v: 1.0 }],
                histograms: Vec::new(),
                exemplars: Vec::new(),
                created_timestamp: 0,
            });
        }
        let want: Vec<(u32, String)> = series
            .iter()
            .map(|s| {
                let l = labels_in(&pairs, s);
                (shard_of("t", l.stable_hash(), 8), id_of(l))
            })
            .collect();
        let rec = Arc::new(Recorder::default());
        let d = ShardedDistributor::new(rec.clone());
        let tenant = TenantId::new("t").unwrap();
        let batch = BorrowedBatch {
            pairs,
            series,
            metadata: Vec::new(),
        };
        let out = d.push(&tenant, batch).unwrap();
        assert_eq!(out.samples_written, 100);
        let mut got = rec.0.lock().unwrap().clone();
        got.sort();
        let mut want = want;
        want.sort();
        assert_eq!(got, want);
        assert!(
            got.iter()
                .map(|(s, _)| *s)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                > 4
        );
    }
}
