//! `/api/v1/rules` and `/api/v1/alerts` in Prometheus's JSON shapes (what Grafana reads), with
//! Prometheus's filters (`type`, `rule_name[]`, `rule_group[]`, `file[]`, `match[]`,
//! `exclude_alerts`, `group_limit`/`group_next_token`). Every request sees only the rules and
//! alerts of its tenant (`X-Scope-OrgID`).

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fenghuo_storage_api::model::{Labels, Matcher, TenantId, matches_all};
use serde_json::{Value as Json, json};
use sha2::Digest;

use crate::ruler::manager::RulerService;
use crate::ruler::rule::{Alert, Rule};

/// The router serving both endpoints.
pub fn router(svc: Arc<RulerService>) -> Router {
    Router::new()
        .route("/api/v1/rules", get(rules).post(rules_post))
        .route("/api/v1/alerts", get(alerts).post(alerts_post))
        .with_state(svc)
}

fn error(status: StatusCode, kind: &str, msg: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"status": "error", "errorType": kind, "error": msg.into()})),
    )
        .into_response()
}

fn bad_data(msg: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_data", msg)
}

fn invalid_param(param: &str, msg: impl std::fmt::Display) -> Response {
    bad_data(format!("invalid parameter {param:?}: {msg}"))
}

fn ok(data: Json) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

fn tenant(headers: &HeaderMap) -> Result<TenantId, String> {
    TenantId::from_header(headers.get(TenantId::HEADER).map(|v| v.as_bytes()))
        .map_err(|e| format!("invalid X-Scope-OrgID: {e}"))
}

/// Go's JSON form of a `time.Time` (RFC 3339, nanoseconds with trailing zeros trimmed) of a
/// time in nanoseconds; `None` is Go's zero time.
fn rfc3339(ns: Option<i64>) -> String {
    use chrono::Timelike;
    let Some(ns) = ns else {
        return "0001-01-01T00:00:00Z".into();
    };
    let t = chrono::DateTime::from_timestamp_nanos(ns);
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = t.nanosecond() % 1_000_000_000;
    if frac != 0 {
        out.push('.');
        out.push_str(format!("{frac:09}").trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// A float64 as Go's `encoding/json` writes it where it matters for equality with Prometheus's
/// answers: whole numbers without a fraction (`2`, not `2.0`).
fn go_number(f: f64) -> Json {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        Json::from(f as i64)
    } else {
        Json::from(f)
    }
}

fn labels_json(l: &Labels) -> Json {
    Json::Object(
        l.iter()
            .map(|l| (l.name.clone(), Json::String(l.value.clone())))
            .collect(),
    )
}

fn alert_json(a: &Alert) -> Json {
    let mut o = json!({
        "labels": labels_json(&a.labels),
        "annotations": labels_json(&a.annotations),
        "state": a.state.as_str(),
        "activeAt": rfc3339(Some(a.active_at)),
        "value": fenghuo_gofmt::format_float(a.value, b'e', -1),
    });
    if let Some(k) = a.keep_firing_since {
        o["keepFiringSince"] = Json::String(rfc3339(Some(k)));
    }
    o
}

/// Form values: the query string plus an urlencoded body.
fn params(query: Option<String>, body: &[u8]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    v.extend(url::form_urlencoded::parse(body).into_owned());
    v
}

fn all<'a>(p: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    p.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn first<'a>(p: &'a [(String, String)], key: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn parse_matchers(sel: &str) -> Result<Vec<Matcher>, String> {
    use promql_parser::parser::Expr;
    let expr = fenghuo_query::depth::parse(sel).map_err(|e| format!("1:1: {e}"))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("1:1: parse error: {sel:?} is not a series selector"));
    };
    let mut out = Vec::new();
    if let Some(n) = &vs.name {
        out.push(Matcher::equal("__name__", n.clone()));
    }
    for m in &vs.matchers.matchers {
        out.push(fenghuo_query::convert_matcher(m).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

fn next_token(file: &str, group: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(format!("{file};{group}").as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "true" => Some(true),
        "0" | "f" | "false" => Some(false),
        _ => None,
    }
}

async fn rules_post(
    State(svc): State<Arc<RulerService>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    rules_impl(&svc, &headers, params(q, &body))
}

async fn rules(State(svc): State<Arc<RulerService>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    rules_impl(&svc, &headers, params(q, &[]))
}

fn rules_impl(svc: &RulerService, headers: &HeaderMap, p: Vec<(String, String)>) -> Response {
    let tenant = match tenant(headers) {
        Ok(t) => t,
        Err(e) => return bad_data(e),
    };
    let names: HashSet<&str> = all(&p, "rule_name[]").into_iter().collect();
    let groups_f: HashSet<&str> = all(&p, "rule_group[]").into_iter().collect();
    let files_f: HashSet<&str> = all(&p, "file[]").into_iter().collect();
    let mut matcher_sets = Vec::new();
    for m in all(&p, "match[]") {
        match parse_matchers(m) {
            Ok(ms) => matcher_sets.push(ms),
            Err(e) => return bad_data(e),
        }
    }
    let typ = first(&p, "type").unwrap_or("").to_lowercase();
    if !typ.is_empty() && typ != "alert" && typ != "record" {
        return invalid_param("type", format!("not supported value {typ:?}"));
    }
    let (want_alerts, want_records) = (typ != "record", typ != "alert");
    let exclude_alerts = match first(&p, "exclude_alerts").map(str::to_lowercase) {
        None => false,
        Some(s) if s.is_empty() => false,
        Some(s) => match parse_go_bool(&s) {
            Some(b) => b,
            None => {
                return invalid_param(
                    "exclude_alerts",
                    format!(
                        "error converting exclude_alerts: strconv.ParseBool: parsing {s:?}: invalid syntax"
                    ),
                );
            }
        },
    };
    let token = first(&p, "group_next_token").unwrap_or("");
    let max_groups: i64 = match first(&p, "group_limit") {
        None | Some("") => {
            if !token.is_empty() {
                return invalid_param(
                    "group_next_token",
                    "group_limit needs to be present in order to paginate over the groups",
                );
            }
            -1
        }
        Some(s) => match s.parse::<i32>() {
            Ok(n) if n > 0 => i64::from(n),
            Ok(_) => return invalid_param("group_limit", "group_limit needs to be greater than 0"),
            Err(_) => {
                return invalid_param(
                    "group_limit",
                    format!(
                        "group_limit needs to be a valid number: strconv.ParseInt: parsing {s:?}: invalid syntax"
                    ),
                );
            }
        },
    };

    let mut out = Vec::new();
    let mut next = None;
    let mut found_token = false;
    for g in svc.tenant_groups(&tenant) {
        if max_groups > 0 && !token.is_empty() && !found_token {
            if token != next_token(&g.file, &g.name) {
                continue;
            }
            found_token = true;
        }
        if !groups_f.is_empty() && !groups_f.contains(g.name.as_str()) {
            continue;
        }
        if !files_f.is_empty() && !files_f.contains(g.file.as_str()) {
            continue;
        }
        let mut rules_json = Vec::new();
        for r in &g.rules {
            if !matcher_sets.is_empty() && !matcher_sets.iter().any(|ms| matches_all(ms, r.labels())) {
                continue;
            }
            if !names.is_empty() && !names.contains(r.name()) {
                continue;
            }
            let st = r.status().lock().clone();
            let mut o = match r {
                Rule::Alerting(a) => {
                    if !want_alerts {
                        continue;
                    }
                    let alerts: Json = if exclude_alerts {
                        Json::Null
                    } else {
                        Json::Array(a.active_alerts().iter().map(alert_json).collect())
                    };
                    json!({
                        "state": a.state().map(|s| s.as_str()).unwrap_or("unknown"),
                        "name": a.name,
                        "query": a.query,
                        "duration": go_number(a.hold_ms as f64 / 1000.0),
                        "keepFiringFor": go_number(a.keep_firing_for_ms as f64 / 1000.0),
                        "labels": labels_json(&a.labels),
                        "annotations": labels_json(&a.annotations),
                        "alerts": alerts,
                        "health": st.health.as_str(),
                        "evaluationTime": go_number(st.evaluation_seconds),
                        "lastEvaluation": rfc3339(st.last_evaluation),
                        "type": "alerting",
                    })
                }
                Rule::Recording(rr) => {
                    if !want_records {
                        continue;
                    }
                    json!({
                        "name": rr.name,
                        "query": rr.query,
                        "labels": labels_json(&rr.labels),
                        "health": st.health.as_str(),
                        "evaluationTime": go_number(st.evaluation_seconds),
                        "lastEvaluation": rfc3339(st.last_evaluation),
                        "type": "recording",
                    })
                }
            };
            if let Some(e) = &st.last_error {
                o["lastError"] = Json::String(e.clone());
            }
            rules_json.push(o);
        }
        if rules_json.is_empty() {
            continue;
        }
        if max_groups > 0 && out.len() as i64 == max_groups {
            next = Some(next_token(&g.file, &g.name));
            break;
        }
        out.push(json!({
            "name": g.name,
            "file": g.file,
            "rules": rules_json,
            "interval": go_number(g.interval_ms as f64 / 1000.0),
            "limit": g.limit,
            "evaluationTime": go_number(g.evaluation_seconds()),
            "lastEvaluation": rfc3339(g.last_evaluation()),
        }));
    }
    if max_groups > 0 && !token.is_empty() && !found_token {
        return invalid_param(
            "group_next_token",
            format!("invalid group_next_token '{token}'. were rule groups changed?"),
        );
    }
    let mut data = json!({ "groups": out });
    if let Some(n) = next {
        data["groupNextToken"] = Json::String(n);
    }
    ok(data)
}

async fn alerts(State(svc): State<Arc<RulerService>>, headers: HeaderMap) -> Response {
    alerts_impl(&svc, &headers)
}

async fn alerts_post(State(svc): State<Arc<RulerService>>, headers: HeaderMap) -> Response {
    alerts_impl(&svc, &headers)
}

fn alerts_impl(svc: &RulerService, headers: &HeaderMap) -> Response {
    let tenant = match tenant(headers) {
        Ok(t) => t,
        Err(e) => return bad_data(e),
    };
    let alerts: Vec<Json> = svc
        .tenant_groups(&tenant)
        .iter()
        .flat_map(|g| {
            g.alerting_rules()
                .flat_map(|r| r.active_alerts())
                .map(|a| alert_json(&a))
                .collect::<Vec<_>>()
        })
        .collect();
    ok(json!({ "alerts": alerts }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_times_format_like_prometheus() {
        assert_eq!(
            rfc3339(Some(1_700_000_000_123_000_000)),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            rfc3339(Some(1_700_000_000_123_456_700)),
            "2023-11-14T22:13:20.1234567Z"
        );
        assert_eq!(rfc3339(Some(1_700_000_000_000_000_000)), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
    }
}
