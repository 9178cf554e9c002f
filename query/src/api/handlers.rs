//! One handler per `/api/v1` endpoint. Each parses its parameters as
//! Prometheus does, runs storage or engine work on a blocking thread, and
//! answers with Prometheus's envelope:
//! `{"status":"success","data":…,"warnings":[…],"infos":[…]}` or
//! `{"status":"error","errorType":…,"error":…}` with the matching status code.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fenghuo_storage_api::StorageError;
use fenghuo_storage_api::api::Querier;
use fenghuo_storage_api::model::{Labels, TenantId};

use super::QueryApi;
use super::json::{write_float, write_histogram, write_labels, write_str, write_str_array, write_timestamp};
use super::params::{
    self, InvalidParam, MAX_TIME_MS, MIN_TIME_MS, Params, invalid, limit_param, match_params, time_param,
};
use crate::{Engine, PointValue, QueryControl, QueryError, QueryOutput, Value, depth};

/// Prometheus caps range queries at this many points per series.
const MAX_POINTS_PER_SERIES: i64 = 11_000;
/// Upper bound of `/api/v1/status/tsdb?limit=`.
const MAX_TSDB_LIMIT: usize = 10_000;

/// An API failure: Prometheus's `errorType` and message.
#[derive(Debug)]
pub struct ApiError {
    error_type: &'static str,
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        let status = match error_type {
            "bad_data" => StatusCode::BAD_REQUEST,
            "execution" => StatusCode::UNPROCESSABLE_ENTITY,
            "canceled" => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            "timeout" | "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            "not_found" => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self {
            error_type,
            status,
            message: message.into(),
        }
    }

    fn bad_data(message: impl Into<String>) -> Self {
        Self::new("bad_data", message)
    }
}

impl From<InvalidParam> for ApiError {
    fn from(e: InvalidParam) -> Self {
        Self::bad_data(e.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::TooManySamples { .. } => Self::new("execution", e.to_string()),
            StorageError::ShuttingDown | StorageError::Overloaded(_) => {
                Self::new("unavailable", e.to_string())
            }
            _ => Self::new("internal", e.to_string()),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        let error_type = e.error_type();
        let mut err = Self::new(error_type, e.to_string());
        if let Ok(status) = StatusCode::from_u16(e.http_status()) {
            err.status = status;
        }
        // Prometheus reports errors from creating a query (parsing and
        // validation) as a bad "query" parameter.
        if error_type == "bad_data" {
            err.message = format!("invalid parameter \"query\": {}", err.message);
        }
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = String::from("{\"status\":\"error\",\"errorType\":");
        write_str(&mut body, self.error_type);
        body.push_str(",\"error\":");
        write_str(&mut body, &self.message);
        body.push('}');
        (self.status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// A successful answer: `data` is already-encoded JSON.
fn success(data: &str, warnings: &[String], infos: &[String]) -> Response {
    let mut body = String::with_capacity(data.len() + 64);
    body.push_str("{\"status\":\"success\",\"data\":");
    body.push_str(data);
    if !warnings.is_empty() {
        body.push_str(",\"warnings\":");
        write_str_array(&mut body, warnings.iter().map(String::as_str));
    }
    if !infos.is_empty() {
        body.push_str(",\"infos\":");
        write_str_array(&mut body, infos.iter().map(String::as_str));
    }
    body.push('}');
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The tenant and the form values of a request (URL query, and the body of
/// form-encoded POSTs).
pub struct ApiRequest {
    tenant: Result<TenantId, String>,
    params: Params,
}

impl<S: Send + Sync> FromRequest<S> for ApiRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let query = req.uri().query().map(str::to_string);
        let is_form_post = req.method() == Method::POST
            && req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let tenant = tenant_from(req.headers());
        let body = if is_form_post {
            Some(
                Bytes::from_request(req, state)
                    .await
                    .map_err(|e| ApiError::bad_data(format!("error parsing form values: {e}")))?,
            )
        } else {
            None
        };
        Ok(Self {
            tenant,
            params: Params::parse(query.as_deref(), body.as_deref()),
        })
    }
}

fn tenant_from(headers: &HeaderMap) -> Result<TenantId, String> {
    TenantId::from_header(headers.get(TenantId::HEADER).map(|v| v.as_bytes()))
}

impl ApiRequest {
    fn querier(&self, api: &QueryApi) -> Result<Arc<dyn Querier>, ApiError> {
        let tenant = self
            .tenant
            .as_ref()
            .map_err(|e| ApiError::bad_data(format!("invalid X-Scope-OrgID: {e}")))?;
        Ok(api.storage.querier(tenant)?)
    }
}

/// Runs blocking work (storage reads, evaluation) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(|| depth::run_with_stack(f))
        .await
        .map_err(|e| ApiError::new("internal", format!("query task failed: {e}")))?
}

fn timeout_param(p: &Params) -> Result<Option<std::time::Duration>, ApiError> {
    let s = p.get("timeout");
    if s.is_empty() {
        return Ok(None);
    }
    let ms = params::parse_duration(s).map_err(|e| invalid("timeout", e))?;
    Ok(Some(std::time::Duration::from_millis(ms.max(0) as u64)))
}

/// The engine for one request: the shared one, or a copy with the
/// request's `lookback_delta`.
fn engine_for(api: &QueryApi, p: &Params) -> Result<Arc<Engine>, ApiError> {
    let s = p.get("lookback_delta");
    if s.is_empty() {
        return Ok(api.engine.clone());
    }
    let ms = params::parse_duration(s)
        .map_err(|e| ApiError::bad_data(format!("error parsing lookback delta duration: {e}")))?;
    let mut opts = api.engine.options().clone();
    if ms > 0 {
        opts.lookback_delta_ms = ms;
    }
    Ok(Arc::new(Engine::new(opts)))
}

/// Sets a flag when dropped: axum drops a handler's future when the client
/// goes away, and the evaluation thread then stops at its next check.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs an evaluation on a blocking thread with the request's `timeout` (a
/// deadline on top of the engine's own) and cancellation when the client
/// disconnects.
async fn evaluate(
    api: &QueryApi,
    timeout: Option<std::time::Duration>,
    f: impl FnOnce(QueryControl<'_>) -> Result<QueryOutput, QueryError> + Send + 'static,
) -> Result<QueryOutput, ApiError> {
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    // The wait for a slot counts against the query's timeout, as in
    // Prometheus's query queue.
    let budget = timeout.map_or(api.engine.options().timeout, |t| {
        t.min(api.engine.options().timeout)
    });
    let deadline = Instant::now() + budget;
    let _slot = match tokio::time::timeout(budget, api.slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) if Instant::now() < deadline => permit,
        _ => {
            crate::metrics::queue_timeout();
            return Err(QueryError::Timeout { env: "query queue" }.into());
        }
    };
    blocking(move || {
        f(QueryControl {
            deadline: Some(deadline),
            cancel: Some(&cancel),
        })
        .map_err(ApiError::from)
    })
    .await
}

pub async fn query(State(api): State<Arc<QueryApi>>, req: ApiRequest) -> ApiResult {
    let p = &req.params;
    let limit = limit_param(p)?;
    let t = time_param(p, "time", (api.now_ms)())?;
    let timeout = timeout_param(p)?;
    let engine = engine_for(&api, p)?;
    let querier = req.querier(&api)?;
    let q = p.get("query").to_string();
    let started = Instant::now();
    let out = evaluate(&api, timeout, move |ctl| {
        let parsed = Engine::parse_for(&q, t, t, 0)?;
        engine.instant_parsed(&*querier, &parsed, t, ctl)
    })
    .await?;
    Ok(render_query_output(out, limit, stats_param(p, started)))
}

pub async fn query_range(State(api): State<Arc<QueryApi>>, req: ApiRequest) -> ApiResult {
    let p = &req.params;
    let limit = limit_param(p)?;
    let start = params::parse_time(p.get("start")).map_err(|e| invalid("start", e))?;
    let end = params::parse_time(p.get("end")).map_err(|e| invalid("end", e))?;
    if end < start {
        return Err(invalid("end", "end timestamp must not be before start time").into());
    }
    let step = params::parse_duration(p.get("step")).map_err(|e| invalid("step", e))?;
    if step <= 0 {
        return Err(invalid(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        )
        .into());
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let timeout = timeout_param(p)?;
    let engine = engine_for(&api, p)?;
    let querier = req.querier(&api)?;
    let q = p.get("query").to_string();
    let started = Instant::now();
    let out = evaluate(&api, timeout, move |ctl| {
        let parsed = Engine::parse_for(&q, start, end, step)?;
        engine.range_parsed(&*querier, &parsed, start, end, step, ctl)
    })
    .await?;
    Ok(render_query_output(out, limit, stats_param(p, started)))
}

/// Whether the request asked for `stats`, and since when the query ran.
fn stats_param(p: &Params, started: Instant) -> Option<Instant> {
    (!p.get("stats").is_empty()).then_some(started)
}

fn render_query_output(mut out: QueryOutput, limit: usize, stats_since: Option<Instant>) -> Response {
    if limit > 0 {
        let truncated = match &mut out.value {
            Value::Vector(v) if v.len() > limit => {
                v.truncate(limit);
                true
            }
            Value::Matrix(m) if m.len() > limit => {
                m.truncate(limit);
                true
            }
            _ => false,
        };
        if truncated {
            out.warnings.push("results truncated due to limit".into());
        }
    }
    let mut data = String::with_capacity(256);
    write_value(&mut data, &out.value);
    if let Some(started) = stats_since {
        // Prometheus's `stats` object: timings in seconds and sample counts.
        data.pop();
        let total = started.elapsed().as_secs_f64();
        let _ = write!(
            data,
            ",\"stats\":{{\"timings\":{{\"evalTotalTime\":{total},\"resultSortTime\":0,\"queryPreparationTime\":0,\"innerEvalTime\":{total},\"execQueueTime\":0,\"execTotalTime\":{total}}},\"samples\":{{\"totalQueryableSamples\":{},\"peakSamples\":{}}}}}}}",
            out.stats.samples_loaded, out.stats.peak_samples
        );
    }
    success(&data, &out.warnings, &out.infos)
}

/// `{"resultType":…,"result":…}`.
pub fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Scalar { t, v } => {
            out.push_str("{\"resultType\":\"scalar\",\"result\":[");
            write_timestamp(out, *t);
            out.push(',');
            write_float(out, *v);
            out.push_str("]}");
        }
        Value::String { t, v } => {
            out.push_str("{\"resultType\":\"string\",\"result\":[");
            write_timestamp(out, *t);
            out.push(',');
            write_str(out, v);
            out.push_str("]}");
        }
        Value::Vector(samples) => {
            out.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(out, &s.labels);
                match &s.value {
                    PointValue::Float(f) => {
                        out.push_str(",\"value\":[");
                        write_timestamp(out, s.t);
                        out.push(',');
                        write_float(out, *f);
                    }
                    PointValue::Histogram(h) => {
                        out.push_str(",\"histogram\":[");
                        write_timestamp(out, s.t);
                        out.push(',');
                        write_histogram(out, h);
                    }
                }
                out.push_str("]}");
            }
            out.push_str("]}");
        }
        Value::Matrix(series) => {
            out.push_str("{\"resultType\":\"matrix\",\"result\":[");
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(out, &s.labels);
                if !s.floats.is_empty() {
                    out.push_str(",\"values\":[");
                    for (j, p) in s.floats.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        out.push('[');
                        write_timestamp(out, p.t);
                        out.push(',');
                        write_float(out, p.v);
                        out.push(']');
                    }
                    out.push(']');
                }
                if !s.histograms.is_empty() {
                    out.push_str(",\"histograms\":[");
                    for (j, p) in s.histograms.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        out.push('[');
                        write_timestamp(out, p.t);
                        out.push(',');
                        write_histogram(out, &p.h);
                        out.push(']');
                    }
                    out.push(']');
                }
                out.push('}');
            }
            out.push_str("]}");
        }
    }
}

pub async fn format_query(req: ApiRequest) -> ApiResult {
    let q = req.params.get("query").to_string();
    let data = blocking(move || {
        let expr = depth::parse(&q).map_err(|e| invalid("query", format!("1:1: {e}")))?;
        let mut data = String::new();
        write_str(&mut data, &expr.prettify());
        Ok(data)
    })
    .await?;
    Ok(success(&data, &[], &[]))
}

pub async fn parse_query(req: ApiRequest) -> ApiResult {
    let q = req.params.get("query").to_string();
    let data = blocking(move || {
        let expr = depth::parse(&q).map_err(|e| invalid("query", format!("1:1: {e}")))?;
        Ok(super::ast::translate(&expr).to_string())
    })
    .await?;
    Ok(success(&data, &[], &[]))
}

/// Start, end and `match[]` sets of the metadata-style endpoints.
struct Selection {
    start: i64,
    end: i64,
    matcher_sets: Vec<Vec<fenghuo_storage_api::model::Matcher>>,
    limit: usize,
}

fn selection(p: &Params) -> Result<Selection, ApiError> {
    let limit = limit_param(p)?;
    let start = time_param(p, "start", MIN_TIME_MS)?;
    let end = time_param(p, "end", MAX_TIME_MS)?;
    let matcher_sets = match_params(&p.all("match[]")).map_err(ApiError::bad_data)?;
    Ok(Selection {
        start,
        end,
        matcher_sets,
        limit,
    })
}

/// Truncates to `limit` (0 = none), adding Prometheus's warning.
fn apply_limit<T>(items: &mut Vec<T>, limit: usize, warnings: &mut Vec<String>) {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        warnings.push("results truncated due to limit".into());
    }
}

pub async fn series(State(api): State<Arc<QueryApi>>, req: ApiRequest) -> ApiResult {
    if req.params.all("match[]").is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let sel = selection(&req.params)
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"match[]\": {}", e.message)))?;
    let querier = req.querier(&api)?;
    let mut found = blocking(move || {
        let mut set = BTreeSet::new();
        for ms in &sel.matcher_sets {
            set.extend(querier.series_labels(sel.start, sel.end, ms)?);
        }
        Ok(set.into_iter().collect::<Vec<Labels>>())
    })
    .await?;
    let mut warnings = Vec::new();
    apply_limit(&mut found, sel.limit, &mut warnings);
    let mut data = String::from("[");
    for (i, ls) in found.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        write_labels(&mut data, ls);
    }
    data.push(']');
    Ok(success(&data, &warnings, &[]))
}

pub async fn label_names(State(api): State<Arc<QueryApi>>, req: ApiRequest) -> ApiResult {
    let sel = selection(&req.params)?;
    let querier = req.querier(&api)?;
    let mut names = blocking(move || {
        let mut set = BTreeSet::new();
        if sel.matcher_sets.is_empty() {
            set.extend(querier.label_names(sel.start, sel.end, &[])?);
        }
        for ms in &sel.matcher_sets {
            set.extend(querier.label_names(sel.start, sel.end, ms)?);
        }
        Ok(set.into_iter().collect::<Vec<String>>())
    })
    .await?;
    let mut warnings = Vec::new();
    apply_limit(&mut names, sel.limit, &mut warnings);
    let mut data = String::new();
    write_str_array(&mut data, names.iter().map(String::as_str));
    Ok(success(&data, &warnings, &[]))
}

/// Decodes Prometheus's `U__` label-name escaping: `_` is `__`, any other
/// code point is `_<hex>_`.
fn unescape_label_name(name: &str) -> Option<String> {
    let Some(rest) = name.strip_prefix("U__") else {
        return Some(name.to_string());
    };
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let hex: String = chars.by_ref().take_while(|c| *c != '_').collect();
        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
    }
    Some(out)
}

pub async fn label_values(
    State(api): State<Arc<QueryApi>>,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
    req: ApiRequest,
) -> ApiResult {
    // A path that does not decode (invalid UTF-8) is answered in the API's JSON shape too.
    let Path(name) =
        name.map_err(|e| ApiError::bad_data(format!("invalid label name: {}", e.body_text())))?;
    let name = unescape_label_name(&name)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_data(format!("invalid label name: {name:?}")))?;
    let sel = selection(&req.params)?;
    let querier = req.querier(&api)?;
    let mut values = blocking(move || {
        let mut set = BTreeSet::new();
        if sel.matcher_sets.is_empty() {
            set.extend(querier.label_values(&name, sel.start, sel.end, &[])?);
        }
        for ms in &sel.matcher_sets {
            set.extend(querier.label_values(&name, sel.start, sel.end, ms)?);
        }
        Ok(set.into_iter().collect::<Vec<String>>())
    })
    .await?;
    let mut warnings = Vec::new();
    apply_limit(&mut values, sel.limit, &mut warnings);
    let mut data = String::new();
    write_str_array(&mut data, values.iter().map(String::as_str));
    Ok(success(&data, &warnings, &[]))
}

pub async fn metadata(State(api): State<Arc<QueryApi>>, req: ApiRequest) -> ApiResult {
    let p = &req.params;
    let number = |name: &str, msg: &'static str| -> Result<i64, ApiError> {
        let s = p.get(name);
        if s.is_empty() {
            return Ok(-1);
        }
        s.parse().map_err(|_| ApiError::bad_data(msg))
    };
    let limit = number("limit", "limit must be a number")?;
    let limit_per_metric = number("limit_per_metric", "limit_per_metric must be a number")?;
    let metric = Some(p.get("metric").to_string()).filter(|m| !m.is_empty());
    let querier = req.querier(&api)?;
    let all = blocking(move || Ok(querier.metadata(metric.as_deref())?)).await?;
    let mut by_family: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for m in all {
        let entries = by_family.entry(m.metric_family.clone()).or_default();
        if limit_per_metric > 0 && entries.len() as i64 >= limit_per_metric {
            continue;
        }
        entries.push(m);
    }
    let mut data = String::from("{");
    for (i, (family, entries)) in by_family.iter().enumerate() {
        if limit >= 0 && i as i64 >= limit {
            break;
        }
        if i > 0 {
            data.push(',');
        }
        write_str(&mut data, family);
        data.push_str(":[");
        for (j, m) in entries.iter().enumerate() {
            if j > 0 {
                data.push(',');
            }
            data.push_str("{\"type\":");
            write_str(&mut data, m.metric_type.as_str());
            data.push_str(",\"help\":");
            write_str(&mut data, &m.help);
            data.push_str(",\"unit\":");
            write_str(&mut data, &m.unit);
            data.push('}');
        }
        data.push(']');
    }
    data.push('}');
    Ok(success(&data, &[], &[]))
}

pub async fn query_exemplars(State(api): State<Arc<QueryApi>>, req: ApiRequest) -> ApiResult {
    let p = &req.params;
    let start = time_param(p, "start", MIN_TIME_MS)?;
    let end = time_param(p, "end", MAX_TIME_MS)?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start timestamp",
        ));
    }
    let q = p.get("query").to_string();
    let querier = req.querier(&api)?;
    let found = blocking(move || {
        let expr = depth::parse(&q).map_err(|e| ApiError::bad_data(format!("1:1: {e}")))?;
        let mut sets = Vec::new();
        collect_selectors(&expr, &mut sets).map_err(ApiError::bad_data)?;
        Ok(querier.exemplars(start, end, &sets)?)
    })
    .await?;
    let mut data = String::from("[");
    for (i, (labels, exemplars)) in found.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        data.push_str("{\"seriesLabels\":");
        write_labels(&mut data, labels);
        data.push_str(",\"exemplars\":[");
        for (j, e) in exemplars.iter().enumerate() {
            if j > 0 {
                data.push(',');
            }
            data.push_str("{\"labels\":");
            write_labels(&mut data, &e.labels);
            data.push_str(",\"value\":");
            write_float(&mut data, e.value);
            data.push_str(",\"timestamp\":");
            write_timestamp(&mut data, e.t);
            data.push('}');
        }
        data.push_str("]}");
    }
    data.push(']');
    Ok(success(&data, &[], &[]))
}

/// Every selector's matcher sets in an expression (Prometheus's
/// `ExtractSelectors`).
fn collect_selectors(
    expr: &promql_parser::parser::Expr,
    out: &mut Vec<Vec<fenghuo_storage_api::model::Matcher>>,
) -> Result<(), String> {
    use promql_parser::parser::Expr;
    match expr {
        Expr::VectorSelector(vs) => out.extend(params::selector_matcher_sets(vs)?),
        Expr::MatrixSelector(ms) => out.extend(params::selector_matcher_sets(&ms.vs)?),
        Expr::Aggregate(a) => {
            collect_selectors(&a.expr, out)?;
            if let Some(p) = &a.param {
                collect_selectors(p, out)?;
            }
        }
        Expr::Unary(u) => collect_selectors(&u.expr, out)?,
        Expr::Binary(b) => {
            collect_selectors(&b.lhs, out)?;
            collect_selectors(&b.rhs, out)?;
        }
        Expr::Paren(p) => collect_selectors(&p.expr, out)?,
        Expr::Subquery(s) => collect_selectors(&s.expr, out)?,
        Expr::Call(c) => {
            for a in &c.args.args {
                collect_selectors(a, out)?;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
    Ok(())
}

pub async fn build_info(State(api): State<Arc<QueryApi>>) -> ApiResult {
    let b = &api.build_info;
    let mut data = String::from("{");
    for (i, (k, v)) in [
        ("version", &b.version),
        ("revision", &b.revision),
        ("branch", &b.branch),
        ("buildUser", &b.build_user),
        ("buildDate", &b.build_date),
        ("goVersion", &b.go_version),
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            data.push(',');
        }
        write_str(&mut data, k);
        data.push(':');
        write_str(&mut data, v);
    }
    data.push('}');
    Ok(success(&data, &[], &[]))
}

pub async fn tsdb_status(State(api): State<Arc<QueryApi>>, req: ApiRequest) -> ApiResult {
    let s = req.params.get("limit");
    let limit = if s.is_empty() {
        10
    } else {
        match s.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(ApiError::bad_data("limit must be a positive number")),
        }
    };
    if limit > MAX_TSDB_LIMIT {
        return Err(ApiError::bad_data(format!(
            "limit must not exceed {MAX_TSDB_LIMIT}"
        )));
    }
    let querier = req.querier(&api)?;
    let st = blocking(move || Ok(querier.tsdb_status(limit)?)).await?;
    let mut data = String::new();
    let _ = write!(
        data,
        "{{\"headStats\":{{\"numSeries\":{},\"numLabelPairs\":{},\"chunkCount\":{},\"minTime\":{},\"maxTime\":{}}}",
        st.num_series, st.num_label_pairs, st.chunk_count, st.min_time, st.max_time
    );
    for (key, list) in [
        ("seriesCountByMetricName", &st.series_count_by_metric_name),
        ("labelValueCountByLabelName", &st.label_value_count_by_label_name),
        ("memoryInBytesByLabelName", &st.memory_in_bytes_by_label_name),
        (
            "seriesCountByLabelValuePair",
            &st.series_count_by_label_value_pair,
        ),
    ] {
        let _ = write!(data, ",\"{key}\":[");
        for (i, (name, value)) in list.iter().enumerate() {
            if i > 0 {
                data.push(',');
            }
            data.push_str("{\"name\":");
            write_str(&mut data, name);
            let _ = write!(data, ",\"value\":{value}}}");
        }
        data.push(']');
    }
    data.push('}');
    Ok(success(&data, &[], &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_label_names_unescape() {
        assert_eq!(unescape_label_name("U__foo_2e_bar").as_deref(), Some("foo.bar"));
        assert_eq!(unescape_label_name("U__a__b").as_deref(), Some("a_b"));
        assert_eq!(unescape_label_name("job").as_deref(), Some("job"));
    }
}
