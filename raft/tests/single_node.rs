//! The store on one-member Raft groups: concurrent writes are coalesced
//! into entries and all come back; a restart re-applies the log; a
//! checkpoint leads to a snapshot and a purged log; a store that ran on the
//! local log moves to Raft with its data.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fenghuo_raft::{LogStoreOptions, RaftReplicas};
use fenghuo_storage::api::{Appender, Queryable, SelectHints};
use fenghuo_storage::model::{MatchOp, Matcher};
use fenghuo_storage::testing::{T0, batch, copy_dir, series, tenant};
use fenghuo_storage::tsdb::{ManualClock, StateDigest, Tsdb, TsdbOptions};

fn opts() -> TsdbOptions {
    TsdbOptions {
        shards: 4,
        ..TsdbOptions::default()
    }
}

fn open(dir: &std::path::Path, replicas: &RaftReplicas) -> Arc<Tsdb> {
    Tsdb::open_with_replicas(dir, opts(), Arc::new(ManualClock::new(T0)), false, replicas).expect("open")
}

/// Writes `threads` x `rounds` batches of 50 series, one sample each.
fn write(db: &Arc<Tsdb>, threads: usize, rounds: i64, t_offset: i64) {
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for r in 0..rounds {
                    let b = batch(
                        (0..50)
                            .map(|i| {
                                let (th, inst) = (format!("t{t}"), format!("i{i}"));
                                series(
                                    &[
                                        ("__name__", "w"),
                                        ("thread", th.as_str()),
                                        ("instance", inst.as_str()),
                                    ],
                                    &[(T0 + t_offset + r * 1000, (r * 100 + i) as f64)],
                                )
                            })
                            .collect(),
                    );
                    let out = db.append(&tenant("a"), b).expect("append");
                    assert_eq!(out.samples_written, 50, "{out:?}");
                }
            });
        }
    });
}

fn samples(db: &Tsdb) -> usize {
    db.querier(&tenant("a"))
        .unwrap()
        .select(
            &[Matcher::new(MatchOp::Equal, "__name__", "w").unwrap()],
            &SelectHints {
                start: T0 - 1,
                end: T0 + 10_000_000,
                max_samples: None,
            },
        )
        .unwrap()
        .iter()
        .map(|s| s.floats.len())
        .sum()
}

fn digests(db: &Tsdb) -> Vec<StateDigest> {
    db.digests().unwrap()
}

#[test]
fn concurrent_writes_all_come_back_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let replicas = RaftReplicas::single_node(LogStoreOptions::default()).unwrap();
    let db = open(dir.path(), &replicas);
    write(&db, 8, 20, 0);
    assert_eq!(samples(&db), 8 * 20 * 50);
    let before = digests(&db);
    // Four shards' groups took 160 proposals: coalescing means fewer
    // entries than proposals (entries count in the applied index).
    let entries: u64 = before.iter().map(|d| d.applied_index).sum();
    assert!(entries > 4, "{before:?}");
    drop(db);
    let db = open(dir.path(), &replicas);
    assert_eq!(digests(&db), before);
    write(&db, 2, 5, 100_000);
    assert_eq!(samples(&db), 8 * 20 * 50 + 2 * 5 * 50);
}

#[test]
fn a_checkpoint_snapshots_and_purges_the_log_and_a_restart_uses_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let replicas = RaftReplicas::single_node(LogStoreOptions::default()).unwrap();
    let db = open(dir.path(), &replicas);
    write(&db, 4, 10, 0);
    let full = db.stats().log_bytes;
    assert!(full > 0);
    db.checkpoint().unwrap();
    // The snapshot is built and the log purged in the background.
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.stats().log_bytes >= full / 10 {
        assert!(
            Instant::now() < deadline,
            "log still {} bytes of {full}",
            db.stats().log_bytes
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for shard in 0..4 {
        let snaps = dir.path().join(format!("shard-{shard:04}/snapshots"));
        let n = std::fs::read_dir(&snaps).unwrap().count();
        assert_eq!(n, 1, "one snapshot kept in {}", snaps.display());
    }
    write(&db, 1, 3, 50_000);
    let before = digests(&db);
    drop(db);
    // Closing checkpoints, snapshots and purges: a stopped node keeps no log.
    for shard in 0..4 {
        let log = dir.path().join(format!("shard-{shard:04}/raft/log"));
        let bytes: u64 = std::fs::read_dir(&log)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert_eq!(bytes, 0, "{} after a clean stop", log.display());
    }
    let db = open(dir.path(), &replicas);
    assert_eq!(digests(&db), before);
    assert_eq!(samples(&db), 4 * 10 * 50 + 3 * 50);
}

#[test]
fn a_store_on_the_local_log_moves_to_raft_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let local = Tsdb::open_manual(dir.path(), opts(), clock).unwrap();
    write(&local, 2, 10, 0);
    // Half of it checkpointed, half only in the local log.
    local.checkpoint().unwrap();
    write(&local, 2, 10, 20_000);
    let before = digests(&local);
    // Simulate a crash: copy the files of the running store.
    let image = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), image.path());
    drop(local);
    let replicas = RaftReplicas::single_node(LogStoreOptions::default()).unwrap();
    let db = open(image.path(), &replicas);
    assert_eq!(
        digests(&db)
            .iter()
            .map(|d| (d.series, d.samples, d.hash))
            .collect::<Vec<_>>(),
        before
            .iter()
            .map(|d| (d.series, d.samples, d.hash))
            .collect::<Vec<_>>()
    );
    assert!(!image.path().join("shard-0000/log").exists());
    write(&db, 1, 2, 100_000);
    let after = digests(&db);
    drop(db);
    let db = open(image.path(), &replicas);
    assert_eq!(digests(&db), after);
    assert_eq!(samples(&db), 4 * 10 * 50 + 2 * 50);
}

#[test]
fn a_store_on_raft_refuses_to_go_back_to_the_local_log() {
    let dir = tempfile::tempdir().unwrap();
    let replicas = RaftReplicas::single_node(LogStoreOptions::default()).unwrap();
    let db = open(dir.path(), &replicas);
    write(&db, 1, 2, 0);
    drop(db);
    let err = match Tsdb::open_manual(dir.path(), opts(), Arc::new(ManualClock::new(T0))) {
        Ok(_) => panic!("the local log opened a store that runs on Raft"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("cannot go back to the local log"), "{err}");
    // And Raft still opens it with everything.
    let db = open(dir.path(), &replicas);
    assert_eq!(samples(&db), 2 * 50);
}
