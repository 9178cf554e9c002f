//! `Tsdb`: the durable time-series store on RocksDB.
//!
//! ```text
//!  Appender::append(tenant, batch)
//!     │ split by shard (hash of tenant + labels)
//!     ▼
//!  Shard ── encode entry ─▶ ShardLog (fsync, group commit) ─▶ apply in log order ─▶ head (memory)
//!     │                                                                           │
//!     │  maintenance thread: Tick entries (idle eviction, retention floor),       │
//!     │  checkpoint (head + chunks -> RocksDB, truncate log), compaction ◀─────────┘
//!     ▼
//!  RocksDB: series, postings per time partition, chunks, head snapshots, metadata, exemplars
//! ```
//!
//! Modules: [`options`] (configuration), [`clock`], [`keys`] (on-disk
//! layout, see `storage/FORMAT.md`), `head`/`apply` (the in-memory state and
//! the deterministic state machine), `shard` (write path, recovery),
//! `checkpoint`, `compact`, `query`, `status`, [`postings`] (set
//! operations), `disk` (RocksDB access).

mod apply;
pub mod checkpoint;
pub mod clock;
pub mod compact;
pub(crate) mod disk;
pub(crate) mod exemplars;
pub(crate) mod head;
pub mod keys;
pub mod options;
pub mod postings;
mod query;
mod replicas;
mod shard;
mod snapshot;
pub mod status;
pub(crate) mod symbols;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rocksdb::Cache;

pub use apply::Applied;
pub use checkpoint::CheckpointStats;
pub use clock::{Clock, ManualClock, SystemClock};
pub use compact::CompactStats;
pub use options::{PromDuration, ReplicatorKind, TsdbOptions};
pub use replicas::{LocalReplicas, ReplicaContext, ReplicaFactory};
pub use shard::ShardMachine;
pub use snapshot::{SnapshotInfo, StateDigest};
pub use status::ShardStats;

use self::apply::Config;
use self::shard::{Shard, ShardCore, ShardOpenOptions};
use crate::api::{
    AppendOutcome, Appender, Querier, Queryable, SelectHints, Series, ShardedAppender, TsdbStatus,
};
use crate::error::StorageError;
use crate::metrics;
use crate::model::borrowed::labels_in;
use crate::model::{
    BorrowedBatch, BorrowedSeries, Exemplar, Labels, LabelsRef, Matcher, MetricMetadata, TenantId, WriteBatch,
};
use crate::replicate::entry::encode_write_entry;
use crate::replicate::{LocalLogOptions, LogEntry};
use fenghuo_storage_api::placement;
pub use fenghuo_storage_api::placement::shard_of;

/// Numbers about the store as a whole, for operators and the capacity
/// planner.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TsdbStats {
    pub shards: u32,
    /// Series counted against limits (in the head, not idle).
    pub active_series: u64,
    /// Series held in memory (active + idle waiting for a checkpoint).
    pub head_series: u64,
    pub head_chunks: u64,
    /// Estimated bytes of the head's data structures.
    pub head_memory_bytes: u64,
    /// Everything under the data directory.
    pub disk_bytes: u64,
    /// SST bytes of the chunk column families.
    pub chunk_bytes: u64,
    pub log_bytes: u64,
    /// Samples written to disk chunks (within retention).
    pub persisted_samples: u64,
    /// `chunk_bytes / persisted_samples` (0 when nothing is persisted).
    pub bytes_per_sample: f64,
    /// Series created since the store was created (churn).
    pub series_created: u64,
    /// Live SST bytes per RocksDB column family, summed over shards.
    pub sst_bytes_by_cf: Vec<(&'static str, u64)>,
}

struct Inner {
    dir: PathBuf,
    opts: TsdbOptions,
    clock: Arc<dyn Clock>,
    shards: Vec<Arc<Shard>>,
    closed: AtomicBool,
    stop: Arc<(Mutex<bool>, Condvar)>,
}

/// The durable store. Cheap to share: wrap in an `Arc` (as [`Tsdb::open`]
/// does).
pub struct Tsdb {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Tsdb {
    /// Repairs the shard logs of the store in `dir` (see
    /// [`crate::replicate::repair`]), shard by shard; the store must not be
    /// open. Returns each shard's log directory with what was found there.
    pub fn repair_logs(
        dir: &Path,
        dry_run: bool,
    ) -> Result<Vec<(PathBuf, crate::replicate::RepairReport)>, StorageError> {
        let mut shard_dirs: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| StorageError::Io(format!("listing {}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("shard-"))
            })
            .collect();
        shard_dirs.sort();
        // The local log, and a Raft group's log (same segment format).
        shard_dirs
            .into_iter()
            .flat_map(|d| [d.join("log"), d.join("raft").join("log")])
            .filter(|log| log.is_dir())
            .map(|log| crate::replicate::repair(&log, dry_run).map(|r| (log, r)))
            .collect()
    }

    /// Opens (or creates) the store in `dir` with the system clock.
    pub fn open(dir: &Path, opts: TsdbOptions) -> Result<Arc<Tsdb>, StorageError> {
        Self::open_with_clock(dir, opts, Arc::new(SystemClock))
    }

    /// Opens the store with an injected clock (tests, simulations).
    pub fn open_with_clock(
        dir: &Path,
        opts: TsdbOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Tsdb>, StorageError> {
        Self::open_inner(dir, opts, clock, true, &LocalReplicas)
    }

    /// Opens the store with each shard's replicator from `replicas` (a Raft
    /// group per shard, say) instead of the local log.
    pub fn open_with_replicas(
        dir: &Path,
        opts: TsdbOptions,
        clock: Arc<dyn Clock>,
        background: bool,
        replicas: &dyn ReplicaFactory,
    ) -> Result<Arc<Tsdb>, StorageError> {
        Self::open_inner(dir, opts, clock, background, replicas)
    }

    /// Opens without background threads: nothing is checkpointed,
    /// compacted or expired unless [`Tsdb::checkpoint`], [`Tsdb::compact`]
    /// or [`Tsdb::tick`] are called. For tests that control every step.
    pub fn open_manual(
        dir: &Path,
        opts: TsdbOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Tsdb>, StorageError> {
        Self::open_inner(dir, opts, clock, false, &LocalReplicas)
    }

    fn open_inner(
        dir: &Path,
        opts: TsdbOptions,
        clock: Arc<dyn Clock>,
        background: bool,
        replicas: &dyn ReplicaFactory,
    ) -> Result<Arc<Tsdb>, StorageError> {
        opts.validate()?;
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Io(format!("creating {}: {e}", dir.display())))?;
        let cfg = Arc::new(Config {
            chunk_max_samples: opts.chunk_max_samples,
            window_ms: opts.window_ms(),
            partition_ms: opts.partition_ms(),
            ooo_ms: opts.ooo_ms(),
            retention_ms: opts.retention_ms(),
            idle_ms: opts.head_idle_timeout.as_millis_i64(),
            max_series: opts.max_series_per_tenant,
            max_exemplars: opts.max_exemplars,
        });
        let cache = Cache::new_lru_cache(opts.block_cache_bytes.max(1 << 20));
        let mut shards = Vec::with_capacity(opts.shards as usize);
        for id in (0..opts.shards).filter(|&id| replicas.holds(id)) {
            let shard = Shard::open(
                &dir.join(format!("shard-{id:04}")),
                id,
                cfg.clone(),
                ShardOpenOptions {
                    shard_count: opts.shards,
                    write_buffer_bytes: opts.write_buffer_bytes,
                    cache: &cache,
                    log: LocalLogOptions {
                        segment_bytes: opts.log_segment_bytes,
                        fsync: opts.fsync,
                    },
                },
                replicas,
            )?;
            shards.push(Arc::new(shard));
        }
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            opts,
            clock,
            shards,
            closed: AtomicBool::new(false),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
        });
        let tsdb = Arc::new(Tsdb {
            inner: inner.clone(),
            threads: Mutex::new(Vec::new()),
        });
        if background {
            let mut threads = tsdb.threads.lock();
            for shard in &inner.shards {
                let shard = shard.clone();
                let stop = inner.stop.clone();
                let clock = inner.clock.clone();
                let opts = inner.opts.clone();
                let handle = std::thread::Builder::new()
                    .name(format!("fenghuo-shard-{}", shard.id))
                    .spawn(move || maintenance_loop(&shard, &stop, clock.as_ref(), &opts))
                    .map_err(|e| StorageError::Io(format!("spawning maintenance thread: {e}")))?;
                threads.push(handle);
            }
        }
        Ok(tsdb)
    }

    /// The replica of shard `id` this node holds, if it holds one (shards
    /// are kept sorted by id).
    fn shard(&self, id: u32) -> Option<&Arc<Shard>> {
        let shards = &self.inner.shards;
        shards
            .binary_search_by_key(&id, |s| s.id)
            .ok()
            .map(|i| &shards[i])
    }

    /// Shard `id`'s state machine (snapshots, digests), if it exists.
    pub fn shard_machine(&self, id: u32) -> Option<Arc<ShardMachine>> {
        self.shard(id).map(|s| s.machine.clone())
    }

    /// Whether shard `id` takes proposals here (see
    /// [`crate::replicate::Replicator::leads`]); `None` if there is no such shard.
    pub fn shard_leads(&self, id: u32) -> Option<bool> {
        self.shard(id).map(|s| s.replica.leads())
    }

    /// Every shard's state digest (see [`ShardMachine::digest`]).
    pub fn digests(&self) -> Result<Vec<StateDigest>, StorageError> {
        self.inner.shards.iter().map(|s| s.machine.digest()).collect()
    }

    pub fn options(&self) -> &TsdbOptions {
        &self.inner.opts
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn check_open(&self) -> Result<(), StorageError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(StorageError::ShuttingDown);
        }
        Ok(())
    }

    /// Appends a maintenance entry (idle-series eviction, retention floor)
    /// stamped with the clock's current time to every shard's log.
    pub fn tick(&self) -> Result<(), StorageError> {
        self.check_open()?;
        let now_ms = self.inner.clock.now_ms();
        let entry = LogEntry::Tick { now_ms };
        let bytes = entry.encode();
        for s in &self.inner.shards {
            s.append(bytes.clone(), entry.clone())?;
        }
        Ok(())
    }

    /// Checkpoints every shard now (persists the head, truncates the logs,
    /// applies pending retention deletions).
    pub fn checkpoint(&self) -> Result<Vec<CheckpointStats>, StorageError> {
        self.inner.shards.iter().map(|s| s.checkpoint()).collect()
    }

    /// Compacts sealed time windows (all dirty windows with `force`, plus a
    /// full RocksDB compaction of the chunk column family).
    pub fn compact(&self, force: bool) -> Result<CompactStats, StorageError> {
        let mut total = CompactStats::default();
        for s in &self.inner.shards {
            let c = s.core().compact(force)?;
            total.windows += c.windows;
            total.chunks_in += c.chunks_in;
            total.chunks_out += c.chunks_out;
            total.bytes_in += c.bytes_in;
            total.bytes_out += c.bytes_out;
        }
        Ok(total)
    }

    /// Bytes of every file under the data directory.
    pub fn disk_usage_bytes(&self) -> u64 {
        dir_size(&self.inner.dir)
    }

    pub fn stats(&self) -> TsdbStats {
        let mut t = TsdbStats {
            shards: self.inner.shards.len() as u32,
            disk_bytes: self.disk_usage_bytes(),
            ..Default::default()
        };
        for s in &self.inner.shards {
            let core = s.core();
            let x = core.stats();
            t.active_series += x.active_series;
            t.head_series += x.head_series;
            t.head_chunks += x.head_chunks;
            t.head_memory_bytes += x.head_memory_bytes;
            t.chunk_bytes += core.disk.cf_sst_bytes(keys::CF_CHUNKS);
            t.log_bytes += s.replica.log_bytes();
            t.persisted_samples += core.persisted_samples();
            t.series_created += core.state.read().next_sid.saturating_sub(1);
            for cf in keys::ALL_CFS {
                let n = core.disk.cf_sst_bytes(cf);
                match t.sst_bytes_by_cf.iter_mut().find(|(name, _)| *name == cf) {
                    Some((_, v)) => *v += n,
                    None => t.sst_bytes_by_cf.push((cf, n)),
                }
            }
        }
        if t.persisted_samples > 0 {
            t.bytes_per_sample = t.chunk_bytes as f64 / t.persisted_samples as f64;
        }
        t
    }

    /// Stops background work, checkpoints everything and truncates the logs.
    /// Appends fail with [`StorageError::ShuttingDown`] afterwards.
    pub fn close(&self) -> Result<(), StorageError> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        {
            let (lock, cv) = &*self.inner.stop;
            *lock.lock() = true;
            cv.notify_all();
        }
        for h in self.threads.lock().drain(..) {
            let _ = h.join();
        }
        let mut result = Ok(());
        for s in &self.inner.shards {
            if !s.is_failed() {
                match s.core().checkpoint_last() {
                    // Everything is durable now; merging the windows the run
                    // left unmerged only makes the stopped store denser (a
                    // failure here loses nothing, the chunks stay as they are).
                    // The log is released after that, so a snapshot taken for
                    // it holds the merged files, not the ones they replace.
                    Ok(stats) => {
                        if let Err(e) = s.core().compact_on_close() {
                            tracing::warn!(shard = s.id, error = %e, "Compaction at close failed.");
                        }
                        if let Err(e) = s.replica.persisted_upto(stats.applied_index) {
                            tracing::warn!(shard = s.id, error = %e,
                                "Releasing the log at close failed; the next start replays it.");
                        }
                    }
                    Err(e) => {
                        tracing::error!(shard = s.id, error = %e,
                            "Final checkpoint failed; the log keeps the data.");
                        result = Err(e);
                    }
                }
            }
            if let Err(e) = s.replica.close() {
                tracing::error!(shard = s.id, error = %e, "Stopping the shard's replicator failed.");
            }
        }
        let stats = self.stats();
        tracing::info!(
            dir = %self.inner.dir.display(),
            disk_bytes = stats.disk_bytes,
            persisted_samples = stats.persisted_samples,
            sst_bytes_by_cf = ?stats.sst_bytes_by_cf,
            "Storage closed."
        );
        result
    }

    fn append_batch(
        &self,
        tenant: &TenantId,
        batch: BorrowedBatch<'_>,
    ) -> Result<AppendOutcome, StorageError> {
        let BorrowedBatch {
            pairs,
            series,
            metadata,
        } = batch;
        let mut out = AppendOutcome::default();
        for part in placement::split(tenant.as_str(), &pairs, series, metadata, self.shard_count()) {
            out.merge(self.append_shard(tenant, &pairs, part)?);
        }
        Ok(out)
    }
}

impl ShardedAppender for Tsdb {
    fn shard_count(&self) -> u32 {
        self.inner.opts.shards
    }

    fn append_shard(
        &self,
        tenant: &TenantId,
        pairs: &[(&str, &str)],
        part: placement::ShardPart,
    ) -> Result<AppendOutcome, StorageError> {
        self.check_open()?;
        let shard = self.shard(part.shard).ok_or_else(|| {
            if part.shard < self.inner.opts.shards {
                // A part routed to a node that holds no replica of it.
                StorageError::Io(format!("shard {} is not held by this node", part.shard))
            } else {
                StorageError::InvalidConfig(format!(
                    "shard {} of a store with {} shards",
                    part.shard, self.inner.opts.shards
                ))
            }
        })?;
        let now_ms = self.inner.clock.now_ms();
        append_part(shard, tenant, now_ms, pairs, part.series, part.metadata, None)
    }
}

/// Proposes one shard's part of a batch: series active in the head go by
/// reference (`refs`, resolved now unless given) and without owned labels,
/// the rest with labels. Series whose reference went stale before apply
/// (evicted in between) are proposed again with labels.
fn append_part(
    shard: &Shard,
    tenant: &TenantId,
    now_ms: i64,
    pairs: &[(&str, &str)],
    series: Vec<BorrowedSeries>,
    metadata: Vec<MetricMetadata>,
    refs: Option<Vec<Option<u64>>>,
) -> Result<AppendOutcome, StorageError> {
    let refs = refs.unwrap_or_else(|| {
        shard
            .core()
            .state
            .read()
            .resolve_refs(tenant.as_str(), series.iter().map(|s| labels_in(pairs, s)))
    });
    // Kept to give stale references their labels back.
    let mut ranges = Vec::with_capacity(series.len());
    let series = series
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let labels = match refs.get(i).copied().flatten() {
                Some(_) => Labels::empty(),
                None => labels_in(pairs, &s).to_labels(),
            };
            ranges.push(s.labels.clone());
            s.into_write(labels)
        })
        .collect();
    let batch = WriteBatch { series, metadata };
    let bytes = encode_write_entry(tenant, now_ms, &batch, &refs);
    let entry = LogEntry::Write {
        tenant: tenant.clone(),
        now_ms,
        batch,
        refs,
    };
    let applied = shard.append(bytes, entry)?;
    let mut out = applied.outcome;
    if !applied.stale.is_empty() {
        let series = applied
            .stale
            .into_iter()
            .map(|(i, mut sw)| {
                let range = ranges[i].start as usize..ranges[i].end as usize;
                sw.labels = LabelsRef::from_sorted_unchecked(&pairs[range]).to_labels();
                sw
            })
            .collect();
        let retry = WriteBatch {
            series,
            metadata: Vec::new(),
        };
        let bytes = encode_write_entry(tenant, now_ms, &retry, &[]);
        let entry = LogEntry::Write {
            tenant: tenant.clone(),
            now_ms,
            batch: retry,
            refs: Vec::new(),
        };
        out.merge(shard.append(bytes, entry)?.outcome);
    }
    Ok(out)
}

impl Drop for Tsdb {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "Closing storage on drop failed.");
        }
    }
}

impl ShardCore {
    fn persisted_samples(&self) -> u64 {
        let mut total = 0u64;
        let prefix = keys::META_PARTITION_SAMPLES;
        let _ = self
            .disk
            .scan(keys::CF_META, prefix, &keys::prefix_end(prefix), |_, v| {
                if let Ok(a) = <[u8; 8]>::try_from(v) {
                    total += u64::from_be_bytes(a);
                }
                Ok(true)
            });
        total
    }
}

/// Bytes of the files under `p`, each counted once however many hard links
/// it has (a snapshot hard-links the files of the database it copies).
fn dir_size(p: &Path) -> u64 {
    fn walk(p: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let Ok(rd) = std::fs::read_dir(p) else { return 0 };
        let mut total = 0;
        for e in rd.filter_map(Result::ok) {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += walk(&e.path(), seen),
                Ok(m) if seen.insert((m.dev(), m.ino())) => total += m.len(),
                _ => {}
            }
        }
        total
    }
    walk(p, &mut std::collections::HashSet::new())
}

fn maintenance_loop(shard: &Shard, stop: &(Mutex<bool>, Condvar), clock: &dyn Clock, opts: &TsdbOptions) {
    let checkpoint_every = opts.checkpoint_interval.0.max(Duration::from_millis(10));
    let compact_every = opts.compaction_interval.0.max(Duration::from_millis(10));
    let mut next_checkpoint = Instant::now() + checkpoint_every;
    let mut next_compaction = Instant::now() + compact_every;
    // Reported from the start, not only after the first checkpoint: a restarted node already
    // holds its data.
    let mut reported_disk = dir_size(&shard.dir) as i64;
    metrics::DISK_BYTES.add(reported_disk);
    loop {
        {
            let (lock, cv) = stop;
            let mut stopped = lock.lock();
            let due = next_checkpoint.min(next_compaction);
            while !*stopped && Instant::now() < due {
                cv.wait_until(&mut stopped, due);
            }
            if *stopped {
                break;
            }
        }
        let now = Instant::now();
        if now >= next_checkpoint {
            let tick = LogEntry::Tick {
                now_ms: clock.now_ms(),
            };
            if let Err(e) = shard.append(tick.encode(), tick) {
                tracing::error!(shard = shard.id, error = %e, "Appending a maintenance tick failed.");
            }
            if let Err(e) = shard.checkpoint() {
                tracing::error!(shard = shard.id, error = %e, "Checkpoint failed.");
            }
            let disk = dir_size(&shard.dir) as i64;
            metrics::DISK_BYTES.add(disk - reported_disk);
            reported_disk = disk;
            next_checkpoint = Instant::now() + checkpoint_every;
        }
        if now >= next_compaction {
            if let Err(e) = shard.core().compact(false) {
                tracing::error!(shard = shard.id, error = %e, "Compaction failed.");
            }
            next_compaction = Instant::now() + compact_every;
        }
    }
    metrics::DISK_BYTES.sub(reported_disk);
}

impl Appender for Tsdb {
    fn append(&self, tenant: &TenantId, mut batch: WriteBatch) -> Result<AppendOutcome, StorageError> {
        self.append_batch(tenant, BorrowedBatch::from_write_batch(&mut batch))
    }

    fn append_borrowed(
        &self,
        tenant: &TenantId,
        batch: BorrowedBatch<'_>,
    ) -> Result<AppendOutcome, StorageError> {
        self.append_batch(tenant, batch)
    }
}

impl Queryable for Tsdb {
    fn querier(&self, tenant: &TenantId) -> Result<Arc<dyn Querier>, StorageError> {
        self.check_open()?;
        Ok(Arc::new(TsdbQuerier {
            inner: self.inner.clone(),
            tenant: tenant.clone(),
        }))
    }
}

struct TsdbQuerier {
    inner: Arc<Inner>,
    tenant: TenantId,
}

impl Querier for TsdbQuerier {
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<Vec<Series>, StorageError> {
        let mut budget = hints.max_samples;
        let limit = hints.max_samples.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for s in self.inner.shards.iter().map(|s| s.core()) {
            for d in s.select(
                self.tenant.as_str(),
                matchers,
                hints.start,
                hints.end,
                &mut budget,
                limit,
            )? {
                out.push(Series {
                    labels: d.labels,
                    floats: d.floats,
                    histograms: d.histograms,
                });
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    fn label_names(&self, start: i64, end: i64, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut out = BTreeSet::new();
        for s in self.inner.shards.iter().map(|s| s.core()) {
            s.label_names(self.tenant.as_str(), matchers, start, end, &mut out)?;
        }
        Ok(out.into_iter().collect())
    }

    fn label_values(
        &self,
        name: &str,
        start: i64,
        end: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        let mut out = BTreeSet::new();
        for s in self.inner.shards.iter().map(|s| s.core()) {
            s.label_values(self.tenant.as_str(), name, matchers, start, end, &mut out)?;
        }
        Ok(out.into_iter().collect())
    }

    fn series_labels(&self, start: i64, end: i64, matchers: &[Matcher]) -> Result<Vec<Labels>, StorageError> {
        let mut out = Vec::new();
        for s in self.inner.shards.iter().map(|s| s.core()) {
            out.extend(s.series_labels(self.tenant.as_str(), matchers, start, end)?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn metadata(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>, StorageError> {
        let mut out = Vec::new();
        for s in self.inner.shards.iter().map(|s| s.core()) {
            s.metadata(self.tenant.as_str(), metric, &mut out);
        }
        out.sort_by(|a, b| a.metric_family.cmp(&b.metric_family));
        Ok(out)
    }

    fn exemplars(
        &self,
        start: i64,
        end: i64,
        matcher_sets: &[Vec<Matcher>],
    ) -> Result<Vec<(Labels, Vec<Exemplar>)>, StorageError> {
        let mut out = Vec::new();
        for s in self.inner.shards.iter().map(|s| s.core()) {
            s.exemplars(self.tenant.as_str(), start, end, matcher_sets, &mut out)?;
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn tsdb_status(&self, limit: usize) -> Result<TsdbStatus, StorageError> {
        let mut total = status::StatusParts {
            min_time: i64::MAX,
            max_time: i64::MIN,
            ..Default::default()
        };
        let merge = |into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>| {
            for (k, v) in from {
                *into.entry(k).or_default() += v;
            }
        };
        for s in self.inner.shards.iter().map(|s| s.core()) {
            let p = s.status_parts(self.tenant.as_str());
            total.num_series += p.num_series;
            total.num_label_pairs += p.num_label_pairs;
            total.chunk_count += p.chunk_count;
            total.min_time = total.min_time.min(p.min_time);
            total.max_time = total.max_time.max(p.max_time);
            merge(&mut total.by_metric, p.by_metric);
            merge(&mut total.values_by_name, p.values_by_name);
            merge(&mut total.bytes_by_name, p.bytes_by_name);
            merge(&mut total.series_by_pair, p.series_by_pair);
        }
        let (min_time, max_time) = if total.min_time > total.max_time {
            (0, 0)
        } else {
            (total.min_time, total.max_time)
        };
        Ok(TsdbStatus {
            num_series: total.num_series,
            num_label_pairs: total.num_label_pairs,
            chunk_count: total.chunk_count,
            min_time,
            max_time,
            series_count_by_metric_name: status::top(total.by_metric, limit),
            label_value_count_by_label_name: status::top(total.values_by_name, limit),
            memory_in_bytes_by_label_name: status::top(total.bytes_by_name, limit),
            series_count_by_label_value_pair: status::top(total.series_by_pair, limit),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::copy_dir;

    fn sids(db: &Tsdb) -> Vec<(Labels, u64)> {
        let core = db.inner.shards[0].core();
        let st = core.state.read();
        let mut v: Vec<_> = st
            .series
            .values()
            .map(|s| (head::resolve_labels(&st.symbols, &s.labels), s.sid))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn crash_between_record_and_state_batches_replays_to_the_same_ids() {
        use crate::testing::{T0, batch, series, tenant};
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let db = Tsdb::open_manual(dir.path(), TsdbOptions::default(), clock.clone()).unwrap();
        let t = tenant("a");
        db.append(
            &t,
            batch(vec![
                series(&[("__name__", "x")], &[(T0, 1.0)]),
                series(&[("__name__", "y")], &[(T0, 2.0)]),
            ]),
        )
        .unwrap();
        db.inner.shards[0]
            .core()
            .fail_state_batch
            .store(true, Ordering::SeqCst);
        assert!(db.checkpoint().is_err());
        // RocksDB may persist the partial writes at any time (a full
        // memtable); make it happen now.
        db.inner.shards[0].core().disk.flush().unwrap();
        db.inner.shards[0]
            .core()
            .fail_state_batch
            .store(false, Ordering::SeqCst);
        db.append(
            &t,
            batch(vec![
                series(&[("__name__", "x")], &[(T0 + 1000, 3.0)]),
                series(&[("__name__", "z")], &[(T0, 4.0)]),
            ]),
        )
        .unwrap();
        let image = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), image.path());
        let restored = Tsdb::open_manual(image.path(), TsdbOptions::default(), clock).unwrap();
        assert_eq!(sids(&restored), sids(&db), "same series ids after replay");
        let q = |d: &Tsdb| {
            d.querier(&t)
                .unwrap()
                .select(
                    &[Matcher::new(crate::model::MatchOp::Regex, "__name__", ".+").unwrap()],
                    &SelectHints {
                        start: T0 - 1,
                        end: T0 + 10_000,
                        max_samples: None,
                    },
                )
                .unwrap()
        };
        assert_eq!(q(&restored), q(&db));
        // And it keeps working: a checkpoint, then more data.
        restored.checkpoint().unwrap();
        restored
            .append(&t, batch(vec![series(&[("__name__", "w")], &[(T0, 5.0)])]))
            .unwrap();
        assert_eq!(q(&restored).len(), 4);
    }

    #[test]
    fn active_series_are_logged_by_reference_and_stale_references_are_retried() {
        use crate::testing::{T0, batch, series, tenant};
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let db = Tsdb::open_manual(dir.path(), TsdbOptions::default(), clock.clone()).unwrap();
        let t = tenant("a");
        let shard = db.inner.shards[0].clone();
        let many = |ts: i64| {
            batch(
                (0..50)
                    .map(|i| {
                        let inst = format!("host-{i}");
                        series(
                            &[("__name__", "node_load1"), ("instance", &inst), ("job", "node")],
                            &[(ts, 1.0)],
                        )
                    })
                    .collect(),
            )
        };
        let before = shard.replica.log_bytes();
        db.append(&t, many(T0)).unwrap();
        let first = shard.replica.log_bytes() - before;
        db.append(&t, many(T0 + 15_000)).unwrap();
        let second = shard.replica.log_bytes() - before - first;
        assert!(
            second * 4 < first * 3,
            "by reference: {second} bytes, with labels: {first} bytes"
        );

        // A reference that went stale (the series was evicted in between)
        // is proposed again with labels.
        let sid = sids(&db)[0].1;
        clock.advance(2 * 3_600_000);
        db.tick().unwrap();
        let x = series(
            &[
                ("__name__", "node_load1"),
                ("instance", "host-0"),
                ("job", "node"),
            ],
            &[(T0 + HOUR, 2.0)],
        );
        let mut retry = batch(vec![x]);
        let b = BorrowedBatch::from_write_batch(&mut retry);
        let out = append_part(
            &shard,
            &t,
            clock.now_ms(),
            &b.pairs,
            b.series,
            b.metadata,
            Some(vec![Some(sid)]),
        )
        .unwrap();
        assert_eq!(out.samples_written, 1);
        assert_eq!(db.stats().active_series, 1);
        let image = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), image.path());
        let restored = Tsdb::open_manual(image.path(), TsdbOptions::default(), clock).unwrap();
        let q = |d: &Tsdb| {
            d.querier(&t)
                .unwrap()
                .select(
                    &[Matcher::equal("instance", "host-0")],
                    &SelectHints {
                        start: T0 - 1,
                        end: T0 + 2 * HOUR,
                        max_samples: None,
                    },
                )
                .unwrap()
        };
        assert_eq!(q(&restored), q(&db));
        assert_eq!(q(&db)[0].floats.len(), 3);
    }

    const HOUR: i64 = 3_600_000;
}
