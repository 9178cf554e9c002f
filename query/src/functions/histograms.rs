//! Histogram functions over instant vectors: `histogram_count/sum/avg`,
//! `histogram_stddev/stdvar`, `histogram_quantile(s)` and
//! `histogram_fraction`, for native histograms and classic `le` buckets.

use std::collections::HashMap;
use std::sync::Arc;

use fenghuo_storage_api::model::{FloatHistogram, Labels};

use super::FnCtx;
use crate::annotations::Annotation;
use crate::error::QueryError;
use crate::eval::{Elem, Metric, Vector};
use crate::kahan;
use crate::quantile::{self, ClassicBucket};

fn per_histogram(vals: &[Vector], f: impl Fn(&FloatHistogram) -> f64) -> Vector {
    vals[0]
        .iter()
        .filter_map(|e| {
            e.h.as_ref().map(|h| Elem {
                metric: e.metric.clone(),
                t: e.t,
                f: f(h),
                h: None,
                drop_name: true,
            })
        })
        .collect()
}

pub(crate) fn simple(vals: &[Vector], ctx: &FnCtx) -> Result<Vector, QueryError> {
    Ok(match ctx.name {
        "histogram_count" => per_histogram(vals, |h| h.count),
        "histogram_sum" => per_histogram(vals, |h| h.sum),
        _ => per_histogram(vals, |h| h.sum / h.count),
    })
}

pub(crate) fn variance(vals: &[Vector], ctx: &FnCtx) -> Result<Vector, QueryError> {
    let stddev = ctx.name == "histogram_stddev";
    Ok(per_histogram(vals, |h| {
        let mean = h.sum / h.count;
        let (mut var, mut c) = (0.0, 0.0);
        let custom = h.uses_custom_buckets();
        for b in h.all_buckets() {
            if b.count == 0.0 {
                continue;
            }
            let val = if custom {
                (b.upper + b.lower) / 2.0
            } else if b.lower <= 0.0 && b.upper >= 0.0 {
                0.0
            } else {
                let v = (b.upper * b.lower).sqrt();
                if b.upper < 0.0 { -v } else { v }
            };
            let delta = val - mean;
            (var, c) = kahan::inc(b.count * delta * delta, var, c);
        }
        var += c;
        var /= h.count;
        if stddev { var.sqrt() } else { var }
    }))
}

/// Classic buckets grouped by series (labels without `le`), and native
/// histograms, of one input vector (Prometheus's `resetHistograms`).
struct Split {
    classic: Vec<(Metric, Vec<ClassicBucket>)>,
    native: Vec<Elem>,
}

fn split_histograms(input: &Vector, arg_pos: usize, ctx: &FnCtx) -> Split {
    let mut classic: Vec<(Metric, Vec<ClassicBucket>)> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut native: Vec<Elem> = Vec::new();
    for e in input {
        if e.h.is_some() {
            native.push(e.clone());
            continue;
        }
        let le = e.metric.get("le").unwrap_or("");
        // Prometheus parses bucket bounds with strconv.ParseFloat.
        let Some(upper) = fenghuo_gofmt::parse_float(le).ok() else {
            ctx.q.annotate(Annotation::bad_bucket_label(
                e.metric.metric_name().unwrap_or(""),
                le,
                arg_pos,
            ));
            continue;
        };
        let key = e.metric.without(&["le"]);
        let i = match index.get(&key) {
            Some(i) => *i,
            None => {
                index.insert(key.clone(), classic.len());
                classic.push((Arc::new(key), Vec::new()));
                classic.len() - 1
            }
        };
        classic[i].1.push(ClassicBucket {
            upper_bound: upper,
            count: e.f,
        });
    }
    for n in native.iter_mut() {
        if let Some(&i) = index.get(&*n.metric)
            && !classic[i].1.is_empty()
        {
            ctx.q.annotate(Annotation::mixed_classic_native_histograms(
                n.metric.metric_name().unwrap_or(""),
                arg_pos,
            ));
            classic[i].1.clear();
            n.h = None;
        }
    }
    Split { classic, native }
}

pub(crate) fn quantile(vals: &[Vector], ctx: &FnCtx) -> Result<Vector, QueryError> {
    if vals.len() < 2 || vals[0].is_empty() {
        return Ok(Vec::new());
    }
    let q = vals[0][0].f;
    if q.is_nan() || !(0.0..=1.0).contains(&q) {
        ctx.q.annotate(Annotation::invalid_quantile(q, ctx.arg_pos(0)));
    }
    let pos = ctx.arg_pos(1);
    let split = split_histograms(&vals[1], pos, ctx);
    let mut out = Vec::new();
    for e in &split.native {
        let Some(h) = &e.h else { continue };
        let (v, annos) = quantile::histogram_quantile(q, h, e.metric.metric_name().unwrap_or(""), pos);
        annos.into_iter().for_each(|a| ctx.q.annotate(a));
        out.push(Elem {
            metric: e.metric.clone(),
            t: e.t,
            f: v,
            h: None,
            drop_name: true,
        });
    }
    for (metric, buckets) in split.classic {
        if buckets.is_empty() {
            continue;
        }
        let (v, m) = quantile::bucket_quantile(q, buckets);
        if m.forced {
            ctx.q.annotate(Annotation::forced_monotonicity(
                metric.metric_name().unwrap_or(""),
                pos,
                ctx.ts,
                m.min_bucket,
                m.max_bucket,
                m.max_diff,
            ));
        }
        out.push(Elem {
            metric,
            t: ctx.ts,
            f: v,
            h: None,
            drop_name: true,
        });
    }
    Ok(out)
}

/// Prometheus's `labels.FormatOpenMetricsFloat`.
fn open_metrics_float(f: f64) -> String {
    if f == 1.0 {
        return "1.0".into();
    }
    if f == 0.0 {
        return "0.0".into();
    }
    if f == -1.0 {
        return "-1.0".into();
    }
    let s = crate::gofmt::g(f);
    if s.contains(['e', '.']) || f.is_nan() || f.is_infinite() {
        s
    } else {
        format!("{s}.0")
    }
}

pub(crate) fn quantiles(vals: &[Vector], ctx: &FnCtx) -> Result<Vector, QueryError> {
    let label = ctx.string_arg(1);
    let mut qs = Vec::new();
    for (i, v) in vals.iter().enumerate().skip(2) {
        let q = v.first().map_or(f64::NAN, |e| e.f);
        if q.is_nan() || !(0.0..=1.0).contains(&q) {
            ctx.q.annotate(Annotation::invalid_quantile(q, ctx.arg_pos(i)));
        }
        qs.push(q);
    }
    let pos = ctx.arg_pos(0);
    let split = split_histograms(&vals[0], pos, ctx);
    let mut out = Vec::new();
    let with_q = |m: &Metric, q: f64| -> Metric {
        let mut ls = (**m).clone();
        ls.set(&label, &open_metrics_float(q));
        Arc::new(ls)
    };
    for &q in &qs {
        for e in &split.native {
            let Some(h) = &e.h else { continue };
            let (v, annos) = quantile::histogram_quantile(q, h, e.metric.metric_name().unwrap_or(""), pos);
            annos.into_iter().for_each(|a| ctx.q.annotate(a));
            out.push(Elem {
                metric: with_q(&e.metric, q),
                t: e.t,
                f: v,
                h: None,
                drop_name: true,
            });
        }
        for (metric, buckets) in &split.classic {
            if buckets.is_empty() {
                continue;
            }
            let (v, m) = quantile::bucket_quantile(q, buckets.clone());
            if m.forced {
                ctx.q.annotate(Annotation::forced_monotonicity(
                    metric.metric_name().unwrap_or(""),
                    pos,
                    ctx.ts,
                    m.min_bucket,
                    m.max_bucket,
                    m.max_diff,
                ));
            }
            out.push(Elem {
                metric: with_q(metric, q),
                t: ctx.ts,
                f: v,
                h: None,
                drop_name: true,
            });
        }
    }
    Ok(out)
}

pub(crate) fn fraction(vals: &[Vector], ctx: &FnCtx) -> Result<Vector, QueryError> {
    if vals.len() < 3 || vals[0].is_empty() || vals[1].is_empty() {
        return Ok(Vec::new());
    }
    let lower = vals[0][0].f;
    let upper = vals[1][0].f;
    let pos = ctx.arg_pos(2);
    let split = split_histograms(&vals[2], pos, ctx);
    let mut out = Vec::new();
    for e in &split.native {
        let Some(h) = &e.h else { continue };
        let (v, annos) =
            quantile::histogram_fraction(lower, upper, h, e.metric.metric_name().unwrap_or(""), pos);
        annos.into_iter().for_each(|a| ctx.q.annotate(a));
        out.push(Elem {
            metric: e.metric.clone(),
            t: e.t,
            f: v,
            h: None,
            drop_name: true,
        });
    }
    for (metric, buckets) in split.classic {
        if buckets.is_empty() {
            continue;
        }
        out.push(Elem {
            metric,
            t: ctx.ts,
            f: quantile::bucket_fraction(lower, upper, buckets),
            h: None,
            drop_name: true,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_metrics_floats() {
        assert_eq!(open_metrics_float(0.5), "0.5");
        assert_eq!(open_metrics_float(2.0), "2.0");
        assert_eq!(open_metrics_float(1.0), "1.0");
    }
}
