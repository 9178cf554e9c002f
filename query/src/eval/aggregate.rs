//! Aggregations: sum, avg, count, min, max, group, stddev, stdvar,
//! quantile, topk, bottomk, limitk, limit_ratio and count_values.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use fenghuo_storage_api::model::{CounterResetHint, FloatHistogram, Labels, METRIC_NAME};

use super::{Elem, Evaluator, Matrix, Metric, Series, Vector, push_point};
use crate::annotations::{Annotation, HistogramOp};
use crate::error::QueryError;
use crate::histogram::{self as hist, HistError};
use crate::kahan;
use crate::plan::{AggOp, Aggregate, Node};
use crate::quantile::quantile;

const MAX_INT64: f64 = 9_223_372_036_854_774_784.0;
const MIN_INT64: f64 = -9_223_372_036_854_775_808.0;

/// The labels of an aggregation group.
pub(crate) fn grouping_labels(ls: &Labels, grouping: &[String], without: bool) -> Labels {
    if without {
        let mut drop: Vec<&str> = grouping.iter().map(String::as_str).collect();
        drop.push(METRIC_NAME);
        ls.without(&drop)
    } else if grouping.is_empty() {
        Labels::empty()
    } else {
        ls.keep_only(grouping)
    }
}

/// The evaluated parameter of topk/bottomk/quantile/limitk/limit_ratio.
struct Params {
    values: Vec<f64>,
    constant: Option<f64>,
    min: f64,
    max: f64,
    has_nan: bool,
}

impl Params {
    fn at(&self, step: usize) -> f64 {
        self.constant
            .unwrap_or_else(|| self.values.get(step).copied().unwrap_or(0.0))
    }
}

#[derive(Clone, Default)]
struct Group {
    seen: bool,
    float_value: f64,
    float_mean: f64,
    float_kahan_c: f64,
    h_value: Option<FloatHistogram>,
    h_mean: Option<FloatHistogram>,
    h_kahan_c: Option<FloatHistogram>,
    count: f64,
    heap: Vec<Elem>,
    has_float: bool,
    has_histogram: bool,
    incompatible: bool,
    float_incremental: bool,
    h_incremental: bool,
    counter_reset_seen: bool,
    not_counter_reset_seen: bool,
    drop_name: bool,
}

impl Group {
    fn track_hint(&mut self, h: &FloatHistogram) {
        match h.counter_reset_hint {
            CounterResetHint::CounterReset => self.counter_reset_seen = true,
            CounterResetHint::NotCounterReset => self.not_counter_reset_seen = true,
            _ => {}
        }
    }
}

impl Evaluator<'_, '_> {
    pub(crate) fn eval_aggregate(&mut self, a: &Aggregate) -> Result<Matrix, QueryError> {
        if a.op == AggOp::CountValues {
            return self.eval_count_values(a);
        }
        let original = self.current_samples;
        let params = match &a.param {
            Some(p) => Some(self.eval_params(p)?),
            None => None,
        };
        let input = self.eval(&a.expr)?.into_matrix();
        let result = self.range_eval_agg(a, input, params.as_ref())?;
        self.current_samples = original + result.iter().map(Series::total_samples).sum::<usize>();
        self.update_peak();
        Ok(result)
    }

    fn eval_params(&mut self, p: &Node) -> Result<Params, QueryError> {
        let constant = matches!(p, Node::Number { .. });
        let mat = self.eval(p)?.into_matrix();
        let Some(s) = mat.into_iter().next() else {
            return Ok(Params {
                values: Vec::new(),
                constant: Some(0.0),
                min: 0.0,
                max: 0.0,
                has_nan: false,
            });
        };
        let values: Vec<f64> = s.floats.iter().map(|p| p.v).collect();
        if constant {
            let v = values.first().copied().unwrap_or(0.0);
            return Ok(Params {
                values,
                constant: Some(v),
                min: v,
                max: v,
                has_nan: v.is_nan(),
            });
        }
        let mut min = f64::MAX;
        let mut max = -f64::MAX;
        let mut has_nan = false;
        for &v in &values {
            max = go_max(max, v);
            min = go_min(min, v);
            has_nan |= v.is_nan();
        }
        // The parameter series has a point at every step (it is a scalar).
        let steps: Vec<i64> = self.steps().collect();
        let by_step: Vec<f64> = if s.floats.len() == steps.len() {
            values
        } else {
            steps
                .iter()
                .map(|ts| s.floats.iter().find(|p| p.t == *ts).map_or(0.0, |p| p.v))
                .collect()
        };
        Ok(Params {
            values: by_step,
            constant: None,
            min,
            max,
            has_nan,
        })
    }

    fn range_eval_agg(
        &mut self,
        a: &Aggregate,
        input: Matrix,
        params: Option<&Params>,
    ) -> Result<Matrix, QueryError> {
        let is_k = matches!(
            a.op,
            AggOp::TopK | AggOp::BottomK | AggOp::LimitK | AggOp::LimitRatio
        );
        let mut group_index: HashMap<Labels, usize> = HashMap::new();
        let mut series_to_group = Vec::with_capacity(input.len());
        let mut result: Matrix = Vec::new();
        for s in &input {
            let key = grouping_labels(&s.metric, &a.grouping, a.without);
            let n = group_index.len();
            let idx = *group_index.entry(key.clone()).or_insert_with(|| {
                if !is_k {
                    result.push(Series::new(Arc::new(key)));
                }
                n
            });
            series_to_group.push(idx);
        }
        let num_groups = group_index.len();
        let param_pos = a.param.as_ref().map_or(a.pos, |p| p.pos());
        let expr_pos = a.expr.pos();
        let (pmin, pmax, pnan) = params.map_or((0.0, 0.0, false), |p| (p.min, p.max, p.has_nan));

        match a.op {
            AggOp::TopK | AggOp::BottomK | AggOp::LimitK => {
                if pmax < 1.0 {
                    return Ok(Vec::new());
                }
                if pnan {
                    return Err(QueryError::exec("Parameter value is NaN"));
                }
                if pmin <= MIN_INT64 {
                    return Err(QueryError::exec(format!(
                        "Scalar value {} underflows int64",
                        crate::gofmt::g(pmin)
                    )));
                }
                if pmax >= MAX_INT64 {
                    return Err(QueryError::exec(format!(
                        "Scalar value {} overflows int64",
                        crate::gofmt::g(pmax)
                    )));
                }
            }
            AggOp::LimitRatio => {
                if pmax == 0.0 && pmin == 0.0 {
                    return Ok(Vec::new());
                }
                if pnan {
                    return Err(QueryError::exec("Ratio value is NaN"));
                }
                if pmax > 1.0 {
                    self.q.annotate(Annotation::invalid_ratio(pmax, 1.0, param_pos));
                }
                if pmin < -1.0 {
                    self.q.annotate(Annotation::invalid_ratio(pmin, -1.0, param_pos));
                }
            }
            AggOp::Quantile => {
                if pnan {
                    self.q.annotate(Annotation::invalid_quantile(f64::NAN, param_pos));
                }
                if pmax > 1.0 {
                    self.q.annotate(Annotation::invalid_quantile(pmax, param_pos));
                }
                if pmin < 0.0 {
                    self.q.annotate(Annotation::invalid_quantile(pmin, param_pos));
                }
            }
            _ => {}
        }

        let num_steps = self.num_steps();
        let mut cursors = vec![(0usize, 0usize); input.len()];
        let mut k_out: Matrix = Vec::new();
        let mut k_index: HashMap<Metric, usize> = HashMap::new();
        let instant = self.start == self.end;
        let temp_samples = self.current_samples;
        for (step, ts) in self.steps().enumerate() {
            self.q.check_deadline()?;
            self.current_samples = temp_samples;
            let param = params.map_or(0.0, |p| p.at(step));
            // Gather this step's values.
            let mut values: Vec<(usize, f64, Option<Arc<FloatHistogram>>)> = Vec::with_capacity(input.len());
            for (si, s) in input.iter().enumerate() {
                let cur = &mut cursors[si];
                if cur.0 < s.floats.len() && s.floats[cur.0].t == ts {
                    values.push((si, s.floats[cur.0].v, None));
                    cur.0 += 1;
                } else if cur.1 < s.hists.len() && s.hists[cur.1].t == ts {
                    values.push((si, 0.0, Some(s.hists[cur.1].h.clone())));
                    cur.1 += 1;
                }
            }
            if is_k {
                let out = aggregate_k(
                    a,
                    param,
                    &input,
                    &values,
                    &series_to_group,
                    num_groups,
                    self,
                    expr_pos,
                );
                if instant {
                    return Ok(out
                        .into_iter()
                        .map(|e| {
                            let mut s = Series::new(e.metric);
                            s.drop_name = e.drop_name;
                            push_point(&mut s, ts, e.f, e.h, 1);
                            s
                        })
                        .collect());
                }
                for e in out {
                    let idx = match k_index.get(&e.metric) {
                        Some(i) => *i,
                        None => {
                            let mut s = Series::new(e.metric.clone());
                            s.drop_name = e.drop_name;
                            k_index.insert(e.metric.clone(), k_out.len());
                            k_out.push(s);
                            k_out.len() - 1
                        }
                    };
                    push_point(&mut k_out[idx], ts, e.f, e.h, num_steps);
                }
            } else {
                aggregate_step(
                    a,
                    param,
                    &input,
                    &values,
                    &series_to_group,
                    &mut result,
                    ts,
                    num_steps,
                    self,
                    expr_pos,
                );
            }
            if self.current_samples > self.q.max_samples {
                return Err(super::too_many_samples());
            }
        }
        if is_k {
            return Ok(k_out);
        }
        result.retain(|s| !s.floats.is_empty() || !s.hists.is_empty());
        Ok(result)
    }

    fn eval_count_values(&mut self, a: &Aggregate) -> Result<Matrix, QueryError> {
        let label = match a.param.as_ref().map(Node::unwrapped) {
            Some(Node::Str { invalid: Some(q), .. }) => {
                return Err(QueryError::exec(format!("invalid label name {q}")));
            }
            Some(Node::Str { v, .. }) => v.clone(),
            _ => return Err(QueryError::exec("count_values requires a string parameter")),
        };
        if label.is_empty() {
            return Err(QueryError::exec(format!(
                "invalid label name {}",
                crate::gofmt::quote(&label)
            )));
        }
        let mut grouping = a.grouping.clone();
        if !a.without {
            grouping.push(label.clone());
            grouping.sort();
        }
        let without = a.without;
        self.range_eval(None, &[&a.expr], |v, _, _| {
            let mut groups: Vec<(Labels, f64)> = Vec::new();
            let mut index: HashMap<Labels, usize> = HashMap::new();
            for e in &v[0] {
                let value = match &e.h {
                    None => crate::gofmt::f_shortest(e.f),
                    Some(h) => hist::to_go_string(h),
                };
                let mut ls = (*e.metric).clone();
                ls.set(&label, &value);
                let key = grouping_labels(&ls, &grouping, without);
                match index.get(&key) {
                    Some(&i) => groups[i].1 += 1.0,
                    None => {
                        index.insert(key.clone(), groups.len());
                        groups.push((key, 1.0));
                    }
                }
            }
            Ok(groups
                .into_iter()
                .map(|(ls, c)| Elem::float(Arc::new(ls), c))
                .collect())
        })
    }
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

#[allow(clippy::too_many_arguments)]
fn aggregate_step(
    a: &Aggregate,
    q: f64,
    input: &Matrix,
    values: &[(usize, f64, Option<Arc<FloatHistogram>>)],
    series_to_group: &[usize],
    result: &mut Matrix,
    ts: i64,
    num_steps: usize,
    ev: &Evaluator,
    pos: usize,
) {
    let op = a.op;
    let mut groups: Vec<Group> = vec![Group::default(); result.len()];
    let annotate = |an: Annotation| ev.q.annotate(an);
    let metric_name = |si: usize| input[si].metric.metric_name().unwrap_or_default().to_string();
    for (si, f, h) in values {
        let (si, f) = (*si, *f);
        let g = &mut groups[series_to_group[si]];
        if !g.seen {
            *g = Group {
                seen: true,
                float_value: f,
                float_mean: f,
                count: 1.0,
                drop_name: input[si].drop_name,
                ..Default::default()
            };
            match op {
                AggOp::Avg | AggOp::Sum => match h {
                    None => g.has_float = true,
                    Some(h) => {
                        g.h_value = Some((**h).clone());
                        g.has_histogram = true;
                        g.track_hint(h);
                    }
                },
                AggOp::Stdvar | AggOp::Stddev => {
                    if h.is_some() {
                        g.seen = false;
                        annotate(Annotation::histogram_ignored_in_aggregation(op.as_str(), pos));
                    } else if f.is_nan() || f.is_infinite() {
                        g.float_value = f64::NAN;
                    } else {
                        g.float_value = 0.0;
                    }
                }
                AggOp::Quantile => {
                    if h.is_some() {
                        g.seen = false;
                        annotate(Annotation::histogram_ignored_in_aggregation("quantile", pos));
                    }
                    g.heap = vec![Elem::float(Arc::new(Labels::empty()), f)];
                }
                AggOp::Group => g.float_value = 1.0,
                AggOp::Min | AggOp::Max if h.is_some() => {
                    g.seen = false;
                    annotate(Annotation::histogram_ignored_in_aggregation(op.as_str(), pos));
                }
                _ => {}
            }
            continue;
        }
        if g.incompatible {
            continue;
        }
        if input[si].drop_name {
            g.drop_name = true;
        }
        match op {
            AggOp::Sum => match h {
                Some(h) => {
                    g.has_histogram = true;
                    if let Some(hv) = g.h_value.as_mut() {
                        match h.counter_reset_hint {
                            CounterResetHint::CounterReset => g.counter_reset_seen = true,
                            CounterResetHint::NotCounterReset => g.not_counter_reset_seen = true,
                            _ => {}
                        }
                        let c = g.h_kahan_c.take();
                        match hist::kahan_add(hv, h, c) {
                            Ok((c, out)) => {
                                g.h_kahan_c = Some(c);
                                if out.nhcb_reconciled {
                                    annotate(Annotation::mismatched_custom_buckets(pos, HistogramOp::Agg));
                                }
                            }
                            Err(HistError::IncompatibleSchema) => {
                                annotate(Annotation::mixed_exponential_custom_histograms(
                                    &metric_name(si),
                                    pos,
                                ));
                                g.incompatible = true;
                            }
                        }
                    }
                }
                None => {
                    g.has_float = true;
                    (g.float_value, g.float_kahan_c) = kahan::inc(f, g.float_value, g.float_kahan_c);
                }
            },
            AggOp::Avg => {
                g.count += 1.0;
                match h {
                    Some(h) => {
                        g.has_histogram = true;
                        if g.h_value.is_some() {
                            g.track_hint(h);
                            if !avg_histogram(g, h, &annotate, pos, &metric_name(si)) {
                                continue;
                            }
                        }
                    }
                    None => {
                        g.has_float = true;
                        if !g.float_incremental {
                            let (nv, nc) = kahan::inc(f, g.float_value, g.float_kahan_c);
                            if !nv.is_infinite() {
                                g.float_value = nv;
                                g.float_kahan_c = nc;
                                continue;
                            }
                            g.float_incremental = true;
                            g.float_mean = g.float_value / (g.count - 1.0);
                            g.float_kahan_c /= g.count - 1.0;
                        }
                        let q = (g.count - 1.0) / g.count;
                        (g.float_mean, g.float_kahan_c) =
                            kahan::inc(f / g.count, q * g.float_mean, q * g.float_kahan_c);
                    }
                }
            }
            AggOp::Group => {}
            AggOp::Max => {
                if h.is_some() {
                    annotate(Annotation::histogram_ignored_in_aggregation("max", pos));
                    continue;
                }
                if g.float_value < f || g.float_value.is_nan() {
                    g.float_value = f;
                }
            }
            AggOp::Min => {
                if h.is_some() {
                    annotate(Annotation::histogram_ignored_in_aggregation("min", pos));
                    continue;
                }
                if g.float_value > f || g.float_value.is_nan() {
                    g.float_value = f;
                }
            }
            AggOp::Count => g.count += 1.0,
            AggOp::Stdvar | AggOp::Stddev => {
                if h.is_none() {
                    g.count += 1.0;
                    let delta = f - g.float_mean;
                    g.float_mean += delta / g.count;
                    g.float_value += delta * (f - g.float_mean);
                } else {
                    annotate(Annotation::histogram_ignored_in_aggregation(op.as_str(), pos));
                }
            }
            AggOp::Quantile => {
                if h.is_some() {
                    annotate(Annotation::histogram_ignored_in_aggregation("quantile", pos));
                    continue;
                }
                g.heap.push(Elem::float(Arc::new(Labels::empty()), f));
            }
            _ => {}
        }
    }

    for (ri, mut g) in groups.into_iter().enumerate() {
        if !g.seen {
            continue;
        }
        let mut hv: Option<FloatHistogram> = None;
        match op {
            AggOp::Avg => {
                if g.has_float && g.has_histogram {
                    annotate(Annotation::mixed_floats_histograms_agg(pos));
                    continue;
                }
                if g.incompatible {
                    continue;
                }
                if g.has_histogram {
                    let mut v = if g.h_incremental {
                        let mut m = g.h_mean.take().unwrap_or_default();
                        if let Some(c) = &g.h_kahan_c {
                            let _ = hist::add(&mut m, c);
                        }
                        m
                    } else {
                        let mut v = g.h_value.take().unwrap_or_default();
                        hist::div(&mut v, g.count);
                        if let Some(mut c) = g.h_kahan_c.take() {
                            hist::div(&mut c, g.count);
                            let _ = hist::add(&mut v, &c);
                        }
                        v
                    };
                    hist::compact(&mut v, 0);
                    hv = Some(v);
                } else if g.float_incremental {
                    g.float_value = g.float_mean + g.float_kahan_c;
                } else {
                    g.float_value = g.float_value / g.count + g.float_kahan_c / g.count;
                }
            }
            AggOp::Count => g.float_value = g.count,
            AggOp::Stdvar => g.float_value /= g.count,
            AggOp::Stddev => g.float_value = (g.float_value / g.count).sqrt(),
            AggOp::Quantile => {
                g.float_value = quantile(q, &mut g.heap.iter().map(|e| e.f).collect::<Vec<_>>())
            }
            AggOp::Sum => {
                if g.has_float && g.has_histogram {
                    annotate(Annotation::mixed_floats_histograms_agg(pos));
                    continue;
                }
                if g.incompatible {
                    continue;
                }
                if g.has_histogram {
                    let mut v = g.h_value.take().unwrap_or_default();
                    if let Some(c) = &g.h_kahan_c {
                        let _ = hist::add(&mut v, c);
                    }
                    hist::compact(&mut v, 0);
                    hv = Some(v);
                } else {
                    g.float_value += g.float_kahan_c;
                }
            }
            _ => {}
        }
        if g.counter_reset_seen && g.not_counter_reset_seen {
            annotate(Annotation::counter_reset_collision(pos, HistogramOp::Agg));
        }
        let s = &mut result[ri];
        push_point(s, ts, g.float_value, hv.map(Arc::new), num_steps);
        s.drop_name = g.drop_name;
    }
}

/// One histogram step of `avg`: direct Kahan sum while it does not
/// overflow, incremental mean afterwards. Returns false to skip the sample.
fn avg_histogram(
    g: &mut Group,
    h: &FloatHistogram,
    annotate: &dyn Fn(Annotation),
    pos: usize,
    metric: &str,
) -> bool {
    if !g.h_incremental {
        let mut v = g.h_value.clone().unwrap_or_default();
        let c = g.h_kahan_c.clone();
        match hist::kahan_add(&mut v, h, c) {
            Err(_) => {
                annotate(Annotation::mixed_exponential_custom_histograms(metric, pos));
                g.incompatible = true;
                return false;
            }
            Ok((c, out)) => {
                if out.nhcb_reconciled {
                    annotate(Annotation::mismatched_custom_buckets(pos, HistogramOp::Agg));
                }
                if !hist::has_overflow(&v) {
                    g.h_value = Some(v);
                    g.h_kahan_c = Some(c);
                    return true;
                }
            }
        }
        g.h_incremental = true;
        let mut mean = g.h_value.clone().unwrap_or_default();
        hist::div(&mut mean, g.count - 1.0);
        g.h_mean = Some(mean);
        if let Some(c) = g.h_kahan_c.as_mut() {
            hist::div(c, g.count - 1.0);
        }
    }
    let q = (g.count - 1.0) / g.count;
    if let Some(c) = g.h_kahan_c.as_mut() {
        hist::mul(c, q);
    }
    let mut to_add = h.clone();
    hist::div(&mut to_add, g.count);
    let mut mean = g.h_mean.take().unwrap_or_default();
    hist::mul(&mut mean, q);
    match hist::kahan_add(&mut mean, &to_add, g.h_kahan_c.take()) {
        Ok((c, out)) => {
            g.h_kahan_c = Some(c);
            if out.nhcb_reconciled {
                annotate(Annotation::mismatched_custom_buckets(pos, HistogramOp::Agg));
            }
            g.h_mean = Some(mean);
            true
        }
        Err(_) => {
            annotate(Annotation::mixed_exponential_custom_histograms(metric, pos));
            g.incompatible = true;
            false
        }
    }
}

/// Heap order used by topk (smallest on top; NaN counts as smallest).
fn less_topk(a: f64, b: f64) -> bool {
    if a.is_nan() {
        return true;
    }
    a < b
}

/// Heap order used by bottomk (largest on top; NaN counts as largest).
fn less_bottomk(a: f64, b: f64) -> bool {
    if a.is_nan() {
        return true;
    }
    a > b
}

/// A binary heap over `Elem`s with Go's `container/heap` algorithms, so that
/// equal values come out in the same order as in Prometheus.
struct GoHeap {
    items: Vec<Elem>,
    less: fn(f64, f64) -> bool,
}

impl GoHeap {
    fn less(&self, i: usize, j: usize) -> bool {
        (self.less)(self.items[i].f, self.items[j].f)
    }
    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let i = (j - 1) / 2;
            if i == j || !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            j = i;
        }
    }
    fn down(&mut self, i0: usize, n: usize) -> bool {
        let mut i = i0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            let j2 = j1 + 1;
            if j2 < n && self.less(j2, j1) {
                j = j2;
            }
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            i = j;
        }
        i > i0
    }
    fn push(&mut self, e: Elem) {
        self.items.push(e);
        let n = self.items.len() - 1;
        self.up(n);
    }
    fn fix(&mut self, i: usize) {
        let n = self.items.len();
        if !self.down(i, n) {
            self.up(i);
        }
    }
}

/// Go's `sort.Sort` is not stable; Prometheus's topk/bottomk output order
/// for equal values follows its pdqsort. We sort with the same comparison,
/// breaking ties by heap position, which matches for the common cases.
fn sort_desc_by(items: &mut [Elem], less: fn(f64, f64) -> bool) {
    items.sort_by(|a, b| {
        if less(b.f, a.f) {
            Ordering::Less
        } else if less(a.f, b.f) {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    });
}

/// The hash-based offset deciding which series `limit_ratio` keeps.
fn ratio_offset(ls: &Labels) -> f64 {
    crate::functions::labels_hash(ls) as f64 / u64::MAX as f64
}

fn add_ratio_sample(ratio: f64, ls: &Labels) -> bool {
    let off = ratio_offset(ls);
    (ratio >= 0.0 && off < ratio) || (ratio < 0.0 && off >= 1.0 + ratio)
}

#[allow(clippy::too_many_arguments)]
fn aggregate_k(
    a: &Aggregate,
    param: f64,
    input: &Matrix,
    values: &[(usize, f64, Option<Arc<FloatHistogram>>)],
    series_to_group: &[usize],
    num_groups: usize,
    ev: &Evaluator,
    expr_pos: usize,
) -> Vector {
    let op = a.op;
    let k = match op {
        AggOp::TopK | AggOp::BottomK | AggOp::LimitK => (param as i64).min(input.len() as i64),
        _ => 0,
    };
    let ratio = param.clamp(-1.0, 1.0);
    if matches!(op, AggOp::TopK | AggOp::BottomK | AggOp::LimitK) && k < 1 && !values.is_empty() {
        return Vec::new();
    }
    if op == AggOp::LimitRatio && param == 0.0 && !values.is_empty() {
        return Vec::new();
    }
    let less = if op == AggOp::BottomK {
        less_bottomk
    } else {
        less_topk
    };
    let mut heaps: Vec<Option<GoHeap>> = (0..num_groups).map(|_| None).collect();
    let mut order: Vec<usize> = Vec::new();
    for (si, f, h) in values {
        let s = Elem {
            metric: input[*si].metric.clone(),
            t: 0,
            f: *f,
            h: h.clone(),
            drop_name: input[*si].drop_name,
        };
        let gi = series_to_group[*si];
        let heap = &mut heaps[gi];
        if heap.is_none() {
            let mut hp = GoHeap {
                items: Vec::new(),
                less,
            };
            let mut seen = true;
            match op {
                AggOp::LimitRatio if add_ratio_sample(ratio, &s.metric) => hp.push(s),
                AggOp::LimitK => hp.items.push(s),
                AggOp::TopK | AggOp::BottomK => {
                    if s.h.is_some() {
                        seen = false;
                        ev.q.annotate(Annotation::histogram_ignored_in_aggregation(op.as_str(), a.pos));
                    } else {
                        hp.push(s);
                    }
                }
                _ => {}
            }
            if seen {
                order.push(gi);
                *heap = Some(hp);
            }
            continue;
        }
        let Some(hp) = heap.as_mut() else { continue };
        match op {
            AggOp::TopK | AggOp::BottomK => {
                if s.h.is_some() {
                    ev.q.annotate(Annotation::histogram_ignored_in_aggregation(op.as_str(), a.pos));
                } else if (hp.items.len() as i64) < k {
                    hp.push(s);
                } else {
                    let top = hp.items[0].f;
                    let replace = if op == AggOp::TopK {
                        top < s.f || (top.is_nan() && !s.f.is_nan())
                    } else {
                        top > s.f || (top.is_nan() && !s.f.is_nan())
                    };
                    if replace {
                        hp.items[0] = s;
                        if k > 1 {
                            hp.fix(0);
                        }
                    }
                }
            }
            AggOp::LimitK if (hp.items.len() as i64) < k => hp.push(s),
            AggOp::LimitRatio if add_ratio_sample(ratio, &s.metric) => hp.push(s),
            _ => {}
        }
    }
    let _ = expr_pos;
    let mut out = Vec::new();
    // Groups are emitted in the order of their first appearance (Prometheus
    // iterates groups by index, which is the order of first appearance in
    // the input matrix, including groups without a sample at this step).
    let mut seen_groups: Vec<usize> = order;
    seen_groups.sort_unstable();
    for gi in seen_groups {
        let Some(hp) = heaps[gi].take() else { continue };
        let mut items = hp.items;
        match op {
            AggOp::TopK => sort_desc_by(&mut items, less_topk),
            AggOp::BottomK => sort_desc_by(&mut items, less_bottomk),
            _ => {}
        }
        out.extend(items);
    }
    out
}
