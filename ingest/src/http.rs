//! `POST /api/v1/write` (and Mimir's alias `/api/v1/push`): the HTTP face of
//! the write path.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fenghuo_storage_api::api::AppendOutcome;
use fenghuo_storage_api::model::TenantId;
use tokio::sync::Semaphore;

use crate::decode::{self, Protocol};
use crate::distributor::Distributor;
use crate::error::IngestError;
use crate::limits::IngestLimits;
use crate::metrics;

/// How many refused items a 400 answer lists before summarising.
const MAX_LISTED_REJECTIONS: usize = 10;

/// Shared state of the write endpoint.
pub struct IngestState {
    distributor: Arc<dyn Distributor>,
    limits: IngestLimits,
    inflight: Semaphore,
    /// `max_inflight_bytes` in KiB permits (a permit count is a `u32`).
    inflight_kib: Arc<Semaphore>,
    now_ms: Box<dyn Fn() -> i64 + Send + Sync>,
}

impl IngestState {
    pub fn new(distributor: Arc<dyn Distributor>, limits: IngestLimits) -> Self {
        Self::with_clock(distributor, limits, Box::new(system_now_ms))
    }

    /// Like [`IngestState::new`] with an injected clock (for the
    /// future-timestamp check).
    pub fn with_clock(
        distributor: Arc<dyn Distributor>,
        limits: IngestLimits,
        now_ms: Box<dyn Fn() -> i64 + Send + Sync>,
    ) -> Self {
        Self {
            distributor,
            inflight: Semaphore::new(limits.max_inflight_requests.max(1)),
            inflight_kib: Arc::new(Semaphore::new(
                kib(limits.max_inflight_bytes).min(Semaphore::MAX_PERMITS as u32) as usize,
            )),
            limits,
            now_ms,
        }
    }
}

/// Whole KiB covering `bytes`, as semaphore permits.
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

impl IngestState {
    /// Reserves `bytes` of the in-flight byte budget, or says why not.
    fn reserve(&self, bytes: usize) -> Result<tokio::sync::OwnedSemaphorePermit, IngestError> {
        Arc::clone(&self.inflight_kib)
            .try_acquire_many_owned(kib(bytes))
            .map_err(|_| IngestError::InflightBytes {
                need: bytes,
                limit: self.limits.max_inflight_bytes,
            })
    }
}

fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Routes of the write path.
pub fn router(state: Arc<IngestState>) -> Router {
    Router::new()
        .route("/api/v1/write", post(write))
        .route("/api/v1/push", post(write))
        // We enforce our own limit with a message that names it.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Extracts the tenant from `X-Scope-OrgID`, defaulting when absent.
pub fn tenant_from_headers(headers: &HeaderMap) -> Result<TenantId, String> {
    TenantId::from_header(headers.get(TenantId::HEADER).map(|v| v.as_bytes()))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn write(State(state): State<Arc<IngestState>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let protocol = negotiate_from(&headers);
    let protocol_label = match protocol {
        Ok(Protocol::V2) => "2.0",
        _ => "1.0",
    };
    let result = handle(&state, &headers, protocol, body).await;
    let response = match result {
        Ok(outcome) => respond(protocol_label, outcome),
        Err(e) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            metrics::REJECTED_REQUESTS
                .with_label_values(&[e.reason_label()])
                .inc();
            if status.is_server_error() {
                tracing::warn!(error = %e, "Remote write failed.");
            } else {
                tracing::debug!(error = %e, "Rejected remote write.");
            }
            let mut r = (status, format!("{e}\n")).into_response();
            if protocol_label == "2.0" {
                set_written_headers(r.headers_mut(), &AppendOutcome::default());
            }
            r
        }
    };
    metrics::REQUESTS
        .with_label_values(&[protocol_label, response.status().as_str()])
        .inc();
    metrics::REQUEST_DURATION
        .with_label_values(&[protocol_label])
        .observe(started.elapsed().as_secs_f64());
    response
}

fn negotiate_from(headers: &HeaderMap) -> Result<Protocol, IngestError> {
    decode::negotiate(
        header_str(headers, header::CONTENT_TYPE),
        header_str(headers, header::CONTENT_ENCODING),
    )
}

async fn handle(
    state: &Arc<IngestState>,
    headers: &HeaderMap,
    protocol: Result<Protocol, IngestError>,
    body: Body,
) -> Result<(TenantId, AppendOutcome), IngestError> {
    let protocol = protocol?;
    let tenant = tenant_from_headers(headers).map_err(IngestError::InvalidTenant)?;
    let limit = state.limits.max_request_bytes;
    if let Some(len) = header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(IngestError::BodyTooLarge { size: len, limit });
    }
    let _permit = state
        .inflight
        .try_acquire()
        .map_err(|_| IngestError::Overloaded(state.limits.max_inflight_requests))?;
    // The body's bytes are reserved before they are read: its declared
    // length, or the most it may be when it does not declare one.
    let declared = header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    let mut body_bytes = state.reserve(declared.unwrap_or(limit))?;
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| IngestError::BodyTooLarge {
            size: limit + 1,
            limit,
        })?;
    if declared.is_none() {
        // Keep only what the body turned out to hold.
        drop(body_bytes.split(body_bytes.num_permits() - kib(body.len()) as usize));
    }
    metrics::RECEIVED_BYTES.inc_by(body.len() as u64);
    let state = Arc::clone(state);
    // Decoding and the durable append are CPU and fsync bound: keep them off
    // the async workers.
    tokio::task::spawn_blocking(move || {
        let _body_bytes = body_bytes;
        let decompressed = decode::decompressed_len(&body, &state.limits)?;
        let _message_bytes = state.reserve(2 * decompressed)?;
        let message = decode::decompress(&body, &state.limits)?;
        let batch = decode::decode(protocol, &message, (state.now_ms)(), &state.limits)?;
        let outcome = state.distributor.push(&tenant, batch)?;
        Ok((tenant, outcome))
    })
    .await
    .map_err(|e| {
        IngestError::Storage(fenghuo_storage_api::StorageError::Io(format!(
            "write task failed: {e}"
        )))
    })?
}

fn respond(protocol: &str, (tenant, outcome): (TenantId, AppendOutcome)) -> Response {
    let tenant = tenant.as_str();
    metrics::record_outcome(tenant, &outcome);
    let mut response = if outcome.rejected.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        let mut msg = String::new();
        for r in outcome.rejected.iter().take(MAX_LISTED_REJECTIONS) {
            msg.push_str(&format!(
                "{} for series {} at timestamp {}\n",
                r.reason, r.series, r.timestamp
            ));
        }
        if outcome.rejected.len() > MAX_LISTED_REJECTIONS {
            msg.push_str(&format!(
                "... and {} more rejected samples\n",
                outcome.rejected.len() - MAX_LISTED_REJECTIONS
            ));
        }
        tracing::debug!(
            tenant,
            rejected = outcome.rejected.len(),
            "Partially rejected remote write."
        );
        (StatusCode::BAD_REQUEST, msg).into_response()
    };
    if protocol == "2.0" {
        set_written_headers(response.headers_mut(), &outcome);
    }
    response
}

fn set_written_headers(headers: &mut HeaderMap, outcome: &AppendOutcome) {
    let pairs = [
        (
            "x-prometheus-remote-write-samples-written",
            outcome.samples_written,
        ),
        (
            "x-prometheus-remote-write-histograms-written",
            outcome.histograms_written,
        ),
        (
            "x-prometheus-remote-write-exemplars-written",
            outcome.exemplars_written,
        ),
    ];
    for (name, n) in pairs {
        headers.insert(name, HeaderValue::from(n));
    }
}
