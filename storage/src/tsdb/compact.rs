//! Chunk compaction: once a time window is sealed (newer data has moved
//! past it by more than the out-of-order window), each series' chunks of
//! that window — head chunks of ~120 samples, out-of-order chunks, late
//! stragglers — are merged into one dense chunk, deduplicated and sorted.
//! Fewer, longer chunks mean less per-key overhead and better zstd ratios.
//!
//! Windows needing work are marked (`dw` keys) by the checkpoint that wrote
//! chunks into them. The scan of a window skips from series to series with
//! seeks, so it reads only that window's chunks, not the whole partition.
//! Compaction runs on the shard's maintenance thread, never concurrently
//! with a checkpoint, so no chunk can appear in a window while it is merged.

use std::time::{Duration, Instant};

use rocksdb::{ReadOptions, WriteBatch};

use super::keys;
use super::shard::ShardCore;
use crate::chunk::{self, ChunkKind};
use crate::codec::{i64_from_sortable, i64_sortable};
use crate::error::StorageError;
use crate::metrics;
use crate::model::{HistogramSample, Sample};

/// Flush a compaction write batch at about this size.
const BATCH_BYTES: usize = 8 << 20;

/// What a compaction pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactStats {
    pub windows: u64,
    pub chunks_in: u64,
    pub chunks_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl CompactStats {
    fn add(&mut self, o: CompactStats) {
        self.windows += o.windows;
        self.chunks_in += o.chunks_in;
        self.chunks_out += o.chunks_out;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
    }
}

struct Group {
    sid: u64,
    keys: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
}

/// How long a closing store spends merging windows before it stops (the
/// server's shutdown grace period is 30 s by default).
const CLOSE_BUDGET: Duration = Duration::from_secs(10);

impl ShardCore {
    /// Compacts dirty windows: sealed ones, or all of them with `force`.
    pub fn compact(&self, force: bool) -> Result<CompactStats, StorageError> {
        self.compact_inner(force, force, None)
    }

    /// Compaction at close: every dirty window, sealed or not, until the
    /// time budget is spent (a window merged early is merged again if
    /// more data arrives in it after a restart), then a RocksDB compaction
    /// of the chunk column family so it sits at the bottom level's
    /// stronger compression.
    pub fn compact_on_close(&self) -> Result<CompactStats, StorageError> {
        self.compact_inner(true, true, Some(Instant::now() + CLOSE_BUDGET))
    }

    fn compact_inner(
        &self,
        force: bool,
        full: bool,
        deadline: Option<Instant>,
    ) -> Result<CompactStats, StorageError> {
        let _m = self.maintenance.lock();
        self.check_live()?;
        let (max_seen, floor_t) = {
            let st = self.state.read();
            (st.max_seen_t, st.floor_t())
        };
        let mut windows = Vec::new();
        let prefix = keys::META_DIRTY_WINDOW;
        self.disk
            .scan(keys::CF_META, prefix, &keys::prefix_end(prefix), |k, _| {
                if let Some(b) = k.get(prefix.len()..).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                    windows.push(i64_from_sortable(b));
                }
                Ok(true)
            })?;
        let mut total = CompactStats::default();
        for w in windows {
            let w_start = w.saturating_mul(self.cfg.window_ms);
            let w_end = w_start.saturating_add(self.cfg.window_ms);
            let sealed = w_end.saturating_add(self.cfg.ooo_ms) <= max_seen;
            if !(sealed || force) {
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            if w_end <= floor_t {
                // Retention is dropping it anyway.
                self.clear_marker(w)?;
                continue;
            }
            let started = Instant::now();
            let s = self.compact_window(w_start, w_end)?;
            self.clear_marker(w)?;
            metrics::COMPACTION_SECONDS.observe(started.elapsed().as_secs_f64());
            tracing::debug!(
                shard = self.id,
                window_start = w_start,
                chunks_in = s.chunks_in,
                chunks_out = s.chunks_out,
                bytes_in = s.bytes_in,
                bytes_out = s.bytes_out,
                "Compacted window."
            );
            total.add(s);
        }
        if full && deadline.is_none_or(|d| Instant::now() < d) {
            // Also let RocksDB drop our tombstones and recompress at the
            // bottom level now (benchmarks measure disk right after).
            let cf = self.disk.cf(keys::CF_CHUNKS)?;
            self.disk.db().compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
        // Head segments are overwritten and range-deleted all the time;
        // reclaim the garbage once it dominates the live head data.
        let live: u64 = {
            let st = self.state.read();
            st.series
                .values()
                .map(|s| u64::from(s.head_persisted) + u64::from(s.hhead_persisted) + 64)
                .sum()
        };
        if full || self.disk.cf_sst_bytes(keys::CF_HEAD) > live + live / 2 + (4 << 20) {
            let cf = self.disk.cf(keys::CF_HEAD)?;
            self.disk.db().compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(total)
    }

    fn clear_marker(&self, w: i64) -> Result<(), StorageError> {
        let mut b = WriteBatch::default();
        b.delete_cf(self.disk.cf(keys::CF_META)?, keys::dirty_window_key(w));
        self.disk.write(b)
    }

    fn compact_window(&self, w_start: i64, w_end: i64) -> Result<CompactStats, StorageError> {
        let p = self.cfg.partition_of(w_start);
        let cf = self.disk.cf(keys::CF_CHUNKS)?;
        let part_prefix = keys::partition_bytes(p);
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::prefix_end(&part_prefix));
        let mut it = self.disk.db().raw_iterator_cf_opt(cf, ro);
        let seek_to = |sid: u64| {
            let mut k = keys::chunk_series_prefix(p, sid).to_vec();
            k.extend_from_slice(&i64_sortable(w_start));
            k
        };
        it.seek(seek_to(0));
        let mut stats = CompactStats {
            windows: 1,
            ..Default::default()
        };
        let mut batch = WriteBatch::default();
        let mut group: Option<Group> = None;
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let ck = keys::parse_chunk_key(k)?;
            if ck.max_t < w_start {
                it.seek(seek_to(ck.sid));
                continue;
            }
            if ck.max_t >= w_end {
                match ck.sid.checked_add(1) {
                    Some(next) => {
                        it.seek(seek_to(next));
                        continue;
                    }
                    None => break,
                }
            }
            if group.as_ref().is_some_and(|g| g.sid != ck.sid) {
                if let Some(g) = group.take() {
                    self.merge_group(p, g, &mut batch, &mut stats)?;
                }
                if batch.size_in_bytes() >= BATCH_BYTES {
                    self.disk.write(std::mem::take(&mut batch))?;
                }
            }
            let g = group.get_or_insert_with(|| Group {
                sid: ck.sid,
                keys: Vec::new(),
                values: Vec::new(),
            });
            g.keys.push(k.to_vec());
            g.values.push(v.to_vec());
            it.next();
        }
        it.status()
            .map_err(|e| super::disk::db_err("iterate chunks", e))?;
        if let Some(g) = group.take() {
            self.merge_group(p, g, &mut batch, &mut stats)?;
        }
        if !batch.is_empty() {
            self.disk.write(batch)?;
        }
        metrics::CHUNKS_COMPACTED.inc_by(stats.chunks_in.saturating_sub(stats.chunks_out));
        Ok(stats)
    }

    fn merge_group(
        &self,
        p: i32,
        g: Group,
        batch: &mut WriteBatch,
        stats: &mut CompactStats,
    ) -> Result<(), StorageError> {
        let already_dense = g.values.len() == 1 && g.values[0].first() != Some(&chunk::xor::ENCODING_XOR);
        if already_dense {
            return Ok(());
        }
        let cf = self.disk.cf(keys::CF_CHUNKS)?;
        let mut floats: Vec<Sample> = Vec::new();
        let mut hists: Vec<HistogramSample> = Vec::new();
        for v in &g.values {
            stats.bytes_in += v.len() as u64;
            match chunk::kind(v)? {
                ChunkKind::Float => chunk::decode_floats(v, &mut floats)?,
                ChunkKind::Histogram => chunk::decode_histograms(v, &mut hists)?,
            }
        }
        stats.chunks_in += g.keys.len() as u64;
        // Stable sort keeps the first-written of equal timestamps.
        floats.sort_by_key(|s| s.t);
        floats.dedup_by(|b, a| a.t == b.t);
        hists.sort_by_key(|s| s.t);
        hists.dedup_by(|b, a| a.t == b.t);
        for k in &g.keys {
            batch.delete_cf(cf, k);
        }
        for part in floats.chunks(chunk::max_samples_per_disk_chunk(ChunkKind::Float)) {
            let (Some(first), Some(last)) = (part.first(), part.last()) else {
                continue;
            };
            let bytes = chunk::encode_floats_for_disk(part);
            stats.bytes_out += bytes.len() as u64;
            stats.chunks_out += 1;
            batch.put_cf(cf, keys::chunk_key(p, g.sid, first.t, last.t), bytes);
        }
        for part in hists.chunks(chunk::max_samples_per_disk_chunk(ChunkKind::Histogram)) {
            let (Some(first), Some(last)) = (part.first(), part.last()) else {
                continue;
            };
            let bytes = chunk::histogram::encode(part);
            stats.bytes_out += bytes.len() as u64;
            stats.chunks_out += 1;
            batch.put_cf(cf, keys::chunk_key(p, g.sid, first.t, last.t), bytes);
        }
        Ok(())
    }
}
