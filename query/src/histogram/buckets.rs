//! Bucket geometry of native histograms: bucket boundaries per schema,
//! a sparse (index, count) view of spans + buckets, resolution reduction,
//! and the bucket iterations PromQL functions use.

use std::sync::OnceLock;

use fenghuo_storage::model::{BucketSpan, FloatHistogram};

/// One bucket with its bounds, as Prometheus's `histogram.Bucket`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
    pub count: f64,
    pub index: i32,
}

impl Bucket {
    /// Fraction of the bucket's width at or below `v` (`v` strictly inside),
    /// linearly or on a logarithmic scale.
    pub fn fraction_below(&self, v: f64, linear: bool) -> f64 {
        if linear {
            return (v - self.lower) / (self.upper - self.lower);
        }
        let log_lower = self.lower.abs().log2();
        let log_upper = self.upper.abs().log2();
        let log_v = v.abs().log2();
        if v > 0.0 {
            (log_v - log_lower) / (log_upper - log_lower)
        } else {
            1.0 - ((log_v - log_upper) / (log_lower - log_upper))
        }
    }

    /// Prometheus's `Bucket.String()`: `[lower,upper):count`.
    pub fn to_go_string(&self) -> String {
        format!(
            "{}{},{}{}:{}",
            if self.lower_inclusive { '[' } else { '(' },
            crate::gofmt::g(self.lower),
            crate::gofmt::g(self.upper),
            if self.upper_inclusive { ']' } else { ')' },
            crate::gofmt::g(self.count)
        )
    }
}

/// Bucket boundaries in [0.5, 1) for schemas 0..=8.
fn exponential_bounds(schema: i32) -> &'static [f64] {
    static TABLE: OnceLock<Vec<Vec<f64>>> = OnceLock::new();
    let t = TABLE.get_or_init(|| {
        (0..=8)
            .map(|s: i32| {
                let n = 1usize << s;
                (0..n).map(|i| (i as f64 / n as f64 - 1.0).exp2()).collect()
            })
            .collect()
    });
    &t[schema.clamp(0, 8) as usize]
}

/// Upper bound of exponential bucket `idx` in `schema`.
pub fn bound_exponential(idx: i32, schema: i32) -> f64 {
    if schema < 0 {
        let exp = (idx as i64) << (-schema);
        if exp == 1024 {
            return f64::MAX;
        }
        return ldexp(1.0, exp);
    }
    let frac_idx = idx & ((1 << schema) - 1);
    let frac = exponential_bounds(schema)[frac_idx as usize];
    let exp = ((idx as i64) >> schema) + 1;
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(frac, exp)
}

fn ldexp(frac: f64, exp: i64) -> f64 {
    let exp = exp.clamp(-2000, 2000) as i32;
    // Split to avoid intermediate overflow/underflow of powi.
    if exp > 1000 {
        frac * 2f64.powi(1000) * 2f64.powi(exp - 1000)
    } else if exp < -1000 {
        frac * 2f64.powi(-1000) * 2f64.powi(exp + 1000)
    } else {
        frac * 2f64.powi(exp)
    }
}

/// Upper bound of bucket `idx` (custom buckets use `custom_values`).
pub fn bound(idx: i32, schema: i32, custom: &[f64]) -> f64 {
    if schema == fenghuo_storage::model::CUSTOM_BUCKETS_SCHEMA {
        let len = custom.len() as i32;
        return if idx >= len {
            f64::INFINITY
        } else if idx < 0 {
            f64::NEG_INFINITY
        } else {
            custom[idx as usize]
        };
    }
    bound_exponential(idx, schema)
}

/// (bucket index, count) pairs in index order, empty buckets included.
pub type Sparse = Vec<(i32, f64)>;

/// The sparse view of a span/bucket layout.
pub fn sparse(spans: &[BucketSpan], buckets: &[f64]) -> Sparse {
    let mut out = Vec::with_capacity(buckets.len());
    let mut idx: i32 = 0;
    let mut b = 0;
    for (i, s) in spans.iter().enumerate() {
        idx = if i == 0 { s.offset } else { idx + s.offset };
        for _ in 0..s.length {
            if b >= buckets.len() {
                return out;
            }
            out.push((idx, buckets[b]));
            idx += 1;
            b += 1;
        }
    }
    out
}

/// Spans of maximal runs of consecutive indexes, and their counts.
pub fn from_sparse(s: &[(i32, f64)]) -> (Vec<BucketSpan>, Vec<f64>) {
    let mut spans: Vec<BucketSpan> = Vec::new();
    let mut buckets = Vec::with_capacity(s.len());
    let mut last: Option<i32> = None;
    for &(idx, c) in s {
        match last {
            Some(l) if idx == l + 1 => {
                if let Some(sp) = spans.last_mut() {
                    sp.length += 1;
                }
            }
            Some(l) => spans.push(BucketSpan {
                offset: idx - l - 1,
                length: 1,
            }),
            None => spans.push(BucketSpan {
                offset: idx,
                length: 1,
            }),
        }
        buckets.push(c);
        last = Some(idx);
    }
    (spans, buckets)
}

/// Bucket index in `target` schema of bucket `idx` in `origin` schema.
pub fn target_idx(idx: i32, origin: i32, target: i32) -> i32 {
    ((idx - 1) >> (origin - target)) + 1
}

/// Merges buckets into a lower-resolution schema, summing in index order.
pub fn reduce(s: &[(i32, f64)], origin: i32, target: i32) -> Sparse {
    if origin <= target {
        return s.to_vec();
    }
    let mut out: Sparse = Vec::with_capacity(s.len());
    for &(idx, c) in s {
        let t = target_idx(idx, origin, target);
        match out.last_mut() {
            Some((li, lc)) if *li == t => *lc += c,
            _ => out.push((t, c)),
        }
    }
    out
}

/// Positive (or negative) buckets in ascending absolute order, with bounds.
pub fn side_buckets(h: &FloatHistogram, positive: bool) -> Vec<Bucket> {
    let (spans, counts) = if positive {
        (&h.positive_spans, &h.positive_buckets)
    } else {
        (&h.negative_spans, &h.negative_buckets)
    };
    let custom = h.uses_custom_buckets();
    sparse(spans, counts)
        .into_iter()
        .map(|(idx, count)| make_bucket(h, idx, count, positive, custom))
        .collect()
}

fn make_bucket(h: &FloatHistogram, idx: i32, count: f64, positive: bool, custom: bool) -> Bucket {
    let (lower, upper) = if positive {
        (
            bound(idx - 1, h.schema, &h.custom_values),
            bound(idx, h.schema, &h.custom_values),
        )
    } else {
        (
            -bound(idx, h.schema, &h.custom_values),
            -bound(idx - 1, h.schema, &h.custom_values),
        )
    };
    let (lower_inclusive, upper_inclusive) = if custom {
        (idx == 0, true)
    } else {
        (lower < 0.0, upper > 0.0)
    };
    Bucket {
        lower,
        upper,
        lower_inclusive,
        upper_inclusive,
        count,
        index: idx,
    }
}

/// The zero bucket.
pub fn zero_bucket(h: &FloatHistogram) -> Bucket {
    Bucket {
        lower: -h.zero_threshold,
        upper: h.zero_threshold,
        lower_inclusive: true,
        upper_inclusive: true,
        count: h.zero_count,
        index: 0,
    }
}

fn clamp_to_zero_threshold(b: &mut Bucket, zt: f64) {
    if b.upper < 0.0 && b.upper > -zt {
        b.upper = -zt;
    } else if b.lower > 0.0 && b.lower < zt {
        b.lower = zt;
    }
}

/// All buckets from the lowest to the highest (Prometheus's `AllBucketIterator`).
pub fn all_buckets(h: &FloatHistogram) -> Vec<Bucket> {
    let mut out = Vec::new();
    let mut neg = side_buckets(h, false);
    neg.reverse();
    for mut b in neg {
        clamp_to_zero_threshold(&mut b, h.zero_threshold);
        out.push(b);
    }
    if h.zero_count > 0.0 {
        out.push(zero_bucket(h));
    }
    for mut b in side_buckets(h, true) {
        clamp_to_zero_threshold(&mut b, h.zero_threshold);
        out.push(b);
    }
    out
}

/// All buckets from the highest to the lowest (`AllReverseBucketIterator`).
pub fn all_buckets_reverse(h: &FloatHistogram) -> Vec<Bucket> {
    let mut out = all_buckets(h);
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_match_prometheus() {
        assert_eq!(bound_exponential(0, 0), 1.0);
        assert_eq!(bound_exponential(1, 0), 2.0);
        assert_eq!(bound_exponential(-1, 0), 0.5);
        assert!((bound_exponential(1, 1) - std::f64::consts::SQRT_2).abs() < 1e-15);
        assert_eq!(bound_exponential(1, -1), 4.0);
        assert_eq!(bound_exponential(1024, 0), f64::MAX);
    }

    #[test]
    fn sparse_round_trip_and_reduce() {
        let spans = vec![
            BucketSpan {
                offset: -1,
                length: 2,
            },
            BucketSpan { offset: 2, length: 1 },
        ];
        let s = sparse(&spans, &[1.0, 2.0, 3.0]);
        assert_eq!(s, vec![(-1, 1.0), (0, 2.0), (3, 3.0)]);
        assert_eq!(from_sparse(&s).0, spans);
        assert_eq!(reduce(&s, 1, 0), vec![(0, 3.0), (2, 3.0)]);
    }
}
