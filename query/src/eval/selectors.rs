//! Reading fetched series: instant selectors (lookback, staleness) and
//! range windows (left-open `(t - range, t]`).

use std::sync::Arc;

use fenghuo_storage_api::model::{CounterResetHint, FloatHistogram, HistogramSample, Sample, is_stale_nan};

use super::{Evaluator, Matrix, Series};
use crate::annotations::Annotation;
use crate::error::QueryError;
use crate::functions::extended::{extend_floats, interpolate, interpolate_histogram_samples};
use crate::plan::Selector;

/// The sample an instant selector sees at `ref_time`: the latest one in
/// `(ref_time - lookback, ref_time]`, unless it is a stale marker.
pub(crate) fn lookup(
    s: &Series,
    ref_time: i64,
    lookback: i64,
) -> Option<(i64, f64, Option<Arc<FloatHistogram>>)> {
    let fi = s.floats.partition_point(|p| p.t <= ref_time);
    let hi = s.hists.partition_point(|p| p.t <= ref_time);
    let f = fi.checked_sub(1).map(|i| s.floats[i]);
    let h = hi.checked_sub(1).map(|i| &s.hists[i]);
    let (t, v, h) = match (f, h) {
        (Some(f), Some(h)) if h.t > f.t => (h.t, 0.0, Some(h.h.clone())),
        (Some(f), _) => (f.t, f.v, None),
        (None, Some(h)) => (h.t, 0.0, Some(h.h.clone())),
        (None, None) => return None,
    };
    if t <= ref_time - lookback {
        return None;
    }
    if is_stale_nan(v) && h.is_none() {
        return None;
    }
    if h.as_ref().is_some_and(|h| is_stale_nan(h.sum)) {
        return None;
    }
    Some((t, v, h))
}

/// The points of `s` in `(mint, maxt]` (stale markers already removed).
pub(crate) fn window(s: &Series, mint: i64, maxt: i64) -> (&[Sample], &[HistogramSample]) {
    let fa = s.floats.partition_point(|p| p.t <= mint);
    let fb = s.floats.partition_point(|p| p.t <= maxt);
    let ha = s.hists.partition_point(|p| p.t <= mint);
    let hb = s.hists.partition_point(|p| p.t <= maxt);
    (&s.floats[fa..fb.max(fa)], &s.hists[ha..hb.max(ha)])
}

/// A copy of `s` without stale markers, for range windows.
pub(crate) fn without_stale(s: &Series) -> Series {
    Series {
        metric: s.metric.clone(),
        floats: s.floats.iter().copied().filter(|p| !is_stale_nan(p.v)).collect(),
        hists: s
            .hists
            .iter()
            .filter(|p| !is_stale_nan(p.h.sum))
            .cloned()
            .collect(),
        drop_name: s.drop_name,
    }
}

impl Evaluator<'_, '_> {
    /// Evaluates an instant vector selector at every step.
    pub(crate) fn eval_vector_selector(&mut self, sel: &Selector) -> Result<Matrix, QueryError> {
        if sel.smoothed {
            return self.eval_smoothed(sel);
        }
        self.eval_series(&self.q.data[sel.id], sel.offset, sel.at, false)
    }

    /// A `smoothed` instant selector: the value at each step is
    /// interpolated between the samples around it (within the lookback
    /// delta on both sides), or the previous sample when none follows.
    fn eval_smoothed(&mut self, sel: &Selector) -> Result<Matrix, QueryError> {
        let lb = self.q.lookback;
        let mut mat = Vec::new();
        for s in &self.q.data[sel.id] {
            self.q.check_deadline()?;
            let s = without_stale(s);
            let name = s.metric.metric_name().unwrap_or("").to_string();
            let mut out = Series::new(s.metric.clone());
            for ts in self.steps() {
                let data_ts = sel.at.unwrap_or(ts) - sel.offset;
                let (floats, hists) = window(&s, data_ts - lb, data_ts + lb);
                if floats.is_empty() && hists.is_empty() {
                    continue;
                }
                if !floats.is_empty() && !hists.is_empty() {
                    self.q
                        .annotate(Annotation::mixed_floats_histograms(&name, sel.pos));
                    continue;
                }
                if !hists.is_empty() {
                    let i = hists.partition_point(|p| p.t < data_ts);
                    if i < hists.len() && hists[i].t == data_ts {
                        out.hists.push(HistogramSample {
                            t: ts,
                            h: hists[i].h.clone(),
                        });
                    } else if i > 0 && i < hists.len() {
                        let (prev, next) = (&hists[i - 1], &hists[i]);
                        if prev.h.uses_custom_buckets() != next.h.uses_custom_buckets() {
                            self.q
                                .annotate(Annotation::mixed_exponential_custom_histograms(&name, sel.pos));
                            continue;
                        }
                        let is_counter = prev.h.counter_reset_hint != CounterResetHint::Gauge
                            || next.h.counter_reset_hint != CounterResetHint::Gauge;
                        match interpolate_histogram_samples(prev, next, data_ts, is_counter, self.q, sel.pos)
                        {
                            Ok(h) => out.hists.push(HistogramSample {
                                t: ts,
                                h: Arc::new(h),
                            }),
                            Err(_) => {
                                self.q.annotate(Annotation::mixed_exponential_custom_histograms(
                                    &name, sel.pos,
                                ));
                                continue;
                            }
                        }
                    } else if i > 0 {
                        let mut h = (*hists[i - 1].h).clone();
                        h.counter_reset_hint = CounterResetHint::Unknown;
                        out.hists.push(HistogramSample {
                            t: ts,
                            h: Arc::new(h),
                        });
                    }
                } else {
                    let i = floats.partition_point(|p| p.t < data_ts);
                    if i < floats.len() && floats[i].t == data_ts {
                        out.floats.push(Sample {
                            t: ts,
                            v: floats[i].v,
                        });
                    } else if i > 0 && i < floats.len() {
                        let v = interpolate(floats[i - 1], floats[i], data_ts, false);
                        out.floats.push(Sample { t: ts, v });
                    } else if i > 0 {
                        out.floats.push(Sample {
                            t: ts,
                            v: floats[i - 1].v,
                        });
                    }
                }
            }
            if !out.floats.is_empty() || !out.hists.is_empty() {
                mat.push(out);
            }
        }
        Ok(mat)
    }

    /// Evaluates `series` at every step, looking up at `at` (when set) or
    /// the step time, minus `offset`. With `record_orig_t`, the value is
    /// replaced by the sample's timestamp (used by `info()`).
    pub(crate) fn eval_series(
        &mut self,
        series: &[Series],
        offset: i64,
        at: Option<i64>,
        record_orig_t: bool,
    ) -> Result<Matrix, QueryError> {
        let num_steps = self.num_steps();
        let lookback = self.q.lookback;
        let mut mat = Vec::with_capacity(series.len());
        for s in series {
            self.q.check_deadline()?;
            let mut out = Series::new(s.metric.clone());
            for ts in self.steps() {
                let ref_time = at.unwrap_or(ts) - offset;
                let Some((t, v, h)) = lookup(s, ref_time, lookback) else {
                    continue;
                };
                match h {
                    None => {
                        self.add_samples(1)?;
                        if out.floats.capacity() == 0 {
                            out.floats.reserve(num_steps.min(5000));
                        }
                        let v = if record_orig_t { t as f64 } else { v };
                        out.floats.push(Sample { t: ts, v });
                    }
                    Some(h) => {
                        if record_orig_t {
                            return Err(QueryError::exec(format!(
                                "this should be an info metric, with float samples: {}",
                                out.metric
                            )));
                        }
                        self.add_samples(super::hist_size(&h))?;
                        out.hists.push(HistogramSample { t: ts, h });
                    }
                }
            }
            if !out.floats.is_empty() || !out.hists.is_empty() {
                mat.push(out);
            }
        }
        Ok(mat)
    }

    /// A range vector selector evaluated at the (single) evaluation time.
    pub(crate) fn eval_matrix_selector(&mut self, sel: &Selector, range: i64) -> Result<Matrix, QueryError> {
        let maxt = sel.at.unwrap_or(self.start) - sel.offset;
        let mint = maxt - range;
        let lb = self.q.lookback;
        let (wmin, wmax) = match (sel.anchored, sel.smoothed) {
            (true, _) => (mint - lb, maxt),
            (_, true) => (mint - lb, maxt + lb),
            _ => (mint, maxt),
        };
        let mut mat = Vec::new();
        for s in &self.q.range_data[sel.id] {
            self.q.check_deadline()?;
            let (f, h) = window(s, wmin, wmax);
            if f.is_empty() && h.is_empty() {
                continue;
            }
            if sel.anchored || sel.smoothed {
                if !h.is_empty() {
                    let m = if sel.anchored { "anchored" } else { "smoothed" };
                    return Err(QueryError::exec(format!(
                        "{m} modifier is not supported with histograms"
                    )));
                }
                let floats = extend_floats(f, mint, maxt, sel.smoothed);
                if floats.is_empty() {
                    continue;
                }
                self.add_samples(floats.len())?;
                mat.push(Series {
                    metric: s.metric.clone(),
                    floats,
                    hists: Vec::new(),
                    drop_name: false,
                });
                continue;
            }
            let out = Series {
                metric: s.metric.clone(),
                floats: f.to_vec(),
                hists: h.to_vec(),
                drop_name: false,
            };
            self.add_samples(out.total_samples())?;
            mat.push(out);
        }
        Ok(mat)
    }
}
