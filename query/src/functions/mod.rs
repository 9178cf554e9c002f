//! PromQL functions. Instant-vector functions ([`VectorFn`]) see the
//! evaluated arguments of one step; range-vector functions ([`RangeFn`])
//! see one series' window `(t - range, t]` and the step's scalar arguments.
//!
//! - [`instant`]: math, clamping, rounding, dates, sorting, scalar/vector.
//! - [`range`]: `*_over_time`, rate family, derivatives, changes/resets.
//! - [`histograms`]: native and classic histogram functions.
//! - [`labels`]: label_replace, label_join, info (series-level functions).

pub(crate) mod extended;
pub(crate) mod histograms;
pub(crate) mod instant;
pub(crate) mod labels;
pub(crate) mod range;

use std::sync::Arc;

use fenghuo_storage_api::model::{FloatHistogram, HistogramSample, Labels, Sample};

use crate::error::QueryError;
use crate::eval::{Metric, QueryCtx, Vector};
use crate::plan::Node;

/// What a function sees besides its values.
pub(crate) struct FnCtx<'a, 'q> {
    pub name: &'static str,
    pub ts: i64,
    pub args: &'a [Node],
    pub q: &'a QueryCtx<'q>,
    pub call_pos: usize,
}

impl FnCtx<'_, '_> {
    /// Position of argument `i` (for annotations).
    pub fn arg_pos(&self, i: usize) -> usize {
        self.args.get(i).map_or(self.call_pos, Node::pos)
    }

    /// The string literal argument `i`.
    pub fn string_arg(&self, i: usize) -> String {
        match self.args.get(i).map(Node::unwrapped) {
            Some(Node::Str { v, .. }) => v.clone(),
            _ => String::new(),
        }
    }
}

/// One series' samples inside a range window.
pub(crate) struct Window<'a> {
    pub metric: &'a Metric,
    pub floats: &'a [Sample],
    pub hists: &'a [HistogramSample],
    /// Exclusive start and inclusive end of the window.
    pub range_start: i64,
    pub range_end: i64,
    pub range: i64,
    /// `anchored` / `smoothed`: the slices extend beyond the window.
    pub anchored: bool,
    pub smoothed: bool,
}

impl Window<'_> {
    pub fn metric_name(&self) -> &str {
        self.metric.metric_name().unwrap_or_default()
    }
}

/// A function over instant vectors (scalars arrive as one-element vectors).
pub(crate) type VectorFn = fn(&[Vector], &FnCtx) -> Result<Vector, QueryError>;

/// A function over one window: returns the value for this step, if any.
pub(crate) type RangeFn =
    fn(&Window, &[f64], &FnCtx) -> Result<Option<(f64, Option<Arc<FloatHistogram>>)>, QueryError>;

#[derive(Clone, Copy)]
pub(crate) enum Impl {
    Vector(VectorFn),
    Range(RangeFn),
}

/// The implementation of function `name`.
pub(crate) fn lookup(name: &str) -> Option<Impl> {
    use Impl::{Range as R, Vector as V};
    Some(match name {
        "abs" | "ceil" | "floor" | "exp" | "sqrt" | "ln" | "log2" | "log10" | "sin" | "cos" | "tan"
        | "asin" | "acos" | "atan" | "sinh" | "cosh" | "tanh" | "asinh" | "acosh" | "atanh" | "rad"
        | "deg" | "sgn" => V(instant::math),
        "clamp" => V(instant::clamp),
        "clamp_max" => V(instant::clamp_max),
        "clamp_min" => V(instant::clamp_min),
        "round" => V(instant::round),
        "scalar" => V(instant::scalar),
        "vector" => V(instant::vector),
        "time" => V(instant::time),
        "pi" => V(instant::pi),
        "max_of" => V(instant::max_of),
        "min_of" => V(instant::min_of),
        "timestamp" => V(instant::timestamp),
        "start_timestamp" => V(instant::start_timestamp),
        "sort" => V(instant::sort),
        "sort_desc" => V(instant::sort_desc),
        "sort_by_label" => V(instant::sort_by_label),
        "sort_by_label_desc" => V(instant::sort_by_label_desc),
        "absent" => V(instant::absent),
        "days_in_month" | "day_of_month" | "day_of_week" | "day_of_year" | "hour" | "minute" | "month"
        | "year" => V(instant::date),
        "histogram_count" | "histogram_sum" | "histogram_avg" => V(histograms::simple),
        "histogram_stddev" | "histogram_stdvar" => V(histograms::variance),
        "histogram_fraction" => V(histograms::fraction),
        "histogram_quantile" => V(histograms::quantile),
        "histogram_quantiles" => V(histograms::quantiles),
        "rate" => R(range::rate),
        "increase" => R(range::increase),
        "delta" => R(range::delta),
        "irate" => R(range::irate),
        "idelta" => R(range::idelta),
        "deriv" => R(range::deriv),
        "predict_linear" => R(range::predict_linear),
        "changes" => R(range::changes),
        "resets" => R(range::resets),
        "double_exponential_smoothing" => R(range::double_exponential_smoothing),
        "avg_over_time" => R(range::avg_over_time),
        "sum_over_time" => R(range::sum_over_time),
        "count_over_time" => R(range::count_over_time),
        "min_over_time" => R(range::min_over_time),
        "max_over_time" => R(range::max_over_time),
        "last_over_time" => R(range::last_over_time),
        "first_over_time" => R(range::first_over_time),
        "ts_of_first_over_time" => R(range::ts_of_first_over_time),
        "ts_of_last_over_time" => R(range::ts_of_last_over_time),
        "ts_of_max_over_time" => R(range::ts_of_max_over_time),
        "ts_of_min_over_time" => R(range::ts_of_min_over_time),
        "quantile_over_time" => R(range::quantile_over_time),
        "stddev_over_time" => R(range::stddev_over_time),
        "stdvar_over_time" => R(range::stdvar_over_time),
        "mad_over_time" => R(range::mad_over_time),
        "present_over_time" => R(range::present_over_time),
        "absent_over_time" => R(range::present_over_time),
        _ => return None,
    })
}

/// Prometheus's `labels.Labels.Hash()`: xxHash64 over `name 0xff value 0xff ...`.
pub(crate) fn labels_hash(ls: &Labels) -> u64 {
    let mut b = Vec::with_capacity(256);
    for l in ls.iter() {
        b.extend_from_slice(l.name.as_bytes());
        b.push(0xff);
        b.extend_from_slice(l.value.as_bytes());
        b.push(0xff);
    }
    xxh64(&b)
}

const P1: u64 = 11_400_714_785_074_694_791;
const P2: u64 = 14_029_467_366_897_019_727;
const P3: u64 = 1_609_587_929_392_839_161;
const P4: u64 = 9_650_029_242_287_828_579;
const P5: u64 = 2_870_177_450_012_600_261;

fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

fn merge_round(acc: u64, val: u64) -> u64 {
    (acc ^ round(0, val)).wrapping_mul(P1).wrapping_add(P4)
}

fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

fn read_u32(b: &[u8]) -> u64 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a) as u64
}

/// xxHash64 with seed 0.
pub(crate) fn xxh64(input: &[u8]) -> u64 {
    let len = input.len();
    let mut p = input;
    let mut h: u64;
    if len >= 32 {
        let mut v1 = P1.wrapping_add(P2);
        let mut v2 = P2;
        let mut v3 = 0u64;
        let mut v4 = 0u64.wrapping_sub(P1);
        while p.len() >= 32 {
            v1 = round(v1, read_u64(&p[0..]));
            v2 = round(v2, read_u64(&p[8..]));
            v3 = round(v3, read_u64(&p[16..]));
            v4 = round(v4, read_u64(&p[24..]));
            p = &p[32..];
        }
        h = v1
            .rotate_left(1)
            .wrapping_add(v2.rotate_left(7))
            .wrapping_add(v3.rotate_left(12))
            .wrapping_add(v4.rotate_left(18));
        h = merge_round(h, v1);
        h = merge_round(h, v2);
        h = merge_round(h, v3);
        h = merge_round(h, v4);
    } else {
        h = P5;
    }
    h = h.wrapping_add(len as u64);
    while p.len() >= 8 {
        h ^= round(0, read_u64(p));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        p = &p[8..];
    }
    if p.len() >= 4 {
        h ^= read_u32(p).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        p = &p[4..];
    }
    for &b in p {
        h ^= (b as u64).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^= h >> 32;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh64_reference_values() {
        assert_eq!(xxh64(b""), 0xef46_db37_51d8_e999);
        assert_eq!(xxh64(b"a"), 0xd24e_c4f1_a98c_6e5b);
        assert_eq!(xxh64(b"abc"), 0x44bc_2cf5_ad77_0999);
    }
}
