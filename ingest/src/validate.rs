//! Validation of decoded series: label rules, timestamps, histograms.
//! Every failure names the series (as far as it is known) and the problem.

use std::fmt;

use fenghuo_proto::rw1;
use fenghuo_storage_api::model::{
    BucketSpan, CounterResetHint, FloatHistogram, METRIC_NAME, write_go_quoted,
};

use crate::error::IngestError;
use crate::limits::IngestLimits;
use crate::wire::Pair;

/// Renders raw (possibly invalid) labels for an error message.
pub fn describe_pairs(pairs: &[Pair<'_>]) -> String {
    let mut s = String::from("{");
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(name);
        s.push('=');
        let _ = write_go_quoted(&mut s, value);
    }
    s.push('}');
    s
}

fn invalid(pairs: &[Pair<'_>], reason: impl Into<String>) -> IngestError {
    IngestError::InvalidSeries {
        series: describe_pairs(pairs),
        reason: reason.into(),
    }
}

/// Checks a series' label pairs as the remote-write specs require: names
/// non-empty and within limits, sorted by name with no duplicates, a
/// non-empty `__name__`. Labels with empty values mean "absent" and are
/// dropped (as Prometheus and Mimir do) by the caller, which keeps them in
/// the request's pair vector: [`keep_pair`] says which ones stay.
pub fn series_labels(pairs: &[Pair<'_>], limits: &IngestLimits) -> Result<(), IngestError> {
    if pairs.len() > limits.max_labels_per_series {
        return Err(invalid(
            pairs,
            format!(
                "series has {} labels, more than the limit of {}",
                pairs.len(),
                limits.max_labels_per_series
            ),
        ));
    }
    let mut has_name = false;
    for (i, &(name, value)) in pairs.iter().enumerate() {
        if name.is_empty() {
            return Err(invalid(pairs, "empty label name"));
        }
        if name.len() > limits.max_label_name_bytes {
            return Err(invalid(
                pairs,
                format!(
                    "label name of {} bytes exceeds the limit of {}",
                    name.len(),
                    limits.max_label_name_bytes
                ),
            ));
        }
        if value.len() > limits.max_label_value_bytes {
            return Err(invalid(
                pairs,
                format!(
                    "value of label {name:?} has {} bytes, more than the limit of {}",
                    value.len(),
                    limits.max_label_value_bytes
                ),
            ));
        }
        if i > 0 {
            let prev = pairs[i - 1].0;
            if prev == name {
                return Err(invalid(pairs, format!("duplicate label name {name:?}")));
            }
            if prev > name {
                return Err(invalid(
                    pairs,
                    format!("labels are not sorted by name ({prev:?} before {name:?})"),
                ));
            }
        }
        if name == METRIC_NAME {
            if value.is_empty() {
                return Err(invalid(pairs, "empty metric name"));
            }
            has_name = true;
        }
    }
    if !has_name {
        return Err(invalid(pairs, "missing metric name (__name__ label)"));
    }
    Ok(())
}

/// Whether a pair of a valid series is part of its label set: an empty
/// value means the label is absent.
pub fn keep_pair(pair: &Pair<'_>) -> bool {
    !pair.1.is_empty()
}

/// Rejects timestamps beyond `now + max_future_ms`.
pub fn sample_timestamp(
    series: &impl fmt::Display,
    t: i64,
    now_ms: i64,
    limits: &IngestLimits,
) -> Result<(), IngestError> {
    if t > now_ms.saturating_add(limits.max_future_ms) {
        return Err(IngestError::InvalidSeries {
            series: series.to_string(),
            reason: format!(
                "sample timestamp {t} is more than {}s in the future (receiver time {now_ms})",
                limits.max_future_ms / 1000
            ),
        });
    }
    Ok(())
}

/// Converts a wire histogram (integer or float form) to the stored float
/// form and checks it as Prometheus does.
pub fn histogram(series: &impl fmt::Display, h: &rw1::Histogram) -> Result<FloatHistogram, IngestError> {
    let bad = |reason: String| IngestError::InvalidSeries {
        series: series.to_string(),
        reason: format!("invalid native histogram at timestamp {}: {reason}", h.timestamp),
    };
    let (count, is_int) = match h.count {
        Some(rw1::histogram::Count::CountInt(c)) => (c as f64, true),
        Some(rw1::histogram::Count::CountFloat(c)) => (c, false),
        None => (0.0, h.positive_counts.is_empty() && h.negative_counts.is_empty()),
    };
    let zero_count = match h.zero_count {
        Some(rw1::histogram::ZeroCount::ZeroCountInt(c)) => c as f64,
        Some(rw1::histogram::ZeroCount::ZeroCountFloat(c)) => c,
        None => 0.0,
    };
    if is_int && (!h.positive_counts.is_empty() || !h.negative_counts.is_empty()) {
        return Err(bad("integer histogram carries float bucket counts".into()));
    }
    if !is_int && (!h.positive_deltas.is_empty() || !h.negative_deltas.is_empty()) {
        return Err(bad("float histogram carries integer bucket deltas".into()));
    }
    let (positive_buckets, negative_buckets) = if is_int {
        (
            absolute_from_deltas(&h.positive_deltas).map_err(|e| bad(format!("positive buckets: {e}")))?,
            absolute_from_deltas(&h.negative_deltas).map_err(|e| bad(format!("negative buckets: {e}")))?,
        )
    } else {
        (h.positive_counts.clone(), h.negative_counts.clone())
    };
    let counter_reset_hint = match rw1::histogram::ResetHint::try_from(h.reset_hint) {
        Ok(rw1::histogram::ResetHint::Yes) => CounterResetHint::CounterReset,
        Ok(rw1::histogram::ResetHint::No) => CounterResetHint::NotCounterReset,
        Ok(rw1::histogram::ResetHint::Gauge) => CounterResetHint::Gauge,
        _ => CounterResetHint::Unknown,
    };
    let spans = |s: &[rw1::BucketSpan]| -> Vec<BucketSpan> {
        s.iter()
            .map(|s| BucketSpan {
                offset: s.offset,
                length: s.length,
            })
            .collect()
    };
    let fh = FloatHistogram {
        counter_reset_hint,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count,
        count,
        sum: h.sum,
        positive_spans: spans(&h.positive_spans),
        negative_spans: spans(&h.negative_spans),
        positive_buckets,
        negative_buckets,
        custom_values: h.custom_values.clone(),
    };
    fh.validate().map_err(bad)?;
    if counter_reset_hint != CounterResetHint::Gauge {
        let negative = fh
            .positive_buckets
            .iter()
            .chain(&fh.negative_buckets)
            .chain([&fh.zero_count, &fh.count])
            .any(|c| *c < 0.0);
        if negative {
            return Err(bad("histogram has a negative observation count".into()));
        }
    }
    if is_int {
        // Prometheus: the total count must be at least the sum of the bucket
        // counts (NaN observations are counted only in `count`).
        let buckets: f64 = fh
            .positive_buckets
            .iter()
            .chain(&fh.negative_buckets)
            .sum::<f64>()
            + fh.zero_count;
        if buckets > fh.count {
            return Err(bad(format!(
                "{} observations found in buckets, but the Count field is {}",
                buckets, fh.count
            )));
        }
    }
    Ok(fh)
}

fn absolute_from_deltas(deltas: &[i64]) -> Result<Vec<f64>, String> {
    let mut current: i64 = 0;
    let mut out = Vec::with_capacity(deltas.len());
    for (i, d) in deltas.iter().enumerate() {
        current = current
            .checked_add(*d)
            .ok_or_else(|| format!("bucket {i} count overflows"))?;
        if current < 0 {
            return Err(format!("bucket {i} has negative count {current}"));
        }
        out.push(current as f64);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use fenghuo_storage_api::model::Labels;

    fn err(p: &[(&str, &str)]) -> String {
        series_labels(p, &IngestLimits::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn valid_series_drops_empty_values() {
        let pairs = [("__name__", "up"), ("a", ""), ("job", "x")];
        series_labels(&pairs, &IngestLimits::default()).unwrap();
        let kept: Vec<_> = pairs.iter().filter(|p| keep_pair(p)).collect();
        assert_eq!(kept, [&("__name__", "up"), &("job", "x")]);
    }

    #[test]
    fn label_problems_name_the_series() {
        assert_eq!(
            err(&[("__name__", "up"), ("a", "1"), ("a", "2")]),
            r#"duplicate label name "a" for series {__name__="up", a="1", a="2"}"#
        );
        assert!(err(&[("b", "1"), ("__name__", "up")]).contains("not sorted"));
        assert!(err(&[("job", "x")]).contains("missing metric name"));
        assert!(err(&[("__name__", "")]).contains("empty metric name"));
        assert!(err(&[("", "v"), ("__name__", "up")]).contains("empty label name"));
    }

    #[test]
    fn too_many_labels_is_rejected() {
        let limits = IngestLimits {
            max_labels_per_series: 2,
            ..Default::default()
        };
        let e = series_labels(&[("__name__", "up"), ("a", "1"), ("b", "2")], &limits).unwrap_err();
        assert!(
            e.to_string().contains("3 labels, more than the limit of 2"),
            "{e}"
        );
    }

    #[test]
    fn integer_histogram_deltas_become_absolute_counts() {
        let h = rw1::Histogram {
            count: Some(rw1::histogram::Count::CountInt(6)),
            schema: 0,
            positive_spans: vec![rw1::BucketSpan { offset: 0, length: 3 }],
            positive_deltas: vec![1, 2, -2],
            timestamp: 5,
            ..Default::default()
        };
        let fh = histogram(&Labels::from_pairs([("__name__", "h")]), &h).unwrap();
        assert_eq!(fh.positive_buckets, vec![1.0, 3.0, 1.0]);
        assert_eq!(fh.count, 6.0);
    }

    #[test]
    fn negative_bucket_count_is_rejected() {
        let h = rw1::Histogram {
            count: Some(rw1::histogram::Count::CountInt(1)),
            positive_spans: vec![rw1::BucketSpan { offset: 0, length: 2 }],
            positive_deltas: vec![1, -2],
            ..Default::default()
        };
        let e = histogram(&Labels::from_pairs([("__name__", "h")]), &h).unwrap_err();
        assert!(e.to_string().contains("negative count"), "{e}");
    }
}
