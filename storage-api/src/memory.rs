//! `MemStore`: an in-memory implementation of the storage seams. It is not
//! durable; it exists so the ingest and query layers can be tested alone,
//! and as the reference the conformance suite compares real stores against.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::api::{
    AppendOutcome, Appender, Querier, Queryable, RejectReason, Rejection, SelectHints, Series, TsdbStatus,
};
use crate::error::StorageError;
use crate::model::{
    Exemplar, FloatHistogram, Labels, Matcher, MetricMetadata, TenantId, WriteBatch, matches_all,
};

#[derive(Default)]
struct MemSeries {
    floats: BTreeMap<i64, f64>,
    histograms: BTreeMap<i64, Arc<FloatHistogram>>,
    exemplars: Vec<Exemplar>,
}

#[derive(Default)]
struct TenantData {
    series: BTreeMap<Labels, MemSeries>,
    metadata: HashMap<String, MetricMetadata>,
}

/// In-memory store. Accepts samples in any order; a sample with the same
/// timestamp but a different value than a stored one is rejected.
#[derive(Default, Clone)]
pub struct MemStore {
    tenants: Arc<RwLock<HashMap<TenantId, TenantData>>>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops every tenant's data.
    pub fn clear(&self) {
        self.tenants.write().clear();
    }
}

fn same_value(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

impl Appender for MemStore {
    fn append(&self, tenant: &TenantId, batch: WriteBatch) -> Result<AppendOutcome, StorageError> {
        let mut tenants = self.tenants.write();
        let data = tenants.entry(tenant.clone()).or_default();
        let mut out = AppendOutcome::default();
        for m in batch.metadata {
            data.metadata.insert(m.metric_family.clone(), m);
        }
        for sw in batch.series {
            let series = data.series.entry(sw.labels.clone()).or_default();
            let newest = series
                .floats
                .keys()
                .next_back()
                .into_iter()
                .chain(series.histograms.keys().next_back())
                .copied()
                .max()
                .unwrap_or(i64::MIN);
            if let Some(t) = sw.created_zero_at(newest, i64::MIN) {
                match sw.histograms.first().filter(|_| sw.samples.is_empty()) {
                    Some(first) => {
                        series.histograms.insert(t, Arc::new(first.h.zero_like()));
                    }
                    None => {
                        series.floats.insert(t, 0.0);
                    }
                }
            }
            for s in sw.samples {
                match series.floats.get(&s.t) {
                    Some(v) if !same_value(*v, s.v) => out.rejected.push(Rejection {
                        series: sw.labels.clone(),
                        timestamp: s.t,
                        reason: RejectReason::DuplicateTimestamp,
                    }),
                    _ => {
                        series.histograms.remove(&s.t);
                        series.floats.insert(s.t, s.v);
                        out.samples_written += 1;
                    }
                }
            }
            for h in sw.histograms {
                match series.histograms.get(&h.t) {
                    Some(old) if **old != *h.h => out.rejected.push(Rejection {
                        series: sw.labels.clone(),
                        timestamp: h.t,
                        reason: RejectReason::DuplicateTimestamp,
                    }),
                    _ => {
                        series.floats.remove(&h.t);
                        series.histograms.insert(h.t, h.h);
                        out.histograms_written += 1;
                    }
                }
            }
            out.exemplars_written += sw.exemplars.len() as u64;
            series.exemplars.extend(sw.exemplars);
        }
        Ok(out)
    }
}

impl Queryable for MemStore {
    fn querier(&self, tenant: &TenantId) -> Result<Arc<dyn Querier>, StorageError> {
        Ok(Arc::new(MemQuerier {
            store: self.clone(),
            tenant: tenant.clone(),
        }))
    }
}

struct MemQuerier {
    store: MemStore,
    tenant: TenantId,
}

impl MemQuerier {
    /// Calls `f` for each series of the tenant matching `matchers` that has
    /// a sample in `[start, end]`.
    fn each_series(
        &self,
        start: i64,
        end: i64,
        matchers: &[Matcher],
        mut f: impl FnMut(&Labels, &MemSeries),
    ) {
        let tenants = self.store.tenants.read();
        let Some(data) = tenants.get(&self.tenant) else {
            return;
        };
        for (labels, s) in &data.series {
            let has_data = s.floats.range(start..=end).next().is_some()
                || s.histograms.range(start..=end).next().is_some();
            if has_data && matches_all(matchers, labels) {
                f(labels, s);
            }
        }
    }
}

impl Querier for MemQuerier {
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<Vec<Series>, StorageError> {
        let mut out = Vec::new();
        let mut total = 0usize;
        let mut over_limit = false;
        self.each_series(hints.start, hints.end, matchers, |labels, s| {
            let floats: Vec<_> = s
                .floats
                .range(hints.start..=hints.end)
                .map(|(t, v)| crate::model::Sample { t: *t, v: *v })
                .collect();
            let histograms: Vec<_> = s
                .histograms
                .range(hints.start..=hints.end)
                .map(|(t, h)| crate::model::HistogramSample { t: *t, h: h.clone() })
                .collect();
            total += floats.len() + histograms.len();
            if hints.max_samples.is_some_and(|limit| total > limit) {
                over_limit = true;
            }
            out.push(Series {
                labels: labels.clone(),
                floats,
                histograms,
            });
        });
        if over_limit {
            return Err(StorageError::TooManySamples {
                limit: hints.max_samples.unwrap_or_default(),
            });
        }
        Ok(out)
    }

    fn label_names(&self, start: i64, end: i64, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut names = BTreeSet::new();
        self.each_series(start, end, matchers, |labels, _| {
            names.extend(labels.iter().map(|l| l.name.clone()));
        });
        Ok(names.into_iter().collect())
    }

    fn label_values(
        &self,
        name: &str,
        start: i64,
        end: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        let mut values = BTreeSet::new();
        self.each_series(start, end, matchers, |labels, _| {
            if let Some(v) = labels.get(name) {
                values.insert(v.to_string());
            }
        });
        Ok(values.into_iter().collect())
    }

    fn series_labels(&self, start: i64, end: i64, matchers: &[Matcher]) -> Result<Vec<Labels>, StorageError> {
        let mut out = Vec::new();
        self.each_series(start, end, matchers, |labels, _| out.push(labels.clone()));
        Ok(out)
    }

    fn metadata(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>, StorageError> {
        let tenants = self.store.tenants.read();
        let Some(data) = tenants.get(&self.tenant) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<_> = data
            .metadata
            .values()
            .filter(|m| metric.is_none_or(|name| m.metric_family == name))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.metric_family.cmp(&b.metric_family));
        Ok(out)
    }

    fn exemplars(
        &self,
        start: i64,
        end: i64,
        matcher_sets: &[Vec<Matcher>],
    ) -> Result<Vec<(Labels, Vec<Exemplar>)>, StorageError> {
        let tenants = self.store.tenants.read();
        let Some(data) = tenants.get(&self.tenant) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (labels, s) in &data.series {
            if !matcher_sets.iter().any(|ms| matches_all(ms, labels)) {
                continue;
            }
            let ex: Vec<_> = s
                .exemplars
                .iter()
                .filter(|e| e.t >= start && e.t <= end)
                .cloned()
                .collect();
            if !ex.is_empty() {
                out.push((labels.clone(), ex));
            }
        }
        Ok(out)
    }

    fn tsdb_status(&self, limit: usize) -> Result<TsdbStatus, StorageError> {
        let tenants = self.store.tenants.read();
        let Some(data) = tenants.get(&self.tenant) else {
            return Ok(TsdbStatus::default());
        };
        let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
        for labels in data.series.keys() {
            *by_name
                .entry(labels.metric_name().unwrap_or_default().to_string())
                .or_default() += 1;
        }
        let mut series_count_by_metric_name: Vec<_> = by_name.into_iter().collect();
        series_count_by_metric_name.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        series_count_by_metric_name.truncate(limit);
        Ok(TsdbStatus {
            num_series: data.series.len() as u64,
            series_count_by_metric_name,
            ..TsdbStatus::default()
        })
    }
}
