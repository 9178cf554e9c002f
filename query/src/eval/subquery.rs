//! Subqueries and step-invariant subtrees.

use std::sync::Arc;

use fenghuo_storage_api::model::{CounterResetHint, HistogramSample, Sample};

use super::{EvalValue, Evaluator, Matrix, hist_size};
use crate::error::QueryError;
use crate::plan::{Node, Subquery};

impl Evaluator<'_, '_> {
    /// The time range and step of a subquery's own evaluation: aligned to
    /// multiples of its step, ending at the parent's last step (or `@`).
    pub(crate) fn subquery_range(&self, sq: &Subquery) -> (i64, i64, i64) {
        let interval = sq.step.max(1);
        let (base_start, base_end) = match sq.at {
            Some(at) => (at, at),
            None => {
                let end = if self.interval > 0 {
                    self.start + ((self.end - self.start) / self.interval) * self.interval
                } else {
                    self.end
                };
                (self.start, end)
            }
        };
        let end = base_end - sq.offset;
        let lower = base_start - sq.offset - sq.range;
        let mut start = interval * (lower / interval);
        if start <= lower {
            start += interval;
        }
        (start, end, interval)
    }

    /// Runs the subquery's inner expression over its own range.
    fn run_subquery(&mut self, sq: &Subquery) -> Result<Matrix, QueryError> {
        let (start, end, interval) = self.subquery_range(sq);
        let mut child = self.child(start, end, interval);
        let res = child.eval(&sq.expr)?.into_matrix();
        self.current_samples = child.current_samples;
        Ok(res)
    }

    /// A subquery used as a value (an instant query returning a range vector).
    pub(crate) fn eval_subquery_value(&mut self, sq: &Subquery) -> Result<Matrix, QueryError> {
        self.run_subquery(sq)
    }

    /// A subquery used as the range argument of a function: its result,
    /// with explicit counter-reset hints cleared (a subquery may skip or
    /// repeat the sample that carried them).
    pub(crate) fn eval_subquery_for_call(&mut self, sq: &Subquery) -> Result<Matrix, QueryError> {
        let mut mat = self.run_subquery(sq)?;
        for s in mat.iter_mut() {
            for p in s.hists.iter_mut() {
                if matches!(
                    p.h.counter_reset_hint,
                    CounterResetHint::NotCounterReset | CounterResetHint::CounterReset
                ) {
                    let mut h = (*p.h).clone();
                    h.counter_reset_hint = CounterResetHint::Unknown;
                    p.h = Arc::new(h);
                }
            }
            s.floats
                .retain(|p| !fenghuo_storage_api::model::is_stale_nan(p.v));
        }
        Ok(mat)
    }

    /// Evaluates a step-invariant subtree once at the start time and
    /// repeats its value at every step.
    pub(crate) fn eval_step_invariant(&mut self, inner: &Node) -> Result<EvalValue, QueryError> {
        let mut child = self.child(self.start, self.start, self.interval);
        let res = child.eval(inner)?;
        self.current_samples = child.current_samples;
        if matches!(inner, Node::Matrix { .. } | Node::Subquery(_)) {
            return Ok(res);
        }
        let mut mat = match res {
            EvalValue::Str(s) => return Ok(EvalValue::Str(s)),
            EvalValue::Matrix(m) => m,
        };
        if self.end == self.start {
            return Ok(EvalValue::Matrix(mat));
        }
        let extra: Vec<i64> = self.steps().skip(1).collect();
        for s in mat.iter_mut() {
            if let Some(p) = s.floats.first().copied() {
                s.floats.reserve(extra.len());
                for &ts in &extra {
                    s.floats.push(Sample { t: ts, v: p.v });
                }
                self.add_samples(extra.len())?;
            } else if let Some(p) = s.hists.first().cloned() {
                s.hists.reserve(extra.len());
                for &ts in &extra {
                    s.hists.push(HistogramSample {
                        t: ts,
                        h: p.h.clone(),
                    });
                }
                self.add_samples(extra.len() * hist_size(&p.h))?;
            }
        }
        Ok(EvalValue::Matrix(mat))
    }
}
