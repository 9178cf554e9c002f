//! The conformance suite of [`ShardLog`]: every implementation runs it
//! (the local segment log today, the Raft log of a cluster next), as every
//! store runs `testing::run_all` and openraft's log stores run its
//! `testing::Suite`.
//!
//! Each check opens a fresh log in its own directory through the factory,
//! and may close it (drop) and open it again on the same directory to check
//! what survives. A check panics, naming itself, on a contract violation.
//!
//! ```ignore
//! conformance::run_all(&|dir| Arc::new(LocalLog::open(dir, opts.clone(), 1).unwrap()) as Arc<dyn ShardLog>);
//! ```

use std::path::Path;
use std::sync::Arc;

use super::ShardLog;

/// Opens the log kept in `dir` (creating it when empty).
pub type LogFactory<'a> = &'a dyn Fn(&Path) -> Arc<dyn ShardLog>;

/// One check: it opens logs in the directory it is given.
pub type Check = fn(LogFactory<'_>, &Path);

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = &[
    (
        "indexes_are_consecutive_from_one",
        indexes_are_consecutive_from_one,
    ),
    ("entries_read_back_exactly", entries_read_back_exactly),
    ("read_from_starts_where_asked", read_from_starts_where_asked),
    (
        "entries_survive_reopen_and_indexes_continue",
        entries_survive_reopen_and_indexes_continue,
    ),
    (
        "prefix_truncation_keeps_later_entries",
        prefix_truncation_keeps_later_entries,
    ),
    (
        "truncated_indexes_are_never_reused",
        truncated_indexes_are_never_reused,
    ),
    (
        "concurrent_appends_get_distinct_consecutive_indexes",
        concurrent_appends_get_distinct_consecutive_indexes,
    ),
    (
        "size_follows_appends_and_truncation",
        size_follows_appends_and_truncation,
    ),
];

/// Runs every check, each on a fresh directory under a temporary one.
pub fn run_all(factory: LogFactory<'_>) {
    run_except(factory, &[]);
}

/// Runs every check not named in `skip`.
pub fn run_except(factory: LogFactory<'_>, skip: &[&str]) {
    let base = std::env::temp_dir().join(format!(
        "fenghuo-log-conformance-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    for (name, check) in CHECKS {
        if skip.contains(name) {
            continue;
        }
        let dir = base.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        check(factory, &dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&base);
}

fn entry(i: u64) -> Vec<u8> {
    // Sizes vary, one is empty, one spans many pages.
    match i % 5 {
        0 => Vec::new(),
        3 => vec![(i % 251) as u8; 200_000],
        _ => format!("entry {i}").into_bytes(),
    }
}

fn read_all(log: &dyn ShardLog, from: u64) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    log.read_from(from, &mut |i, bytes| {
        out.push((i, bytes.to_vec()));
        Ok(())
    })
    .unwrap_or_else(|e| panic!("read_from({from}): {e}"));
    out
}

fn append(log: &dyn ShardLog, bytes: &[u8]) -> u64 {
    log.append(bytes).unwrap_or_else(|e| panic!("append: {e}"))
}

/// A new log starts at index 1; each append gets the next index;
/// `last_index` follows.
pub fn indexes_are_consecutive_from_one(factory: LogFactory<'_>, dir: &Path) {
    let log = factory(dir);
    assert_eq!(log.last_index(), 0, "an empty log's last index");
    for i in 1..=20 {
        assert_eq!(append(log.as_ref(), &entry(i)), i);
        assert_eq!(log.last_index(), i);
    }
}

/// `read_from(1)` yields every entry with the bytes appended, in order.
pub fn entries_read_back_exactly(factory: LogFactory<'_>, dir: &Path) {
    let log = factory(dir);
    for i in 1..=12 {
        append(log.as_ref(), &entry(i));
    }
    let all = read_all(log.as_ref(), 1);
    assert_eq!(all.len(), 12);
    for (i, bytes) in all {
        assert_eq!(bytes, entry(i), "entry {i}");
    }
}

/// `read_from(i)` starts at `i`, and past the end yields nothing.
pub fn read_from_starts_where_asked(factory: LogFactory<'_>, dir: &Path) {
    let log = factory(dir);
    for i in 1..=10 {
        append(log.as_ref(), &entry(i));
    }
    for from in [1, 4, 10] {
        let got: Vec<u64> = read_all(log.as_ref(), from).into_iter().map(|(i, _)| i).collect();
        assert_eq!(got, (from..=10).collect::<Vec<_>>(), "read_from({from})");
    }
    assert!(read_all(log.as_ref(), 11).is_empty());
}

/// What was appended (and returned) survives closing and reopening, and
/// new appends continue after it.
pub fn entries_survive_reopen_and_indexes_continue(factory: LogFactory<'_>, dir: &Path) {
    {
        let log = factory(dir);
        for i in 1..=7 {
            append(log.as_ref(), &entry(i));
        }
    }
    let log = factory(dir);
    assert_eq!(log.last_index(), 7);
    assert_eq!(read_all(log.as_ref(), 1).len(), 7);
    assert_eq!(append(log.as_ref(), &entry(8)), 8);
    assert_eq!(read_all(log.as_ref(), 8), vec![(8, entry(8))]);
}

/// `truncate_prefix(i)` never drops an entry after `i` (entries up to `i`
/// may linger: truncation may be lazy), also across a reopen.
pub fn prefix_truncation_keeps_later_entries(factory: LogFactory<'_>, dir: &Path) {
    {
        let log = factory(dir);
        for i in 1..=30 {
            append(log.as_ref(), &entry(i));
        }
        log.truncate_prefix(17)
            .unwrap_or_else(|e| panic!("truncate_prefix: {e}"));
        let kept = read_all(log.as_ref(), 18);
        assert_eq!(
            kept.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (18..=30).collect::<Vec<_>>()
        );
        let from_one = read_all(log.as_ref(), 1);
        assert!(from_one.iter().all(|(i, b)| *b == entry(*i)));
        assert_eq!(from_one.last().map(|(i, _)| *i), Some(30));
    }
    let log = factory(dir);
    let kept = read_all(log.as_ref(), 18);
    assert_eq!(kept.len(), 13, "after reopen");
    assert!(kept.iter().all(|(i, b)| *b == entry(*i)));
}

/// Truncating everything does not reset the indexes.
pub fn truncated_indexes_are_never_reused(factory: LogFactory<'_>, dir: &Path) {
    {
        let log = factory(dir);
        for i in 1..=9 {
            append(log.as_ref(), &entry(i));
        }
        log.truncate_prefix(9)
            .unwrap_or_else(|e| panic!("truncate_prefix: {e}"));
        assert_eq!(append(log.as_ref(), &entry(10)), 10);
        log.truncate_prefix(10)
            .unwrap_or_else(|e| panic!("truncate_prefix: {e}"));
    }
    let log = factory(dir);
    assert_eq!(log.last_index(), 10);
    assert_eq!(append(log.as_ref(), &entry(11)), 11);
}

/// Appends from many threads get distinct, consecutive indexes, and each
/// index holds the bytes its appender wrote.
pub fn concurrent_appends_get_distinct_consecutive_indexes(factory: LogFactory<'_>, dir: &Path) {
    let log = factory(dir);
    let per_thread = 40u64;
    let threads = 6u64;
    let got: Vec<(u64, Vec<u8>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let log = log.clone();
                s.spawn(move || {
                    (0..per_thread)
                        .map(|n| {
                            let bytes = format!("thread {t} entry {n}").into_bytes();
                            (append(log.as_ref(), &bytes), bytes)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut indexes: Vec<u64> = got.iter().map(|(i, _)| *i).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (1..=threads * per_thread).collect::<Vec<_>>());
    let stored: std::collections::BTreeMap<u64, Vec<u8>> = read_all(log.as_ref(), 1).into_iter().collect();
    for (i, bytes) in got {
        assert_eq!(stored.get(&i), Some(&bytes), "entry {i}");
    }
}

/// `size_bytes` grows with appends and does not grow with truncation.
pub fn size_follows_appends_and_truncation(factory: LogFactory<'_>, dir: &Path) {
    let log = factory(dir);
    let empty = log.size_bytes();
    for i in 1..=8 {
        append(log.as_ref(), &entry(i));
    }
    let full = log.size_bytes();
    assert!(full > empty + 200_000, "{empty} -> {full}");
    log.truncate_prefix(8)
        .unwrap_or_else(|e| panic!("truncate_prefix: {e}"));
    assert!(log.size_bytes() <= full);
}
