//! Bucket geometry of native histograms for PromQL: a sparse (index, count)
//! view of spans + buckets, resolution reduction, and bucket interpolation.
//! Bounds and bucket iteration are the storage model's (`bucket_bound`,
//! `FloatHistogram::all_buckets`), so every layer agrees with Prometheus's table.

use fenghuo_storage_api::model::{BucketSpan, FloatHistogram, bucket_bound, histogram::spans_indexes};

/// One bucket with its bounds (Prometheus's `histogram.Bucket`): the storage model's type, which
/// also yields the buckets of a histogram (`all_buckets`, `positive_buckets_iter`, …).
pub use fenghuo_storage_api::model::Bucket;

/// What PromQL needs of a bucket beyond its bounds.
pub trait BucketExt {
    /// Fraction of the bucket's width at or below `v` (`v` strictly inside), linearly or on a
    /// logarithmic scale.
    fn fraction_below(&self, v: f64, linear: bool) -> f64;
    /// Prometheus's `Bucket.String()`: `[lower,upper):count`.
    fn to_go_string(&self) -> String;
}

impl BucketExt for Bucket {
    fn fraction_below(&self, v: f64, linear: bool) -> f64 {
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

    fn to_go_string(&self) -> String {
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

/// Upper bound of exponential bucket `idx` in `schema` (Prometheus's bound table, bit for bit).
pub fn bound_exponential(idx: i32, schema: i32) -> f64 {
    bucket_bound(idx, schema, &[])
}

/// (bucket index, count) pairs in index order, empty buckets included.
pub type Sparse = Vec<(i32, f64)>;

/// The sparse view of a span/bucket layout.
pub fn sparse(spans: &[BucketSpan], buckets: &[f64]) -> Sparse {
    spans_indexes(spans).zip(buckets.iter().copied()).collect()
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
    if positive {
        h.positive_buckets_iter().collect()
    } else {
        h.negative_buckets_iter().collect()
    }
}

/// All buckets from the highest to the lowest (`AllReverseBucketIterator`).
pub fn all_buckets_reverse(h: &FloatHistogram) -> Vec<Bucket> {
    let mut out = h.all_buckets();
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
        // Prometheus's table entry 0.7071067811865475 (one ULP below 2^-0.5 computed with exp2).
        assert_eq!(bound_exponential(1, 1), 2.0 * 0.7071067811865475);
        assert_eq!(bound_exponential(-1, 8), 0.9972960560854698);
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
