//! `LocalLog`: the single-node [`ShardLog`], a directory of append-only
//! segment files with group commit.
//!
//! Segment `<first index, 20 digits>.log` holds frames
//! `[len u32 LE][crc32 u32 LE][index u64 LE][payload]`, the CRC covering
//! index and payload. Appenders write their frame under a short lock, then
//! share fsyncs: one appender becomes the syncer and covers every frame
//! written so far, the others wait for it (a condition variable), so N
//! concurrent writers cost about one `fdatasync` instead of N.
//!
//! On open, a torn frame at the tail of the last segment (a crash mid-write)
//! is cut off; a bad frame anywhere else, or one followed by valid frames,
//! is damage: open fails naming the file and offset (see [`super::segment`]).

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::ShardLog;
use super::segment::{
    Frame, MAX_ENTRY_BYTES, Scan, Segment, encode_frame, frame_offset, io_err, list_segments, read_frame,
    scan_segment, segment_path,
};
use crate::durable::sync_dir;
use crate::error::StorageError;
use crate::metrics;

/// Tuning of a [`LocalLog`].
#[derive(Clone, Debug)]
pub struct LocalLogOptions {
    /// Roll to a new segment file after this many bytes.
    pub segment_bytes: u64,
    /// `fdatasync` before acknowledging appends. Only tests and benchmarks
    /// that measure something else turn this off.
    pub fsync: bool,
}

impl Default for LocalLogOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            fsync: true,
        }
    }
}

struct Inner {
    dir: PathBuf,
    /// Sealed segments (fully synced), oldest first.
    sealed: Vec<Segment>,
    active: Segment,
    file: Arc<File>,
    next_index: u64,
    /// Frame scratch buffer, reused across appends.
    scratch: Vec<u8>,
    broken: Option<String>,
}

struct SyncState {
    synced_upto: u64,
    syncing: bool,
    failed: Option<String>,
}

/// The single-node shard log.
pub struct LocalLog {
    inner: Mutex<Inner>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    opts: LocalLogOptions,
}

impl LocalLog {
    /// Opens (or creates) the log in `dir`. `next_index_at_least` is one
    /// past the state machine's persisted applied index: an empty or
    /// shorter log continues from there, so indexes are never reused.
    pub fn open(dir: &Path, opts: LocalLogOptions, next_index_at_least: u64) -> Result<Self, StorageError> {
        fs::create_dir_all(dir).map_err(|e| io_err("creating log directory", dir, e))?;
        let segments = list_segments(dir)?;
        let mut next_index = next_index_at_least.max(1);
        let n = segments.len();
        let mut keep = Vec::with_capacity(n);
        let mut last_count = 0u64;
        for (i, mut seg) in segments.into_iter().enumerate() {
            let Scan {
                count,
                valid_bytes: valid,
                damage,
            } = scan_segment(&seg)?;
            let last = i + 1 == n;
            if let Some(damage) = damage {
                if !last || !damage.is_torn_tail() {
                    return Err(StorageError::Corrupt {
                        what: "shard log",
                        detail: format!(
                            "{}; the log is damaged, not torn, and was left as it is: \
                             `fenghuo repair-log` cuts it before the damage (README, \"Repairing a damaged log\")",
                            damage.describe(&seg.path)
                        ),
                    });
                }
                tracing::warn!(segment = %seg.path.display(), entries = count, offset = valid,
                    problem = %damage.why, "Cutting off a torn tail of the shard log.");
                let f = OpenOptions::new()
                    .write(true)
                    .open(&seg.path)
                    .map_err(|e| io_err("opening log segment", &seg.path, e))?;
                f.set_len(valid)
                    .map_err(|e| io_err("truncating log segment", &seg.path, e))?;
                f.sync_all()
                    .map_err(|e| io_err("syncing log segment", &seg.path, e))?;
            }
            seg.bytes = valid;
            if let Some(prev) = keep.last() {
                let prev: &Segment = prev;
                if seg.first < prev.first {
                    return Err(StorageError::Corrupt {
                        what: "shard log",
                        detail: format!("segment {} overlaps its predecessor", seg.path.display()),
                    });
                }
            }
            next_index = next_index.max(seg.first + count);
            last_count = count;
            keep.push(seg);
        }
        // Continue in the last segment when it ends exactly where the next
        // index starts; otherwise open a fresh segment there.
        let reuse = keep.last().is_some_and(|s| s.first + last_count == next_index);
        let active = if reuse {
            keep.pop()
                .ok_or_else(|| StorageError::Io("log segment vanished".into()))?
        } else {
            let path = segment_path(dir, next_index);
            File::create(&path).map_err(|e| io_err("creating log segment", &path, e))?;
            sync_dir(dir)?;
            Segment {
                first: next_index,
                path,
                bytes: 0,
            }
        };
        let file = OpenOptions::new()
            .append(true)
            .open(&active.path)
            .map_err(|e| io_err("opening log segment", &active.path, e))?;
        let log = Self {
            inner: Mutex::new(Inner {
                dir: dir.to_path_buf(),
                sealed: keep,
                active,
                file: Arc::new(file),
                next_index,
                scratch: Vec::new(),
                broken: None,
            }),
            sync: Mutex::new(SyncState {
                synced_upto: next_index - 1,
                syncing: false,
                failed: None,
            }),
            synced: Condvar::new(),
            opts,
        };
        metrics::LOG_BYTES.add(log.size_bytes() as i64);
        Ok(log)
    }

    /// Appends entries under one lock and one sync; returns the index of
    /// the first once all are durable.
    pub fn append_many(&self, entries: &[&[u8]]) -> Result<u64, StorageError> {
        let scattered: Vec<[&[u8]; 1]> = entries.iter().map(|e| [*e]).collect();
        let refs: Vec<&[&[u8]]> = scattered.iter().map(|e| e.as_slice()).collect();
        self.append_scattered(&refs)
    }

    /// [`Self::append_many`] for entries given as pieces (each entry is the
    /// concatenation of its slices), so a caller need not assemble them.
    pub fn append_scattered(&self, entries: &[&[&[u8]]]) -> Result<u64, StorageError> {
        let size = |e: &&[&[u8]]| e.iter().map(|p| p.len()).sum::<usize>();
        if let Some(big) = entries.iter().map(size).find(|&n| n > MAX_ENTRY_BYTES) {
            return Err(StorageError::Overloaded(format!(
                "log entry of {big} bytes exceeds {MAX_ENTRY_BYTES}"
            )));
        }
        let (first, last) = {
            let mut guard = self.inner.lock();
            let inner = &mut *guard;
            if let Some(why) = &inner.broken {
                return Err(StorageError::Io(format!("shard log is unusable: {why}")));
            }
            if inner.active.bytes >= self.opts.segment_bytes {
                Self::roll(inner)?;
            }
            let first = inner.next_index;
            inner.scratch.clear();
            for (k, entry) in entries.iter().enumerate() {
                encode_frame(&mut inner.scratch, first + k as u64, entry);
            }
            if let Err(e) = (&*inner.file).write_all(&inner.scratch) {
                // A partial frame may be on disk; refuse further appends
                // rather than write after garbage (open() cuts it off).
                let why = format!("{}: {e}", inner.active.path.display());
                inner.broken = Some(why.clone());
                return Err(StorageError::Io(format!("writing shard log: {why}")));
            }
            inner.active.bytes += inner.scratch.len() as u64;
            inner.next_index += entries.len() as u64;
            metrics::LOG_BYTES.add(inner.scratch.len() as i64);
            (first, inner.next_index - 1)
        };
        self.wait_durable(last)?;
        Ok(first)
    }

    /// Calls `visit` for every retained entry with index in `[from, to)`,
    /// in order.
    pub fn read_range(
        &self,
        from: u64,
        to: u64,
        visit: &mut super::LogVisitor<'_>,
    ) -> Result<(), StorageError> {
        let segments: Vec<(u64, PathBuf, u64)> = {
            let inner = self.inner.lock();
            let mut v: Vec<_> = inner
                .sealed
                .iter()
                .map(|s| (s.first, s.path.clone(), s.bytes))
                .collect();
            v.push((inner.active.first, inner.active.path.clone(), inner.active.bytes));
            v
        };
        for (i, (first, path, bytes)) in segments.iter().enumerate() {
            if *first >= to {
                break;
            }
            if segments
                .get(i + 1)
                .is_some_and(|(next_first, _, _)| *next_first <= from)
            {
                continue;
            }
            let mut f = File::open(path).map_err(|e| io_err("opening log segment", path, e))?;
            f.seek(SeekFrom::Start(0))
                .map_err(|e| io_err("seeking log segment", path, e))?;
            let mut r = BufReader::new(f.take(*bytes));
            let mut expect = *first;
            loop {
                match read_frame(&mut r).map_err(|e| io_err("reading log segment", path, e))? {
                    Frame::End => break,
                    Frame::Bad(why) => {
                        return Err(StorageError::Corrupt {
                            what: "shard log",
                            detail: format!("{}: {why} at entry {expect}", path.display()),
                        });
                    }
                    Frame::Entry { index, payload } => {
                        if index != expect {
                            return Err(StorageError::Corrupt {
                                what: "shard log",
                                detail: format!(
                                    "{}: entry {index} where {expect} was expected",
                                    path.display()
                                ),
                            });
                        }
                        expect += 1;
                        if index >= to {
                            return Ok(());
                        }
                        if index >= from {
                            visit(index, &payload)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Drops every entry with index `>= from`; the next append gets
    /// `from`. A Raft follower does this when its leader overwrites an
    /// uncommitted tail. Indexes are then assigned again, which the
    /// [`ShardLog`] contract forbids: only the Raft log store calls this.
    pub fn truncate_suffix(&self, from: u64) -> Result<(), StorageError> {
        // No sync may be in flight: its target would cover indexes that are
        // about to be written again. Waited for before taking `inner`, which
        // a syncer needs to finish.
        let mut sync = self.sync.lock();
        while sync.syncing {
            self.synced.wait(&mut sync);
        }
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        if from >= inner.next_index {
            return Ok(());
        }
        if let Some(why) = &inner.broken {
            return Err(StorageError::Io(format!("shard log is unusable: {why}")));
        }
        let before: u64 = inner.sealed.iter().map(|s| s.bytes).sum::<u64>() + inner.active.bytes;
        match Self::cut_from(inner, from) {
            Ok(()) => {
                sync.synced_upto = sync.synced_upto.min(from - 1);
                let after: u64 = inner.sealed.iter().map(|s| s.bytes).sum::<u64>() + inner.active.bytes;
                metrics::LOG_BYTES.sub(before as i64 - after as i64);
                Ok(())
            }
            Err(e) => {
                // Files may be half cut: nothing more is appended to them.
                inner.broken = Some(format!("cutting the log at {from} failed: {e}"));
                Err(e)
            }
        }
    }

    /// The file work of [`Self::truncate_suffix`]; `inner` changes only
    /// once every file is as it should be.
    fn cut_from(inner: &mut Inner, from: u64) -> Result<(), StorageError> {
        let mut segments: Vec<Segment> = inner
            .sealed
            .iter()
            .chain(std::iter::once(&inner.active))
            .map(|s| Segment {
                first: s.first,
                path: s.path.clone(),
                bytes: s.bytes,
            })
            .collect();
        // Segments that start at or after `from` go whole (the first of
        // them stays, emptied, when nothing precedes it).
        let mut removed = false;
        while segments.last().is_some_and(|s| s.first >= from) && segments.len() > 1 {
            if let Some(seg) = segments.pop() {
                fs::remove_file(&seg.path).map_err(|e| io_err("removing log segment", &seg.path, e))?;
                removed = true;
            }
        }
        if removed {
            // Durable before the cut below: a removed segment must not come
            // back after a power loss and leave a gap.
            sync_dir(&inner.dir)?;
        }
        let mut active = segments
            .pop()
            .ok_or_else(|| StorageError::Io("log segment vanished".into()))?;
        let keep = if active.first >= from {
            0
        } else {
            frame_offset(&active, from)?
        };
        let f = OpenOptions::new()
            .write(true)
            .open(&active.path)
            .map_err(|e| io_err("opening log segment", &active.path, e))?;
        f.set_len(keep)
            .map_err(|e| io_err("truncating log segment", &active.path, e))?;
        f.sync_all()
            .map_err(|e| io_err("syncing log segment", &active.path, e))?;
        // An emptied segment takes the name of the index it now starts at
        // (emptied first, so a crash in between leaves no misnamed frames).
        if active.first > from {
            let path = segment_path(&inner.dir, from);
            fs::rename(&active.path, &path).map_err(|e| io_err("renaming log segment", &active.path, e))?;
            active.path = path;
            active.first = from;
        }
        sync_dir(&inner.dir)?;
        active.bytes = keep;
        let file = OpenOptions::new()
            .append(true)
            .open(&active.path)
            .map_err(|e| io_err("opening log segment", &active.path, e))?;
        inner.sealed = segments;
        inner.active = active;
        inner.file = Arc::new(file);
        inner.next_index = from;
        Ok(())
    }

    fn roll(inner: &mut Inner) -> Result<(), StorageError> {
        inner
            .file
            .sync_data()
            .map_err(|e| io_err("syncing log segment", &inner.active.path, e))?;
        let path = segment_path(&inner.dir, inner.next_index);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_err("creating log segment", &path, e))?;
        sync_dir(&inner.dir)?;
        let old = std::mem::replace(
            &mut inner.active,
            Segment {
                first: inner.next_index,
                path,
                bytes: 0,
            },
        );
        inner.sealed.push(old);
        inner.file = Arc::new(file);
        Ok(())
    }

    /// Waits until `index` is synced, becoming the syncer if nobody is.
    fn wait_durable(&self, index: u64) -> Result<(), StorageError> {
        let mut s = self.sync.lock();
        loop {
            if let Some(why) = &s.failed {
                return Err(StorageError::Io(format!(
                    "shard log is unusable after a failed sync: {why}"
                )));
            }
            if s.synced_upto >= index {
                return Ok(());
            }
            if !s.syncing {
                s.syncing = true;
                break;
            }
            self.synced.wait(&mut s);
        }
        drop(s);
        let (target, file, path) = {
            let inner = self.inner.lock();
            (
                inner.next_index - 1,
                inner.file.clone(),
                inner.active.path.clone(),
            )
        };
        let started = Instant::now();
        let result = if self.opts.fsync { file.sync_data() } else { Ok(()) };
        metrics::LOG_SYNC_SECONDS.observe(started.elapsed().as_secs_f64());
        let mut s = self.sync.lock();
        s.syncing = false;
        match result {
            Ok(()) => s.synced_upto = s.synced_upto.max(target),
            // After a failed fsync the kernel may have dropped dirty pages:
            // nothing written since the last good sync can be trusted.
            Err(e) => s.failed = Some(format!("{}: {e}", path.display())),
        }
        self.synced.notify_all();
        match &s.failed {
            Some(why) => Err(StorageError::Io(format!("syncing shard log failed: {why}"))),
            None => Ok(()),
        }
    }
}

impl Drop for LocalLog {
    fn drop(&mut self) {
        metrics::LOG_BYTES.sub(self.size_bytes() as i64);
    }
}

impl ShardLog for LocalLog {
    fn append(&self, entry: &[u8]) -> Result<u64, StorageError> {
        self.append_many(&[entry])
    }

    fn read_from(&self, from: u64, visit: &mut super::LogVisitor<'_>) -> Result<(), StorageError> {
        self.read_range(from, u64::MAX, visit)
    }

    fn truncate_prefix(&self, upto: u64) -> Result<(), StorageError> {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        // Past the last entry (a Raft replica that installed a snapshot):
        // the log continues after `upto`, in a new segment.
        let skip = inner.next_index <= upto;
        if skip {
            inner.next_index = upto + 1;
        }
        // Roll the active segment away when everything in it is covered, so
        // a quiet log shrinks to an empty file.
        if skip || (inner.active.bytes > 0 && inner.next_index - 1 <= upto) {
            Self::roll(inner)?;
        }
        let mut removed = 0u64;
        while !inner.sealed.is_empty() {
            let next_first = inner.sealed.get(1).map(|s| s.first).unwrap_or(inner.active.first);
            if next_first - 1 > upto {
                break;
            }
            let seg = inner.sealed.remove(0);
            fs::remove_file(&seg.path).map_err(|e| io_err("removing log segment", &seg.path, e))?;
            removed += seg.bytes;
        }
        if removed > 0 {
            metrics::LOG_BYTES.sub(removed as i64);
        }
        Ok(())
    }

    fn last_index(&self) -> u64 {
        self.inner.lock().next_index - 1
    }

    fn size_bytes(&self) -> u64 {
        let inner = self.inner.lock();
        inner.sealed.iter().map(|s| s.bytes).sum::<u64>() + inner.active.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(log: &LocalLog, from: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        log.read_from(from, &mut |i, p| {
            out.push((i, p.to_vec()));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn appends_get_consecutive_indexes_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LocalLogOptions {
            segment_bytes: 64,
            fsync: true,
        };
        {
            let log = LocalLog::open(dir.path(), opts.clone(), 1).unwrap();
            for i in 0..20u8 {
                assert_eq!(log.append(&[i; 10]).unwrap(), u64::from(i) + 1);
            }
        }
        let log = LocalLog::open(dir.path(), opts, 1).unwrap();
        let all = collect(&log, 1);
        assert_eq!(all.len(), 20);
        assert_eq!(all[19], (20, vec![19u8; 10]));
        assert_eq!(collect(&log, 15).first().unwrap().0, 15);
        assert_eq!(log.append(b"x").unwrap(), 21);
    }

    #[test]
    fn truncation_drops_prefix_and_keeps_indexes_monotonic() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LocalLogOptions {
            segment_bytes: 40,
            fsync: false,
        };
        let log = LocalLog::open(dir.path(), opts.clone(), 1).unwrap();
        for _ in 0..10 {
            log.append(b"0123456789").unwrap();
        }
        log.truncate_prefix(10).unwrap();
        assert!(collect(&log, 1).is_empty());
        assert_eq!(log.size_bytes(), 0);
        drop(log);
        let log = LocalLog::open(dir.path(), opts.clone(), 1).unwrap();
        assert_eq!(log.append(b"a").unwrap(), 11);
        drop(log);
        // Even with every segment gone, the state machine's applied index
        // keeps indexes moving forward.
        for e in fs::read_dir(dir.path()).unwrap() {
            fs::remove_file(e.unwrap().path()).unwrap();
        }
        let log = LocalLog::open(dir.path(), opts, 12).unwrap();
        assert_eq!(log.append(b"b").unwrap(), 12);
    }

    #[test]
    fn torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LocalLogOptions::default();
        {
            let log = LocalLog::open(dir.path(), opts.clone(), 1).unwrap();
            log.append(b"first").unwrap();
            log.append(b"second").unwrap();
        }
        let seg = fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
        let len = fs::metadata(&seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - 3).unwrap();
        drop(f);
        let log = LocalLog::open(dir.path(), opts, 1).unwrap();
        let all = collect(&log, 1);
        assert_eq!(all, vec![(1, b"first".to_vec())]);
        assert_eq!(log.append(b"again").unwrap(), 2);
    }

    #[test]
    fn concurrent_appends_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(LocalLog::open(dir.path(), LocalLogOptions::default(), 1).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    for i in 0..50u32 {
                        got.push(log.append(&(t * 1000 + i).to_le_bytes()).unwrap());
                    }
                    got
                })
            })
            .collect();
        let mut all: Vec<u64> = threads.into_iter().flat_map(|h| h.join().unwrap()).collect();
        all.sort_unstable();
        assert_eq!(all, (1..=400).collect::<Vec<_>>());
        assert_eq!(collect(&log, 1).len(), 400);
    }

    #[test]
    fn suffix_truncation_lets_indexes_be_written_again_across_segments_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LocalLogOptions {
            segment_bytes: 64,
            fsync: true,
        };
        let log = LocalLog::open(dir.path(), opts.clone(), 1).unwrap();
        let entries: Vec<Vec<u8>> = (1..=20u8).map(|i| vec![i; 10]).collect();
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        assert_eq!(log.append_many(&refs).unwrap(), 1);
        log.append_many(&refs[..0]).unwrap();
        for i in 2..=20u8 {
            // In the middle of a segment, at a segment's first entry, and past the end.
            log.truncate_suffix(u64::from(22 - i)).unwrap();
            assert_eq!(log.last_index(), u64::from(21 - i));
            assert_eq!(log.append(b"new").unwrap(), u64::from(22 - i));
            log.truncate_suffix(u64::from(22 - i)).unwrap();
        }
        log.truncate_suffix(100).unwrap();
        assert_eq!(log.last_index(), 1);
        assert_eq!(log.append(b"two").unwrap(), 2);
        let size = log.size_bytes();
        drop(log);
        let log = LocalLog::open(dir.path(), opts.clone(), 1).unwrap();
        assert_eq!(collect(&log, 1), vec![(1, vec![1u8; 10]), (2, b"two".to_vec())]);
        assert_eq!(log.size_bytes(), size);
        log.truncate_suffix(1).unwrap();
        assert!(collect(&log, 1).is_empty());
        assert_eq!(log.append(b"one").unwrap(), 1);
        drop(log);
        let log = LocalLog::open(dir.path(), opts, 1).unwrap();
        assert_eq!(collect(&log, 1), vec![(1, b"one".to_vec())]);
    }

    #[test]
    fn read_range_stops_before_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LocalLogOptions {
            segment_bytes: 40,
            fsync: false,
        };
        let log = LocalLog::open(dir.path(), opts, 1).unwrap();
        for i in 0..10u8 {
            log.append(&[i; 5]).unwrap();
        }
        let mut got = Vec::new();
        log.read_range(3, 7, &mut |i, _| {
            got.push(i);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, vec![3, 4, 5, 6]);
    }

    #[test]
    fn prefix_truncation_past_the_end_continues_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LocalLogOptions::default();
        let log = LocalLog::open(dir.path(), opts.clone(), 1).unwrap();
        log.append(b"a").unwrap();
        log.truncate_prefix(50).unwrap();
        assert_eq!(log.last_index(), 50);
        assert_eq!(log.append(b"b").unwrap(), 51);
        drop(log);
        let log = LocalLog::open(dir.path(), opts, 1).unwrap();
        assert_eq!(collect(&log, 1), vec![(51, b"b".to_vec())]);
    }
}
