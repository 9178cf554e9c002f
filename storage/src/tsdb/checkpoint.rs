//! Checkpoints: persisting the head so the log can be truncated.
//!
//! 1. Under the state lock (short): note the applied index `I`, turn
//!    out-of-order buffers and closing series' open chunks into pending
//!    chunks, and copy out everything that changed since the last checkpoint
//!    (new series, head snapshots, pending chunks, postings, metadata,
//!    exemplars).
//! 2. Without the lock: write new series records and postings (in bounded
//!    batches; replay copes with them landing without the rest), then
//!    re-encode chunks densely and write everything else, with
//!    `applied_index = I`, in ONE RocksDB write batch — so the state RocksDB
//!    persists reflects log entries `<= I`.
//! 3. Under the lock: drop the written pending chunks from memory (readers
//!    look at memory before disk, so they never miss a chunk in flight) and
//!    remove evicted series.
//! 4. Flush RocksDB's memtables, then truncate the log up to `I`.
//!
//! Retention's physical deletion (whole partitions by key range, file
//! deletion and range compaction) runs after that, as does garbage
//! collection of dead series records.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rocksdb::WriteBatch;
use rustc_hash::FxHashMap;

use super::apply::{ShardState, cut_heads};
use super::head::{
    F_CLOSING, F_DIRTY, F_HEAD_CUT, F_HHEAD_CUT, F_NEW, MemSeries, OooBuffer, Pending, label_pairs,
};
use super::keys;
use super::shard::ShardCore;
use crate::chunk::{self, ChunkKind};
use crate::codec::i64_sortable;
use crate::error::StorageError;
use crate::metrics;

/// Series records and postings are resolved and written this many at a time.
const RESOLVE_SLICE: usize = 4096;

/// Every this many checkpoints, a series' open chunks are written whole
/// again so a chunk never has more than this many head segments.
const REBASE_EVERY: u32 = 4;

/// Head column family operations, in order, in one buffer.
#[derive(Default)]
struct HeadBatch {
    batch: WriteBatch,
    puts: usize,
}

impl HeadBatch {
    fn delete_range(&mut self, cf: &rocksdb::ColumnFamily, from: &[u8], to: &[u8]) {
        self.batch.delete_range_cf(cf, from, to);
    }

    fn put(&mut self, cf: &rocksdb::ColumnFamily, key: &[u8], value: &[u8]) {
        self.batch.put_cf(cf, key, value);
        self.puts += 1;
    }
}

#[derive(Default)]
struct Plan {
    applied: u64,
    position: Vec<u8>,
    next_sid: u64,
    /// New series, by id: their labels are read from the head only while
    /// writing, slice by slice (series leave the head only when this
    /// checkpoint finishes, so every id still resolves). A cold start
    /// creates millions; copying their labels into the plan cost as much
    /// memory as the labels themselves.
    series_records: Vec<u64>,
    /// The head column family's changes, written straight into what becomes
    /// the state batch: at high cardinality every series changes between
    /// checkpoints, and a key and value allocation per series doubled the
    /// checkpoint's transient memory.
    head: HeadBatch,
    idle: Vec<(u64, i64)>,
    chunks: Vec<(u64, Pending)>,
    /// (series, partition) pairs to index, sorted; resolved like
    /// `series_records`.
    postings_todo: Vec<(u64, i32)>,
    metadata: Vec<(u32, String, Vec<u8>, Vec<u8>)>,
    exemplar_puts: Vec<(Vec<u8>, Vec<u8>)>,
    exemplar_deletes: Vec<(Vec<u8>, Vec<u8>)>,
    exemplar_persisted: Vec<(u32, u64)>,
    closing: Vec<u64>,
    retention: Option<(i32, i32)>,
}

/// What a checkpoint did.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckpointStats {
    pub applied_index: u64,
    pub chunks_written: u64,
    pub series_evicted: u64,
    pub bytes_written: u64,
}

fn ooo_to_pending(cfg: &super::apply::Config, ooo: OooBuffer, next_id: &mut u64, out: &mut Vec<Pending>) {
    let mut push = |kind: ChunkKind, min_t: i64, max_t: i64, bytes: Vec<u8>| {
        out.push(Pending {
            id: *next_id,
            kind,
            min_t,
            max_t,
            bytes: Arc::from(bytes),
        });
        *next_id += 1;
    };
    for group in ooo
        .floats
        .chunk_by(|a, b| cfg.window_of(a.t) == cfg.window_of(b.t))
    {
        for part in group.chunks(chunk::xor::MAX_SAMPLES) {
            if let (Some(first), Some(last)) = (part.first(), part.last()) {
                push(ChunkKind::Float, first.t, last.t, chunk::xor::encode(part));
            }
        }
    }
    for group in ooo
        .histograms
        .chunk_by(|a, b| cfg.window_of(a.t) == cfg.window_of(b.t))
    {
        for part in group.chunks(chunk::histogram::MAX_SAMPLES) {
            if let (Some(first), Some(last)) = (part.first(), part.last()) {
                push(
                    ChunkKind::Histogram,
                    first.t,
                    last.t,
                    chunk::histogram::encode(part),
                );
            }
        }
    }
}

/// `last`: the store is closing; open chunks are cut and written as chunks
/// (dense, compressed) instead of head segments, so a stopped store keeps no
/// uncompressed head data and no superseded segments.
fn build_plan(st: &mut ShardState, last: bool, cf_head: &rocksdb::ColumnFamily) -> Plan {
    let full = std::mem::take(&mut st.full_checkpoint);
    // Each checkpoint rebases the quarter of the series whose id falls in
    // its turn, rather than every series every fourth checkpoint: the same
    // bound on segments per chunk, without a checkpoint that rewrites the
    // whole head at once (at high cardinality that batch, and the memtable
    // it lands in, set the process's peak memory).
    st.checkpoints_since_rebase = (st.checkpoints_since_rebase + 1) % REBASE_EVERY;
    let turn = u64::from(st.checkpoints_since_rebase);
    let cfg = st.cfg.clone();
    let mut plan = Plan {
        applied: st.applied_index,
        position: st.position.clone(),
        next_sid: st.next_sid,
        ..Default::default()
    };
    if last {
        // One tombstone over the whole column family instead of one per
        // series; the meta records planned below are put after it.
        plan.head.delete_range(cf_head, &[0u8; 8], &[0xffu8; 9]);
    }
    let mut next_id = st.next_pending_id;
    let mut todo = std::mem::take(&mut st.postings_todo);
    for s in st.series.values_mut() {
        if let Some(ooo) = s.ooo.take() {
            ooo_to_pending(&cfg, *ooo, &mut next_id, &mut s.pending);
        }
        if last || s.flags & F_CLOSING != 0 {
            cut_heads(s, &mut next_id);
        }
        for p in &s.pending {
            s.flushed_max_t = s.flushed_max_t.max(p.max_t);
            plan.chunks.push((s.sid, p.clone()));
        }
        if full || s.flags & F_NEW != 0 {
            plan.series_records.push(s.sid);
        }
        if full && s.postings_partition != i32::MIN {
            todo.push((s.sid, s.postings_partition));
        }
        if s.flags & F_CLOSING != 0 {
            plan.closing.push(s.sid);
            plan.idle.push((s.sid, s.max_t));
            if !last {
                let (from, to) = keys::head_series_range(s.sid);
                plan.head.delete_range(cf_head, &from, &to);
            }
        } else if full || last || s.flags & F_DIRTY != 0 || !s.pending.is_empty() {
            let rebase = full || s.sid % u64::from(REBASE_EVERY) == turn;
            plan_head(s, rebase, last, cf_head, &mut plan.head);
        }
        s.flags &= !(F_NEW | F_DIRTY | F_HEAD_CUT | F_HHEAD_CUT);
    }
    st.next_pending_id = next_id;
    todo.sort_unstable();
    todo.dedup();
    plan.postings_todo = todo;
    for (ti, th) in st.tenants.iter_mut().enumerate() {
        let tenant = th.id.as_str();
        let dirty: Vec<String> = if full {
            th.metadata.keys().cloned().collect()
        } else {
            th.metadata_dirty.drain().collect()
        };
        th.metadata_dirty.clear();
        for fam in dirty {
            if let Some(m) = th.metadata.get(&fam) {
                plan.metadata.push((
                    ti as u32,
                    fam.clone(),
                    keys::metadata_key(tenant, &fam),
                    keys::encode_metadata(m),
                ));
            }
        }
        let ring = &th.exemplars;
        for e in ring.unpersisted() {
            plan.exemplar_puts.push((
                keys::exemplar_key(tenant, e.seq),
                keys::encode_exemplar(e.sid, &e.exemplar),
            ));
        }
        if ring.oldest_seq() > 0 {
            plan.exemplar_deletes.push((
                keys::exemplar_key(tenant, 0),
                keys::exemplar_key(tenant, ring.oldest_seq()),
            ));
        }
        plan.exemplar_persisted.push((ti as u32, ring.next_seq));
    }
    if st.retention_floor > st.retention_done {
        plan.retention = Some((st.retention_done, st.retention_floor));
    }
    plan
}

/// The head column family writes of a dirty series: its meta record and
/// the bytes its open chunks gained since the last checkpoint (from the
/// last, possibly partial, byte on). A cut chunk's segments are deleted.
fn plan_head(s: &mut MemSeries, rebase: bool, last: bool, cf: &rocksdb::ColumnFamily, head: &mut HeadBatch) {
    let meta = keys::HeadMeta {
        max_t: s.max_t,
        last_write: s.last_write,
        flushed_max_t: s.flushed_max_t,
        postings_partition: s.postings_partition,
    };
    head.put(cf, &keys::head_meta_key(s.sid), &keys::encode_head_meta(&meta));
    let float = s.head.as_ref().map(|h| (h.first_t(), h.count(), h.bytes()));
    let hist = s
        .hhead
        .as_ref()
        .map(|h| (h.first_t().unwrap_or(h.last_t()), h.count(), h.bytes()));
    for (kind, cut, chunk, persisted) in [
        (keys::HEAD_FLOAT, F_HEAD_CUT, float, &mut s.head_persisted),
        (keys::HEAD_HISTOGRAM, F_HHEAD_CUT, hist, &mut s.hhead_persisted),
    ] {
        if last {
            // The whole column family is range-deleted; nothing is open.
            *persisted = 0;
            continue;
        }
        if rebase || s.flags & cut != 0 {
            let (from, to) = keys::head_kind_range(s.sid, kind);
            head.delete_range(cf, &from, &to);
            *persisted = 0;
        }
        let Some((first_t, count, bytes)) = chunk else {
            continue;
        };
        let start = (*persisted as usize).saturating_sub(1).min(bytes.len());
        head.put(
            cf,
            &keys::head_segment_key(s.sid, kind, first_t, start as u32),
            &keys::encode_head_segment(count.min(u16::MAX as usize) as u16, &bytes[start..]),
        );
        *persisted = bytes.len() as u32;
    }
}

/// Encodes a pending chunk for disk: dense for floats unless the XOR form
/// is smaller; histogram chunks as they are.
fn disk_chunk(p: &Pending) -> Result<(Vec<u8>, u64), StorageError> {
    match p.kind {
        ChunkKind::Float => {
            let mut samples = Vec::new();
            chunk::decode_floats(&p.bytes, &mut samples)?;
            let n = samples.len() as u64;
            let dense = chunk::encode_floats_for_disk(&samples);
            Ok(if dense.len() <= p.bytes.len() {
                (dense, n)
            } else {
                (p.bytes.to_vec(), n)
            })
        }
        ChunkKind::Histogram => {
            let n = p
                .bytes
                .get(1..3)
                .map_or(0, |b| u64::from(u16::from_be_bytes([b[0], b[1]])));
            Ok((p.bytes.to_vec(), n))
        }
    }
}

impl ShardCore {
    /// Persists the head up to the applied index (the log may then drop
    /// what it covers). Safe to call at any time.
    pub fn checkpoint(&self) -> Result<CheckpointStats, StorageError> {
        self.checkpoint_inner(false)
    }

    /// The checkpoint of a closing store: open chunks are cut and written
    /// to the chunk column family (dense, compressed), and the head column
    /// family keeps only meta records and is compacted, so its superseded
    /// segments leave the disk. Series stay in the head with no open chunk;
    /// a later sample simply starts a new one (and window compaction merges
    /// the pieces), so writes after this are still correct.
    pub fn checkpoint_last(&self) -> Result<CheckpointStats, StorageError> {
        let stats = self.checkpoint_inner(true)?;
        // The index column families were written at most once per series,
        // into level 0 (LZ4); compacting them moves them to the bottom
        // level (ZSTD) and drops the head's superseded segments.
        for name in [
            keys::CF_HEAD,
            keys::CF_SERIES,
            keys::CF_SERIES_BY_LABELS,
            keys::CF_IDLE,
            keys::CF_POSTINGS,
        ] {
            let cf = self.disk.cf(name)?;
            self.disk.db().compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(stats)
    }

    fn checkpoint_inner(&self, last: bool) -> Result<CheckpointStats, StorageError> {
        let _m = self.maintenance.lock();
        self.check_live()?;
        let started = Instant::now();
        let mut plan = build_plan(&mut self.state.write(), last, self.disk.cf(keys::CF_HEAD)?);
        let bytes = match self.write_plan(&mut plan) {
            Ok(b) => b,
            Err(e) => {
                let mut st = self.state.write();
                st.full_checkpoint = true;
                st.postings_todo.append(&mut plan.postings_todo);
                for (ti, fam, _, _) in plan.metadata.drain(..) {
                    if let Some(th) = st.tenants.get_mut(ti as usize) {
                        th.metadata_dirty.insert(fam);
                    }
                }
                tracing::error!(shard = self.id, error = %e, "Checkpoint failed; it will be retried in full.");
                return Err(e);
            }
        };
        let evicted = self.finalize(&plan);
        self.disk.flush()?;
        if let Some((done, floor)) = plan.retention {
            self.drop_partitions(done, floor)?;
            let mut st = self.state.write();
            st.retention_done = st.retention_done.max(floor);
        }
        metrics::CHECKPOINT_SECONDS.observe(started.elapsed().as_secs_f64());
        metrics::CHUNKS_WRITTEN.inc_by(plan.chunks.len() as u64);
        tracing::debug!(
            shard = self.id,
            applied_index = plan.applied,
            chunks = plan.chunks.len(),
            heads = plan.head.puts,
            evicted,
            bytes,
            "Checkpoint done."
        );
        Ok(CheckpointStats {
            applied_index: plan.applied,
            chunks_written: plan.chunks.len() as u64,
            series_evicted: evicted,
            bytes_written: bytes,
        })
    }

    fn write_plan(&self, plan: &mut Plan) -> Result<u64, StorageError> {
        let d = &self.disk;
        let (cf_series, cf_by_labels, cf_idle) = (
            d.cf(keys::CF_SERIES)?,
            d.cf(keys::CF_SERIES_BY_LABELS)?,
            d.cf(keys::CF_IDLE)?,
        );
        let (cf_postings, cf_chunks, cf_meta) = (
            d.cf(keys::CF_POSTINGS)?,
            d.cf(keys::CF_CHUNKS)?,
            d.cf(keys::CF_META)?,
        );
        let (cf_metadata, cf_exemplars) = (d.cf(keys::CF_METADATA)?, d.cf(keys::CF_EXEMPLARS)?);
        // Series records and postings first, in bounded batches (a cold
        // start creates millions): they need not be atomic with the rest. A
        // crash before the state batch leaves records that replay revives
        // under the same ids (see `lookup_or_create`) — which is why the id
        // counter goes with them — and postings that only point at those.
        let tenants: Vec<String> = self
            .state
            .read()
            .tenants
            .iter()
            .map(|t| t.id.as_str().to_string())
            .collect();
        let tenant_of = |ti: u32| tenants.get(ti as usize).map(String::as_str).unwrap_or("");
        for part in plan.series_records.chunks(RESOLVE_SLICE) {
            let mut b = WriteBatch::default();
            {
                let st = self.state.read();
                for sid in part {
                    let Some(s) = st.series.get(sid) else { continue };
                    let (tenant, syms) = (tenant_of(s.tenant), &s.labels);
                    let pairs = label_pairs(&st.symbols, syms);
                    b.put_cf(
                        cf_series,
                        keys::sid_key(*sid),
                        keys::encode_series_record(tenant, pairs),
                    );
                    let key = keys::series_labels_key(tenant, label_pairs(&st.symbols, syms));
                    b.put_cf(cf_by_labels, key, keys::sid_key(*sid));
                }
            }
            b.put_cf(cf_meta, keys::META_NEXT_SID, plan.next_sid.to_be_bytes());
            d.write(b)?;
        }
        for part in plan.postings_todo.chunks(RESOLVE_SLICE) {
            let mut b = WriteBatch::default();
            {
                let st = self.state.read();
                for (sid, p) in part {
                    let Some(s) = st.series.get(sid) else { continue };
                    let tenant = tenant_of(s.tenant);
                    b.put_cf(cf_postings, keys::posting_key(*p, tenant, "", "", *sid), []);
                    for (n, v) in label_pairs(&st.symbols, &s.labels) {
                        b.put_cf(cf_postings, keys::posting_key(*p, tenant, n, v, *sid), []);
                    }
                }
            }
            d.write(b)?;
        }
        #[cfg(test)]
        if self.fail_state_batch.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StorageError::Io("injected failure before the state batch".into()));
        }
        // The head's operations were planned into the batch already.
        let mut b = std::mem::take(&mut plan.head.batch);
        let mut windows = std::collections::BTreeSet::new();
        let mut partition_samples: BTreeMap<i32, u64> = BTreeMap::new();
        for (sid, p) in &plan.chunks {
            let (bytes, n) = disk_chunk(p)?;
            let part = self.cfg.partition_of(p.min_t);
            b.put_cf(cf_chunks, keys::chunk_key(part, *sid, p.min_t, p.max_t), bytes);
            windows.insert(self.cfg.window_of(p.min_t));
            *partition_samples.entry(part).or_default() += n;
        }
        for w in windows {
            b.put_cf(cf_meta, keys::dirty_window_key(w), []);
        }
        for (p, n) in partition_samples {
            let key = keys::partition_samples_key(p);
            let old = d.get_meta_u64(&key)?.unwrap_or(0);
            b.put_cf(cf_meta, key, (old + n).to_be_bytes());
        }
        for (sid, max_t) in &plan.idle {
            b.put_cf(cf_idle, keys::sid_key(*sid), keys::encode_idle(*max_t));
        }

        for (_, _, k, v) in &plan.metadata {
            b.put_cf(cf_metadata, k, v);
        }
        for (k, v) in &plan.exemplar_puts {
            b.put_cf(cf_exemplars, k, v);
        }
        for (from, to) in &plan.exemplar_deletes {
            b.delete_range_cf(cf_exemplars, from, to);
        }
        b.put_cf(cf_meta, keys::META_APPLIED, plan.applied.to_be_bytes());
        b.put_cf(cf_meta, keys::META_POSITION, &plan.position);
        b.put_cf(cf_meta, keys::META_NEXT_SID, plan.next_sid.to_be_bytes());
        let size = b.size_in_bytes() as u64;
        d.write(b)?;
        Ok(size)
    }

    /// Phase 3: forget what is now on disk.
    fn finalize(&self, plan: &Plan) -> u64 {
        let mut st = self.state.write();
        let mut written: FxHashMap<u64, Vec<u64>> = FxHashMap::default();
        for (sid, p) in &plan.chunks {
            written.entry(*sid).or_default().push(p.id);
        }
        for (sid, ids) in written {
            if let Some(s) = st.series.get_mut(&sid) {
                s.pending.retain(|p| !ids.contains(&p.id));
            }
        }
        let gone: Vec<u64> = plan
            .closing
            .iter()
            .copied()
            .filter(|sid| {
                st.series
                    .get(sid)
                    .is_some_and(|s| s.flags & F_CLOSING != 0 && s.pending.is_empty() && s.ooo.is_none())
            })
            .collect();
        st.remove_series(&gone);
        for (ti, seq) in &plan.exemplar_persisted {
            if let Some(th) = st.tenants.get_mut(*ti as usize) {
                th.exemplars.persisted_seq = th.exemplars.persisted_seq.max(*seq);
            }
        }
        let chunks: i64 = st.series.values().map(|s| s.chunk_count() as i64).sum();
        metrics::HEAD_CHUNKS.add(chunks - st.reported_head_chunks);
        st.reported_head_chunks = chunks;
        gone.len() as u64
    }

    /// Physically deletes partitions `[done, floor)` and dead series.
    fn drop_partitions(&self, done: i32, floor: i32) -> Result<(), StorageError> {
        let d = &self.disk;
        let lo = keys::partition_bytes(done);
        let hi = keys::partition_bytes(floor);
        let (cf_chunks, cf_postings, cf_meta) = (
            d.cf(keys::CF_CHUNKS)?,
            d.cf(keys::CF_POSTINGS)?,
            d.cf(keys::CF_META)?,
        );
        let floor_t = self.cfg.partition_start(floor);
        let mut dropped = 0u64;
        let ps_lo = keys::partition_samples_key(i32::MIN);
        let ps_hi = keys::partition_samples_key(floor);
        d.scan(keys::CF_META, &ps_lo, &ps_hi, |_, _| {
            dropped += 1;
            Ok(true)
        })?;
        let mut b = WriteBatch::default();
        b.delete_range_cf(cf_chunks, lo, hi);
        b.delete_range_cf(cf_postings, lo, hi);
        b.delete_range_cf(cf_meta, ps_lo, ps_hi);
        let mut dw_lo = keys::META_DIRTY_WINDOW.to_vec();
        dw_lo.extend_from_slice(&i64_sortable(i64::MIN));
        b.delete_range_cf(
            cf_meta,
            dw_lo,
            keys::dirty_window_key(self.cfg.window_of(floor_t)),
        );
        d.write(b)?;
        for cf in [cf_chunks, cf_postings] {
            d.db()
                .delete_file_in_range_cf(cf, lo, hi)
                .map_err(|e| super::disk::db_err("delete files in range", e))?;
            d.db().compact_range_cf(cf, Some(lo), Some(hi));
        }
        self.collect_dead_series(floor_t)?;
        let mut b = WriteBatch::default();
        b.put_cf(cf_meta, keys::META_RETENTION_DONE, keys::partition_bytes(floor));
        d.write(b)?;
        metrics::PARTITIONS_DROPPED.inc_by(dropped);
        tracing::info!(
            shard = self.id,
            below_partition = floor,
            partitions = dropped,
            "Retention dropped partitions."
        );
        Ok(())
    }

    /// Deletes records of evicted series whose newest sample is older than
    /// the retention floor (nothing of them is left).
    fn collect_dead_series(&self, floor_t: i64) -> Result<(), StorageError> {
        let d = &self.disk;
        let mut dead = Vec::new();
        d.for_each(keys::CF_IDLE, |k, v| {
            if keys::decode_idle(v)? < floor_t {
                dead.push(keys::sid_from_key(k)?);
            }
            Ok(())
        })?;
        let (cf_series, cf_by_labels, cf_idle) = (
            d.cf(keys::CF_SERIES)?,
            d.cf(keys::CF_SERIES_BY_LABELS)?,
            d.cf(keys::CF_IDLE)?,
        );
        for chunk in dead.chunks(4096) {
            let records = d.series_records(chunk)?;
            let mut b = WriteBatch::default();
            for (sid, rec) in chunk.iter().zip(records) {
                // A series revived in memory keeps its records.
                if self.state.read().series.contains_key(sid) {
                    continue;
                }
                if let Some((tenant, labels)) = rec {
                    let key = keys::series_labels_key(&tenant, labels.iter().map(|l| (&l.name, &l.value)));
                    if d.get(keys::CF_SERIES_BY_LABELS, &key)?.as_deref() == Some(&keys::sid_key(*sid)[..]) {
                        b.delete_cf(cf_by_labels, key);
                    }
                }
                b.delete_cf(cf_series, keys::sid_key(*sid));
                b.delete_cf(cf_idle, keys::sid_key(*sid));
            }
            d.write(b)?;
        }
        Ok(())
    }
}
