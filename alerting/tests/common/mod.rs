//! Shared helpers of the alerting integration tests: engines on a manual clock, HTTP sinks on
//! 127.0.0.1 that record requests and answer scripted bodies.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use fenghuo_alerting::clock::ManualClock;
use fenghuo_alerting::config::load_str;
use fenghuo_alerting::engine::{Engine, EngineOptions};
use fenghuo_alerting::store::{AlertStateStore, MemoryStateStore};
use parking_lot::Mutex;

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-03-04T05:06:07Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

pub fn engine_with(config: &str, store: Arc<dyn AlertStateStore>) -> (Arc<Engine>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t0()));
    (engine_on(config, store, &clock), clock)
}

/// An engine on `store` driven by `clock` (a second engine on the same state and clock is a
/// restart).
pub fn engine_on(config: &str, store: Arc<dyn AlertStateStore>, clock: &Arc<ManualClock>) -> Arc<Engine> {
    let loaded = load_str(config, Path::new(".")).unwrap_or_else(|e| panic!("config: {e}"));
    Engine::new(
        clock.clone(),
        store,
        loaded,
        EngineOptions {
            external_url: "http://fh.test:9093".into(),
            dry_run: false,
        },
    )
    .unwrap_or_else(|e| panic!("engine: {e}"))
}

pub fn engine(config: &str) -> (Arc<Engine>, Arc<ManualClock>) {
    engine_with(config, Arc::new(MemoryStateStore::default()))
}

pub fn alert(labels: &[(&str, &str)]) -> fenghuo_alerting::PostableAlert {
    fenghuo_alerting::PostableAlert {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: [("summary".to_string(), "disk <b>full</b> & \"bad\"".to_string())].into(),
        starts_at: Some(t0()),
        ends_at: Some(t0() + chrono::Duration::hours(3)),
        generator_url: "http://prom:9090/graph?g0.expr=up".into(),
    }
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

#[derive(Clone, Default)]
pub struct Sink {
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    /// Bodies to answer with, in order; the last one repeats. Default `{"errcode":0,"errmsg":"ok"}`.
    pub answers: Arc<Mutex<Vec<(u16, String)>>>,
    /// Answer only after this many milliseconds.
    pub delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

async fn record(
    State(s): State<Sink>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> (axum::http::StatusCode, String) {
    s.requests.lock().push(Recorded {
        uri: uri.to_string(),
        headers,
        body: body.to_vec(),
    });
    let delay = s.delay_ms.load(std::sync::atomic::Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let mut a = s.answers.lock();
    let (code, body) = if a.len() > 1 {
        a.remove(0)
    } else {
        a.first()
            .cloned()
            .unwrap_or((200, r#"{"errcode":0,"errmsg":"ok"}"#.into()))
    };
    (
        axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::OK),
        body,
    )
}

/// Starts a sink on 127.0.0.1; returns it and its base URL.
pub async fn sink() -> (Sink, String) {
    let s = Sink::default();
    let app = axum::Router::new().fallback(record).with_state(s.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = l.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (s, format!("http://{addr}"))
}

/// Serves the Alertmanager v2 and fenghuo APIs of `e` on 127.0.0.1; returns the base URL.
pub async fn serve_api(e: Arc<Engine>) -> String {
    use fenghuo_alerting::api::{ApiState, fenghuo, v2};
    let st = ApiState { engine: e };
    let app = v2::router(st.clone()).merge(fenghuo::router(st));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = l.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    format!("http://{addr}")
}
