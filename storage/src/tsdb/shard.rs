//! One shard: its RocksDB instance, its log, its in-memory state, and the
//! write path `encode -> log append (durable) -> apply in index order`.
//!
//! Recovery on open: load the persisted state (applied index, head
//! snapshots, metadata, exemplars) from RocksDB, then replay every log entry
//! after the applied index through the same `apply` the write path uses.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};
use rocksdb::Cache;

use super::apply::{Applied, Config, ShardState};
use super::disk::Disk;
use super::exemplars::StoredExemplar;
use super::head::{MemSeries, intern_labels};
use super::keys;
use crate::chunk::histogram::HistogramAppender;
use crate::chunk::xor::XorAppender;
use crate::error::StorageError;
use crate::replicate::{LocalLog, LocalLogOptions, LogEntry, ShardLog};

pub struct Shard {
    pub id: u32,
    pub dir: PathBuf,
    pub disk: Disk,
    pub log: Box<dyn ShardLog>,
    pub state: RwLock<ShardState>,
    pub cfg: Arc<Config>,
    /// Next log index allowed to apply; appliers wait for their turn.
    turn: Mutex<u64>,
    turn_cv: Condvar,
    /// Set when applying failed half-way: the in-memory state can no longer
    /// be trusted, so the shard refuses writes until reopened (replay
    /// rebuilds it from the log).
    failed: Mutex<Option<String>>,
    /// Serialises checkpoints, compactions and retention (the background
    /// thread and explicit calls).
    pub maintenance: Mutex<()>,
    /// Test hook: fail checkpoints right before their state batch.
    #[cfg(test)]
    pub fail_state_batch: std::sync::atomic::AtomicBool,
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
        let applied = state.applied_index;
        let log = LocalLog::open(&dir.join("log"), o.log, applied + 1)?;
        let mut replayed = 0u64;
        log.read_from(applied + 1, &mut |index, bytes| {
            if index <= state.applied_index {
                return Ok(());
            }
            if index != state.applied_index + 1 {
                return Err(StorageError::Corrupt {
                    what: "shard log",
                    detail: format!(
                        "entry {index} follows applied index {}: entries are missing",
                        state.applied_index
                    ),
                });
            }
            let entry = LogEntry::decode(bytes)?;
            state.apply(&disk, index, entry)?;
            replayed += 1;
            Ok(())
        })?;
        if state.applied_index != log.last_index() {
            return Err(StorageError::Corrupt {
                what: "shard log",
                detail: format!(
                    "log ends at {} but the state was applied up to {}",
                    log.last_index(),
                    state.applied_index
                ),
            });
        }
        tracing::info!(
            shard = id,
            applied_index = applied,
            replayed,
            series = state.series.len(),
            "Opened shard."
        );
        let next = state.applied_index + 1;
        Ok(Self {
            id,
            dir: dir.to_path_buf(),
            disk,
            log: Box::new(log),
            state: RwLock::new(state),
            cfg,
            turn: Mutex::new(next),
            turn_cv: Condvar::new(),
            failed: Mutex::new(None),
            maintenance: Mutex::new(()),
            #[cfg(test)]
            fail_state_batch: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn check_failed(&self) -> Result<(), StorageError> {
        match &*self.failed.lock() {
            Some(why) => Err(StorageError::Io(format!("shard {} is failed: {why}", self.id))),
            None => Ok(()),
        }
    }

    /// Appends an encoded entry to the log and applies it once durable, in
    /// log order. `entry` is the decoded form of `bytes`.
    pub fn append(&self, bytes: &[u8], entry: LogEntry) -> Result<Applied, StorageError> {
        self.check_failed()?;
        let index = self.log.append(bytes)?;
        let mut turn = self.turn.lock();
        while *turn != index {
            if *turn > index {
                return Err(StorageError::Io(format!("log index {index} was already applied")));
            }
            self.check_failed()?;
            self.turn_cv.wait(&mut turn);
        }
        // Should applying panic, waiters for later indexes must not hang.
        let guard = PanicGuard(self);
        let result = {
            let mut st = self.state.write();
            st.apply(&self.disk, index, entry)
        };
        std::mem::forget(guard);
        if let Err(e) = &result {
            tracing::error!(shard = self.id, index, error = %e, "Applying a log entry failed; the shard stops accepting writes.");
            *self.failed.lock() = Some(e.to_string());
        }
        *turn = index + 1;
        self.turn_cv.notify_all();
        result
    }

    pub fn is_failed(&self) -> bool {
        self.failed.lock().is_some()
    }
}

/// Marks the shard failed and wakes waiting appliers if dropped, which
/// only happens when applying panics (it is forgotten otherwise).
struct PanicGuard<'a>(&'a Shard);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        *self.0.failed.lock() = Some("applying a log entry panicked".into());
        self.0.turn_cv.notify_all();
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
