//! Behaviour specific to the RocksDB store: out-of-order window, retention
//! bounds and deletion, series limits, log replay from a crash image,
//! determinism of replay, compaction, sharding and concurrency.

use std::path::Path;
use std::sync::Arc;

use fenghuo_storage::StorageError;
use fenghuo_storage::api::{Appender, Queryable, RejectReason, SelectHints, Series};
use fenghuo_storage::model::{
    Exemplar, HistogramSample, MatchOp, Matcher, MetricMetadata, MetricType, Sample, SeriesWrite, WriteBatch,
};
use fenghuo_storage::testing::{T0, batch, copy_dir, labels, series, tenant};
use fenghuo_storage::tsdb::{ManualClock, PromDuration, Tsdb, TsdbOptions};

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

fn open(dir: &Path, opts: TsdbOptions, clock: &Arc<ManualClock>) -> Arc<Tsdb> {
    Tsdb::open_manual(dir, opts, clock.clone()).expect("open")
}

fn all(db: &Tsdb, t: &str) -> Vec<Series> {
    db.querier(&tenant(t))
        .unwrap()
        .select(
            &[Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()],
            &SelectHints {
                start: i64::MIN,
                end: i64::MAX,
                max_samples: None,
            },
        )
        .unwrap()
}

/// One sample at `t` for each of `n` series `noise{instance="h<i>"}`, with xorshift values so
/// the data does not compress to nothing.
fn noise_batch(seed: &mut u64, n: usize, t: i64) -> WriteBatch {
    batch(
        (0..n)
            .map(|i| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                let inst = format!("h{i}");
                series(
                    &[("__name__", "noise"), ("instance", &inst)],
                    &[(t, (*seed % 1_000_000) as f64)],
                )
            })
            .collect(),
    )
}

/// A mixed workload: floats, histograms, out-of-order samples, metadata,
/// exemplars, stale markers, two tenants.
fn workload(db: &Tsdb, clock: &ManualClock, from: i64, to: i64) {
    for r in from..to {
        clock.set(T0 + r * 15_000 + HOUR);
        let t = T0 + r * 15_000;
        let mut ws = Vec::new();
        for i in 0..20 {
            let inst = format!("i{i}");
            ws.push(SeriesWrite {
                labels: labels(&[("__name__", "cpu"), ("instance", &inst)]),
                samples: vec![Sample {
                    t,
                    v: (r * 100 + i) as f64 / 4.0,
                }],
                exemplars: if i == 0 {
                    vec![Exemplar {
                        labels: labels(&[("trace_id", &format!("t{r}"))]),
                        value: 1.0,
                        t,
                    }]
                } else {
                    vec![]
                },
                ..Default::default()
            });
        }
        if r > 2 {
            // Late sample for an earlier timestamp of another series.
            ws.push(series(&[("__name__", "late")], &[(t - 30_000, r as f64)]));
        }
        ws.push(SeriesWrite {
            labels: labels(&[("__name__", "lat")]),
            histograms: vec![HistogramSample {
                t,
                h: Arc::new(fenghuo_storage::model::FloatHistogram {
                    count: r as f64,
                    sum: r as f64 * 0.5,
                    ..Default::default()
                }),
            }],
            ..Default::default()
        });
        let b = WriteBatch {
            series: ws,
            metadata: vec![MetricMetadata {
                metric_family: "cpu".into(),
                metric_type: MetricType::Counter,
                help: format!("round {r}"),
                unit: String::new(),
            }],
        };
        let out = db.append(&tenant("a"), b).unwrap();
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        db.append(
            &tenant("b"),
            batch(vec![series(&[("__name__", "b_only")], &[(t, r as f64)])]),
        )
        .unwrap();
    }
    db.append(
        &tenant("a"),
        batch(vec![series(
            &[("__name__", "cpu"), ("instance", "i0")],
            &[(
                T0 + (to - 1) * 15_000 + 7_500,
                fenghuo_storage::model::stale_nan(),
            )],
        )]),
    )
    .unwrap();
}

/// Everything a tenant can read, rendered for comparison (NaN-safe).
fn snapshot(db: &Tsdb, t: &str) -> String {
    let q = db.querier(&tenant(t)).unwrap();
    let mut out = String::new();
    for s in all(db, t) {
        out.push_str(&format!("{}\n", s.labels));
        for x in &s.floats {
            out.push_str(&format!("  {} {:x}\n", x.t, x.v.to_bits()));
        }
        for h in &s.histograms {
            out.push_str(&format!("  {} {:?}\n", h.t, h.h));
        }
    }
    out.push_str(&format!("{:?}\n", q.metadata(None).unwrap()));
    let ex = q
        .exemplars(
            i64::MIN,
            i64::MAX,
            &[vec![Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()]],
        )
        .unwrap();
    out.push_str(&format!("{ex:?}\n"));
    out.push_str(&format!(
        "{:?}\n",
        q.label_names(i64::MIN, i64::MAX, &[]).unwrap()
    ));
    out
}

#[test]
fn out_of_order_window_and_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let opts = TsdbOptions {
        out_of_order_window: PromDuration::from_secs(600),
        retention: PromDuration::from_secs(2 * 86_400),
        ..Default::default()
    };
    let db = open(dir.path(), opts, &clock);
    let l = [("__name__", "x")];
    db.append(&tenant("a"), batch(vec![series(&l, &[(T0, 1.0)])]))
        .unwrap();
    let out = db
        .append(
            &tenant("a"),
            batch(vec![series(
                &l,
                &[(T0 - 11 * MIN, 2.0), (T0 - 9 * MIN, 3.0), (T0 - 3 * DAY, 4.0)],
            )]),
        )
        .unwrap();
    assert_eq!(out.samples_written, 1);
    let reasons: Vec<_> = out
        .rejected
        .iter()
        .map(|r| (r.timestamp, r.reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (T0 - 3 * DAY, RejectReason::OutOfBounds),
            (T0 - 11 * MIN, RejectReason::OutOfOrder)
        ]
    );
    // A new series may start anywhere within retention.
    let out = db
        .append(
            &tenant("a"),
            batch(vec![series(&[("__name__", "y")], &[(T0 - DAY, 1.0)])]),
        )
        .unwrap();
    assert_eq!(out.samples_written, 1);
    let got = all(&db, "a");
    assert_eq!(
        got[0].floats,
        vec![
            Sample {
                t: T0 - 9 * MIN,
                v: 3.0
            },
            Sample { t: T0, v: 1.0 }
        ]
    );
}

#[test]
fn duplicate_detection_reaches_flushed_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let opts = TsdbOptions {
        chunk_max_samples: 4,
        ..Default::default()
    };
    let db = open(dir.path(), opts, &clock);
    let l = [("__name__", "x")];
    let pts: Vec<(i64, f64)> = (0..20).map(|i| (T0 + i * 1000, i as f64)).collect();
    db.append(&tenant("a"), batch(vec![series(&l, &pts)])).unwrap();
    db.checkpoint().unwrap();
    let out = db
        .append(
            &tenant("a"),
            batch(vec![series(&l, &[(T0 + 1000, 1.0), (T0 + 2000, 7.0)])]),
        )
        .unwrap();
    assert_eq!(out.samples_written, 1, "exact duplicate of a flushed sample");
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].reason, RejectReason::DuplicateTimestamp);
    assert_eq!(all(&db, "a")[0].floats.len(), 20);
}

#[test]
fn series_limit_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let opts = TsdbOptions {
        max_series_per_tenant: 2,
        ..Default::default()
    };
    let db = open(dir.path(), opts, &clock);
    let out = db
        .append(
            &tenant("a"),
            batch(vec![
                series(&[("__name__", "s1")], &[(T0, 1.0)]),
                series(&[("__name__", "s2")], &[(T0, 1.0)]),
                series(&[("__name__", "s3")], &[(T0, 1.0), (T0 + 1, 2.0)]),
            ]),
        )
        .unwrap();
    assert_eq!(out.samples_written, 2);
    assert_eq!(out.rejected.len(), 2);
    assert!(
        out.rejected
            .iter()
            .all(|r| r.reason == RejectReason::SeriesLimit { limit: 2 })
    );
    // Existing series keep accepting samples; other tenants are unaffected.
    let out = db
        .append(
            &tenant("a"),
            batch(vec![series(&[("__name__", "s1")], &[(T0 + 5, 1.0)])]),
        )
        .unwrap();
    assert!(out.rejected.is_empty());
    let out = db
        .append(
            &tenant("b"),
            batch(vec![series(&[("__name__", "s3")], &[(T0, 1.0)])]),
        )
        .unwrap();
    assert!(out.rejected.is_empty());
    // Once idle series leave the head, new ones fit again.
    clock.advance(2 * HOUR);
    db.tick().unwrap();
    db.checkpoint().unwrap();
    let out = db
        .append(
            &tenant("a"),
            batch(vec![series(&[("__name__", "s3")], &[(T0 + HOUR, 1.0)])]),
        )
        .unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(db.stats().active_series, 1);
}

#[test]
fn crash_image_replays_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let db = open(dir.path(), TsdbOptions::default(), &clock);
    workload(&db, &clock, 0, 30);
    db.checkpoint().unwrap();
    workload(&db, &clock, 30, 75);
    // RocksDB is written only by checkpoints, so a copy now is exactly what
    // a crash would leave: a checkpoint plus a log tail.
    let image = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), image.path());
    let expected_a = snapshot(&db, "a");
    let expected_b = snapshot(&db, "b");
    let restored = open(image.path(), TsdbOptions::default(), &clock);
    assert_eq!(snapshot(&restored, "a"), expected_a);
    assert_eq!(snapshot(&restored, "b"), expected_b);
}

#[test]
fn replaying_the_same_log_yields_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let db = open(dir.path(), TsdbOptions::default(), &clock);
    workload(&db, &clock, 0, 40);
    clock.advance(2 * HOUR);
    db.tick().unwrap();
    workload(&db, &clock, 40, 50);
    // Two replicas: each gets only the log (no RocksDB state at all).
    let mut snaps = Vec::new();
    for _ in 0..2 {
        let replica = tempfile::tempdir().unwrap();
        copy_dir(
            &dir.path().join("shard-0000/log"),
            &replica.path().join("shard-0000/log"),
        );
        let r = open(replica.path(), TsdbOptions::default(), &clock);
        snaps.push((snapshot(&r, "a"), snapshot(&r, "b"), r.stats().series_created));
    }
    assert_eq!(snaps[0], snaps[1]);
    assert_eq!(snaps[0].0, snapshot(&db, "a"));
    assert_eq!(snaps[0].1, snapshot(&db, "b"));
}

#[test]
fn graceful_close_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let expected = {
        let db = Tsdb::open_with_clock(dir.path(), TsdbOptions::default(), clock.clone()).unwrap();
        workload(&db, &clock, 0, 25);
        let s = snapshot(&db, "a");
        db.close().unwrap();
        assert!(matches!(
            db.append(&tenant("a"), batch(vec![])),
            Err(StorageError::ShuttingDown)
        ));
        s
    };
    let log_bytes: u64 = std::fs::read_dir(dir.path().join("shard-0000/log"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(log_bytes, 0, "close checkpoints and truncates the log");
    let db = open(dir.path(), TsdbOptions::default(), &clock);
    assert_eq!(snapshot(&db, "a"), expected);
}

/// A graceful close leaves no open chunk in the head column family: open
/// chunks become (dense) chunks and the window is merged; writes after a
/// restart continue the same series, duplicates of closed-out samples are
/// still recognised, and compaction merges the pieces again.
#[test]
fn close_moves_open_chunks_to_chunks_and_writes_continue_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let l = [("__name__", "g"), ("instance", "a")];
    let write = |db: &Tsdb, from: i64, to: i64| {
        for i in from..to {
            clock.set(T0 + i * 15_000);
            db.append(
                &tenant("a"),
                batch(vec![series(&l, &[(T0 + i * 15_000, (i * 3) as f64 / 2.0)])]),
            )
            .unwrap();
            if i % 40 == 39 {
                db.checkpoint().unwrap();
            }
        }
    };
    let db = open(dir.path(), TsdbOptions::default(), &clock);
    write(&db, 0, 100);
    let before = db.stats();
    assert!(before.head_chunks > 0, "{before:?}");
    db.close().unwrap();
    let st = db.stats();
    let head_sst = st
        .sst_bytes_by_cf
        .iter()
        .find(|(cf, _)| *cf == "head")
        .map(|(_, n)| *n)
        .unwrap();
    assert!(
        head_sst < 4096,
        "head holds only meta records after close: {st:?}"
    );
    assert_eq!(st.persisted_samples, 100, "{st:?}");
    drop(db);

    let db = open(dir.path(), TsdbOptions::default(), &clock);
    assert_eq!(db.stats().active_series, 1, "the series is still in the head");
    // A resent sample that went to disk at close is a duplicate, a changed
    // one a conflict.
    let resent = db
        .append(
            &tenant("a"),
            batch(vec![series(&l, &[(T0 + 99 * 15_000, 99.0 * 3.0 / 2.0)])]),
        )
        .unwrap();
    assert!(resent.rejected.is_empty(), "{resent:?}");
    let changed = db
        .append(&tenant("a"), batch(vec![series(&l, &[(T0 + 99 * 15_000, 1.0)])]))
        .unwrap();
    assert_eq!(changed.rejected.len(), 1);
    assert!(matches!(
        changed.rejected[0].reason,
        RejectReason::DuplicateTimestamp
    ));
    write(&db, 100, 300);
    db.checkpoint().unwrap();
    db.compact(true).unwrap();
    let got = all(&db, "a");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].floats.len(), 300);
    assert!(got[0].floats.windows(2).all(|w| w[0].t < w[1].t));
    assert!(
        got[0]
            .floats
            .iter()
            .enumerate()
            .all(|(i, s)| s.v == (i as i64 * 3) as f64 / 2.0)
    );
}

#[test]
fn shard_count_cannot_change() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    drop(open(dir.path(), TsdbOptions::default(), &clock));
    let err = Tsdb::open_manual(
        dir.path(),
        TsdbOptions {
            shards: 2,
            ..Default::default()
        },
        clock,
    )
    .err()
    .expect("reopening with another shard count fails");
    assert!(err.to_string().contains("shard"), "{err}");
}

#[test]
fn sharded_store_conforms() {
    fenghuo_storage::testing::run_all(&|| {
        struct Owned(#[allow(dead_code)] tempfile::TempDir, Arc<Tsdb>);
        impl Appender for Owned {
            fn append(
                &self,
                t: &fenghuo_storage::model::TenantId,
                b: WriteBatch,
            ) -> Result<fenghuo_storage::api::AppendOutcome, StorageError> {
                self.1.append(t, b)
            }
        }
        impl Queryable for Owned {
            fn querier(
                &self,
                t: &fenghuo_storage::model::TenantId,
            ) -> Result<Arc<dyn fenghuo_storage::api::Querier>, StorageError> {
                self.1.querier(t)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0 + HOUR));
        let db = open(
            dir.path(),
            TsdbOptions {
                shards: 4,
                ..Default::default()
            },
            &clock,
        );
        Arc::new(Owned(dir, db)) as Arc<dyn fenghuo_storage::testing::TestStore>
    });
}

#[test]
fn compaction_merges_chunks_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let db = open(dir.path(), TsdbOptions::default(), &clock);
    // 3 hours of 15s samples for 50 series: several 120-sample chunks per
    // 2h window, plus out-of-order stragglers.
    for step in 0..720i64 {
        let t = T0 + step * 15_000;
        clock.set(t);
        let ws = (0..50)
            .map(|i| {
                let inst = format!("host-{i}");
                series(
                    &[("__name__", "node_cpu_seconds_total"), ("instance", &inst)],
                    &[(t, ((step * 1501 + i * 7) as f64) / 100.0)],
                )
            })
            .collect();
        db.append(&tenant("a"), batch(ws)).unwrap();
        if step % 100 == 99 {
            db.checkpoint().unwrap();
        }
    }
    db.append(
        &tenant("a"),
        batch(vec![series(
            &[("__name__", "node_cpu_seconds_total"), ("instance", "host-1")],
            &[(T0 + 7_500, 0.5)],
        )]),
    )
    .unwrap();
    db.checkpoint().unwrap();
    let before = snapshot(&db, "a");
    let stats = db.compact(false).unwrap();
    assert!(stats.windows >= 1, "{stats:?}");
    assert!(stats.chunks_out < stats.chunks_in, "{stats:?}");
    assert_eq!(snapshot(&db, "a"), before, "compaction changes no data");
    let forced = db.compact(true).unwrap();
    assert_eq!(snapshot(&db, "a"), before);
    let st = db.stats();
    eprintln!("compaction: {stats:?} forced: {forced:?} stats: {st:?}");
    assert!(st.persisted_samples > 0);
}

#[test]
fn retention_deletes_partitions_and_frees_disk() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let opts = TsdbOptions {
        retention: PromDuration::from_secs(5 * 86_400),
        ..Default::default()
    };
    let db = open(dir.path(), opts, &clock);
    // Four days of data, one sample per minute for 200 series with noisy
    // values (so the data does not compress to nothing).
    let mut seed = 7u64;
    for minute in 0..(4 * 24 * 60i64) {
        let t = T0 + minute * MIN;
        clock.set(t);
        db.append(&tenant("a"), noise_batch(&mut seed, 200, t)).unwrap();
        if minute % 360 == 0 {
            db.checkpoint().unwrap();
        }
    }
    db.tick().unwrap();
    db.checkpoint().unwrap();
    db.compact(true).unwrap();
    let q = db.querier(&tenant("a")).unwrap();
    let first_day = |q: &dyn fenghuo_storage::api::Querier| {
        q.select(
            &[Matcher::equal("__name__", "noise")],
            &SelectHints {
                start: T0,
                end: T0 + DAY / 2,
                max_samples: None,
            },
        )
        .unwrap()
    };
    assert_eq!(first_day(q.as_ref()).len(), 200, "data of day one is there");
    let before = db.disk_usage_bytes();
    // Four days later the oldest three (of five) partitions are expired:
    // about half of the data.
    clock.advance(4 * DAY);
    db.tick().unwrap();
    db.checkpoint().unwrap();
    db.compact(true).unwrap();
    let q = db.querier(&tenant("a")).unwrap();
    assert!(first_day(q.as_ref()).is_empty(), "expired data is gone");
    let names = q.label_values("instance", T0, T0 + DAY / 2, &[]).unwrap();
    assert!(names.is_empty(), "expired postings are gone: {names:?}");
    let after = db.disk_usage_bytes();
    eprintln!("retention: disk {before} -> {after} bytes");
    assert!(after < before * 7 / 10, "disk shrinks: {before} -> {after}");
    // Writing into the dropped range is refused.
    let out = db
        .append(
            &tenant("a"),
            batch(vec![series(
                &[("__name__", "noise"), ("instance", "h1")],
                &[(T0, 1.0)],
            )]),
        )
        .unwrap();
    assert_eq!(out.rejected[0].reason, RejectReason::OutOfBounds);
}

#[test]
fn concurrent_writers_and_checkpoints_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let db = open(dir.path(), TsdbOptions::default(), &clock);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for r in 0..200i64 {
                    let name = format!("w{w}");
                    let out = db
                        .append(
                            &tenant("a"),
                            batch(vec![series(&[("__name__", &name)], &[(T0 + r * 1000, r as f64)])]),
                        )
                        .unwrap();
                    assert_eq!(out.samples_written, 1);
                }
            })
        })
        .collect();
    let checkpointer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for _ in 0..20 {
                db.checkpoint().unwrap();
                std::thread::yield_now();
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    checkpointer.join().unwrap();
    let got = all(&db, "a");
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|s| s.floats.len() == 200));
}

#[test]
fn open_chunks_are_restored_from_incremental_head_segments() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let db = open(dir.path(), TsdbOptions::default(), &clock);
    let l = [("__name__", "g")];
    let hl = labels(&[("__name__", "h")]);
    for i in 0..50i64 {
        // Values with varied XOR widths so segments end mid-byte.
        let v = if i % 3 == 0 {
            i as f64 * 1.1
        } else {
            1e6 + i as f64
        };
        db.append(&tenant("a"), batch(vec![series(&l, &[(T0 + i * 1000, v)])]))
            .unwrap();
        db.append(
            &tenant("a"),
            batch(vec![SeriesWrite {
                labels: hl.clone(),
                histograms: vec![HistogramSample {
                    t: T0 + i * 1000,
                    h: Arc::new(fenghuo_storage::model::FloatHistogram {
                        count: i as f64,
                        sum: 0.5 * i as f64,
                        ..Default::default()
                    }),
                }],
                ..Default::default()
            }]),
        )
        .unwrap();
        db.checkpoint().unwrap();
    }
    let image = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), image.path());
    let expected = snapshot(&db, "a");
    drop(db);
    let restored = open(image.path(), TsdbOptions::default(), &clock);
    assert_eq!(snapshot(&restored, "a"), expected);
    // Appending continues the restored chunks correctly.
    for i in 50..200i64 {
        restored
            .append(
                &tenant("a"),
                batch(vec![series(&l, &[(T0 + i * 1000, i as f64 / 8.0)])]),
            )
            .unwrap();
        if i % 7 == 0 {
            restored.checkpoint().unwrap();
        }
    }
    let got = all(&restored, "a");
    let g = got.iter().find(|s| s.labels == labels(&l)).unwrap();
    assert_eq!(g.floats.len(), 200);
    assert!(g.floats.windows(2).all(|w| w[0].t < w[1].t));
    assert_eq!(g.floats[199].v, 199.0 / 8.0);
    drop(restored);
    let again = open(image.path(), TsdbOptions::default(), &clock);
    let got = all(&again, "a");
    assert_eq!(
        got.iter().find(|s| s.labels == labels(&l)).unwrap().floats.len(),
        200
    );
}

/// `fenghuo_storage_disk_bytes` reports a store's bytes from the moment it is open, not only
/// after the first checkpoint (a restarted node already holds its data).
#[test]
fn disk_bytes_are_reported_from_open() {
    let dir = tempfile::tempdir().unwrap();
    let opts = TsdbOptions {
        checkpoint_interval: PromDuration::from_secs(3600),
        compaction_interval: PromDuration::from_secs(3600),
        ..TsdbOptions::default()
    };
    let db = Tsdb::open(dir.path(), opts).unwrap();
    let mut reported = 0;
    for _ in 0..500 {
        reported = fenghuo_storage::metrics::DISK_BYTES.get();
        if reported > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(reported > 0, "disk bytes still {reported} after open");
    db.close().unwrap();
}

/// The background maintenance threads (not a test calling `tick`) expire old partitions and
/// free their disk: a node left alone keeps only its retention.
#[test]
fn background_maintenance_applies_retention() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let opts = TsdbOptions {
        retention: PromDuration::from_secs(5 * 86_400),
        checkpoint_interval: PromDuration::from_millis(50),
        compaction_interval: PromDuration::from_millis(50),
        ..Default::default()
    };
    let db = Tsdb::open_with_clock(dir.path(), opts, clock.clone()).expect("open");
    let mut seed = 11u64;
    for step in 0..(4 * 24 * 6i64) {
        let t = T0 + step * 10 * MIN;
        clock.set(t);
        db.append(&tenant("a"), noise_batch(&mut seed, 100, t)).unwrap();
    }
    let first_day = || {
        db.querier(&tenant("a"))
            .unwrap()
            .select(
                &[Matcher::equal("__name__", "noise")],
                &SelectHints {
                    start: T0,
                    end: T0 + DAY / 2,
                    max_samples: None,
                },
            )
            .unwrap()
            .len()
    };
    assert_eq!(first_day(), 100);
    // Let the background checkpoints move everything to disk, then jump four days ahead.
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Chunk bytes, not the whole directory: RocksDB's own info log grows with every background
    // step (it is capped at a few MiB by the store's options).
    let before = db.stats().chunk_bytes;
    assert!(before > 0, "nothing reached the chunks yet");
    clock.advance(4 * DAY);
    let mut gone = false;
    for _ in 0..600 {
        if first_day() == 0 {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(gone, "the background threads never expired day one");
    let mut after = db.stats().chunk_bytes;
    for _ in 0..600 {
        if after < before * 7 / 10 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        after = db.stats().chunk_bytes;
    }
    assert!(after < before * 7 / 10, "chunk bytes shrink: {before} -> {after}");
    db.close().unwrap();
}
