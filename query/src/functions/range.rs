//! Functions over range vectors: the rate family (3.x extrapolation),
//! `irate`/`idelta`, `deriv`, `predict_linear`, `changes`, `resets`,
//! `double_exponential_smoothing` and the `*_over_time` aggregations.

use std::sync::Arc;

use fenghuo_storage_api::model::{CounterResetHint, FloatHistogram, Sample};

use super::{FnCtx, Window};
use crate::annotations::{Annotation, HistogramOp};
use crate::error::QueryError;
use crate::histogram::{self as hist, HistError};
use crate::kahan;
use crate::quantile::quantile;

type Out = Result<Option<(f64, Option<Arc<FloatHistogram>>)>, QueryError>;

fn float(v: f64) -> Out {
    Ok(Some((v, None)))
}

fn histo(h: FloatHistogram) -> Out {
    Ok(Some((0.0, Some(Arc::new(h)))))
}

pub(crate) fn rate(w: &Window, _: &[f64], ctx: &FnCtx) -> Out {
    extrapolated_rate(w, ctx, true, true)
}

pub(crate) fn increase(w: &Window, _: &[f64], ctx: &FnCtx) -> Out {
    extrapolated_rate(w, ctx, true, false)
}

pub(crate) fn delta(w: &Window, _: &[f64], ctx: &FnCtx) -> Out {
    extrapolated_rate(w, ctx, false, false)
}

/// rate/increase/delta with Prometheus 3.x extrapolation.
fn extrapolated_rate(w: &Window, ctx: &FnCtx, is_counter: bool, is_rate: bool) -> Out {
    if w.anchored || w.smoothed {
        return Ok(super::extended::rate(w, ctx, is_counter, is_rate));
    }
    let pos = ctx.arg_pos(0);
    let name = w.metric_name();
    if !w.hists.is_empty() && !w.floats.is_empty() {
        ctx.q.annotate(Annotation::mixed_floats_histograms(name, pos));
        return Ok(None);
    }
    let mut result_float = 0.0;
    let mut result_hist: Option<FloatHistogram> = None;
    let (first_t, last_t, n_minus_one);
    if !w.hists.is_empty() {
        n_minus_one = w.hists.len() - 1;
        first_t = w.hists[0].t;
        last_t = w.hists[n_minus_one].t;
        if w.hists.len() > 1 {
            match histogram_rate(w, is_counter, ctx, pos) {
                Some(h) => result_hist = Some(h),
                None => return Ok(None),
            }
        }
    } else if !w.floats.is_empty() {
        n_minus_one = w.floats.len() - 1;
        first_t = w.floats[0].t;
        last_t = w.floats[n_minus_one].t;
        result_float = w.floats[n_minus_one].v - w.floats[0].v;
        if is_counter {
            for pair in w.floats.windows(2) {
                if pair[1].v < pair[0].v {
                    result_float += pair[0].v;
                }
            }
        }
    } else {
        return Ok(None);
    }
    if n_minus_one == 0 {
        return Ok(None);
    }
    let mut duration_to_start = (first_t - w.range_start) as f64 / 1000.0;
    let mut duration_to_end = (w.range_end - last_t) as f64 / 1000.0;
    let sampled_interval = (last_t - first_t) as f64 / 1000.0;
    let avg = sampled_interval / n_minus_one as f64;
    let threshold = avg * 1.1;
    if duration_to_start >= threshold {
        duration_to_start = avg / 2.0;
    }
    if is_counter {
        let mut duration_to_zero = duration_to_start;
        if result_float > 0.0 && !w.floats.is_empty() && w.floats[0].v >= 0.0 {
            duration_to_zero = sampled_interval * (w.floats[0].v / result_float);
        } else if let Some(rh) = &result_hist
            && rh.count > 0.0
            && !w.hists.is_empty()
            && w.hists[0].h.count >= 0.0
        {
            duration_to_zero = sampled_interval * (w.hists[0].h.count / rh.count);
        }
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= threshold {
        duration_to_end = avg / 2.0;
    }
    let mut factor = 1.0;
    if sampled_interval != 0.0 {
        factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    }
    if is_rate {
        factor /= w.range as f64 / 1000.0;
    }
    match result_hist {
        Some(mut h) => {
            hist::mul(&mut h, factor);
            histo(h)
        }
        None => float(result_float * factor),
    }
}

/// The increase of a histogram series over the window, with counter resets
/// handled (Prometheus's `histogramRate`). `None` when the histograms are
/// incompatible (an annotation says why).
fn histogram_rate(w: &Window, is_counter: bool, ctx: &FnCtx, pos: usize) -> Option<FloatHistogram> {
    let name = w.metric_name();
    let points = w.hists;
    let mut prev: FloatHistogram = (*points[0].h).clone();
    let mut using_custom = prev.uses_custom_buckets();
    let last = &points[points.len() - 1].h;
    if is_counter
        && (prev.counter_reset_hint == CounterResetHint::Gauge
            || last.counter_reset_hint == CounterResetHint::Gauge)
    {
        ctx.q
            .annotate(Annotation::native_histogram_not_counter(name, pos));
    }
    if is_counter {
        let second = &points[1].h;
        if hist::detect_reset(second, &prev) {
            prev = FloatHistogram {
                schema: second.schema,
                custom_values: second.custom_values.clone(),
                ..Default::default()
            };
            using_custom = second.uses_custom_buckets();
        }
    }
    if last.uses_custom_buckets() != using_custom {
        ctx.q
            .annotate(Annotation::mixed_exponential_custom_histograms(name, pos));
        return None;
    }
    let mut min_schema = last.schema.min(prev.schema);
    for p in &points[1..points.len() - 1] {
        if !is_counter {
            continue;
        }
        if p.h.counter_reset_hint == CounterResetHint::Gauge {
            ctx.q
                .annotate(Annotation::native_histogram_not_counter(name, pos));
        }
        min_schema = min_schema.min(p.h.schema);
        if p.h.uses_custom_buckets() != using_custom {
            ctx.q
                .annotate(Annotation::mixed_exponential_custom_histograms(name, pos));
            return None;
        }
    }
    let mut h = if last.uses_custom_buckets() {
        (**last).clone()
    } else {
        hist::copy_to_schema(last, min_schema)
    };
    match hist::sub(&mut h, &prev) {
        Err(HistError::IncompatibleSchema) => {
            ctx.q
                .annotate(Annotation::mixed_exponential_custom_histograms(name, pos));
            return None;
        }
        Ok(out) => {
            if out.nhcb_reconciled {
                ctx.q
                    .annotate(Annotation::mismatched_custom_buckets(pos, HistogramOp::Sub));
            }
        }
    }
    if is_counter {
        let mut prev_ref: FloatHistogram = prev;
        for p in &points[1..] {
            if hist::detect_reset(&p.h, &prev_ref) {
                match hist::add(&mut h, &prev_ref) {
                    Err(HistError::IncompatibleSchema) => {
                        ctx.q
                            .annotate(Annotation::mixed_exponential_custom_histograms(name, pos));
                        return None;
                    }
                    Ok(out) => {
                        if out.nhcb_reconciled {
                            ctx.q
                                .annotate(Annotation::mismatched_custom_buckets(pos, HistogramOp::Add));
                        }
                    }
                }
            }
            prev_ref = (*p.h).clone();
        }
    } else if points[0].h.counter_reset_hint != CounterResetHint::Gauge
        || points[points.len() - 1].h.counter_reset_hint != CounterResetHint::Gauge
    {
        ctx.q.annotate(Annotation::native_histogram_not_gauge(name, pos));
    }
    h.counter_reset_hint = CounterResetHint::Gauge;
    hist::compact(&mut h, 0);
    Some(h)
}

pub(crate) fn irate(w: &Window, _: &[f64], ctx: &FnCtx) -> Out {
    instant_value(w, ctx, true)
}

pub(crate) fn idelta(w: &Window, _: &[f64], ctx: &FnCtx) -> Out {
    instant_value(w, ctx, false)
}

/// The last two samples of the window, in time order.
enum Last2 {
    Float(Sample),
    Hist(i64, Arc<FloatHistogram>),
}

impl Last2 {
    fn t(&self) -> i64 {
        match self {
            Last2::Float(s) => s.t,
            Last2::Hist(t, _) => *t,
        }
    }
}

fn instant_value(w: &Window, ctx: &FnCtx, is_rate: bool) -> Out {
    if w.floats.len() + w.hists.len() < 2 {
        return Ok(None);
    }
    let pos = ctx.arg_pos(0);
    let name = w.metric_name();
    let mut ss: Vec<Last2> = w.floats[w.floats.len().saturating_sub(2)..]
        .iter()
        .map(|s| Last2::Float(*s))
        .collect();
    for h in &w.hists[w.hists.len().saturating_sub(2)..] {
        let s = Last2::Hist(h.t, h.h.clone());
        match ss.len() {
            0 => ss.push(s),
            1 => {
                if s.t() < ss[0].t() {
                    ss.insert(0, s);
                } else {
                    ss.push(s);
                }
            }
            _ => {
                if s.t() < ss[0].t() {
                } else if s.t() > ss[1].t() {
                    ss.swap(0, 1);
                    ss[1] = s;
                } else {
                    ss[0] = s;
                }
            }
        }
    }
    let sampled_interval = ss[1].t() - ss[0].t();
    if sampled_interval == 0 {
        return Ok(None);
    }
    let per_second = sampled_interval as f64 / 1000.0;
    match (&ss[0], &ss[1]) {
        (Last2::Float(a), Last2::Float(b)) => {
            let mut v = b.v;
            if !is_rate || b.v.partial_cmp(&a.v) != Some(std::cmp::Ordering::Less) {
                v = b.v - a.v;
            }
            if is_rate {
                v /= per_second;
            }
            float(v)
        }
        (Last2::Hist(_, a), Last2::Hist(_, b)) => {
            let mut h = (**b).clone();
            if is_rate
                && (b.counter_reset_hint == CounterResetHint::Gauge
                    || a.counter_reset_hint == CounterResetHint::Gauge)
            {
                ctx.q
                    .annotate(Annotation::native_histogram_not_counter(name, pos));
            }
            if !is_rate
                && (b.counter_reset_hint != CounterResetHint::Gauge
                    || a.counter_reset_hint != CounterResetHint::Gauge)
            {
                ctx.q.annotate(Annotation::native_histogram_not_gauge(name, pos));
            }
            if !is_rate || !hist::detect_reset(b, a) {
                match hist::sub(&mut h, a) {
                    Err(HistError::IncompatibleSchema) => {
                        ctx.q
                            .annotate(Annotation::mixed_exponential_custom_histograms(name, pos));
                        return Ok(None);
                    }
                    Ok(out) => {
                        if out.nhcb_reconciled {
                            ctx.q
                                .annotate(Annotation::mismatched_custom_buckets(pos, HistogramOp::Sub));
                        }
                    }
                }
            }
            h.counter_reset_hint = CounterResetHint::Gauge;
            hist::compact(&mut h, 0);
            if is_rate {
                hist::div(&mut h, per_second);
            }
            histo(h)
        }
        _ => {
            ctx.q.annotate(Annotation::mixed_floats_histograms(name, pos));
            Ok(None)
        }
    }
}

/// Least-squares slope and intercept at `intercept_time` (Kahan sums).
fn linear_regression(samples: &[Sample], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut cx, mut sum_y, mut cy, mut sum_xy, mut cxy, mut sum_x2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = samples[0].v;
    let mut const_y = true;
    for (i, s) in samples.iter().enumerate() {
        if const_y && i > 0 && s.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t - intercept_time) as f64 / 1e3;
        (sum_x, cx) = kahan::inc(x, sum_x, cx);
        (sum_y, cy) = kahan::inc(s.v, sum_y, cy);
        (sum_xy, cxy) = kahan::inc(x * s.v, sum_xy, cxy);
        (sum_x2, cx2) = kahan::inc(x * x, sum_x2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += cx;
    sum_y += cy;
    sum_xy += cxy;
    sum_x2 += cx2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

fn mixed_info(w: &Window, ctx: &FnCtx) {
    if !w.hists.is_empty() {
        ctx.q.annotate(Annotation::histogram_ignored_in_mixed_range(
            w.metric_name(),
            ctx.arg_pos(0),
        ));
    }
}

pub(crate) fn deriv(w: &Window, _: &[f64], ctx: &FnCtx) -> Out {
    if w.floats.len() < 2 {
        if w.floats.len() == 1 && !w.hists.is_empty() {
            mixed_info(w, ctx);
        }
        return Ok(None);
    }
    let (slope, _) = linear_regression(w.floats, w.floats[0].t);
    mixed_info(w, ctx);
    float(slope)
}

pub(crate) fn predict_linear(w: &Window, s: &[f64], ctx: &FnCtx) -> Out {
    let duration = s.first().copied().unwrap_or(0.0);
    if w.floats.len() < 2 {
        if w.floats.len() == 1 && !w.hists.is_empty() {
            mixed_info(w, ctx);
        }
        return Ok(None);
    }
    let (slope, intercept) = linear_regression(w.floats, ctx.ts);
    mixed_info(w, ctx);
    float(slope * duration + intercept)
}

/// One sample of a window: a float or a histogram.
type Merged<'w> = (Option<f64>, Option<&'w Arc<FloatHistogram>>);

/// Float and histogram samples merged in time order, from the anchor on
/// for anchored windows (`None` when an anchored window has no sample).
fn merged<'w>(w: &Window<'w>) -> Option<Vec<Merged<'w>>> {
    let (mut i, mut j) = super::extended::first_sample_indices(w)?;
    let mut out = Vec::with_capacity(w.floats.len() + w.hists.len());
    while i < w.floats.len() || j < w.hists.len() {
        if j >= w.hists.len() || (i < w.floats.len() && w.floats[i].t < w.hists[j].t) {
            out.push((Some(w.floats[i].v), None));
            i += 1;
        } else {
            out.push((None, Some(&w.hists[j].h)));
            j += 1;
        }
    }
    Some(out)
}

pub(crate) fn changes(w: &Window, _: &[f64], _: &FnCtx) -> Out {
    let Some(m) = merged(w) else { return Ok(None) };
    let mut n = 0;
    for pair in m.windows(2) {
        match (pair[0], pair[1]) {
            ((Some(a), _), (Some(b), _)) => {
                if b != a && !(a.is_nan() && b.is_nan()) {
                    n += 1;
                }
            }
            ((_, Some(a)), (_, Some(b))) => {
                if !hist::equals(b, a) {
                    n += 1;
                }
            }
            _ => n += 1,
        }
    }
    float(n as f64)
}

pub(crate) fn resets(w: &Window, _: &[f64], _: &FnCtx) -> Out {
    let Some(m) = merged(w) else { return Ok(None) };
    let mut n = 0;
    for pair in m.windows(2) {
        match (pair[0], pair[1]) {
            ((Some(a), _), (Some(b), _)) => {
                if b < a {
                    n += 1;
                }
            }
            ((_, Some(a)), (_, Some(b))) => {
                if hist::detect_reset(b, a) {
                    n += 1;
                }
            }
            _ => n += 1,
        }
    }
    float(n as f64)
}

pub(crate) fn double_exponential_smoothing(w: &Window, s: &[f64], ctx: &FnCtx) -> Out {
    if s.len() < 2 {
        return Ok(None);
    }
    let (sf, tf) = (s[0], s[1]);
    if sf <= 0.0 || sf >= 1.0 || sf.is_nan() {
        return Err(QueryError::exec(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
            crate::gofmt::format_float(sf, b'f', 6)
        )));
    }
    if tf <= 0.0 || tf >= 1.0 || tf.is_nan() {
        return Err(QueryError::exec(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {}",
            crate::gofmt::format_float(tf, b'f', 6)
        )));
    }
    let l = w.floats.len();
    if l < 2 {
        if l == 1 && !w.hists.is_empty() {
            mixed_info(w, ctx);
        }
        return Ok(None);
    }
    let f = w.floats;
    let (mut s0, mut s1) = (0.0, f[0].v);
    let mut b = f[1].v - f[0].v;
    for (i, p) in f.iter().enumerate().skip(1) {
        let x = sf * p.v;
        b = if i == 1 {
            b
        } else {
            tf * (s1 - s0) + (1.0 - tf) * b
        };
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    mixed_info(w, ctx);
    float(s1)
}

pub(crate) fn avg_over_time(w: &Window, _: &[f64], ctx: &FnCtx) -> Out {
    let pos = ctx.arg_pos(0);
    if !w.floats.is_empty() && !w.hists.is_empty() {
        ctx.q
            .annotate(Annotation::mixed_floats_histograms(w.metric_name(), pos));
        return Ok(None);
    }
    if w.floats.is_empty() {
        return avg_hist_over_time(w, ctx, pos);
    }
    let f = w.floats;
    let (mut sum, mut count) = (f[0].v, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, p) in f.iter().enumerate().skip(1) {
        count = (i + 1) as f64;
        if !incremental {
            let (ns, nc) = kahan::inc(p.v, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan::inc(p.v / count, q * mean, q * c);
    }
    if incremental {
        return float(mean + c);
    }
    float(sum / count + c / count)
}

fn track_hints(h: &FloatHistogram, reset: &mut bool, not_reset: &mut bool) {
    match h.counter_reset_hint {
        CounterResetHint::CounterReset => *reset = true,
        CounterResetHint::NotCounterReset => *not_reset = true,
        _ => {}
    }
}

fn avg_hist_over_time(w: &Window, ctx: &FnCtx, pos: usize) -> Out {
    let (mut reset, mut not_reset, mut reconciled) = (false, false, false);
    let mut sum = (*w.hists[0].h).clone();
    track_hints(&sum, &mut reset, &mut not_reset);
    let mut mean: Option<FloatHistogram> = None;
    let mut c: Option<FloatHistogram> = None;
    let mut incremental = false;
    let mut failed = false;
    let mut count = 1.0;
    for (i, p) in w.hists.iter().enumerate().skip(1) {
        track_hints(&p.h, &mut reset, &mut not_reset);
        count = (i + 1) as f64;
        if !incremental {
            let mut s2 = sum.clone();
            match hist::kahan_add(&mut s2, &p.h, c.clone()) {
                Err(_) => {
                    failed = true;
                    break;
                }
                Ok((c2, out)) => {
                    reconciled |= out.nhcb_reconciled;
                    if !hist::has_overflow(&s2) {
                        sum = s2;
                        c = Some(c2);
                        continue;
                    }
                }
            }
            incremental = true;
            let mut m = sum.clone();
            hist::div(&mut m, count - 1.0);
            mean = Some(m);
            if let Some(cc) = c.as_mut() {
                hist::div(cc, count - 1.0);
            }
        }
        let q = (count - 1.0) / count;
        if let Some(cc) = c.as_mut() {
            hist::mul(cc, q);
        }
        let mut to_add = (*p.h).clone();
        hist::div(&mut to_add, count);
        let mut m = mean.take().unwrap_or_default();
        hist::mul(&mut m, q);
        match hist::kahan_add(&mut m, &to_add, c.take()) {
            Err(_) => {
                failed = true;
                break;
            }
            Ok((c2, out)) => {
                reconciled |= out.nhcb_reconciled;
                c = Some(c2);
                mean = Some(m);
            }
        }
    }
    if annotate_histogram_sum(w, ctx, pos, reset && not_reset, reconciled, failed) {
        return Ok(None);
    }
    let result = if incremental {
        let mut m = mean.unwrap_or_default();
        if let Some(cc) = &c {
            let _ = hist::add(&mut m, cc);
        }
        m
    } else {
        hist::div(&mut sum, count);
        if let Some(mut cc) = c {
            hist::div(&mut cc, count);
            let _ = hist::add(&mut sum, &cc);
        }
        sum
    };
    histo(result)
}

/// The annotations of summing a window's histograms (`sum_over_time`, `avg_over_time`), as
/// Prometheus adds them; true when the sum failed (mixed exponential and custom buckets), which
/// leaves the step without a result.
fn annotate_histogram_sum(
    w: &Window,
    ctx: &FnCtx,
    pos: usize,
    counter_reset_collision: bool,
    reconciled: bool,
    failed: bool,
) -> bool {
    if counter_reset_collision {
        ctx.q
            .annotate(Annotation::counter_reset_collision(pos, HistogramOp::Agg));
    }
    if reconciled {
        ctx.q
            .annotate(Annotation::mismatched_custom_buckets(pos, HistogramOp::Agg));
    }
    if failed {
        ctx.q.annotate(Annotation::mixed_exponential_custom_histograms(
            w.metric_name(),
            pos,
        ));
    }
    failed
}

pub(crate) fn sum_over_time(w: &Window, _: &[f64], ctx: &FnCtx) -> Out {
    let pos = ctx.arg_pos(0);
    if !w.floats.is_empty() && !w.hists.is_empty() {
        ctx.q
            .annotate(Annotation::mixed_floats_histograms(w.metric_name(), pos));
        return Ok(None);
    }
    if w.floats.is_empty() {
        let (mut reset, mut not_reset, mut reconciled) = (false, false, false);
        let mut sum = (*w.hists[0].h).clone();
        track_hints(&sum, &mut reset, &mut not_reset);
        let mut c: Option<FloatHistogram> = None;
        let mut failed = false;
        for p in &w.hists[1..] {
            track_hints(&p.h, &mut reset, &mut not_reset);
            match hist::kahan_add(&mut sum, &p.h, c.take()) {
                Ok((c2, out)) => {
                    reconciled |= out.nhcb_reconciled;
                    c = Some(c2);
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if !failed && let Some(cc) = &c {
            match hist::add(&mut sum, cc) {
                Ok(out) => reconciled |= out.nhcb_reconciled,
                Err(_) => failed = true,
            }
        }
        if annotate_histogram_sum(w, ctx, pos, reset && not_reset, reconciled, failed) {
            return Ok(None);
        }
        return histo(sum);
    }
    let (mut sum, mut c) = (0.0, 0.0);
    for p in w.floats {
        (sum, c) = kahan::inc(p.v, sum, c);
    }
    if sum.is_infinite() {
        return float(sum);
    }
    float(sum + c)
}

pub(crate) fn count_over_time(w: &Window, _: &[f64], _: &FnCtx) -> Out {
    float((w.floats.len() + w.hists.len()) as f64)
}

pub(crate) fn present_over_time(_: &Window, _: &[f64], _: &FnCtx) -> Out {
    float(1.0)
}

pub(crate) fn last_over_time(w: &Window, _: &[f64], _: &FnCtx) -> Out {
    let f = w.floats.last();
    let h = w.hists.last();
    match (f, h) {
        (Some(f), Some(h)) if h.t < f.t => float(f.v),
        (Some(f), None) => float(f.v),
        (_, Some(h)) => Ok(Some((0.0, Some(h.h.clone())))),
        (None, None) => Ok(None),
    }
}

pub(crate) fn first_over_time(w: &Window, _: &[f64], _: &FnCtx) -> Out {
    let f = w.floats.first();
    let h = w.hists.first();
    match (f, h) {
        (Some(f), Some(h)) if f.t < h.t => float(f.v),
        (Some(f), None) => float(f.v),
        (_, Some(h)) => Ok(Some((0.0, Some(h.h.clone())))),
        (None, None) => Ok(None),
    }
}

pub(crate) fn ts_of_first_over_time(w: &Window, _: &[f64], _: &FnCtx) -> Out {
    let tf = w.floats.first().map_or(i64::MAX, |p| p.t);
    let th = w.hists.first().map_or(i64::MAX, |p| p.t);
    float(tf.min(th) as f64 / 1000.0)
}

pub(crate) fn ts_of_last_over_time(w: &Window, _: &[f64], _: &FnCtx) -> Out {
    let tf = w.floats.last().map_or(0, |p| p.t);
    let th = w.hists.last().map_or(0, |p| p.t);
    float(tf.max(th) as f64 / 1000.0)
}

fn compare_over_time(w: &Window, ctx: &FnCtx, better: fn(f64, f64) -> bool, ts: bool) -> Out {
    if w.floats.is_empty() {
        return Ok(None);
    }
    mixed_info(w, ctx);
    let mut best = w.floats[0].v;
    let mut best_t = w.floats[0].t;
    for p in w.floats {
        if better(p.v, best) {
            best = p.v;
            best_t = p.t;
        }
    }
    float(if ts { best_t as f64 / 1000.0 } else { best })
}

pub(crate) fn max_over_time(w: &Window, _: &[f64], ctx: &FnCtx) -> Out {
    compare_over_time(w, ctx, |cur, m| cur > m || m.is_nan(), false)
}

pub(crate) fn min_over_time(w: &Window, _: &[f64], ctx: &FnCtx) -> Out {
    compare_over_time(w, ctx, |cur, m| cur < m || m.is_nan(), false)
}

pub(crate) fn ts_of_max_over_time(w: &Window, _: &[f64], ctx: &FnCtx) -> Out {
    compare_over_time(w, ctx, |cur, m| cur >= m || m.is_nan(), true)
}

pub(crate) fn ts_of_min_over_time(w: &Window, _: &[f64], ctx: &FnCtx) -> Out {
    compare_over_time(w, ctx, |cur, m| cur <= m || m.is_nan(), true)
}

pub(crate) fn quantile_over_time(w: &Window, s: &[f64], ctx: &FnCtx) -> Out {
    let q = s.first().copied().unwrap_or(f64::NAN);
    if w.floats.is_empty() {
        return Ok(None);
    }
    if q.is_nan() || !(0.0..=1.0).contains(&q) {
        ctx.q.annotate(Annotation::invalid_quantile(q, ctx.arg_pos(0)));
    }
    mixed_info(w, ctx);
    let mut values: Vec<f64> = w.floats.iter().map(|p| p.v).collect();
    float(quantile(q, &mut values))
}

fn variance(w: &Window, ctx: &FnCtx) -> Option<f64> {
    if w.floats.is_empty() {
        return None;
    }
    mixed_info(w, ctx);
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in w.floats {
        count += 1.0;
        let delta = p.v - (mean + c_mean);
        (mean, c_mean) = kahan::inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan::inc(delta * (p.v - (mean + c_mean)), aux, c_aux);
    }
    Some((aux + c_aux) / count)
}

pub(crate) fn stddev_over_time(w: &Window, _: &[f64], ctx: &FnCtx) -> Out {
    Ok(variance(w, ctx).map(|v| (v.sqrt(), None)))
}

pub(crate) fn stdvar_over_time(w: &Window, _: &[f64], ctx: &FnCtx) -> Out {
    Ok(variance(w, ctx).map(|v| (v, None)))
}

pub(crate) fn mad_over_time(w: &Window, _: &[f64], ctx: &FnCtx) -> Out {
    if w.floats.is_empty() {
        return Ok(None);
    }
    mixed_info(w, ctx);
    if w.floats.iter().any(|p| p.v.is_nan()) {
        return float(f64::NAN);
    }
    let mut values: Vec<f64> = w.floats.iter().map(|p| p.v).collect();
    let median = quantile(0.5, &mut values);
    for v in values.iter_mut() {
        *v = (*v - median).abs();
    }
    float(quantile(0.5, &mut values))
}
