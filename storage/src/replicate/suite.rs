//! The conformance suite of replicators ([`super::Replicator`], opened
//! through a [`ReplicaFactory`]): the store on top of them must behave the
//! same whichever commits its entries. The local log runs it
//! (`storage/tests/replica_conformance.rs`) and so do one-member Raft
//! groups (`raft/tests/replica_conformance.rs`); the shard log itself has
//! its own suite ([`super::conformance`]), and openraft's storage traits
//! openraft's.
//!
//! Each check opens stores with the factory in the directory it is given,
//! may close and reopen them, and panics naming itself on a violation.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{Appender, Queryable, SelectHints};
use crate::model::{MatchOp, Matcher, WriteBatch};
use crate::testing::{T0, batch, series, tenant};
use crate::tsdb::{ManualClock, ReplicaFactory, Tsdb, TsdbOptions};

/// One check: it opens stores in the directory it is given.
pub type Check = fn(&dyn ReplicaFactory, &Path);

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = &[
    (
        "each_proposer_gets_its_own_outcome_under_concurrency",
        each_proposer_gets_its_own_outcome_under_concurrency,
    ),
    (
        "a_restart_keeps_everything_acknowledged",
        a_restart_keeps_everything_acknowledged,
    ),
    (
        "the_same_writes_give_the_same_digest",
        the_same_writes_give_the_same_digest,
    ),
    ("checkpoints_release_the_log", checkpoints_release_the_log),
    ("a_closed_store_refuses_writes", a_closed_store_refuses_writes),
];

/// Runs every check, each in a fresh directory under a temporary one.
pub fn run_all(replicas: &dyn ReplicaFactory) {
    let base = std::env::temp_dir().join(format!(
        "fenghuo-replica-conformance-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    for (name, check) in CHECKS {
        let dir = base.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        check(replicas, &dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&base);
}

fn opts() -> TsdbOptions {
    TsdbOptions {
        shards: 2,
        ..TsdbOptions::default()
    }
}

fn open(replicas: &dyn ReplicaFactory, dir: &Path) -> Arc<Tsdb> {
    Tsdb::open_with_replicas(dir, opts(), Arc::new(ManualClock::new(T0)), false, replicas)
        .unwrap_or_else(|e| panic!("opening the store in {}: {e}", dir.display()))
}

/// `n` series of metric `name`, one sample each at `t`.
fn writes(name: &str, n: usize, t: i64) -> WriteBatch {
    batch(
        (0..n)
            .map(|i| {
                let inst = format!("i{i}");
                series(
                    &[("__name__", name), ("instance", inst.as_str())],
                    &[(t, i as f64)],
                )
            })
            .collect(),
    )
}

fn count(db: &Tsdb, name: &str) -> usize {
    db.querier(&tenant("a"))
        .expect("querier")
        .select(
            &[Matcher::new(MatchOp::Equal, "__name__", name).expect("matcher")],
            &SelectHints {
                start: T0 - 1,
                end: T0 + 100_000_000,
                max_samples: None,
            },
        )
        .expect("select")
        .iter()
        .map(|s| s.floats.len())
        .sum()
}

/// Concurrent proposers each learn what their own batch did: proposer `k`
/// writes `k + 1` new samples, then one conflicting with them (same time,
/// another value), and must be told exactly that, whatever was batched
/// with it.
pub fn each_proposer_gets_its_own_outcome_under_concurrency(replicas: &dyn ReplicaFactory, dir: &Path) {
    let db = open(replicas, dir);
    std::thread::scope(|s| {
        for k in 0..8usize {
            let db = &db;
            s.spawn(move || {
                let name = format!("p{k}");
                for round in 0..20i64 {
                    let t = T0 + round * 1000;
                    let out = db.append(&tenant("a"), writes(&name, k + 1, t)).expect("append");
                    assert_eq!(out.samples_written, (k + 1) as u64, "proposer {k}: {out:?}");
                    // The same timestamp with another value: refused.
                    let mut conflict = writes(&name, 1, t);
                    conflict.series[0].samples[0].v = -1.0;
                    let again = db.append(&tenant("a"), conflict).expect("append");
                    assert_eq!(
                        (again.samples_written, again.rejected.len()),
                        (0, 1),
                        "proposer {k}'s conflicting sample: {again:?}"
                    );
                }
            });
        }
    });
    for k in 0..8usize {
        assert_eq!(
            count(&db, &format!("p{k}")),
            (k + 1) * 20,
            "proposer {k}'s samples"
        );
    }
}

/// What was acknowledged is there after a restart, and writing goes on.
pub fn a_restart_keeps_everything_acknowledged(replicas: &dyn ReplicaFactory, dir: &Path) {
    let db = open(replicas, dir);
    for round in 0..10i64 {
        db.append(&tenant("a"), writes("r", 30, T0 + round * 1000))
            .expect("append");
    }
    let before = db.digests().expect("digest");
    drop(db);
    let db = open(replicas, dir);
    assert_eq!(db.digests().expect("digest"), before, "after a restart");
    db.append(&tenant("a"), writes("r", 30, T0 + 10_000))
        .expect("append");
    drop(db);
    let db = open(replicas, dir);
    assert_eq!(count(&db, "r"), 30 * 11);
}

/// Two stores given the same writes in the same order reach the same
/// state at the same index (invariant 2).
pub fn the_same_writes_give_the_same_digest(replicas: &dyn ReplicaFactory, dir: &Path) {
    let a = open(replicas, &dir.join("a"));
    let b = open(replicas, &dir.join("b"));
    for round in 0..15i64 {
        let w = writes("d", 25, T0 + (round % 5) * 1000 + round);
        a.append(&tenant("a"), w.clone()).expect("append a");
        b.append(&tenant("a"), w).expect("append b");
        if round % 4 == 0 {
            a.checkpoint().expect("checkpoint a");
        }
    }
    a.tick().expect("tick a");
    b.tick().expect("tick b");
    let (x, y) = (a.digests().expect("digest a"), b.digests().expect("digest b"));
    assert!(x.iter().map(|d| d.samples).sum::<u64>() > 0, "{x:?}");
    assert_eq!(x, y);
}

/// After a checkpoint the log no longer holds what it covers (the
/// replicator may release it in the background), and a restart still
/// finds everything.
pub fn checkpoints_release_the_log(replicas: &dyn ReplicaFactory, dir: &Path) {
    let db = open(replicas, dir);
    for round in 0..20i64 {
        db.append(&tenant("a"), writes("c", 50, T0 + round * 1000))
            .expect("append");
    }
    let full = db.stats().log_bytes;
    assert!(full > 0, "the writes are in the log");
    db.checkpoint().expect("checkpoint");
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.stats().log_bytes > full / 10 {
        assert!(
            Instant::now() < deadline,
            "the log still holds {} of {full} bytes",
            db.stats().log_bytes
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    db.append(&tenant("a"), writes("c", 50, T0 + 20_000))
        .expect("append");
    drop(db);
    let db = open(replicas, dir);
    assert_eq!(count(&db, "c"), 50 * 21);
}

/// A closed store answers writes with an error, not a hang or a panic.
pub fn a_closed_store_refuses_writes(replicas: &dyn ReplicaFactory, dir: &Path) {
    let db = open(replicas, dir);
    db.append(&tenant("a"), writes("x", 1, T0)).expect("append");
    db.close().expect("close");
    assert!(db.append(&tenant("a"), writes("x", 1, T0 + 1000)).is_err());
}
