//! Functions over instant vectors and scalars: math, clamping, rounding,
//! date parts, sorting, `scalar`, `vector`, `time`, `absent`.

use std::cmp::Ordering;
use std::sync::Arc;

use fenghuo_storage_api::model::Labels;

use super::FnCtx;
use crate::annotations::civil_from_days;
use crate::error::QueryError;
use crate::eval::{Elem, Vector};

/// Go's `math.Max` (NaN wins unless +Inf is involved; +0 beats -0).
pub(crate) fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { y } else { x };
    }
    if x > y { x } else { y }
}

/// Go's `math.Min`.
pub(crate) fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { x } else { y };
    }
    if x < y { x } else { y }
}

fn float_fn(v: &Vector, f: impl Fn(f64) -> f64) -> Vector {
    v.iter()
        .filter(|e| e.h.is_none())
        .map(|e| Elem {
            metric: e.metric.clone(),
            t: e.t,
            f: f(e.f),
            h: None,
            drop_name: true,
        })
        .collect()
}

fn scalar_arg(vals: &[Vector], i: usize) -> f64 {
    vals.get(i).and_then(|v| v.first()).map_or(0.0, |e| e.f)
}

fn empty_metric() -> Arc<Labels> {
    Arc::new(Labels::empty())
}

pub(crate) fn math(vals: &[Vector], ctx: &FnCtx) -> Result<Vector, QueryError> {
    let name = ctx.name;
    let f: fn(f64) -> f64 = match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "sgn" => |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return Err(QueryError::exec(format!("unknown function {name}"))),
    };
    Ok(float_fn(&vals[0], f))
}

fn clamp_impl(v: &Vector, min: f64, max: f64) -> Vector {
    if max < min {
        return Vec::new();
    }
    float_fn(v, |x| go_max(min, go_min(max, x)))
}

pub(crate) fn clamp(vals: &[Vector], _: &FnCtx) -> Result<Vector, QueryError> {
    Ok(clamp_impl(&vals[0], scalar_arg(vals, 1), scalar_arg(vals, 2)))
}

pub(crate) fn clamp_max(vals: &[Vector], _: &FnCtx) -> Result<Vector, QueryError> {
    Ok(clamp_impl(&vals[0], f64::NEG_INFINITY, scalar_arg(vals, 1)))
}

pub(crate) fn clamp_min(vals: &[Vector], _: &FnCtx) -> Result<Vector, QueryError> {
    Ok(clamp_impl(&vals[0], scalar_arg(vals, 1), f64::INFINITY))
}

pub(crate) fn round(vals: &[Vector], ctx: &FnCtx) -> Result<Vector, QueryError> {
    let to_nearest = if ctx.args.len() >= 2 {
        scalar_arg(vals, 1)
    } else {
        1.0
    };
    let inv = 1.0 / to_nearest;
    Ok(float_fn(&vals[0], |f| (f * inv + 0.5).floor() / inv))
}

pub(crate) fn scalar(vals: &[Vector], _: &FnCtx) -> Result<Vector, QueryError> {
    let mut found = None;
    for e in vals[0].iter().filter(|e| e.h.is_none()) {
        if found.is_some() {
            return Ok(vec![Elem::float(empty_metric(), f64::NAN)]);
        }
        found = Some(e.f);
    }
    Ok(vec![Elem::float(empty_metric(), found.unwrap_or(f64::NAN))])
}

pub(crate) fn vector(vals: &[Vector], _: &FnCtx) -> Result<Vector, QueryError> {
    Ok(vec![Elem::float(empty_metric(), scalar_arg(vals, 0))])
}

pub(crate) fn time(_: &[Vector], ctx: &FnCtx) -> Result<Vector, QueryError> {
    Ok(vec![Elem::float(empty_metric(), ctx.ts as f64 / 1000.0)])
}

pub(crate) fn pi(_: &[Vector], _: &FnCtx) -> Result<Vector, QueryError> {
    Ok(vec![Elem::float(empty_metric(), std::f64::consts::PI)])
}

pub(crate) fn max_of(vals: &[Vector], _: &FnCtx) -> Result<Vector, QueryError> {
    Ok(vec![Elem::float(
        empty_metric(),
        go_max(scalar_arg(vals, 0), scalar_arg(vals, 1)),
    )])
}

pub(crate) fn min_of(vals: &[Vector], _: &FnCtx) -> Result<Vector, QueryError> {
    Ok(vec![Elem::float(
        empty_metric(),
        go_min(scalar_arg(vals, 0), scalar_arg(vals, 1)),
    )])
}

pub(crate) fn timestamp(vals: &[Vector], _: &FnCtx) -> Result<Vector, QueryError> {
    Ok(vals[0]
        .iter()
        .map(|e| Elem {
            metric: e.metric.clone(),
            t: e.t,
            f: e.t as f64 / 1000.0,
            h: None,
            drop_name: true,
        })
        .collect())
}

/// Start timestamps are not stored, so there is never anything to return
/// (as Prometheus does when they are unavailable).
pub(crate) fn start_timestamp(_: &[Vector], _: &FnCtx) -> Result<Vector, QueryError> {
    Ok(Vec::new())
}

/// Go's insertion sort (what `sort.Sort` does for up to 12 elements),
/// reproducing its order for ties and NaNs.
fn go_sort(v: &mut [Elem], less: impl Fn(&Elem, &Elem) -> bool) {
    if v.len() <= 12 {
        for i in 1..v.len() {
            let mut j = i;
            while j > 0 && less(&v[j], &v[j - 1]) {
                v.swap(j, j - 1);
                j -= 1;
            }
        }
        return;
    }
    v.sort_by(|a, b| {
        if less(a, b) {
            Ordering::Less
        } else if less(b, a) {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    });
}

pub(crate) fn sort(vals: &[Vector], _: &FnCtx) -> Result<Vector, QueryError> {
    let mut v: Vector = vals[0].iter().filter(|e| e.h.is_none()).cloned().collect();
    go_sort(&mut v, |a, b| b.f.is_nan() || b.f > a.f);
    Ok(v)
}

pub(crate) fn sort_desc(vals: &[Vector], _: &FnCtx) -> Result<Vector, QueryError> {
    let mut v: Vector = vals[0].iter().filter(|e| e.h.is_none()).cloned().collect();
    go_sort(&mut v, |a, b| b.f.is_nan() || b.f < a.f);
    Ok(v)
}

/// Natural order: digit runs compare as integers (facette/natsort, as
/// vendored by Prometheus).
pub(crate) fn natsort_less(a: &str, b: &str) -> bool {
    fn chunks(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let bytes = s.as_bytes();
        let mut start = 0;
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                if start < i {
                    out.push(&s[start..i]);
                }
                start = i;
            }
        }
        out
    }
    let ca = chunks(a);
    let cb = chunks(b);
    for i in 0..ca.len() {
        let Some(b_chunk) = cb.get(i) else { return false };
        let ai = ca[i]
            .parse::<i64>()
            .ok()
            .filter(|_| ca[i].bytes().all(|c| c.is_ascii_digit()));
        let bi = b_chunk
            .parse::<i64>()
            .ok()
            .filter(|_| b_chunk.bytes().all(|c| c.is_ascii_digit()));
        if let (Some(x), Some(y)) = (ai, bi) {
            if x == y {
                if i == ca.len() - 1 {
                    return true;
                } else if i == cb.len() - 1 {
                    return false;
                }
                continue;
            }
            return x < y;
        }
        if ca[i] == *b_chunk {
            if i == ca.len() - 1 {
                return true;
            } else if i == cb.len() - 1 {
                return false;
            }
            continue;
        }
        return ca[i] < *b_chunk;
    }
    false
}

fn sort_by_label_impl(vals: &[Vector], ctx: &FnCtx, desc: bool) -> Vector {
    let names: Vec<String> = (1..ctx.args.len()).map(|i| ctx.string_arg(i)).collect();
    let mut v = vals[0].clone();
    let cmp = |a: &Elem, b: &Elem| -> Ordering {
        for n in &names {
            let x = a.metric.get(n).unwrap_or("");
            let y = b.metric.get(n).unwrap_or("");
            if x == y {
                continue;
            }
            let less = natsort_less(x, y);
            return match (less, desc) {
                (true, false) | (false, true) => Ordering::Less,
                _ => Ordering::Greater,
            };
        }
        let o = a.metric.cmp(&b.metric);
        if desc { o.reverse() } else { o }
    };
    go_sort(&mut v, |a, b| cmp(a, b) == Ordering::Less);
    v
}

pub(crate) fn sort_by_label(vals: &[Vector], ctx: &FnCtx) -> Result<Vector, QueryError> {
    Ok(sort_by_label_impl(vals, ctx, false))
}

pub(crate) fn sort_by_label_desc(vals: &[Vector], ctx: &FnCtx) -> Result<Vector, QueryError> {
    Ok(sort_by_label_impl(vals, ctx, true))
}

pub(crate) fn absent(vals: &[Vector], ctx: &FnCtx) -> Result<Vector, QueryError> {
    if !vals[0].is_empty() {
        return Ok(Vec::new());
    }
    let ls = ctx
        .args
        .first()
        .map(crate::eval::call::absent_labels)
        .unwrap_or_default();
    Ok(vec![Elem::float(Arc::new(ls), 1.0)])
}

/// Calendar parts of a Unix time in seconds (UTC).
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    weekday: i64,
    yday: i64,
}

fn civil(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let jan1 = days_from_civil(year, 1, 1);
    Civil {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: (rem % 3600) / 60,
        weekday: (days + 4).rem_euclid(7),
        yday: days - jan1 + 1,
    }
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

/// Go's `int64(f)` on amd64 (NaN and out-of-range give the minimum).
pub(crate) fn go_int64(f: f64) -> i64 {
    if f.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

pub(crate) fn date(vals: &[Vector], ctx: &FnCtx) -> Result<Vector, QueryError> {
    let name = ctx.name;
    let part = |secs: i64| -> f64 {
        let c = civil(secs);
        (match name {
            "days_in_month" => days_in_month(c.year, c.month),
            "day_of_month" => c.day as i64,
            "day_of_week" => c.weekday,
            "day_of_year" => c.yday,
            "hour" => c.hour,
            "minute" => c.minute,
            "month" => c.month as i64,
            _ => c.year,
        }) as f64
    };
    if vals.is_empty() {
        return Ok(vec![Elem::float(empty_metric(), part(ctx.ts / 1000))]);
    }
    Ok(float_fn(&vals[0], |f| part(go_int64(f))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        assert!(natsort_less("a2", "a10"));
        assert!(!natsort_less("a10", "a2"));
        assert!(natsort_less("abc", "abd"));
    }

    #[test]
    fn calendar() {
        let c = civil(0);
        assert_eq!((c.year, c.month, c.day, c.weekday, c.yday), (1970, 1, 1, 4, 1));
        let c = civil(951_782_400); // 2000-02-29
        assert_eq!((c.year, c.month, c.day), (2000, 2, 29));
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(civil(951_782_400).yday, 60);
    }

    #[test]
    fn go_min_max_nan_semantics() {
        assert!(go_max(1.0, f64::NAN).is_nan());
        assert_eq!(go_max(f64::NAN, f64::INFINITY), f64::INFINITY);
        assert_eq!(go_min(f64::NAN, f64::NEG_INFINITY), f64::NEG_INFINITY);
    }
}
