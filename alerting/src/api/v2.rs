//! Alertmanager's API v2 (`api/v2/openapi.yaml`): alerts, alert groups, silences, status and
//! receivers, with the same paths, JSON shapes and status codes (request bodies are checked as
//! go-openapi checks them, see [`super::openapi`]).

// Handlers short-circuit with ready-made error responses; boxing them would only add noise.
#![allow(clippy::result_large_err)]

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ApiState, Params, PostableAlert, am_err, am_error, fmt_time, read_body, tenant_of};
use crate::clock::Ts;
use crate::engine::AlertView;
use crate::error::AlertingError;
use crate::matchers::{Matcher, matches_all, parse_matchers};
use crate::model::LabelSet;
use crate::silence::{Silence, SilenceMatcher};

/// Routes under `/api/v2`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v2/alerts", get(get_alerts).post(post_alerts))
        .route("/api/v2/alerts/groups", get(get_groups))
        .route("/api/v2/silences", get(get_silences).post(post_silence))
        .route("/api/v2/silence/{id}", get(get_silence).delete(delete_silence))
        .route("/api/v2/status", get(get_status))
        .route("/api/v2/receivers", get(get_receivers))
        // Bodies are read with the tenant's `max_request_bytes` (see `read_body`).
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

fn json_ok(v: Value) -> Response {
    (
        StatusCode::OK,
        [("Content-Type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn parse_filter(p: &Params) -> Result<Vec<Matcher>, AlertingError> {
    let mut out = Vec::new();
    for f in p.all("filter") {
        out.extend(parse_matchers(f)?);
    }
    Ok(out)
}

fn receiver_regex(p: &Params) -> Result<Option<regex::Regex>, Response> {
    match p.one("receiver") {
        None => Ok(None),
        Some(r) => regex::Regex::new(&format!("^(?:{r})$")).map(Some).map_err(|e| {
            am_error(
                StatusCode::BAD_REQUEST,
                format!("failed to parse receiver param: {e}"),
            )
        }),
    }
}

/// The JSON of a `gettableAlert`.
pub fn alert_json(v: &AlertView) -> Value {
    let a = &v.alert;
    let mut o = json!({
        "annotations": a.annotations,
        "endsAt": fmt_time(a.ends_at),
        "fingerprint": a.fingerprint().to_string(),
        "receivers": v.receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "startsAt": fmt_time(a.starts_at),
        "status": {
            "inhibitedBy": v.inhibited_by,
            "silencedBy": v.silenced_by,
            "mutedBy": v.muted_by,
            "state": v.state(),
        },
        "updatedAt": fmt_time(a.updated_at),
        "labels": a.labels,
    });
    if !a.generator_url.is_empty()
        && let Some(m) = o.as_object_mut()
    {
        m.insert("generatorURL".into(), a.generator_url.clone().into());
    }
    o
}

fn keep(v: &AlertView, now: Ts, active: bool, silenced: bool, inhibited: bool, filter: &[Matcher]) -> bool {
    if v.alert.resolved_at(now) {
        return false;
    }
    if !active && v.state() == "active" {
        return false;
    }
    if !silenced && !v.silenced_by.is_empty() {
        return false;
    }
    if !inhibited && !v.inhibited_by.is_empty() {
        return false;
    }
    matches_all(filter, &v.alert.labels)
}

async fn get_alerts(State(s): State<ApiState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let run = || -> Result<Response, Response> {
        let tenant = tenant_of(&headers).map_err(am_err)?;
        let filter = parse_filter(&p).map_err(am_err)?;
        let active = p.bool("active", true).map_err(am_err)?;
        let silenced = p.bool("silenced", true).map_err(am_err)?;
        let inhibited = p.bool("inhibited", true).map_err(am_err)?;
        p.bool("unprocessed", true).map_err(am_err)?;
        let recv = receiver_regex(&p)?;
        let now = s.engine.now();
        let views = s.engine.alert_views(&tenant).map_err(am_err)?;
        let out: Vec<Value> = views
            .iter()
            .filter(|v| {
                recv.as_ref()
                    .is_none_or(|r| v.receivers.iter().any(|x| r.is_match(x)))
            })
            .filter(|v| keep(v, now, active, silenced, inhibited, &filter))
            .map(alert_json)
            .collect();
        Ok(json_ok(Value::Array(out)))
    };
    run().unwrap_or_else(|r| r)
}

async fn post_alerts(State(s): State<ApiState>, headers: HeaderMap, body: Body) -> Response {
    let tenant = match tenant_of(&headers) {
        Ok(t) => t,
        Err(e) => return am_err(e),
    };
    let body = match read_body(&s.engine, &tenant, &headers, body).await {
        Ok(b) => b,
        Err(e) => return am_err(e),
    };
    if let Err(r) = super::openapi::check_alerts(&body) {
        return r;
    }
    let posted: Vec<PostableAlert> = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return super::openapi::error(
                StatusCode::BAD_REQUEST,
                400,
                format!("parsing alerts body from \"\" failed, because {e}"),
            );
        }
    };
    match s.engine.ingest_posted(&tenant, posted) {
        Ok(errs) if errs.is_empty() => StatusCode::OK.into_response(),
        Ok(errs) => am_error(StatusCode::BAD_REQUEST, errs.join("\n")),
        Err(e) => am_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn get_groups(State(s): State<ApiState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let run = || -> Result<Response, Response> {
        let tenant = tenant_of(&headers).map_err(am_err)?;
        let filter = parse_filter(&p).map_err(am_err)?;
        let active = p.bool("active", true).map_err(am_err)?;
        let silenced = p.bool("silenced", true).map_err(am_err)?;
        let inhibited = p.bool("inhibited", true).map_err(am_err)?;
        let muted = p.bool("muted", true).map_err(am_err)?;
        let recv = receiver_regex(&p)?;
        let now = s.engine.now();
        let mut out = Vec::new();
        for g in s.engine.group_views(&tenant).map_err(am_err)? {
            if recv.as_ref().is_some_and(|r| !r.is_match(&g.receiver)) {
                continue;
            }
            if !muted && !g.muted_by.is_empty() {
                continue;
            }
            let alerts: Vec<Value> = g
                .alerts
                .iter()
                .filter(|v| keep(v, now, active, silenced, inhibited, &filter))
                .map(|v| {
                    let mut j = alert_json(v);
                    if let Some(st) = j.get_mut("status").and_then(|s| s.as_object_mut()) {
                        st.insert("mutedBy".into(), json!(g.muted_by));
                    }
                    j
                })
                .collect();
            if alerts.is_empty() {
                continue;
            }
            out.push(json!({
                "labels": g.labels,
                "routeLabels": LabelSet::new(),
                "receiver": {"name": g.receiver},
                "alerts": alerts,
            }));
        }
        Ok(json_ok(Value::Array(out)))
    };
    run().unwrap_or_else(|r| r)
}

/// Alertmanager's `postableSilence`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostableSilence {
    #[serde(default)]
    pub id: Option<String>,
    pub matchers: Vec<SilenceMatcher>,
    #[serde(rename = "startsAt")]
    pub starts_at: Ts,
    #[serde(rename = "endsAt")]
    pub ends_at: Ts,
    #[serde(rename = "createdBy")]
    pub created_by: String,
    pub comment: String,
    #[serde(default)]
    pub annotations: LabelSet,
}

/// The JSON of a `gettableSilence`.
pub fn silence_json(s: &Silence, now: Ts) -> Value {
    json!({
        "id": s.id,
        "status": {"state": s.state(now).as_str()},
        "updatedAt": fmt_time(s.updated_at),
        "matchers": s.matchers,
        "startsAt": fmt_time(s.starts_at),
        "endsAt": fmt_time(s.ends_at),
        "createdBy": s.created_by,
        "comment": s.comment,
        "annotations": s.annotations,
    })
}

/// Whether every filter matcher has an identical matcher in the silence (Alertmanager's rule).
fn silence_matches_filter(s: &Silence, filter: &[Matcher]) -> bool {
    filter.iter().all(|f| {
        s.matchers.iter().any(|m| {
            m.name == f.name
                && m.value == f.value
                && m.is_regex == f.op.is_regex()
                && m.is_equal == f.op.is_equal()
        })
    })
}

async fn get_silences(State(s): State<ApiState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let run = || -> Result<Response, Response> {
        let tenant = tenant_of(&headers).map_err(am_err)?;
        let filter = parse_filter(&p).map_err(am_err)?;
        let want = [
            ("active", p.bool("active", true).map_err(am_err)?),
            ("pending", p.bool("pending", true).map_err(am_err)?),
            ("expired", p.bool("expired", true).map_err(am_err)?),
        ];
        let now = s.engine.now();
        let mut sils: Vec<Silence> = s
            .engine
            .silences(&tenant)
            .map_err(am_err)?
            .into_iter()
            .filter(|x| want.iter().any(|(st, on)| *on && *st == x.state(now).as_str()))
            .filter(|x| silence_matches_filter(x, &filter))
            .collect();
        sils.sort_by(|a, b| {
            let (sa, sb) = (a.state(now), b.state(now));
            sa.cmp(&sb).then_with(|| match sa {
                crate::silence::SilenceState::Active => a.ends_at.cmp(&b.ends_at),
                crate::silence::SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
                crate::silence::SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
            })
        });
        Ok(json_ok(Value::Array(
            sils.iter().map(|x| silence_json(x, now)).collect(),
        )))
    };
    run().unwrap_or_else(|r| r)
}

async fn post_silence(State(s): State<ApiState>, headers: HeaderMap, body: Body) -> Response {
    let tenant = match tenant_of(&headers) {
        Ok(t) => t,
        Err(e) => return am_err(e),
    };
    let body = match read_body(&s.engine, &tenant, &headers, body).await {
        Ok(b) => b,
        Err(e) => return am_err(e),
    };
    if let Err(r) = super::openapi::check_silence(&body) {
        return r;
    }
    let ps: PostableSilence = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return super::openapi::error(
                StatusCode::BAD_REQUEST,
                400,
                format!("parsing silence body from \"\" failed, because {e}"),
            );
        }
    };
    if ps.starts_at >= ps.ends_at {
        return am_error(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: start time must be before end time",
        );
    }
    if ps.ends_at < s.engine.now() {
        return am_error(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: end time can't be in the past",
        );
    }
    let sil = Silence {
        id: ps.id.unwrap_or_default(),
        matchers: ps.matchers,
        starts_at: ps.starts_at,
        ends_at: ps.ends_at,
        updated_at: ps.starts_at,
        created_by: ps.created_by,
        comment: ps.comment,
        annotations: ps.annotations,
    };
    match s.engine.set_silence(&tenant, sil) {
        Ok(id) => json_ok(json!({"silenceID": id})),
        Err(AlertingError::NotFound(m)) => am_error(StatusCode::NOT_FOUND, m),
        Err(AlertingError::Store(m)) => am_error(StatusCode::INTERNAL_SERVER_ERROR, m),
        Err(AlertingError::Limit(m)) => {
            am_error(StatusCode::BAD_REQUEST, format!("Failed to create silence: {m}"))
        }
        Err(e) => am_error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

fn check_uuid(id: &str) -> Result<(), Response> {
    uuid::Uuid::parse_str(id).map(|_| ()).map_err(|_| {
        super::openapi::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            601,
            format!("silenceID in path must be of type uuid: {id:?}"),
        )
    })
}

async fn get_silence(State(s): State<ApiState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let tenant = match tenant_of(&headers) {
        Ok(t) => t,
        Err(e) => return am_err(e),
    };
    if let Err(r) = check_uuid(&id) {
        return r;
    }
    match s.engine.silence(&tenant, &id) {
        Ok(Some(sil)) => json_ok(silence_json(&sil, s.engine.now())),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => am_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn delete_silence(State(s): State<ApiState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let tenant = match tenant_of(&headers) {
        Ok(t) => t,
        Err(e) => return am_err(e),
    };
    if let Err(r) = check_uuid(&id) {
        return r;
    }
    match s.engine.expire_silence(&tenant, &id) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(AlertingError::NotFound(_)) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => am_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn get_status(State(s): State<ApiState>) -> Response {
    let rt = s.engine.runtime();
    json_ok(json!({
        "cluster": {"status": "disabled", "peers": []},
        "versionInfo": {
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "fenghuo",
            "branch": "main",
            "buildUser": "fenghuo",
            "buildDate": "",
            "goVersion": "rust",
        },
        "config": {"original": crate::config::redact::redact(&rt.loaded.original)},
        "uptime": fmt_time(s.engine.started_at),
    }))
}

async fn get_receivers(State(s): State<ApiState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let rt = s.engine.runtime();
    let filter = match parse_filter(&Params(
        [("filter".to_string(), p.all("receiver_matchers").to_vec())]
            .into_iter()
            .collect(),
    )) {
        Ok(f) => f,
        Err(e) => {
            return am_error(
                StatusCode::BAD_REQUEST,
                format!("failed to parse receiver_matchers param: {e}"),
            );
        }
    };
    let out: Vec<Value> = rt
        .loaded
        .config
        .receivers
        .iter()
        .filter(|r| filter.is_empty() || matches_all(&filter, &r.labels.clone().into_iter().collect()))
        .map(|r| {
            let mut o = json!({"name": r.name});
            if !r.labels.is_empty()
                && let Some(m) = o.as_object_mut()
            {
                m.insert("labels".into(), json!(r.labels));
            }
            o
        })
        .collect();
    json_ok(Value::Array(out))
}
