//! Binary operators: scalar/scalar, vector/scalar and vector/vector with
//! vector matching (`on`, `ignoring`, `group_left`, `group_right`, `bool`,
//! fill modifiers, set operators).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use fenghuo_storage_api::model::{CounterResetHint, FloatHistogram, Labels, METRIC_NAME};
use promql_parser::parser::value::ValueType;

use super::{Elem, Evaluator, Matrix, Metric, StepCtx, Vector};
use crate::annotations::{Annotation, HistogramOp};
use crate::error::QueryError;
use crate::histogram::{self as hist, HistError};
use crate::plan::{BinOp, Binary, Card, VectorMatching};

impl Evaluator<'_, '_> {
    pub(crate) fn eval_binary(&mut self, b: &Binary) -> Result<Matrix, QueryError> {
        let lt = b.lhs.value_type();
        let rt = b.rhs.value_type();
        let pos = b.lhs.pos();
        let op = b.op;
        let return_bool = b.return_bool;
        match (lt, rt) {
            (ValueType::Scalar, ValueType::Scalar) => self.range_eval(None, &[&b.lhs, &b.rhs], |v, _, _| {
                let l = v[0].first().map_or(0.0, |e| e.f);
                let r = v[1].first().map_or(0.0, |e| e.f);
                Ok(vec![Elem::float(
                    Arc::new(Labels::empty()),
                    scalar_binop(op, l, r),
                )])
            }),
            (ValueType::Vector, ValueType::Vector) => {
                let matching = b.matching.clone().unwrap_or(VectorMatching {
                    card: Card::OneToOne,
                    on: false,
                    labels: Vec::new(),
                    include: Vec::new(),
                    fill_lhs: None,
                    fill_rhs: None,
                });
                let m = &matching;
                // Result label sets are reused from step to step, as Prometheus's per-node
                // helper does: the same input series give the same output series at every step.
                let mut metrics = ResultMetrics::default();
                self.range_eval(Some(m), &[&b.lhs, &b.rhs], |v, sigs, sc| match op {
                    BinOp::And => Ok(vector_and(&v[0], &v[1], &sigs[0], &sigs[1])),
                    BinOp::Or => Ok(vector_or(&v[0], &v[1], &sigs[0], &sigs[1])),
                    BinOp::Unless => Ok(vector_unless(&v[0], &v[1], &sigs[0], &sigs[1])),
                    _ => {
                        let sides = Sides {
                            lhs: &v[0],
                            rhs: &v[1],
                            lsig: &sigs[0],
                            rsig: &sigs[1],
                        };
                        vector_binop(op, sides, m, return_bool, pos, sc, &mut metrics)
                    }
                })
            }
            (ValueType::Vector, ValueType::Scalar) => self.range_eval(None, &[&b.lhs, &b.rhs], |v, _, sc| {
                let r = v[1].first().map_or(0.0, |e| e.f);
                Ok(vector_scalar_binop(op, &v[0], r, false, return_bool, pos, sc))
            }),
            (ValueType::Scalar, ValueType::Vector) => self.range_eval(None, &[&b.lhs, &b.rhs], |v, _, sc| {
                let l = v[0].first().map_or(0.0, |e| e.f);
                Ok(vector_scalar_binop(op, &v[1], l, true, return_bool, pos, sc))
            }),
            _ => Err(QueryError::exec(
                "binary expression must contain only scalar and instant vector types",
            )),
        }
    }
}

pub(crate) fn scalar_binop(op: BinOp, l: f64, r: f64) -> f64 {
    let b = |x: bool| if x { 1.0 } else { 0.0 };
    match op {
        BinOp::Add => l + r,
        BinOp::Sub => l - r,
        BinOp::Mul => l * r,
        BinOp::Div => l / r,
        BinOp::Pow => l.powf(r),
        BinOp::Mod => go_mod(l, r),
        BinOp::Eql => b(l == r),
        BinOp::Neq => b(l != r),
        BinOp::Gtr => b(l > r),
        BinOp::Lss => b(l < r),
        BinOp::Gte => b(l >= r),
        BinOp::Lte => b(l <= r),
        BinOp::Atan2 => l.atan2(r),
        BinOp::And | BinOp::Or | BinOp::Unless | BinOp::TrimUpper | BinOp::TrimLower => f64::NAN,
    }
}

/// Go's `math.Mod`: the result has the sign of `x`.
pub(crate) fn go_mod(x: f64, y: f64) -> f64 {
    x % y
}

/// Result of one element-wise operation.
struct ElemResult {
    f: f64,
    h: Option<Arc<FloatHistogram>>,
    keep: bool,
}

/// Prometheus's `vectorElemBinop`. Annotations go straight to the context.
#[allow(clippy::too_many_arguments)]
fn elem_binop(
    op: BinOp,
    l: f64,
    r: f64,
    hl: Option<&Arc<FloatHistogram>>,
    hr: Option<&Arc<FloatHistogram>>,
    pos: usize,
    vector_vector: bool,
    sc: &StepCtx,
) -> Option<ElemResult> {
    let incompatible = |lt: &str, rt: &str| {
        sc.q.annotate(Annotation::incompatible_types_in_binop(lt, op.as_str(), rt, pos));
        None
    };
    match (hl, hr) {
        (None, None) => {
            let (f, keep) = match op {
                BinOp::Add => (l + r, true),
                BinOp::Sub => (l - r, true),
                BinOp::Mul => (l * r, true),
                BinOp::Div => (l / r, true),
                BinOp::Pow => (l.powf(r), true),
                BinOp::Mod => (go_mod(l, r), true),
                BinOp::Eql => (l, l == r),
                BinOp::Neq => (l, l != r),
                BinOp::Gtr => (l, l > r),
                BinOp::Lss => (l, l < r),
                BinOp::Gte => (l, l >= r),
                BinOp::Lte => (l, l <= r),
                BinOp::Atan2 => (l.atan2(r), true),
                BinOp::TrimUpper | BinOp::TrimLower => return incompatible("float", "float"),
                BinOp::And | BinOp::Or | BinOp::Unless => return None,
            };
            Some(ElemResult { f, h: None, keep })
        }
        (None, Some(hr)) => match op {
            BinOp::Mul => {
                let mut h = (**hr).clone();
                hist::mul(&mut h, l);
                hist::compact(&mut h, 0);
                Some(ElemResult {
                    f: 0.0,
                    h: Some(Arc::new(h)),
                    keep: true,
                })
            }
            _ => incompatible("float", "histogram"),
        },
        (Some(hl), None) => match op {
            BinOp::TrimUpper | BinOp::TrimLower => {
                let mut h = (**hl).clone();
                hist::trim_buckets(&mut h, r, op == BinOp::TrimUpper);
                Some(ElemResult {
                    f: 0.0,
                    h: Some(Arc::new(h)),
                    keep: true,
                })
            }
            BinOp::Mul | BinOp::Div => {
                let mut h = (**hl).clone();
                if op == BinOp::Mul {
                    hist::mul(&mut h, r);
                } else {
                    hist::div(&mut h, r);
                }
                hist::compact(&mut h, 0);
                Some(ElemResult {
                    f: 0.0,
                    h: Some(Arc::new(h)),
                    keep: true,
                })
            }
            _ => incompatible("histogram", "float"),
        },
        (Some(hl), Some(hr)) => match op {
            BinOp::Add | BinOp::Sub => {
                let mut h = (**hl).clone();
                let res = if op == BinOp::Add {
                    hist::add(&mut h, hr)
                } else {
                    hist::sub(&mut h, hr)
                };
                let hop = if op == BinOp::Add {
                    HistogramOp::Add
                } else {
                    HistogramOp::Sub
                };
                match res {
                    Err(HistError::IncompatibleSchema) => {
                        sc.q.annotate(Annotation::incompatible_bucket_layout_in_binop(op.as_str(), pos));
                        None
                    }
                    Ok(out) => {
                        if op == BinOp::Sub {
                            h.counter_reset_hint = CounterResetHint::Gauge;
                        }
                        if out.counter_reset_collision {
                            sc.q.annotate(Annotation::counter_reset_collision(pos, hop));
                            // Prometheus drops the element when the warning
                            // comes from a vector/vector operation.
                            if vector_vector {
                                return None;
                            }
                        }
                        if out.nhcb_reconciled {
                            sc.q.annotate(Annotation::mismatched_custom_buckets(pos, hop));
                        }
                        hist::compact(&mut h, 0);
                        Some(ElemResult {
                            f: 0.0,
                            h: Some(Arc::new(h)),
                            keep: true,
                        })
                    }
                }
            }
            BinOp::Eql => Some(ElemResult {
                f: 0.0,
                h: Some(hl.clone()),
                keep: hist::equals(hl, hr),
            }),
            BinOp::Neq => Some(ElemResult {
                f: 0.0,
                h: Some(hl.clone()),
                keep: !hist::equals(hl, hr),
            }),
            _ => incompatible("histogram", "histogram"),
        },
    }
}

fn vector_scalar_binop(
    op: BinOp,
    lhs: &Vector,
    scalar: f64,
    swap: bool,
    return_bool: bool,
    pos: usize,
    sc: &StepCtx,
) -> Vector {
    let mut out = Vec::with_capacity(lhs.len());
    for e in lhs {
        let (mut lf, mut rf) = (e.f, scalar);
        let (mut lh, mut rh) = (e.h.as_ref(), None);
        if swap {
            std::mem::swap(&mut lf, &mut rf);
            std::mem::swap(&mut lh, &mut rh);
        }
        let Some(mut res) = elem_binop(op, lf, rf, lh, rh, pos, false, sc) else {
            continue;
        };
        // A comparison keeps the vector element's value even when the
        // scalar is on the left.
        if op.is_comparison() && swap {
            res.f = rf;
            res.h = rh.cloned();
        }
        if return_bool {
            res.f = if res.keep { 1.0 } else { 0.0 };
            res.keep = true;
        }
        if res.keep {
            let mut s = e.clone();
            s.f = res.f;
            s.h = res.h;
            if op.changes_metric_schema() || return_bool {
                s.drop_name = true;
            }
            out.push(s);
        }
    }
    out
}

fn vector_and(lhs: &Vector, rhs: &Vector, lsig: &[usize], rsig: &[usize]) -> Vector {
    if lhs.is_empty() || rhs.is_empty() {
        return Vec::new();
    }
    let right: HashSet<usize> = rsig.iter().copied().collect();
    lhs.iter()
        .zip(lsig)
        .filter(|(_, s)| right.contains(s))
        .map(|(e, _)| e.clone())
        .collect()
}

fn vector_or(lhs: &Vector, rhs: &Vector, lsig: &[usize], rsig: &[usize]) -> Vector {
    if lhs.is_empty() {
        return rhs.clone();
    }
    if rhs.is_empty() {
        return lhs.clone();
    }
    let left: HashSet<usize> = lsig.iter().copied().collect();
    let mut out = lhs.clone();
    out.extend(
        rhs.iter()
            .zip(rsig)
            .filter(|(_, s)| !left.contains(s))
            .map(|(e, _)| e.clone()),
    );
    out
}

fn vector_unless(lhs: &Vector, rhs: &Vector, lsig: &[usize], rsig: &[usize]) -> Vector {
    if lhs.is_empty() || rhs.is_empty() {
        return lhs.clone();
    }
    let right: HashSet<usize> = rsig.iter().copied().collect();
    lhs.iter()
        .zip(lsig)
        .filter(|(_, s)| !right.contains(s))
        .map(|(e, _)| e.clone())
        .collect()
}

/// Labels used in error messages and fill samples (Prometheus's `MatchLabels`).
fn match_labels(ls: &Labels, on: bool, names: &[String]) -> Labels {
    Labels::from_sorted_unchecked(
        ls.iter()
            .filter(|l| {
                let listed = names.contains(&l.name);
                on == listed && (on || l.name != METRIC_NAME)
            })
            .cloned()
            .collect(),
    )
}

/// Label set of a one-to-one / many-to-one result element.
fn result_metric(lhs: &Labels, rhs: &Labels, op: BinOp, m: &VectorMatching) -> Labels {
    let mut out = if op.changes_metric_schema() {
        super::drop_metadata_labels(lhs)
    } else {
        lhs.clone()
    };
    if m.card == Card::OneToOne {
        out = if m.on {
            out.keep_only(&m.labels)
        } else {
            out.without(&m.labels)
        };
    }
    for name in &m.include {
        match rhs.get(name) {
            Some(v) if !v.is_empty() => {
                let v = v.to_string();
                out.set(name, &v);
            }
            _ => out.remove(name),
        }
    }
    out
}

/// The two operand vectors of one step and their series' join signatures.
struct Sides<'v> {
    lhs: &'v Vector,
    rhs: &'v Vector,
    lsig: &'v [usize],
    rsig: &'v [usize],
}

/// Result label sets by the identity of their input label sets, kept across the steps of a
/// range evaluation. Keys are the inputs' `Arc` addresses; the entry holds both inputs, so an
/// address is never reused for another label set while its entry exists.
#[derive(Default)]
struct ResultMetrics(HashMap<(usize, usize), (Metric, Metric, Metric)>);

impl ResultMetrics {
    /// Forgets everything once the entries far outnumber one step's elements: that happens when
    /// an operand's label sets are built anew at every step (nothing would ever hit), and the
    /// cache must not keep every step's label sets alive.
    fn bound(&mut self, step_elems: usize) {
        if self.0.len() > 4 * step_elems + 1024 {
            self.0.clear();
        }
    }

    fn get(&mut self, lhs: &Metric, rhs: &Metric, make: impl FnOnce() -> Labels) -> Metric {
        let key = (Arc::as_ptr(lhs) as usize, Arc::as_ptr(rhs) as usize);
        self.0
            .entry(key)
            .or_insert_with(|| (lhs.clone(), rhs.clone(), Arc::new(make())))
            .2
            .clone()
    }
}

fn vector_binop(
    op: BinOp,
    sides: Sides<'_>,
    m: &VectorMatching,
    return_bool: bool,
    pos: usize,
    sc: &StepCtx,
    metrics: &mut ResultMetrics,
) -> Result<Vector, QueryError> {
    let Sides { lhs, rhs, lsig, rsig } = sides;
    metrics.bound(lhs.len() + rhs.len());
    if (lhs.is_empty() && rhs.is_empty())
        || ((lhs.is_empty() || rhs.is_empty()) && m.fill_lhs.is_none() && m.fill_rhs.is_none())
    {
        return Ok(Vec::new());
    }
    // For one-to-many, swap sides so the "one" side is always on the right.
    // Like Prometheus, the fill values are not swapped.
    let swapped = m.card == Card::OneToMany;
    let (lhs, rhs, lsig, rsig) = if swapped {
        (rhs, lhs, rsig, lsig)
    } else {
        (lhs, rhs, lsig, rsig)
    };

    let mut right: HashMap<usize, &Elem> = HashMap::with_capacity(rhs.len());
    for (e, sig) in rhs.iter().zip(rsig) {
        if let Some(dup) = right.get(sig) {
            let one_side = if swapped { "left" } else { "right" };
            let matched = match_labels(&e.metric, m.on, &m.labels);
            let (mut d1, mut d2) = (e.metric.to_string(), dup.metric.to_string());
            if d1 > d2 {
                std::mem::swap(&mut d1, &mut d2);
            }
            return Err(QueryError::exec(format!(
                "found duplicate series for the match group {matched} on the {one_side} hand-side of the operation: [{d1}, {d2}];many-to-many matching not allowed: matching labels must be unique on one side"
            )));
        }
        right.insert(*sig, e);
    }

    let mut st = MatchState {
        op,
        m,
        return_bool,
        pos,
        swapped,
        metrics,
        matched_one: HashSet::new(),
        matched_many: HashMap::new(),
    };
    let mut out = Vec::new();
    for (ls, sig) in lhs.iter().zip(lsig) {
        match right.get(sig) {
            Some(rs) => st.apply(ls, rs, *sig, sc, true, &mut out)?,
            None => {
                let Some(fill) = m.fill_rhs else { continue };
                let rs = Elem::float(Arc::new(match_labels(&ls.metric, m.on, &m.labels)), fill);
                st.apply(ls, &rs, *sig, sc, false, &mut out)?;
            }
        }
    }
    if let Some(fill) = m.fill_lhs {
        for (rs, sig) in rhs.iter().zip(rsig) {
            let already = if m.card == Card::OneToOne {
                st.matched_one.contains(sig)
            } else {
                st.matched_many.get(sig).is_some_and(|s| !s.is_empty())
            };
            if already {
                continue;
            }
            let ls = Elem::float(Arc::new(match_labels(&rs.metric, m.on, &m.labels)), fill);
            st.apply(&ls, rs, *sig, sc, false, &mut out)?;
        }
    }
    Ok(out)
}

/// Bookkeeping of one vector/vector operation step.
struct MatchState<'m> {
    op: BinOp,
    m: &'m VectorMatching,
    return_bool: bool,
    pos: usize,
    swapped: bool,
    matched_one: HashSet<usize>,
    matched_many: HashMap<usize, HashSet<Labels>>,
    metrics: &'m mut ResultMetrics,
}

impl MatchState<'_> {
    fn apply(
        &mut self,
        ls: &Elem,
        rs: &Elem,
        sig: usize,
        sc: &StepCtx,
        reuse_metric: bool,
        out: &mut Vector,
    ) -> Result<(), QueryError> {
        let (mut fl, mut fr) = (ls.f, rs.f);
        let (mut hl, mut hr) = (ls.h.as_ref(), rs.h.as_ref());
        if self.swapped {
            std::mem::swap(&mut fl, &mut fr);
            std::mem::swap(&mut hl, &mut hr);
        }
        let Some(res) = elem_binop(self.op, fl, fr, hl, hr, self.pos, true, sc) else {
            return Ok(());
        };
        let (mut f, mut h, keep) = (res.f, res.h, res.keep);
        if self.return_bool {
            h = None;
            f = if keep { 1.0 } else { 0.0 };
        }
        let (op, m) = (self.op, self.m);
        let make = || result_metric(&ls.metric, &rs.metric, op, m);
        // A filled-in operand is built anew at every step, so its address identifies nothing.
        let metric = if reuse_metric {
            self.metrics.get(&ls.metric, &rs.metric, make)
        } else {
            Arc::new(make())
        };
        if m.card == Card::OneToOne {
            if !self.matched_one.insert(sig) {
                return Err(QueryError::exec(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                ));
            }
        } else if !self
            .matched_many
            .entry(sig)
            .or_default()
            .insert((*metric).clone())
        {
            return Err(QueryError::exec(
                "multiple matches for labels: grouping labels must ensure unique matches",
            ));
        }
        if !keep && !self.return_bool {
            return Ok(());
        }
        out.push(Elem {
            metric,
            t: sc.ts,
            f,
            h,
            drop_name: self.return_bool,
        });
        Ok(())
    }
}
