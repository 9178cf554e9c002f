//! A test group's `input_series`, loaded the way promtool's lazy loader does it: every series is
//! parsed with the shared series notation ([`fenghuo_query::series_desc`], native histograms
//! included) into samples one `interval` apart from the start time, and samples reach the store
//! only up to each evaluation time ([`LazyLoader::append_till`]), so a query looking ahead (`@`,
//! negative `offset`) sees exactly what it sees under promtool.

use std::sync::Arc;

use fenghuo_query::series_desc::{self, SeqValue};
use fenghuo_storage_api::api::Appender;
use fenghuo_storage_api::model::{HistogramSample, Labels, Sample, SeriesWrite, TenantId, WriteBatch};

/// One input series and how many of its samples are in the store already.
struct Input {
    labels: Labels,
    samples: Vec<(i64, SeqValue)>,
    loaded: usize,
}

/// Input series waiting to be appended.
pub struct LazyLoader {
    series: Vec<Input>,
}

/// Parses a series in metric notation (`up{job="x"}`, `{a="1"}`, `{}`) into labels, as
/// `parser.ParseMetric` does: the whole text must be one metric.
pub fn parse_metric(s: &str) -> Result<Labels, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("1:1: parse error: unexpected end of input".into());
    }
    match series_desc::parse_metric(t) {
        Ok((labels, rest)) if rest.trim().is_empty() => Ok(labels),
        Ok((_, rest)) => Err(format!(
            "1:{}: parse error: unexpected {:?} after the metric",
            t.len() - rest.len() + 1,
            rest.trim()
        )),
        Err(e) => Err(format!("1:1: parse error: {e}")),
    }
}

/// Parses one `histogram:` value of `exp_samples` (`{{...}}`), as promtool parses `{} VALUE`.
pub fn parse_expected_histogram(text: &str) -> Result<fenghuo_storage_api::model::FloatHistogram, String> {
    let (_, values) = series_desc::parse_series(&format!("{{}} {text}"))?;
    match values.as_slice() {
        // `SequenceValue.String()`: `_` when omitted, else `%f`.
        [v] if v.omitted => Err("expected histogram, got _".into()),
        [v] => v
            .histogram
            .clone()
            .ok_or_else(|| format!("expected histogram, got {:.6}", v.value)),
        _ => Err(format!("expected 1 value, got {}", values.len())),
    }
}

impl LazyLoader {
    /// Parses `(series, values)` pairs; sample `i` is at `start_ms + i * interval_ms`. A series
    /// given twice keeps its last definition, as promtool's `load` does.
    pub fn new(input: &[(String, String)], start_ms: i64, interval_ms: i64) -> Result<Self, String> {
        let mut series: Vec<Input> = Vec::new();
        for (i, (metric, values)) in input.iter().enumerate() {
            let line = format!("{metric} {values}");
            let (labels, vals) =
                series_desc::parse_series(&line).map_err(|e| format!("{}:{}: parse error: {e}", i + 1, 1))?;
            let samples: Vec<(i64, SeqValue)> = vals
                .into_iter()
                .enumerate()
                .filter(|(_, v)| !v.omitted)
                .map(|(k, v)| (start_ms + k as i64 * interval_ms, v))
                .collect();
            let input = Input {
                labels,
                samples,
                loaded: 0,
            };
            match series.iter_mut().find(|s| s.labels == input.labels) {
                Some(s) => *s = input,
                None => series.push(input),
            }
        }
        Ok(LazyLoader { series })
    }

    /// Appends every sample at or before `ts_ms` not appended yet (`WithSamplesTill`).
    pub fn append_till(
        &mut self,
        store: &Arc<dyn Appender>,
        tenant: &TenantId,
        ts_ms: i64,
    ) -> Result<(), String> {
        let mut batch = WriteBatch::default();
        for s in &mut self.series {
            let end = s.loaded
                + s.samples[s.loaded..]
                    .iter()
                    .take_while(|(t, _)| *t <= ts_ms)
                    .count();
            if end == s.loaded {
                continue;
            }
            let mut w = SeriesWrite {
                labels: s.labels.clone(),
                ..Default::default()
            };
            for (t, v) in &s.samples[s.loaded..end] {
                match &v.histogram {
                    Some(h) => w.histograms.push(HistogramSample {
                        t: *t,
                        h: Arc::new(h.clone()),
                    }),
                    None => w.samples.push(Sample { t: *t, v: v.value }),
                }
            }
            s.loaded = end;
            batch.series.push(w);
        }
        if batch.series.is_empty() {
            return Ok(());
        }
        let outcome = store.append(tenant, batch).map_err(|e| e.to_string())?;
        match outcome.rejected.first() {
            Some(r) => Err(format!("{}: {}", r.series, r.reason)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fenghuo_storage_api::api::Queryable;
    use fenghuo_storage_api::memory::MemStore;

    #[test]
    fn metrics_parse_like_parse_metric() {
        let l = parse_metric("up{job=\"a\", instance=\"b\"}").unwrap_or_default();
        assert_eq!(l.to_string(), "{__name__=\"up\", instance=\"b\", job=\"a\"}");
        assert_eq!(parse_metric("{a=\"1\"}").unwrap_or_default().len(), 1);
        assert!(parse_metric("up 1").is_err());
        assert!(parse_metric("").is_err());
    }

    #[test]
    fn samples_arrive_up_to_each_evaluation_time() {
        let input = vec![
            ("a".to_string(), "1 2 _ 4".to_string()),
            ("h".to_string(), "{{count:1 buckets:[1]}}x2".to_string()),
            ("a".to_string(), "5 6 7".to_string()),
        ];
        let mut l = LazyLoader::new(&input, 1_000, 60_000).unwrap_or_else(|e| panic!("{e}"));
        let store = Arc::new(MemStore::new());
        let app: Arc<dyn Appender> = store.clone();
        let tenant = TenantId::default_tenant();
        let count = |name: &str| -> (usize, usize) {
            let q = store.querier(&tenant).unwrap_or_else(|e| panic!("{e}"));
            let m = [fenghuo_storage_api::model::Matcher::equal("__name__", name)];
            let hints = fenghuo_storage_api::api::SelectHints {
                start: i64::MIN / 2,
                end: i64::MAX / 2,
                max_samples: None,
            };
            let s = q.select(&m, &hints).unwrap_or_default();
            s.first()
                .map(|s| (s.floats.len(), s.histograms.len()))
                .unwrap_or_default()
        };
        assert!(l.append_till(&app, &tenant, 61_000).is_ok());
        assert_eq!(count("a"), (2, 0), "the later definition of a wins");
        assert_eq!(count("h"), (0, 2));
        assert!(l.append_till(&app, &tenant, 61_000).is_ok());
        assert_eq!(count("a"), (2, 0), "nothing is appended twice");
        assert!(l.append_till(&app, &tenant, 1_000_000).is_ok());
        assert_eq!(count("a"), (3, 0));
        assert_eq!(count("h"), (0, 3));
    }
}
