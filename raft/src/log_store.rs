//! A shard group's Raft log: the shard's write-ahead log (nothing is
//! written twice), on `fenghuo_storage`'s segment files with group commit.
//!
//! - Entries are frames of a [`LocalLog`]; frame index = Raft index + 1
//!   (Raft starts at 0, the local log at 1). A frame's payload is
//!   `[kind u8][term u64 LE][leader node u64 LE][body]`: kind 0 blank,
//!   1 normal (body: the proposal's bytes), 2 membership (body: JSON).
//! - The vote and the last purged log id live in `raft-meta.json`, replaced
//!   atomically and fsync'd before `save_vote`/`purge` return.
//! - The committed log id lives in `raft-committed`, overwritten in place
//!   without fsync: it is a hint that lets a restart re-apply committed
//!   entries early; losing it only delays that until the leader commits.
//! - Appends are acknowledged to openraft (`log_io_completed`) only after
//!   the frames are fsync'd.
//! - Recent entries stay in memory (a byte-bounded tail), so applying and
//!   replicating them reads no disk.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fenghuo_storage::durable::write_durably;
use fenghuo_storage::replicate::{LocalLog, LocalLogOptions, ShardLog};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, EntryPayload, ErrorSubject, ErrorVerb, LeaderId, RaftLogReader, StorageIOError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::types::{Entry, LogId, Proposal, StorageError, TypeConfig, Vote};

const META_FILE: &str = "raft-meta.json";
const COMMITTED_FILE: &str = "raft-committed";

const KIND_BLANK: u8 = 0;
const KIND_NORMAL: u8 = 1;
const KIND_MEMBERSHIP: u8 = 2;
const PAYLOAD_HEADER: usize = 17;

/// Tuning of a [`LogStore`].
#[derive(Clone, Debug)]
pub struct LogStoreOptions {
    pub log: LocalLogOptions,
    /// Bytes of recent entries kept in memory.
    pub cache_bytes: usize,
}

impl Default for LogStoreOptions {
    fn default() -> Self {
        Self {
            log: LocalLogOptions::default(),
            cache_bytes: 16 << 20,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Meta {
    vote: Option<Vote>,
    last_purged: Option<LogId>,
}

/// The recent tail of the log, contiguous up to the last entry.
#[derive(Default)]
struct Tail {
    entries: VecDeque<(Entry, usize)>,
    bytes: usize,
}

impl Tail {
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.log_id.index)
    }

    fn push(&mut self, e: Entry, size: usize, budget: usize) {
        self.bytes += size;
        self.entries.push_back((e, size));
        // Always keep the newest entry, whatever its size.
        while self.bytes > budget && self.entries.len() > 1 {
            if let Some((_, n)) = self.entries.pop_front() {
                self.bytes -= n;
            }
        }
    }

    /// Drops entries with index >= `from`.
    fn truncate(&mut self, from: u64) {
        while self.entries.back().is_some_and(|(e, _)| e.log_id.index >= from) {
            if let Some((_, n)) = self.entries.pop_back() {
                self.bytes -= n;
            }
        }
    }

    /// Drops entries with index <= `upto`.
    fn purge(&mut self, upto: u64) {
        while self.entries.front().is_some_and(|(e, _)| e.log_id.index <= upto) {
            if let Some((_, n)) = self.entries.pop_front() {
                self.bytes -= n;
            }
        }
    }
}

struct State {
    meta: Meta,
    last: Option<LogId>,
    tail: Tail,
}

struct Inner {
    dir: PathBuf,
    log: LocalLog,
    /// Serialises read-modify-writes of the meta file (vote, purge point).
    meta_write: Mutex<()>,
    opts: LogStoreOptions,
    state: Mutex<State>,
    committed: Mutex<std::fs::File>,
}

/// One group's Raft log on disk. Cheap to clone (the reader openraft asks
/// for is a clone).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

fn io_error(subject: ErrorSubject<u64>, verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    StorageIOError::new(subject, verb, AnyError::error(e.to_string())).into()
}

fn logs_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    io_error(ErrorSubject::Logs, verb, e)
}

/// The frame payload header of an entry, followed for a membership entry
/// by its JSON body (a normal entry's body is the proposal's pieces).
fn entry_head(e: &Entry) -> Result<Vec<u8>, StorageError> {
    let kind = match &e.payload {
        EntryPayload::Blank => KIND_BLANK,
        EntryPayload::Normal(_) => KIND_NORMAL,
        EntryPayload::Membership(_) => KIND_MEMBERSHIP,
    };
    let mut out = Vec::with_capacity(PAYLOAD_HEADER + 16);
    out.push(kind);
    out.extend_from_slice(&e.log_id.leader_id.term.to_le_bytes());
    out.extend_from_slice(&e.log_id.leader_id.node_id.to_le_bytes());
    if let EntryPayload::Membership(m) = &e.payload {
        serde_json::to_writer(&mut out, m).map_err(|err| logs_err(ErrorVerb::Write, err))?;
    }
    Ok(out)
}

/// An entry as the payload of its log frame: the bytes the log stores,
/// and the wire format of a replicated entry.
pub(crate) fn encode_entry(e: &Entry) -> Result<Vec<u8>, StorageError> {
    let mut head = entry_head(e)?;
    match &e.payload {
        EntryPayload::Normal(p) => {
            let mut pieces = Vec::new();
            p.encode_into(&mut head, &mut pieces);
            Ok(pieces.concat())
        }
        _ => Ok(head),
    }
}

/// Decodes the frame payload of Raft index `index`.
pub(crate) fn decode_entry(index: u64, b: &[u8]) -> Result<Entry, StorageError> {
    let bad = |why: &str| {
        io_error(
            ErrorSubject::LogIndex(index),
            ErrorVerb::Read,
            format!("Raft log entry {index}: {why}"),
        )
    };
    if b.len() < PAYLOAD_HEADER {
        return Err(bad("shorter than its header"));
    }
    let u64_at = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(a)
    };
    let log_id = LogId::new(LeaderId::new(u64_at(1), u64_at(9)), index);
    let body = &b[PAYLOAD_HEADER..];
    let payload = match b[0] {
        KIND_BLANK => EntryPayload::Blank,
        KIND_NORMAL => EntryPayload::Normal(Proposal::decode(body).map_err(|e| bad(&e.to_string()))?),
        KIND_MEMBERSHIP => EntryPayload::Membership(
            serde_json::from_slice(body).map_err(|e| bad(&format!("membership: {e}")))?,
        ),
        k => return Err(bad(&format!("unknown kind {k}"))),
    };
    Ok(Entry { log_id, payload })
}

fn entry_size(e: &Entry) -> usize {
    PAYLOAD_HEADER
        + match &e.payload {
            EntryPayload::Normal(p) => p.size(),
            _ => 64,
        }
}

impl LogStore {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path, opts: LogStoreOptions) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| logs_err(ErrorVerb::Write, format!("{}: {e}", dir.display())))?;
        let meta: Meta = match std::fs::read(dir.join(META_FILE)) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                io_error(
                    ErrorSubject::Store,
                    ErrorVerb::Read,
                    format!("{}: {e}", dir.join(META_FILE).display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Meta::default(),
            Err(e) => return Err(io_error(ErrorSubject::Store, ErrorVerb::Read, e)),
        };
        let first_frame = meta.last_purged.map_or(1, |p| p.index + 2);
        let log = LocalLog::open(&dir.join("log"), opts.log.clone(), first_frame)
            .map_err(|e| logs_err(ErrorVerb::Read, e))?;
        // The last entry, if the log holds any after the purge point.
        let mut last = meta.last_purged;
        let last_frame = log.last_index();
        if last_frame >= first_frame {
            log.read_range(last_frame, last_frame + 1, &mut |i, b| {
                last = Some(
                    decode_entry(i - 1, b)
                        .map_err(|e| fenghuo_storage::StorageError::Io(e.to_string()))?
                        .log_id,
                );
                Ok(())
            })
            .map_err(|e| logs_err(ErrorVerb::Read, e))?;
        }
        let committed = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(COMMITTED_FILE))
            .map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Read, e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                log,
                meta_write: Mutex::new(()),
                opts,
                state: Mutex::new(State {
                    meta,
                    last,
                    tail: Tail::default(),
                }),
                committed: Mutex::new(committed),
            }),
        })
    }

    /// Creates an empty log in `dir` that starts purged up to `last_purged`
    /// (a store whose state already covers those entries).
    pub fn create_purged(dir: &Path, last_purged: LogId) -> Result<(), StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| logs_err(ErrorVerb::Write, format!("{}: {e}", dir.display())))?;
        let meta = Meta {
            vote: None,
            last_purged: Some(last_purged),
        };
        let bytes =
            serde_json::to_vec(&meta).map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
        write_durably(dir, META_FILE, &bytes).map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Write, e))
    }

    /// Bytes the log occupies on disk.
    pub fn size_bytes(&self) -> u64 {
        self.inner.log.size_bytes()
    }

    fn save_meta(inner: &Inner, meta: &Meta) -> Result<(), StorageError> {
        let bytes =
            serde_json::to_vec(meta).map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
        write_durably(&inner.dir, META_FILE, &bytes)
            .map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Write, e))
    }

    /// Entries in `[start, end)` that are retained (none below the purge
    /// point), from memory where possible.
    fn read(&self, start: u64, end: u64) -> Result<Vec<Entry>, StorageError> {
        let (start, cached_from, mut from_tail) = {
            let st = self.inner.state.lock();
            let start = start.max(st.meta.last_purged.map_or(0, |p| p.index + 1));
            let last = st.last.map_or(0, |l| l.index + 1);
            let end = end.min(last);
            if start >= end {
                return Ok(Vec::new());
            }
            let cached_from = st.tail.first_index().unwrap_or(end).max(start);
            let from_tail: Vec<Entry> = st
                .tail
                .entries
                .iter()
                .map(|(e, _)| e)
                .filter(|e| e.log_id.index >= cached_from && e.log_id.index < end)
                .cloned()
                .collect();
            (start, cached_from, from_tail)
        };
        let mut out = Vec::new();
        if start < cached_from {
            let mut err = None;
            self.inner
                .log
                .read_range(start + 1, cached_from + 1, &mut |i, b| {
                    match decode_entry(i - 1, b) {
                        Ok(e) => out.push(e),
                        Err(e) => err = Some(e),
                    }
                    Ok(())
                })
                .map_err(|e| logs_err(ErrorVerb::Read, e))?;
            if let Some(e) = err {
                return Err(e);
            }
        }
        out.append(&mut from_tail);
        Ok(out)
    }

    /// Drops entries with index >= `from`.
    fn truncate_blocking(&self, from: u64) -> Result<(), StorageError> {
        let prev = match from {
            0 => None,
            _ => self.read(from - 1, from)?.pop().map(|e| e.log_id),
        };
        self.inner
            .log
            .truncate_suffix(from + 1)
            .map_err(|e| logs_err(ErrorVerb::Delete, e))?;
        let mut st = self.inner.state.lock();
        st.tail.truncate(from);
        if st.last.is_some_and(|l| l.index >= from) {
            st.last = prev.or(st.meta.last_purged);
        }
        Ok(())
    }

    fn append_blocking(&self, entries: Vec<Entry>) -> Result<(), StorageError> {
        let mut heads = Vec::with_capacity(entries.len());
        for e in &entries {
            heads.push(entry_head(e)?);
        }
        let Some(first) = entries.first().map(|e| e.log_id.index) else {
            return Ok(());
        };
        // Entries at indexes the log already holds replace them and what
        // follows, as a Raft follower's log does (openraft truncates first;
        // its storage suite does not).
        let (expected, empty) = {
            let st = self.inner.state.lock();
            (st.last.map_or(0, |l| l.index + 1), st.last == st.meta.last_purged)
        };
        if first < expected {
            self.truncate_blocking(first)?;
        } else if first > expected {
            // An empty log may start anywhere ahead (openraft's storage
            // suite does): it is recorded as purged up to there, so a
            // reopened log has no hole. A log with entries has no gaps.
            if !empty {
                return Err(logs_err(
                    ErrorVerb::Write,
                    format!("append at {first} where the log continues at {expected}"),
                ));
            }
            let skipped = LogId::new(entries[0].log_id.leader_id, first - 1);
            let _w = self.inner.meta_write.lock();
            let mut meta = self.inner.state.lock().meta.clone();
            meta.last_purged = Some(skipped);
            LogStore::save_meta(&self.inner, &meta)?;
            {
                let mut st = self.inner.state.lock();
                st.meta.last_purged = Some(skipped);
                st.last = Some(skipped);
            }
            self.inner
                .log
                .truncate_prefix(first)
                .map_err(|e| logs_err(ErrorVerb::Write, e))?;
        }
        let previous = {
            // Entries must be readable when `append` returns, durable or not.
            let mut st = self.inner.state.lock();
            let expected = st.last.map_or(0, |l| l.index + 1);
            if first != expected {
                return Err(logs_err(
                    ErrorVerb::Write,
                    format!("append at {first} where the log continues at {expected}"),
                ));
            }
            let previous = st.last;
            let budget = self.inner.opts.cache_bytes;
            for e in &entries {
                st.last = Some(e.log_id);
                st.tail.push(e.clone(), entry_size(e), budget);
            }
            previous
        };
        // Each frame is its header plus the proposal's entries, copied once,
        // straight into the log's write buffer.
        let mut frames: Vec<Vec<&[u8]>> = Vec::with_capacity(entries.len());
        for (e, head) in entries.iter().zip(heads.iter_mut()) {
            let mut pieces = Vec::new();
            match &e.payload {
                EntryPayload::Normal(p) => p.encode_into(head, &mut pieces),
                _ => pieces.push(head.as_slice()),
            }
            frames.push(pieces);
        }
        let refs: Vec<&[&[u8]]> = frames.iter().map(Vec::as_slice).collect();
        let frame = match self.inner.log.append_scattered(&refs) {
            Ok(f) => f,
            Err(e) => {
                // Memory must not run ahead of the disk.
                let mut st = self.inner.state.lock();
                st.tail.truncate(first);
                st.last = previous;
                return Err(logs_err(ErrorVerb::Write, e));
            }
        };
        if frame != first + 1 {
            return Err(logs_err(
                ErrorVerb::Write,
                format!("entry {first} landed at frame {frame}"),
            ));
        }
        Ok(())
    }
}

/// Runs blocking IO off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        io_error(
            ErrorSubject::Store,
            ErrorVerb::Write,
            format!("IO task failed: {e}"),
        )
    })?
}

fn range_to_bounds(range: impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s + 1,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = range_to_bounds(range);
        let this = self.clone();
        blocking(move || this.read(start, end)).await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let st = self.inner.state.lock();
        Ok(LogState {
            last_purged_log_id: st.meta.last_purged,
            last_log_id: st.last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let this = self.clone();
        let vote = *vote;
        blocking(move || {
            let _w = this.inner.meta_write.lock();
            let mut meta = this.inner.state.lock().meta.clone();
            meta.vote = Some(vote);
            LogStore::save_meta(&this.inner, &meta)
                .map_err(|_| io_error(ErrorSubject::Vote, ErrorVerb::Write, "saving the vote failed"))?;
            this.inner.state.lock().meta.vote = Some(vote);
            Ok(())
        })
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.inner.state.lock().meta.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let Some(c) = committed else { return Ok(()) };
        let mut b = [0u8; 28];
        b[0..8].copy_from_slice(&c.leader_id.term.to_le_bytes());
        b[8..16].copy_from_slice(&c.leader_id.node_id.to_le_bytes());
        b[16..24].copy_from_slice(&c.index.to_le_bytes());
        let crc = crc32fast::hash(&b[0..24]);
        b[24..28].copy_from_slice(&crc.to_le_bytes());
        let mut f = self.inner.committed.lock();
        f.seek(SeekFrom::Start(0))
            .and_then(|_| f.write_all(&b))
            .map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Write, e))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let mut b = Vec::new();
        {
            let mut f = self.inner.committed.lock();
            f.seek(SeekFrom::Start(0))
                .and_then(|_| f.read_to_end(&mut b))
                .map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Read, e))?;
        }
        if b.len() < 28 {
            return Ok(None);
        }
        let u = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(a)
        };
        let crc = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
        if crc32fast::hash(&b[0..24]) != crc {
            // A torn write of a hint: forget it.
            return Ok(None);
        }
        let committed = LogId::new(LeaderId::new(u(0), u(8)), u(16));
        // A hint beyond the log (it is written without a sync, the log is
        // not) would make a restart apply entries it does not have.
        let last = self.inner.state.lock().last;
        Ok(last.filter(|l| l.index >= committed.index).map(|_| committed))
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let this = self.clone();
        let result = blocking(move || this.append_blocking(entries)).await;
        match &result {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        result
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let this = self.clone();
        blocking(move || this.truncate_blocking(log_id.index)).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let this = self.clone();
        blocking(move || {
            // Record the purge point first: after a crash the log must not
            // look as if entries went missing.
            let _w = this.inner.meta_write.lock();
            let mut meta = this.inner.state.lock().meta.clone();
            if meta.last_purged.is_some_and(|p| p.index >= log_id.index) {
                return Ok(());
            }
            meta.last_purged = Some(log_id);
            LogStore::save_meta(&this.inner, &meta)?;
            {
                let mut st = this.inner.state.lock();
                st.meta.last_purged = Some(log_id);
                st.tail.purge(log_id.index);
                if st.last.is_none_or(|l| l.index < log_id.index) {
                    st.last = Some(log_id);
                }
            }
            this.inner
                .log
                .truncate_prefix(log_id.index + 1)
                .map_err(|e| logs_err(ErrorVerb::Delete, e))
        })
        .await
    }
}
