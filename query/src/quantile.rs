//! Quantile estimation: over plain values (`quantile`, `quantile_over_time`),
//! over classic `le` buckets and over native histograms, plus the bucket
//! fraction estimates of `histogram_fraction` (Prometheus's `quantile.go`).

use fenghuo_storage_api::model::FloatHistogram;

use crate::annotations::Annotation;
use crate::histogram::{Bucket, BucketExt, all_buckets_reverse};

/// Tolerance below which neighbouring classic buckets count as equal.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// Relative float comparison (Prometheus's `almost.Equal`).
pub fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const STALE: u64 = fenghuo_storage_api::model::STALE_NAN_BITS;
    if a.to_bits() == STALE || b.to_bits() == STALE {
        return a.to_bits() == STALE && b.to_bits() == STALE;
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let min_normal = f64::from_bits(0x0010_0000_0000_0000);
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < epsilon * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// The φ-quantile of `values` (sorted in place; NaN sorts first).
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| {
        if a.is_nan() && !b.is_nan() {
            std::cmp::Ordering::Less
        } else if b.is_nan() && !a.is_nan() {
            std::cmp::Ordering::Greater
        } else {
            a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal)
        }
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// A classic histogram bucket: upper bound and cumulative count.
#[derive(Clone, Copy, Debug)]
pub struct ClassicBucket {
    pub upper_bound: f64,
    pub count: f64,
}

/// Outcome of [`bucket_quantile`] besides the value.
#[derive(Clone, Copy, Debug, Default)]
pub struct Monotonicity {
    pub forced: bool,
    pub min_bucket: f64,
    pub max_bucket: f64,
    pub max_diff: f64,
}

fn sort_and_coalesce(buckets: &mut Vec<ClassicBucket>) {
    buckets.sort_by(|a, b| {
        a.upper_bound
            .partial_cmp(&b.upper_bound)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut out: Vec<ClassicBucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match out.last_mut() {
            Some(last) if last.upper_bound == b.upper_bound => last.count += b.count,
            _ => out.push(*b),
        }
    }
    *buckets = out;
}

fn ensure_monotonic(buckets: &mut [ClassicBucket]) -> Monotonicity {
    let mut m = Monotonicity {
        forced: false,
        min_bucket: f64::INFINITY,
        max_bucket: f64::NEG_INFINITY,
        max_diff: 0.0,
    };
    let Some(first) = buckets.first() else { return m };
    let mut prev = first.count;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.count = prev;
            continue;
        }
        if curr < prev {
            b.count = prev;
            m.forced = true;
            if b.upper_bound < m.min_bucket {
                m.min_bucket = b.upper_bound;
            }
            if b.upper_bound > m.max_bucket {
                m.max_bucket = b.upper_bound;
            }
            if prev - curr > m.max_diff {
                m.max_diff = prev - curr;
            }
            continue;
        }
        prev = curr;
    }
    m
}

/// `histogram_quantile` over classic buckets.
pub fn bucket_quantile(q: f64, mut buckets: Vec<ClassicBucket>) -> (f64, Monotonicity) {
    let none = Monotonicity::default();
    if q.is_nan() {
        return (f64::NAN, none);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, none);
    }
    if q > 1.0 {
        return (f64::INFINITY, none);
    }
    buckets.sort_by(|a, b| {
        a.upper_bound
            .partial_cmp(&b.upper_bound)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if buckets.last().is_none_or(|b| b.upper_bound != f64::INFINITY) {
        return (f64::NAN, none);
    }
    sort_and_coalesce(&mut buckets);
    let m = ensure_monotonic(&mut buckets);
    if buckets.len() < 2 {
        return (f64::NAN, m);
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return (f64::NAN, m);
    }
    let mut rank = q * observations;
    let b = buckets[..buckets.len() - 1].partition_point(|x| x.count < rank);
    let v = if b == buckets.len() - 1 {
        buckets[buckets.len() - 2].upper_bound
    } else if b == 0 && buckets[0].upper_bound <= 0.0 {
        buckets[0].upper_bound
    } else {
        let mut start = 0.0;
        let end = buckets[b].upper_bound;
        let mut count = buckets[b].count;
        if b > 0 {
            start = buckets[b - 1].upper_bound;
            count -= buckets[b - 1].count;
            rank -= buckets[b - 1].count;
        }
        start + (end - start) * (rank / count)
    };
    (v, m)
}

/// `histogram_quantile` over a native histogram.
pub fn histogram_quantile(q: f64, h: &FloatHistogram, metric: &str, pos: usize) -> (f64, Vec<Annotation>) {
    let mut annos = Vec::new();
    if q < 0.0 {
        return (f64::NEG_INFINITY, annos);
    }
    if q > 1.0 {
        return (f64::INFINITY, annos);
    }
    if h.count == 0.0 || q.is_nan() {
        return (f64::NAN, annos);
    }
    let forward = h.sum.is_nan() || q < 0.5;
    let bs = if forward {
        h.all_buckets()
    } else {
        all_buckets_reverse(h)
    };
    let mut rank = if forward { q * h.count } else { (1.0 - q) * h.count };
    let mut count = 0.0;
    let mut idx = 0;
    let mut bucket = None;
    while idx < bs.len() {
        let b = bs[idx];
        idx += 1;
        bucket = Some(b);
        if b.count == 0.0 {
            continue;
        }
        count += b.count;
        if count >= rank {
            break;
        }
    }
    let mut bucket = bucket.unwrap_or(Bucket {
        lower: 0.0,
        upper: 0.0,
        lower_inclusive: false,
        upper_inclusive: false,
        count: 0.0,
        index: 0,
    });
    let custom = h.uses_custom_buckets();
    if !custom && bucket.lower < 0.0 && bucket.upper > 0.0 {
        if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
            bucket.lower = 0.0;
        } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
            bucket.upper = 0.0;
        }
    } else if custom {
        if bucket.lower == f64::NEG_INFINITY {
            if bucket.upper <= 0.0 {
                return (bucket.upper, annos);
            }
            bucket.lower = 0.0;
        } else if bucket.upper == f64::INFINITY {
            return (bucket.lower, annos);
        }
    }
    if count > h.count {
        count = h.count;
    }
    if count < rank {
        if h.sum.is_nan() {
            annos.push(Annotation::quantile_nan_result(metric, pos));
            return (f64::NAN, annos);
        }
        return (bucket.upper, annos);
    }
    if forward {
        rank -= count - bucket.count;
    } else {
        rank = count - rank;
    }
    if h.sum.is_nan() {
        for b in &bs[idx..] {
            count += b.count;
        }
        if count < h.count {
            annos.push(Annotation::quantile_nan_skew(metric, pos));
        }
    }
    let fraction = rank / bucket.count;
    if custom || (bucket.lower <= 0.0 && bucket.upper >= 0.0) {
        return (bucket.lower + (bucket.upper - bucket.lower) * fraction, annos);
    }
    let log_lower = bucket.lower.abs().log2();
    let log_upper = bucket.upper.abs().log2();
    if bucket.lower > 0.0 {
        return ((log_lower + (log_upper - log_lower) * fraction).exp2(), annos);
    }
    (
        -(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2(),
        annos,
    )
}

/// `histogram_fraction` over a native histogram.
pub fn histogram_fraction(
    lower: f64,
    upper: f64,
    h: &FloatHistogram,
    metric: &str,
    pos: usize,
) -> (f64, Vec<Annotation>) {
    let mut annos = Vec::new();
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return (f64::NAN, annos);
    }
    if lower >= upper {
        return (0.0, annos);
    }
    let (mut count, mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let bs = h.all_buckets();
    let custom = h.uses_custom_buckets();
    let mut idx = 0;
    while idx < bs.len() {
        let mut b = bs[idx];
        idx += 1;
        count += b.count;
        let mut zero_bucket = false;
        if b.lower <= 0.0 && b.upper >= 0.0 {
            zero_bucket = true;
            if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
                b.lower = 0.0;
            } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
                b.upper = 0.0;
            }
        }
        let interpolate_linear = |v: f64, rank: f64| {
            if b.lower == f64::NEG_INFINITY {
                b.count
            } else {
                rank + b.count * b.fraction_below(v, true)
            }
        };
        let interpolate_exp = |v: f64, rank: f64| rank + b.count * b.fraction_below(v, false);
        if !lower_set && b.lower >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && b.lower >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && b.lower < lower && b.upper > lower {
            lower_rank = if custom || zero_bucket {
                interpolate_linear(lower, rank)
            } else {
                interpolate_exp(lower, rank)
            };
            lower_set = true;
        }
        if !upper_set && b.lower < upper && b.upper > upper {
            upper_rank = if custom || zero_bucket {
                interpolate_linear(upper, rank)
            } else {
                interpolate_exp(upper, rank)
            };
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank += b.count;
    }
    if h.sum.is_nan() {
        for b in &bs[idx..] {
            count += b.count;
        }
        if count < h.count {
            annos.push(Annotation::fraction_nans(metric, pos));
        }
    } else {
        count = h.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    ((upper_rank - lower_rank) / h.count, annos)
}

/// `histogram_fraction` over classic buckets.
pub fn bucket_fraction(lower: f64, upper: f64, mut buckets: Vec<ClassicBucket>) -> f64 {
    buckets.sort_by(|a, b| {
        a.upper_bound
            .partial_cmp(&b.upper_bound)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if buckets.last().is_none_or(|b| b.upper_bound != f64::INFINITY) {
        return f64::NAN;
    }
    sort_and_coalesce(&mut buckets);
    let count = buckets[buckets.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut lower_bound = if buckets[0].upper_bound <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    for (i, b) in buckets.iter().enumerate() {
        if i > 0 {
            lower_bound = buckets[i - 1].upper_bound;
        }
        let upper_bound = b.upper_bound;
        let interpolate = |v: f64| {
            if lower_bound == f64::NEG_INFINITY {
                b.count
            } else {
                rank + (b.count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
            }
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(upper: f64, count: f64) -> ClassicBucket {
        ClassicBucket {
            upper_bound: upper,
            count,
        }
    }

    #[test]
    fn classic_quantile_interpolates() {
        let (v, m) = bucket_quantile(0.5, vec![b(1.0, 10.0), b(2.0, 20.0), b(f64::INFINITY, 20.0)]);
        assert_eq!(v, 1.0);
        assert!(!m.forced);
        let (v, m) = bucket_quantile(0.75, vec![b(1.0, 10.0), b(2.0, 8.0), b(f64::INFINITY, 20.0)]);
        assert!(m.forced);
        assert!((v - 2.0).abs() < 1e-9, "{v}");
    }

    #[test]
    fn quantile_over_values() {
        assert_eq!(quantile(0.5, &mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(quantile(0.25, &mut [1.0, 2.0, 3.0]), 1.5);
        assert!(quantile(0.5, &mut []).is_nan());
    }

    #[test]
    fn almost_equal_semantics() {
        assert!(almost_equal(1.0, 1.0 + 1e-9, 1e-6));
        assert!(!almost_equal(0.0, 1e-300, 1e-6));
        assert!(almost_equal(f64::NAN, f64::NAN, 1e-6));
    }
}
