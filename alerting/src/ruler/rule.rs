//! Recording and alerting rules and their evaluation, with Prometheus's semantics: label
//! overrides and duplicate detection, `limit`, the alert state machine (inactive → pending →
//! firing, `for`, `keep_firing_for`, resolved alerts kept for 15 minutes), the `ALERTS` and
//! `ALERTS_FOR_STATE` samples, and which alerts need (re)sending.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use fenghuo_query::PointValue;
use fenghuo_storage_api::model::{Labels, METRIC_NAME};
use parking_lot::Mutex;

use crate::ruler::gotemplate::Value;
use crate::ruler::template::{self, Expander, QuerySample};

/// How long a resolved alert is kept (and re-sent) after it resolved.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;
const NS_PER_MS: i64 = 1_000_000;
pub const ALERTS_METRIC: &str = "ALERTS";
pub const ALERTS_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";

/// One sample a rule produced (or a query returned).
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSample {
    pub labels: Labels,
    pub t: i64,
    pub value: PointValue,
}

/// Runs an instant query at a time (ms) for one tenant; scalars come back as one sample with no
/// labels, other result types are an error (Prometheus's `EngineQueryFunc`).
pub type QueryFn<'a> = &'a (dyn Fn(&str, i64) -> Result<Vec<RuleSample>, String> + Sync);

/// An alert's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule. Times are nanoseconds since the epoch (evaluation timestamps
/// keep the group's sub-millisecond slot offset, as Prometheus's do); `None` is Go's zero time.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub state: AlertState,
    pub labels: Labels,
    pub annotations: Labels,
    pub value: f64,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    pub valid_until: Option<i64>,
    pub keep_firing_since: Option<i64>,
}

impl Alert {
    /// Prometheus's `needsSending`.
    fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        let resend_delay = resend_delay_ms.saturating_mul(NS_PER_MS);
        if self.state == AlertState::Pending {
            return false;
        }
        if let Some(r) = self.resolved_at
            && self.last_sent_at.is_none_or(|l| r > l)
        {
            return true;
        }
        self.last_sent_at.unwrap_or(i64::MIN / 2) + resend_delay < ts
    }
}

/// A rule's health after its last evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Good,
    Bad,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Good => "ok",
            Health::Bad => "err",
        }
    }
}

/// What the API shows about a rule's last evaluation.
#[derive(Clone, Debug)]
pub struct EvalStatus {
    pub health: Health,
    pub last_error: Option<String>,
    /// Wall-clock time the evaluation started (ns), `None` before the first.
    pub last_evaluation: Option<i64>,
    pub evaluation_seconds: f64,
}

impl Default for EvalStatus {
    fn default() -> Self {
        EvalStatus {
            health: Health::Unknown,
            last_error: None,
            last_evaluation: None,
            evaluation_seconds: 0.0,
        }
    }
}

impl EvalCtx<'_> {
    /// The evaluation timestamp in milliseconds, truncated as `timestamp.FromTime` does.
    pub fn ts_ms(&self) -> i64 {
        self.ts_ns.div_euclid(NS_PER_MS)
    }
}

/// Context an evaluation needs besides the query function.
pub struct EvalCtx<'a> {
    /// The evaluation timestamp in nanoseconds.
    pub ts_ns: i64,
    pub query_offset_ms: i64,
    pub limit: i64,
    pub query: QueryFn<'a>,
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: &'a str,
    /// The URL the `externalURL`/`pathPrefix` functions return (`None` in unit tests).
    pub template_url: Option<&'a str>,
}

/// A recording rule.
#[derive(Debug)]
pub struct RecordingRule {
    pub name: String,
    pub expr: String,
    /// The expression as Prometheus prints it (`parser.Expr.String()`).
    pub query: String,
    pub labels: Labels,
    pub status: Mutex<EvalStatus>,
}

/// An alerting rule with its alerts.
#[derive(Debug)]
pub struct AlertingRule {
    pub name: String,
    pub expr: String,
    pub query: String,
    pub hold_ms: i64,
    pub keep_firing_for_ms: i64,
    pub labels: Labels,
    pub annotations: Labels,
    pub status: Mutex<EvalStatus>,
    pub active: Mutex<BTreeMap<Labels, Alert>>,
    /// False until the `for` state was restored after a restart; ALERTS samples wait for it.
    pub restored: std::sync::atomic::AtomicBool,
}

/// Either kind of rule.
#[derive(Debug, Clone)]
pub enum Rule {
    Recording(Arc<RecordingRule>),
    Alerting(Arc<AlertingRule>),
}

impl Rule {
    pub fn name(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.name,
            Rule::Alerting(r) => &r.name,
        }
    }

    pub fn labels(&self) -> &Labels {
        match self {
            Rule::Recording(r) => &r.labels,
            Rule::Alerting(r) => &r.labels,
        }
    }

    pub fn status(&self) -> &Mutex<EvalStatus> {
        match self {
            Rule::Recording(r) => &r.status,
            Rule::Alerting(r) => &r.status,
        }
    }

    /// `name + labels`, how Prometheus matches rules across reloads.
    pub fn identity(&self) -> String {
        format!("{}{}", self.name(), self.labels())
    }

    pub fn eval(&self, ctx: &EvalCtx<'_>) -> Result<Vec<RuleSample>, String> {
        match self {
            Rule::Recording(r) => r.eval(ctx),
            Rule::Alerting(r) => r.eval(ctx),
        }
    }
}

/// Prometheus's canonical text of an expression, falling back to the source text.
pub fn canonical_expr(expr: &str) -> String {
    // `to_string` formats the tree recursively: on a stack sized for it.
    fenghuo_query::depth::run_with_stack(|| {
        fenghuo_query::Engine::parse(expr)
            .map(|e| e.to_string())
            .unwrap_or_else(|_| expr.to_string())
    })
}

fn to_labels(m: &BTreeMap<String, String>) -> Labels {
    Labels::from_pairs(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

impl RecordingRule {
    pub fn new(name: &str, expr: &str, labels: &BTreeMap<String, String>) -> Self {
        RecordingRule {
            name: name.to_string(),
            expr: expr.to_string(),
            query: canonical_expr(expr),
            labels: to_labels(labels),
            status: Mutex::new(EvalStatus::default()),
        }
    }

    fn eval(&self, ctx: &EvalCtx<'_>) -> Result<Vec<RuleSample>, String> {
        let mut v = (ctx.query)(&self.expr, ctx.ts_ms() - ctx.query_offset_ms)?;
        let mut seen = HashSet::with_capacity(v.len());
        for s in &mut v {
            s.labels.set(METRIC_NAME, &self.name);
            for l in &self.labels {
                s.labels.set(&l.name, &l.value);
            }
            if !seen.insert(s.labels.clone()) {
                return Err(
                    "vector contains metrics with the same labelset after applying rule labels".into(),
                );
            }
        }
        if ctx.limit > 0 && v.len() as i64 > ctx.limit {
            return Err(format!("exceeded limit of {} with {} series", ctx.limit, v.len()));
        }
        Ok(v)
    }
}

impl AlertingRule {
    pub fn new(
        name: &str,
        expr: &str,
        hold_ms: i64,
        keep_firing_for_ms: i64,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
        restored: bool,
    ) -> Self {
        AlertingRule {
            name: name.to_string(),
            expr: expr.to_string(),
            query: canonical_expr(expr),
            hold_ms,
            keep_firing_for_ms,
            labels: to_labels(labels),
            annotations: to_labels(annotations),
            status: Mutex::new(EvalStatus::default()),
            active: Mutex::new(BTreeMap::new()),
            restored: std::sync::atomic::AtomicBool::new(restored),
        }
    }

    pub fn is_restored(&self) -> bool {
        self.restored.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn set_restored(&self, v: bool) {
        self.restored.store(v, std::sync::atomic::Ordering::SeqCst);
    }

    /// The rule's overall state: the highest state of its alerts (`None` before evaluation).
    pub fn state(&self) -> Option<AlertState> {
        self.status.lock().last_evaluation?;
        Some(
            self.active
                .lock()
                .values()
                .map(|a| a.state)
                .max()
                .unwrap_or(AlertState::Inactive),
        )
    }

    /// Alerts that are pending or firing (not resolved).
    pub fn active_alerts(&self) -> Vec<Alert> {
        self.active
            .lock()
            .values()
            .filter(|a| a.resolved_at.is_none())
            .cloned()
            .collect()
    }

    fn alerts_sample(&self, a: &Alert, ts: i64) -> RuleSample {
        let mut l = self.labels.clone();
        for x in &a.labels {
            l.set(&x.name, &x.value);
        }
        l.set(METRIC_NAME, ALERTS_METRIC);
        l.set("alertname", &self.name);
        l.set("alertstate", a.state.as_str());
        RuleSample {
            labels: l,
            t: ts,
            value: PointValue::Float(1.0),
        }
    }

    fn for_state_sample(&self, a: &Alert, ts: i64) -> RuleSample {
        let mut l = self.labels.clone();
        for x in &a.labels {
            l.set(&x.name, &x.value);
        }
        l.set(METRIC_NAME, ALERTS_FOR_STATE_METRIC);
        l.set("alertname", &self.name);
        RuleSample {
            labels: l,
            t: ts,
            value: PointValue::Float(a.active_at.div_euclid(1_000_000_000) as f64),
        }
    }

    /// The matchers selecting this rule's `ALERTS_FOR_STATE` series: the rule's labels that are
    /// not templates, plus name and alertname.
    pub fn for_state_matchers(&self) -> Vec<(String, String)> {
        let mut out = vec![
            (METRIC_NAME.to_string(), ALERTS_FOR_STATE_METRIC.to_string()),
            ("alertname".to_string(), self.name.clone()),
        ];
        for l in &self.labels {
            if !l.value.contains("{{") && l.name != "alertname" && l.name != METRIC_NAME {
                out.push((l.name.clone(), l.value.clone()));
            }
        }
        out
    }

    fn eval(&self, ctx: &EvalCtx<'_>) -> Result<Vec<RuleSample>, String> {
        // Alert times in nanoseconds; queries and samples at the millisecond.
        let ts = ctx.ts_ns;
        let ts_ms = ctx.ts_ms();
        let hold = self.hold_ms.saturating_mul(NS_PER_MS);
        let keep_firing_for = self.keep_firing_for_ms.saturating_mul(NS_PER_MS);
        let res = (ctx.query)(&self.expr, ts_ms - ctx.query_offset_ms)?;
        let tmpl_query = |q: &str, t: i64| -> Result<Vec<QuerySample>, String> {
            (ctx.query)(q, t).map(|v| {
                v.into_iter()
                    .map(|s| QuerySample {
                        labels: s
                            .labels
                            .iter()
                            .map(|l| (l.name.clone(), l.value.clone()))
                            .collect(),
                        value: point_value(&s.value),
                    })
                    .collect()
            })
        };
        let exp = Expander {
            name: format!("__alert_{}", self.name),
            ts_ms,
            query: Some(&tmpl_query),
            external_url: ctx.template_url.map(str::to_string),
            html: false,
        };
        let mut alerts: BTreeMap<Labels, Alert> = BTreeMap::new();
        for s in &res {
            let lmap: BTreeMap<String, String> = s
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            let data = template::alert_data(
                &lmap,
                ctx.external_labels,
                ctx.external_url,
                point_value(&s.value),
            );
            let mut lb = s.labels.without_metric_name();
            for l in &self.labels {
                lb.set(&l.name, &template::expand_alert_text(&exp, &l.value, &data));
            }
            lb.set("alertname", &self.name);
            let annotations = Labels::new(
                self.annotations
                    .iter()
                    .map(|a| {
                        fenghuo_storage_api::model::Label::new(
                            a.name.clone(),
                            template::expand_alert_text(&exp, &a.value, &data),
                        )
                    })
                    .collect(),
            );
            if alerts.contains_key(&lb) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels".into(),
                );
            }
            let value = match &s.value {
                PointValue::Float(f) => *f,
                PointValue::Histogram(_) => 0.0,
            };
            alerts.insert(
                lb.clone(),
                Alert {
                    state: AlertState::Pending,
                    labels: lb,
                    annotations,
                    value,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: None,
                    keep_firing_since: None,
                },
            );
        }

        let mut active = self.active.lock();
        let result_keys: HashSet<Labels> = alerts.keys().cloned().collect();
        for (k, a) in alerts {
            match active.get_mut(&k) {
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = a.annotations;
                }
                _ => {
                    active.insert(k, a);
                }
            }
        }
        let restored = self.is_restored();
        let mut out = Vec::new();
        let mut num_active = 0i64;
        let mut remove = Vec::new();
        for (k, a) in active.iter_mut() {
            if !result_keys.contains(k) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_firing_for > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    if ts - since < keep_firing_for {
                        keep_firing = true;
                    }
                }
                if a.state == AlertState::Pending
                    || a.resolved_at
                        .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS.saturating_mul(NS_PER_MS))
                {
                    remove.push(k.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            num_active += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= hold {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            if a.state == AlertState::Firing && ts - a.active_at < hold {
                a.state = AlertState::Pending;
                a.fired_at = None;
                a.last_sent_at = None;
                a.keep_firing_since = None;
            }
            if restored {
                out.push(self.alerts_sample(a, ts_ms - ctx.query_offset_ms));
                out.push(self.for_state_sample(a, ts_ms - ctx.query_offset_ms));
            }
        }
        for k in remove {
            active.remove(&k);
        }
        if ctx.limit > 0 && num_active > ctx.limit {
            active.clear();
            return Err(format!(
                "exceeded limit of {} with {} alerts",
                ctx.limit, num_active
            ));
        }
        Ok(out)
    }

    /// Marks the alerts that need sending at `ts` (nanoseconds) as sent and returns copies.
    pub fn alerts_to_send(&self, ts: i64, resend_delay_ms: i64, interval_ms: i64) -> Vec<Alert> {
        let mut out = Vec::new();
        for a in self.active.lock().values_mut() {
            if a.needs_sending(ts, resend_delay_ms) {
                a.last_sent_at = Some(ts);
                a.valid_until = Some(ts + 4 * interval_ms.max(resend_delay_ms).saturating_mul(NS_PER_MS));
                out.push(a.clone());
            }
        }
        out
    }
}

/// A query sample's value as templates see it: a `float64`, or a `*histogram.FloatHistogram`
/// with Go's exported fields (`{{ $value.Count }}`, `.Sum`, `.Schema`, `.PositiveBuckets`, ...)
/// that prints as Prometheus prints one (`{count:4, sum:5, (0.5,1]:1, ...}`, its `String()`) and
/// that the number functions refuse (`can't convert *histogram.FloatHistogram to float`).
pub fn point_value(v: &PointValue) -> Value {
    match v {
        PointValue::Float(f) => Value::Float(*f),
        PointValue::Histogram(h) => histogram_value(h),
    }
}

fn histogram_value(h: &fenghuo_storage_api::model::FloatHistogram) -> Value {
    use crate::ruler::gotemplate::value::{STRING_METHOD, Struct};
    use fenghuo_storage_api::model::{BucketSpan, CounterResetHint};
    let floats = |v: &[f64]| Value::List(Arc::new(v.iter().map(|f| Value::Float(*f)).collect()));
    let spans = |v: &[BucketSpan]| {
        Value::List(Arc::new(
            v.iter()
                .map(|s| {
                    Value::Struct(Arc::new(Struct {
                        type_name: "histogram.Span".into(),
                        fields: vec![
                            ("Offset".into(), Value::Int(i64::from(s.offset))),
                            ("Length".into(), Value::Int(i64::from(s.length))),
                        ],
                        pointer: false,
                    }))
                })
                .collect(),
        ))
    };
    let hint = match h.counter_reset_hint {
        CounterResetHint::Unknown => 0,
        CounterResetHint::CounterReset => 1,
        CounterResetHint::NotCounterReset => 2,
        CounterResetHint::Gauge => 3,
    };
    Value::Struct(Arc::new(Struct {
        type_name: "histogram.FloatHistogram".into(),
        fields: vec![
            ("CounterResetHint".into(), Value::Int(hint)),
            ("Schema".into(), Value::Int(i64::from(h.schema))),
            ("ZeroThreshold".into(), Value::Float(h.zero_threshold)),
            ("ZeroCount".into(), Value::Float(h.zero_count)),
            ("Count".into(), Value::Float(h.count)),
            ("Sum".into(), Value::Float(h.sum)),
            ("PositiveSpans".into(), spans(&h.positive_spans)),
            ("NegativeSpans".into(), spans(&h.negative_spans)),
            ("PositiveBuckets".into(), floats(&h.positive_buckets)),
            ("NegativeBuckets".into(), floats(&h.negative_buckets)),
            ("CustomValues".into(), floats(&h.custom_values)),
            (
                STRING_METHOD.into(),
                Value::str(fenghuo_query::series_desc::histogram_string(h)),
            ),
        ],
        pointer: true,
    }))
}
