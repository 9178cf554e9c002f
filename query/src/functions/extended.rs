//! Prometheus 3's extended range selectors: `anchored` (the last sample at
//! or before the window start anchors the window) and `smoothed` (values at
//! the window edges are interpolated). Used by rate/increase/delta,
//! changes/resets, range-vector results and smoothed instant selectors.

use std::sync::Arc;

use fenghuo_storage_api::model::{CounterResetHint, FloatHistogram, HistogramSample, Sample};

use super::{FnCtx, Window};
use crate::annotations::{Annotation, HistogramOp};
use crate::eval::QueryCtx;
use crate::histogram::{self as hist, HistError};

type Out = Option<(f64, Option<Arc<FloatHistogram>>)>;

/// Go's `sort.Search(n, pred)`.
fn search(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    (0..n).find(|&i| pred(i)).unwrap_or(n)
}

/// Linear interpolation at `t`; for counters a decrease means a reset to 0.
pub(crate) fn interpolate(p1: Sample, p2: Sample, t: i64, is_counter: bool) -> f64 {
    let mut y1 = p1.v;
    let y2 = p2.v;
    if is_counter && y2 < y1 {
        y1 = 0.0;
    }
    y1 + (y2 - y1) * (t - p1.t) as f64 / (p2.t - p1.t) as f64
}

fn pick_left(f: &[Sample], first: usize, start: i64, smoothed: bool, is_counter: bool) -> f64 {
    if smoothed && f[first].t < start && first + 1 < f.len() {
        return interpolate(f[first], f[first + 1], start, is_counter);
    }
    f[first].v
}

fn pick_right(f: &[Sample], last: usize, end: i64, smoothed: bool, is_counter: bool) -> f64 {
    if smoothed && last > 0 && f[last].t > end {
        return interpolate(f[last - 1], f[last], end, is_counter);
    }
    f[last].v
}

fn correct_for_resets(left: f64, right: f64, points: &[Sample]) -> f64 {
    let mut correction = 0.0;
    let mut prev = left;
    for p in points {
        if p.v < prev {
            correction += prev;
        }
        prev = p.v;
    }
    if right < prev {
        correction += prev;
    }
    correction
}

/// rate/increase/delta over an anchored or smoothed window.
pub(crate) fn rate(w: &Window, ctx: &FnCtx, is_counter: bool, is_rate: bool) -> Out {
    if !w.hists.is_empty() && !w.floats.is_empty() {
        ctx.q.annotate(Annotation::mixed_floats_histograms(
            w.metric_name(),
            ctx.arg_pos(0),
        ));
        return None;
    }
    if !w.hists.is_empty() {
        return histogram_rate(w, ctx, is_counter, is_rate);
    }
    if w.floats.is_empty() {
        return None;
    }
    let f = w.floats;
    let (start, end) = (w.range_start, w.range_end);
    let mut last = f.len() - 1;
    let mut first = search(last, |i| f[i].t > start).saturating_sub(1);
    if w.smoothed {
        last = search(last, |i| f[i].t >= end);
    }
    if f[last].t <= start {
        return None;
    }
    if w.smoothed && f[first].t > end {
        return None;
    }
    let left = pick_left(f, first, start, w.smoothed, is_counter);
    let right = pick_right(f, last, end, w.smoothed, is_counter);
    let mut result = right - left;
    if is_counter {
        if f[first].t <= start {
            first += 1;
        }
        let mut last_i = last as isize;
        if f[last].t >= end {
            last_i -= 1;
        }
        let inner = if (first as isize) <= last_i {
            &f[first..=last_i as usize]
        } else {
            &[][..]
        };
        result += correct_for_resets(left, right, inner);
    }
    if is_rate {
        result /= w.range as f64 / 1000.0;
    }
    Some((result, None))
}

/// Linear interpolation between two histograms (a reset restarts from 0).
#[allow(clippy::too_many_arguments)]
fn interpolate_histograms(
    h1: &FloatHistogram,
    t1: i64,
    h2: &FloatHistogram,
    t2: i64,
    t: i64,
    is_counter: bool,
    q: &QueryCtx,
    pos: usize,
) -> Result<FloatHistogram, HistError> {
    if t == t1 {
        return Ok(h1.clone());
    }
    if t == t2 {
        return Ok(h2.clone());
    }
    let fraction = (t - t1) as f64 / (t2 - t1) as f64;
    if is_counter && hist::detect_reset(h2, h1) {
        let mut r = h2.clone();
        hist::mul(&mut r, fraction);
        return Ok(r);
    }
    let mut r = h2.clone();
    if hist::sub(&mut r, h1)?.nhcb_reconciled {
        q.annotate(Annotation::mismatched_custom_buckets(pos, HistogramOp::Sub));
    }
    hist::mul(&mut r, fraction);
    if hist::add(&mut r, h1)?.nhcb_reconciled {
        q.annotate(Annotation::mismatched_custom_buckets(pos, HistogramOp::Add));
    }
    Ok(r)
}

/// Public form for smoothed instant selectors.
pub(crate) fn interpolate_histogram_samples(
    prev: &HistogramSample,
    next: &HistogramSample,
    t: i64,
    is_counter: bool,
    q: &QueryCtx,
    pos: usize,
) -> Result<FloatHistogram, HistError> {
    interpolate_histograms(&prev.h, prev.t, &next.h, next.t, t, is_counter, q, pos)
}

#[allow(clippy::too_many_arguments)]
fn pick_left_hist(
    h: &[HistogramSample],
    first: usize,
    start: i64,
    smoothed: bool,
    is_counter: bool,
    q: &QueryCtx,
    pos: usize,
) -> Result<FloatHistogram, HistError> {
    if smoothed && h[first].t < start && first + 1 < h.len() {
        return interpolate_histograms(
            &h[first].h,
            h[first].t,
            &h[first + 1].h,
            h[first + 1].t,
            start,
            is_counter,
            q,
            pos,
        );
    }
    Ok((*h[first].h).clone())
}

#[allow(clippy::too_many_arguments)]
fn pick_right_hist(
    h: &[HistogramSample],
    last: usize,
    end: i64,
    smoothed: bool,
    is_counter: bool,
    q: &QueryCtx,
    pos: usize,
) -> Result<FloatHistogram, HistError> {
    if smoothed && last > 0 && h[last].t > end {
        return interpolate_histograms(
            &h[last - 1].h,
            h[last - 1].t,
            &h[last].h,
            h[last].t,
            end,
            is_counter,
            q,
            pos,
        );
    }
    Ok((*h[last].h).clone())
}

fn histogram_rate(w: &Window, ctx: &FnCtx, is_counter: bool, is_rate: bool) -> Out {
    let h = w.hists;
    let (start, end) = (w.range_start, w.range_end);
    let name = w.metric_name();
    let pos = ctx.arg_pos(0);
    let mut last = h.len() - 1;
    let first = search(last, |i| h[i].t > start).saturating_sub(1);
    if w.smoothed {
        last = search(last, |i| h[i].t >= end);
    }
    if h[last].t <= start {
        return None;
    }
    if w.smoothed && h[first].t > end {
        return None;
    }
    // Validate the samples used.
    let custom = h[first].h.uses_custom_buckets();
    for p in &h[first..=last] {
        if p.h.uses_custom_buckets() != custom {
            ctx.q
                .annotate(Annotation::mixed_exponential_custom_histograms(name, pos));
            return None;
        }
        if is_counter && p.h.counter_reset_hint == CounterResetHint::Gauge {
            ctx.q
                .annotate(Annotation::native_histogram_not_counter(name, pos));
        }
    }
    let incompatible = |_| {
        ctx.q
            .annotate(Annotation::mixed_exponential_custom_histograms(name, pos));
        None
    };
    let left = match pick_left_hist(h, first, start, w.smoothed, is_counter, ctx.q, pos) {
        Ok(l) => l,
        Err(e) => return incompatible(e),
    };
    let right = match pick_right_hist(h, last, end, w.smoothed, is_counter, ctx.q, pos) {
        Ok(r) => r,
        Err(e) => return incompatible(e),
    };
    if !is_counter
        && (left.counter_reset_hint != CounterResetHint::Gauge
            || right.counter_reset_hint != CounterResetHint::Gauge)
    {
        ctx.q.annotate(Annotation::native_histogram_not_gauge(name, pos));
    }
    let mut result = right.clone();
    match hist::sub(&mut result, &left) {
        Err(e) => return incompatible(e),
        Ok(o) => {
            if o.nhcb_reconciled {
                ctx.q
                    .annotate(Annotation::mismatched_custom_buckets(pos, HistogramOp::Sub));
            }
        }
    }
    if is_counter {
        match correction(h, first, last, &left, &right, start, w.smoothed, ctx.q, pos) {
            Err(e) => return incompatible(e),
            Ok(Some(c)) => match hist::add(&mut result, &c) {
                Err(e) => return incompatible(e),
                Ok(o) => {
                    if o.nhcb_reconciled {
                        ctx.q
                            .annotate(Annotation::mismatched_custom_buckets(pos, HistogramOp::Add));
                    }
                }
            },
            Ok(None) => {}
        }
    }
    if is_rate {
        hist::div(&mut result, w.range as f64 / 1000.0);
    }
    result.counter_reset_hint = CounterResetHint::Gauge;
    hist::compact(&mut result, 0);
    Some((0.0, Some(Arc::new(result))))
}

/// The counter-reset correction between the window's boundary values
/// (Prometheus's `correctForCounterResetsHistogram`).
#[allow(clippy::too_many_arguments)]
fn correction(
    h: &[HistogramSample],
    first_idx: usize,
    last_idx: usize,
    left: &FloatHistogram,
    right: &FloatHistogram,
    start: i64,
    smoothed: bool,
    q: &QueryCtx,
    pos: usize,
) -> Result<Option<FloatHistogram>, HistError> {
    let mut first = first_idx + 1;
    let mut prev: &FloatHistogram = left;
    if smoothed
        && h[first_idx].t < start
        && first_idx + 1 < h.len()
        && hist::detect_reset(&h[first_idx + 1].h, &h[first_idx].h)
    {
        prev = &h[first_idx + 1].h;
        first += 1;
    }
    let last = last_idx as isize - 1;
    if first as isize > last + 1 {
        return Ok(None);
    }
    let mut corr: Option<FloatHistogram> = None;
    let mut add = |x: &FloatHistogram| -> Result<(), HistError> {
        match corr.as_mut() {
            None => corr = Some(x.clone()),
            Some(c) => {
                if hist::add(c, x)?.nhcb_reconciled {
                    q.annotate(Annotation::mismatched_custom_buckets(pos, HistogramOp::Add));
                }
            }
        }
        Ok(())
    };
    if last >= first as isize {
        for p in &h[first..=last as usize] {
            if hist::detect_reset(&p.h, prev) {
                add(prev)?;
            }
            prev = &p.h;
        }
    }
    if hist::detect_reset(right, prev) {
        add(prev)?;
    }
    Ok(corr)
}

/// Start indexes into floats and histograms for an anchored window: the
/// latest sample at or before the window start, of either kind, anchors it.
/// `None` when no sample lies inside the window.
pub(crate) fn first_sample_indices(w: &Window) -> Option<(usize, usize)> {
    if !w.anchored {
        return Some((0, 0));
    }
    let start = w.range_start;
    let lf = w.floats.partition_point(|p| p.t <= start) as isize - 1;
    let lh = w.hists.partition_point(|p| p.t <= start) as isize - 1;
    if lf + 1 >= w.floats.len() as isize && lh + 1 >= w.hists.len() as isize {
        return None;
    }
    if lf < 0 && lh < 0 {
        return Some((0, 0));
    }
    if lh < 0 || (lf >= 0 && w.floats[lf as usize].t >= w.hists[lh as usize].t) {
        Some((lf as usize, (lh + 1) as usize))
    } else {
        Some(((lf + 1) as usize, lh as usize))
    }
}

/// A range-vector result of an anchored or smoothed selector: samples
/// inside the window plus synthetic points at both edges.
pub(crate) fn extend_floats(floats: &[Sample], mint: i64, maxt: i64, smoothed: bool) -> Vec<Sample> {
    if floats.is_empty() {
        return Vec::new();
    }
    let mut last = floats.len() - 1;
    let mut first = search(last, |i| floats[i].t > mint).saturating_sub(1);
    if smoothed {
        last = search(last, |i| floats[i].t >= maxt);
    }
    if floats[last].t <= mint {
        return Vec::new();
    }
    let left = pick_left(floats, first, mint, smoothed, false);
    let right = pick_right(floats, last, maxt, smoothed, false);
    if floats[first].t <= mint {
        first += 1;
    }
    let mut last_i = last as isize;
    if floats[last].t >= maxt {
        last_i -= 1;
    }
    let mut out = Vec::with_capacity(floats.len() + 2);
    out.push(Sample { t: mint, v: left });
    if first as isize <= last_i {
        out.extend_from_slice(&floats[first..=last_i as usize]);
    }
    out.push(Sample { t: maxt, v: right });
    out
}
