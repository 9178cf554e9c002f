//! A rule group: rules evaluated in order at one timestamp. Holds Prometheus's group logic:
//! slotted evaluation timestamps (`EvalTimestamp`, offset by a hash of file and name), the
//! evaluation loop body (results written back through the appender, stale markers for series
//! that disappeared, alerts handed to the notifier), state carried across reloads, and restoring
//! `for` state from `ALERTS_FOR_STATE` after a restart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use fenghuo_query::{Engine, PointValue, Value as QValue};
use fenghuo_storage_api::api::{Appender, Queryable, SelectHints};
use fenghuo_storage_api::model::{
    HistogramSample, Labels, METRIC_NAME, Matcher, Sample, SeriesWrite, TenantId, WriteBatch, is_stale_nan,
    stale_nan,
};
use parking_lot::Mutex;

use crate::ruler::metrics;
use crate::ruler::rule::{Alert, AlertState, EvalCtx, Health, Rule, RuleSample};

/// What rules reach the store through: the PromQL engine over a queryable, and an appender.
#[derive(Clone)]
pub struct Backend {
    pub engine: Arc<Engine>,
    pub queryable: Arc<dyn Queryable>,
    pub appender: Arc<dyn Appender>,
}

/// An alert as handed to alert managers (Prometheus's `notifier.Alert`). Times in nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct OutgoingAlert {
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub generator_url: String,
}

/// Where alerts go (fenghuo's alert engine, external Alertmanagers, or a test sink).
pub trait Notifier: Send + Sync {
    fn send(&self, tenant: &TenantId, alerts: Vec<OutgoingAlert>);
}

/// Settings shared by every group.
#[derive(Clone, Debug)]
pub struct GroupOptions {
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    /// What templates' `externalURL` returns; the server sets it to `external_url`, promtool-style
    /// unit tests leave it unset.
    pub template_url: Option<String>,
    pub resend_delay_ms: i64,
    pub outage_tolerance_ms: i64,
    pub for_grace_period_ms: i64,
    pub default_query_offset_ms: i64,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            external_labels: BTreeMap::new(),
            external_url: String::new(),
            template_url: None,
            resend_delay_ms: 60_000,
            outage_tolerance_ms: 3_600_000,
            for_grace_period_ms: 600_000,
            default_query_offset_ms: 0,
        }
    }
}

#[derive(Default)]
struct GroupState {
    series_in_prev: Vec<HashSet<Labels>>,
    stale_series: Vec<Labels>,
    last_evaluation: Option<i64>,
    evaluation_seconds: f64,
    last_eval_ts: Option<i64>,
}

/// One group of one tenant's rule file.
pub struct Group {
    pub tenant: TenantId,
    pub file: String,
    pub name: String,
    pub interval_ms: i64,
    pub limit: i64,
    pub query_offset_ms: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub rules: Vec<Rule>,
    state: Mutex<GroupState>,
    /// Set when a reload replaces or removes the group: an evaluation in flight finishes the
    /// rule it is on and skips the rest (Prometheus's `Group.Eval` checks `g.done` before each
    /// rule), so a reload waits for one rule, not a whole slow group.
    stopped: AtomicBool,
}

pub const NS_PER_MS: i64 = 1_000_000;
pub const NS_PER_S: i64 = 1_000_000_000;

/// Prometheus's `GroupKey`.
pub fn group_key(file: &str, name: &str) -> String {
    format!("{file};{name}")
}

/// `labels.Labels{file, name}.Hash()`: xxhash64 over `name\xffvalue\xff` pairs in name order.
fn group_hash(file: &str, name: &str) -> u64 {
    let mut b = Vec::with_capacity(file.len() + name.len() + 12);
    for (k, v) in [("file", file), ("name", name)] {
        b.extend_from_slice(k.as_bytes());
        b.push(0xff);
        b.extend_from_slice(v.as_bytes());
        b.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&b, 0)
}

impl Group {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tenant: TenantId,
        file: &str,
        name: &str,
        interval_ms: i64,
        limit: i64,
        query_offset_ms: Option<i64>,
        labels: BTreeMap<String, String>,
        rules: Vec<Rule>,
    ) -> Self {
        let n = rules.len();
        Group {
            tenant,
            file: file.to_string(),
            name: name.to_string(),
            interval_ms: interval_ms.max(1),
            limit,
            query_offset_ms,
            labels,
            rules,
            state: Mutex::new(GroupState {
                series_in_prev: vec![HashSet::new(); n],
                ..Default::default()
            }),
            stopped: AtomicBool::new(false),
        }
    }

    pub fn key(&self) -> String {
        group_key(&self.file, &self.name)
    }

    /// The group's interval in nanoseconds.
    pub fn interval_ns(&self) -> i64 {
        self.interval_ms.saturating_mul(NS_PER_MS)
    }

    /// Prometheus's `EvalTimestamp`, in nanoseconds as Prometheus computes it: the latest slot
    /// at or before `now_ns`, slots being offset by the group's hash modulo the interval. Samples
    /// are written at the slot's millisecond (truncated, like `timestamp.FromTime`); alert times
    /// keep the nanoseconds, as Prometheus's API and notifications show them.
    pub fn eval_timestamp_ns(&self, now_ns: i64) -> i64 {
        let interval = self.interval_ns().max(1);
        let offset = (group_hash(&self.file, &self.name) % interval as u64) as i64;
        let adj = now_ns - offset;
        adj - adj.rem_euclid(interval) + offset
    }

    /// [`Group::eval_timestamp_ns`] at millisecond resolution (the samples' timestamp).
    pub fn eval_timestamp(&self, now_ms: i64) -> i64 {
        self.eval_timestamp_ns(now_ms.saturating_mul(NS_PER_MS))
            .div_euclid(NS_PER_MS)
    }

    pub fn query_offset(&self, opts: &GroupOptions) -> i64 {
        self.query_offset_ms.unwrap_or(opts.default_query_offset_ms)
    }

    /// Wall-clock start of the last evaluation, in nanoseconds.
    pub fn last_evaluation(&self) -> Option<i64> {
        self.state.lock().last_evaluation
    }

    pub fn evaluation_seconds(&self) -> f64 {
        self.state.lock().evaluation_seconds
    }

    /// The last evaluation's timestamp in milliseconds (what its samples carry).
    pub fn last_eval_ts(&self) -> Option<i64> {
        self.state.lock().last_eval_ts.map(|t| t.div_euclid(NS_PER_MS))
    }

    /// The last evaluation's timestamp in nanoseconds.
    pub fn last_eval_ts_ns(&self) -> Option<i64> {
        self.state.lock().last_eval_ts
    }

    /// Stops the group: its evaluation in flight ends after the current rule.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Whether two groups are the same definition (`Group.Equals`).
    pub fn same_definition(&self, other: &Group) -> bool {
        self.name == other.name
            && self.file == other.file
            && self.interval_ms == other.interval_ms
            && self.limit == other.limit
            && self.query_offset_ms == other.query_offset_ms
            && self.rules.len() == other.rules.len()
            && self
                .rules
                .iter()
                .zip(&other.rules)
                .all(|(a, b)| rule_definition(a) == rule_definition(b))
    }

    /// Takes alert and staleness state from the group this one replaces (`CopyState`).
    pub fn copy_state(&self, from: &Group) {
        let from_state = from.state.lock();
        let mut st = self.state.lock();
        st.evaluation_seconds = from_state.evaluation_seconds;
        st.last_evaluation = from_state.last_evaluation;
        st.last_eval_ts = from_state.last_eval_ts;
        let mut by_identity: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in from.rules.iter().enumerate() {
            by_identity.entry(r.identity()).or_default().push(i);
        }
        for (i, r) in self.rules.iter().enumerate() {
            let Some(idx) = by_identity.get_mut(&r.identity()) else {
                continue;
            };
            if idx.is_empty() {
                continue;
            }
            let fi = idx.remove(0);
            st.series_in_prev[i] = from_state.series_in_prev[fi].clone();
            if let (Rule::Alerting(new), Rule::Alerting(old)) = (r, &from.rules[fi]) {
                let old_active = old.active.lock().clone();
                new.active.lock().extend(old_active);
                new.set_restored(old.is_restored());
            }
        }
        st.stale_series = from_state.stale_series.clone();
        for (_, idx) in by_identity {
            for fi in idx {
                st.stale_series
                    .extend(from_state.series_in_prev[fi].iter().cloned());
            }
        }
    }

    /// Every series this group's rules wrote in their last evaluation (stale-marked when the
    /// group is removed).
    pub fn current_series(&self) -> Vec<Labels> {
        self.state
            .lock()
            .series_in_prev
            .iter()
            .flat_map(|s| s.iter().cloned())
            .collect()
    }

    /// Runs a PromQL query for this group's tenant.
    pub fn query(backend: &Backend, tenant: &TenantId, q: &str, t: i64) -> Result<Vec<RuleSample>, String> {
        let querier = backend.queryable.querier(tenant).map_err(|e| e.to_string())?;
        let out = backend
            .engine
            .instant(&*querier, q, t)
            .map_err(|e| e.to_string())?;
        match out.value {
            QValue::Vector(v) => Ok(v
                .into_iter()
                .map(|s| RuleSample {
                    labels: s.labels,
                    t: s.t,
                    value: s.value,
                })
                .collect()),
            QValue::Scalar { t, v } => Ok(vec![RuleSample {
                labels: Labels::empty(),
                t,
                value: PointValue::Float(v),
            }]),
            _ => Err("rule result is not a vector or scalar".into()),
        }
    }

    /// Evaluates every rule at `ts_ns` (`Group.Eval`; nanoseconds, samples at its millisecond);
    /// `now_ns` is the wall-clock start shown as `lastEvaluation`.
    pub fn eval(
        &self,
        ts_ns: i64,
        now_ns: i64,
        backend: &Backend,
        opts: &GroupOptions,
        notifier: &dyn Notifier,
    ) {
        let ts = ts_ns.div_euclid(NS_PER_MS);
        let started = Instant::now();
        let key = self.key();
        let tenant = self.tenant.as_str();
        let offset = self.query_offset(opts);
        let qf = |q: &str, t: i64| Self::query(backend, &self.tenant, q, t);
        let mut samples_total = 0usize;
        let mut stopped = false;
        for (i, rule) in self.rules.iter().enumerate() {
            if self.is_stopped() {
                stopped = true;
                break;
            }
            let rule_start = Instant::now();
            metrics::EVALUATIONS.with_label_values(&[tenant, &key]).inc();
            let ctx = EvalCtx {
                ts_ns,
                query_offset_ms: offset,
                limit: self.limit,
                query: &qf,
                external_labels: &opts.external_labels,
                external_url: &opts.external_url,
                template_url: opts.template_url.as_deref(),
            };
            // A panic in one rule (the engine, a template, the appender) is that rule's error, as
            // PromQL's engine turns runtime panics into "unexpected error"; the other rules and
            // groups go on.
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                self.eval_rule(i, rule, &ctx, backend, opts, notifier, &key)
            }))
            .unwrap_or_else(|panic| Err(format!("unexpected error: {}", panic_message(&*panic))));
            match outcome {
                Ok(n) => samples_total += n,
                Err(e) => {
                    let mut st = rule.status().lock();
                    st.health = Health::Bad;
                    st.last_error = Some(e.clone());
                    drop(st);
                    metrics::EVALUATION_FAILURES
                        .with_label_values(&[tenant, &key])
                        .inc();
                    tracing::warn!(tenant, group = %key, rule = rule.name(), index = i, error = %e, "Evaluating rule failed.");
                }
            }
            let mut st = rule.status().lock();
            st.last_evaluation = Some(now_ns);
            st.evaluation_seconds = rule_start.elapsed().as_secs_f64();
            metrics::EVALUATION_DURATION.observe(st.evaluation_seconds);
        }
        // A stopped group's iteration ends like Prometheus's early return from `Eval`: no sample
        // count, no stale markers (the group taking over carries them), but its times are kept.
        if !stopped {
            metrics::GROUP_SAMPLES
                .with_label_values(&[tenant, &key])
                .set(samples_total as i64);
            self.cleanup_stale(ts - offset, backend);
        }
        let secs = started.elapsed().as_secs_f64();
        let mut st = self.state.lock();
        st.evaluation_seconds = secs;
        st.last_evaluation = Some(now_ns);
        st.last_eval_ts = Some(ts_ns);
        drop(st);
        metrics::GROUP_DURATION
            .with_label_values(&[tenant, &key])
            .set(secs);
        metrics::GROUP_LAST_EVAL
            .with_label_values(&[tenant, &key])
            .set(ts_ns as f64 / 1e9);
    }

    /// Evaluates one rule and writes its results; returns how many samples it produced, or the
    /// error that fails it.
    #[allow(clippy::too_many_arguments)]
    fn eval_rule(
        &self,
        i: usize,
        rule: &Rule,
        ctx: &EvalCtx<'_>,
        backend: &Backend,
        opts: &GroupOptions,
        notifier: &dyn Notifier,
        key: &str,
    ) -> Result<usize, String> {
        let vector = rule.eval(ctx)?;
        {
            let mut st = rule.status().lock();
            st.health = Health::Good;
            st.last_error = None;
        }
        let n = vector.len();
        if let Rule::Alerting(ar) = rule {
            let sent = ar.alerts_to_send(ctx.ts_ns, opts.resend_delay_ms, self.interval_ms);
            if !sent.is_empty() {
                let url = format!("{}{}", opts.external_url, table_link(&ar.query));
                notifier.send(&self.tenant, sent.iter().map(|a| outgoing(a, &url)).collect());
            }
        }
        let stale_ts = ctx.ts_ms() - ctx.query_offset_ms;
        self.write_results(i, rule, vector, stale_ts, backend, key);
        Ok(n)
    }

    fn write_results(
        &self,
        i: usize,
        rule: &Rule,
        vector: Vec<RuleSample>,
        stale_ts: i64,
        backend: &Backend,
        key: &str,
    ) {
        let mut returned: HashSet<Labels> = HashSet::with_capacity(vector.len());
        let mut batch = WriteBatch::default();
        for s in vector {
            let mut sw = SeriesWrite {
                labels: s.labels.clone(),
                ..Default::default()
            };
            match s.value {
                PointValue::Float(v) => sw.samples.push(Sample { t: s.t, v }),
                PointValue::Histogram(h) => sw.histograms.push(HistogramSample { t: s.t, h }),
            }
            returned.insert(s.labels);
            batch.series.push(sw);
        }
        let prev = self.state.lock().series_in_prev[i].clone();
        for gone in prev.difference(&returned) {
            batch.series.push(SeriesWrite {
                labels: gone.clone(),
                samples: vec![Sample {
                    t: stale_ts,
                    v: stale_nan(),
                }],
                ..Default::default()
            });
        }
        if batch.series.is_empty() {
            self.state.lock().series_in_prev[i] = returned;
            return;
        }
        match backend.appender.append(&self.tenant, batch) {
            Ok(outcome) => {
                let mut first_err = None;
                for r in &outcome.rejected {
                    // Rejected stale markers are expected when another rule writes the series.
                    if returned.contains(&r.series) {
                        returned.remove(&r.series);
                        first_err.get_or_insert_with(|| r.reason.to_string());
                        tracing::debug!(group = %key, rule = rule.name(), series = %r.series, reason = %r.reason, "Rule evaluation result discarded.");
                    }
                }
                if let Some(e) = first_err {
                    let mut st = rule.status().lock();
                    st.health = Health::Bad;
                    st.last_error = Some(e);
                }
                self.state.lock().series_in_prev[i] = returned;
            }
            Err(e) => {
                let mut st = rule.status().lock();
                st.health = Health::Bad;
                st.last_error = Some(e.to_string());
                metrics::EVALUATION_FAILURES
                    .with_label_values(&[self.tenant.as_str(), key])
                    .inc();
                tracing::warn!(group = %key, rule = rule.name(), error = %e, "Rule sample appending failed.");
            }
        }
    }

    fn cleanup_stale(&self, ts: i64, backend: &Backend) {
        let stale = std::mem::take(&mut self.state.lock().stale_series);
        if stale.is_empty() {
            return;
        }
        if let Err(e) = write_stale(backend, &self.tenant, &stale, ts) {
            tracing::warn!(group = %self.key(), error = %e, "Stale sample appending for previous configuration failed.");
            self.state.lock().stale_series = stale;
        }
    }

    /// Restores `for` state from `ALERTS_FOR_STATE` (`RestoreForState`), at wall time `ts_ns`.
    pub fn restore_for_state(&self, ts_ns: i64, backend: &Backend, opts: &GroupOptions) {
        let started = Instant::now();
        let ts = ts_ns.div_euclid(NS_PER_MS);
        let mint = ts - opts.outage_tolerance_ms;
        let querier = match backend.queryable.querier(&self.tenant) {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(group = %self.key(), error = %e, "Failed to get querier for 'for' state restoration.");
                return;
            }
        };
        for rule in &self.rules {
            let Rule::Alerting(ar) = rule else { continue };
            let hold = ar.hold_ms.saturating_mul(NS_PER_MS);
            let grace = opts.for_grace_period_ms.saturating_mul(NS_PER_MS);
            if hold < grace {
                ar.set_restored(true);
                continue;
            }
            let matchers: Vec<Matcher> = ar
                .for_state_matchers()
                .into_iter()
                .map(|(n, v)| Matcher::equal(n, v))
                .collect();
            let hints = SelectHints {
                start: mint,
                end: ts,
                max_samples: None,
            };
            let series = match querier.select(&matchers, &hints) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(alertname = %ar.name, stage = "Select", error = %e, "Failed to restore 'for' state.");
                    ar.set_restored(true);
                    continue;
                }
            };
            let by_labels: HashMap<Labels, (i64, f64)> = series
                .into_iter()
                .filter_map(|s| {
                    let last = s.floats.last().copied()?;
                    Some((s.labels.without(&[METRIC_NAME]), (last.t, last.v)))
                })
                .collect();
            if by_labels.is_empty() {
                ar.set_restored(true);
                continue;
            }
            for a in ar.active.lock().values_mut() {
                let Some(&(t, v)) = by_labels.get(&a.labels) else {
                    continue;
                };
                if is_stale_nan(v) {
                    continue;
                }
                // Whole seconds, as Prometheus reads them (`time.Unix(t/1000, 0)`).
                let down_at = t.div_euclid(1000).saturating_mul(NS_PER_S);
                let restored_active_at = (v as i64).saturating_mul(NS_PER_S);
                let spent = down_at - restored_active_at;
                let remaining = hold - spent;
                let new_active_at = if remaining <= 0 {
                    restored_active_at
                } else if remaining < grace {
                    ts_ns + grace - hold
                } else {
                    restored_active_at + (ts_ns - down_at)
                };
                a.active_at = new_active_at;
                tracing::debug!(alertname = %ar.name, labels = %a.labels, restored_time = new_active_at, "'for' state restored.");
            }
            ar.set_restored(true);
        }
        metrics::GROUP_RESTORE_DURATION
            .with_label_values(&[self.tenant.as_str(), &self.key()])
            .set(started.elapsed().as_secs_f64());
    }

    /// Alerts of every alerting rule, for the API.
    pub fn alerting_rules(&self) -> impl Iterator<Item = &Arc<crate::ruler::rule::AlertingRule>> {
        self.rules.iter().filter_map(|r| match r {
            Rule::Alerting(a) => Some(a),
            Rule::Recording(_) => None,
        })
    }

    /// Remaining pending/firing alerts' states, for tests.
    pub fn alert_states(&self) -> Vec<(String, Labels, AlertState)> {
        self.alerting_rules()
            .flat_map(|r| {
                r.active
                    .lock()
                    .values()
                    .map(|a| (r.name.clone(), a.labels.clone(), a.state))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// Writes stale markers for `series` at `ts`; rejections are expected and ignored.
pub fn write_stale(backend: &Backend, tenant: &TenantId, series: &[Labels], ts: i64) -> Result<(), String> {
    let batch = WriteBatch {
        series: series
            .iter()
            .map(|l| SeriesWrite {
                labels: l.clone(),
                samples: vec![Sample {
                    t: ts,
                    v: stale_nan(),
                }],
                ..Default::default()
            })
            .collect(),
        metadata: Vec::new(),
    };
    backend
        .appender
        .append(tenant, batch)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The message of a caught panic (`panic!` payloads are a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_string())
}

fn rule_definition(r: &Rule) -> String {
    match r {
        Rule::Recording(r) => format!("record:{}|{}|{}", r.name, r.expr, r.labels),
        Rule::Alerting(a) => format!(
            "alert:{}|{}|{}|{}|{}|{}",
            a.name, a.expr, a.hold_ms, a.keep_firing_for_ms, a.labels, a.annotations
        ),
    }
}

/// Prometheus's `strutil.TableLinkForExpression`.
pub fn table_link(expr: &str) -> String {
    format!(
        "/graph?g0.expr={}&g0.tab=1",
        crate::ruler::gotemplate::exec::query_escape(expr)
    )
}

fn outgoing(a: &Alert, generator_url: &str) -> OutgoingAlert {
    OutgoingAlert {
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at: a.fired_at,
        ends_at: a.resolved_at.or(a.valid_until),
        generator_url: generator_url.to_string(),
    }
}
