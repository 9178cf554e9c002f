//! Applying log entries to a shard's state: the deterministic state
//! machine. Given the same state and the same entry, `apply` makes the same
//! decisions on every replica: it reads no clock (time comes from the
//! entry) and its only reads of RocksDB see data that is itself a function
//! of the log (series records, chunks for duplicate checks).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::disk::{Disk, ValueAt};
use super::exemplars::ExemplarVerdict;
use super::head::{
    F_CLOSING, F_DIRTY, F_HEAD_CUT, F_HHEAD_CUT, F_NEW, LabelsHasher, MemSeries, OooBuffer, Pending,
    SeriesTable, TenantHead, insert_sorted, intern_labels, resolve_labels,
};
use super::keys;
use super::symbols::Symbols;
use crate::api::{AppendOutcome, RejectReason, Rejection};
use crate::chunk::histogram::HistogramAppender;
use crate::chunk::xor::XorAppender;
use crate::chunk::{self, ChunkKind};
use crate::error::StorageError;
use crate::metrics;
use crate::model::{FloatHistogram, Labels, LabelsRef, SeriesWrite, TenantId, WriteBatch};
use crate::replicate::LogEntry;

/// Largest open histogram chunk before it is cut regardless of count.
const MAX_HISTOGRAM_CHUNK_BYTES: usize = 16 << 10;

/// Constants derived from the options, shared by apply and readers.
#[derive(Clone, Debug)]
pub struct Config {
    pub chunk_max_samples: usize,
    pub window_ms: i64,
    pub partition_ms: i64,
    pub ooo_ms: i64,
    pub retention_ms: i64,
    pub idle_ms: i64,
    pub max_series: u64,
    pub max_exemplars: usize,
}

impl Config {
    pub fn partition_of(&self, t: i64) -> i32 {
        let p = t.div_euclid(self.partition_ms);
        p.clamp(i64::from(i32::MIN) + 1, i64::from(i32::MAX) - 1) as i32
    }

    pub fn partition_start(&self, p: i32) -> i64 {
        i64::from(p).saturating_mul(self.partition_ms)
    }

    pub fn window_of(&self, t: i64) -> i64 {
        t.div_euclid(self.window_ms)
    }
}

/// The mutable state of one shard.
pub struct ShardState {
    pub cfg: Arc<Config>,
    pub symbols: Symbols,
    pub tenants: Vec<TenantHead>,
    pub tenant_idx: FxHashMap<String, u32>,
    pub series: SeriesTable,
    pub next_sid: u64,
    pub applied_index: u64,
    /// The replicator's opaque position at `applied_index`, persisted with
    /// it (empty for the local log).
    pub position: Vec<u8>,
    pub next_pending_id: u64,
    /// (series, partition) pairs whose postings must be written.
    pub postings_todo: Vec<(u64, i32)>,
    /// Partitions below this are dropped by retention (logically now,
    /// physically at the next checkpoint).
    pub retention_floor: i32,
    /// Partitions below this are physically deleted.
    pub retention_done: i32,
    /// Head chunk count last reported to the metric (delta bookkeeping).
    pub reported_head_chunks: i64,
    /// Newest sample time applied (seals compaction windows).
    pub max_seen_t: i64,
    /// Set after a failed checkpoint: the next one rewrites everything.
    pub full_checkpoint: bool,
    /// Identity hashing of label sets in the head.
    pub hasher: LabelsHasher,
    /// Checkpoint counter modulo the rebase period: which series' open
    /// chunks the next checkpoint writes whole (bounds head segments per
    /// chunk).
    pub checkpoints_since_rebase: u32,
}

/// What applying an entry did.
#[derive(Debug, Default)]
pub struct Applied {
    pub outcome: AppendOutcome,
    /// Series written by reference whose series was no longer active when
    /// the entry was applied, with their position in the entry's batch; the
    /// proposer must write them again with labels. Nothing of them was
    /// applied.
    pub stale: Vec<(usize, SeriesWrite)>,
}

enum Verdict {
    Stored,
    Duplicate,
    Reject(RejectReason),
}

impl ShardState {
    pub fn new(cfg: Arc<Config>) -> Self {
        Self {
            cfg,
            symbols: Symbols::new(),
            tenants: Vec::new(),
            tenant_idx: FxHashMap::default(),
            series: SeriesTable::default(),
            next_sid: 1,
            applied_index: 0,
            position: Vec::new(),
            next_pending_id: 1,
            postings_todo: Vec::new(),
            retention_floor: i32::MIN,
            retention_done: i32::MIN,
            reported_head_chunks: 0,
            max_seen_t: i64::MIN,
            full_checkpoint: false,
            checkpoints_since_rebase: 0,
            hasher: LabelsHasher::default(),
        }
    }

    pub fn tenant(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.tenant_idx.get(id) {
            return i;
        }
        let i = self.tenants.len() as u32;
        let tid = TenantId::new(id).unwrap_or_else(|_| TenantId::default_tenant());
        self.tenants.push(TenantHead::new(tid, self.cfg.max_exemplars));
        self.tenant_idx.insert(id.to_string(), i);
        i
    }

    pub fn tenant_lookup(&self, id: &str) -> Option<u32> {
        self.tenant_idx.get(id).copied()
    }

    /// Start of the oldest partition still retained.
    pub fn floor_t(&self) -> i64 {
        if self.retention_floor == i32::MIN {
            i64::MIN
        } else {
            self.cfg.partition_start(self.retention_floor)
        }
    }

    /// Applies the entry at `index` (which must follow the applied index);
    /// `None` is an entry without a write (a Raft leader's blank entry, a
    /// membership change), which only advances the index. `position`, when
    /// given, replaces the replicator's position (see [`ShardState::position`]).
    pub fn apply(
        &mut self,
        disk: &Disk,
        index: u64,
        entry: Option<LogEntry>,
        position: Option<&[u8]>,
    ) -> Result<Applied, StorageError> {
        let out = match entry {
            None => Applied::default(),
            Some(LogEntry::Write {
                tenant,
                now_ms,
                batch,
                refs,
            }) => self.apply_write(disk, &tenant, now_ms, batch, &refs)?,
            Some(LogEntry::Tick { now_ms }) => {
                self.apply_tick(now_ms);
                Applied::default()
            }
        };
        self.applied_index = index;
        if let Some(p) = position
            && p != self.position.as_slice()
        {
            self.position = p.to_vec();
        }
        Ok(out)
    }

    /// Series ids to reference instead of labels when proposing `batch`:
    /// those of series active in the head now.
    pub fn resolve_refs<'a>(
        &self,
        tenant: &str,
        label_sets: impl Iterator<Item = LabelsRef<'a>>,
    ) -> Vec<Option<u64>> {
        let Some(ti) = self.tenant_lookup(tenant) else {
            return Vec::new();
        };
        let mut hasher = self.hasher.fork();
        label_sets
            .map(|labels| {
                let slot = self.find_in_memory(ti, hasher.hash(labels.pairs()))?;
                self.series
                    .slot(slot)
                    .filter(|s| s.flags & F_CLOSING == 0)
                    .map(|s| s.sid)
            })
            .collect()
    }

    /// The slot of a referenced series if it is still active (in the head
    /// and not evicted): a deterministic function of the applied log.
    fn active_slot(&self, ti: u32, sid: u64) -> Option<u32> {
        let slot = self.series.slot_of(&sid)?;
        let s = self.series.slot(slot)?;
        (s.flags & F_CLOSING == 0 && s.tenant == ti).then_some(slot)
    }

    fn apply_tick(&mut self, now_ms: i64) {
        let idle_before = now_ms.saturating_sub(self.cfg.idle_ms);
        let mut evicted = 0u64;
        for s in self.series.values_mut() {
            if s.flags & F_CLOSING == 0 && s.last_write < idle_before {
                s.flags |= F_CLOSING | F_DIRTY;
                if let Some(t) = self.tenants.get_mut(s.tenant as usize) {
                    t.active = t.active.saturating_sub(1);
                }
                evicted += 1;
            }
        }
        if evicted > 0 {
            metrics::SERIES_EVICTED.inc_by(evicted);
            metrics::ACTIVE_SERIES.sub(evicted as i64);
        }
        if self.cfg.retention_ms > 0 {
            let floor = self
                .cfg
                .partition_of(now_ms.saturating_sub(self.cfg.retention_ms));
            if floor > self.retention_floor {
                self.retention_floor = floor;
            }
        }
    }

    fn apply_write(
        &mut self,
        disk: &Disk,
        tenant: &TenantId,
        now_ms: i64,
        batch: WriteBatch,
        refs: &[Option<u64>],
    ) -> Result<Applied, StorageError> {
        let ti = self.tenant(tenant.as_str());
        let mut out = AppendOutcome::default();
        let mut stale = Vec::new();
        let min_valid = if self.cfg.retention_ms > 0 {
            now_ms.saturating_sub(self.cfg.retention_ms).max(self.floor_t())
        } else {
            self.floor_t()
        };
        {
            let th = &mut self.tenants[ti as usize];
            for m in batch.metadata {
                if th.metadata.get(&m.metric_family) != Some(&m) {
                    th.metadata_dirty.insert(m.metric_family.clone());
                    th.metadata.insert(m.metric_family.clone(), m);
                }
            }
        }
        let cfg = self.cfg.clone();
        for (i, mut sw) in batch.series.into_iter().enumerate() {
            if sw.samples.is_empty() && sw.histograms.is_empty() && sw.exemplars.is_empty() {
                continue;
            }
            let found = match refs.get(i).copied().flatten() {
                Some(sid) => match self.active_slot(ti, sid) {
                    Some(slot) => Some(slot),
                    None => {
                        stale.push((i, sw));
                        continue;
                    }
                },
                None => self.lookup_or_create(disk, ti, &sw.labels, now_ms)?,
            };
            let slot = match found {
                Some(slot) => slot,
                None => {
                    let reason = RejectReason::SeriesLimit {
                        limit: self.cfg.max_series,
                    };
                    for t in sw
                        .samples
                        .iter()
                        .map(|s| s.t)
                        .chain(sw.histograms.iter().map(|h| h.t))
                    {
                        metrics::rejected(&reason);
                        out.rejected.push(Rejection {
                            series: sw.labels.clone(),
                            timestamp: t,
                            reason: reason.clone(),
                        });
                    }
                    continue;
                }
            };
            sw.samples.sort_by_key(|s| s.t);
            sw.histograms.sort_by_key(|h| h.t);
            let Some(series) = self.series.slot_mut(slot) else {
                return Err(StorageError::Corrupt {
                    what: "head",
                    detail: format!("series slot {slot} vanished during apply"),
                });
            };
            let sid = series.sid;
            series.last_write = series.last_write.max(now_ms);
            let reject = |out: &mut AppendOutcome, t: i64, reason: RejectReason| {
                metrics::rejected(&reason);
                out.rejected.push(Rejection {
                    series: sw.labels.clone(),
                    timestamp: t,
                    reason,
                });
            };
            let first_rejection = out.rejected.len();
            let mut stored_any = false;
            if sw.created_timestamp > 0
                && let Some(t) = sw.created_zero_at(series.max_t, min_valid)
            {
                // Not counted as written, and never a rejection: Prometheus drops a created
                // timestamp that is out of order (ErrOutOfOrderCT) without failing the write.
                let verdict = match sw.histograms.first().filter(|_| sw.samples.is_empty()) {
                    Some(first) => {
                        let zero = Arc::new(first.h.zero_like());
                        add_histogram(&cfg, series, disk, t, &zero, &mut self.next_pending_id)?
                    }
                    None => add_float(&cfg, series, disk, t, 0.0, &mut self.next_pending_id)?,
                };
                if matches!(verdict, Verdict::Stored) {
                    stored_any = true;
                    note_partition(&cfg, series, t, &mut self.postings_todo);
                    self.max_seen_t = self.max_seen_t.max(t);
                }
            }
            for s in &sw.samples {
                if s.t < min_valid {
                    reject(&mut out, s.t, RejectReason::OutOfBounds);
                    continue;
                }
                match add_float(&cfg, series, disk, s.t, s.v, &mut self.next_pending_id)? {
                    Verdict::Stored => {
                        out.samples_written += 1;
                        stored_any = true;
                        note_partition(&cfg, series, s.t, &mut self.postings_todo);
                        self.max_seen_t = self.max_seen_t.max(s.t);
                    }
                    Verdict::Duplicate => out.samples_written += 1,
                    Verdict::Reject(r) => reject(&mut out, s.t, r),
                }
            }
            for h in &sw.histograms {
                if h.t < min_valid {
                    reject(&mut out, h.t, RejectReason::OutOfBounds);
                    continue;
                }
                match add_histogram(&cfg, series, disk, h.t, &h.h, &mut self.next_pending_id)? {
                    Verdict::Stored => {
                        out.histograms_written += 1;
                        stored_any = true;
                        note_partition(&cfg, series, h.t, &mut self.postings_todo);
                        self.max_seen_t = self.max_seen_t.max(h.t);
                    }
                    Verdict::Duplicate => out.histograms_written += 1,
                    Verdict::Reject(r) => reject(&mut out, h.t, r),
                }
            }
            if stored_any {
                series.flags |= F_DIRTY;
            }
            // A series written by reference carries no labels; rejections
            // name it by the head's copy (rare, so resolved only then).
            if sw.labels.is_empty() && out.rejected.len() > first_rejection {
                let labels = resolve_labels(&self.symbols, &series.labels);
                for r in &mut out.rejected[first_rejection..] {
                    r.series = labels.clone();
                }
            }
            let th = &mut self.tenants[ti as usize];
            for e in sw.exemplars {
                if e.t < min_valid {
                    continue;
                }
                match th.exemplars.add(sid, e) {
                    ExemplarVerdict::Added | ExemplarVerdict::Duplicate => out.exemplars_written += 1,
                    ExemplarVerdict::OutOfOrder | ExemplarVerdict::Disabled => {}
                }
            }
        }
        metrics::SAMPLES_APPENDED
            .with_label_values(&["float"])
            .inc_by(out.samples_written);
        metrics::SAMPLES_APPENDED
            .with_label_values(&["histogram"])
            .inc_by(out.histograms_written);
        metrics::EXEMPLARS_APPENDED.inc_by(out.exemplars_written);
        Ok(Applied { outcome: out, stale })
    }

    /// Finds the series for `labels` in memory or on disk, re-activating or
    /// creating it; returns its slot. `None` when the tenant's series limit
    /// forbids that.
    fn lookup_or_create(
        &mut self,
        disk: &Disk,
        ti: u32,
        labels: &Labels,
        now_ms: i64,
    ) -> Result<Option<u32>, StorageError> {
        let hash = self.hasher.hash_labels(labels);
        if let Some(slot) = self.find_in_memory(ti, hash) {
            let closing = self.series.slot(slot).is_some_and(|s| s.flags & F_CLOSING != 0);
            if closing {
                if !self.may_activate(ti) {
                    return Ok(None);
                }
                if let Some(s) = self.series.slot_mut(slot) {
                    s.flags &= !F_CLOSING;
                    s.flags |= F_DIRTY;
                    s.last_write = now_ms;
                }
                self.tenants[ti as usize].active += 1;
                metrics::ACTIVE_SERIES.inc();
            }
            return Ok(Some(slot));
        }
        if !self.may_activate(ti) {
            return Ok(None);
        }
        let tenant_name = self.tenants[ti as usize].id.as_str().to_string();
        let key = keys::series_labels_key(&tenant_name, labels.iter().map(|l| (&l.name, &l.value)));
        // (sid, newest sample time, newest time possibly on disk)
        let mut revived = None;
        if let Some(v) = disk.get(keys::CF_SERIES_BY_LABELS, &key)? {
            let sid = keys::sid_from_key(&v)?;
            match disk.get(keys::CF_IDLE, &keys::sid_key(sid))? {
                // Evicted earlier; dead (and due for garbage collection)
                // once everything it had is past retention.
                Some(idle) => {
                    let max_t = keys::decode_idle(&idle)?;
                    if max_t >= self.floor_t() {
                        revived = Some((sid, max_t, max_t));
                    }
                }
                // Records written by a checkpoint that crashed before its
                // state batch: the series was created by an entry being
                // replayed now, so it gets the same id again. (Garbage
                // collection removes idle and series records together.)
                None => revived = Some((sid, i64::MIN, i64::MAX)),
            }
        }
        let (sid, max_t, flushed_max_t, flags) = match revived {
            Some((sid, max_t, flushed)) => (sid, max_t, flushed, F_DIRTY),
            None => {
                let sid = self.next_sid;
                self.next_sid += 1;
                metrics::SERIES_CREATED.inc();
                (sid, i64::MIN, i64::MIN, F_NEW | F_DIRTY)
            }
        };
        let syms = intern_labels(&mut self.symbols, labels);
        Ok(Some(self.insert_series(MemSeries {
            sid,
            tenant: ti,
            labels: syms,
            hash,
            max_t,
            last_write: now_ms,
            flushed_max_t,
            postings_partition: i32::MIN,
            flags,
            head_persisted: 0,
            hhead_persisted: 0,
            head: None,
            hhead: None,
            pending: Vec::new(),
            ooo: None,
        })))
    }

    fn may_activate(&self, ti: u32) -> bool {
        self.cfg.max_series == 0 || self.tenants[ti as usize].active < self.cfg.max_series
    }

    /// The slot of the series with this labels hash, if it is in memory.
    pub fn find_in_memory(&self, ti: u32, hash: u128) -> Option<u32> {
        let th = self.tenants.get(ti as usize)?;
        let key = hash as u64;
        let matches = |slot: &u32| self.series.slot(*slot).is_some_and(|s| s.hash == hash);
        if let Some(slot) = th.by_hash.get(&key).filter(|s| matches(s)) {
            return Some(*slot);
        }
        th.collisions.get(&key)?.iter().find(|s| matches(s)).copied()
    }

    /// Adds a series to memory and the tenant's index (counts it active);
    /// returns its slot.
    pub fn insert_series(&mut self, s: MemSeries) -> u32 {
        let ti = s.tenant as usize;
        let key = s.hash as u64;
        let sid = s.sid;
        let active = s.flags & F_CLOSING == 0;
        let pairs: Vec<(u32, u32)> = s.labels.chunks_exact(2).map(|p| (p[0], p[1])).collect();
        let slot = self.series.insert(s);
        let th = &mut self.tenants[ti];
        match th.by_hash.get(&key) {
            Some(_) => th.collisions.entry(key).or_default().push(slot),
            None => {
                th.by_hash.insert(key, slot);
            }
        }
        for (n, v) in pairs {
            insert_sorted(th.postings.entry(n).or_default().entry(v).or_default(), sid);
        }
        insert_sorted(&mut th.all, sid);
        if active {
            th.active += 1;
            metrics::ACTIVE_SERIES.inc();
        }
        slot
    }

    /// Removes closed series from memory and the index.
    pub fn remove_series(&mut self, sids: &[u64]) {
        let mut by_tenant: FxHashMap<u32, Vec<u64>> = FxHashMap::default();
        let mut touched: FxHashMap<u32, Vec<(u32, u32)>> = FxHashMap::default();
        for sid in sids {
            let Some(slot) = self.series.slot_of(sid) else {
                continue;
            };
            let Some(s) = self.series.remove(sid) else {
                continue;
            };
            let th = &mut self.tenants[s.tenant as usize];
            let key = s.hash as u64;
            if th.by_hash.get(&key) == Some(&slot) {
                th.by_hash.remove(&key);
                if let Some(list) = th.collisions.get_mut(&key) {
                    if let Some(next) = list.pop() {
                        th.by_hash.insert(key, next);
                    }
                    if list.is_empty() {
                        th.collisions.remove(&key);
                    }
                }
            } else if let Some(list) = th.collisions.get_mut(&key) {
                list.retain(|x| *x != slot);
                if list.is_empty() {
                    th.collisions.remove(&key);
                }
            }
            if s.flags & F_CLOSING == 0 {
                th.active = th.active.saturating_sub(1);
                metrics::ACTIVE_SERIES.dec();
            }
            by_tenant.entry(s.tenant).or_default().push(*sid);
            let t = touched.entry(s.tenant).or_default();
            for p in s.labels.chunks_exact(2) {
                t.push((p[0], p[1]));
                self.symbols.release(p[0]);
                self.symbols.release(p[1]);
            }
        }
        for (ti, mut gone) in by_tenant {
            gone.sort_unstable();
            let th = &mut self.tenants[ti as usize];
            super::postings::subtract_in_place(&mut th.all, &gone);
            let mut pairs = touched.remove(&ti).unwrap_or_default();
            pairs.sort_unstable();
            pairs.dedup();
            for (n, v) in pairs {
                let Some(values) = th.postings.get_mut(&n) else {
                    continue;
                };
                if let Some(list) = values.get_mut(&v) {
                    super::postings::subtract_in_place(list, &gone);
                    if list.is_empty() {
                        values.remove(&v);
                    }
                }
                if values.is_empty() {
                    th.postings.remove(&n);
                }
            }
        }
    }
}

fn note_partition(cfg: &Config, s: &mut MemSeries, t: i64, todo: &mut Vec<(u64, i32)>) {
    let p = cfg.partition_of(t);
    if p != s.postings_partition {
        todo.push((s.sid, p));
        s.postings_partition = s.postings_partition.max(p);
    }
}

fn cut_float_head(s: &mut MemSeries, next_id: &mut u64) {
    s.flags |= F_HEAD_CUT;
    s.head_persisted = 0;
    if let Some(h) = s.head.take().filter(|h| !h.is_empty()) {
        let (min_t, max_t) = (h.first_t(), h.last_t());
        s.pending.push(Pending {
            id: *next_id,
            kind: ChunkKind::Float,
            min_t,
            max_t,
            bytes: Arc::from(h.into_bytes()),
        });
        *next_id += 1;
    }
}

fn cut_histogram_head(s: &mut MemSeries, next_id: &mut u64) {
    s.flags |= F_HHEAD_CUT;
    s.hhead_persisted = 0;
    if let Some(h) = s.hhead.take().filter(|h| !h.is_empty()) {
        let (min_t, max_t) = (h.first_t().unwrap_or(h.last_t()), h.last_t());
        s.pending.push(Pending {
            id: *next_id,
            kind: ChunkKind::Histogram,
            min_t,
            max_t,
            bytes: Arc::from(h.into_bytes()),
        });
        *next_id += 1;
    }
}

/// Moves open chunks to the pending list (eviction, final checkpoint).
pub fn cut_heads(s: &mut MemSeries, next_id: &mut u64) {
    cut_float_head(s, next_id);
    cut_histogram_head(s, next_id);
}

fn add_float(
    cfg: &Config,
    s: &mut MemSeries,
    disk: &Disk,
    t: i64,
    v: f64,
    next_id: &mut u64,
) -> Result<Verdict, StorageError> {
    if t > s.max_t {
        if let Some(h) = &s.head
            && (h.count() >= cfg.chunk_max_samples
                || h.is_full()
                || cfg.window_of(h.first_t()) != cfg.window_of(t))
        {
            cut_float_head(s, next_id);
        }
        s.head.get_or_insert_with(XorAppender::new).append(t, v);
        s.max_t = t;
        return Ok(Verdict::Stored);
    }
    if let Some(h) = s.head.as_ref().filter(|h| !h.is_empty() && h.last_t() == t) {
        return Ok(if h.last_v().to_bits() == v.to_bits() {
            Verdict::Duplicate
        } else {
            Verdict::Reject(RejectReason::DuplicateTimestamp)
        });
    }
    if t < s.max_t.saturating_sub(cfg.ooo_ms) {
        return Ok(Verdict::Reject(RejectReason::OutOfOrder));
    }
    Ok(match value_at(cfg, s, disk, t)? {
        Some(ValueAt::Float(bits)) if bits == v.to_bits() => Verdict::Duplicate,
        Some(_) => Verdict::Reject(RejectReason::DuplicateTimestamp),
        None => {
            let ooo = s.ooo.get_or_insert_with(Box::<OooBuffer>::default);
            let i = ooo.floats.partition_point(|x| x.t < t);
            ooo.floats.insert(i, crate::model::Sample { t, v });
            Verdict::Stored
        }
    })
}

fn add_histogram(
    cfg: &Config,
    s: &mut MemSeries,
    disk: &Disk,
    t: i64,
    h: &Arc<FloatHistogram>,
    next_id: &mut u64,
) -> Result<Verdict, StorageError> {
    if t > s.max_t {
        if let Some(hh) = &s.hhead {
            let first = hh.first_t().unwrap_or(t);
            if hh.count() >= cfg.chunk_max_samples
                || hh.count() >= chunk::histogram::MAX_SAMPLES
                || hh.bytes().len() >= MAX_HISTOGRAM_CHUNK_BYTES
                || cfg.window_of(first) != cfg.window_of(t)
            {
                cut_histogram_head(s, next_id);
            }
        }
        s.hhead
            .get_or_insert_with(|| Box::new(HistogramAppender::new()))
            .append(t, h);
        s.max_t = t;
        return Ok(Verdict::Stored);
    }
    if t < s.max_t.saturating_sub(cfg.ooo_ms) {
        return Ok(Verdict::Reject(RejectReason::OutOfOrder));
    }
    Ok(match value_at(cfg, s, disk, t)? {
        Some(ValueAt::Histogram(old)) if *old == **h => Verdict::Duplicate,
        Some(_) => Verdict::Reject(RejectReason::DuplicateTimestamp),
        None => {
            let ooo = s.ooo.get_or_insert_with(Box::<OooBuffer>::default);
            let i = ooo.histograms.partition_point(|x| x.t < t);
            ooo.histograms
                .insert(i, crate::model::HistogramSample { t, h: h.clone() });
            Verdict::Stored
        }
    })
}

/// The value a series holds at exactly `t`, looking through memory first
/// and disk when `t` may have been flushed.
fn value_at(cfg: &Config, s: &MemSeries, disk: &Disk, t: i64) -> Result<Option<ValueAt>, StorageError> {
    if let Some(o) = &s.ooo {
        if let Ok(i) = o.floats.binary_search_by_key(&t, |x| x.t) {
            return Ok(Some(ValueAt::Float(o.floats[i].v.to_bits())));
        }
        if let Ok(i) = o.histograms.binary_search_by_key(&t, |x| x.t) {
            return Ok(Some(ValueAt::Histogram(o.histograms[i].h.clone())));
        }
    }
    if let Some(h) = s
        .head
        .as_ref()
        .filter(|h| !h.is_empty() && h.first_t() <= t && t <= h.last_t())
    {
        let mut v = Vec::new();
        chunk::decode_floats(h.bytes(), &mut v)?;
        if let Some(x) = v.iter().find(|x| x.t == t) {
            return Ok(Some(ValueAt::Float(x.v.to_bits())));
        }
    }
    if let Some(h) = s
        .hhead
        .as_ref()
        .filter(|h| h.first_t().is_some_and(|f| f <= t) && t <= h.last_t())
    {
        let mut v = Vec::new();
        chunk::decode_histograms(h.bytes(), &mut v)?;
        if let Some(x) = v.into_iter().find(|x| x.t == t) {
            return Ok(Some(ValueAt::Histogram(x.h)));
        }
    }
    for p in s.pending.iter().filter(|p| p.min_t <= t && t <= p.max_t) {
        match p.kind {
            ChunkKind::Float => {
                let mut v = Vec::new();
                chunk::decode_floats(&p.bytes, &mut v)?;
                if let Some(x) = v.iter().find(|x| x.t == t) {
                    return Ok(Some(ValueAt::Float(x.v.to_bits())));
                }
            }
            ChunkKind::Histogram => {
                let mut v = Vec::new();
                chunk::decode_histograms(&p.bytes, &mut v)?;
                if let Some(x) = v.into_iter().find(|x| x.t == t) {
                    return Ok(Some(ValueAt::Histogram(x.h)));
                }
            }
        }
    }
    if t <= s.flushed_max_t {
        return disk.value_at(s.sid, cfg.partition_of(t), t);
    }
    Ok(None)
}
