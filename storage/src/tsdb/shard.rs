//! One shard: its state machine ([`ShardCore`]: RocksDB and the in-memory
//! state) and the replicator that feeds it entries
//! (`encode -> replicate (durable) -> apply in index order`).
//!
//! Recovery on open: load the persisted state (applied index, head
//! snapshots, metadata, exemplars) from RocksDB; the replicator then
//! replays every log entry after the applied index through the same
//! `apply` the write path uses.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rocksdb::Cache;

use super::apply::{Applied, Config, ShardState};
use super::disk::Disk;
use super::exemplars::StoredExemplar;
use super::head::{MemSeries, intern_labels};
use super::keys;
use crate::chunk::histogram::HistogramAppender;
use crate::chunk::xor::XorAppender;
use crate::error::StorageError;
use crate::replicate::{LocalLog, LocalLogOptions, LocalReplica, LogEntry, Replicator, StateMachine};

/// A shard's state machine: what applying its log builds.
pub struct ShardCore {
    pub id: u32,
    pub dir: PathBuf,
    pub disk: Disk,
    pub state: RwLock<ShardState>,
    pub cfg: Arc<Config>,
    /// Serialises checkpoints, compactions and retention (the background
    /// thread and explicit calls).
    pub maintenance: Mutex<()>,
    /// Test hook: fail checkpoints right before their state batch.
    #[cfg(test)]
    pub fail_state_batch: std::sync::atomic::AtomicBool,
}

impl StateMachine for ShardCore {
    type Output = Applied;

    fn applied_index(&self) -> u64 {
        self.state.read().applied_index
    }

    fn apply(&self, index: u64, entry: LogEntry) -> Result<Applied, StorageError> {
        self.state.write().apply(&self.disk, index, entry)
    }
}

/// One shard: its state machine and its replicator.
pub struct Shard {
    core: Arc<ShardCore>,
    pub replica: Box<dyn Replicator<Applied>>,
}

impl Deref for Shard {
    type Target = ShardCore;

    fn deref(&self) -> &ShardCore {
        &self.core
    }
}

/// Options of a shard beyond the derived [`Config`].
pub struct ShardOpenOptions<'a> {
    pub shard_count: u32,
    pub write_buffer_bytes: usize,
    pub cache: &'a Cache,
    pub log: LocalLogOptions,
}

impl Shard {
    pub fn open(
        dir: &Path,
        id: u32,
        cfg: Arc<Config>,
        o: ShardOpenOptions<'_>,
    ) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Io(format!("creating {}: {e}", dir.display())))?;
        let disk = Disk::open(&dir.join("db"), o.write_buffer_bytes, o.cache)?;
        check_identity(&disk, id, o.shard_count)?;
        let mut state = ShardState::new(cfg.clone());
        load_state(&disk, &mut state)?;
        let persisted = state.applied_index;
        let core = Arc::new(ShardCore {
            id,
            dir: dir.to_path_buf(),
            disk,
            state: RwLock::new(state),
            cfg,
            maintenance: Mutex::new(()),
            #[cfg(test)]
            fail_state_batch: std::sync::atomic::AtomicBool::new(false),
        });
        let log = LocalLog::open(&dir.join("log"), o.log, persisted + 1)?;
        let replica = LocalReplica::open(format!("shard {id}"), log, core.clone())?;
        tracing::info!(
            shard = id,
            applied_index = persisted,
            replayed = core.applied_index() - persisted,
            series = core.state.read().series.len(),
            "Opened shard."
        );
        Ok(Self {
            core,
            replica: Box::new(replica),
        })
    }

    /// Commits an encoded entry and returns what applying it did. `entry`
    /// is the decoded form of `bytes`.
    pub fn append(&self, bytes: &[u8], entry: LogEntry) -> Result<Applied, StorageError> {
        self.replica.propose(bytes, entry)
    }

    pub fn is_failed(&self) -> bool {
        self.replica.failure().is_some()
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
