//! Runs Prometheus's PromQL conformance files (`*.test`) against the
//! engine, once over the in-memory `MemStore` and once over the real
//! RocksDB store (`Tsdb` in a temporary directory, as Prometheus's own
//! promqltest runs on its real TSDB), and fails on any regression against
//! the checked-in list of known failures (`promqltest-known-failures.txt`).
//!
//! The files are looked up in `PROMQLTEST_DIR`, then in `shared/` next to
//! the checkout, then in `/work/shared`; `PROMQLTEST_FILTER` restricts the
//! run to files whose name contains it.

#[path = "promqltest_runner/mod.rs"]
mod runner;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use runner::{Counts, FileReport, Outcome};

fn test_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PROMQLTEST_DIR") {
        return PathBuf::from(d);
    }
    let candidates = [
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/promqltest/testdata"),
        PathBuf::from("/work/shared/promqltest/testdata"),
    ];
    candidates
        .iter()
        .find(|d| d.is_dir())
        .cloned()
        .unwrap_or_else(|| panic!("PromQL test files not found in {candidates:?}; set PROMQLTEST_DIR"))
}

/// The RocksDB store in a temporary directory, configured for test data:
/// samples from 1970 on (no retention bound), no fsync.
struct TsdbStore {
    tsdb: std::sync::Arc<fenghuo_storage::tsdb::Tsdb>,
    _dir: tempfile::TempDir,
}

impl runner::TestStore for TsdbStore {
    fn appender(&self) -> &dyn fenghuo_storage::api::Appender {
        &*self.tsdb
    }
    fn queryable(&self) -> &dyn fenghuo_storage::api::Queryable {
        &*self.tsdb
    }
}

impl Drop for TsdbStore {
    fn drop(&mut self) {
        let _ = self.tsdb.close();
    }
}

fn tsdb_store() -> Box<dyn runner::TestStore> {
    use fenghuo_storage::tsdb::{ManualClock, PromDuration, Tsdb, TsdbOptions};
    let dir = tempfile::tempdir().expect("temporary directory");
    let opts = TsdbOptions {
        retention: PromDuration::from_secs(0),
        out_of_order_window: PromDuration::from_secs(100 * 365 * 24 * 3600),
        fsync: false,
        ..TsdbOptions::default()
    };
    let tsdb = Tsdb::open_manual(dir.path(), opts, std::sync::Arc::new(ManualClock::new(0)))
        .expect("open the RocksDB store");
    Box::new(TsdbStore { tsdb, _dir: dir })
}

/// `file:line` → reason, from the known-failures list.
fn known_failures() -> BTreeMap<String, String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/promqltest-known-failures.txt");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, reason) = match line.split_once('#') {
            Some((k, r)) => (k.trim(), r.trim()),
            None => (line, ""),
        };
        out.insert(key.to_string(), reason.to_string());
    }
    out
}

/// How many `.test` files and `eval` commands `../shared/promqltest/testdata` holds.
const EXPECTED_FILES: usize = 21;
const EXPECTED_EVALS: usize = 2214;

#[test]
fn promqltest_files_on_memstore() {
    run_all(
        "MemStore",
        Box::new(|| Box::new(fenghuo_storage::memory::MemStore::new())),
    );
}

#[test]
fn promqltest_files_on_rocksdb_store() {
    run_all("Tsdb (RocksDB)", Box::new(tsdb_store));
}

fn run_all(store_name: &str, factory: Box<runner::StoreFactory>) {
    let mut report = String::new();
    let _ = writeln!(report, "store: {store_name}");
    let dir = test_dir();
    let filter = std::env::var("PROMQLTEST_FILTER").unwrap_or_default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(&filter))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .test files in {}", dir.display());

    let engine = runner::test_engine();
    let reports: Vec<FileReport> = std::thread::scope(|s| {
        let chunks: Vec<Vec<PathBuf>> = (0..2)
            .map(|i| files.iter().skip(i).step_by(2).cloned().collect())
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let engine = &engine;
                let factory = &factory;
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|p| runner::run_file(p, engine, factory))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<FileReport> = handles
            .into_iter()
            // A worker that panicked must fail the run, not drop its half of the files.
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect();
        all.sort_by(|a, b| a.file.cmp(&b.file));
        all
    });

    assert_eq!(
        reports.len(),
        files.len(),
        "{store_name}: ran {} of {} files",
        reports.len(),
        files.len()
    );
    let evals: usize = reports.iter().map(|r| r.evals.len()).sum();
    if filter.is_empty() {
        // The spec's size: a runner that silently stops reading evals (or a test
        // directory that lost files) must not pass as fewer failures.
        assert_eq!(
            (files.len(), evals),
            (EXPECTED_FILES, EXPECTED_EVALS),
            "{store_name}: (files, evals) run differ from what ../shared/promqltest holds; \
             update EXPECTED_FILES/EXPECTED_EVALS when the spec changed"
        );
    }

    let known = known_failures();
    let mut total = Counts::default();
    let mut regressions = Vec::new();
    let mut fixed = Vec::new();
    let mut skipped = Vec::new();
    let _ = writeln!(
        report,
        "{:<28} {:>5} {:>5} {:>5}   {:>13} {:>13}",
        "file", "pass", "fail", "skip", "non-hist", "hist"
    );
    for r in &reports {
        let c = r.counts();
        total.merge(&c);
        let _ = writeln!(
            report,
            "{:<28} {:>5} {:>5} {:>5}   {:>6}/{:<6} {:>6}/{:<6}",
            r.file, c.pass, c.fail, c.skip, c.float_pass, c.float_total, c.hist_pass, c.hist_total
        );
        for e in &r.evals {
            let key = format!("{}:{}", r.file, e.line);
            match &e.outcome {
                Outcome::Fail(reason) => {
                    let listed = known.contains_key(&key);
                    let _ = writeln!(
                        report,
                        "  FAIL {key}{} {} -- {reason}",
                        if listed { " (known)" } else { "" },
                        e.expr
                    );
                    if !listed {
                        regressions.push(format!("{key} {} -- {reason}", e.expr));
                    }
                }
                Outcome::Skip(reason) => {
                    // An eval the runner cannot even parse is a failure too: a parser
                    // regression must not pass as "skipped".
                    skipped.push(format!("{key} {} -- {reason}", e.expr));
                    if !known.contains_key(&key) {
                        regressions.push(format!("{key} {} -- skipped: {reason}", e.expr));
                    }
                }
                Outcome::Pass => {
                    if known.contains_key(&key) {
                        fixed.push(key);
                    }
                }
            }
        }
    }
    let _ = writeln!(
        report,
        "{:<28} {:>5} {:>5} {:>5}   {:>6}/{:<6} {:>6}/{:<6}",
        "TOTAL",
        total.pass,
        total.fail,
        total.skip,
        total.float_pass,
        total.float_total,
        total.hist_pass,
        total.hist_total
    );
    let _ = writeln!(
        report,
        "non-histogram evals passing: {:.1}%",
        100.0 * total.float_pass as f64 / total.float_total.max(1) as f64
    );
    let _ = writeln!(report, "skipped evals ({}):", skipped.len());
    for s in &skipped {
        let _ = writeln!(report, "  SKIP {s}");
    }
    if filter.is_empty() {
        let ran: std::collections::BTreeSet<&str> = reports.iter().map(|r| r.file.as_str()).collect();
        for key in known.keys() {
            let file = key.split(':').next().unwrap_or("");
            if !ran.contains(file) {
                continue;
            }
            let still_failing = reports
                .iter()
                .filter(|r| r.file == file)
                .flat_map(|r| r.evals.iter())
                .any(|e| {
                    format!("{file}:{}", e.line) == *key
                        && matches!(e.outcome, Outcome::Fail(_) | Outcome::Skip(_))
                });
            if !still_failing && !fixed.contains(key) {
                fixed.push(key.clone());
            }
        }
    }
    // `cargo test` shows a passing test's output only with `--nocapture`; the table is also kept
    // in a file so a green run's figures can be read afterwards.
    print!("{report}");
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "promqltest-{}.txt",
        store_name.split_whitespace().next().unwrap_or("store")
    ));
    if std::fs::write(&file, &report).is_ok() {
        println!("report written to {}", file.display());
    }
    assert!(
        regressions.is_empty() && fixed.is_empty(),
        "{store_name}: {} new failures (not in promqltest-known-failures.txt):\n{}\n{} listed failures now pass or no longer exist (remove them from the list):\n{}",
        regressions.len(),
        regressions.join("\n"),
        fixed.len(),
        fixed.join("\n")
    );
}
