//! The write endpoint end to end over the in-memory store: protocol
//! versions, tenants, answers and headers, and the bad-input battery.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fenghuo_ingest::http::IngestState;
use fenghuo_ingest::{IngestLimits, LocalDistributor, router};
use fenghuo_proto::{Message, rw1, rw2};
use fenghuo_storage_api::api::{Queryable, SelectHints};
use fenghuo_storage_api::memory::MemStore;
use fenghuo_storage_api::model::{FloatHistogram, Matcher, TenantId};
use http_body_util::BodyExt;
use tower::ServiceExt;

const NOW: i64 = 1_700_000_000_000;

fn app(store: &MemStore, limits: IngestLimits) -> axum::Router {
    let state = IngestState::with_clock(
        Arc::new(LocalDistributor::new(Arc::new(store.clone()))),
        limits,
        Box::new(|| NOW),
    );
    router(Arc::new(state))
}

fn label(n: &str, v: &str) -> rw1::Label {
    rw1::Label {
        name: n.into(),
        value: v.into(),
    }
}

/// A series as the tests write it: labels and (timestamp, value) samples.
type TestSeries = (Vec<rw1::Label>, Vec<(i64, f64)>);

fn v1_request(series: Vec<TestSeries>) -> Vec<u8> {
    let req = rw1::WriteRequest {
        timeseries: series
            .into_iter()
            .map(|(labels, samples)| rw1::TimeSeries {
                labels,
                samples: samples
                    .into_iter()
                    .map(|(timestamp, value)| rw1::Sample { value, timestamp })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn post(app: &axum::Router, body: Vec<u8>, headers: &[(&str, &str)]) -> Answer {
    let mut req = Request::post("/api/v1/write");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned();
    Answer {
        status,
        headers,
        body,
    }
}

fn select_all(store: &MemStore, tenant: &str, metric: &str) -> Vec<fenghuo_storage_api::api::Series> {
    let q = store.querier(&TenantId::new(tenant).unwrap()).unwrap();
    let hints = SelectHints {
        start: i64::MIN,
        end: i64::MAX,
        max_samples: None,
    };
    q.select(&[Matcher::equal("__name__", metric)], &hints).unwrap()
}

fn stored(store: &MemStore, tenant: &str, metric: &str) -> Vec<(i64, f64)> {
    select_all(store, tenant, metric)
        .into_iter()
        .flat_map(|s| s.floats.into_iter().map(|p| (p.t, p.v)))
        .collect()
}

const V1: &[(&str, &str)] = &[
    ("Content-Type", "application/x-protobuf"),
    ("Content-Encoding", "snappy"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

const V2: &[(&str, &str)] = &[
    (
        "Content-Type",
        "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    ),
    ("Content-Encoding", "snappy"),
    ("X-Prometheus-Remote-Write-Version", "2.0.0"),
];

fn v2_body(req: &rw2::Request) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

fn stored_histograms(store: &MemStore, metric: &str) -> Vec<(i64, FloatHistogram)> {
    select_all(store, "anonymous", metric)
        .into_iter()
        .flat_map(|s| s.histograms.into_iter().map(|h| (h.t, (*h.h).clone())))
        .collect()
}

/// An integer native histogram as Prometheus sends it: schema 0, two positive buckets (2 and 3
/// observations, as deltas), one in the zero bucket.
fn native_histogram(t: i64) -> rw2::Histogram {
    use fenghuo_proto::rw1::histogram::{Count, ZeroCount};
    rw2::Histogram {
        count: Some(Count::CountInt(6)),
        sum: 10.5,
        schema: 0,
        zero_threshold: 0.001,
        zero_count: Some(ZeroCount::ZeroCountInt(1)),
        positive_spans: vec![rw2::BucketSpan { offset: 0, length: 2 }],
        positive_deltas: vec![2, 1],
        timestamp: t,
        ..Default::default()
    }
}

#[tokio::test]
async fn v1_write_is_stored_and_answered_204() {
    let store = MemStore::new();
    let app = app(&store, IngestLimits::default());
    let body = v1_request(vec![(
        vec![label("__name__", "up"), label("job", "a")],
        vec![(NOW, 1.0)],
    )]);
    let a = post(&app, body, V1).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(stored(&store, "anonymous", "up"), vec![(NOW, 1.0)]);
}

#[tokio::test]
async fn v2_write_reports_written_counts_in_headers() {
    let store = MemStore::new();
    let app = app(&store, IngestLimits::default());
    let req = rw2::Request {
        symbols: vec![
            "".into(),
            "__name__".into(),
            "m".into(),
            "trace_id".into(),
            "abc".into(),
        ],
        timeseries: vec![rw2::TimeSeries {
            labels_refs: vec![1, 2],
            samples: vec![
                rw2::Sample {
                    value: 1.0,
                    timestamp: NOW - 1000,
                },
                rw2::Sample {
                    value: 2.0,
                    timestamp: NOW,
                },
            ],
            exemplars: vec![rw2::Exemplar {
                labels_refs: vec![3, 4],
                value: 2.0,
                timestamp: NOW,
            }],
            ..Default::default()
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let a = post(
        &app,
        body,
        &[
            (
                "Content-Type",
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            ),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "2.0.0"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(a.headers["x-prometheus-remote-write-samples-written"], "2");
    assert_eq!(a.headers["x-prometheus-remote-write-histograms-written"], "0");
    assert_eq!(a.headers["x-prometheus-remote-write-exemplars-written"], "1");
    assert_eq!(
        stored(&store, "anonymous", "m"),
        vec![(NOW - 1000, 1.0), (NOW, 2.0)]
    );
}

#[tokio::test]
async fn tenants_are_isolated() {
    let store = MemStore::new();
    let app = app(&store, IngestLimits::default());
    let body = v1_request(vec![(vec![label("__name__", "secret")], vec![(NOW, 42.0)])]);
    let mut headers = V1.to_vec();
    headers.push(("X-Scope-OrgID", "team-a"));
    assert_eq!(post(&app, body, &headers).await.status, StatusCode::NO_CONTENT);
    assert_eq!(stored(&store, "team-a", "secret"), vec![(NOW, 42.0)]);
    assert!(stored(&store, "team-b", "secret").is_empty());
    assert!(stored(&store, "anonymous", "secret").is_empty());
}

#[tokio::test]
async fn nan_and_infinities_are_ordinary_values() {
    let store = MemStore::new();
    let app = app(&store, IngestLimits::default());
    let body = v1_request(vec![(
        vec![label("__name__", "odd")],
        vec![
            (NOW - 2, f64::NAN),
            (NOW - 1, f64::INFINITY),
            (NOW, f64::NEG_INFINITY),
        ],
    )]);
    assert_eq!(post(&app, body, V1).await.status, StatusCode::NO_CONTENT);
    let got = stored(&store, "anonymous", "odd");
    assert!(got[0].1.is_nan() && got[1].1 == f64::INFINITY && got[2].1 == f64::NEG_INFINITY);
}

/// Each malformed request gets a 4xx naming the problem, and what was
/// stored before stays intact.
#[tokio::test]
async fn bad_input_battery() {
    let store = MemStore::new();
    let limits = IngestLimits {
        max_request_bytes: 64 * 1024,
        max_labels_per_series: 8,
        max_series_per_request: 4,
        max_label_name_bytes: 32,
        max_label_value_bytes: 64,
        ..Default::default()
    };
    let app = app(&store, limits);
    let good = v1_request(vec![(vec![label("__name__", "keep")], vec![(NOW, 7.0)])]);
    assert_eq!(post(&app, good, V1).await.status, StatusCode::NO_CONTENT);

    let garbage_proto = snap::raw::Encoder::new()
        .compress_vec(&[0xff, 0xff, 0xff, 0x01])
        .unwrap();
    let mut truncated = v1_request(vec![(vec![label("__name__", "x")], vec![(NOW, 1.0)])]);
    let full = snap::raw::Decoder::new().decompress_vec(&truncated).unwrap();
    truncated = snap::raw::Encoder::new()
        .compress_vec(&full[..full.len() - 3])
        .unwrap();
    let invalid_utf8 = {
        // Field 1 (timeseries) holding field 1 (label) holding name bytes 0xff.
        let label = [0x0a, 0x01, 0xff];
        let ts = [&[0x0a, label.len() as u8][..], &label].concat();
        let req = [&[0x0a, ts.len() as u8][..], &ts].concat();
        snap::raw::Encoder::new().compress_vec(&req).unwrap()
    };
    let many_labels: Vec<_> = std::iter::once(label("__name__", "m"))
        .chain((0..20).map(|i| label(&format!("l{i:02}"), "v")))
        .collect();
    let too_many_series: Vec<TestSeries> = (0..5)
        .map(|i| (vec![label("__name__", &format!("s{i}"))], vec![(NOW, 1.0)]))
        .collect();
    let v2_no_empty_symbol = v2_body(&rw2::Request {
        symbols: vec!["__name__".into(), "m".into()],
        timeseries: vec![rw2::TimeSeries {
            labels_refs: vec![0, 1],
            samples: vec![rw2::Sample {
                value: 1.0,
                timestamp: NOW,
            }],
            ..Default::default()
        }],
    });
    let v2_floats_and_histograms = v2_body(&rw2::Request {
        symbols: vec!["".into(), "__name__".into(), "m".into()],
        timeseries: vec![rw2::TimeSeries {
            labels_refs: vec![1, 2],
            samples: vec![rw2::Sample {
                value: 1.0,
                timestamp: NOW,
            }],
            histograms: vec![native_histogram(NOW)],
            ..Default::default()
        }],
    });
    let v2_dangling_symbol = v2_body(&rw2::Request {
        symbols: vec!["".into(), "__name__".into()],
        timeseries: vec![rw2::TimeSeries {
            labels_refs: vec![1, 9],
            ..Default::default()
        }],
    });
    /// name, body, headers, expected status, text the answer must contain.
    type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "malformed snappy",
            b"not snappy at all".to_vec(),
            V1.to_vec(),
            400,
            "snappy",
        ),
        ("garbage protobuf", garbage_proto, V1.to_vec(), 400, "protobuf"),
        ("truncated protobuf", truncated, V1.to_vec(), 400, "protobuf"),
        ("invalid utf-8", invalid_utf8, V1.to_vec(), 400, "UTF-8"),
        (
            "wrong content type",
            v1_request(vec![]),
            vec![("Content-Type", "application/json")],
            415,
            "Content-Type",
        ),
        (
            "oversized body",
            vec![0u8; 100 * 1024],
            V1.to_vec(),
            413,
            "exceeds the limit",
        ),
        (
            "empty label name",
            v1_request(vec![(
                vec![label("", "v"), label("__name__", "m")],
                vec![(NOW, 1.0)],
            )]),
            V1.to_vec(),
            400,
            "empty label name",
        ),
        (
            "duplicate label name",
            v1_request(vec![(
                vec![label("__name__", "m"), label("a", "1"), label("a", "2")],
                vec![(NOW, 1.0)],
            )]),
            V1.to_vec(),
            400,
            "duplicate label name \"a\" for series {__name__=\"m\", a=\"1\", a=\"2\"}",
        ),
        (
            "missing metric name",
            v1_request(vec![(vec![label("job", "x")], vec![(NOW, 1.0)])]),
            V1.to_vec(),
            400,
            "missing metric name",
        ),
        (
            "far future timestamp",
            v1_request(vec![(vec![label("__name__", "m")], vec![(NOW + 3_600_000, 1.0)])]),
            V1.to_vec(),
            400,
            "in the future",
        ),
        (
            "huge label set",
            v1_request(vec![(many_labels, vec![(NOW, 1.0)])]),
            V1.to_vec(),
            400,
            "21 labels, more than the limit of 8",
        ),
        (
            "too many series",
            v1_request(too_many_series),
            V1.to_vec(),
            400,
            "request has 5 series, more than the limit of 4",
        ),
        (
            "label name too long",
            v1_request(vec![(
                vec![label("__name__", "m"), label(&"n".repeat(33), "v")],
                vec![(NOW, 1.0)],
            )]),
            V1.to_vec(),
            400,
            "label name of 33 bytes exceeds the limit of 32",
        ),
        (
            "label value too long",
            v1_request(vec![(
                vec![label("__name__", "m"), label("pod", &"v".repeat(65))],
                vec![(NOW, 1.0)],
            )]),
            V1.to_vec(),
            400,
            "value of label \"pod\" has 65 bytes, more than the limit of 64",
        ),
        (
            "v2 symbols without the leading empty string",
            v2_no_empty_symbol,
            V2.to_vec(),
            400,
            "symbols table must start with the empty string",
        ),
        (
            "v2 series with floats and histograms",
            v2_floats_and_histograms,
            V2.to_vec(),
            400,
            "series carries both float samples and histograms for series {__name__=\"m\"}",
        ),
        (
            "v2 dangling symbol reference",
            v2_dangling_symbol,
            V2.to_vec(),
            400,
            "symbol reference 9 is out of range (table has 2 symbols)",
        ),
        (
            "bad tenant",
            v1_request(vec![]),
            [V1, &[("X-Scope-OrgID", "a|b")]].concat(),
            400,
            "X-Scope-OrgID",
        ),
    ];
    for (name, body, headers, status, needle) in cases {
        let a = post(&app, body, &headers).await;
        assert_eq!(a.status.as_u16(), status, "{name}: {}", a.body);
        assert!(
            a.body.contains(needle),
            "{name}: body {:?} lacks {needle:?}",
            a.body
        );
    }
    assert_eq!(stored(&store, "anonymous", "keep"), vec![(NOW, 7.0)]);
    assert!(stored(&store, "anonymous", "m").is_empty());
}

#[tokio::test]
async fn conflicting_duplicate_is_reported_and_exact_duplicate_is_idempotent() {
    let store = MemStore::new();
    let app = app(&store, IngestLimits::default());
    let series = || vec![label("__name__", "d")];
    assert_eq!(
        post(&app, v1_request(vec![(series(), vec![(NOW, 1.0)])]), V1)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post(&app, v1_request(vec![(series(), vec![(NOW, 1.0)])]), V1)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let a = post(&app, v1_request(vec![(series(), vec![(NOW, 2.0)])]), V1).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body
            .contains("duplicate sample for timestamp for series {__name__=\"d\"}"),
        "{}",
        a.body
    );
    assert_eq!(stored(&store, "anonymous", "d"), vec![(NOW, 1.0)]);
}

#[tokio::test]
async fn v2_native_histograms_are_stored_and_counted() {
    let store = MemStore::new();
    let app = app(&store, IngestLimits::default());
    let req = rw2::Request {
        symbols: vec!["".into(), "__name__".into(), "rpc_latency_seconds".into()],
        timeseries: vec![rw2::TimeSeries {
            labels_refs: vec![1, 2],
            histograms: vec![native_histogram(NOW - 15_000), native_histogram(NOW)],
            ..Default::default()
        }],
    };
    let a = post(&app, v2_body(&req), V2).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(a.headers["x-prometheus-remote-write-samples-written"], "0");
    assert_eq!(a.headers["x-prometheus-remote-write-histograms-written"], "2");
    let got = stored_histograms(&store, "rpc_latency_seconds");
    assert_eq!(got.len(), 2);
    let (t, h) = &got[1];
    assert_eq!(*t, NOW);
    assert_eq!((h.count, h.sum, h.zero_count), (6.0, 10.5, 1.0));
    assert_eq!(
        h.positive_buckets,
        vec![2.0, 3.0],
        "deltas become absolute counts"
    );
    assert!(stored(&store, "anonymous", "rpc_latency_seconds").is_empty());
}

#[tokio::test]
async fn v2_created_timestamps_give_zero_samples_only_when_enabled() {
    let request = |t: i64, ct: i64| rw2::Request {
        symbols: vec![
            "".into(),
            "__name__".into(),
            "http_requests_total".into(),
            "rpc_latency_seconds".into(),
        ],
        timeseries: vec![
            rw2::TimeSeries {
                labels_refs: vec![1, 2],
                samples: vec![rw2::Sample {
                    value: 42.0,
                    timestamp: t,
                }],
                created_timestamp: ct,
                ..Default::default()
            },
            rw2::TimeSeries {
                labels_refs: vec![1, 3],
                histograms: vec![native_histogram(t)],
                created_timestamp: ct,
                ..Default::default()
            },
        ],
    };
    // Off (the default, as in Prometheus): the created timestamp is ignored.
    let store = MemStore::new();
    let off = app(&store, IngestLimits::default());
    let a = post(&off, v2_body(&request(NOW - 60_000, NOW - 3_600_000)), V2).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(
        stored(&store, "anonymous", "http_requests_total"),
        vec![(NOW - 60_000, 42.0)]
    );
    assert_eq!(stored_histograms(&store, "rpc_latency_seconds").len(), 1);

    // On: a zero sample (a zero histogram) at the created timestamp, not counted as written.
    let store = MemStore::new();
    let on = app(
        &store,
        IngestLimits {
            created_timestamp_zero_ingestion: true,
            ..Default::default()
        },
    );
    let ct = NOW - 3_600_000;
    let a = post(&on, v2_body(&request(NOW - 60_000, ct)), V2).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(a.headers["x-prometheus-remote-write-samples-written"], "1");
    assert_eq!(a.headers["x-prometheus-remote-write-histograms-written"], "1");
    assert_eq!(
        stored(&store, "anonymous", "http_requests_total"),
        vec![(ct, 0.0), (NOW - 60_000, 42.0)]
    );
    let hs = stored_histograms(&store, "rpc_latency_seconds");
    assert_eq!(hs.len(), 2);
    assert_eq!((hs[0].0, hs[0].1.count, hs[0].1.schema), (ct, 0.0, 0));
    // Every later write of a long-running counter repeats its (old) created timestamp: that is
    // in the past of the series, so it is ignored, and the write still succeeds.
    let a = post(&on, v2_body(&request(NOW, ct)), V2).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(
        stored(&store, "anonymous", "http_requests_total"),
        vec![(ct, 0.0), (NOW - 60_000, 42.0), (NOW, 42.0)]
    );
    assert_eq!(stored_histograms(&store, "rpc_latency_seconds").len(), 3);
}

/// A distributor that holds every push until the test opens the gate.
struct GatedDistributor {
    inner: LocalDistributor,
    entered: std::sync::atomic::AtomicUsize,
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
}

impl fenghuo_ingest::Distributor for GatedDistributor {
    fn push(
        &self,
        tenant: &TenantId,
        batch: fenghuo_storage_api::model::BorrowedBatch<'_>,
    ) -> Result<fenghuo_storage_api::api::AppendOutcome, fenghuo_ingest::IngestError> {
        self.entered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
        drop(open);
        self.inner.push(tenant, batch)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_503_and_retried_requests_then_succeed() {
    let store = MemStore::new();
    let gate = Arc::new(GatedDistributor {
        inner: LocalDistributor::new(Arc::new(store.clone())),
        entered: Default::default(),
        open: std::sync::Mutex::new(false),
        opened: std::sync::Condvar::new(),
    });
    let state = IngestState::with_clock(
        gate.clone(),
        IngestLimits {
            max_inflight_requests: 1,
            ..Default::default()
        },
        Box::new(|| NOW),
    );
    let app = router(Arc::new(state));
    let body = |v: f64| v1_request(vec![(vec![label("__name__", "busy")], vec![(NOW, v)])]);
    let first = tokio::spawn({
        let app = app.clone();
        let body = body(1.0);
        async move { post(&app, body, V1).await }
    });
    // Wait (not a timing assertion) until the first request holds the only slot.
    for _ in 0..2000 {
        if gate.entered.load(std::sync::atomic::Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(gate.entered.load(std::sync::atomic::Ordering::SeqCst), 1);
    let a = post(&app, body(2.0), V1).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(
        a.body.contains("too many concurrent write requests (limit 1)"),
        "{}",
        a.body
    );
    *gate.open.lock().unwrap() = true;
    gate.opened.notify_all();
    let a = first.await.unwrap();
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    // Prometheus retries the 503; the retry gets in once the slot is free.
    let a = post(&app, body(1.0), V1).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(stored(&store, "anonymous", "busy"), vec![(NOW, 1.0)]);
}
