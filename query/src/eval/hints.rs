//! Counter-reset hints of histogram samples as Prometheus's TSDB returns
//! them, and as its `HistogramStatsIterator` refines them.
//!
//! Prometheus stores histograms in chunks and, on read, reports `gauge` for
//! gauge histograms, `unknown` for the first sample of a chunk and
//! `not_reset` for every later one; a new chunk starts at the first sample,
//! after a float sample, at a counter reset (detected or explicit) and when
//! the bucket layout cannot be appended (schema, zero threshold or custom
//! bounds change). PromQL results (the hint of `sum`, counter-reset
//! collision warnings) depend on these hints, so the engine derives them
//! from the samples whatever the store kept.

use std::sync::Arc;

use fenghuo_storage_api::model::{CounterResetHint, FloatHistogram, HistogramSample, Sample};

use crate::histogram::detect_reset;

fn appendable(prev: &FloatHistogram, cur: &FloatHistogram) -> bool {
    prev.schema == cur.schema
        && prev.zero_threshold == cur.zero_threshold
        && (!cur.uses_custom_buckets() || prev.custom_values == cur.custom_values)
}

fn set_hint(p: &mut HistogramSample, hint: CounterResetHint) {
    if p.h.counter_reset_hint != hint {
        let mut h = (*p.h).clone();
        h.counter_reset_hint = hint;
        p.h = Arc::new(h);
    }
}

/// Rewrites the hints of `hists` (time-ordered, interleaved in time with
/// `floats`) as Prometheus's TSDB would report them.
pub(crate) fn read_hints(floats: &[Sample], hists: &mut [HistogramSample]) {
    let mut prev: Option<(i64, Arc<FloatHistogram>, bool)> = None; // (t, h, gauge chunk)
    for p in hists.iter_mut() {
        let stored = p.h.counter_reset_hint;
        let float_between = prev.as_ref().is_some_and(|(pt, _, _)| {
            let i = floats.partition_point(|f| f.t <= *pt);
            floats.get(i).is_some_and(|f| f.t < p.t)
        });
        let gauge = stored == CounterResetHint::Gauge;
        let hint = if gauge {
            CounterResetHint::Gauge
        } else {
            let new_chunk = match &prev {
                None => true,
                Some((_, ph, prev_gauge)) => {
                    float_between
                        || *prev_gauge
                        || stored == CounterResetHint::CounterReset
                        || !appendable(ph, &p.h)
                        || detect_reset_ignoring_hint(&p.h, ph)
                }
            };
            if new_chunk {
                CounterResetHint::Unknown
            } else {
                CounterResetHint::NotCounterReset
            }
        };
        let original = p.h.clone();
        set_hint(p, hint);
        prev = Some((p.t, original, gauge));
    }
}

/// Reset detection on the bucket contents only (the stored hint is what is
/// being derived, so it must not short-cut the answer).
fn detect_reset_ignoring_hint(cur: &FloatHistogram, prev: &FloatHistogram) -> bool {
    if cur.counter_reset_hint == CounterResetHint::Unknown {
        return detect_reset(cur, prev);
    }
    let mut c = cur.clone();
    c.counter_reset_hint = CounterResetHint::Unknown;
    detect_reset(&c, prev)
}

/// Histogram statistics only: where the hint is `unknown`, detect a reset
/// against the previous sample, then drop the buckets.
pub(crate) fn stats_only(hists: &mut [HistogramSample]) {
    let mut prev: Option<Arc<FloatHistogram>> = None;
    for p in hists.iter_mut() {
        let full = p.h.clone();
        let mut hint = full.counter_reset_hint;
        if hint == CounterResetHint::Unknown
            && let Some(ph) = &prev
        {
            hint = if detect_reset(&full, ph) {
                CounterResetHint::CounterReset
            } else {
                CounterResetHint::NotCounterReset
            };
        }
        p.h = Arc::new(FloatHistogram {
            counter_reset_hint: hint,
            schema: full.schema,
            count: full.count,
            sum: full.sum,
            ..Default::default()
        });
        prev = Some(full);
    }
}
