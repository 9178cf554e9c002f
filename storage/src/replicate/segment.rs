//! The shard log's segment files: the frame format, scanning a segment, and
//! telling a torn tail (a crash in the middle of a write: cut it) from
//! damage (a bad frame with valid frames after it: refuse to open, an
//! operator repairs it with `fenghuo repair-log`).
//!
//! Segment `<first index, 20 digits>.log` holds frames
//! `[len u32 LE][crc32 u32 LE][index u64 LE][payload]`, the CRC covering
//! index and payload. Frames are written in order by one process, so
//! `kill -9` can only leave a frame cut short at the end of the file; a
//! power loss may also leave a full-length frame with the wrong bytes, or
//! zeros, at the end. A bad frame followed by a frame that is valid (right
//! CRC, a plausible index) can come from neither: the bytes of acknowledged
//! entries were damaged, and cutting there would silently drop them.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::StorageError;

/// Bytes before a frame's payload.
pub(super) const FRAME_HEADER: usize = 16;
/// Largest accepted entry (ingest bounds request bodies far below this).
pub const MAX_ENTRY_BYTES: usize = 512 << 20;

/// One segment file of a log directory.
pub(super) struct Segment {
    pub first: u64,
    pub path: PathBuf,
    pub bytes: u64,
}

pub(super) fn io_err(what: &str, path: &Path, e: std::io::Error) -> StorageError {
    StorageError::Io(format!("{what} {}: {e}", path.display()))
}

pub(super) fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.log"))
}

/// The segments of `dir`, oldest first (files not named like a segment are
/// ignored, among them the `.damaged` files a repair sets aside).
pub(super) fn list_segments(dir: &Path) -> Result<Vec<Segment>, StorageError> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_err("listing log directory", dir, e))? {
        let entry = entry.map_err(|e| io_err("listing log directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(".log") else {
            continue;
        };
        let Ok(first) = stem.parse::<u64>() else { continue };
        segments.push(Segment {
            first,
            path: entry.path(),
            bytes: 0,
        });
    }
    segments.sort_by_key(|s| s.first);
    Ok(segments)
}

/// Appends the frame of entry `index`, whose payload is the concatenation
/// of `parts`, to `out` (one copy of the payload, wherever it lives).
pub(super) fn encode_frame(out: &mut Vec<u8>, index: u64, parts: &[&[u8]]) {
    let idx = index.to_le_bytes();
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut h = crc32fast::Hasher::new();
    h.update(&idx);
    for p in parts {
        h.update(p);
    }
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(&idx);
    for p in parts {
        out.extend_from_slice(p);
    }
}

fn frame_crc(index: &[u8; 8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(index);
    h.update(payload);
    h.finalize()
}

/// One frame read back from a segment.
pub(super) enum Frame {
    Entry {
        index: u64,
        payload: Vec<u8>,
    },
    /// Clean end of file.
    End,
    /// Cut short, too long or a checksum mismatch.
    Bad(String),
}

/// Reads the next frame. The payload buffer grows as bytes arrive, so a
/// damaged length field cannot make it allocate half a gigabyte up front.
pub(super) fn read_frame(r: &mut impl Read) -> Result<Frame, std::io::Error> {
    let mut header = [0u8; FRAME_HEADER];
    let mut got = 0;
    while got < FRAME_HEADER {
        let n = r.read(&mut header[got..])?;
        if n == 0 {
            return Ok(if got == 0 {
                Frame::End
            } else {
                Frame::Bad("truncated frame header".into())
            });
        }
        got += n;
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let mut idx = [0u8; 8];
    idx.copy_from_slice(&header[8..16]);
    if len > MAX_ENTRY_BYTES {
        return Ok(Frame::Bad(format!("frame length {len} exceeds the limit")));
    }
    let mut payload = Vec::with_capacity(len.min(1 << 20));
    r.take(len as u64).read_to_end(&mut payload)?;
    if payload.len() < len {
        return Ok(Frame::Bad("truncated frame payload".into()));
    }
    if frame_crc(&idx, &payload) != crc {
        return Ok(Frame::Bad("checksum mismatch".into()));
    }
    Ok(Frame::Entry {
        index: u64::from_le_bytes(idx),
        payload,
    })
}

/// Byte offset of entry `index`'s frame in `seg` (its length when the
/// segment ends before `index`).
pub(super) fn frame_offset(seg: &Segment, index: u64) -> Result<u64, StorageError> {
    let f = File::open(&seg.path).map_err(|e| io_err("opening log segment", &seg.path, e))?;
    let mut r = BufReader::new(f.take(seg.bytes));
    let mut offset = 0u64;
    let mut expected = seg.first;
    while expected < index {
        match read_frame(&mut r).map_err(|e| io_err("reading log segment", &seg.path, e))? {
            Frame::Entry { payload, .. } => offset += (FRAME_HEADER + payload.len()) as u64,
            Frame::End => break,
            Frame::Bad(why) => {
                return Err(StorageError::Corrupt {
                    what: "shard log",
                    detail: format!("{}: {why} at entry {expected}", seg.path.display()),
                });
            }
        }
        expected += 1;
    }
    Ok(offset)
}

/// The first bad frame of a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset of the bad frame (everything before it is valid).
    pub offset: u64,
    /// The index the bad frame should have had.
    pub index: u64,
    /// What is wrong with it.
    pub why: String,
    /// A valid frame after it, `(byte offset, index)`: when there is one,
    /// this is damage, not a torn tail.
    pub valid_after: Option<(u64, u64)>,
}

impl Damage {
    /// Whether this is only the tail of an interrupted write.
    pub fn is_torn_tail(&self) -> bool {
        self.valid_after.is_none()
    }

    /// Says where and what, naming the file.
    pub fn describe(&self, path: &Path) -> String {
        let mut s = format!(
            "{}: {} at byte {} (entry {})",
            path.display(),
            self.why,
            self.offset,
            self.index
        );
        if let Some((offset, index)) = self.valid_after {
            s.push_str(&format!(", followed by valid entry {index} at byte {offset}"));
        }
        s
    }
}

/// What a scan of one segment found.
pub(super) struct Scan {
    /// Valid entries from the start of the segment.
    pub count: u64,
    /// Bytes those entries cover.
    pub valid_bytes: u64,
    pub damage: Option<Damage>,
}

/// Scans a segment up to its end or its first bad frame.
pub(super) fn scan_segment(seg: &Segment) -> Result<Scan, StorageError> {
    let f = File::open(&seg.path).map_err(|e| io_err("opening log segment", &seg.path, e))?;
    let mut r = BufReader::new(f);
    let mut count = 0u64;
    let mut valid_bytes = 0u64;
    loop {
        let expected = seg.first + count;
        let why = match read_frame(&mut r).map_err(|e| io_err("reading log segment", &seg.path, e))? {
            Frame::End => {
                return Ok(Scan {
                    count,
                    valid_bytes,
                    damage: None,
                });
            }
            Frame::Bad(why) => why,
            Frame::Entry { index, payload } if index == expected => {
                count += 1;
                valid_bytes += (FRAME_HEADER + payload.len()) as u64;
                continue;
            }
            Frame::Entry { index, .. } => format!("entry {index} where {expected} was expected"),
        };
        let valid_after = find_valid_frame(&seg.path, valid_bytes, expected)?;
        return Ok(Scan {
            count,
            valid_bytes,
            damage: Some(Damage {
                offset: valid_bytes,
                index: expected,
                why,
                valid_after,
            }),
        });
    }
}

/// Looks for a valid frame starting anywhere after `bad_offset`: a length
/// that fits the file, an index at or after `expected` (and no further than
/// the remaining bytes allow), and the right CRC. A random match needs 96
/// bits to line up, so finding one means real entries follow the bad frame.
fn find_valid_frame(path: &Path, bad_offset: u64, expected: u64) -> Result<Option<(u64, u64)>, StorageError> {
    let bytes = fs::read(path).map_err(|e| io_err("reading log segment", path, e))?;
    let start = bad_offset as usize + 1;
    let most_entries = (bytes.len().saturating_sub(bad_offset as usize) / FRAME_HEADER) as u64;
    let mut pos = start;
    while pos + FRAME_HEADER <= bytes.len() {
        let at = |i: usize, n: usize| &bytes[pos + i..pos + i + n];
        let len = u32::from_le_bytes(at(0, 4).try_into().unwrap_or_default()) as usize;
        let index = u64::from_le_bytes(at(8, 8).try_into().unwrap_or_default());
        let fits = len <= bytes.len() - pos - FRAME_HEADER;
        let plausible = index >= expected && index - expected <= most_entries;
        if fits && plausible {
            let crc = u32::from_le_bytes(at(4, 4).try_into().unwrap_or_default());
            let idx: [u8; 8] = at(8, 8).try_into().unwrap_or_default();
            if frame_crc(&idx, &bytes[pos + FRAME_HEADER..pos + FRAME_HEADER + len]) == crc {
                return Ok(Some((pos as u64, index)));
            }
        }
        pos += 1;
    }
    Ok(None)
}

/// What [`repair`] found and did in one log directory.
#[derive(Debug, Default)]
pub struct RepairReport {
    /// The damaged segment and its damage; `None` when the log is sound.
    pub damage: Option<(PathBuf, Damage)>,
    /// Files the repair moved aside (`*.damaged`), with their sizes.
    pub set_aside: Vec<(PathBuf, u64)>,
    /// Whether anything was changed (false for a dry run or a sound log).
    pub changed: bool,
}

/// Repairs the shard log in `dir` as Prometheus repairs its WAL: the first
/// bad frame and everything after it (the rest of that segment and every
/// later segment) are moved into `*.damaged` files beside the log, so the
/// log ends with the last entry before the damage. Entries set aside are
/// lost for the store (they stay on disk for forensics). A torn tail is
/// left alone: opening the log cuts it. With `dry_run` nothing is changed.
pub fn repair(dir: &Path, dry_run: bool) -> Result<RepairReport, StorageError> {
    let segments = list_segments(dir)?;
    let mut report = RepairReport::default();
    let n = segments.len();
    let mut cut_from = None;
    for (i, seg) in segments.iter().enumerate() {
        let scan = scan_segment(seg)?;
        if let Some(damage) = scan.damage {
            let last = i + 1 == n;
            if last && damage.is_torn_tail() {
                break;
            }
            cut_from = Some(i);
            report.damage = Some((seg.path.clone(), damage));
            break;
        }
    }
    let (Some(i), Some((_, damage))) = (cut_from, &report.damage) else {
        return Ok(report);
    };
    let seg = &segments[i];
    let size = fs::metadata(&seg.path)
        .map_err(|e| io_err("reading log segment", &seg.path, e))?
        .len();
    let tail_path = seg.path.with_extension(format!("log.{}.damaged", damage.offset));
    report.set_aside.push((tail_path.clone(), size - damage.offset));
    for later in &segments[i + 1..] {
        let len = fs::metadata(&later.path).map(|m| m.len()).unwrap_or(0);
        report
            .set_aside
            .push((later.path.with_extension("log.damaged"), len));
    }
    if dry_run {
        return Ok(report);
    }
    let bytes = fs::read(&seg.path).map_err(|e| io_err("reading log segment", &seg.path, e))?;
    fs::write(&tail_path, &bytes[damage.offset as usize..]).map_err(|e| io_err("writing", &tail_path, e))?;
    let f = OpenOptions::new()
        .write(true)
        .open(&seg.path)
        .map_err(|e| io_err("opening log segment", &seg.path, e))?;
    f.set_len(damage.offset)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err("truncating log segment", &seg.path, e))?;
    for later in &segments[i + 1..] {
        let to = later.path.with_extension("log.damaged");
        fs::rename(&later.path, &to).map_err(|e| io_err("moving aside", &later.path, e))?;
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("syncing directory", dir, e))?;
    report.changed = true;
    Ok(report)
}
