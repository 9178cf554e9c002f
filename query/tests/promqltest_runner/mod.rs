//! A Rust runner of Prometheus's promqltest files (`*.test`): loads series
//! through the storage `Appender`, evaluates through [`Engine`] and checks
//! results, annotations and failures as Prometheus's `promqltest` does,
//! including the range-mode and `@`-modifier variants of instant evals.

#![allow(dead_code)]

pub mod check;
pub mod parse;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use fenghuo_query::{Engine, EngineOptions, ParsedQuery, QueryControl, QueryError, QueryOutput};
use fenghuo_storage_api::api::{Appender, Querier, Queryable, SelectHints};
use fenghuo_storage_api::model::{
    BucketSpan, CUSTOM_BUCKETS_SCHEMA, FloatHistogram, HistogramSample, Labels, Matcher, Sample, SeriesWrite,
    TenantId, WriteBatch,
};
use promql_parser::parser::{AtModifier, Expr};

use parse::{Command, EvalCmd, LoadCmd};

/// A store the runner can load into and query.
pub trait TestStore: Send + Sync {
    fn appender(&self) -> &dyn Appender;
    fn queryable(&self) -> &dyn Queryable;
}

impl TestStore for fenghuo_storage_api::memory::MemStore {
    fn appender(&self) -> &dyn Appender {
        self
    }
    fn queryable(&self) -> &dyn Queryable {
        self
    }
}

/// Creates an empty store (for each file and after each `clear`).
pub type StoreFactory = dyn Fn() -> Box<dyn TestStore> + Send + Sync;

/// Outcome of one eval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

#[derive(Clone, Debug)]
pub struct EvalResult {
    pub line: usize,
    pub expr: String,
    pub outcome: Outcome,
    /// Loads or expects native histograms.
    pub histogram: bool,
}

#[derive(Clone, Debug, Default)]
pub struct FileReport {
    pub file: String,
    pub evals: Vec<EvalResult>,
}

/// Pass/fail/skip counts, split by whether evals involve native histograms.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
    pub float_pass: usize,
    pub float_total: usize,
    pub hist_pass: usize,
    pub hist_total: usize,
}

impl Counts {
    pub fn add(&mut self, r: &EvalResult) {
        match r.outcome {
            Outcome::Pass => self.pass += 1,
            Outcome::Fail(_) => self.fail += 1,
            Outcome::Skip(_) => self.skip += 1,
        }
        let pass = r.outcome == Outcome::Pass;
        if r.histogram {
            self.hist_total += 1;
            self.hist_pass += pass as usize;
        } else {
            self.float_total += 1;
            self.float_pass += pass as usize;
        }
    }

    pub fn merge(&mut self, o: &Counts) {
        self.pass += o.pass;
        self.fail += o.fail;
        self.skip += o.skip;
        self.float_pass += o.float_pass;
        self.float_total += o.float_total;
        self.hist_pass += o.hist_pass;
        self.hist_total += o.hist_total;
    }
}

impl FileReport {
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        self.evals.iter().for_each(|e| c.add(e));
        c
    }
}

/// Engine settings the test files assume.
pub fn test_engine() -> Engine {
    Engine::new(EngineOptions {
        lookback_delta_ms: 300_000,
        max_samples: 10_000,
        timeout: std::time::Duration::from_secs(100),
        default_subquery_step_ms: 60_000,
        enable_experimental_functions: true,
        max_concurrency: 20,
    })
}

struct Runner<'a> {
    engine: &'a Engine,
    factory: &'a StoreFactory,
    store: Box<dyn TestStore>,
    tenant: TenantId,
    /// The current segment loaded native histograms.
    segment_has_histograms: bool,
}

/// Runs one test file.
pub fn run_file(path: &Path, engine: &Engine, factory: &StoreFactory) -> FileReport {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let content = match std::fs::read_to_string(path) {
        Ok(c) => c,
        Err(e) => {
            return FileReport {
                file,
                evals: vec![EvalResult {
                    line: 0,
                    expr: String::new(),
                    outcome: Outcome::Fail(format!("cannot read file: {e}")),
                    histogram: false,
                }],
            };
        }
    };
    let mut r = Runner {
        engine,
        factory,
        store: factory(),
        tenant: TenantId::default_tenant(),
        segment_has_histograms: false,
    };
    let mut report = FileReport {
        file,
        evals: Vec::new(),
    };
    for cmd in parse::parse_file(&content) {
        match cmd {
            Command::Clear => {
                r.store = (r.factory)();
                r.segment_has_histograms = false;
            }
            Command::Load(l) => {
                if let Err(e) = r.load(&l) {
                    report.evals.push(EvalResult {
                        line: l.line,
                        expr: "load".into(),
                        outcome: Outcome::Fail(format!("load failed: {e}")),
                        histogram: r.segment_has_histograms,
                    });
                }
            }
            Command::Eval(e) => {
                let res = r.eval(&e);
                report.evals.push(res);
            }
            Command::Broken { line, reason } => report.evals.push(EvalResult {
                line,
                expr: String::new(),
                outcome: Outcome::Fail(format!("cannot parse test command: {reason}")),
                histogram: r.segment_has_histograms,
            }),
        }
    }
    report
}

impl Runner<'_> {
    fn load(&mut self, l: &LoadCmd) -> Result<(), String> {
        let mut batch = WriteBatch::default();
        for (labels, values) in &l.series {
            let mut sw = SeriesWrite {
                labels: labels.clone(),
                ..Default::default()
            };
            for (i, v) in values.iter().enumerate() {
                if v.omitted {
                    continue;
                }
                let t = i as i64 * l.gap;
                match &v.histogram {
                    Some(h) => {
                        self.segment_has_histograms = true;
                        sw.histograms.push(HistogramSample {
                            t,
                            h: Arc::new(h.clone()),
                        });
                    }
                    None => sw.samples.push(Sample { t, v: v.value }),
                }
            }
            batch.series.push(sw);
        }
        if l.with_nhcb {
            let converted = convert_nhcb(l);
            if !converted.is_empty() {
                self.segment_has_histograms = true;
            }
            batch.series.extend(converted);
        }
        let out = self
            .store
            .appender()
            .append(&self.tenant, batch)
            .map_err(|e| e.to_string())?;
        if let Some(r) = out.rejected.first() {
            return Err(format!(
                "rejected sample of {} at {}: {}",
                r.series, r.timestamp, r.reason
            ));
        }
        Ok(())
    }

    fn querier(&self) -> Result<Arc<dyn Querier>, String> {
        self.store
            .queryable()
            .querier(&self.tenant)
            .map_err(|e| e.to_string())
    }

    /// Whether the eval involves native histograms: it expects one, or one
    /// of its selectors selects a series holding histogram samples.
    fn uses_histograms(&self, cmd: &EvalCmd, expr: Option<&Expr>) -> bool {
        if cmd.has_histogram_literal {
            return true;
        }
        let Some(expr) = expr else {
            return self.segment_has_histograms;
        };
        if !self.segment_has_histograms {
            return false;
        }
        let Ok(q) = self.querier() else { return true };
        let mut sets: Vec<Vec<Matcher>> = Vec::new();
        collect_selectors(expr, &mut sets);
        let hints = SelectHints {
            start: i64::MIN / 2,
            end: i64::MAX / 2,
            max_samples: None,
        };
        sets.iter().any(|set| {
            q.select(set, &hints)
                .map(|ss| ss.iter().any(|s| !s.histograms.is_empty()))
                .unwrap_or(true)
        })
    }

    fn eval(&mut self, cmd: &EvalCmd) -> EvalResult {
        let parsed = if cmd.is_range {
            Engine::parse_for(&cmd.expr, cmd.start, cmd.end, cmd.step)
        } else {
            Engine::parse_for(&cmd.expr, cmd.eval_time, cmd.eval_time, 0)
        };
        let histogram = self.uses_histograms(cmd, parsed.as_ref().ok().map(|p| &p.expr));
        let result = |outcome| EvalResult {
            line: cmd.line,
            expr: cmd.expr.clone(),
            outcome,
            histogram,
        };
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => {
                // Prometheus accepts every expression of the test files, so
                // a parse error is either a duration expression failing for
                // this step (an expected failure) or unsupported syntax.
                if cmd.is_fail() && check::check_expected_failure(cmd, &e).is_ok() && !is_syntax_error(&e) {
                    return result(Outcome::Pass);
                }
                return result(Outcome::Skip(skip_reason(&cmd.expr, &e)));
            }
        };
        let q = match self.querier() {
            Ok(q) => q,
            Err(e) => return result(Outcome::Fail(format!("no querier: {e}"))),
        };
        let outcome = if cmd.is_range {
            self.eval_range(cmd, &parsed, q.as_ref())
        } else {
            self.eval_instant(cmd, &parsed, q.as_ref())
        };
        result(match outcome {
            Ok(()) => Outcome::Pass,
            Err(e) => Outcome::Fail(e),
        })
    }

    fn eval_range(&self, cmd: &EvalCmd, p: &ParsedQuery, q: &dyn Querier) -> Result<(), String> {
        let res = self
            .engine
            .range_parsed(q, p, cmd.start, cmd.end, cmd.step, QueryControl::default());
        match res {
            Err(e) => {
                if cmd.is_fail() {
                    return check::check_expected_failure(cmd, &e);
                }
                Err(format!("error evaluating query: {e}"))
            }
            Ok(out) => {
                if cmd.is_fail() {
                    return Err("expected error evaluating query but got none".into());
                }
                check::check_annotations(cmd, &out)?;
                check::compare_result(cmd, &out.value, cmd.start, cmd.end, cmd.step)
            }
        }
    }

    fn eval_instant(&self, cmd: &EvalCmd, p: &ParsedQuery, q: &dyn Querier) -> Result<(), String> {
        let mut variants: Vec<(Option<Expr>, i64)> = vec![(None, cmd.eval_time)];
        if let Some(at_expr) = at_modifier_variant(&p.expr, cmd.eval_time) {
            let ts = cmd.eval_time;
            let times: Vec<i64> = if ts == 0 {
                vec![-1000, 0, 1000]
            } else {
                vec![-10 * ts, 0, ts / 5, ts, 10 * ts]
            };
            for t in times {
                variants.push((Some(at_expr.clone()), t));
            }
        }
        for (e, t) in &variants {
            let mut pv = p.clone();
            if let Some(e) = e {
                pv.expr = e.clone();
            }
            self.run_instant(cmd, &pv, *t, e.is_some(), q)?;
        }
        Ok(())
    }

    fn run_instant(
        &self,
        cmd: &EvalCmd,
        p: &ParsedQuery,
        t: i64,
        is_variant: bool,
        q: &dyn Querier,
    ) -> Result<(), String> {
        let label = if is_variant {
            format!(" (@ variant at {t})")
        } else {
            String::new()
        };
        let res = self.engine.instant_parsed(q, p, t, QueryControl::default());
        let out: QueryOutput = match res {
            Err(e) => {
                if cmd.is_fail() {
                    return check::check_expected_failure(cmd, &e).map_err(|m| format!("{m}{label}"));
                }
                return Err(format!("error evaluating query{label}: {e}"));
            }
            Ok(o) => o,
        };
        if cmd.is_fail() {
            return Err(format!("expected error evaluating query but got none{label}"));
        }
        check::check_annotations(cmd, &out).map_err(|m| format!("{m}{label}"))?;
        check::compare_result(cmd, &out.value, cmd.start, cmd.end, cmd.step)
            .map_err(|m| format!("{m}{label}"))?;
        if cmd.exclude_from_range_query {
            return Ok(());
        }
        let re = regex::Regex::new(r"(start|end|range|step)\(\)").map_err(|e| e.to_string())?;
        if re.is_match(&cmd.expr) {
            return Ok(());
        }
        // Range mode: the same expression (parsed for a range query) from
        // t-1m to t+1m must give the same result at t.
        let mut rp = Engine::parse_for(&cmd.expr, t - 60_000, t + 60_000, 60_000)
            .map_err(|e| format!("error parsing query for range mode{label}: {e}"))?;
        if is_variant && let Some(e) = at_modifier_variant(&rp.expr, cmd.eval_time) {
            rp.expr = e;
        }
        let range = self
            .engine
            .range_parsed(q, &rp, t - 60_000, t + 60_000, 60_000, QueryControl::default())
            .map_err(|e| format!("error evaluating query in range mode{label}: {e}"))?;
        if cmd.is_ordered() {
            return Ok(());
        }
        let fenghuo_query::Value::Matrix(mat) = &range.value else {
            return Err(format!("range mode returned {}{label}", range.value.type_name()));
        };
        let mut vec = Vec::new();
        for s in mat {
            if let Some(p) = s.floats.iter().find(|p| p.t == t) {
                vec.push(fenghuo_query::InstantSample {
                    labels: s.labels.clone(),
                    t,
                    value: fenghuo_query::PointValue::Float(p.v),
                });
            }
            if let Some(p) = s.histograms.iter().find(|p| p.t == t) {
                vec.push(fenghuo_query::InstantSample {
                    labels: s.labels.clone(),
                    t,
                    value: fenghuo_query::PointValue::Histogram(p.h.clone()),
                });
            }
        }
        let value = match out.value {
            fenghuo_query::Value::Scalar { .. } => match vec.first() {
                Some(fenghuo_query::InstantSample {
                    value: fenghuo_query::PointValue::Float(v),
                    ..
                }) => fenghuo_query::Value::Scalar { t, v: *v },
                _ => return Err(format!("range mode returned no point at {t}{label}")),
            },
            _ => fenghuo_query::Value::Vector(vec),
        };
        check::compare_result(cmd, &value, cmd.start, cmd.end, cmd.step)
            .map_err(|m| format!("{m} (range mode){label}"))
    }
}

/// Whether a parse error comes from syntax `promql-parser` rejects (rather
/// than from evaluating a duration expression).
fn is_syntax_error(e: &QueryError) -> bool {
    matches!(e, QueryError::Parse(_))
}

/// Why an expression is skipped: what `promql-parser` cannot parse.
fn skip_reason(expr: &str, err: &QueryError) -> String {
    let re_dur = regex::Regex::new(r"\[[^\]]*[-+*/%^()][^\]]*\]|offset\s*\(|@\s*\(").ok();
    let reason = if re_dur.is_some_and(|r| r.is_match(expr)) {
        "duration expression"
    } else if expr.contains("step()") {
        "step() in a duration"
    } else if expr.contains("anchored") || expr.contains("smoothed") {
        "anchored/smoothed range selector"
    } else if expr.contains('`') && expr.contains('\\') {
        "backslash in backtick string"
    } else {
        "promql-parser cannot parse it"
    };
    format!("{reason}: {err}")
}

/// Collects the matcher sets of every selector in `e`.
fn collect_selectors(e: &Expr, out: &mut Vec<Vec<Matcher>>) {
    match e {
        Expr::VectorSelector(vs) => push_selector(vs, out),
        Expr::MatrixSelector(ms) => push_selector(&ms.vs, out),
        Expr::Aggregate(a) => {
            collect_selectors(&a.expr, out);
            if let Some(p) = &a.param {
                collect_selectors(p, out);
            }
        }
        Expr::Unary(u) => collect_selectors(&u.expr, out),
        Expr::Binary(b) => {
            collect_selectors(&b.lhs, out);
            collect_selectors(&b.rhs, out);
        }
        Expr::Paren(p) => collect_selectors(&p.expr, out),
        Expr::Subquery(s) => collect_selectors(&s.expr, out),
        Expr::Call(c) => c.args.args.iter().for_each(|a| collect_selectors(a, out)),
        _ => {}
    }
}

fn push_selector(vs: &promql_parser::parser::VectorSelector, out: &mut Vec<Vec<Matcher>>) {
    let sets: Vec<&Vec<promql_parser::label::Matcher>> = if vs.matchers.or_matchers.is_empty() {
        vec![&vs.matchers.matchers]
    } else {
        vs.matchers.or_matchers.iter().collect()
    };
    for raw in sets {
        let mut set: Vec<Matcher> = raw
            .iter()
            .filter_map(|m| fenghuo_query::convert_matcher(m).ok())
            .collect();
        if let Some(n) = &vs.name {
            set.push(Matcher::equal("__name__", n.clone()));
        }
        out.push(set);
    }
}

/// Functions whose value depends on the evaluation time even with fixed
/// inputs (Prometheus's `AtModifierUnsafeFunctions`).
fn has_time_dependent_call(e: &Expr) -> bool {
    match e {
        Expr::Call(c) => {
            fenghuo_query::is_at_modifier_unsafe(c.func.name)
                || c.args.args.iter().any(|a| has_time_dependent_call(a))
        }
        Expr::Aggregate(a) => {
            has_time_dependent_call(&a.expr) || a.param.as_ref().is_some_and(|p| has_time_dependent_call(p))
        }
        Expr::Unary(u) => has_time_dependent_call(&u.expr),
        Expr::Binary(b) => has_time_dependent_call(&b.lhs) || has_time_dependent_call(&b.rhs),
        Expr::Paren(p) => has_time_dependent_call(&p.expr),
        Expr::Subquery(s) => has_time_dependent_call(&s.expr),
        _ => false,
    }
}

/// The expression with `@ ts` on every outermost selector and subquery
/// that has none, or `None` when it uses time-dependent functions.
fn at_modifier_variant(e: &Expr, ts: i64) -> Option<Expr> {
    if has_time_dependent_call(e) {
        return None;
    }
    let at = AtModifier::try_from(ts as f64 / 1000.0).ok()?;
    let mut e = e.clone();
    set_at(&mut e, &at);
    Some(e)
}

fn set_at(e: &mut Expr, at: &AtModifier) {
    match e {
        Expr::VectorSelector(vs) if vs.at.is_none() => vs.at = Some(at.clone()),
        Expr::MatrixSelector(ms) if ms.vs.at.is_none() => ms.vs.at = Some(at.clone()),
        // Selectors inside a subquery with @ are left alone.
        Expr::Subquery(s) if s.at.is_none() => s.at = Some(at.clone()),
        Expr::Aggregate(a) => {
            set_at(&mut a.expr, at);
            if let Some(p) = a.param.as_mut() {
                set_at(p, at);
            }
        }
        Expr::Unary(u) => set_at(&mut u.expr, at),
        Expr::Binary(b) => {
            set_at(&mut b.lhs, at);
            set_at(&mut b.rhs, at);
        }
        Expr::Paren(p) => set_at(&mut p.expr, at),
        Expr::Call(c) => c.args.args.iter_mut().for_each(|a| set_at(a, at)),
        _ => {}
    }
}

/// `load_with_nhcb`: classic histograms (`X_bucket{le}`, `X_count`,
/// `X_sum`) become native histograms with custom buckets named `X`.
fn convert_nhcb(l: &LoadCmd) -> Vec<SeriesWrite> {
    #[derive(Default)]
    struct Temp {
        buckets: Vec<(f64, f64)>,
        count: Option<f64>,
        sum: f64,
        err: bool,
    }
    let mut groups: BTreeMap<Labels, BTreeMap<i64, Temp>> = BTreeMap::new();
    for (labels, values) in &l.series {
        let name = labels.metric_name().unwrap_or("");
        let (kind, base) = if let Some(b) = name.strip_suffix("_bucket") {
            (0, b)
        } else if let Some(b) = name.strip_suffix("_count") {
            (1, b)
        } else if let Some(b) = name.strip_suffix("_sum") {
            (2, b)
        } else {
            continue;
        };
        let le = if kind == 0 {
            match labels
                .get("le")
                .and_then(|le| fenghuo_gofmt::parse_float(le).ok())
            {
                Some(le) if !le.is_nan() => Some(le),
                _ => continue,
            }
        } else {
            None
        };
        let mut key = labels.without(&["le"]);
        key.set("__name__", base);
        let per_ts = groups.entry(key).or_default();
        for (i, v) in values.iter().enumerate() {
            if v.omitted || v.histogram.is_some() {
                continue;
            }
            let t = i as i64 * l.gap;
            let temp = per_ts.entry(t).or_default();
            match kind {
                0 => {
                    let le = le.unwrap_or(f64::INFINITY);
                    if v.value < 0.0 {
                        temp.err = true;
                    }
                    if !temp.buckets.iter().any(|(b, _)| *b == le) {
                        temp.buckets.push((le, v.value));
                    }
                }
                1 => {
                    if v.value < 0.0 {
                        temp.err = true;
                    }
                    temp.count = Some(v.value);
                }
                _ => temp.sum = v.value,
            }
        }
    }
    let mut out = Vec::new();
    for (labels, per_ts) in groups {
        let mut sw = SeriesWrite {
            labels,
            ..Default::default()
        };
        for (t, mut temp) in per_ts {
            if temp.err {
                continue;
            }
            temp.buckets
                .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            if temp.buckets.windows(2).any(|w| w[1].1 < w[0].1) {
                continue;
            }
            let count = temp
                .count
                .unwrap_or_else(|| temp.buckets.last().map_or(0.0, |b| b.1));
            if temp.buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
                temp.buckets.push((f64::INFINITY, count));
            }
            if temp.buckets.last().is_some_and(|b| b.1 != count) {
                continue;
            }
            let mut h = FloatHistogram {
                schema: CUSTOM_BUCKETS_SCHEMA,
                count,
                sum: temp.sum,
                positive_spans: vec![BucketSpan {
                    offset: 0,
                    length: temp.buckets.len() as u32,
                }],
                ..Default::default()
            };
            let mut prev = 0.0;
            for (le, c) in &temp.buckets {
                h.positive_buckets.push(c - prev);
                prev = *c;
                if le.is_finite() {
                    h.custom_values.push(*le);
                }
            }
            // Integer-valued histograms are compacted keeping up to two
            // empty buckets inside spans, float ones keeping none.
            let integral = temp.buckets.iter().all(|(_, c)| c.fract() == 0.0) && count.fract() == 0.0;
            fenghuo_query::histogram::compact(&mut h, if integral { 2 } else { 0 });
            sw.histograms.push(HistogramSample { t, h: Arc::new(h) });
        }
        if !sw.histograms.is_empty() {
            out.push(sw);
        }
    }
    out
}
