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
            if self.custom_values.windows(2).any(|w| !(w[0] < w[1])) {
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

fn check_spans(side: &str, spans: &[BucketSpan], buckets: usize) -> Result<(), String> {
    let total: u64 = spans.iter().map(|s| u64::from(s.length)).sum();
    if total != buckets as u64 {
        return Err(format!(
            "histogram {side} spans cover {total} buckets but {buckets} bucket counts are given"
        ));
    }
    for (i, s) in spans.iter().enumerate() {
        if i > 0 && s.offset < 0 {
            return Err(format!("histogram {side} span {i} has negative offset {}", s.offset));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
