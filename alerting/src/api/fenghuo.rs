//! fenghuo's own alerting API under `/api/v1/alerting`: generic JSON ingestion, acknowledgements
//! (API and signed links for messages), history and statistics, escalation state, the queue of
//! deliveries that kept failing, template preview, test notifications and route testing.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Duration;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiState, Params, PostableAlert, fmt_time, parse_time, tenant_of};
use crate::error::AlertingError;
use crate::history::{EventKind, stats};
use crate::matchers::parse_matchers;
use crate::model::{Fingerprint, LabelSet};

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/alerting/ingest", post(ingest))
        .route(
            "/api/v1/alerting/acks",
            get(list_acks).post(create_ack).delete(delete_ack),
        )
        .route("/api/v1/alerting/ack", get(ack_link).post(ack_link_post))
        .route("/api/v1/alerting/history", get(history))
        .route("/api/v1/alerting/stats", get(get_stats))
        .route("/api/v1/alerting/escalations", get(escalations))
        .route(
            "/api/v1/alerting/delivery-failures",
            get(delivery_failures).delete(dismiss_delivery_failure),
        )
        .route("/api/v1/alerting/templates/preview", post(preview))
        .route("/api/v1/alerting/receivers/{name}/test", post(test_receiver))
        .route("/api/v1/alerting/routes/test", post(routes_test))
        .route("/api/v1/alerting/config", get(config_info))
        .layer(axum::extract::DefaultBodyLimit::max(super::SMALL_BODY_BYTES))
        .with_state(state)
}

fn ok(v: Value) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({"status": "success", "data": v})),
    )
        .into_response()
}

fn err(e: AlertingError) -> Response {
    (
        e.status(),
        axum::Json(json!({"status": "error", "error": e.to_string()})),
    )
        .into_response()
}

fn bad(m: impl Into<String>) -> Response {
    err(AlertingError::BadRequest(m.into()))
}

/// One alert in the generic ingestion format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericAlert {
    #[serde(alias = "alertname")]
    pub name: String,
    #[serde(default)]
    pub labels: LabelSet,
    #[serde(default)]
    pub annotations: LabelSet,
    #[serde(default)]
    pub severity: Option<String>,
    /// `firing` (default) or `resolved`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default, alias = "url")]
    pub generator_url: Option<String>,
    #[serde(default, alias = "startsAt")]
    pub starts_at: Option<String>,
    #[serde(default, alias = "endsAt")]
    pub ends_at: Option<String>,
}

/// Converts generic alerts to postable ones.
pub fn generic_to_postable(
    items: Vec<GenericAlert>,
    now: crate::Ts,
) -> Result<Vec<PostableAlert>, AlertingError> {
    let mut out = Vec::new();
    for (i, g) in items.into_iter().enumerate() {
        let ctx = |m: String| AlertingError::BadRequest(format!("alert {i}: {m}"));
        if g.name.trim().is_empty() {
            return Err(ctx("name must not be empty".into()));
        }
        let mut labels = g.labels;
        labels.insert("alertname".into(), g.name);
        if let Some(s) = g.severity {
            labels.insert("severity".into(), s);
        }
        if let Some(s) = g.source {
            labels.entry("source".into()).or_insert(s);
        }
        let mut annotations = g.annotations;
        if let Some(s) = g.summary {
            annotations.insert("summary".into(), s);
        }
        if let Some(s) = g.description {
            annotations.insert("description".into(), s);
        }
        let starts_at = g
            .starts_at
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(|e| ctx(e.to_string()))?;
        let mut ends_at = g
            .ends_at
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(|e| ctx(e.to_string()))?;
        match g.status.as_deref() {
            None | Some("firing") => {}
            Some("resolved") => {
                if ends_at.is_none() {
                    ends_at = Some(now);
                }
            }
            Some(other) => return Err(ctx(format!("status must be firing or resolved, got {other:?}"))),
        }
        out.push(PostableAlert {
            labels,
            annotations,
            starts_at,
            ends_at,
            generator_url: g.generator_url.unwrap_or_default(),
        });
    }
    Ok(out)
}

async fn ingest(State(s): State<ApiState>, headers: HeaderMap, body: axum::body::Body) -> Response {
    let tenant = match tenant_of(&headers) {
        Ok(t) => t,
        Err(e) => return err(e),
    };
    let body = match super::read_body(&s.engine, &tenant, &headers, body).await {
        Ok(b) => b,
        Err(e) => return err(e),
    };
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(format!("invalid JSON: {e}")),
    };
    let items = match v {
        Value::Array(_) => serde_json::from_value::<Vec<GenericAlert>>(v),
        Value::Object(_) => serde_json::from_value::<GenericAlert>(v).map(|a| vec![a]),
        _ => return bad("expected an alert object or an array of alerts"),
    };
    let items = match items {
        Ok(i) => i,
        Err(e) => return bad(format!("invalid alert: {e}")),
    };
    let n = items.len();
    let posted = match generic_to_postable(items, s.engine.now()) {
        Ok(p) => p,
        Err(e) => return err(e),
    };
    match s.engine.ingest_posted(&tenant, posted) {
        Ok(errs) if errs.is_empty() => ok(json!({"accepted": n})),
        Ok(errs) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"status": "error", "error": errs.join("; "), "accepted": n - errs.len()})),
        )
            .into_response(),
        Err(e) => err(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckRequest {
    #[serde(default, rename = "groupKey")]
    group_key: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    by: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    ttl: Option<String>,
}

fn ack_json(a: &crate::engine::Ack) -> Value {
    json!({
        "id": a.id, "groupKey": a.group_key, "by": a.by, "comment": a.comment,
        "at": fmt_time(a.at), "expiresAt": fmt_time(a.expires_at),
    })
}

async fn create_ack(State(s): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    let tenant = match tenant_of(&headers) {
        Ok(t) => t,
        Err(e) => return err(e),
    };
    let req: AckRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad(format!("invalid ack request: {e}")),
    };
    let ttl = match req
        .ttl
        .as_deref()
        .map(crate::duration::parse_duration)
        .transpose()
    {
        Ok(t) => t.map(|d| d.as_duration()),
        Err(e) => return err(e),
    };
    let res = match (&req.group_key, &req.fingerprint) {
        (Some(g), None) => s
            .engine
            .ack_group(&tenant, g, &req.by, &req.comment, ttl)
            .map(|a| vec![a]),
        (None, Some(f)) => match f.parse::<Fingerprint>() {
            Ok(fp) => s.engine.ack_alert(&tenant, fp, &req.by, &req.comment, ttl),
            Err(e) => Err(e),
        },
        _ => Err(AlertingError::BadRequest(
            "give exactly one of groupKey or fingerprint".into(),
        )),
    };
    match res {
        Ok(acks) => ok(Value::Array(acks.iter().map(ack_json).collect())),
        Err(e) => err(e),
    }
}

async fn list_acks(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    match tenant_of(&headers).and_then(|t| s.engine.acks(&t)) {
        Ok(acks) => ok(Value::Array(acks.iter().map(ack_json).collect())),
        Err(e) => err(e),
    }
}

async fn delete_ack(State(s): State<ApiState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let Some(group) = p.one("groupKey") else {
        return bad("groupKey parameter required");
    };
    let by = p.one("by").unwrap_or("api");
    match tenant_of(&headers).and_then(|t| s.engine.unack(&t, group, by)) {
        Ok(()) => ok(Value::Null),
        Err(e) => err(e),
    }
}

/// Checks the signed link parameters; returns tenant and group key.
// The error is the ready-made response of the handler.
#[allow(clippy::result_large_err)]
fn check_link(s: &ApiState, p: &Params) -> Result<(String, String), Response> {
    let (Some(tenant), Some(group), Some(expires), Some(token)) =
        (p.one("tenant"), p.one("group"), p.one("expires"), p.one("token"))
    else {
        return Err((
            StatusCode::BAD_REQUEST,
            Html("missing tenant, group, expires or token".to_string()),
        )
            .into_response());
    };
    if let Err(why) = s.engine.verify_ack_link(tenant, group, expires, token) {
        return Err((StatusCode::FORBIDDEN, Html(why.to_string())).into_response());
    }
    Ok((tenant.to_string(), group.to_string()))
}

/// The link put in messages. GET only shows a confirmation form, so link previews of chat
/// clients cannot acknowledge by fetching it; the form POSTs to the same URL.
async fn ack_link(State(s): State<ApiState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let (_, group) = match check_link(&s, &p) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let action = format!("/api/v1/alerting/ack?{}", html_escape(q.as_deref().unwrap_or("")));
    Html(format!(
        "<!DOCTYPE html><html><body><h2>Acknowledge alert group</h2><p>{}</p>\
         <form method=\"post\" action=\"{action}\">\
         <label>Your name <input name=\"by\" required></label> \
         <label>For <input name=\"ttl\" placeholder=\"4h\"></label> \
         <button type=\"submit\">Acknowledge</button></form></body></html>",
        html_escape(&group)
    ))
    .into_response()
}

/// Performs the acknowledgement submitted from the link's form (`by`, optional `ttl`).
async fn ack_link_post(State(s): State<ApiState>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let p = Params::parse(q.as_deref());
    let (tenant, group) = match check_link(&s, &p) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let form = Params::parse(std::str::from_utf8(&body).ok());
    let by = form.one("by").or(p.one("by")).unwrap_or("").trim().to_string();
    let ttl = match form.one("ttl").or(p.one("ttl")).filter(|t| !t.trim().is_empty()) {
        Some(t) => match crate::duration::parse_duration(t) {
            Ok(d) => Some(d.as_duration()),
            Err(e) => return (StatusCode::BAD_REQUEST, Html(html_escape(&e.to_string()))).into_response(),
        },
        None => None,
    };
    match s.engine.ack_group(&tenant, &group, &by, "acknowledged via link", ttl) {
        Ok(a) => Html(format!(
            "<!DOCTYPE html><html><body><h2>Acknowledged</h2><p>Alert group {} acknowledged by {} until {}.</p></body></html>",
            html_escape(&a.group_key),
            html_escape(&a.by),
            fmt_time(a.expires_at)
        ))
        .into_response(),
        Err(e) => (e.status(), Html(html_escape(&e.to_string()))).into_response(),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn range(p: &Params, now: crate::Ts) -> Result<(crate::Ts, crate::Ts), AlertingError> {
    let end = p
        .one("end")
        .map(parse_time)
        .transpose()?
        .unwrap_or(now + Duration::seconds(1));
    let start = match p.one("start") {
        Some(s) => parse_time(s)?,
        None => end.checked_sub_signed(Duration::days(1)).unwrap_or(end),
    };
    if start > end {
        return Err(AlertingError::BadRequest("start must not be after end".into()));
    }
    Ok((start, end))
}

fn kind_of(s: &str) -> Result<EventKind, AlertingError> {
    serde_json::from_value(Value::String(s.to_string()))
        .map_err(|_| AlertingError::BadRequest(format!("unknown event kind {s:?}")))
}

async fn history(State(s): State<ApiState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let run = || -> Result<Value, AlertingError> {
        let tenant = tenant_of(&headers)?;
        let (start, end) = range(&p, s.engine.now())?;
        let mut filter = Vec::new();
        for f in p.all("filter") {
            filter.extend(parse_matchers(f)?);
        }
        let kinds = p
            .all("kind")
            .iter()
            .map(|k| kind_of(k))
            .collect::<Result<Vec<_>, _>>()?;
        let limit = p
            .one("limit")
            .map(|l| l.parse::<usize>())
            .transpose()
            .map_err(|_| AlertingError::BadRequest("invalid limit".into()))?;
        let mut events = s.engine.history(&tenant, start, end, &filter, &kinds, 0)?;
        // One alert's lifecycle: the events naming its fingerprint.
        if let Some(fp) = p.one("fingerprint") {
            events.retain(|e| e.fingerprints.iter().any(|f| f == fp));
        }
        events.truncate(limit.unwrap_or(10_000));
        Ok(serde_json::to_value(events).unwrap_or_default())
    };
    match run() {
        Ok(v) => ok(v),
        Err(e) => err(e),
    }
}

async fn get_stats(State(s): State<ApiState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let run = || -> Result<Value, AlertingError> {
        let tenant = tenant_of(&headers)?;
        let (start, end) = range(&p, s.engine.now())?;
        let events = s.engine.history(&tenant, start, end, &[], &[], 0)?;
        Ok(serde_json::to_value(stats(&events, start, end)).unwrap_or_default())
    };
    match run() {
        Ok(v) => ok(v),
        Err(e) => err(e),
    }
}

async fn escalations(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    match tenant_of(&headers).and_then(|t| s.engine.escalations(&t)) {
        Ok(e) => ok(serde_json::to_value(e).unwrap_or_default()),
        Err(e) => err(e),
    }
}

async fn delivery_failures(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    match tenant_of(&headers).and_then(|t| s.engine.delivery_failures(&t)) {
        Ok(n) => ok(serde_json::to_value(n).unwrap_or_default()),
        Err(e) => err(e),
    }
}

async fn dismiss_delivery_failure(
    State(s): State<ApiState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.as_deref());
    let run = || -> Result<(), AlertingError> {
        let tenant = tenant_of(&headers)?;
        let key = p
            .one("groupKey")
            .ok_or_else(|| AlertingError::BadRequest("groupKey is required".into()))?;
        s.engine
            .dismiss_delivery_failure(&tenant, key, p.one("by").unwrap_or(""))
    };
    match run() {
        Ok(()) => ok(json!({})),
        Err(e) => err(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    /// Handlebars source to render; or `name` of a registered template.
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// `html`, `json` or `none` (default).
    #[serde(default)]
    escape: Option<String>,
    #[serde(default)]
    alerts: Vec<PostableAlert>,
    #[serde(default)]
    receiver: Option<String>,
}

async fn preview(State(s): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    let run = || -> Result<Value, AlertingError> {
        let tenant = tenant_of(&headers)?;
        let req: PreviewRequest = serde_json::from_slice(&body)
            .map_err(|e| AlertingError::BadRequest(format!("invalid preview request: {e}")))?;
        let escape = crate::cli::parse_escape(req.escape.as_deref().unwrap_or("none"))?;
        let data = s
            .engine
            .sample_data(&tenant, req.receiver.as_deref().unwrap_or("preview"), req.alerts)?;
        let rt = s.engine.runtime();
        let out = match (&req.template, &req.name) {
            (Some(src), None) => rt.templates.render_source(src, escape, &data)?,
            (None, Some(name)) => {
                if !rt.templates.has(name) {
                    return Err(AlertingError::NotFound(format!("template {name:?} not found")));
                }
                rt.templates.render(name, escape, &data)?
            }
            _ => {
                return Err(AlertingError::BadRequest(
                    "give exactly one of template or name".into(),
                ));
            }
        };
        Ok(json!({"output": out}))
    };
    match run() {
        Ok(v) => ok(v),
        Err(e) => err(e),
    }
}

async fn test_receiver(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let tenant = match tenant_of(&headers) {
        Ok(t) => t,
        Err(e) => return err(e),
    };
    let alerts: Vec<PostableAlert> = if body.is_empty() {
        vec![]
    } else {
        match serde_json::from_slice::<Value>(&body) {
            // `{"alerts": [...]}` or the bare array; anything else is refused, not ignored.
            Ok(v) => {
                let list = match v {
                    Value::Array(_) => Some(v),
                    Value::Object(mut o) => o.remove("alerts"),
                    _ => return bad("expected {\"alerts\": [...]} or an array of alerts"),
                };
                match list.map(serde_json::from_value) {
                    Some(Ok(a)) => a,
                    Some(Err(e)) => return bad(format!("invalid alerts: {e}")),
                    None => vec![],
                }
            }
            Err(e) => return bad(format!("invalid JSON: {e}")),
        }
    };
    match s.engine.test_receiver(&tenant, &name, alerts).await {
        Ok(results) => {
            let failed = results
                .iter()
                .any(|r| r.get("error").is_some_and(|e| !e.is_null()));
            let body = json!({"status": if failed { "error" } else { "success" }, "data": results});
            (
                if failed {
                    StatusCode::BAD_GATEWAY
                } else {
                    StatusCode::OK
                },
                axum::Json(body),
            )
                .into_response()
        }
        Err(e) => err(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesTestRequest {
    labels: LabelSet,
}

async fn routes_test(State(s): State<ApiState>, body: Bytes) -> Response {
    let req: RoutesTestRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad(format!("invalid request: {e}")),
    };
    let rt = s.engine.runtime();
    let routes: Vec<Value> = rt
        .routes
        .matching(&req.labels)
        .iter()
        .map(|r| {
            json!({
                "receiver": r.receiver, "routeKey": r.key,
                "groupBy": if r.group_by_all { vec!["...".to_string()] } else { r.group_by.iter().cloned().collect() },
                "groupWait": crate::duration::PromDuration(r.group_wait).to_string(),
                "groupInterval": crate::duration::PromDuration(r.group_interval).to_string(),
                "repeatInterval": crate::duration::PromDuration(r.repeat_interval).to_string(),
                "escalation": r.escalation,
            })
        })
        .collect();
    ok(Value::Array(routes))
}

async fn config_info(State(s): State<ApiState>) -> Response {
    let rt = s.engine.runtime();
    ok(json!({
        "warnings": rt.loaded.warnings,
        "original": crate::config::redact::redact(&rt.loaded.original),
    }))
}
