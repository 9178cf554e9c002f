//! Native-histogram arithmetic for PromQL, following Prometheus's
//! `model/histogram/float_histogram.go`: scaling, addition and subtraction
//! (with schema and zero-threshold reconciliation and custom-bucket
//! intersection), Kahan-compensated addition, compaction, equality and
//! counter-reset detection. Functions operate on the storage crate's
//! [`FloatHistogram`].

pub mod buckets;

use fenghuo_storage_api::model::{CounterResetHint, FloatHistogram};

use crate::kahan;
pub use buckets::{Bucket, BucketExt, all_buckets_reverse};
use buckets::{Sparse, bound_exponential, from_sparse, reduce, sparse};

/// Why two histograms cannot be combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HistError {
    /// One uses exponential buckets, the other custom buckets.
    #[error("cannot apply this operation on histograms with a mix of exponential and custom bucket schemas")]
    IncompatibleSchema,
}

/// Side facts of an addition or subtraction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddOutcome {
    /// One side said "counter reset", the other "not a counter reset".
    pub counter_reset_collision: bool,
    /// Custom bucket bounds differed and were intersected.
    pub nhcb_reconciled: bool,
}

/// Multiplies counts, sum and buckets by `f` (a negative factor makes it a gauge).
pub fn mul(h: &mut FloatHistogram, f: f64) {
    h.zero_count *= f;
    h.count *= f;
    h.sum *= f;
    h.positive_buckets.iter_mut().for_each(|b| *b *= f);
    h.negative_buckets.iter_mut().for_each(|b| *b *= f);
    if f < 0.0 {
        h.counter_reset_hint = CounterResetHint::Gauge;
    }
}

/// Divides by `f`; dividing by zero removes all buckets.
pub fn div(h: &mut FloatHistogram, f: f64) {
    h.zero_count /= f;
    h.count /= f;
    h.sum /= f;
    if f == 0.0 {
        h.positive_buckets.clear();
        h.negative_buckets.clear();
        h.positive_spans.clear();
        h.negative_spans.clear();
        return;
    }
    h.positive_buckets.iter_mut().for_each(|b| *b /= f);
    h.negative_buckets.iter_mut().for_each(|b| *b /= f);
    if f < 0.0 {
        h.counter_reset_hint = CounterResetHint::Gauge;
    }
}

/// Removes empty buckets and merges spans at most `max_empty` buckets apart.
pub fn compact(h: &mut FloatHistogram, max_empty: usize) {
    for positive in [true, false] {
        let (spans, buckets) = if positive {
            (&mut h.positive_spans, &mut h.positive_buckets)
        } else {
            (&mut h.negative_spans, &mut h.negative_buckets)
        };
        let s: Sparse = sparse(spans, buckets)
            .into_iter()
            .filter(|(_, c)| *c != 0.0)
            .collect();
        let (mut new_spans, mut new_buckets) = from_sparse(&s);
        if max_empty > 0 && new_spans.len() > 1 {
            // Re-insert small gaps as explicit empty buckets.
            let mut merged: Sparse = Vec::with_capacity(s.len());
            for w in s.iter() {
                if let Some(&(li, _)) = merged.last() {
                    let gap = (w.0 - li - 1) as usize;
                    if gap > 0 && gap <= max_empty {
                        for k in 1..=gap {
                            merged.push((li + k as i32, 0.0));
                        }
                    }
                }
                merged.push(*w);
            }
            (new_spans, new_buckets) = from_sparse(&merged);
        }
        *spans = new_spans;
        *buckets = new_buckets;
    }
}

/// Exact (bit-pattern) equality as Prometheus's `FloatHistogram.Equals`,
/// comparing bucket layouts after merging adjacent spans.
pub fn equals(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    if a.schema != b.schema || a.count.to_bits() != b.count.to_bits() || a.sum.to_bits() != b.sum.to_bits() {
        return false;
    }
    if a.uses_custom_buckets() && a.custom_values != b.custom_values {
        return false;
    }
    if a.zero_threshold != b.zero_threshold || a.zero_count.to_bits() != b.zero_count.to_bits() {
        return false;
    }
    let same = |x: Sparse, y: Sparse| {
        x.len() == y.len()
            && x.iter()
                .zip(y.iter())
                .all(|(p, q)| p.0 == q.0 && p.1.to_bits() == q.1.to_bits())
    };
    same(
        sparse(&a.positive_spans, &a.positive_buckets),
        sparse(&b.positive_spans, &b.positive_buckets),
    ) && same(
        sparse(&a.negative_spans, &a.negative_buckets),
        sparse(&b.negative_spans, &b.negative_buckets),
    )
}

/// Whether any field is infinite (an aggregation overflowed).
pub fn has_overflow(h: &FloatHistogram) -> bool {
    h.zero_count.is_infinite()
        || h.count.is_infinite()
        || h.sum.is_infinite()
        || h.positive_buckets.iter().any(|v| v.is_infinite())
        || h.negative_buckets.iter().any(|v| v.is_infinite())
        || h.custom_values.iter().any(|v| v.is_infinite())
}

/// Adjusts the receiver's counter-reset hint for an addition/subtraction.
fn adjust_counter_reset(h: &mut FloatHistogram, other: &FloatHistogram) -> bool {
    use CounterResetHint::*;
    match (h.counter_reset_hint, other.counter_reset_hint) {
        (a, b) if a == b => false,
        (Gauge, _) => false,
        (_, Gauge) => {
            h.counter_reset_hint = Gauge;
            false
        }
        (Unknown, _) => false,
        (_, Unknown) => {
            h.counter_reset_hint = Unknown;
            false
        }
        _ => {
            h.counter_reset_hint = Unknown;
            true
        }
    }
}

/// A copy at a lower (or equal) resolution. The counter-reset hint is not
/// kept, as in Prometheus's `CopyToSchema`.
pub fn copy_to_schema(h: &FloatHistogram, target: i32) -> FloatHistogram {
    if target == h.schema {
        return h.clone();
    }
    let (ps, pb) = from_sparse(&reduce(
        &sparse(&h.positive_spans, &h.positive_buckets),
        h.schema,
        target,
    ));
    let (ns, nb) = from_sparse(&reduce(
        &sparse(&h.negative_spans, &h.negative_buckets),
        h.schema,
        target,
    ));
    FloatHistogram {
        counter_reset_hint: CounterResetHint::Unknown,
        schema: target,
        zero_threshold: h.zero_threshold,
        zero_count: h.zero_count,
        count: h.count,
        sum: h.sum,
        positive_spans: ps,
        negative_spans: ns,
        positive_buckets: pb,
        negative_buckets: nb,
        custom_values: Vec::new(),
    }
}

/// What `h`'s zero count would be with a zero threshold of at least
/// `larger`, and the threshold actually needed (moved up to a bucket
/// boundary when `larger` falls inside a populated bucket).
fn zero_count_for_larger_threshold(
    h: &FloatHistogram,
    mut larger: f64,
    c: Option<&FloatHistogram>,
) -> (f64, f64, f64) {
    let mut c_zero = c.map_or(0.0, |c| c.zero_count);
    if larger == h.zero_threshold {
        return (h.zero_count, larger, c_zero);
    }
    let pos = sparse(&h.positive_spans, &h.positive_buckets);
    let neg = sparse(&h.negative_spans, &h.negative_buckets);
    let cpos = c.map(|c| c.positive_buckets.clone()).unwrap_or_default();
    let cneg = c.map(|c| c.negative_buckets.clone()).unwrap_or_default();
    let c_start = c_zero;
    'outer: loop {
        let mut zc = h.zero_count;
        c_zero = c_start;
        for (i, &(idx, count)) in pos.iter().enumerate() {
            let lower = bound_exponential(idx - 1, h.schema);
            let upper = bound_exponential(idx, h.schema);
            if lower >= larger {
                break;
            }
            (zc, c_zero) = kahan::inc(count, zc, c_zero);
            if let Some(cv) = cpos.get(i) {
                (zc, c_zero) = kahan::inc(*cv, zc, c_zero);
            }
            if upper > larger {
                if count != 0.0 {
                    larger = upper;
                }
                break;
            }
        }
        for (i, &(idx, count)) in neg.iter().enumerate() {
            let upper = -bound_exponential(idx - 1, h.schema);
            let lower = -bound_exponential(idx, h.schema);
            if upper <= -larger {
                break;
            }
            (zc, c_zero) = kahan::inc(count, zc, c_zero);
            if let Some(cv) = cneg.get(i) {
                (zc, c_zero) = kahan::inc(*cv, zc, c_zero);
            }
            if lower < -larger {
                if count != 0.0 {
                    larger = -lower;
                    continue 'outer;
                }
                break;
            }
        }
        return (zc, larger, c_zero);
    }
}

/// Drops buckets that now lie inside the zero bucket, then all empty
/// buckets (Prometheus's `trimBucketsInZeroBucket`, which compacts).
fn trim_buckets_in_zero_bucket(h: &mut FloatHistogram, c: Option<&mut FloatHistogram>) {
    let zt = h.zero_threshold;
    let schema = h.schema;
    let mut pos = sparse(&h.positive_spans, &h.positive_buckets);
    let mut neg = sparse(&h.negative_spans, &h.negative_buckets);
    let (mut cpos, mut cneg) = match &c {
        Some(c) => (c.positive_buckets.clone(), c.negative_buckets.clone()),
        None => (Vec::new(), Vec::new()),
    };
    for (i, b) in pos.iter_mut().enumerate() {
        if bound_exponential(b.0 - 1, schema) >= zt {
            break;
        }
        b.1 = 0.0;
        if let Some(cv) = cpos.get_mut(i) {
            *cv = 0.0;
        }
    }
    for (i, b) in neg.iter_mut().enumerate() {
        if -bound_exponential(b.0 - 1, schema) <= -zt {
            break;
        }
        b.1 = 0.0;
        if let Some(cv) = cneg.get_mut(i) {
            *cv = 0.0;
        }
    }
    let keep = |s: &Sparse, cs: &[f64]| -> (Sparse, Vec<f64>) {
        let mut out = Vec::new();
        let mut cout = Vec::new();
        for (i, b) in s.iter().enumerate() {
            let cv = cs.get(i).copied().unwrap_or(0.0);
            if b.1 != 0.0 || cv != 0.0 {
                out.push(*b);
                cout.push(cv);
            }
        }
        (out, cout)
    };
    let (pos, cpos) = keep(&pos, &cpos);
    let (neg, cneg) = keep(&neg, &cneg);
    (h.positive_spans, h.positive_buckets) = from_sparse(&pos);
    (h.negative_spans, h.negative_buckets) = from_sparse(&neg);
    if let Some(c) = c {
        c.positive_spans = h.positive_spans.clone();
        c.negative_spans = h.negative_spans.clone();
        c.positive_buckets = cpos;
        c.negative_buckets = cneg;
    }
}

/// Makes both zero buckets equally wide: widens `h`'s in place and returns
/// what `other`'s zero count (and its compensation) would be.
fn reconcile_zero_buckets(
    h: &mut FloatHistogram,
    other: &FloatHistogram,
    mut c: Option<&mut FloatHistogram>,
) -> (f64, f64) {
    let mut other_zc = other.zero_count;
    let mut other_zt = other.zero_threshold;
    let mut other_czc = 0.0;
    let mut guard = 0;
    while other_zt != h.zero_threshold && guard < 64 {
        guard += 1;
        if h.zero_threshold > other_zt {
            (other_zc, other_zt, other_czc) = zero_count_for_larger_threshold(other, h.zero_threshold, None);
        }
        if other_zt > h.zero_threshold {
            let (zc, zt, czc) = zero_count_for_larger_threshold(h, other_zt, c.as_deref());
            h.zero_count = zc;
            h.zero_threshold = zt;
            if let Some(c) = c.as_deref_mut() {
                c.zero_count = czc;
            }
            trim_buckets_in_zero_bucket(h, c.as_deref_mut());
        }
    }
    (other_zc, other_czc)
}

/// Adds (or subtracts) the buckets of `b` into `a`, skipping buckets of `b`
/// whose upper bound is at most `threshold` (they are in the zero bucket).
fn add_sparse(
    a: &Sparse,
    b: &Sparse,
    negative: bool,
    schema: i32,
    threshold: f64,
    exponential: bool,
) -> Sparse {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    let mut skipping = true;
    let b_iter: Vec<(i32, f64)> = b
        .iter()
        .copied()
        .filter(|&(idx, _)| {
            if skipping && exponential && bound_exponential(idx, schema) <= threshold {
                return false;
            }
            skipping = false;
            true
        })
        .map(|(idx, c)| (idx, if negative { -c } else { c }))
        .collect();
    while i < a.len() || j < b_iter.len() {
        match (a.get(i), b_iter.get(j)) {
            (Some(&x), Some(&y)) if x.0 == y.0 => {
                out.push((x.0, x.1 + y.1));
                i += 1;
                j += 1;
            }
            (Some(&x), Some(&y)) if x.0 < y.0 => {
                out.push(x);
                i += 1;
            }
            (Some(_), Some(&y)) => {
                out.push(y);
                j += 1;
            }
            (Some(&x), None) => {
                out.push(x);
                i += 1;
            }
            (None, Some(&y)) => {
                out.push(y);
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// Intersection of two sorted custom-bound lists.
fn intersect_bounds(a: &[f64], b: &[f64]) -> Vec<f64> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(a[i]);
            i += 1;
            j += 1;
        } else if a[i] < b[j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Maps custom-bucket counts onto the intersected bounds and adds them;
/// returns the summed buckets and their Kahan compensation.
fn add_mismatched_custom(
    negative: bool,
    a: &Sparse,
    a_bounds: &[f64],
    a_comp: Option<&[f64]>,
    b: &Sparse,
    b_bounds: &[f64],
    target: &[f64],
) -> (Sparse, Vec<f64>) {
    let mut sums = vec![0.0; target.len() + 1];
    let mut comps = vec![0.0; target.len() + 1];
    let mut map = |s: &Sparse, bounds: &[f64], neg: bool, comp: Option<&[f64]>| {
        let mut t = 0;
        for (k, &(idx, v)) in s.iter().enumerate() {
            let mut ti = sums.len() - 1;
            if (idx as usize) < bounds.len() && idx >= 0 {
                let src = bounds[idx as usize];
                while t < target.len() {
                    if target[t] >= src {
                        ti = t;
                        break;
                    }
                    t += 1;
                }
            }
            let v = if neg { -v } else { v };
            (sums[ti], comps[ti]) = kahan::inc(v, sums[ti], comps[ti]);
            if let Some(cv) = comp.and_then(|c| c.get(k)) {
                (sums[ti], comps[ti]) = kahan::inc(*cv, sums[ti], comps[ti]);
            }
        }
    };
    map(a, a_bounds, false, a_comp);
    map(b, b_bounds, negative, None);
    let mut out = Vec::new();
    let mut cout = Vec::new();
    for (i, (s, c)) in sums.into_iter().zip(comps).enumerate() {
        if s == 0.0 && c == 0.0 {
            continue;
        }
        out.push((i as i32, s));
        cout.push(c);
    }
    (out, cout)
}

fn add_or_sub(
    h: &mut FloatHistogram,
    other: &FloatHistogram,
    negative: bool,
) -> Result<AddOutcome, HistError> {
    if h.uses_custom_buckets() != other.uses_custom_buckets() {
        return Err(HistError::IncompatibleSchema);
    }
    let mut outcome = AddOutcome {
        counter_reset_collision: adjust_counter_reset(h, other),
        nhcb_reconciled: false,
    };
    let sign = if negative { -1.0 } else { 1.0 };
    if !h.uses_custom_buckets() {
        let (other_zc, _) = reconcile_zero_buckets(h, other, None);
        h.zero_count += sign * other_zc;
    }
    h.count += sign * other.count;
    h.sum += sign * other.sum;

    let hp = sparse(&h.positive_spans, &h.positive_buckets);
    let op = sparse(&other.positive_spans, &other.positive_buckets);
    if h.uses_custom_buckets() {
        if h.custom_values == other.custom_values {
            let s = add_sparse(&hp, &op, negative, h.schema, h.zero_threshold, false);
            (h.positive_spans, h.positive_buckets) = from_sparse(&s);
        } else {
            outcome.nhcb_reconciled = true;
            let target = intersect_bounds(&h.custom_values, &other.custom_values);
            let (s, _) = add_mismatched_custom(
                negative,
                &hp,
                &h.custom_values,
                None,
                &op,
                &other.custom_values,
                &target,
            );
            (h.positive_spans, h.positive_buckets) = from_sparse(&s);
            h.custom_values = target;
        }
        return Ok(outcome);
    }
    let mut hn = sparse(&h.negative_spans, &h.negative_buckets);
    let mut hp = hp;
    let mut op = op;
    let mut on = sparse(&other.negative_spans, &other.negative_buckets);
    if other.schema < h.schema {
        hp = reduce(&hp, h.schema, other.schema);
        hn = reduce(&hn, h.schema, other.schema);
        h.schema = other.schema;
    } else if other.schema > h.schema {
        op = reduce(&op, other.schema, h.schema);
        on = reduce(&on, other.schema, h.schema);
    }
    let p = add_sparse(&hp, &op, negative, h.schema, h.zero_threshold, true);
    let n = add_sparse(&hn, &on, negative, h.schema, h.zero_threshold, true);
    (h.positive_spans, h.positive_buckets) = from_sparse(&p);
    (h.negative_spans, h.negative_buckets) = from_sparse(&n);
    Ok(outcome)
}

/// `h += other` (Prometheus's `FloatHistogram.Add`).
pub fn add(h: &mut FloatHistogram, other: &FloatHistogram) -> Result<AddOutcome, HistError> {
    add_or_sub(h, other, false)
}

/// `h -= other` (Prometheus's `FloatHistogram.Sub`; the caller sets the gauge hint).
pub fn sub(h: &mut FloatHistogram, other: &FloatHistogram) -> Result<AddOutcome, HistError> {
    add_or_sub(h, other, true)
}

/// Kahan-compensated `h += other`. `c` is the compensation histogram
/// (created on first use); the updated compensation is returned.
pub fn kahan_add(
    h: &mut FloatHistogram,
    other: &FloatHistogram,
    c: Option<FloatHistogram>,
) -> Result<(FloatHistogram, AddOutcome), HistError> {
    if h.uses_custom_buckets() != other.uses_custom_buckets() {
        return Err(HistError::IncompatibleSchema);
    }
    let mut outcome = AddOutcome {
        counter_reset_collision: adjust_counter_reset(h, other),
        nhcb_reconciled: false,
    };
    let mut c = c.unwrap_or_else(|| FloatHistogram {
        counter_reset_hint: h.counter_reset_hint,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        custom_values: h.custom_values.clone(),
        positive_spans: h.positive_spans.clone(),
        negative_spans: h.negative_spans.clone(),
        positive_buckets: vec![0.0; h.positive_buckets.len()],
        negative_buckets: if h.uses_custom_buckets() {
            Vec::new()
        } else {
            vec![0.0; h.negative_buckets.len()]
        },
        ..Default::default()
    });
    if !h.uses_custom_buckets() {
        let (other_zc, other_czc) = reconcile_zero_buckets(h, other, Some(&mut c));
        (h.zero_count, c.zero_count) = kahan::inc(other_zc, h.zero_count, c.zero_count);
        (h.zero_count, c.zero_count) = kahan::inc(other_czc, h.zero_count, c.zero_count);
    }
    (h.count, c.count) = kahan::inc(other.count, h.count, c.count);
    (h.sum, c.sum) = kahan::inc(other.sum, h.sum, c.sum);

    let hp = sparse(&h.positive_spans, &h.positive_buckets);
    let cp = c.positive_buckets.clone();
    let op = sparse(&other.positive_spans, &other.positive_buckets);
    if h.uses_custom_buckets() {
        if h.custom_values == other.custom_values {
            let (s, cs) = kahan_add_sparse(&hp, &cp, &op, None, h.schema, 0.0, false);
            (h.positive_spans, h.positive_buckets) = from_sparse(&s);
            c.positive_buckets = cs;
        } else {
            outcome.nhcb_reconciled = true;
            let target = intersect_bounds(&h.custom_values, &other.custom_values);
            let (s, cs) = add_mismatched_custom(
                false,
                &hp,
                &h.custom_values,
                Some(&cp),
                &op,
                &other.custom_values,
                &target,
            );
            (h.positive_spans, h.positive_buckets) = from_sparse(&s);
            c.positive_buckets = cs;
            h.custom_values = target.clone();
            c.custom_values = target;
        }
        c.positive_spans = h.positive_spans.clone();
        return Ok((c, outcome));
    }
    let mut hp = hp;
    let mut hn = sparse(&h.negative_spans, &h.negative_buckets);
    let mut cp: Vec<f64> = cp;
    let mut cn = c.negative_buckets.clone();
    let mut op = op;
    let mut on = sparse(&other.negative_spans, &other.negative_buckets);
    let (mut ocp, mut ocn): (Option<Vec<f64>>, Option<Vec<f64>>) = (None, None);
    if other.schema < h.schema {
        (hp, cp) = kahan_reduce(&hp, &cp, h.schema, other.schema);
        (hn, cn) = kahan_reduce(&hn, &cn, h.schema, other.schema);
        h.schema = other.schema;
    } else if other.schema > h.schema {
        if !op.is_empty() {
            let (s, cs) = kahan_reduce(&op, &vec![0.0; op.len()], other.schema, h.schema);
            op = s;
            ocp = Some(cs);
        }
        if !on.is_empty() {
            let (s, cs) = kahan_reduce(&on, &vec![0.0; on.len()], other.schema, h.schema);
            on = s;
            ocn = Some(cs);
        }
    }
    let (p, pc) = kahan_add_sparse(&hp, &cp, &op, ocp.as_deref(), h.schema, h.zero_threshold, true);
    let (n, nc) = kahan_add_sparse(&hn, &cn, &on, ocn.as_deref(), h.schema, h.zero_threshold, true);
    (h.positive_spans, h.positive_buckets) = from_sparse(&p);
    (h.negative_spans, h.negative_buckets) = from_sparse(&n);
    c.positive_buckets = pc;
    c.negative_buckets = nc;
    c.schema = h.schema;
    c.zero_threshold = h.zero_threshold;
    c.positive_spans = h.positive_spans.clone();
    c.negative_spans = h.negative_spans.clone();
    Ok((c, outcome))
}

fn kahan_reduce(s: &Sparse, comp: &[f64], origin: i32, target: i32) -> (Sparse, Vec<f64>) {
    let mut out: Sparse = Vec::with_capacity(s.len());
    let mut cout: Vec<f64> = Vec::with_capacity(s.len());
    for (k, &(idx, v)) in s.iter().enumerate() {
        let t = buckets::target_idx(idx, origin, target);
        let cv = comp.get(k).copied().unwrap_or(0.0);
        match (out.last_mut(), cout.last_mut()) {
            (Some((li, lv)), Some(lc)) if *li == t => {
                (*lv, *lc) = kahan::inc(v, *lv, *lc);
                (*lv, *lc) = kahan::inc(cv, *lv, *lc);
            }
            _ => {
                out.push((t, v));
                cout.push(cv);
            }
        }
    }
    (out, cout)
}

#[allow(clippy::too_many_arguments)]
fn kahan_add_sparse(
    a: &Sparse,
    ca: &[f64],
    b: &Sparse,
    cb: Option<&[f64]>,
    schema: i32,
    threshold: f64,
    exponential: bool,
) -> (Sparse, Vec<f64>) {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut cout = Vec::with_capacity(a.len() + b.len());
    let mut skipping = true;
    let bs: Vec<(i32, f64, f64)> = b
        .iter()
        .enumerate()
        .filter(|(_, (idx, _))| {
            let idx = *idx;
            if skipping && exponential && bound_exponential(idx, schema) <= threshold {
                return false;
            }
            skipping = false;
            true
        })
        .map(|(k, &(idx, v))| (idx, v, cb.and_then(|c| c.get(k)).copied().unwrap_or(0.0)))
        .collect();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < bs.len() {
        let take_a = match (a.get(i), bs.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                let (mut v, mut c) = (x.1, ca.get(i).copied().unwrap_or(0.0));
                (v, c) = kahan::inc(y.1, v, c);
                if y.2 != 0.0 {
                    (v, c) = kahan::inc(y.2, v, c);
                }
                out.push((x.0, v));
                cout.push(c);
                i += 1;
                j += 1;
                continue;
            }
            (Some(x), Some(y)) => x.0 < y.0,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_a {
            out.push(a[i]);
            cout.push(ca.get(i).copied().unwrap_or(0.0));
            i += 1;
        } else {
            out.push((bs[j].0, bs[j].1));
            cout.push(bs[j].2);
            j += 1;
        }
    }
    (out, cout)
}

/// Whether `cur` follows a counter reset relative to `prev`
/// (Prometheus's `FloatHistogram.DetectReset`).
pub fn detect_reset(cur: &FloatHistogram, prev: &FloatHistogram) -> bool {
    match cur.counter_reset_hint {
        CounterResetHint::CounterReset => return true,
        CounterResetHint::NotCounterReset => return false,
        _ => {}
    }
    if cur.count < prev.count {
        return true;
    }
    if cur.uses_custom_buckets() {
        if !prev.uses_custom_buckets() {
            return true;
        }
        if cur.custom_values != prev.custom_values {
            return detect_reset_mismatched_custom(cur, prev);
        }
    }
    if cur.schema > prev.schema {
        return true;
    }
    if cur.zero_threshold < prev.zero_threshold {
        return true;
    }
    let (prev_zc, new_threshold, _) = if prev.uses_custom_buckets() {
        (prev.zero_count, cur.zero_threshold, 0.0)
    } else {
        zero_count_for_larger_threshold(prev, cur.zero_threshold, None)
    };
    if new_threshold != cur.zero_threshold {
        return true;
    }
    if cur.zero_count < prev_zc {
        return true;
    }
    let custom = cur.uses_custom_buckets();
    for positive in [true, false] {
        let view = |h: &FloatHistogram| {
            let s = if positive {
                sparse(&h.positive_spans, &h.positive_buckets)
            } else {
                sparse(&h.negative_spans, &h.negative_buckets)
            };
            let s = if custom {
                s
            } else {
                reduce(&s, h.schema, cur.schema)
            };
            let mut reached = cur.zero_threshold == 0.0 || custom;
            s.into_iter()
                .filter(|&(idx, _)| {
                    if !reached && bound_exponential(idx, cur.schema) <= cur.zero_threshold {
                        return false;
                    }
                    reached = true;
                    true
                })
                .collect::<Sparse>()
        };
        let c = view(cur);
        let p = view(prev);
        let mut ci = 0;
        for &(pidx, pcount) in &p {
            while ci < c.len() && c[ci].0 < pidx {
                ci += 1;
            }
            match c.get(ci) {
                Some(&(cidx, ccount)) if cidx == pidx => {
                    if ccount < pcount {
                        return true;
                    }
                }
                _ => {
                    if pcount != 0.0 {
                        return true;
                    }
                }
            }
        }
    }
    false
}

/// Reset detection between custom-bucket histograms with different bounds:
/// compares cumulative counts at the bounds both share.
fn detect_reset_mismatched_custom(cur: &FloatHistogram, prev: &FloatHistogram) -> bool {
    let cumulative_upto = |h: &FloatHistogram, b: f64| -> f64 {
        buckets::side_buckets(h, true)
            .iter()
            .filter(|bk| bk.upper <= b)
            .map(|bk| bk.count)
            .sum()
    };
    let mut shared: Vec<f64> = intersect_bounds(&cur.custom_values, &prev.custom_values);
    shared.push(f64::INFINITY);
    let mut prev_cum_c = 0.0;
    let mut prev_cum_p = 0.0;
    for b in shared {
        let cc = cumulative_upto(cur, b);
        let pc = cumulative_upto(prev, b);
        if cc - prev_cum_c < pc - prev_cum_p {
            return true;
        }
        prev_cum_c = cc;
        prev_cum_p = pc;
    }
    false
}

/// The `</` (`upper`) and `>/` operators: keeps the observations below
/// (above) `rhs`, interpolating inside the bucket that contains it, and
/// recomputes count and sum from the kept buckets' midpoints
/// (Prometheus's `FloatHistogram.TrimBuckets`).
pub fn trim_buckets(h: &mut FloatHistogram, rhs: f64, upper: bool) {
    let custom = h.uses_custom_buckets();
    let (mut count, mut sum) = (0.0, 0.0);
    let mut trimmed = false;
    let (mut has_pos, mut has_neg) = (false, false);
    for positive in [true, false] {
        let bs = buckets::side_buckets(h, positive);
        for (i, b) in bs.iter().enumerate() {
            if b.count == 0.0 {
                continue;
            }
            if positive {
                has_pos = true;
            } else {
                has_neg = true;
            }
            let (keep_all, drop_all) = if upper {
                (b.upper <= rhs, b.lower >= rhs)
            } else {
                (b.lower >= rhs, b.upper <= rhs)
            };
            let counts = if positive {
                &mut h.positive_buckets
            } else {
                &mut h.negative_buckets
            };
            if keep_all {
                count += b.count;
                sum += midpoint(b.lower, b.upper, positive, custom) * b.count;
            } else if !drop_all {
                let (keep, mid) = bucket_trim(b, rhs, upper, positive, custom);
                count += keep;
                sum += mid * keep;
                if counts[i] != keep {
                    counts[i] = keep;
                    trimmed = true;
                }
            } else {
                counts[i] = 0.0;
                trimmed = true;
            }
        }
    }
    if h.zero_count > 0.0 {
        let (keep, mid) = zero_bucket_trim(&h.zero_bucket(), rhs, has_neg, has_pos, upper);
        if h.zero_count != keep {
            h.zero_count = keep;
            trimmed = true;
        }
        sum += mid * keep;
        count += keep;
    }
    if trimmed {
        h.count = count;
        h.sum = sum;
        compact(h, 0);
    }
}

fn midpoint(lower: f64, upper: f64, positive: bool, linear: bool) -> f64 {
    if lower.is_infinite() {
        if upper.is_infinite() {
            return 0.0;
        }
        return if upper > 0.0 { upper / 2.0 } else { upper };
    }
    if upper.is_infinite() {
        return lower;
    }
    if linear {
        return (lower + upper) / 2.0;
    }
    let g = (lower * upper).abs().sqrt();
    if positive { g } else { -g }
}

fn bucket_trim(b: &Bucket, rhs: f64, upper: bool, positive: bool, custom: bool) -> (f64, f64) {
    if b.lower == f64::NEG_INFINITY || b.upper == f64::INFINITY {
        return infinity_bucket_trim(upper, b, rhs);
    }
    let under = if rhs <= b.lower {
        0.0
    } else if rhs >= b.upper {
        b.count
    } else {
        b.count * b.fraction_below(rhs, custom)
    };
    if upper {
        (under, midpoint(b.lower, rhs, positive, custom))
    } else {
        (b.count - under, midpoint(rhs, b.upper, positive, custom))
    }
}

fn infinity_bucket_trim(upper: bool, b: &Bucket, rhs: f64) -> (f64, f64) {
    let zero_if_inf = |x: f64| if x.is_infinite() { 0.0 } else { x };
    if b.lower == f64::NEG_INFINITY {
        if upper {
            if rhs >= b.upper {
                return (b.count, 0.0);
            }
            if rhs > 0.0 && b.upper > 0.0 && b.upper != f64::INFINITY {
                return (b.count * rhs / b.upper, rhs / 2.0);
            }
            if b.upper <= 0.0 {
                return (b.count, rhs);
            }
            return (0.0, zero_if_inf(b.upper));
        }
        if rhs <= b.lower {
            return (b.count, 0.0);
        }
        if rhs >= 0.0 && b.upper > rhs && b.upper != f64::INFINITY {
            return (b.count * (1.0 - rhs / b.upper), (rhs + b.upper) / 2.0);
        }
        return (0.0, zero_if_inf(b.upper));
    }
    if upper {
        return (0.0, zero_if_inf(b.lower));
    }
    if rhs >= b.lower {
        return (b.count, rhs);
    }
    (0.0, zero_if_inf(b.lower))
}

fn zero_bucket_trim(z: &Bucket, rhs: f64, has_neg: bool, has_pos: bool, upper: bool) -> (f64, f64) {
    let (mut lower, mut up) = (z.lower, z.upper);
    if has_neg && !has_pos {
        up = 0.0;
    }
    if has_pos && !has_neg {
        lower = 0.0;
    }
    if upper {
        if rhs <= lower {
            return (0.0, 0.0);
        }
        if rhs >= up {
            return (z.count, (lower + up) / 2.0);
        }
        return (z.count * (rhs - lower) / (up - lower), (lower + rhs) / 2.0);
    }
    if rhs <= lower {
        return (z.count, (lower + up) / 2.0);
    }
    if rhs >= up {
        return (0.0, 0.0);
    }
    (z.count * (up - rhs) / (up - lower), (rhs + up) / 2.0)
}

/// Prometheus's `FloatHistogram.String()` (`count_values` labels, rule templates, promtool output).
pub fn to_go_string(h: &FloatHistogram) -> String {
    use crate::gofmt::g;
    let mut out = format!("{{count:{}, sum:{}", g(h.count), g(h.sum));
    let mut neg: Vec<Bucket> = buckets::side_buckets(h, false)
        .into_iter()
        .filter(|b| b.count != 0.0)
        .collect();
    neg.reverse();
    for b in neg {
        out.push_str(", ");
        out.push_str(&b.to_go_string());
    }
    if h.zero_count != 0.0 {
        out.push_str(", ");
        out.push_str(&h.zero_bucket().to_go_string());
    }
    for b in buckets::side_buckets(h, true)
        .into_iter()
        .filter(|b| b.count != 0.0)
    {
        out.push_str(", ");
        out.push_str(&b.to_go_string());
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use fenghuo_storage_api::model::BucketSpan;

    use super::*;

    fn h(schema: i32, offset: i32, buckets: &[f64]) -> FloatHistogram {
        FloatHistogram {
            schema,
            count: buckets.iter().sum(),
            positive_spans: vec![BucketSpan {
                offset,
                length: buckets.len() as u32,
            }],
            positive_buckets: buckets.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn add_merges_layouts_and_schemas() {
        let mut a = h(1, 0, &[1.0, 2.0]);
        let b = h(0, 1, &[3.0]);
        add(&mut a, &b).unwrap();
        assert_eq!(a.schema, 0);
        // Schema-1 buckets 0,1 map to schema-0 buckets 0,1.
        assert_eq!(
            sparse(&a.positive_spans, &a.positive_buckets),
            vec![(0, 1.0), (1, 5.0)]
        );
        assert_eq!(a.count, 6.0);
    }

    #[test]
    fn kahan_add_matches_add() {
        let mut a = h(0, 0, &[1.0, 2.0]);
        let mut b = a.clone();
        let other = h(0, 1, &[1.0, 1.0]);
        add(&mut a, &other).unwrap();
        let (c, _) = kahan_add(&mut b, &other, None).unwrap();
        add(&mut b, &c).unwrap();
        assert!(equals(&a, &b), "{a:?} vs {b:?}");
    }

    #[test]
    fn reset_is_detected_on_lower_bucket() {
        let prev = h(0, 0, &[2.0, 2.0]);
        let cur = h(0, 0, &[3.0, 1.0]);
        assert!(detect_reset(&cur, &prev));
        assert!(!detect_reset(&prev, &prev));
    }

    #[test]
    fn custom_buckets_do_not_mix_with_exponential() {
        let mut a = h(0, 0, &[1.0]);
        let mut b = h(-53, 0, &[1.0]);
        b.custom_values = vec![1.0];
        assert_eq!(add(&mut a, &b), Err(HistError::IncompatibleSchema));
    }
}
