//! The native-histogram data model (float form), as Prometheus's
//! `histogram.FloatHistogram` lays it out. Arithmetic on histograms belongs
//! to the query engine; this module only holds the data and its invariants.

/// Prometheus's counter-reset hint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CounterResetHint {
    #[default]
    Unknown,
    CounterReset,
    NotCounterReset,
    Gauge,
}

/// A run of consecutive buckets: `offset` is the gap (in bucket indexes) to
/// the previous span's end, or the first bucket's index for the first span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BucketSpan {
    pub offset: i32,
    pub length: u32,
}

/// Schema number of histograms with custom bucket boundaries (NHCB).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// A native histogram with float counts. Bucket counts are absolute (not
/// deltas). For schema −53 the bucket boundaries are `custom_values`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FloatHistogram {
    pub counter_reset_hint: CounterResetHint,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    pub positive_spans: Vec<BucketSpan>,
    pub negative_spans: Vec<BucketSpan>,
    pub positive_buckets: Vec<f64>,
    pub negative_buckets: Vec<f64>,
    pub custom_values: Vec<f64>,
}

impl FloatHistogram {
    /// The zero sample at a series' created timestamp: a counter reset by definition, with this
    /// histogram's schema, zero threshold and custom bounds so it does not force a new chunk.
    pub fn zero_like(&self) -> Self {
        Self {
            counter_reset_hint: CounterResetHint::CounterReset,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            custom_values: self.custom_values.clone(),
            ..Self::default()
        }
    }

    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// Checks the structural invariants remote write must satisfy: span
    /// lengths add up to bucket counts, a valid schema, no negative counts
    /// (for non-gauge histograms), custom values only for schema −53.
    pub fn validate(&self) -> Result<(), String> {
        if !(-4..=8).contains(&self.schema) && self.schema != CUSTOM_BUCKETS_SCHEMA {
            return Err(format!("histogram has invalid schema {}", self.schema));
        }
        check_spans("positive", &self.positive_spans, self.positive_buckets.len())?;
        check_spans("negative", &self.negative_spans, self.negative_buckets.len())?;
        if self.uses_custom_buckets() {
            if !self.negative_buckets.is_empty() || !self.negative_spans.is_empty() {
                return Err("histogram with custom buckets must not have negative buckets".into());
            }
            if self.zero_count != 0.0 || self.zero_threshold != 0.0 {
                return Err("histogram with custom buckets must not have a zero bucket".into());
            }
            if self
                .custom_values
                .windows(2)
                .any(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
            {
                return Err("histogram custom bucket bounds must be strictly increasing".into());
            }
        } else if !self.custom_values.is_empty() {
            return Err("histogram with exponential schema must not have custom bounds".into());
        }
        if self.zero_threshold < 0.0 || self.zero_threshold.is_nan() {
            return Err("histogram has a negative or NaN zero threshold".into());
        }
        Ok(())
    }
}

/// One bucket of a histogram with its boundaries, as Prometheus's bucket
/// iterators yield them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
    pub count: f64,
    /// Bucket index in the histogram's schema (irrelevant for the zero bucket).
    pub index: i32,
}

/// The upper boundary of bucket `idx` in `schema` (custom bounds for schema
/// −53: index −1 is −Inf, `len` is +Inf). For exponential schemas the
/// boundary is 2^(idx·2^−schema); the last finite bucket ends at `f64::MAX`
/// so that ±Inf observations land in a bucket of their own.
pub fn bucket_bound(idx: i32, schema: i32, custom_values: &[f64]) -> f64 {
    if schema == CUSTOM_BUCKETS_SCHEMA {
        let len = custom_values.len() as i64;
        return match i64::from(idx) {
            i if i >= len => f64::INFINITY,
            i if i < 0 => f64::NEG_INFINITY,
            i => custom_values[i as usize],
        };
    }
    if schema < 0 {
        let exp = i64::from(idx) << -schema;
        if exp == 1024 {
            return f64::MAX;
        }
        return ldexp(1.0, exp);
    }
    // Schemas above 8 do not exist (validation refuses them); clamping keeps an unvalidated
    // histogram from indexing past the table.
    let schema = schema.min(8);
    let frac_idx = idx & ((1 << schema) - 1);
    let frac = EXPONENTIAL_BOUND_FRACTIONS[schema as usize][frac_idx as usize];
    let exp = i64::from(idx >> schema) + 1;
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(frac, exp)
}

/// Mantissas of the bucket bounds per schema 0..=8: entry k of schema s is
/// 0.5·2^(k/2^s), in [0.5, 1). They are built the way Prometheus's bound
/// table was, so that boundaries agree to the last bit: schema 1 is
/// {0.5, 1/√2}; each further schema interleaves the previous one with its
/// entries times 2^(1/2^s), that factor being 2 square-rooted s times.
static EXPONENTIAL_BOUND_FRACTIONS: std::sync::LazyLock<Vec<Vec<f64>>> = std::sync::LazyLock::new(|| {
    let mut table = vec![vec![0.5], vec![0.5, 1.0 / 2f64.sqrt()]];
    for schema in 2..=8 {
        let factor = (0..schema).fold(2f64, |r, _| r.sqrt());
        let previous = &table[schema - 1];
        let next = previous.iter().flat_map(|f| [*f, f * factor]).collect();
        table.push(next);
    }
    table
});

/// `frac · 2^exp`, exact for the exponents histograms use.
fn ldexp(frac: f64, exp: i64) -> f64 {
    let mut x = frac;
    let mut e = exp;
    // Scale in steps that stay within the normal range of f64.
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    x * 2f64.powi(e as i32)
}

impl FloatHistogram {
    /// Positive buckets in ascending order (the only buckets of custom-bucket
    /// histograms).
    pub fn positive_buckets_iter(&self) -> impl Iterator<Item = Bucket> + '_ {
        spans_indexes(&self.positive_spans)
            .zip(self.positive_buckets.iter())
            .map(|(idx, count)| {
                let lower = bucket_bound(idx - 1, self.schema, &self.custom_values);
                let upper = bucket_bound(idx, self.schema, &self.custom_values);
                let (lower_inclusive, upper_inclusive) = if self.uses_custom_buckets() {
                    (idx == 0, true)
                } else {
                    (lower < 0.0, upper > 0.0)
                };
                Bucket {
                    lower,
                    upper,
                    lower_inclusive,
                    upper_inclusive,
                    count: *count,
                    index: idx,
                }
            })
    }

    /// Negative buckets in ascending index order (i.e. from the bucket
    /// nearest zero outwards).
    pub fn negative_buckets_iter(&self) -> impl Iterator<Item = Bucket> + '_ {
        spans_indexes(&self.negative_spans)
            .zip(self.negative_buckets.iter())
            .map(|(idx, count)| {
                let lower = -bucket_bound(idx, self.schema, &self.custom_values);
                let upper = -bucket_bound(idx - 1, self.schema, &self.custom_values);
                Bucket {
                    lower,
                    upper,
                    lower_inclusive: lower < 0.0,
                    upper_inclusive: upper > 0.0,
                    count: *count,
                    index: idx,
                }
            })
    }

    /// The zero bucket `[-threshold, threshold]`.
    pub fn zero_bucket(&self) -> Bucket {
        Bucket {
            lower: -self.zero_threshold,
            upper: self.zero_threshold,
            lower_inclusive: true,
            upper_inclusive: true,
            count: self.zero_count,
            index: 0,
        }
    }

    /// All buckets from the most negative to the most positive, the zero
    /// bucket in between when it has observations, with boundaries clipped
    /// to the zero threshold (Prometheus's `AllBucketIterator`).
    pub fn all_buckets(&self) -> Vec<Bucket> {
        let zt = self.zero_threshold;
        let clip = |mut b: Bucket| {
            if b.upper < 0.0 && b.upper > -zt {
                b.upper = -zt;
            } else if b.lower > 0.0 && b.lower < zt {
                b.lower = zt;
            }
            b
        };
        let mut negative: Vec<Bucket> = self.negative_buckets_iter().map(clip).collect();
        negative.reverse();
        let mut out = negative;
        if self.zero_count > 0.0 {
            out.push(self.zero_bucket());
        }
        out.extend(self.positive_buckets_iter().map(clip));
        out
    }
}

/// Bucket indexes covered by `spans`, in order.
pub fn spans_indexes(spans: &[BucketSpan]) -> impl Iterator<Item = i32> + '_ {
    let mut next = 0i32;
    spans.iter().flat_map(move |s| {
        let start = next.saturating_add(s.offset);
        next = start.saturating_add(s.length as i32);
        (0..s.length as i32).map(move |i| start + i)
    })
}

fn check_spans(side: &str, spans: &[BucketSpan], buckets: usize) -> Result<(), String> {
    let total: u64 = spans.iter().map(|s| u64::from(s.length)).sum();
    if total != buckets as u64 {
        return Err(format!(
            "histogram {side} spans cover {total} buckets but {buckets} bucket counts are given"
        ));
    }
    for (i, s) in spans.iter().enumerate() {
        if i > 0 && s.offset < 0 {
            return Err(format!(
                "histogram {side} span {i} has negative offset {}",
                s.offset
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_bounds_match_prometheus() {
        // Values from Prometheus's bound table for schema 1 and 2.
        assert_eq!(bucket_bound(1, 1, &[]), 2.0 * 0.7071067811865475);
        assert_eq!(bucket_bound(255, 8, &[]), 2.0 * 0.9972960560854698);
        assert_eq!(bucket_bound(9, 4, &[]), 2.0 * 0.7384130729697496);
        assert_eq!(bucket_bound(1, 2, &[]), 2.0 * 0.5946035575013605);
        assert_eq!(bucket_bound(3, 2, &[]), 2.0 * 0.8408964152537144);
        assert_eq!(bucket_bound(0, 3, &[]), 1.0);
        assert_eq!(bucket_bound(-1, 0, &[]), 0.5);
        assert_eq!(bucket_bound(2, -1, &[]), 16.0);
        assert_eq!(bucket_bound(1024, 0, &[]), f64::MAX);
    }

    #[test]
    fn all_buckets_orders_negative_zero_positive() {
        let h = FloatHistogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: 1.0,
            count: 6.0,
            positive_spans: vec![BucketSpan { offset: 0, length: 2 }],
            positive_buckets: vec![1.0, 2.0],
            negative_spans: vec![BucketSpan { offset: 1, length: 1 }],
            negative_buckets: vec![2.0],
            ..Default::default()
        };
        let b: Vec<_> = h
            .all_buckets()
            .iter()
            .map(|b| (b.lower, b.upper, b.count))
            .collect();
        assert_eq!(
            b,
            vec![
                (-2.0, -1.0, 2.0),
                (-0.001, 0.001, 1.0),
                (0.5, 1.0, 1.0),
                (1.0, 2.0, 2.0)
            ]
        );
    }

    #[test]
    fn custom_buckets_use_custom_bounds() {
        let h = FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            custom_values: vec![1.0, 5.0],
            positive_spans: vec![BucketSpan { offset: 0, length: 3 }],
            positive_buckets: vec![1.0, 2.0, 3.0],
            ..Default::default()
        };
        let b: Vec<_> = h
            .positive_buckets_iter()
            .map(|b| (b.lower, b.upper, b.lower_inclusive))
            .collect();
        assert_eq!(
            b,
            vec![
                (f64::NEG_INFINITY, 1.0, true),
                (1.0, 5.0, false),
                (5.0, f64::INFINITY, false)
            ]
        );
    }

    #[test]
    fn span_and_bucket_mismatch_is_rejected() {
        let h = FloatHistogram {
            positive_spans: vec![BucketSpan { offset: 0, length: 2 }],
            positive_buckets: vec![1.0],
            ..Default::default()
        };
        assert!(h.validate().unwrap_err().contains("cover 2 buckets"));
    }
}
