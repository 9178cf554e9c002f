//! One shard: its state machine ([`ShardMachine`], whose current
//! [`ShardCore`] is RocksDB plus the in-memory state) and the replicator
//! that feeds it entries (`encode -> replicate (durable) -> apply in index
//! order`).
//!
//! Recovery on open: load the persisted state (applied index, replicator
//! position, head snapshots, metadata, exemplars) from RocksDB; the
//! replicator then replays every log entry after the applied index through
//! the same `apply` the write path uses.
//!
//! A replica that fell too far behind installs a snapshot instead
//! ([`super::snapshot`]): a new core is opened on the received RocksDB
//! checkpoint and replaces the current one; readers holding the old core
//! finish on it, and its directory is deleted when the last one lets go.
//! The file `CURRENT_DB` names the directory in use (absent: `db`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};
use rocksdb::Cache;

use super::apply::{Applied, Config, ShardState};
use super::checkpoint::CheckpointStats;
use super::disk::Disk;
use super::exemplars::StoredExemplar;
use super::head::{MemSeries, intern_labels};
use super::keys;
use super::replicas::{ReplicaContext, ReplicaFactory};
use crate::chunk::histogram::HistogramAppender;
use crate::chunk::xor::XorAppender;
use crate::error::StorageError;
use crate::replicate::{LocalLogOptions, LogEntry, Replicator, StateMachine};

/// Names the RocksDB directory in use when it is not `db`.
const CURRENT_DB: &str = "CURRENT_DB";

/// One generation of a shard's state: a RocksDB instance and what applying
/// the log built on it.
pub struct ShardCore {
    pub id: u32,
    pub disk: Disk,
    pub state: RwLock<ShardState>,
    pub cfg: Arc<Config>,
    /// Serialises checkpoints, compactions, retention and snapshots (the
    /// background thread and explicit calls).
    pub maintenance: Mutex<()>,
    /// Set once a snapshot replaced this core: it must not be checkpointed
    /// or applied to any more.
    pub(super) retired: AtomicBool,
    /// Test hook: fail checkpoints right before their state batch.
    #[cfg(test)]
    pub fail_state_batch: std::sync::atomic::AtomicBool,
    /// Declared after `disk`, so the database is closed before its
    /// directory goes.
    pub(super) remove_on_drop: RemoveOnDrop,
}

/// Deletes a directory when dropped, if asked to.
#[derive(Default)]
pub(super) struct RemoveOnDrop(pub(super) Mutex<Option<PathBuf>>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(dir) = self.0.get_mut().take()
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            tracing::warn!(dir = %dir.display(), error = %e, "Removing a replaced shard database failed.");
        }
    }
}

impl ShardCore {
    pub(super) fn check_live(&self) -> Result<(), StorageError> {
        if self.retired.load(Ordering::SeqCst) {
            return Err(StorageError::Io(format!(
                "shard {} was replaced by a snapshot while this operation ran",
                self.id
            )));
        }
        Ok(())
    }
}

/// A shard's state machine: the current core, replaced whole when a
/// snapshot is installed.
pub struct ShardMachine {
    pub id: u32,
    pub dir: PathBuf,
    pub cfg: Arc<Config>,
    core: RwLock<Arc<ShardCore>>,
    /// What opening another core needs.
    pub(super) shard_count: u32,
    pub(super) write_buffer_bytes: usize,
    pub(super) cache: Cache,
}

impl ShardMachine {
    /// The current core. Hold it for one operation, not longer: a snapshot
    /// install waits for nobody, but the replaced database stays open
    /// until the last holder lets go.
    pub(crate) fn core(&self) -> Arc<ShardCore> {
        self.core.read().clone()
    }

    /// The applied index and the replicator's position there.
    pub fn applied_position(&self) -> (u64, Vec<u8>) {
        let core = self.core();
        let st = core.state.read();
        (st.applied_index, st.position.clone())
    }

    /// Applies several entries as the one log entry at `index` (a batch a
    /// replicator coalesced from concurrent proposals), under one lock;
    /// returns their outputs in order. No entries: only the index (and
    /// position) advance.
    pub fn apply_batch(
        &self,
        index: u64,
        entries: Vec<LogEntry>,
        position: Option<&[u8]>,
    ) -> Result<Vec<Applied>, StorageError> {
        let core = self.core();
        core.check_live()?;
        let mut st = core.state.write();
        if entries.is_empty() {
            st.apply(&core.disk, index, None, position)?;
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(entries.len());
        for (k, e) in entries.into_iter().enumerate() {
            out.push(st.apply(&core.disk, index, Some(e), if k == 0 { position } else { None })?);
        }
        Ok(out)
    }

    /// Persists the state now (see [`ShardCore::checkpoint`]).
    pub fn checkpoint(&self) -> Result<CheckpointStats, StorageError> {
        self.core().checkpoint()
    }

    /// Replaces the replicator's position without applying anything; the
    /// next checkpoint persists it. Only for moving a store to another
    /// replicator (a local log's store to Raft), never while one runs.
    pub fn set_position(&self, position: &[u8]) {
        self.core().state.write().position = position.to_vec();
    }

    /// Opens the core in `db_dir` (which must belong to this shard).
    pub(super) fn open_core(&self, db_dir: &Path) -> Result<ShardCore, StorageError> {
        open_core(
            db_dir,
            self.id,
            self.shard_count,
            &self.cfg,
            self.write_buffer_bytes,
            &self.cache,
        )
    }

    /// Makes `core` (opened on `db_dir`) the current one: records it in
    /// `CURRENT_DB` (durably, so a restart opens it), swaps it in and
    /// retires the old core, whose directory is deleted once unused.
    pub(super) fn replace_core(&self, db_dir: &Path, core: ShardCore) -> Result<(), StorageError> {
        let old = self.core();
        let _m = old.maintenance.lock();
        let name = db_dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| StorageError::Io(format!("bad database directory {}", db_dir.display())))?;
        crate::durable::write_durably(&self.dir, CURRENT_DB, name.as_bytes())?;
        old.retired.store(true, Ordering::SeqCst);
        *old.remove_on_drop.0.lock() = Some(db_dir_of(&self.dir, &old_db_name(&old)));
        *self.core.write() = Arc::new(core);
        Ok(())
    }
}

/// The name of the RocksDB directory `core` runs on.
fn old_db_name(core: &ShardCore) -> String {
    core.disk
        .db()
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("db")
        .to_string()
}

fn db_dir_of(shard_dir: &Path, name: &str) -> PathBuf {
    shard_dir.join(name)
}

impl StateMachine for ShardMachine {
    type Output = Applied;

    fn applied_index(&self) -> u64 {
        self.core().state.read().applied_index
    }

    fn apply(
        &self,
        index: u64,
        entry: Option<LogEntry>,
        position: Option<&[u8]>,
    ) -> Result<Applied, StorageError> {
        let core = self.core();
        core.check_live()?;
        core.state.write().apply(&core.disk, index, entry, position)
    }
}

/// One shard: its state machine and its replicator.
pub struct Shard {
    pub id: u32,
    pub dir: PathBuf,
    pub machine: Arc<ShardMachine>,
    pub replica: Box<dyn Replicator<Applied>>,
}

/// Options of a shard beyond the derived [`Config`].
pub struct ShardOpenOptions<'a> {
    pub shard_count: u32,
    pub write_buffer_bytes: usize,
    pub cache: &'a Cache,
    pub log: LocalLogOptions,
}

impl ShardMachine {
    /// Opens the shard's current core in `dir`, deleting leftovers of
    /// snapshot installs that did not complete.
    pub fn open(
        dir: &Path,
        id: u32,
        cfg: Arc<Config>,
        o: &ShardOpenOptions<'_>,
    ) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Io(format!("creating {}: {e}", dir.display())))?;
        let current = match std::fs::read_to_string(dir.join(CURRENT_DB)) {
            Ok(name) => name.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "db".to_string(),
            Err(e) => {
                return Err(StorageError::Io(format!(
                    "reading {}: {e}",
                    dir.join(CURRENT_DB).display()
                )));
            }
        };
        remove_stale_databases(dir, &current);
        let core = open_core(
            &db_dir_of(dir, &current),
            id,
            o.shard_count,
            &cfg,
            o.write_buffer_bytes,
            o.cache,
        )?;
        Ok(Self {
            id,
            dir: dir.to_path_buf(),
            cfg,
            core: RwLock::new(Arc::new(core)),
            shard_count: o.shard_count,
            write_buffer_bytes: o.write_buffer_bytes,
            cache: o.cache.clone(),
        })
    }
}

impl Shard {
    pub fn open(
        dir: &Path,
        id: u32,
        cfg: Arc<Config>,
        o: ShardOpenOptions<'_>,
        replicas: &dyn ReplicaFactory,
    ) -> Result<Self, StorageError> {
        let machine = Arc::new(ShardMachine::open(dir, id, cfg, &o)?);
        let persisted = machine.applied_index();
        let replica = replicas.open(ReplicaContext {
            shard: id,
            dir,
            machine: machine.clone(),
            log: o.log,
        })?;
        tracing::info!(
            shard = id,
            applied_index = persisted,
            replayed = machine.applied_index() - persisted,
            series = machine.core().state.read().series.len(),
            "Opened shard."
        );
        Ok(Self {
            id,
            dir: dir.to_path_buf(),
            machine,
            replica,
        })
    }

    /// The current core (see [`ShardMachine::core`]).
    pub(crate) fn core(&self) -> Arc<ShardCore> {
        self.machine.core()
    }

    /// Commits an encoded entry and returns what applying it did. `entry`
    /// is the decoded form of `bytes`.
    pub fn append(&self, bytes: Vec<u8>, entry: LogEntry) -> Result<Applied, StorageError> {
        self.replica.propose(bytes, entry)
    }

    pub fn is_failed(&self) -> bool {
        self.replica.failure().is_some()
    }

    /// Persists the state (see [`ShardCore::checkpoint`]) and lets the log
    /// drop what it covers.
    pub fn checkpoint(&self) -> Result<CheckpointStats, StorageError> {
        let stats = self.core().checkpoint()?;
        self.replica.persisted_upto(stats.applied_index)?;
        Ok(stats)
    }
}

fn open_core(
    db_dir: &Path,
    id: u32,
    shard_count: u32,
    cfg: &Arc<Config>,
    write_buffer_bytes: usize,
    cache: &Cache,
) -> Result<ShardCore, StorageError> {
    let disk = Disk::open(db_dir, write_buffer_bytes, cache)?;
    check_identity(&disk, id, shard_count)?;
    let mut state = ShardState::new(cfg.clone());
    load_state(&disk, &mut state)?;
    Ok(ShardCore {
        id,
        disk,
        state: RwLock::new(state),
        cfg: cfg.clone(),
        maintenance: Mutex::new(()),
        retired: AtomicBool::new(false),
        #[cfg(test)]
        fail_state_batch: std::sync::atomic::AtomicBool::new(false),
        remove_on_drop: RemoveOnDrop::default(),
    })
}

/// Deletes RocksDB directories of this shard other than `current`: an
/// older generation a snapshot replaced, or a received snapshot that was
/// never switched to.
fn remove_stale_databases(dir: &Path, current: &str) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        let stale =
            (name == "db" || name.starts_with("db-") || name.starts_with("incoming-")) && name != current;
        if stale && e.path().is_dir() {
            tracing::info!(dir = %e.path().display(), "Removing a shard database that is not in use.");
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                tracing::warn!(dir = %e.path().display(), error = %err, "Removing it failed.");
            }
        }
    }
}

fn check_identity(disk: &Disk, id: u32, count: u32) -> Result<(), StorageError> {
    let mut want = Vec::with_capacity(8);
    want.extend_from_slice(&id.to_be_bytes());
    want.extend_from_slice(&count.to_be_bytes());
    match (
        disk.get(keys::CF_META, keys::META_FORMAT)?,
        disk.get(keys::CF_META, keys::META_SHARD)?,
    ) {
        (None, None) => {
            let mut b = rocksdb::WriteBatch::default();
            let cf = disk.cf(keys::CF_META)?;
            b.put_cf(cf, keys::META_FORMAT, [keys::FORMAT_VERSION]);
            b.put_cf(cf, keys::META_SHARD, &want);
            disk.write(b)?;
            disk.flush()
        }
        (Some(f), Some(s)) => {
            if f.as_slice() != [keys::FORMAT_VERSION] {
                return Err(StorageError::Corrupt {
                    what: "shard",
                    detail: format!(
                        "unsupported format version {f:?} (this build reads {})",
                        keys::FORMAT_VERSION
                    ),
                });
            }
            if s != want {
                return Err(StorageError::InvalidConfig(format!(
                    "shard directory belongs to a store with a different shard layout \
                     (stored {s:?}, configured shard {id} of {count}); the shard count cannot change"
                )));
            }
            Ok(())
        }
        _ => Err(StorageError::Corrupt {
            what: "shard",
            detail: "metadata is incomplete".into(),
        }),
    }
}

/// Loads everything a checkpoint persisted.
fn load_state(disk: &Disk, st: &mut ShardState) -> Result<(), StorageError> {
    st.applied_index = disk.get_meta_u64(keys::META_APPLIED)?.unwrap_or(0);
    st.position = disk.get(keys::CF_META, keys::META_POSITION)?.unwrap_or_default();
    st.next_sid = disk.get_meta_u64(keys::META_NEXT_SID)?.unwrap_or(1).max(1);
    if let Some(v) = disk.get(keys::CF_META, keys::META_RETENTION_DONE)? {
        let a: [u8; 4] = v.as_slice().try_into().map_err(|_| StorageError::Corrupt {
            what: "shard metadata",
            detail: "retention marker".into(),
        })?;
        st.retention_floor = keys::partition_from_bytes(a);
        st.retention_done = st.retention_floor;
    }
    disk.for_each(keys::CF_METADATA, |k, v| {
        let (tenant, m) = keys::decode_metadata(k, v)?;
        let ti = st.tenant(&tenant);
        st.tenants[ti as usize]
            .metadata
            .insert(m.metric_family.clone(), m);
        Ok(())
    })?;
    disk.for_each(keys::CF_EXEMPLARS, |k, v| {
        let (tenant, seq, sid, exemplar) = keys::decode_exemplar(k, v)?;
        let ti = st.tenant(&tenant);
        let ring = &mut st.tenants[ti as usize].exemplars;
        ring.push(StoredExemplar { seq, sid, exemplar });
        ring.persisted_seq = ring.next_seq;
        Ok(())
    })?;
    let heads = load_heads(disk)?;
    for chunk in heads.chunks(4096) {
        let sids: Vec<u64> = chunk.iter().map(|h| h.sid).collect();
        let records = disk.series_records(&sids)?;
        for (h, rec) in chunk.iter().zip(records) {
            let Some((tenant, labels)) = rec else {
                return Err(StorageError::Corrupt {
                    what: "head",
                    detail: format!("series {} is in the head but has no series record", h.sid),
                });
            };
            let ti = st.tenant(&tenant);
            let head = match &h.float {
                Some(b) => Some(XorAppender::from_bytes(b)?),
                None => None,
            };
            let hhead = match &h.histogram {
                Some(b) => Some(Box::new(HistogramAppender::from_bytes(b)?)),
                None => None,
            };
            let hash = st.hasher.hash_labels(&labels);
            let syms = intern_labels(&mut st.symbols, &labels);
            st.next_sid = st.next_sid.max(h.sid + 1);
            st.max_seen_t = st.max_seen_t.max(h.meta.max_t);
            st.insert_series(MemSeries {
                sid: h.sid,
                tenant: ti,
                labels: syms,
                hash,
                max_t: h.meta.max_t,
                last_write: h.meta.last_write,
                flushed_max_t: h.meta.flushed_max_t,
                postings_partition: h.meta.postings_partition,
                flags: 0,
                head_persisted: h.float.as_ref().map_or(0, |b| b.len() as u32),
                hhead_persisted: h.histogram.as_ref().map_or(0, |b| b.len() as u32),
                head,
                hhead,
                pending: Vec::new(),
                ooo: None,
            });
        }
    }
    Ok(())
}

/// A series as the head column family describes it.
struct LoadedHead {
    sid: u64,
    meta: keys::HeadMeta,
    float: Option<Vec<u8>>,
    histogram: Option<Vec<u8>>,
}

/// Reassembles open chunks from their segments: each segment overwrites
/// the chunk from its start offset; the newest chunk (by first timestamp)
/// of each kind wins; the last segment's count is patched into the header.
fn load_heads(disk: &Disk) -> Result<Vec<LoadedHead>, StorageError> {
    struct Acc {
        first_t: i64,
        buf: Vec<u8>,
        count: u16,
    }
    struct Cur {
        sid: u64,
        meta: Option<keys::HeadMeta>,
        float: Option<Acc>,
        histogram: Option<Acc>,
    }
    fn finish(acc: Option<Acc>) -> Option<Vec<u8>> {
        let mut a = acc?;
        if a.buf.len() < 3 {
            return None;
        }
        a.buf[1..3].copy_from_slice(&a.count.to_be_bytes());
        Some(a.buf)
    }
    fn flush(cur: Option<Cur>, out: &mut Vec<LoadedHead>) {
        if let Some(Cur {
            sid,
            meta: Some(meta),
            float,
            histogram,
        }) = cur
        {
            out.push(LoadedHead {
                sid,
                meta,
                float: finish(float),
                histogram: finish(histogram),
            });
        }
    }
    let mut out = Vec::new();
    let mut cur: Option<Cur> = None;
    disk.for_each(keys::CF_HEAD, |k, v| {
        let key = keys::parse_head_key(k)?;
        let sid = match key {
            keys::HeadKey::Meta { sid } | keys::HeadKey::Segment { sid, .. } => sid,
        };
        if cur.as_ref().is_none_or(|c| c.sid != sid) {
            flush(cur.take(), &mut out);
            cur = Some(Cur {
                sid,
                meta: None,
                float: None,
                histogram: None,
            });
        }
        let Some(c) = cur.as_mut() else { return Ok(()) };
        match key {
            keys::HeadKey::Meta { .. } => c.meta = Some(keys::decode_head_meta(v)?),
            keys::HeadKey::Segment {
                kind, first_t, start, ..
            } => {
                let (count, bytes) = keys::decode_head_segment(v)?;
                let slot = if kind == keys::HEAD_FLOAT {
                    &mut c.float
                } else {
                    &mut c.histogram
                };
                if slot.as_ref().is_none_or(|a| a.first_t != first_t) {
                    *slot = Some(Acc {
                        first_t,
                        buf: Vec::new(),
                        count: 0,
                    });
                }
                let Some(acc) = slot.as_mut() else { return Ok(()) };
                let start = start as usize;
                if start > acc.buf.len() {
                    return Err(StorageError::Corrupt {
                        what: "head",
                        detail: format!(
                            "series {sid}: segment at {start} leaves a gap after {}",
                            acc.buf.len()
                        ),
                    });
                }
                acc.buf.truncate(start);
                acc.buf.extend_from_slice(bytes);
                acc.count = count;
            }
        }
        Ok(())
    })?;
    flush(cur.take(), &mut out);
    Ok(out)
}
