//! Function calls: functions over instant vectors run per step through
//! `range_eval`; functions over a range vector (a range selector or a
//! subquery) run per series and step over the window `(t - range, t]`.

use std::collections::HashSet;
use std::sync::Arc;

use fenghuo_storage_api::model::{HistogramSample, Labels, Sample};

use super::selectors::{lookup, window};
use super::{EvalValue, Evaluator, Matrix, Series, hist_size};
use crate::annotations::Annotation;
use crate::error::QueryError;
use crate::functions::{self, FnCtx, Impl, Window};
use crate::plan::{Call, Node};

impl Evaluator<'_, '_> {
    pub(crate) fn eval_call(&mut self, c: &Call) -> Result<EvalValue, QueryError> {
        let name = c.name;
        if matches!(name, "timestamp" | "start_timestamp")
            && let Some(Node::Vector(sel)) = c.args.first()
        {
            return self.eval_timestamp_of_selector(c, sel).map(EvalValue::Matrix);
        }
        match name {
            "label_replace" => return self.eval_label_replace(c).map(EvalValue::Matrix),
            "label_join" => return self.eval_label_join(c).map(EvalValue::Matrix),
            "info" => return self.eval_info(c).map(EvalValue::Matrix),
            _ => {}
        }
        let imp = functions::lookup(name)
            .ok_or_else(|| QueryError::exec(format!("unknown function with name \"{name}\"")))?;
        if matches!(
            name,
            "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc"
        ) && self.start != self.end
        {
            self.q.annotate(Annotation::sort_in_range_query(c.pos));
        }
        let matrix_arg = c
            .args
            .iter()
            .position(|a| matches!(a, Node::Matrix { .. } | Node::Subquery(_)));
        match (imp, matrix_arg) {
            (Impl::Vector(f), None) | (Impl::Vector(f), Some(_)) => {
                let args: Vec<&Node> = c.args.iter().collect();
                let q = self.q;
                self.range_eval(None, &args, |v, _, sc| {
                    let ctx = FnCtx {
                        name: c.name,
                        ts: sc.ts,
                        args: &c.args,
                        q,
                        call_pos: c.pos,
                    };
                    f(v, &ctx)
                })
                .map(EvalValue::Matrix)
            }
            (Impl::Range(f), Some(mi)) => self.eval_range_call(c, f, mi).map(EvalValue::Matrix),
            (Impl::Range(_), None) => Err(QueryError::exec(format!("function {name} needs a range vector"))),
        }
    }

    fn eval_range_call(&mut self, c: &Call, f: functions::RangeFn, mi: usize) -> Result<Matrix, QueryError> {
        // Scalar arguments, one value per step.
        let steps: Vec<i64> = self.steps().collect();
        let mut scalars: Vec<Vec<f64>> = Vec::new();
        for (i, a) in c.args.iter().enumerate() {
            if i == mi {
                continue;
            }
            let m = self.eval(a)?.into_matrix();
            let vals = match m.first() {
                Some(s) if s.floats.len() == steps.len() => s.floats.iter().map(|p| p.v).collect(),
                Some(s) => steps
                    .iter()
                    .map(|ts| s.floats.iter().find(|p| p.t == *ts).map_or(0.0, |p| p.v))
                    .collect(),
                None => vec![0.0; steps.len()],
            };
            scalars.push(vals);
        }
        let subquery_data;
        let (series, range, offset, at, anchored, smoothed): (&[Series], i64, i64, Option<i64>, bool, bool) =
            match &c.args[mi] {
                Node::Matrix { sel, range } => (
                    &self.q.range_data[sel.id],
                    *range,
                    sel.offset,
                    sel.at,
                    sel.anchored,
                    sel.smoothed,
                ),
                Node::Subquery(sq) => {
                    subquery_data = self.eval_subquery_for_call(sq)?;
                    (&subquery_data, sq.range, sq.offset, sq.at, false, false)
                }
                _ => return Err(QueryError::exec("expected a range vector argument")),
            };
        let name = c.name;
        if anchored && !matches!(name, "changes" | "delta" | "increase" | "rate" | "resets") {
            return Err(QueryError::exec(format!(
                "anchored modifier can only be used with: changes, delta, increase, rate, resets - not with {name}"
            )));
        }
        if smoothed && !matches!(name, "delta" | "increase" | "rate") {
            return Err(QueryError::exec(format!(
                "smoothed modifier can only be used with: delta, increase, rate - not with {name}"
            )));
        }
        let lookback = self.q.lookback;
        let keeps_name = matches!(name, "last_over_time" | "first_over_time");
        let num_steps = steps.len();
        let mut out: Matrix = Vec::with_capacity(series.len());
        let mut step_scalars = vec![0.0; scalars.len()];
        for s in series {
            self.q.check_deadline()?;
            let mut res = Series::new(s.metric.clone());
            res.drop_name = !keeps_name || s.drop_name;
            for (step, &ts) in steps.iter().enumerate() {
                for (j, sv) in scalars.iter().enumerate() {
                    step_scalars[j] = sv[step];
                }
                let maxt = at.unwrap_or(ts) - offset;
                let mint = maxt - range;
                // Extended selectors also see the samples around the window.
                let (wmin, wmax) = match (anchored, smoothed) {
                    (true, _) => (mint - lookback, maxt),
                    (_, true) => (mint - lookback, maxt + lookback),
                    _ => (mint, maxt),
                };
                let (floats, hists) = window(s, wmin, wmax);
                if floats.is_empty() && hists.is_empty() {
                    continue;
                }
                let wsize = floats.len() + hists.iter().map(|h| hist_size(&h.h)).sum::<usize>();
                if self.current_samples + wsize > self.q.max_samples {
                    return Err(super::too_many_samples());
                }
                if self.current_samples + wsize > self.q.peak_samples.get() {
                    self.q.peak_samples.set(self.current_samples + wsize);
                }
                let w = Window {
                    metric: &s.metric,
                    floats,
                    hists,
                    range_start: mint,
                    range_end: maxt,
                    range,
                    anchored,
                    smoothed,
                };
                let ctx = FnCtx {
                    name,
                    ts,
                    args: &c.args,
                    q: self.q,
                    call_pos: c.pos,
                };
                if let Some((v, h)) = f(&w, &step_scalars, &ctx)? {
                    match h {
                        Some(h) => {
                            if res.hists.capacity() == 0 {
                                res.hists.reserve(num_steps.min(5000));
                            }
                            res.hists.push(HistogramSample { t: ts, h });
                        }
                        None => {
                            if res.floats.capacity() == 0 {
                                res.floats.reserve(num_steps.min(5000));
                            }
                            res.floats.push(Sample { t: ts, v });
                        }
                    }
                }
            }
            if !res.floats.is_empty() || !res.hists.is_empty() {
                let n = res.total_samples();
                self.add_samples(n)?;
                if matches!(name, "rate" | "increase")
                    && !res.floats.is_empty()
                    && let Some(metric) = s.metric.metric_name()
                    && !metric.ends_with("_total")
                    && !metric.ends_with("_sum")
                    && !metric.ends_with("_count")
                    && !metric.ends_with("_bucket")
                {
                    self.q
                        .annotate(Annotation::possible_non_counter(metric, c.args[mi].pos()));
                }
                out.push(res);
            } else if matches!(name, "rate" | "increase") {
                // Nothing to annotate without output.
            }
        }

        if name == "absent_over_time" {
            return Ok(absent_over_time(&out, &steps, &c.args[mi]));
        }
        Ok(out)
    }

    /// `timestamp(v)` / `start_timestamp(v)` directly over a selector: the
    /// timestamp of the sample the selector picks, not the step time.
    fn eval_timestamp_of_selector(
        &mut self,
        c: &Call,
        sel: &crate::plan::Selector,
    ) -> Result<Matrix, QueryError> {
        let series = &self.q.data[sel.id];
        let lookback = self.q.lookback;
        let start_ts = c.name == "start_timestamp";
        self.range_eval(None, &[], |_, _, sc| {
            // With `@`, Prometheus looks up at the `@` time (ignoring offset).
            let ref_time = match sel.at {
                Some(at) => at,
                None => sc.ts - sel.offset,
            };
            let mut vec = Vec::with_capacity(series.len());
            if start_ts {
                // No start timestamps are stored: nothing to return.
                return Ok(vec);
            }
            for s in series {
                let Some((t, _, _)) = lookup(s, ref_time, lookback) else {
                    continue;
                };
                let mut e = super::Elem::float(s.metric.clone(), t as f64 / 1000.0);
                e.drop_name = true;
                vec.push(e);
            }
            Ok(vec)
        })
    }
}

/// Labels `absent()`/`absent_over_time()` give their result: the equality
/// matchers of the selector (a label matched twice is left out).
pub(crate) fn absent_labels(arg: &Node) -> Labels {
    let sel = match arg.unwrapped() {
        Node::Vector(s) | Node::Matrix { sel: s, .. } => s,
        _ => return Labels::empty(),
    };
    let mut out = Labels::empty();
    let mut has: HashSet<&str> = HashSet::new();
    for m in sel.matchers() {
        if m.name == fenghuo_storage_api::model::METRIC_NAME {
            continue;
        }
        if m.op == fenghuo_storage_api::model::MatchOp::Equal && !has.contains(m.name.as_str()) {
            out.set(&m.name, &m.value);
            has.insert(&m.name);
        } else {
            out.remove(&m.name);
        }
    }
    out
}

fn absent_over_time(mat: &Matrix, steps: &[i64], arg: &Node) -> Matrix {
    let n = steps.len();
    if mat.iter().any(|s| s.floats.len() + s.hists.len() == n) {
        return Vec::new();
    }
    let mut found: HashSet<i64> = HashSet::new();
    for s in mat {
        found.extend(s.floats.iter().map(|p| p.t));
        found.extend(s.hists.iter().map(|p| p.t));
    }
    if found.len() == n {
        return Vec::new();
    }
    let mut out = Series::new(Arc::new(absent_labels(arg)));
    out.drop_name = true;
    out.floats = steps
        .iter()
        .filter(|t| !found.contains(t))
        .map(|&t| Sample { t, v: 1.0 })
        .collect();
    vec![out]
}
