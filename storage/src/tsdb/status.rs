//! Per-shard read-outs that are not sample queries: metric metadata,
//! exemplars, `/api/v1/status/tsdb` cardinality statistics (computed from
//! the head's postings, as Prometheus computes them from its head index)
//! and the numbers the capacity planner uses.

use std::collections::BTreeMap;

use super::shard::ShardCore;
use crate::error::StorageError;
use crate::model::{Exemplar, Labels, METRIC_NAME, Matcher, MetricMetadata, matches_all};

/// Raw, mergeable cardinality statistics of one shard for one tenant.
#[derive(Default)]
pub struct StatusParts {
    pub num_series: u64,
    pub num_label_pairs: u64,
    pub chunk_count: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub by_metric: BTreeMap<String, u64>,
    pub values_by_name: BTreeMap<String, u64>,
    pub bytes_by_name: BTreeMap<String, u64>,
    pub series_by_pair: BTreeMap<String, u64>,
}

/// Head-wide numbers for operators and the capacity planner.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ShardStats {
    pub active_series: u64,
    pub head_series: u64,
    pub head_chunks: u64,
    pub head_memory_bytes: u64,
    pub symbols: u64,
    pub applied_index: u64,
}

impl ShardCore {
    pub fn metadata(&self, tenant: &str, metric: Option<&str>, out: &mut Vec<MetricMetadata>) {
        let st = self.state.read();
        let Some(ti) = st.tenant_lookup(tenant) else {
            return;
        };
        let th = &st.tenants[ti as usize];
        match metric {
            Some(m) => out.extend(th.metadata.get(m).cloned()),
            None => out.extend(th.metadata.values().cloned()),
        }
    }

    pub fn exemplars(
        &self,
        tenant: &str,
        start: i64,
        end: i64,
        matcher_sets: &[Vec<Matcher>],
        out: &mut Vec<(Labels, Vec<Exemplar>)>,
    ) -> Result<(), StorageError> {
        let mut by_sid: BTreeMap<u64, Vec<Exemplar>> = BTreeMap::new();
        {
            let st = self.state.read();
            let Some(ti) = st.tenant_lookup(tenant) else {
                return Ok(());
            };
            for e in st.tenants[ti as usize].exemplars.iter() {
                if e.exemplar.t >= start && e.exemplar.t <= end {
                    by_sid.entry(e.sid).or_default().push(e.exemplar.clone());
                }
            }
        }
        let sids: Vec<u64> = by_sid.keys().copied().collect();
        let labels = self.labels_of(tenant, &sids)?;
        for ((_, mut ex), labels) in by_sid.into_iter().zip(labels) {
            let Some(labels) = labels else { continue };
            if matcher_sets.iter().any(|ms| matches_all(ms, &labels)) {
                ex.sort_by_key(|e| e.t);
                out.push((labels, ex));
            }
        }
        Ok(())
    }

    pub fn status_parts(&self, tenant: &str) -> StatusParts {
        let st = self.state.read();
        let mut p = StatusParts {
            min_time: i64::MAX,
            max_time: i64::MIN,
            ..Default::default()
        };
        let Some(ti) = st.tenant_lookup(tenant) else {
            return p;
        };
        let th = &st.tenants[ti as usize];
        p.num_series = th.active;
        for sid in &th.all {
            if let Some(s) = st.series.get(sid).filter(|s| !s.is_closing()) {
                p.chunk_count += s.chunk_count() as u64;
                let lo = s.mem_min_t();
                if lo != i64::MAX {
                    p.min_time = p.min_time.min(lo);
                    p.max_time = p.max_time.max(s.max_t);
                }
            }
        }
        for (n, values) in &th.postings {
            let name = st.symbols.get(*n);
            let mut bytes = 0u64;
            for (v, sids) in values {
                let value = st.symbols.get(*v);
                let count = sids.len() as u64;
                if name == METRIC_NAME {
                    *p.by_metric.entry(value.to_string()).or_default() += count;
                }
                *p.series_by_pair.entry(format!("{name}={value}")).or_default() += count;
                bytes += value.len() as u64 * count;
                p.num_label_pairs += 1;
            }
            *p.values_by_name.entry(name.to_string()).or_default() += values.len() as u64;
            *p.bytes_by_name.entry(name.to_string()).or_default() += bytes;
        }
        p
    }

    pub fn stats(&self) -> ShardStats {
        let st = self.state.read();
        let mut s = ShardStats {
            head_series: st.series.len() as u64,
            symbols: st.symbols.len() as u64,
            applied_index: st.applied_index,
            ..Default::default()
        };
        s.active_series = st.tenants.iter().map(|t| t.active).sum();
        let mut mem = st.symbols.heap_bytes() as u64;
        for x in st.series.values() {
            s.head_chunks += x.chunk_count() as u64;
            // Hash map slot, postings entries and the labels hash entry.
            mem += x.memory_bytes() as u64 + 16 + (x.labels.len() as u64 / 2) * 8 + 24;
        }
        s.head_memory_bytes = mem;
        s
    }
}

/// Sorts `(name, count)` pairs by count descending (name ascending on ties)
/// and keeps the top `limit`.
pub fn top(map: BTreeMap<String, u64>, limit: usize) -> Vec<(String, u64)> {
    let mut v: Vec<_> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}
