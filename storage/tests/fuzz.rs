//! Bounded fuzzing of what storage reads back from disk: log entries and
//! whole shard-log segments. Damaged bytes must give an error (or a cut
//! torn tail), never a panic or an allocation sized by garbage.

use fenghuo_storage::fuzz;
use fenghuo_storage::replicate::{LocalLog, LocalLogOptions, LogEntry, ShardLog};
use fenghuo_storage::testing::{batch, series, tenant};

fn entries() -> Vec<Vec<u8>> {
    let b = batch(vec![
        series(&[("__name__", "up"), ("job", "a")], &[(1, 1.0), (2, 2.0)]),
        series(
            &[("__name__", "http_requests_total"), ("code", "500")],
            &[(3, 7.5)],
        ),
    ]);
    vec![
        LogEntry::Write {
            tenant: tenant("t"),
            now_ms: 1_700_000_000_000,
            batch: b.clone(),
            refs: vec![None, Some(42)],
        }
        .encode(),
        LogEntry::Tick { now_ms: 5 }.encode(),
        fenghuo_storage::replicate::entry::encode_write_entry(&tenant("other"), 9, &b, &[]),
    ]
}

#[test]
fn log_entries_decode_or_fail_cleanly() {
    let seeds = entries();
    for s in &seeds {
        assert!(LogEntry::decode(s).is_ok());
    }
    let runs = fuzz::run(
        "log entry",
        0x10e,
        &seeds,
        &[&[0xff; 9], &[0x80; 10], &[0]],
        |input| {
            let _ = LogEntry::decode(input);
        },
    );
    assert!(runs > seeds.len());
}

#[test]
fn damaged_segments_open_with_an_error_or_a_cut_tail() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LocalLogOptions {
        segment_bytes: 1 << 20,
        fsync: false,
    };
    {
        let log = LocalLog::open(dir.path(), opts.clone(), 1).unwrap();
        for e in entries().iter().cycle().take(9) {
            log.append(e).unwrap();
        }
    }
    let segment = dir.path().join(format!("{:020}.log", 1));
    let clean = std::fs::read(&segment).unwrap();
    let runs = fuzz::run("log segment", 0x5e9, &[clean], &[&[0; 16], &[0xff; 4]], |input| {
        std::fs::write(&segment, input).unwrap();
        if let Ok(log) = LocalLog::open(dir.path(), opts.clone(), 1) {
            // Whatever opened reads back without panicking, and entries
            // stay consecutive from 1.
            let mut next = 1;
            let read = log.read_from(1, &mut |i, bytes| {
                assert_eq!(i, next);
                next += 1;
                let _ = LogEntry::decode(bytes);
                Ok(())
            });
            assert!(read.is_ok());
        }
        // Start the next input from a single segment again.
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let p = e.unwrap().path();
            if p != segment {
                let _ = std::fs::remove_file(p);
            }
        }
    });
    assert!(runs > 1);
}
