//! The conformance suite of the storage seams: every implementation of
//! [`Appender`] + [`Queryable`] runs it (`MemStore`, `Tsdb`, and later a
//! replicated store), like openraft's `testing::Suite` for log stores.
//!
//! Each check gets a fresh store from the factory and panics (assert) on a
//! contract violation, naming the check. Timestamps are around [`T0`]; a
//! store with retention or a clock must accept samples from
//! `T0 - 1h` to `T0 + 1h`.
//!
//! ```ignore
//! storage::testing::run_all(&|| Arc::new(MemStore::new()) as Arc<dyn TestStore>);
//! ```

use std::sync::Arc;

use crate::api::{Appender, Queryable, RejectReason, SelectHints};
use crate::error::StorageError;
use crate::model::{
    BorrowedBatch, BucketSpan, Exemplar, FloatHistogram, HistogramSample, Labels, MatchOp, Matcher,
    MetricMetadata, MetricType, Sample, SeriesWrite, TenantId, WriteBatch, stale_nan,
};

/// Base timestamp of the suite's samples (2023-11-14).
pub const T0: i64 = 1_700_000_000_000;

/// Copies a data directory as a crash would leave it for a restart: every
/// file but RocksDB's `LOCK` files (which the running store holds).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("creating the copy");
    for e in std::fs::read_dir(from).expect("listing the store") {
        let e = e.expect("listing the store");
        let target = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), target).expect("copying a file");
        }
    }
}

/// Both seams in one object.
pub trait TestStore: Appender + Queryable {}
impl<T: Appender + Queryable> TestStore for T {}

/// Builds a fresh, empty store for one check.
pub type Factory<'a> = &'a dyn Fn() -> Arc<dyn TestStore>;

/// One conformance check.
pub type Check = fn(&dyn TestStore);

/// Every check, in order.
pub const CHECKS: &[(&str, Check)] = &[
    ("append_and_select", append_and_select),
    ("select_time_range_is_inclusive", select_time_range_is_inclusive),
    ("matchers", matchers),
    ("out_of_order_within_window", out_of_order_within_window),
    ("duplicates", duplicates),
    ("stale_markers_are_stored_as_is", stale_markers_are_stored_as_is),
    ("histograms", histograms),
    ("created_timestamps", created_timestamps),
    ("max_samples", max_samples),
    ("tenant_isolation", tenant_isolation),
    ("label_apis", label_apis),
    ("metadata_latest_wins", metadata_latest_wins),
    ("exemplars", exemplars),
    ("tsdb_status_counts", tsdb_status_counts),
    ("many_series_sorted", many_series_sorted),
    ("borrowed_batches", borrowed_batches),
];

/// Runs every check against fresh stores from `factory`.
pub fn run_all(factory: Factory<'_>) {
    run_except(factory, &[]);
}

/// Runs every check except those named in `skip` (e.g. head statistics for
/// a harness that empties the head after every write).
pub fn run_except(factory: Factory<'_>, skip: &[&str]) {
    for (name, check) in CHECKS {
        if skip.contains(name) {
            continue;
        }
        let store = factory();
        eprintln!("conformance: {name}");
        check(store.as_ref());
    }
}

pub fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap_or_else(|_| TenantId::default_tenant())
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

pub fn series(l: &[(&str, &str)], samples: &[(i64, f64)]) -> SeriesWrite {
    SeriesWrite {
        labels: labels(l),
        samples: samples.iter().map(|&(t, v)| Sample { t, v }).collect(),
        ..Default::default()
    }
}

pub fn batch(series: Vec<SeriesWrite>) -> WriteBatch {
    WriteBatch {
        series,
        metadata: Vec::new(),
    }
}

fn eq(name: &str, value: &str) -> Matcher {
    Matcher::equal(name, value)
}

fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
    match Matcher::new(op, name, value) {
        Ok(m) => m,
        Err(e) => panic!("bad matcher in conformance suite: {e}"),
    }
}

fn append(s: &dyn TestStore, t: &TenantId, b: WriteBatch) -> crate::api::AppendOutcome {
    match s.append(t, b) {
        Ok(o) => o,
        Err(e) => panic!("append failed: {e}"),
    }
}

fn select_in(
    s: &dyn TestStore,
    t: &TenantId,
    ms: &[Matcher],
    start: i64,
    end: i64,
) -> Vec<crate::api::Series> {
    let q = s.querier(t).unwrap_or_else(|e| panic!("querier failed: {e}"));
    q.select(
        ms,
        &SelectHints {
            start,
            end,
            max_samples: None,
        },
    )
    .unwrap_or_else(|e| panic!("select failed: {e}"))
}

fn select(s: &dyn TestStore, ms: &[Matcher]) -> Vec<crate::api::Series> {
    select_in(s, &tenant("t1"), ms, T0 - 86_400_000, T0 + 86_400_000)
}

fn floats(series: &crate::api::Series) -> Vec<(i64, f64)> {
    series.floats.iter().map(|s| (s.t, s.v)).collect()
}

pub fn append_and_select(s: &dyn TestStore) {
    let t = tenant("t1");
    let out = append(
        s,
        &t,
        batch(vec![
            series(
                &[("__name__", "up"), ("job", "b")],
                &[(T0, 1.0), (T0 + 15_000, 0.0)],
            ),
            series(
                &[("__name__", "up"), ("job", "a")],
                &[(T0 + 15_000, 1.0), (T0, 1.0)],
            ),
            series(&[("__name__", "other")], &[(T0, 5.0)]),
        ]),
    );
    assert_eq!(out.samples_written, 5, "append_and_select: written count");
    assert!(out.rejected.is_empty(), "append_and_select: {:?}", out.rejected);
    let got = select(s, &[eq("__name__", "up")]);
    assert_eq!(got.len(), 2, "append_and_select: two series");
    assert_eq!(
        got[0].labels,
        labels(&[("__name__", "up"), ("job", "a")]),
        "sorted by labels"
    );
    assert_eq!(
        floats(&got[0]),
        vec![(T0, 1.0), (T0 + 15_000, 1.0)],
        "samples sorted by time"
    );
    assert_eq!(floats(&got[1]), vec![(T0, 1.0), (T0 + 15_000, 0.0)]);
    assert!(got.iter().all(|x| x.histograms.is_empty()));
    // A second batch extends the series.
    append(
        s,
        &t,
        batch(vec![series(
            &[("__name__", "up"), ("job", "a")],
            &[(T0 + 30_000, 2.0)],
        )]),
    );
    let got = select(s, &[eq("__name__", "up"), eq("job", "a")]);
    assert_eq!(
        floats(&got[0]).len(),
        3,
        "append_and_select: appended to existing series"
    );
}

pub fn select_time_range_is_inclusive(s: &dyn TestStore) {
    let t = tenant("t1");
    let pts: Vec<(i64, f64)> = (0..10).map(|i| (T0 + i * 10_000, i as f64)).collect();
    append(s, &t, batch(vec![series(&[("__name__", "x")], &pts)]));
    let got = select_in(s, &t, &[eq("__name__", "x")], T0 + 20_000, T0 + 50_000);
    assert_eq!(
        floats(&got[0]),
        vec![
            (T0 + 20_000, 2.0),
            (T0 + 30_000, 3.0),
            (T0 + 40_000, 4.0),
            (T0 + 50_000, 5.0)
        ],
        "select_time_range_is_inclusive"
    );
    let none = select_in(s, &t, &[eq("__name__", "x")], T0 + 91_000, T0 + 99_000);
    assert!(
        none.is_empty(),
        "series without samples in range are not returned"
    );
}

pub fn matchers(s: &dyn TestStore) {
    let t = tenant("t1");
    append(
        s,
        &t,
        batch(vec![
            series(
                &[("__name__", "http"), ("code", "200"), ("path", "/a")],
                &[(T0, 1.0)],
            ),
            series(
                &[("__name__", "http"), ("code", "500"), ("path", "/b")],
                &[(T0, 2.0)],
            ),
            series(&[("__name__", "http"), ("code", "404")], &[(T0, 3.0)]),
            series(&[("__name__", "cpu"), ("mode", "idle")], &[(T0, 4.0)]),
        ]),
    );
    let names =
        |v: Vec<crate::api::Series>| -> Vec<String> { v.into_iter().map(|x| x.labels.to_string()).collect() };
    assert_eq!(
        select(s, &[eq("__name__", "http"), m(MatchOp::NotEqual, "code", "200")]).len(),
        2
    );
    assert_eq!(select(s, &[m(MatchOp::Regex, "code", "2..|5..")]).len(), 2);
    assert_eq!(
        select(s, &[m(MatchOp::Regex, "code", "200|404")]).len(),
        2,
        "literal alternation"
    );
    assert_eq!(
        select(s, &[eq("__name__", "http"), m(MatchOp::NotRegex, "code", "4.*")]).len(),
        2
    );
    // An empty matcher value matches series without the label.
    let no_path = select(s, &[eq("__name__", "http"), eq("path", "")]);
    assert_eq!(
        names(no_path),
        vec![r#"{__name__="http", code="404"}"#.to_string()]
    );
    assert_eq!(
        select(s, &[eq("__name__", "http"), m(MatchOp::Regex, "path", ".+")]).len(),
        2
    );
    assert_eq!(
        select(s, &[m(MatchOp::Regex, "__name__", ".+")]).len(),
        4,
        "match everything"
    );
    assert_eq!(select(s, &[m(MatchOp::Regex, "__name__", "c.u")]).len(), 1);
    assert!(select(s, &[eq("__name__", "nope")]).is_empty());
    assert!(select(s, &[eq("__name__", "http"), eq("code", "999")]).is_empty());
    assert_eq!(
        select(s, &[m(MatchOp::NotEqual, "mode", "")]).len(),
        1,
        "!=\"\" requires the label"
    );
}

pub fn out_of_order_within_window(s: &dyn TestStore) {
    let t = tenant("t1");
    let l = [("__name__", "ooo")];
    append(s, &t, batch(vec![series(&l, &[(T0, 1.0), (T0 + 60_000, 3.0)])]));
    let out = append(
        s,
        &t,
        batch(vec![series(&l, &[(T0 + 30_000, 2.0), (T0 + 45_000, 2.5)])]),
    );
    assert_eq!(
        out.samples_written, 2,
        "out_of_order_within_window: {:?}",
        out.rejected
    );
    let got = select(s, &[eq("__name__", "ooo")]);
    assert_eq!(
        floats(&got[0]),
        vec![
            (T0, 1.0),
            (T0 + 30_000, 2.0),
            (T0 + 45_000, 2.5),
            (T0 + 60_000, 3.0)
        ],
        "merged and sorted"
    );
}

pub fn duplicates(s: &dyn TestStore) {
    let t = tenant("t1");
    let l = [("__name__", "dup")];
    append(s, &t, batch(vec![series(&l, &[(T0, 1.0), (T0 + 10_000, 2.0)])]));
    let out = append(s, &t, batch(vec![series(&l, &[(T0, 1.0), (T0 + 10_000, 2.0)])]));
    assert_eq!(out.samples_written, 2, "exact duplicates count as written");
    assert!(out.rejected.is_empty(), "duplicates: {:?}", out.rejected);
    let out = append(s, &t, batch(vec![series(&l, &[(T0 + 10_000, 9.0)])]));
    assert_eq!(out.samples_written, 0);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].reason, RejectReason::DuplicateTimestamp);
    assert_eq!(out.rejected[0].timestamp, T0 + 10_000);
    assert_eq!(out.rejected[0].series, labels(&l));
    let got = select(s, &[eq("__name__", "dup")]);
    assert_eq!(
        floats(&got[0]),
        vec![(T0, 1.0), (T0 + 10_000, 2.0)],
        "not stored twice, not overwritten"
    );
}

pub fn stale_markers_are_stored_as_is(s: &dyn TestStore) {
    let t = tenant("t1");
    append(
        s,
        &t,
        batch(vec![series(
            &[("__name__", "stale")],
            &[(T0, 1.0), (T0 + 15_000, stale_nan())],
        )]),
    );
    let got = select(s, &[eq("__name__", "stale")]);
    assert_eq!(got[0].floats.len(), 2);
    assert_eq!(
        got[0].floats[1].v.to_bits(),
        stale_nan().to_bits(),
        "stale marker bits preserved"
    );
}

fn hist(i: u32) -> Arc<FloatHistogram> {
    Arc::new(FloatHistogram {
        schema: 0,
        count: f64::from(3 * i + 3),
        sum: f64::from(i) * 1.5,
        zero_count: 1.0,
        zero_threshold: 0.001,
        positive_spans: vec![BucketSpan { offset: 0, length: 2 }],
        positive_buckets: vec![f64::from(i + 1), f64::from(i + 1)],
        ..Default::default()
    })
}

pub fn histograms(s: &dyn TestStore) {
    let t = tenant("t1");
    let hs: Vec<HistogramSample> = (0..5u32)
        .map(|i| HistogramSample {
            t: T0 + i64::from(i) * 15_000,
            h: hist(i),
        })
        .collect();
    let out = append(
        s,
        &t,
        batch(vec![SeriesWrite {
            labels: labels(&[("__name__", "latency")]),
            histograms: hs.clone(),
            ..Default::default()
        }]),
    );
    assert_eq!(out.histograms_written, 5, "histograms: {:?}", out.rejected);
    let got = select(s, &[eq("__name__", "latency")]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].histograms, hs, "histograms round-trip");
    assert!(got[0].floats.is_empty());
    let again = append(
        s,
        &t,
        batch(vec![SeriesWrite {
            labels: labels(&[("__name__", "latency")]),
            histograms: vec![hs[4].clone()],
            ..Default::default()
        }]),
    );
    assert_eq!(again.histograms_written, 1, "duplicate histogram is idempotent");
}

/// Remote write 2.0's created timestamp becomes a zero sample (a zero histogram for histogram
/// series) only where that is in order; elsewhere it is dropped without failing the write.
pub fn created_timestamps(s: &dyn TestStore) {
    let t = tenant("t1");
    let with_ct = |name: &str, samples: &[(i64, f64)], ct: i64| SeriesWrite {
        created_timestamp: ct,
        ..series(&[("__name__", name)], samples)
    };
    // One sample of `requests`, written in full and refused nowhere.
    let write_one = |sample: &[(i64, f64)], ct: i64| {
        let out = append(s, &t, batch(vec![with_ct("requests", sample, ct)]));
        assert_eq!(
            (out.samples_written, out.rejected.len()),
            (1, 0),
            "{:?}",
            out.rejected
        );
    };
    // A new counter: zero at its created timestamp, then the sample; the zero is not counted.
    write_one(&[(T0 + 15_000, 5.0)], T0 + 1_000);
    // Later writes repeat the same (now old) created timestamp: ignored, never rejected.
    write_one(&[(T0 + 30_000, 9.0)], T0 + 1_000);
    // A counter reset: a new created timestamp after the last sample gives a new zero.
    write_one(&[(T0 + 60_000, 2.0)], T0 + 45_000);
    let got = select(s, &[eq("__name__", "requests")]);
    assert_eq!(
        floats(&got[0]),
        vec![
            (T0 + 1_000, 0.0),
            (T0 + 15_000, 5.0),
            (T0 + 30_000, 9.0),
            (T0 + 45_000, 0.0),
            (T0 + 60_000, 2.0)
        ]
    );
    // A created timestamp equal to the first sample's, or none, adds nothing.
    append(s, &t, batch(vec![with_ct("same", &[(T0, 1.0)], T0)]));
    append(s, &t, batch(vec![with_ct("none", &[(T0, 1.0)], 0)]));
    assert_eq!(floats(&select(s, &[eq("__name__", "same")])[0]), vec![(T0, 1.0)]);
    assert_eq!(floats(&select(s, &[eq("__name__", "none")])[0]), vec![(T0, 1.0)]);
    // A histogram series gets a zero histogram with the first histogram's schema.
    let out = append(
        s,
        &t,
        batch(vec![SeriesWrite {
            labels: labels(&[("__name__", "latency_ct")]),
            histograms: vec![HistogramSample {
                t: T0 + 15_000,
                h: hist(1),
            }],
            created_timestamp: T0 + 5_000,
            ..Default::default()
        }]),
    );
    assert_eq!(
        (out.histograms_written, out.rejected.len()),
        (1, 0),
        "{:?}",
        out.rejected
    );
    let got = select(s, &[eq("__name__", "latency_ct")]);
    assert!(got[0].floats.is_empty());
    assert_eq!(got[0].histograms.len(), 2);
    assert_eq!(got[0].histograms[0].t, T0 + 5_000);
    assert_eq!(*got[0].histograms[0].h, hist(1).zero_like());
    assert_eq!(got[0].histograms[0].h.count, 0.0);
    assert_eq!(got[0].histograms[0].h.schema, hist(1).schema);
}

pub fn max_samples(s: &dyn TestStore) {
    let t = tenant("t1");
    let pts: Vec<(i64, f64)> = (0..10).map(|i| (T0 + i * 1000, 1.0)).collect();
    append(
        s,
        &t,
        batch(vec![
            series(&[("__name__", "a")], &pts),
            series(&[("__name__", "b")], &pts),
        ]),
    );
    let q = s.querier(&t).unwrap_or_else(|e| panic!("{e}"));
    let hints = |max| SelectHints {
        start: T0,
        end: T0 + 100_000,
        max_samples: Some(max),
    };
    let ms = [m(MatchOp::Regex, "__name__", "a|b")];
    assert!(q.select(&ms, &hints(20)).is_ok(), "exactly at the limit is fine");
    match q.select(&ms, &hints(19)) {
        Err(StorageError::TooManySamples { limit }) => assert_eq!(limit, 19),
        other => panic!("max_samples: expected TooManySamples, got {other:?}"),
    }
}

pub fn tenant_isolation(s: &dyn TestStore) {
    let a = tenant("tenant-a");
    let b = tenant("tenant-b");
    append(
        s,
        &a,
        WriteBatch {
            series: vec![SeriesWrite {
                labels: labels(&[("__name__", "secret"), ("owner", "a")]),
                samples: vec![Sample { t: T0, v: 1.0 }],
                exemplars: vec![Exemplar {
                    labels: labels(&[("trace_id", "abc")]),
                    value: 1.0,
                    t: T0,
                }],
                ..Default::default()
            }],
            metadata: vec![MetricMetadata {
                metric_family: "secret".into(),
                metric_type: MetricType::Gauge,
                help: "A's".into(),
                unit: String::new(),
            }],
        },
    );
    append(
        s,
        &b,
        batch(vec![series(&[("__name__", "public")], &[(T0, 2.0)])]),
    );
    let qb = s.querier(&b).unwrap_or_else(|e| panic!("{e}"));
    let all = [m(MatchOp::Regex, "__name__", ".+")];
    let (lo, hi) = (T0 - 3_600_000, T0 + 3_600_000);
    let got = select_in(s, &b, &all, lo, hi);
    assert_eq!(got.len(), 1, "tenant_isolation: B sees only its own series");
    assert_eq!(got[0].labels, labels(&[("__name__", "public")]));
    assert!(select_in(s, &b, &[eq("__name__", "secret")], lo, hi).is_empty());
    let names = qb.label_names(lo, hi, &[]).unwrap_or_default();
    assert!(
        !names.contains(&"owner".to_string()),
        "label names leak: {names:?}"
    );
    let values = qb.label_values("__name__", lo, hi, &[]).unwrap_or_default();
    assert_eq!(values, vec!["public".to_string()], "label values leak");
    let series = qb.series_labels(lo, hi, &all).unwrap_or_default();
    assert_eq!(series.len(), 1, "series leak");
    assert!(qb.metadata(None).unwrap_or_default().is_empty(), "metadata leak");
    assert!(
        qb.exemplars(lo, hi, &[all.to_vec()])
            .unwrap_or_default()
            .is_empty(),
        "exemplars leak"
    );
    let st = qb.tsdb_status(10).unwrap_or_default();
    assert!(st.num_series <= 1, "status leak: {st:?}");
    assert!(
        !st.series_count_by_metric_name.iter().any(|(n, _)| n == "secret"),
        "status leak: {st:?}"
    );
    let qa = s.querier(&a).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(qa.metadata(None).unwrap_or_default().len(), 1);
    assert_eq!(select_in(s, &a, &all, lo, hi).len(), 1);
}

pub fn label_apis(s: &dyn TestStore) {
    let t = tenant("t1");
    append(
        s,
        &t,
        batch(vec![
            series(
                &[("__name__", "up"), ("job", "node"), ("instance", "a")],
                &[(T0, 1.0)],
            ),
            series(
                &[("__name__", "up"), ("job", "prom"), ("instance", "b")],
                &[(T0, 1.0)],
            ),
            series(&[("__name__", "go_gc"), ("job", "prom")], &[(T0, 1.0)]),
        ]),
    );
    let q = s.querier(&t).unwrap_or_else(|e| panic!("{e}"));
    let (lo, hi) = (T0 - 60_000, T0 + 60_000);
    let names = q.label_names(lo, hi, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names, vec!["__name__", "instance", "job"], "label_names");
    let names = q
        .label_names(lo, hi, &[eq("__name__", "go_gc")])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names, vec!["__name__", "job"], "label_names with matcher");
    let vals = q
        .label_values("job", lo, hi, &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(vals, vec!["node", "prom"], "label_values");
    let vals = q
        .label_values("instance", lo, hi, &[eq("job", "prom")])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(vals, vec!["b"], "label_values with matcher");
    assert!(q.label_values("nope", lo, hi, &[]).unwrap_or_default().is_empty());
    let series = q
        .series_labels(lo, hi, &[eq("__name__", "up")])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        series,
        vec![
            labels(&[("__name__", "up"), ("instance", "a"), ("job", "node")]),
            labels(&[("__name__", "up"), ("instance", "b"), ("job", "prom")]),
        ],
        "series_labels sorted"
    );
    let far = T0 + 30 * 86_400_000;
    assert!(
        q.label_names(far, far + 1000, &[]).unwrap_or_default().is_empty(),
        "no data there"
    );
    assert!(
        q.series_labels(far, far + 1000, &[eq("__name__", "up")])
            .unwrap_or_default()
            .is_empty()
    );
}

pub fn metadata_latest_wins(s: &dyn TestStore) {
    let t = tenant("t1");
    let md = |help: &str| MetricMetadata {
        metric_family: "http_requests_total".into(),
        metric_type: MetricType::Counter,
        help: help.into(),
        unit: String::new(),
    };
    for help in ["old", "new"] {
        append(
            s,
            &t,
            WriteBatch {
                series: vec![],
                metadata: vec![md(help)],
            },
        );
    }
    append(
        s,
        &t,
        WriteBatch {
            series: vec![],
            metadata: vec![MetricMetadata {
                metric_family: "go_goroutines".into(),
                metric_type: MetricType::Gauge,
                help: "g".into(),
                unit: String::new(),
            }],
        },
    );
    let q = s.querier(&t).unwrap_or_else(|e| panic!("{e}"));
    let all = q.metadata(None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), 2, "metadata: one entry per family");
    assert_eq!(all[1], md("new"), "metadata: latest wins, sorted by family");
    let one = q
        .metadata(Some("go_goroutines"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(one.len(), 1);
}

pub fn exemplars(s: &dyn TestStore) {
    let t = tenant("t1");
    let ex = |id: &str, ts: i64| Exemplar {
        labels: labels(&[("trace_id", id)]),
        value: 0.5,
        t: ts,
    };
    append(
        s,
        &t,
        batch(vec![
            SeriesWrite {
                labels: labels(&[("__name__", "req"), ("path", "/a")]),
                samples: vec![Sample { t: T0, v: 1.0 }],
                exemplars: vec![ex("x1", T0), ex("x2", T0 + 10_000)],
                ..Default::default()
            },
            SeriesWrite {
                labels: labels(&[("__name__", "req"), ("path", "/b")]),
                samples: vec![Sample { t: T0, v: 1.0 }],
                exemplars: vec![ex("y1", T0 + 5_000)],
                ..Default::default()
            },
        ]),
    );
    let q = s.querier(&t).unwrap_or_else(|e| panic!("{e}"));
    let got = q
        .exemplars(T0, T0 + 60_000, &[vec![eq("path", "/a")]])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.len(), 1, "exemplars: one series");
    assert_eq!(got[0].1, vec![ex("x1", T0), ex("x2", T0 + 10_000)]);
    let got = q
        .exemplars(T0 + 1, T0 + 60_000, &[vec![eq("__name__", "req")]])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.len(), 2, "exemplars: time filter keeps both series");
    assert_eq!(got[0].1, vec![ex("x2", T0 + 10_000)]);
}

pub fn tsdb_status_counts(s: &dyn TestStore) {
    let t = tenant("t1");
    append(
        s,
        &t,
        batch(vec![
            series(&[("__name__", "a"), ("x", "1")], &[(T0, 1.0)]),
            series(&[("__name__", "a"), ("x", "2")], &[(T0, 1.0)]),
            series(&[("__name__", "b")], &[(T0, 1.0)]),
        ]),
    );
    let q = s.querier(&t).unwrap_or_else(|e| panic!("{e}"));
    let st = q.tsdb_status(1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(st.num_series, 3);
    assert_eq!(
        st.series_count_by_metric_name,
        vec![("a".to_string(), 2)],
        "top-1 by metric name"
    );
}

pub fn many_series_sorted(s: &dyn TestStore) {
    let t = tenant("t1");
    let mut ws = Vec::new();
    for i in (0..300).rev() {
        let inst = format!("host-{i:03}");
        ws.push(series(
            &[("__name__", "m"), ("instance", &inst)],
            &[(T0 + i, i as f64)],
        ));
    }
    let out = append(s, &t, batch(ws));
    assert_eq!(out.samples_written, 300);
    let got = select(s, &[eq("__name__", "m")]);
    assert_eq!(got.len(), 300);
    assert!(
        got.windows(2).all(|w| w[0].labels < w[1].labels),
        "many_series_sorted"
    );
    let got = select(
        s,
        &[eq("__name__", "m"), m(MatchOp::Regex, "instance", "host-0[0-4].")],
    );
    assert_eq!(got.len(), 50);
}

/// `append_borrowed` behaves as `append`: new and known series, mixed in
/// one batch; rejections of known series name them by their labels.
pub fn borrowed_batches(s: &dyn TestStore) {
    let t = tenant("t1");
    let a = [("__name__", "b"), ("host", "a")];
    let b = [("__name__", "b"), ("host", "b")];
    let owned = batch(vec![series(&a, &[(T0, 1.0)])]);
    let out = append(s, &t, owned);
    assert_eq!(out.samples_written, 1);
    // `a` is known now, `b` is new; `a` repeats T0 with another value.
    let mut owned = batch(vec![
        series(&a, &[(T0 + 10_000, 2.0), (T0, 5.0)]),
        series(&b, &[(T0, 3.0)]),
    ]);
    let borrowed = BorrowedBatch::from_write_batch(&mut owned);
    let out = match s.append_borrowed(&t, borrowed) {
        Ok(o) => o,
        Err(e) => panic!("append_borrowed failed: {e}"),
    };
    assert!(owned.series.iter().all(|s| s.samples.is_empty()), "samples moved");
    assert_eq!(out.samples_written, 2, "borrowed_batches: {:?}", out.rejected);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].reason, RejectReason::DuplicateTimestamp);
    assert_eq!(
        out.rejected[0].series,
        labels(&a),
        "rejection names the known series"
    );
    let got = select(s, &[eq("__name__", "b")]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].labels, labels(&a));
    assert_eq!(floats(&got[0]), vec![(T0, 1.0), (T0 + 10_000, 2.0)]);
    assert_eq!(got[1].labels, labels(&b));
    assert_eq!(floats(&got[1]), vec![(T0, 3.0)]);
}
