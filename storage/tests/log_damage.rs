//! The shard log tells a torn tail from damage: bits flipped at every
//! position class of a frame (length, checksum, index, payload) in the
//! first, a middle and the last frame, in the last segment and in a sealed
//! one; truncation at every byte of the last frame; and the repair command's
//! library call afterwards.

use std::fs;
use std::path::{Path, PathBuf};

use fenghuo_storage::replicate::{LocalLog, LocalLogOptions, ShardLog, repair};

const ENTRIES: u64 = 12;

fn opts(segment_bytes: u64) -> LocalLogOptions {
    LocalLogOptions {
        segment_bytes,
        fsync: false,
    }
}

fn payload(i: u64) -> Vec<u8> {
    format!("entry number {i} with some payload bytes").into_bytes()
}

/// Writes ENTRIES entries and returns the segment files, oldest first.
fn write_log(dir: &Path, segment_bytes: u64) -> Vec<PathBuf> {
    let log = LocalLog::open(dir, opts(segment_bytes), 1).unwrap();
    for i in 1..=ENTRIES {
        assert_eq!(log.append(&payload(i)).unwrap(), i);
    }
    drop(log);
    segments(dir)
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// Byte offsets of the frames in a segment.
fn frame_offsets(path: &Path) -> Vec<usize> {
    let bytes = fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 16 <= bytes.len() {
        out.push(pos);
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 16 + len;
    }
    out
}

fn flip(path: &Path, offset: usize, mask: u8) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset] ^= mask;
    fs::write(path, bytes).unwrap();
}

fn read_all(log: &LocalLog) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    log.read_from(1, &mut |i, p| {
        out.push((i, p.to_vec()));
        Ok(())
    })
    .unwrap();
    out
}

fn expect_entries(log: &LocalLog, upto: u64) {
    let all = read_all(log);
    let want: Vec<(u64, Vec<u8>)> = (1..=upto).map(|i| (i, payload(i))).collect();
    assert_eq!(all, want);
}

/// The position classes of a frame header and payload: (name, byte within
/// the frame, bit mask). The high bit of the length makes it exceed the
/// limit; a low bit makes it slightly wrong.
const POSITIONS: [(&str, usize, u8); 6] = [
    ("length low bit", 0, 0x01),
    ("length high bit", 3, 0x80),
    ("checksum", 5, 0x10),
    ("index", 9, 0x02),
    ("payload first byte", 16, 0x40),
    ("payload last byte", 16 + 30, 0x01),
];

#[test]
fn damage_before_valid_frames_refuses_to_open_and_names_file_and_offset() {
    for frame_no in [0usize, 5] {
        for (what, at, mask) in POSITIONS {
            let dir = tempfile::tempdir().unwrap();
            let segs = write_log(dir.path(), 1 << 20);
            assert_eq!(segs.len(), 1);
            let offsets = frame_offsets(&segs[0]);
            let before = fs::read(&segs[0]).unwrap();
            flip(&segs[0], offsets[frame_no] + at, mask);
            let damaged = fs::read(&segs[0]).unwrap();
            let err = LocalLog::open(dir.path(), opts(1 << 20), 1)
                .err()
                .unwrap_or_else(|| panic!("{what} of frame {frame_no}: opened a damaged log"))
                .to_string();
            assert!(err.contains(&segs[0].display().to_string()), "{what}: {err}");
            assert!(
                err.contains(&format!("at byte {} (entry {})", offsets[frame_no], frame_no + 1)),
                "{what} of frame {frame_no}: {err}"
            );
            assert!(err.contains("repair-log"), "{err}");
            // Nothing was cut: the operator decides.
            assert_eq!(fs::read(&segs[0]).unwrap(), damaged, "{what}");
            assert_ne!(before, damaged);

            // The repair moves the damage aside; the log then opens with
            // every entry before the damaged one and continues after it.
            let report = repair(dir.path(), false).unwrap();
            assert!(report.changed);
            let (path, damage) = report.damage.unwrap();
            assert_eq!(path, segs[0]);
            assert_eq!(damage.offset as usize, offsets[frame_no]);
            assert!(report.set_aside[0].0.exists());
            let log = LocalLog::open(dir.path(), opts(1 << 20), 1).unwrap();
            expect_entries(&log, frame_no as u64);
            assert_eq!(log.append(b"next").unwrap(), frame_no as u64 + 1);
        }
    }
}

#[test]
fn damage_in_the_last_frame_is_a_torn_tail_and_is_cut() {
    for (what, at, mask) in POSITIONS {
        let dir = tempfile::tempdir().unwrap();
        let segs = write_log(dir.path(), 1 << 20);
        let offsets = frame_offsets(&segs[0]);
        flip(&segs[0], offsets[ENTRIES as usize - 1] + at, mask);
        let log = LocalLog::open(dir.path(), opts(1 << 20), 1).unwrap_or_else(|e| panic!("{what}: {e}"));
        expect_entries(&log, ENTRIES - 1);
        assert_eq!(log.append(b"x").unwrap(), ENTRIES);
    }
}

#[test]
fn a_write_cut_short_at_any_byte_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let segs = write_log(dir.path(), 1 << 20);
    let full = fs::read(&segs[0]).unwrap();
    let last = *frame_offsets(&segs[0]).last().unwrap();
    for cut in last + 1..full.len() {
        fs::write(&segs[0], &full[..cut]).unwrap();
        let log = LocalLog::open(dir.path(), opts(1 << 20), 1).unwrap();
        expect_entries(&log, ENTRIES - 1);
        drop(log);
        assert_eq!(
            fs::metadata(&segs[0]).unwrap().len() as usize,
            last,
            "cut at {cut}"
        );
    }
    // Zeros after the last frame (a file extended but never written).
    let mut zeros = full.clone();
    zeros.extend_from_slice(&[0u8; 100]);
    fs::write(&segs[0], &zeros).unwrap();
    let log = LocalLog::open(dir.path(), opts(1 << 20), 1).unwrap();
    expect_entries(&log, ENTRIES);
}

#[test]
fn any_damage_in_a_sealed_segment_refuses_to_open() {
    for (what, at, mask) in POSITIONS {
        let dir = tempfile::tempdir().unwrap();
        // Segments of about three frames each.
        let segs = write_log(dir.path(), 150);
        assert!(segs.len() >= 3, "{segs:?}");
        let offsets = frame_offsets(&segs[0]);
        let last_of_first = *offsets.last().unwrap();
        flip(&segs[0], last_of_first + at, mask);
        let err = LocalLog::open(dir.path(), opts(150), 1)
            .err()
            .unwrap_or_else(|| panic!("{what}: opened a damaged sealed segment"))
            .to_string();
        assert!(err.contains(&segs[0].display().to_string()), "{what}: {err}");
        assert!(err.contains(&format!("at byte {last_of_first}")), "{what}: {err}");

        // Dry run changes nothing; the repair sets aside the later segments.
        let dry = repair(dir.path(), true).unwrap();
        assert!(!dry.changed);
        assert_eq!(segments(dir.path()), segs);
        let report = repair(dir.path(), false).unwrap();
        assert_eq!(report.set_aside.len(), segs.len(), "{what}: {report:?}");
        let log = LocalLog::open(dir.path(), opts(150), 1).unwrap();
        expect_entries(&log, offsets.len() as u64 - 1);
    }
}

#[test]
fn a_sound_log_needs_no_repair() {
    let dir = tempfile::tempdir().unwrap();
    let segs = write_log(dir.path(), 150);
    let report = repair(dir.path(), false).unwrap();
    assert!(report.damage.is_none() && !report.changed && report.set_aside.is_empty());
    assert_eq!(segments(dir.path()), segs);
}
