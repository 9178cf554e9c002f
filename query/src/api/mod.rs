//! The Prometheus HTTP API (`/api/v1/...`) over the PromQL engine and the
//! storage seams, with Prometheus's JSON shapes, error types and status
//! codes, so Grafana and promtool use fenghuo as a plain Prometheus.
//!
//! - [`params`]: form values, times, durations, matchers.
//! - [`json`]: Go-compatible JSON encoding of values.
//! - [`handlers`]: one function per endpoint.
//! - [`ast`]: the `/api/v1/parse_query` syntax tree.

pub mod ast;
pub mod handlers;
pub mod json;
pub mod params;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use fenghuo_storage_api::api::Queryable;

use crate::Engine;

/// Build information shown by `/api/v1/status/buildinfo`.
#[derive(Clone, Debug)]
pub struct BuildInfo {
    pub version: String,
    pub revision: String,
    pub branch: String,
    pub build_user: String,
    pub build_date: String,
    pub go_version: String,
}

impl Default for BuildInfo {
    fn default() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: String::new(),
            branch: String::new(),
            build_user: String::new(),
            build_date: String::new(),
            go_version: String::new(),
        }
    }
}

/// Everything the API handlers need.
pub struct QueryApi {
    pub engine: Arc<Engine>,
    pub storage: Arc<dyn Queryable>,
    pub build_info: BuildInfo,
    /// The evaluation time of instant queries without `time`.
    pub now_ms: Box<dyn Fn() -> i64 + Send + Sync>,
    /// Evaluation slots (`max_concurrency`); queries queue for one.
    pub slots: Arc<tokio::sync::Semaphore>,
}

impl QueryApi {
    pub fn new(engine: Arc<Engine>, storage: Arc<dyn Queryable>) -> Self {
        let slots = Arc::new(tokio::sync::Semaphore::new(
            engine.options().max_concurrency.max(1),
        ));
        Self {
            slots,
            engine,
            storage,
            build_info: BuildInfo::default(),
            now_ms: Box::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or_default()
            }),
        }
    }
}

/// The read API's routes.
pub fn router(api: Arc<QueryApi>) -> Router {
    use handlers::*;
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route(
            "/api/v1/query_exemplars",
            get(query_exemplars).post(query_exemplars),
        )
        .route("/api/v1/format_query", get(format_query).post(format_query))
        .route("/api/v1/parse_query", get(parse_query).post(parse_query))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(label_names).post(label_names))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/status/buildinfo", get(build_info))
        .route("/api/v1/status/tsdb", get(tsdb_status))
        .with_state(api)
}
