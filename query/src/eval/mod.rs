//! The evaluator: Prometheus's `evaluator` over the engine's tree.
//!
//! Every expression evaluates to a matrix holding one point per step
//! (`start..=end` every `interval`); an instant query is a range of one
//! step. Operators and functions over instant vectors run through
//! [`Evaluator::range_eval`], which gathers the input vectors of each step
//! and calls the operation once per step.
//!
//! Submodules: [`selectors`] (reading fetched series), [`call`] (function
//! calls), [`binary`] (operators and vector matching), [`aggregate`]
//! (aggregations), [`subquery`] (subqueries and step-invariant nodes).

pub(crate) mod aggregate;
pub(crate) mod binary;
pub(crate) mod call;
pub(crate) mod hints;
pub(crate) mod selectors;
pub(crate) mod subquery;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use fenghuo_storage_api::api::Querier;
use fenghuo_storage_api::model::{FloatHistogram, HistogramSample, Labels, Sample};

use crate::annotations::{Annotation, Annotations};
use crate::error::{ENV_EXPRESSION_EVALUATION, QueryError};
use crate::plan::{Node, VectorMatching};

/// Label sets are shared between steps and series; cloning is cheap.
pub(crate) type Metric = Arc<Labels>;

/// One series of an intermediate matrix.
#[derive(Clone, Debug, Default)]
pub(crate) struct Series {
    pub metric: Metric,
    pub floats: Vec<Sample>,
    pub hists: Vec<HistogramSample>,
    /// Drop `__name__` when the result is returned (delayed name removal).
    pub drop_name: bool,
}

impl Series {
    pub fn new(metric: Metric) -> Self {
        Self {
            metric,
            ..Default::default()
        }
    }

    /// Samples held, histograms weighted by size as Prometheus counts them.
    pub fn total_samples(&self) -> usize {
        self.floats.len() + self.hists.iter().map(|h| hist_size(&h.h)).sum::<usize>()
    }
}

/// A histogram's weight in the sample limit (Prometheus's `HPoint.size`).
pub(crate) fn hist_size(h: &FloatHistogram) -> usize {
    let bytes = 168
        + 8 * (h.positive_spans.len()
            + h.negative_spans.len()
            + h.positive_buckets.len()
            + h.negative_buckets.len()
            + h.custom_values.len());
    (bytes + 8) / 16
}

/// One element of an instant vector.
#[derive(Clone, Debug)]
pub(crate) struct Elem {
    pub metric: Metric,
    pub t: i64,
    pub f: f64,
    pub h: Option<Arc<FloatHistogram>>,
    pub drop_name: bool,
}

impl Elem {
    pub fn float(metric: Metric, f: f64) -> Self {
        Self {
            metric,
            t: 0,
            f,
            h: None,
            drop_name: false,
        }
    }
}

pub(crate) type Vector = Vec<Elem>;
pub(crate) type Matrix = Vec<Series>;

/// What an expression evaluates to.
pub(crate) enum EvalValue {
    Matrix(Matrix),
    Str(String),
}

impl EvalValue {
    pub fn into_matrix(self) -> Matrix {
        match self {
            EvalValue::Matrix(m) => m,
            EvalValue::Str(_) => Vec::new(),
        }
    }
}

/// State shared by all evaluators of one query.
pub(crate) struct QueryCtx<'a> {
    pub querier: &'a dyn Querier,
    /// Fetched series per selector id.
    pub data: Vec<Vec<Series>>,
    /// Per selector id: the series with stale markers removed (range use).
    pub range_data: Vec<Vec<Series>>,
    pub deadline: Instant,
    pub cancel: Option<&'a AtomicBool>,
    pub max_samples: usize,
    pub lookback: i64,
    pub annos: RefCell<Annotations>,
    pub peak_samples: Cell<usize>,
    pub samples_loaded: Cell<u64>,
}

impl QueryCtx<'_> {
    pub fn check_deadline(&self) -> Result<(), QueryError> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(QueryError::Canceled {
                env: ENV_EXPRESSION_EVALUATION,
            });
        }
        if Instant::now() >= self.deadline {
            return Err(QueryError::Timeout {
                env: ENV_EXPRESSION_EVALUATION,
            });
        }
        Ok(())
    }

    pub fn annotate(&self, a: Annotation) {
        self.annos.borrow_mut().add(a);
    }
}

pub(crate) fn too_many_samples() -> QueryError {
    QueryError::TooManySamples {
        env: crate::error::ENV_QUERY_EXECUTION,
    }
}

pub(crate) const DUPLICATE_LABELSET: &str = "vector cannot contain metrics with the same labelset";

/// Evaluates expressions over `start..=end` every `interval`.
pub(crate) struct Evaluator<'q, 'a> {
    pub q: &'q QueryCtx<'a>,
    pub start: i64,
    pub end: i64,
    pub interval: i64,
    pub current_samples: usize,
}

/// Per-step context handed to operations run by `range_eval`.
pub(crate) struct StepCtx<'q, 'a> {
    pub ts: i64,
    pub q: &'q QueryCtx<'a>,
}

impl<'q, 'a> Evaluator<'q, 'a> {
    pub fn new(q: &'q QueryCtx<'a>, start: i64, end: i64, interval: i64) -> Self {
        Self {
            q,
            start,
            end,
            interval,
            current_samples: 0,
        }
    }

    /// A child evaluator over another time range sharing the sample count.
    pub fn child(&self, start: i64, end: i64, interval: i64) -> Evaluator<'q, 'a> {
        Evaluator {
            q: self.q,
            start,
            end,
            interval,
            current_samples: self.current_samples,
        }
    }

    pub fn num_steps(&self) -> usize {
        if self.interval <= 0 || self.end < self.start {
            return 1;
        }
        ((self.end - self.start) / self.interval + 1) as usize
    }

    pub fn steps(&self) -> impl Iterator<Item = i64> + use<> {
        let (start, end, interval) = (self.start, self.end, self.interval.max(1));
        (0..)
            .map(move |i| start + i * interval)
            .take_while(move |ts| *ts <= end)
    }

    pub fn update_peak(&self) {
        if self.current_samples > self.q.peak_samples.get() {
            self.q.peak_samples.set(self.current_samples);
        }
    }

    pub fn add_samples(&mut self, n: usize) -> Result<(), QueryError> {
        self.current_samples += n;
        self.update_peak();
        if self.current_samples > self.q.max_samples {
            return Err(too_many_samples());
        }
        Ok(())
    }

    /// Evaluates a node.
    pub fn eval(&mut self, node: &Node) -> Result<EvalValue, QueryError> {
        self.q.check_deadline()?;
        if self.end < self.start {
            return Ok(EvalValue::Matrix(Vec::new()));
        }
        match node {
            Node::Number { v, .. } => {
                let v = *v;
                self.range_eval(None, &[], |_, _, _| {
                    Ok(vec![Elem::float(Arc::new(Labels::empty()), v)])
                })
                .map(EvalValue::Matrix)
            }
            Node::Str { v, .. } => Ok(EvalValue::Str(v.clone())),
            Node::Paren { expr, .. } => self.eval(expr),
            Node::Neg { expr, .. } => {
                let mut mat = self.eval(expr)?.into_matrix();
                for s in mat.iter_mut() {
                    s.drop_name = true;
                    for p in s.floats.iter_mut() {
                        p.v = -p.v;
                    }
                    for p in s.hists.iter_mut() {
                        let mut h = (*p.h).clone();
                        crate::histogram::mul(&mut h, -1.0);
                        p.h = Arc::new(h);
                    }
                }
                Ok(EvalValue::Matrix(mat))
            }
            Node::Vector(sel) => self.eval_vector_selector(sel).map(EvalValue::Matrix),
            Node::Matrix { sel, range } => {
                if self.start != self.end {
                    return Err(QueryError::exec("cannot do range evaluation of matrix selector"));
                }
                self.eval_matrix_selector(sel, *range).map(EvalValue::Matrix)
            }
            Node::Subquery(sq) => self.eval_subquery_value(sq).map(EvalValue::Matrix),
            Node::StepInvariant(inner) => self.eval_step_invariant(inner),
            Node::Call(c) => self.eval_call(c),
            Node::Aggregate(a) => self.eval_aggregate(a).map(EvalValue::Matrix),
            Node::Binary(b) => self.eval_binary(b).map(EvalValue::Matrix),
        }
    }

    /// Evaluates `exprs`, then calls `f` once per step with the input
    /// vectors of that step (and, with `matching`, each element's join
    /// signature ordinal), collecting the results into series.
    pub fn range_eval<F>(
        &mut self,
        matching: Option<&VectorMatching>,
        exprs: &[&Node],
        f: F,
    ) -> Result<Matrix, QueryError>
    where
        F: FnMut(&[Vector], &[Vec<usize>], &StepCtx<'q, 'a>) -> Result<Vector, QueryError>,
    {
        let original_samples = self.current_samples;
        let mut matrices: Vec<Matrix> = Vec::with_capacity(exprs.len());
        for e in exprs {
            if e.value_type() == promql_parser::parser::value::ValueType::String {
                matrices.push(Vec::new());
                continue;
            }
            matrices.push(self.eval(e)?.into_matrix());
        }
        self.step_loop(matrices, matching, original_samples, f)
    }

    /// The per-step loop of [`Evaluator::range_eval`] over already
    /// evaluated input matrices.
    pub fn step_loop<F>(
        &mut self,
        matrices: Vec<Matrix>,
        matching: Option<&VectorMatching>,
        original_samples: usize,
        mut f: F,
    ) -> Result<Matrix, QueryError>
    where
        F: FnMut(&[Vector], &[Vec<usize>], &StepCtx<'q, 'a>) -> Result<Vector, QueryError>,
    {
        let num_steps = self.num_steps();

        // Join signatures: ordinal per input series.
        let mut series_sigs: Vec<Vec<usize>> = Vec::new();
        if let Some(m) = matching {
            let mut sig_to_ord: HashMap<Vec<(String, String)>, usize> = HashMap::new();
            for mat in &matrices {
                let mut sigs = Vec::with_capacity(mat.len());
                for s in mat {
                    let sig = signature(&s.metric, m.on, &m.labels);
                    let next = sig_to_ord.len();
                    sigs.push(*sig_to_ord.entry(sig).or_insert(next));
                }
                series_sigs.push(sigs);
            }
        }

        let mut cursors: Vec<Vec<(usize, usize)>> = matrices.iter().map(|m| vec![(0, 0); m.len()]).collect();
        let mut vectors: Vec<Vector> = vec![Vec::new(); matrices.len()];
        let mut step_sigs: Vec<Vec<usize>> = vec![Vec::new(); matrices.len()];
        let mut out: Matrix = Vec::new();
        let mut out_index: HashMap<Metric, (usize, i64)> = HashMap::new();
        let mut temp_samples = self.current_samples;

        for ts in self.steps() {
            self.q.check_deadline()?;
            self.current_samples = temp_samples;
            for (i, mat) in matrices.iter().enumerate() {
                vectors[i].clear();
                step_sigs[i].clear();
                for (si, s) in mat.iter().enumerate() {
                    let cur = &mut cursors[i][si];
                    let elem = if cur.0 < s.floats.len() && s.floats[cur.0].t == ts {
                        let p = s.floats[cur.0];
                        cur.0 += 1;
                        Elem {
                            metric: s.metric.clone(),
                            t: ts,
                            f: p.v,
                            h: None,
                            drop_name: s.drop_name,
                        }
                    } else if cur.1 < s.hists.len() && s.hists[cur.1].t == ts {
                        let p = &s.hists[cur.1];
                        cur.1 += 1;
                        Elem {
                            metric: s.metric.clone(),
                            t: ts,
                            f: 0.0,
                            h: Some(p.h.clone()),
                            drop_name: s.drop_name,
                        }
                    } else {
                        continue;
                    };
                    vectors[i].push(elem);
                    if matching.is_some() {
                        step_sigs[i].push(series_sigs[i][si]);
                    }
                    self.add_samples(1)?;
                }
            }
            let sc = StepCtx { ts, q: self.q };
            let result = f(&vectors, &step_sigs, &sc)?;
            let n = vector_samples(&result);
            self.current_samples += n;
            temp_samples += n;
            self.update_peak();
            if self.current_samples > self.q.max_samples {
                return Err(too_many_samples());
            }

            if self.start == self.end {
                // Instant evaluation: keep the operation's order.
                let mat: Matrix = result
                    .into_iter()
                    .map(|e| {
                        let mut s = Series::new(e.metric);
                        s.drop_name = e.drop_name;
                        match e.h {
                            Some(h) => s.hists.push(HistogramSample { t: ts, h }),
                            None => s.floats.push(Sample { t: ts, v: e.f }),
                        }
                        s
                    })
                    .collect();
                self.current_samples =
                    original_samples + mat.iter().map(Series::total_samples).sum::<usize>();
                self.update_peak();
                return Ok(mat);
            }

            for e in result {
                match out_index.get_mut(&e.metric) {
                    Some((idx, last)) => {
                        if *last == ts {
                            return Err(QueryError::exec(DUPLICATE_LABELSET));
                        }
                        *last = ts;
                        push_point(&mut out[*idx], ts, e.f, e.h, num_steps);
                    }
                    None => {
                        out_index.insert(e.metric.clone(), (out.len(), ts));
                        let mut s = Series::new(e.metric);
                        s.drop_name = e.drop_name;
                        push_point(&mut s, ts, e.f, e.h, num_steps);
                        out.push(s);
                    }
                }
            }
        }
        self.current_samples = original_samples + out.iter().map(Series::total_samples).sum::<usize>();
        self.update_peak();
        Ok(out)
    }
}

pub(crate) fn vector_samples(v: &Vector) -> usize {
    v.iter()
        .map(|e| 1 + e.h.as_ref().map_or(0, |h| hist_size(h).saturating_sub(1)))
        .sum()
}

pub(crate) fn push_point(s: &mut Series, ts: i64, f: f64, h: Option<Arc<FloatHistogram>>, num_steps: usize) {
    match h {
        Some(h) => {
            if s.hists.capacity() == 0 {
                s.hists.reserve(num_steps.min(5000));
            }
            s.hists.push(HistogramSample { t: ts, h });
        }
        None => {
            if s.floats.capacity() == 0 {
                s.floats.reserve(num_steps.min(5000));
            }
            s.floats.push(Sample { t: ts, v: f });
        }
    }
}

/// The join signature of a label set: the `on` labels, or all labels but the
/// `ignoring` ones and `__name__`.
pub(crate) fn signature(ls: &Labels, on: bool, names: &[String]) -> Vec<(String, String)> {
    if on {
        let mut v: Vec<(String, String)> = ls
            .iter()
            .filter(|l| names.contains(&l.name))
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        v.sort();
        v
    } else {
        ls.iter()
            .filter(|l| l.name != fenghuo_storage_api::model::METRIC_NAME && !names.contains(&l.name))
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect()
    }
}

/// Drops the labels that carry metric metadata (`__name__`, `__type__`, `__unit__`).
pub(crate) fn drop_metadata_labels(ls: &Labels) -> Labels {
    ls.without(&["__name__", "__type__", "__unit__"])
}

/// Drops `__name__` (and the other metadata labels) from series marked for
/// it and merges series that end up with the same labels, as Prometheus
/// does at the end of evaluation.
pub(crate) fn cleanup_matrix(mat: Matrix) -> Result<Matrix, QueryError> {
    let mat: Matrix = mat
        .into_iter()
        .map(|mut s| {
            if s.drop_name {
                s.metric = Arc::new(drop_metadata_labels(&s.metric));
                s.drop_name = false;
            }
            s
        })
        .collect();
    merge_same_labelsets(mat)
}

/// Merges series with equal labels whose points do not overlap.
pub(crate) fn merge_same_labelsets(mat: Matrix) -> Result<Matrix, QueryError> {
    if mat.len() <= 1 {
        return Ok(mat);
    }
    let mut index: HashMap<Metric, usize> = HashMap::with_capacity(mat.len());
    let mut dup = false;
    for (i, s) in mat.iter().enumerate() {
        if index.insert(s.metric.clone(), i).is_some() {
            dup = true;
            break;
        }
    }
    if !dup {
        return Ok(mat);
    }
    let mut out: Matrix = Vec::with_capacity(mat.len());
    let mut pos: HashMap<Metric, usize> = HashMap::new();
    for s in mat {
        match pos.get(&s.metric) {
            Some(&i) => {
                let base = &mut out[i];
                base.floats.extend(s.floats);
                base.hists.extend(s.hists);
            }
            None => {
                pos.insert(s.metric.clone(), out.len());
                out.push(s);
            }
        }
    }
    for s in out.iter_mut() {
        s.floats.sort_by_key(|p| p.t);
        s.hists.sort_by_key(|p| p.t);
        if s.floats.windows(2).any(|w| w[0].t == w[1].t) || s.hists.windows(2).any(|w| w[0].t == w[1].t) {
            return Err(QueryError::exec(DUPLICATE_LABELSET));
        }
    }
    Ok(out)
}
