//! Warnings and infos ("annotations") with Prometheus's exact texts
//! (`util/annotations/annotations.go`). They are collected during
//! evaluation, deduplicated by message as Prometheus does, and rendered
//! with the `(line:col)` position of the expression they refer to.

use std::collections::HashMap;

use crate::gofmt;

/// Warning or info.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Info,
}

#[derive(Clone, Debug, PartialEq)]
enum Detail {
    Plain,
    /// histogram_quantile had to fix bucket monotonicity; merged over steps.
    ForcedMonotonicity {
        min_ts: i64,
        max_ts: i64,
        min_bucket: f64,
        max_bucket: f64,
        max_diff: f64,
        count: u64,
    },
    /// A start timestamp overlaps the previous sample; counted per metric.
    StartTimeOverlap {
        metric: String,
        count: u64,
    },
}

/// One annotation. `msg` is the text without position.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    pub severity: Severity,
    msg: String,
    pos: usize,
    detail: Detail,
}

const WARN: &str = "PromQL warning";
const INFO: &str = "PromQL info";

fn warn(pos: usize, msg: String) -> Annotation {
    Annotation {
        severity: Severity::Warning,
        msg: format!("{WARN}: {msg}"),
        pos,
        detail: Detail::Plain,
    }
}

fn info(pos: usize, msg: String) -> Annotation {
    Annotation {
        severity: Severity::Info,
        msg: format!("{INFO}: {msg}"),
        pos,
        detail: Detail::Plain,
    }
}

fn with_metric(msg: String, metric: &str) -> String {
    if metric.is_empty() {
        msg
    } else {
        format!("{msg} for metric name {}", gofmt::quote(metric))
    }
}

/// Which histogram operation caused a counter-reset collision or a
/// custom-bucket reconciliation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistogramOp {
    Add,
    Sub,
    Agg,
}

impl HistogramOp {
    fn as_str(self) -> &'static str {
        match self {
            HistogramOp::Add => "addition",
            HistogramOp::Sub => "subtraction",
            HistogramOp::Agg => "aggregation",
        }
    }
}

impl Annotation {
    pub fn invalid_quantile(q: f64, pos: usize) -> Self {
        warn(
            pos,
            format!("quantile value should be between 0 and 1, got {}", gofmt::g(q)),
        )
    }
    pub fn invalid_ratio(q: f64, to: f64, pos: usize) -> Self {
        warn(
            pos,
            format!(
                "ratio value should be between -1 and 1, got {}, capping to {}",
                gofmt::g(q),
                gofmt::g(to)
            ),
        )
    }
    pub fn bad_bucket_label(metric: &str, label: &str, pos: usize) -> Self {
        let msg = format!(
            "bucket label \"le\" is missing or has a malformed value of {}",
            gofmt::quote(label)
        );
        warn(pos, with_metric(msg, metric))
    }
    pub fn mixed_floats_histograms(metric: &str, pos: usize) -> Self {
        warn(
            pos,
            format!(
                "encountered a mix of histograms and floats for metric name {}",
                gofmt::quote(metric)
            ),
        )
    }
    pub fn mixed_floats_histograms_agg(pos: usize) -> Self {
        warn(
            pos,
            "encountered a mix of histograms and floats for aggregation".to_string(),
        )
    }
    pub fn mixed_classic_native_histograms(metric: &str, pos: usize) -> Self {
        warn(
            pos,
            with_metric(
                "vector contains a mix of classic and native histograms".to_string(),
                metric,
            ),
        )
    }
    pub fn native_histogram_not_counter(metric: &str, pos: usize) -> Self {
        warn(
            pos,
            format!(
                "this native histogram metric is not a counter: {}",
                gofmt::quote(metric)
            ),
        )
    }
    pub fn native_histogram_not_gauge(metric: &str, pos: usize) -> Self {
        warn(
            pos,
            format!(
                "this native histogram metric is not a gauge: {}",
                gofmt::quote(metric)
            ),
        )
    }
    pub fn mixed_exponential_custom_histograms(metric: &str, pos: usize) -> Self {
        warn(
            pos,
            format!(
                "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {}",
                gofmt::quote(metric)
            ),
        )
    }
    pub fn incompatible_bucket_layout_in_binop(op: &str, pos: usize) -> Self {
        warn(
            pos,
            format!("incompatible bucket layout encountered for binary operator {op}"),
        )
    }
    pub fn sort_in_range_query(pos: usize) -> Self {
        warn(
            pos,
            "sort is ineffective for range queries since results are always ordered by labels".to_string(),
        )
    }
    pub fn possible_non_counter(metric: &str, pos: usize) -> Self {
        info(
            pos,
            format!(
                "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {}",
                gofmt::quote(metric)
            ),
        )
    }
    pub fn forced_monotonicity(
        metric: &str,
        pos: usize,
        ts: i64,
        min_bucket: f64,
        max_bucket: f64,
        max_diff: f64,
    ) -> Self {
        let msg = with_metric(
            "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)".to_string(),
            metric,
        );
        Annotation {
            severity: Severity::Info,
            msg: format!("{INFO}: {msg}"),
            pos,
            detail: Detail::ForcedMonotonicity {
                min_ts: ts,
                max_ts: ts,
                min_bucket,
                max_bucket,
                max_diff,
                count: 0,
            },
        }
    }
    pub fn incompatible_types_in_binop(lhs: &str, op: &str, rhs: &str, pos: usize) -> Self {
        info(
            pos,
            format!("incompatible sample types encountered for binary operator \"{op}\": {lhs} {op} {rhs}"),
        )
    }
    pub fn histogram_ignored_in_aggregation(aggregation: &str, pos: usize) -> Self {
        info(pos, format!("ignored histogram in {aggregation} aggregation"))
    }
    pub fn histogram_ignored_in_mixed_range(metric: &str, pos: usize) -> Self {
        info(
            pos,
            format!(
                "ignored histograms in a range containing both floats and histograms for metric name {}",
                gofmt::quote(metric)
            ),
        )
    }
    pub fn quantile_nan_result(metric: &str, pos: usize) -> Self {
        info(
            pos,
            with_metric(
                "input to histogram_quantile has NaN observations, result is NaN".to_string(),
                metric,
            ),
        )
    }
    pub fn quantile_nan_skew(metric: &str, pos: usize) -> Self {
        info(
            pos,
            with_metric(
                "input to histogram_quantile has NaN observations, result is skewed higher".to_string(),
                metric,
            ),
        )
    }
    pub fn fraction_nans(metric: &str, pos: usize) -> Self {
        info(
            pos,
            with_metric(
                "input to histogram_fraction has NaN observations, which are excluded from all fractions"
                    .to_string(),
                metric,
            ),
        )
    }
    pub fn counter_reset_collision(pos: usize, op: HistogramOp) -> Self {
        warn(
            pos,
            format!("conflicting counter resets during histogram {}", op.as_str()),
        )
    }
    pub fn mismatched_custom_buckets(pos: usize, op: HistogramOp) -> Self {
        info(
            pos,
            format!("mismatched custom buckets were reconciled during {}", op.as_str()),
        )
    }
    pub fn start_time_overlap(metric: &str, pos: usize) -> Self {
        Annotation {
            severity: Severity::Warning,
            msg: format!("{WARN}: sample has start time that overlaps with previous sample timestamp"),
            pos,
            detail: Detail::StartTimeOverlap {
                metric: metric.to_string(),
                count: 1,
            },
        }
    }

    /// The deduplication key: Prometheus's error text before the query is known.
    fn key(&self) -> String {
        match &self.detail {
            Detail::StartTimeOverlap { metric, .. } => {
                format!("{} for metric {}", self.msg, gofmt::quote(metric))
            }
            _ => self.msg.clone(),
        }
    }

    /// Combines a newer annotation with an older one of the same key.
    fn merge(self, older: Annotation) -> Annotation {
        match (self.detail, older.detail) {
            (
                Detail::ForcedMonotonicity {
                    min_ts,
                    max_ts,
                    min_bucket,
                    max_bucket,
                    max_diff,
                    count,
                },
                Detail::ForcedMonotonicity {
                    min_ts: o_min_ts,
                    max_ts: o_max_ts,
                    min_bucket: o_min_bucket,
                    max_bucket: o_max_bucket,
                    max_diff: o_max_diff,
                    count: o_count,
                },
            ) => Annotation {
                detail: Detail::ForcedMonotonicity {
                    min_ts: min_ts.min(o_min_ts),
                    max_ts: max_ts.max(o_max_ts),
                    min_bucket: if min_bucket < o_min_bucket {
                        min_bucket
                    } else {
                        o_min_bucket
                    },
                    max_bucket: if max_bucket > o_max_bucket {
                        max_bucket
                    } else {
                        o_max_bucket
                    },
                    max_diff: if max_diff > o_max_diff {
                        max_diff
                    } else {
                        o_max_diff
                    },
                    count: o_count + count + 1,
                },
                ..older
            },
            (Detail::StartTimeOverlap { metric, count }, Detail::StartTimeOverlap { count: o_count, .. }) => {
                Annotation {
                    detail: Detail::StartTimeOverlap {
                        metric,
                        count: o_count + count,
                    },
                    ..older
                }
            }
            (detail, _) => Annotation { detail, ..self },
        }
    }

    /// Renders the annotation as Prometheus does for `query`.
    pub fn render(&self, query: &str) -> String {
        let pos = start_pos(query, self.pos);
        match &self.detail {
            Detail::Plain => format!("{} ({pos})", self.msg),
            Detail::ForcedMonotonicity {
                min_ts,
                max_ts,
                min_bucket,
                max_bucket,
                max_diff,
                count,
            } => format!(
                "{}, from buckets {} to {}, with a max diff of {}, over {} samples from {} to {} ({pos})",
                self.msg,
                gofmt::g(*min_bucket),
                gofmt::g(*max_bucket),
                gofmt::g_prec(*max_diff, 2),
                count + 1,
                rfc3339(*min_ts),
                rfc3339(*max_ts),
            ),
            Detail::StartTimeOverlap { metric, count } if *count > 1 => {
                format!(
                    "{} for metric {} ({count} occurrences) ({pos})",
                    self.msg,
                    gofmt::quote(metric)
                )
            }
            Detail::StartTimeOverlap { metric, .. } => {
                format!("{} for metric {} ({pos})", self.msg, gofmt::quote(metric))
            }
        }
    }
}

/// `line:col` of byte offset `pos` in `query` (Prometheus's `StartPosInput`).
fn start_pos(query: &str, pos: usize) -> String {
    if query.is_empty() {
        return "unknown position".to_string();
    }
    if pos > query.len() {
        return "invalid position".to_string();
    }
    let mut line = 1;
    let mut last_break: isize = -1;
    for (i, b) in query.as_bytes()[..pos].iter().enumerate() {
        if *b == b'\n' {
            last_break = i as isize;
            line += 1;
        }
    }
    format!("{line}:{}", pos as isize - last_break)
}

/// Seconds-resolution RFC 3339 in UTC, as Go's `time.RFC3339` prints it.
fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The annotations of one query, deduplicated by message, in first-seen order.
#[derive(Clone, Debug, Default)]
pub struct Annotations {
    items: Vec<Annotation>,
    index: HashMap<String, usize>,
}

impl Annotations {
    pub fn add(&mut self, a: Annotation) {
        let key = a.key();
        match self.index.get(&key) {
            Some(&i) => {
                let older = self.items[i].clone();
                self.items[i] = a.merge(older);
            }
            None => {
                self.index.insert(key, self.items.len());
                self.items.push(a);
            }
        }
    }

    pub fn merge(&mut self, other: Annotations) {
        for a in other.items {
            self.add(a);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Rendered (warnings, infos).
    pub fn render(&self, query: &str) -> (Vec<String>, Vec<String>) {
        let mut warnings = Vec::new();
        let mut infos = Vec::new();
        for a in &self.items {
            match a.severity {
                Severity::Warning => warnings.push(a.render(query)),
                Severity::Info => infos.push(a.render(query)),
            }
        }
        (warnings, infos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_position() {
        let q = "rate(foo[5m])";
        let a = Annotation::possible_non_counter("foo", 5);
        assert_eq!(
            a.render(q),
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"foo\" (1:6)"
        );
    }

    #[test]
    fn duplicates_collapse_and_monotonicity_merges() {
        let mut annos = Annotations::default();
        annos.add(Annotation::forced_monotonicity("", 0, 60_000, 1.0, 2.0, 0.5));
        annos.add(Annotation::forced_monotonicity("", 0, 120_000, 0.5, 2.0, 0.25));
        let (w, i) = annos.render("x");
        assert!(w.is_empty());
        assert_eq!(i.len(), 1);
        assert!(i[0].ends_with(
            ", from buckets 0.5 to 2, with a max diff of 0.5, over 2 samples from 1970-01-01T00:01:00Z to 1970-01-01T00:02:00Z (1:1)"
        ), "{}", i[0]);
    }
}
