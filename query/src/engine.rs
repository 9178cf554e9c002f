//! The engine: parses and plans a query, fetches every selector's series
//! once for the whole query range, evaluates, and shapes the result as the
//! Prometheus API expects it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use fenghuo_storage_api::api::{Querier, SelectHints};
use fenghuo_storage_api::model::{HistogramSample, Labels, Sample};
use promql_parser::parser::Expr;
use promql_parser::parser::value::ValueType;

use crate::annotations::Annotations;
use crate::depth;
use crate::error::{ENV_QUERY_EXECUTION, QueryError};
use crate::eval::selectors::without_stale;
use crate::eval::{Evaluator, QueryCtx, Series, cleanup_matrix};
use crate::extensions::{self, Marker};
use crate::metrics;
use crate::options::EngineOptions;
use crate::plan::{self, LowerCtx, Plan};
use crate::value::{InstantSample, PointValue, QueryOutput, QueryStats, RangeSeries, Value};

/// Most points a range query may return per series (Prometheus's API limit).
const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// A query parsed for one execution. Duration expressions are resolved
/// for the step and range it was parsed for; `text` is what `expr` was
/// parsed from (annotation positions refer to it).
#[derive(Clone, Debug)]
pub struct ParsedQuery {
    pub expr: Expr,
    pub text: String,
    modifiers: Vec<(usize, Marker)>,
}

/// Caller-side limits of one query: a deadline tighter than the engine's
/// timeout, and a flag the caller sets to cancel.
#[derive(Clone, Copy, Default)]
pub struct QueryControl<'a> {
    pub deadline: Option<Instant>,
    pub cancel: Option<&'a AtomicBool>,
}

/// The PromQL engine. Cheap to share (`Arc<Engine>`); queries are
/// independent and synchronous.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    opts: EngineOptions,
}

/// Prometheus's name for a value type in messages.
fn documented_type(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
    }
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Self { opts }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Parses a query with `promql-parser` for an instant evaluation,
    /// mapping errors to Prometheus's "parse error" form.
    pub fn parse(query: &str) -> Result<Expr, QueryError> {
        Self::parse_for(query, 0, 0, 0).map(|p| p.expr)
    }

    /// Parses a query for one execution: duration expressions (`[5m+1m]`,
    /// `offset step()`) depend on the step and range of the query.
    pub fn parse_for(
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<ParsedQuery, QueryError> {
        // The depth check comes first: the rewrite's duration arithmetic
        // recurses too.
        depth::check_depth(query)?;
        depth::run_with_stack(|| {
            let rw = extensions::rewrite(query, step_ms, end_ms.saturating_sub(start_ms))?;
            let expr = depth::parse_checked(&rw.text)?;
            Ok(ParsedQuery {
                expr,
                text: rw.text,
                modifiers: rw.modifiers,
            })
        })
    }

    /// Evaluates `query` at `time_ms`.
    pub fn instant(&self, q: &dyn Querier, query: &str, time_ms: i64) -> Result<QueryOutput, QueryError> {
        let p = Self::parse_for(query, time_ms, time_ms, 0)?;
        self.instant_parsed(q, &p, time_ms, QueryControl::default())
    }

    /// Evaluates `query` from `start_ms` to `end_ms` every `step_ms`.
    pub fn range(
        &self,
        q: &dyn Querier,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryOutput, QueryError> {
        let p = Self::parse_for(query, start_ms, end_ms, step_ms)?;
        self.range_parsed(q, &p, start_ms, end_ms, step_ms, QueryControl::default())
    }

    /// Evaluates an already parsed expression at one instant. `query` is
    /// the text the expression came from (positions in annotations refer
    /// to it).
    pub fn instant_expr(
        &self,
        q: &dyn Querier,
        expr: &Expr,
        query: &str,
        time_ms: i64,
        ctl: QueryControl<'_>,
    ) -> Result<QueryOutput, QueryError> {
        let p = ParsedQuery {
            expr: expr.clone(),
            text: query.to_string(),
            modifiers: Vec::new(),
        };
        self.instant_parsed(q, &p, time_ms, ctl)
    }

    /// Evaluates a parsed query at one instant.
    pub fn instant_parsed(
        &self,
        q: &dyn Querier,
        p: &ParsedQuery,
        time_ms: i64,
        ctl: QueryControl<'_>,
    ) -> Result<QueryOutput, QueryError> {
        self.run(q, p, time_ms, time_ms, 0, ctl)
    }

    /// Evaluates an already parsed expression over a range.
    #[allow(clippy::too_many_arguments)]
    pub fn range_expr(
        &self,
        q: &dyn Querier,
        expr: &Expr,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        ctl: QueryControl<'_>,
    ) -> Result<QueryOutput, QueryError> {
        let p = ParsedQuery {
            expr: expr.clone(),
            text: query.to_string(),
            modifiers: Vec::new(),
        };
        self.range_parsed(q, &p, start_ms, end_ms, step_ms, ctl)
    }

    /// Evaluates a parsed query over a range.
    pub fn range_parsed(
        &self,
        q: &dyn Querier,
        p: &ParsedQuery,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        ctl: QueryControl<'_>,
    ) -> Result<QueryOutput, QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
                    .into(),
            ));
        }
        if [start_ms, end_ms].iter().any(|t| t.abs() > plan::MAX_TIME_MS) {
            return Err(QueryError::BadData(format!(
                "timestamp out of range: {start_ms}..{end_ms}"
            )));
        }
        if end_ms < start_ms {
            return Err(QueryError::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        if (end_ms - start_ms) / step_ms > MAX_POINTS_PER_SERIES {
            return Err(QueryError::BadData(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
                    .into(),
            ));
        }
        let t = p.expr.value_type();
        if t != ValueType::Vector && t != ValueType::Scalar {
            return Err(QueryError::BadData(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                documented_type(t)
            )));
        }
        self.run(q, p, start_ms, end_ms, step_ms, ctl)
    }

    fn run(
        &self,
        q: &dyn Querier,
        p: &ParsedQuery,
        start: i64,
        end: i64,
        step: i64,
        ctl: QueryControl<'_>,
    ) -> Result<QueryOutput, QueryError> {
        let started = Instant::now();
        if [start, end].iter().any(|t| t.abs() > plan::MAX_TIME_MS) {
            return Err(QueryError::BadData(format!(
                "timestamp out of range: {start}..{end}"
            )));
        }
        let res = depth::run_with_stack(|| self.run_inner(q, p, start, end, step, ctl, started));
        metrics::observe_query(started.elapsed(), step == 0, res.as_ref().err());
        res
    }

    #[allow(clippy::too_many_arguments)]
    fn run_inner(
        &self,
        q: &dyn Querier,
        p: &ParsedQuery,
        start: i64,
        end: i64,
        step: i64,
        ctl: QueryControl<'_>,
        started: Instant,
    ) -> Result<QueryOutput, QueryError> {
        let mut deadline = started + self.opts.timeout;
        if let Some(d) = ctl.deadline {
            deadline = deadline.min(d);
        }
        let lower_ctx = LowerCtx {
            start,
            end,
            step,
            lookback: self.opts.lookback_delta_ms,
            default_subquery_step: self.opts.default_subquery_step_ms,
            enable_experimental: self.opts.enable_experimental_functions,
            modifiers: p.modifiers.clone(),
        };
        let query = p.text.as_str();
        let plan = plan::lower(&p.expr, query, &lower_ctx)?;
        let mut ctx = QueryCtx {
            querier: q,
            data: Vec::new(),
            range_data: Vec::new(),
            deadline,
            cancel: ctl.cancel,
            max_samples: self.opts.max_samples,
            lookback: self.opts.lookback_delta_ms,
            annos: Default::default(),
            peak_samples: Default::default(),
            samples_loaded: Default::default(),
        };
        if Instant::now() >= deadline {
            return Err(QueryError::Timeout {
                env: ENV_QUERY_EXECUTION,
            });
        }
        fetch(&plan, &mut ctx)?;

        let interval = if step == 0 { 1 } else { step };
        let mut ev = Evaluator::new(&ctx, start, end, interval);
        let val = ev.eval(&plan.root)?;
        let value = match val {
            crate::eval::EvalValue::Str(s) => Value::String { t: start, v: s },
            crate::eval::EvalValue::Matrix(m) => {
                let mut m = cleanup_matrix(m)?;
                if step == 0 {
                    match plan.root.value_type() {
                        ValueType::Vector => Value::Vector(
                            m.into_iter()
                                .map(|s| InstantSample {
                                    labels: (*s.metric).clone(),
                                    t: start,
                                    value: match (s.hists.into_iter().next(), s.floats.first()) {
                                        (Some(h), _) => PointValue::Histogram(h.h),
                                        (None, Some(f)) => PointValue::Float(f.v),
                                        (None, None) => PointValue::Float(f64::NAN),
                                    },
                                })
                                .collect(),
                        ),
                        ValueType::Scalar => Value::Scalar {
                            t: start,
                            v: m.first().and_then(|s| s.floats.first()).map_or(f64::NAN, |p| p.v),
                        },
                        _ => Value::Matrix(to_range_series(&mut m)),
                    }
                } else {
                    Value::Matrix(to_range_series(&mut m))
                }
            }
        };
        let annos: Annotations = ctx.annos.take();
        let (warnings, infos) = annos.render(query);
        Ok(QueryOutput {
            value,
            warnings,
            infos,
            stats: QueryStats {
                samples_loaded: ctx.samples_loaded.get(),
                peak_samples: ctx.peak_samples.get() as u64,
            },
        })
    }
}

fn to_range_series(m: &mut Vec<Series>) -> Vec<RangeSeries> {
    m.sort_by(|a, b| a.metric.cmp(&b.metric));
    std::mem::take(m)
        .into_iter()
        .map(|s| RangeSeries {
            labels: (*s.metric).clone(),
            floats: s.floats,
            histograms: s.hists,
        })
        .collect()
}

/// Selects every selector's series once for its whole window.
fn fetch(plan: &Plan, ctx: &mut QueryCtx<'_>) -> Result<(), QueryError> {
    let mut data = Vec::with_capacity(plan.fetches.len());
    let mut range_data = Vec::with_capacity(plan.fetches.len());
    let mut loaded = 0u64;
    for f in &plan.fetches {
        ctx.check_deadline()?;
        if f.matcher_sets.is_empty() || f.end < f.start {
            data.push(Vec::new());
            range_data.push(Vec::new());
            continue;
        }
        let by_labels = select_all(
            ctx.querier,
            &f.matcher_sets,
            f.start,
            f.end,
            ctx.max_samples,
            &mut loaded,
        )?;
        let any_histograms = by_labels.values().any(|(_, h)| !h.is_empty());
        // Counter-reset hints depend on the sample before the window too.
        let prior = if any_histograms {
            select_all(
                ctx.querier,
                &f.matcher_sets,
                f.start - ctx.lookback,
                f.start - 1,
                ctx.max_samples,
                &mut loaded,
            )?
        } else {
            BTreeMap::new()
        };
        let series: Vec<Series> = by_labels
            .into_iter()
            .map(|(labels, (floats, mut hists))| {
                if !hists.is_empty() {
                    let (pf, ph) = prior.get(&labels).cloned().unwrap_or_default();
                    let skip = ph.len();
                    let mut all_f = pf;
                    all_f.extend_from_slice(&floats);
                    let mut all_h = ph;
                    all_h.append(&mut hists);
                    crate::eval::hints::read_hints(&all_f, &mut all_h);
                    if f.stats_only {
                        crate::eval::hints::stats_only(&mut all_h);
                    }
                    hists = all_h.split_off(skip);
                }
                Series {
                    metric: Arc::new(labels),
                    floats,
                    hists,
                    drop_name: false,
                }
            })
            .collect();
        if f.matrix {
            range_data.push(series.iter().map(without_stale).collect());
            data.push(Vec::new());
        } else {
            data.push(series);
            range_data.push(Vec::new());
        }
    }
    ctx.data = data;
    ctx.range_data = range_data;
    ctx.samples_loaded.set(loaded);
    metrics::add_samples_loaded(loaded);
    Ok(())
}

type SeriesData = (Vec<Sample>, Vec<HistogramSample>);

/// The union of the series matching any of `sets` in `[start, end]`.
///
/// Everything a query selects is held in memory for its whole evaluation,
/// so the `max_samples` budget applies to what is loaded, and storage
/// enforces it while it reads: a query over too much data fails before it
/// has filled memory, not after.
fn select_all(
    q: &dyn Querier,
    sets: &[Vec<fenghuo_storage_api::model::Matcher>],
    start: i64,
    end: i64,
    max_samples: usize,
    loaded: &mut u64,
) -> Result<BTreeMap<Labels, SeriesData>, QueryError> {
    let mut by_labels: BTreeMap<Labels, SeriesData> = BTreeMap::new();
    for set in sets {
        let hints = SelectHints {
            start,
            end,
            max_samples: Some(max_samples.saturating_sub(*loaded as usize)),
        };
        let series = q.select(set, &hints).map_err(|e| match e {
            fenghuo_storage_api::StorageError::TooManySamples { .. } => QueryError::TooManySamples {
                env: ENV_QUERY_EXECUTION,
            },
            e => QueryError::Storage(e),
        })?;
        for s in series {
            *loaded += (s.floats.len() + s.histograms.len()) as u64;
            by_labels.entry(s.labels).or_insert((s.floats, s.histograms));
        }
    }
    Ok(by_labels)
}
