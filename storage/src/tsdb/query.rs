//! Reading one shard: series selection through the postings (memory for
//! the head, RocksDB per time partition for everything flushed), then
//! samples from memory and chunks.
//!
//! Selection plan (Prometheus's `PostingsForMatchers` idea): intersect the
//! postings of equality matchers first; expand a regex into the union of
//! the postings of its matching values only when that still narrows a large
//! candidate set (literal alternations like `a|b|c` are looked up
//! directly); then every candidate's labels are checked against all
//! matchers, so the plan only ever needs to produce a superset.
//!
//! Consistency: memory is read before disk. A chunk moving from memory to
//! disk between the two reads is seen twice (and deduplicated), never zero
//! times.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};

use rustc_hash::FxHashSet;

use super::apply::ShardState;
use super::head::{MemData, TenantHead, resolve_labels};
use super::keys;
use super::postings::{intersect_all, union_all};
use super::shard::ShardCore;
use super::symbols::Symbols;
use crate::error::StorageError;
use crate::model::{HistogramSample, Labels, MatchOp, Matcher, Sample, matches_all};

/// Series visited per acquisition of the shard's state lock by queries.
const LOCK_SLICE: usize = 1024;

/// Above this many candidates from equality matchers, regex matchers are
/// expanded through the postings too instead of filtering labels.
const EXPAND_REGEX_ABOVE: usize = 256;

/// A source of postings lists for the planner.
trait PostingsSource {
    fn postings(&mut self, name: &str, value: &str) -> Result<Cow<'_, [u64]>, StorageError>;
    /// Values of `name` accepted by `pred`.
    fn values(&mut self, name: &str, pred: &dyn Fn(&str) -> bool) -> Result<Vec<String>, StorageError>;
    fn all(&mut self) -> Result<Cow<'_, [u64]>, StorageError>;
}

/// The alternatives of a regex that is only literals joined by `|`.
fn literal_alternatives(re: &str) -> Option<Vec<String>> {
    const META: &[char] = &['.', '[', ']', '{', '}', '(', ')', '*', '+', '?', '^', '$', '\\'];
    if re.contains(META) {
        return None;
    }
    Some(re.split('|').map(str::to_string).collect())
}

fn plan(src: &mut dyn PostingsSource, matchers: &[Matcher]) -> Result<Vec<u64>, StorageError> {
    let mut sets: Vec<Vec<u64>> = Vec::new();
    for m in matchers
        .iter()
        .filter(|m| m.op == MatchOp::Equal && !m.value.is_empty())
    {
        sets.push(src.postings(&m.name, &m.value)?.into_owned());
        if sets.last().is_some_and(|s| s.is_empty()) {
            return Ok(Vec::new());
        }
    }
    let narrow = !sets.is_empty() && sets.iter().map(Vec::len).min().unwrap_or(0) <= EXPAND_REGEX_ABOVE;
    if !narrow {
        for m in matchers
            .iter()
            .filter(|m| m.op == MatchOp::Regex && !m.matches_empty())
        {
            let values = match literal_alternatives(&m.value) {
                Some(alts) => alts.into_iter().filter(|v| !v.is_empty()).collect(),
                None => src.values(&m.name, &|v| m.matches(v))?,
            };
            let mut lists = Vec::with_capacity(values.len());
            for v in &values {
                lists.push(src.postings(&m.name, v)?.into_owned());
            }
            sets.push(union_all(lists));
        }
    }
    if sets.is_empty() {
        return Ok(src.all()?.into_owned());
    }
    Ok(intersect_all(sets))
}

struct MemSource<'a> {
    th: &'a TenantHead,
    symbols: &'a Symbols,
}

impl PostingsSource for MemSource<'_> {
    fn postings(&mut self, name: &str, value: &str) -> Result<Cow<'_, [u64]>, StorageError> {
        let (Some(n), Some(v)) = (self.symbols.lookup(name), self.symbols.lookup(value)) else {
            return Ok(Cow::Borrowed(&[]));
        };
        Ok(self
            .th
            .postings
            .get(&n)
            .and_then(|vals| vals.get(&v))
            .map_or(Cow::Borrowed(&[][..]), |l| Cow::Borrowed(l.as_slice())))
    }

    fn values(&mut self, name: &str, pred: &dyn Fn(&str) -> bool) -> Result<Vec<String>, StorageError> {
        let Some(n) = self.symbols.lookup(name) else {
            return Ok(Vec::new());
        };
        Ok(self
            .th
            .postings
            .get(&n)
            .map(|vals| {
                vals.keys()
                    .map(|v| self.symbols.get(*v))
                    .filter(|v| pred(v))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }

    fn all(&mut self) -> Result<Cow<'_, [u64]>, StorageError> {
        Ok(Cow::Borrowed(&self.th.all))
    }
}

struct DiskSource<'a> {
    disk: &'a super::disk::Disk,
    partition: i32,
    tenant: &'a str,
}

impl PostingsSource for DiskSource<'_> {
    fn postings(&mut self, name: &str, value: &str) -> Result<Cow<'_, [u64]>, StorageError> {
        Ok(Cow::Owned(self.disk.postings(
            self.partition,
            self.tenant,
            name,
            value,
        )?))
    }

    fn values(&mut self, name: &str, pred: &dyn Fn(&str) -> bool) -> Result<Vec<String>, StorageError> {
        let mut v = self.disk.label_values(self.partition, self.tenant, name)?;
        v.retain(|x| pred(x));
        Ok(v)
    }

    fn all(&mut self) -> Result<Cow<'_, [u64]>, StorageError> {
        Ok(Cow::Owned(self.disk.postings(
            self.partition,
            self.tenant,
            "",
            "",
        )?))
    }
}

/// A series found by a query.
pub struct Hit {
    pub sid: u64,
    pub labels: Labels,
    pub mem: Option<MemData>,
    /// Whether flushed data may exist for the query range.
    pub check_disk: bool,
}

/// Samples of one series, sorted, unique, within the range.
pub struct SeriesData {
    pub labels: Labels,
    pub floats: Vec<Sample>,
    pub histograms: Vec<HistogramSample>,
}

/// Purpose of a series lookup.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// `select`: every matching in-memory series is handled from memory
    /// plus its own chunks.
    Select,
    /// Label APIs: in-memory series count when their in-memory data
    /// overlaps; flushed data counts through the partition postings.
    Labels,
}

impl ShardCore {
    /// Partitions with data in `[start, end]` that retention still keeps.
    fn partitions(&self, start: i64, end: i64, floor_t: i64) -> Result<Vec<i32>, StorageError> {
        if end < start {
            return Ok(Vec::new());
        }
        let lo = self.cfg.partition_of(start.max(floor_t));
        let hi = self.cfg.partition_of(end);
        if hi < lo {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let from = keys::partition_samples_key(lo);
        let to = keys::partition_samples_key(hi.saturating_add(1));
        self.disk.scan(keys::CF_META, &from, &to, |k, _| {
            if let Some(b) = k.get(keys::META_PARTITION_SAMPLES.len()..) {
                let a: [u8; 4] = b.try_into().map_err(|_| StorageError::Corrupt {
                    what: "partition counter key",
                    detail: format!("{} bytes", k.len()),
                })?;
                out.push(keys::partition_from_bytes(a));
            }
            Ok(true)
        })?;
        Ok(out)
    }

    fn find(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        purpose: Purpose,
    ) -> Result<(Vec<Hit>, Vec<i32>, i64), StorageError> {
        let mut hits = Vec::new();
        let mut handled: FxHashSet<u64> = FxHashSet::default();
        let (floor_t, cands) = {
            let st = self.state.read();
            let cands = match st.tenant_lookup(tenant) {
                Some(ti) => plan(
                    &mut MemSource {
                        th: &st.tenants[ti as usize],
                        symbols: &st.symbols,
                    },
                    matchers,
                )?,
                None => Vec::new(),
            };
            (st.floor_t(), cands)
        };
        // Visit candidates a slice at a time so a huge selection never holds
        // the state lock (and with it ingestion) for long. A series that
        // leaves memory in between has been flushed; the disk pass below
        // finds it because it is not marked handled.
        for slice in cands.chunks(LOCK_SLICE) {
            let st = self.state.read();
            collect_memory(&st, slice, matchers, start, end, purpose, &mut hits, &mut handled);
        }
        let parts = self.partitions(start, end, floor_t)?;
        let mut lists = Vec::with_capacity(parts.len());
        for &p in &parts {
            let mut src = DiskSource {
                disk: &self.disk,
                partition: p,
                tenant,
            };
            lists.push(plan(&mut src, matchers)?);
        }
        let mut disk_sids = union_all(lists);
        disk_sids.retain(|s| !handled.contains(s));
        for chunk in disk_sids.chunks(1024) {
            let records = self.disk.series_records(chunk)?;
            for (sid, rec) in chunk.iter().zip(records) {
                let Some((t, labels)) = rec else { continue };
                if t != tenant || !matches_all(matchers, &labels) {
                    continue;
                }
                hits.push(Hit {
                    sid: *sid,
                    labels,
                    mem: None,
                    check_disk: true,
                });
            }
        }
        Ok((hits, parts, floor_t))
    }

    /// Series matching `matchers` with their samples in `[start, end]`;
    /// `budget` counts down the samples a query may still load.
    pub fn select(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        budget: &mut Option<usize>,
        limit: usize,
    ) -> Result<Vec<SeriesData>, StorageError> {
        let (hits, parts, floor_t) = self.find(tenant, matchers, start, end, Purpose::Select)?;
        let lo = start.max(floor_t);
        let mut out = Vec::with_capacity(hits.len());
        let mut floats = Vec::new();
        let mut hists = Vec::new();
        for hit in hits {
            floats.clear();
            hists.clear();
            if hit.check_disk {
                for &p in &parts {
                    self.disk
                        .read_series(hit.sid, p, p, lo, end, &mut floats, &mut hists)?;
                }
            }
            if let Some(m) = &hit.mem {
                m.decode_into(&mut floats, &mut hists)?;
            }
            let f = normalize(&mut floats, lo, end, |s| s.t);
            let h = normalize(&mut hists, lo, end, |s| s.t);
            if f.is_empty() && h.is_empty() {
                continue;
            }
            if let Some(b) = budget.as_mut() {
                let n = f.len() + h.len();
                if n > *b {
                    return Err(StorageError::TooManySamples { limit });
                }
                *b -= n;
            }
            out.push(SeriesData {
                labels: hit.labels,
                floats: f,
                histograms: h,
            });
        }
        Ok(out)
    }

    /// Label sets of matching series with data in the range (coarse for
    /// flushed data: partition granularity, as Prometheus's block-level).
    pub fn series_labels(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Labels>, StorageError> {
        let (hits, _, _) = self.find(tenant, matchers, start, end, Purpose::Labels)?;
        Ok(hits.into_iter().map(|h| h.labels).collect())
    }

    pub fn label_names(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        out: &mut BTreeSet<String>,
    ) -> Result<(), StorageError> {
        if !matchers.is_empty() {
            for l in self.series_labels(tenant, matchers, start, end)? {
                for x in l.iter() {
                    if !out.contains(&x.name) {
                        out.insert(x.name.clone());
                    }
                }
            }
            return Ok(());
        }
        let (floor_t, all) = {
            let st = self.state.read();
            let all = match st.tenant_lookup(tenant) {
                Some(ti) => st.tenants[ti as usize].all.clone(),
                None => Vec::new(),
            };
            (st.floor_t(), all)
        };
        for slice in all.chunks(LOCK_SLICE) {
            let st = self.state.read();
            let mut names = HashSet::new();
            for sid in slice {
                let Some(s) = st.series.get(sid) else { continue };
                if s.mem_min_t() <= end && s.max_t >= start {
                    names.extend(s.labels.chunks_exact(2).map(|p| p[0]));
                }
            }
            for n in names {
                let name = st.symbols.get(n);
                if !out.contains(name) {
                    out.insert(name.to_string());
                }
            }
        }
        for p in self.partitions(start, end, floor_t)? {
            out.extend(self.disk.label_names(p, tenant)?);
        }
        Ok(())
    }

    pub fn label_values(
        &self,
        tenant: &str,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        out: &mut BTreeSet<String>,
    ) -> Result<(), StorageError> {
        if !matchers.is_empty() {
            for l in self.series_labels(tenant, matchers, start, end)? {
                if let Some(v) = l.get(name)
                    && !out.contains(v)
                {
                    out.insert(v.to_string());
                }
            }
            return Ok(());
        }
        let floor_t = {
            let st = self.state.read();
            if let (Some(ti), Some(n)) = (st.tenant_lookup(tenant), st.symbols.lookup(name)) {
                let th = &st.tenants[ti as usize];
                if let Some(vals) = th.postings.get(&n) {
                    for (v, sids) in vals {
                        let live = sids.iter().any(|sid| {
                            st.series
                                .get(sid)
                                .is_some_and(|s| s.mem_min_t() <= end && s.max_t >= start)
                        });
                        if live {
                            out.insert(st.symbols.get(*v).to_string());
                        }
                    }
                }
            }
            st.floor_t()
        };
        for p in self.partitions(start, end, floor_t)? {
            out.extend(self.disk.label_values(p, tenant, name)?);
        }
        Ok(())
    }

    /// Labels of series ids (memory first, then disk), for exemplars.
    pub fn labels_of(&self, tenant: &str, sids: &[u64]) -> Result<Vec<Option<Labels>>, StorageError> {
        let mut out: Vec<Option<Labels>> = Vec::with_capacity(sids.len());
        let mut missing = Vec::new();
        {
            let st = self.state.read();
            for (i, sid) in sids.iter().enumerate() {
                match st.series.get(sid) {
                    Some(s) => out.push(Some(resolve_labels(&st.symbols, &s.labels))),
                    None => {
                        out.push(None);
                        missing.push(i);
                    }
                }
            }
        }
        if !missing.is_empty() {
            let ids: Vec<u64> = missing.iter().map(|i| sids[*i]).collect();
            for (i, rec) in missing.into_iter().zip(self.disk.series_records(&ids)?) {
                if let Some((t, l)) = rec
                    && t == tenant
                {
                    out[i] = Some(l);
                }
            }
        }
        Ok(out)
    }
}

#[allow(clippy::too_many_arguments)]
fn collect_memory(
    st: &ShardState,
    cands: &[u64],
    matchers: &[Matcher],
    start: i64,
    end: i64,
    purpose: Purpose,
    hits: &mut Vec<Hit>,
    handled: &mut FxHashSet<u64>,
) {
    for sid in cands {
        let Some(s) = st.series.get(sid) else { continue };
        let labels = resolve_labels(&st.symbols, &s.labels);
        if !matches_all(matchers, &labels) {
            continue;
        }
        match purpose {
            Purpose::Select => {
                handled.insert(*sid);
                let mem = MemData::capture(s, start, end);
                let check_disk = s.flushed_max_t >= start;
                let has_mem = mem.head.is_some()
                    || mem.hhead.is_some()
                    || !mem.pending.is_empty()
                    || !mem.ooo_floats.is_empty()
                    || !mem.ooo_histograms.is_empty();
                if has_mem || check_disk {
                    hits.push(Hit {
                        sid: *sid,
                        labels,
                        mem: has_mem.then_some(mem),
                        check_disk,
                    });
                }
            }
            Purpose::Labels => {
                if s.mem_min_t() <= end && s.max_t >= start {
                    handled.insert(*sid);
                    hits.push(Hit {
                        sid: *sid,
                        labels,
                        mem: None,
                        check_disk: false,
                    });
                }
            }
        }
    }
}

/// Sorts by time, drops duplicates (keeping the first of equal
/// timestamps) and everything outside `[lo, hi]`.
fn normalize<T: Clone>(v: &mut Vec<T>, lo: i64, hi: i64, t: impl Fn(&T) -> i64) -> Vec<T> {
    v.retain(|x| {
        let ts = t(x);
        ts >= lo && ts <= hi
    });
    if !v.windows(2).all(|w| t(&w[0]) < t(&w[1])) {
        v.sort_by_key(|x| t(x));
        v.dedup_by(|b, a| t(a) == t(b));
    }
    std::mem::take(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_alternations_are_recognised() {
        assert_eq!(
            literal_alternatives("a|b-c|d_e"),
            Some(vec!["a".into(), "b-c".into(), "d_e".into()])
        );
        assert_eq!(literal_alternatives("a.*"), None);
        assert_eq!(literal_alternatives("x"), Some(vec!["x".into()]));
    }

    #[test]
    fn normalize_sorts_dedups_and_clips() {
        let mut v = vec![5i64, 1, 3, 3, 9, 2];
        assert_eq!(normalize(&mut v, 2, 5, |x| *x), vec![2, 3, 5]);
    }
}
