//! The write endpoint end to end over the in-memory store: protocol
//! versions, tenants, answers and headers, and the bad-input battery.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fenghuo_ingest::http::IngestState;
use fenghuo_ingest::{IngestLimits, LocalDistributor, router};
use fenghuo_proto::{Message, rw1, rw2};
use fenghuo_storage::api::{Queryable, SelectHints};
use fenghuo_storage::memory::MemStore;
use fenghuo_storage::model::{Matcher, TenantId};
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

fn stored(store: &MemStore, tenant: &str, metric: &str) -> Vec<(i64, f64)> {
    let q = store.querier(&TenantId::new(tenant).unwrap()).unwrap();
    let hints = SelectHints {
        start: i64::MIN,
        end: i64::MAX,
        max_samples: None,
    };
    q.select(&[Matcher::equal("__name__", metric)], &hints)
        .unwrap()
        .into_iter()
        .flat_map(|s| s.floats.into_iter().map(|p| (p.t, p.v)))
        .collect()
}

const V1: &[(&str, &str)] = &[
    ("Content-Type", "application/x-protobuf"),
    ("Content-Encoding", "snappy"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

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
