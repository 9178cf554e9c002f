//! HTTP APIs: Alertmanager's v2 API ([`v2`]) and fenghuo's own alerting API ([`fenghuo`]), plus
//! the shared pieces: tenant selection by `X-Scope-OrgID`, query parsing with repeated keys, and
//! the conversion of posted alerts with Alertmanager's defaults.

pub mod fenghuo;
pub mod openapi;
pub mod v2;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::clock::Ts;
use crate::engine::Engine;
use crate::error::AlertingError;
use crate::metrics;
use crate::model::{Alert, LabelSet};

/// Alertmanager's `postableAlert`. Unknown fields are ignored, as Alertmanager's generated server
/// does, so alerts from other senders are never rejected for an extra field.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct PostableAlert {
    pub labels: LabelSet,
    #[serde(default)]
    pub annotations: LabelSet,
    #[serde(default, rename = "startsAt", skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Ts>,
    #[serde(default, rename = "endsAt", skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Ts>,
    #[serde(default, rename = "generatorURL", skip_serializing_if = "String::is_empty")]
    pub generator_url: String,
}

/// Turns posted alerts into engine alerts with Alertmanager's defaults (`startsAt` = now or
/// `endsAt`; missing `endsAt` = now + `resolve_timeout`, flagged as timeout) and validation.
/// Returns the valid alerts and the error messages of the invalid ones.
pub fn convert_alerts(
    posted: Vec<PostableAlert>,
    now: Ts,
    resolve_timeout: Duration,
) -> (Vec<Alert>, Vec<String>) {
    let mut ok = Vec::new();
    let mut errs = Vec::new();
    for p in posted {
        let zero = |t: Option<Ts>| t.filter(|t| t.timestamp() > -62_135_596_800);
        let (starts, ends) = (zero(p.starts_at), zero(p.ends_at));
        let starts_at = starts.or(ends).unwrap_or(now);
        let (ends_at, timeout) = match ends {
            Some(e) => (e, false),
            None => (now + resolve_timeout, true),
        };
        let mut labels = p.labels;
        labels.retain(|_, v| !v.is_empty());
        let a = Alert {
            labels,
            annotations: p.annotations,
            starts_at,
            ends_at,
            generator_url: p.generator_url,
            updated_at: now,
            timeout,
        };
        let status = if a.ends_at > now { "firing" } else { "resolved" };
        metrics::ALERTS_RECEIVED.with_label_values(&[status]).inc();
        match a.validate() {
            Ok(()) => ok.push(a),
            Err(e) => {
                metrics::ALERTS_INVALID.inc();
                errs.push(e);
            }
        }
    }
    (ok, errs)
}

/// The tenant named by `X-Scope-OrgID`, or the default tenant.
pub fn tenant_of(headers: &HeaderMap) -> Result<String, AlertingError> {
    fenghuo_storage_api::model::TenantId::from_header(headers.get("X-Scope-OrgID").map(|v| v.as_bytes()))
        .map(|t| t.as_str().to_string())
        .map_err(|e| AlertingError::BadRequest(format!("invalid X-Scope-OrgID: {e}")))
}

/// Query parameters allowing repeated keys.
#[derive(Debug, Default, Clone)]
pub struct Params(pub BTreeMap<String, Vec<String>>);

impl Params {
    pub fn parse(q: Option<&str>) -> Self {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(q) = q {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                m.entry(k.into_owned()).or_default().push(v.into_owned());
            }
        }
        Params(m)
    }

    pub fn all(&self, k: &str) -> &[String] {
        self.0.get(k).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn one(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(|v| v.first()).map(String::as_str)
    }

    /// A boolean with a default; anything but true/false is an error.
    pub fn bool(&self, k: &str, default: bool) -> Result<bool, AlertingError> {
        match self.one(k) {
            None => Ok(default),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(v) => Err(AlertingError::BadRequest(format!("{k}: invalid boolean {v:?}"))),
        }
    }
}

/// The largest request body any alerting endpoint reads, whatever the tenant limits say.
pub const MAX_BODY_BYTES: u64 = 64 << 20;

/// Bodies of the endpoints that take small JSON or form documents (acks, previews, receiver
/// and route tests): axum refuses larger ones with 413 before the handler runs.
pub const SMALL_BODY_BYTES: usize = 4 << 20;

/// Reads a request body, refusing more than the tenant's `max_request_bytes` (413 naming the
/// limit) without buffering the excess.
pub async fn read_body(
    engine: &Engine,
    tenant: &str,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<axum::body::Bytes, AlertingError> {
    let limit = engine
        .runtime()
        .loaded
        .config
        .fenghuo
        .limits
        .for_tenant(tenant)
        .max_request_bytes;
    let too_large = || {
        metrics::LIMIT_REJECTIONS
            .with_label_values(&["max_request_bytes"])
            .inc();
        AlertingError::TooLarge(format!(
            "the body is over the limit max_request_bytes={limit} of tenant {tenant:?}"
        ))
    };
    // 0 lifts the tenant's limit, not the process's: a body is always bounded.
    let limit = if limit == 0 {
        MAX_BODY_BYTES
    } else {
        limit.min(MAX_BODY_BYTES)
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|_| too_large())
}

/// A JSON-string error body, as go-openapi writes Alertmanager's string payloads.
pub fn am_error(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        [("Content-Type", "application/json")],
        serde_json::to_string(&msg.into()).unwrap_or_default(),
    )
        .into_response()
}

pub fn am_err(e: AlertingError) -> Response {
    am_error(e.status(), e.to_string())
}

/// The shared state of the HTTP handlers.
#[derive(Clone)]
pub struct ApiState {
    pub engine: Arc<Engine>,
}

/// Formats a timestamp as go-openapi's strfmt.DateTime does.
pub fn fmt_time(t: Ts) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses a time as RFC 3339 or Unix seconds.
pub fn parse_time(s: &str) -> Result<Ts, AlertingError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        let ms = (f * 1000.0) as i64;
        if let Some(t) = chrono::DateTime::from_timestamp_millis(ms) {
            return Ok(t);
        }
    }
    Err(AlertingError::BadRequest(format!(
        "invalid time {s:?}: use RFC 3339 or Unix seconds"
    )))
}
