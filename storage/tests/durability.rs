//! Durability under `kill -9`: a write acknowledged by `append` survives the
//! process being killed at any moment (mid-append, mid-checkpoint,
//! mid-compaction).
//!
//! The test binary re-executes itself as a child (`child_writer`, selected
//! by `--exact` and enabled by an environment variable). The child writes
//! from several threads with aggressive checkpoint and compaction intervals
//! and prints each acknowledged batch; the parent kills it with SIGKILL
//! after a while, several times in a row on the same directory, then
//! reopens the store and checks every acknowledged sample.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fenghuo_storage::api::{Appender, Queryable, SelectHints};
use fenghuo_storage::model::Matcher;
use fenghuo_storage::testing::{batch, series, tenant};
use fenghuo_storage::tsdb::{PromDuration, Tsdb, TsdbOptions};

const CHILD_DIR: &str = "FENGHUO_DURABILITY_CHILD_DIR";
const CHILD_ROUND: &str = "FENGHUO_DURABILITY_ROUND";
const WRITERS: usize = 3;

fn opts() -> TsdbOptions {
    TsdbOptions {
        checkpoint_interval: PromDuration::from_millis(40),
        compaction_interval: PromDuration::from_millis(70),
        chunk_max_samples: 8,
        ..Default::default()
    }
}

/// The child: only does anything when started by the parent test.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR) else { return };
    let round: i64 = std::env::var(CHILD_ROUND)
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let db = Tsdb::open(Path::new(&dir), opts()).expect("child opens the store");
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
        - 3_600_000;
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let db: Arc<Tsdb> = db.clone();
            std::thread::spawn(move || {
                for b in 0i64.. {
                    let t = base + round * 10_000_000 + b * 1000;
                    let wl = format!("w{w}");
                    let bl = format!("r{round}b{b}");
                    let out = db
                        .append(
                            &tenant("dur"),
                            batch(vec![
                                series(&[("__name__", "dur"), ("writer", &wl)], &[(t, b as f64)]),
                                series(
                                    &[("__name__", "dur_new"), ("batch", &bl), ("writer", &wl)],
                                    &[(t, 1.0)],
                                ),
                            ]),
                        )
                        .expect("append");
                    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
                    println!("ACK {w} {round} {b} {t}");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

#[test]
fn kill9_keeps_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // (writer, round, batch) -> timestamp
    let mut acked: HashMap<(usize, i64, i64), i64> = HashMap::new();
    for round in 0..3i64 {
        let mut child = Command::new(&exe)
            .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let started = Instant::now();
        let mut n = 0;
        // Let it run through many checkpoints (40 ms) and compactions.
        let run_for = Duration::from_millis(800 + 300 * round as u64);
        while (n < 100 || started.elapsed() < run_for) && started.elapsed() < Duration::from_secs(120) {
            let Some(Ok(line)) = lines.next() else { break };
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.len() == 5 && parts[0] == "ACK" {
                let w: usize = parts[1].parse().unwrap();
                let r: i64 = parts[2].parse().unwrap();
                let b: i64 = parts[3].parse().unwrap();
                let t: i64 = parts[4].parse().unwrap();
                acked.insert((w, r, b), t);
                n += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        // Acks printed before the kill but not read yet count too.
        for line in lines.map_while(Result::ok) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.len() == 5 && parts[0] == "ACK" {
                let key = (
                    parts[1].parse().unwrap(),
                    parts[2].parse().unwrap(),
                    parts[3].parse().unwrap(),
                );
                acked.insert(key, parts[4].parse().unwrap());
            }
        }
        assert!(n > 0, "round {round}: the child acknowledged nothing");
    }
    let db = Tsdb::open(dir.path(), opts()).unwrap();
    let q = db.querier(&tenant("dur")).unwrap();
    let all = SelectHints {
        start: i64::MIN,
        end: i64::MAX,
        max_samples: None,
    };
    let got = q.select(&[Matcher::equal("__name__", "dur")], &all).unwrap();
    assert_eq!(got.len(), WRITERS);
    let mut missing = Vec::new();
    for ((w, r, b), t) in &acked {
        let s = &got[*w].floats;
        match s.binary_search_by_key(t, |x| x.t) {
            Ok(i) if s[i].v == *b as f64 => {}
            _ => missing.push((*w, *r, *b)),
        }
    }
    let new_series = q
        .series_labels(i64::MIN, i64::MAX, &[Matcher::equal("__name__", "dur_new")])
        .unwrap();
    assert!(
        missing.is_empty(),
        "{} acknowledged samples lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        new_series.len() >= acked.len(),
        "acknowledged series lost: {} < {}",
        new_series.len(),
        acked.len()
    );
    eprintln!(
        "kill -9: {} acknowledged batches all present after 3 kills",
        acked.len()
    );
}
