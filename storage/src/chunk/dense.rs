//! The dense float chunk (encoding byte `0x02`), used for everything
//! written to the chunk column family. It trades the XOR chunk's bit
//! packing for byte-aligned varint columns that RocksDB's zstd compresses
//! far better:
//!
//! - timestamps: either *regular* (first timestamp + fixed step, when every
//!   delta-of-delta is zero) or first timestamp, first delta and zigzag
//!   varint delta-of-deltas;
//! - values: *constant* (one raw f64), *decimal* (every value is exactly
//!   `m / 10^e` for a chunk-wide exponent `e`: zigzag varint mantissa deltas
//!   or delta-of-deltas, whichever is smaller), or an XOR bit stream when a
//!   value has no exact short decimal form (NaN, stale markers, ±Inf, −0,
//!   full-precision results of arithmetic).
//!
//! Decimal conversion is exact: the encoder verifies that every value
//! decodes to the same bits, so the encoding is lossless (unlike
//! VictoriaMetrics' decimal rounding).

use super::bits::{BitReader, BitWriter};
use super::xor;
use crate::codec::{Reader, put_uvarint, put_varint};
use crate::error::StorageError;
use crate::model::Sample;

pub const ENCODING_DENSE: u8 = 0x02;
/// Upper bound on samples per dense chunk (guards decode allocations).
pub const MAX_SAMPLES: usize = 1 << 20;

const TS_REGULAR: u8 = 0;
const TS_DOD: u8 = 1;
const TS_GRID: u8 = 2;
const V_CONST: u8 = 0;
const V_DEC_DELTA: u8 = 1;
const V_DEC_DOD: u8 = 2;
const V_XOR: u8 = 3;
const V_DEC_TREND: u8 = 4;

const MAX_MANTISSA: i64 = 1 << 53;
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
    1e19, 1e20, 1e21, 1e22,
];

/// `m / 10^e` (or `m * 10^-e` for negative `e`), correctly rounded.
#[inline]
pub fn from_decimal(m: i64, e: i32) -> f64 {
    if e >= 0 {
        m as f64 / POW10[e as usize]
    } else {
        m as f64 * POW10[(-e) as usize]
    }
}

/// The shortest exact decimal form of `v`, if it has one with a mantissa
/// below 2^53 and an exponent in [-22, 18].
pub fn to_decimal(v: f64) -> Option<(i64, i32)> {
    if !v.is_finite() {
        return None;
    }
    if v == 0.0 {
        return (v.to_bits() == 0).then_some((0, 0));
    }
    let limit = MAX_MANTISSA as f64;
    for e in 0..=18i32 {
        let scaled = v * POW10[e as usize];
        if scaled.abs() > limit {
            break;
        }
        let m = scaled.round() as i64;
        if from_decimal(m, e).to_bits() == v.to_bits() {
            return Some((m, e));
        }
    }
    if v.abs() >= limit {
        for k in (1..=22i32).rev() {
            let m = (v / POW10[k as usize]).round();
            if m.abs() > limit {
                continue;
            }
            let m = m as i64;
            if from_decimal(m, -k).to_bits() == v.to_bits() {
                return Some((m, -k));
            }
        }
    }
    None
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Greatest common divisor of the values (1 when all are zero).
fn common_factor(vals: impl Iterator<Item = i64>) -> u64 {
    let g = vals.fold(0u64, |g, v| gcd(g, v.unsigned_abs()));
    if g == 0 || g > i64::MAX as u64 { 1 } else { g }
}

/// A stream whose values share a factor (memory in pages, bytes in
/// blocks...): `uvarint factor`, then the stream of the quotients.
fn put_scaled_stream(out: &mut Vec<u8>, vals: impl Iterator<Item = i64> + Clone) {
    let g = common_factor(vals.clone());
    put_uvarint(out, g);
    put_stream(out, vals.map(move |v| if g > 1 { v / g as i64 } else { v }));
}

fn scaled_stream_len(vals: impl Iterator<Item = i64> + Clone) -> usize {
    let g = common_factor(vals.clone());
    uvarint_len(g) + stream_len(vals.map(move |v| if g > 1 { v / g as i64 } else { v }))
}

fn read_scaled_stream(r: &mut Reader<'_>, n: usize, mut f: impl FnMut(i64)) -> Result<(), StorageError> {
    let g = r.uvarint()?;
    let g = i64::try_from(g).map_err(|_| r.corrupt("stream factor out of range"))?;
    read_stream(r, n, |v| f(v.wrapping_mul(g)))
}

/// Scales all values to one exponent; `None` if some value has no exact
/// decimal form or the common exponent overflows the mantissa range.
fn common_decimal(samples: &[Sample]) -> Option<(Vec<i64>, i32)> {
    let mut decs = Vec::with_capacity(samples.len());
    let mut e_max = i32::MIN;
    for s in samples {
        let d = to_decimal(s.v)?;
        e_max = e_max.max(d.1);
        decs.push(d);
    }
    let mut out = Vec::with_capacity(decs.len());
    for (s, (m, e)) in samples.iter().zip(decs) {
        let scale = (e_max - e) as usize;
        let f = *POW10.get(scale)?;
        let mm = (m as i128) * (f as i128);
        if mm.abs() > MAX_MANTISSA as i128 {
            return None;
        }
        let mm = mm as i64;
        if from_decimal(mm, e_max).to_bits() != s.v.to_bits() {
            return None;
        }
        out.push(mm);
    }
    Some((out, e_max))
}

fn uvarint_len(z: u64) -> usize {
    (64 - z.leading_zeros() as usize).max(1).div_ceil(7)
}

/// Writes integers as a token stream in which runs of zeros collapse:
/// `uvarint(zigzag(v) << 1)` for a non-zero value, `uvarint(run << 1 | 1)`
/// for `run` zeros. Regular timestamps and steady counters become a few
/// bytes before zstd even sees them.
fn put_stream(out: &mut Vec<u8>, vals: impl Iterator<Item = i64>) {
    let mut run = 0u64;
    for v in vals {
        if v == 0 {
            run += 1;
            continue;
        }
        if run > 0 {
            put_uvarint(out, (run << 1) | 1);
            run = 0;
        }
        put_uvarint(out, crate::codec::zigzag(v) << 1);
    }
    if run > 0 {
        put_uvarint(out, (run << 1) | 1);
    }
}

/// Encoded size of [`put_stream`] without writing it.
fn stream_len(vals: impl Iterator<Item = i64>) -> usize {
    let mut run = 0u64;
    let mut len = 0;
    for v in vals {
        if v == 0 {
            run += 1;
            continue;
        }
        if run > 0 {
            len += uvarint_len((run << 1) | 1);
            run = 0;
        }
        len += uvarint_len(crate::codec::zigzag(v).wrapping_shl(1));
    }
    if run > 0 {
        len += uvarint_len((run << 1) | 1);
    }
    len
}

/// Reads `n` integers written by [`put_stream`].
fn read_stream(r: &mut Reader<'_>, n: usize, mut f: impl FnMut(i64)) -> Result<(), StorageError> {
    let mut left = n;
    while left > 0 {
        let tok = r.uvarint()?;
        if tok & 1 == 1 {
            let run = tok >> 1;
            if run == 0 || run > left as u64 {
                return Err(r.corrupt(format!("zero run of {run} with {left} values left")));
            }
            for _ in 0..run {
                f(0);
            }
            left -= run as usize;
        } else {
            f(crate::codec::unzigzag(tok >> 1));
            left -= 1;
        }
    }
    Ok(())
}

/// Encodes sorted samples (unique timestamps) as one dense chunk.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    let samples = &samples[..samples.len().min(MAX_SAMPLES)];
    let n = samples.len();
    let mut out = Vec::with_capacity(16 + n * 2);
    out.push(ENCODING_DENSE);
    put_uvarint(&mut out, n as u64);
    if n == 0 {
        return out;
    }
    encode_timestamps(&mut out, samples);
    encode_values(&mut out, samples);
    out
}

fn encode_timestamps(out: &mut Vec<u8>, samples: &[Sample]) {
    let n = samples.len();
    let t0 = samples[0].t;
    let delta = if n > 1 { samples[1].t.wrapping_sub(t0) } else { 0 };
    let regular = samples.windows(2).all(|w| w[1].t.wrapping_sub(w[0].t) == delta);
    if regular {
        out.push(TS_REGULAR);
        put_varint(out, t0);
        if n > 1 {
            put_varint(out, delta);
        }
        return;
    }
    let dods = || {
        samples.windows(3).map(|w| {
            let d1 = w[1].t.wrapping_sub(w[0].t);
            let d2 = w[2].t.wrapping_sub(w[1].t);
            d2.wrapping_sub(d1)
        })
    };
    // Grid: scrapes land on `base + i * step` give or take jitter. A
    // jittered sample costs one residual here but two delta-of-deltas.
    let step = most_common(samples.windows(2).map(|w| w[1].t.wrapping_sub(w[0].t)));
    let base = most_common(
        samples
            .iter()
            .enumerate()
            .map(|(i, s)| s.t.wrapping_sub((i as i64).wrapping_mul(step))),
    );
    let residuals = || {
        samples
            .iter()
            .enumerate()
            .map(move |(i, s)| s.t.wrapping_sub(base.wrapping_add((i as i64).wrapping_mul(step))))
    };
    if stream_len(residuals()) + 2 < stream_len(dods()) {
        out.push(TS_GRID);
        put_varint(out, base);
        put_varint(out, step);
        put_stream(out, residuals());
        return;
    }
    out.push(TS_DOD);
    put_varint(out, t0);
    put_varint(out, delta);
    put_stream(out, dods());
}

/// The most frequent value (the smallest among equally frequent ones).
fn most_common(vals: impl Iterator<Item = i64>) -> i64 {
    let mut v: Vec<i64> = vals.collect();
    v.sort_unstable();
    let (mut best, mut best_n) = (0i64, 0usize);
    for run in v.chunk_by(|a, b| a == b) {
        if run.len() > best_n {
            best = run[0];
            best_n = run.len();
        }
    }
    best
}

fn encode_values(out: &mut Vec<u8>, samples: &[Sample]) {
    let first = samples[0].v.to_bits();
    if samples.iter().all(|s| s.v.to_bits() == first) {
        out.push(V_CONST);
        out.extend_from_slice(&first.to_le_bytes());
        return;
    }
    let mut xor_stream = BitWriter::new();
    xor::encode_values(&mut xor_stream, samples.iter().map(|s| s.v.to_bits()));
    let xor_len = xor_stream.bytes().len();
    if let Some((ms, e)) = common_decimal(samples) {
        let deltas = || ms.windows(2).map(|w| w[1].wrapping_sub(w[0]));
        let dods = || {
            ms.windows(3)
                .map(|w| (w[2].wrapping_sub(w[1])).wrapping_sub(w[1].wrapping_sub(w[0])))
        };
        // Counters grow at a roughly steady rate: code each delta as its
        // difference to the median delta (the trend).
        let trend = {
            let mut d: Vec<i64> = deltas().collect();
            d.sort_unstable();
            d.get(d.len() / 2).copied().unwrap_or(0)
        };
        let trended = || deltas().map(move |d| d.wrapping_sub(trend));
        let delta_len = scaled_stream_len(deltas());
        let trend_len = if trend != 0 {
            scaled_stream_len(trended()) + 4
        } else {
            usize::MAX
        };
        let dod_len = if ms.len() > 2 {
            scaled_stream_len(dods()) + 10
        } else {
            usize::MAX
        };
        let dec_len = delta_len.min(dod_len).min(trend_len);
        // Byte-aligned varints compress much better under zstd than a bit
        // stream of the same size, so XOR must win clearly to be chosen.
        if dec_len * 7 <= xor_len * 10 {
            if dec_len == delta_len {
                out.push(V_DEC_DELTA);
                put_varint(out, i64::from(e));
                put_varint(out, ms[0]);
                put_scaled_stream(out, deltas());
            } else if dec_len == trend_len {
                out.push(V_DEC_TREND);
                put_varint(out, i64::from(e));
                put_varint(out, ms[0]);
                put_varint(out, trend);
                put_scaled_stream(out, trended());
            } else {
                out.push(V_DEC_DOD);
                put_varint(out, i64::from(e));
                put_varint(out, ms[0]);
                put_varint(out, ms[1].wrapping_sub(ms[0]));
                put_scaled_stream(out, dods());
            }
            return;
        }
    }
    out.push(V_XOR);
    out.extend_from_slice(xor_stream.bytes());
}

/// Decodes a dense chunk, appending its samples to `out`.
pub fn decode_into(bytes: &[u8], out: &mut Vec<Sample>) -> Result<(), StorageError> {
    let mut r = Reader::new(bytes, "dense chunk");
    if r.u8()? != ENCODING_DENSE {
        return Err(r.corrupt("not a dense chunk"));
    }
    let n = r.len(MAX_SAMPLES)?;
    if n == 0 {
        return Ok(());
    }
    let start = out.len();
    out.reserve(n);
    match r.u8()? {
        TS_REGULAR => {
            let t0 = r.varint()?;
            let delta = if n > 1 { r.varint()? } else { 0 };
            let mut t = t0;
            for _ in 0..n {
                out.push(Sample { t, v: 0.0 });
                t = t.wrapping_add(delta);
            }
        }
        TS_DOD => {
            let mut t = r.varint()?;
            let mut delta = r.varint()?;
            out.push(Sample { t, v: 0.0 });
            if n > 1 {
                t = t.wrapping_add(delta);
                out.push(Sample { t, v: 0.0 });
            }
            if n > 2 {
                read_stream(&mut r, n - 2, |dod| {
                    delta = delta.wrapping_add(dod);
                    t = t.wrapping_add(delta);
                    out.push(Sample { t, v: 0.0 });
                })?;
            }
        }
        TS_GRID => {
            let base = r.varint()?;
            let step = r.varint()?;
            let mut i = 0i64;
            read_stream(&mut r, n, |e| {
                let t = base.wrapping_add(i.wrapping_mul(step)).wrapping_add(e);
                out.push(Sample { t, v: 0.0 });
                i += 1;
            })?;
        }
        other => return Err(r.corrupt(format!("unknown timestamp mode {other}"))),
    }
    let slots = &mut out[start..];
    match r.u8()? {
        V_CONST => {
            let v = r.f64_le()?;
            for s in slots.iter_mut() {
                s.v = v;
            }
        }
        mode @ (V_DEC_DELTA | V_DEC_DOD | V_DEC_TREND) => {
            let e = r.varint()?;
            if !(-22..=22).contains(&e) {
                return Err(r.corrupt(format!("decimal exponent {e} out of range")));
            }
            let e = e as i32;
            let mut m = r.varint()?;
            slots[0].v = from_decimal(m, e);
            if mode == V_DEC_DELTA || mode == V_DEC_TREND {
                let trend = if mode == V_DEC_TREND { r.varint()? } else { 0 };
                let mut i = 1;
                read_scaled_stream(&mut r, slots.len() - 1, |d| {
                    m = m.wrapping_add(d).wrapping_add(trend);
                    slots[i].v = from_decimal(m, e);
                    i += 1;
                })?;
            } else if slots.len() > 1 {
                let mut d = r.varint()?;
                m = m.wrapping_add(d);
                slots[1].v = from_decimal(m, e);
                let mut i = 2;
                read_scaled_stream(&mut r, slots.len() - 2, |dd| {
                    d = d.wrapping_add(dd);
                    m = m.wrapping_add(d);
                    slots[i].v = from_decimal(m, e);
                    i += 1;
                })?;
            }
        }
        V_XOR => {
            let mut br = BitReader::new(r.rest());
            let mut vals = Vec::with_capacity(n);
            xor::decode_values(&mut br, n, &mut vals)?;
            for (s, v) in slots.iter_mut().zip(vals) {
                s.v = f64::from_bits(v);
            }
        }
        other => return Err(r.corrupt(format!("unknown value mode {other}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::STALE_NAN_BITS;

    fn round_trip(samples: &[Sample]) -> Vec<u8> {
        let bytes = encode(samples);
        let mut out = Vec::new();
        decode_into(&bytes, &mut out).unwrap();
        assert_eq!(out.len(), samples.len());
        for (a, b) in samples.iter().zip(&out) {
            assert_eq!(a.t, b.t);
            assert_eq!(a.v.to_bits(), b.v.to_bits(), "{} vs {}", a.v, b.v);
        }
        bytes
    }

    fn regular(n: usize, f: impl Fn(usize) -> f64) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample {
                t: 1_700_000_000_000 + i as i64 * 15_000,
                v: f(i),
            })
            .collect()
    }

    #[test]
    fn decimal_conversion_is_exact() {
        for v in [
            0.1,
            0.3,
            12345.67,
            1e-7,
            123456789012345.0,
            1e20,
            2.5e21,
            0.1 + 0.2,
            -42.125,
            1e300,
        ] {
            if let Some((m, e)) = to_decimal(v) {
                assert_eq!(from_decimal(m, e).to_bits(), v.to_bits(), "{v}");
            }
        }
        assert_eq!(to_decimal(0.1), Some((1, 1)));
        assert_eq!(to_decimal(1e20), Some((1, -20)));
        assert!(to_decimal(0.1 + 0.2).is_none());
        assert!(to_decimal(-0.0).is_none());
        assert!(to_decimal(f64::NAN).is_none());
    }

    #[test]
    fn constant_regular_series_is_tiny() {
        let s = regular(480, |_| 1.0);
        let bytes = round_trip(&s);
        assert!(bytes.len() < 24, "{} bytes", bytes.len());
    }

    #[test]
    fn counters_use_decimal_deltas() {
        let s = regular(480, |i| (100_000 + i as i64 * 1501) as f64 / 100.0);
        let bytes = round_trip(&s);
        assert!(bytes.len() < 40, "{} bytes", bytes.len());
    }

    #[test]
    fn jittered_timestamps_and_gauges_round_trip() {
        let mut s = regular(300, |i| ((i * 7919) % 1000) as f64 / 8.0 - 50.0);
        for (i, x) in s.iter_mut().enumerate() {
            x.t += (i as i64 * 37) % 11 - 5;
        }
        round_trip(&s);
    }

    #[test]
    fn noisy_steady_counters_use_the_trend() {
        let mut seed = 3u64;
        let mut m = 1_000_000i64;
        let mut vals = Vec::new();
        for _ in 0..480 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            m += 700_000 + (seed % 5000) as i64;
            vals.push(m as f64);
        }
        let s = regular(480, |i| vals[i]);
        let bytes = round_trip(&s);
        assert!(bytes.len() < 480 * 2 + 24, "{} bytes", bytes.len());
    }

    #[test]
    fn common_factors_are_divided_out() {
        let mut m = 1_000_000i64;
        let vals: Vec<f64> = (0..480)
            .map(|i| {
                m += ((i * 7919 % 9) as i64 - 4) * 4096;
                m as f64
            })
            .collect();
        let bytes = round_trip(&regular(480, |i| vals[i]));
        assert!(bytes.len() < 480 + 24, "{} bytes", bytes.len());
    }

    #[test]
    fn jittered_scrapes_use_the_grid() {
        let mut s = regular(480, |_| 1.0);
        for (i, x) in s.iter_mut().enumerate() {
            if i % 10 == 3 {
                x.t += 2;
            }
        }
        s[0].t -= 1;
        let bytes = round_trip(&s);
        assert_eq!(bytes[3], TS_GRID, "{bytes:?}");
        assert!(bytes.len() < 130, "{} bytes", bytes.len());
        // A missed scrape shifts the grid: delta-of-deltas stay cheap.
        let mut gap = regular(480, |_| 1.0);
        for x in gap.iter_mut().skip(100) {
            x.t += 15_000;
        }
        gap[5].t += 1;
        round_trip(&gap);
    }

    #[test]
    fn non_decimal_values_fall_back_to_xor() {
        let mut s = regular(100, |i| (i as f64).sqrt());
        s[50].v = f64::from_bits(STALE_NAN_BITS);
        s[51].v = -0.0;
        s[52].v = f64::NEG_INFINITY;
        round_trip(&s);
    }

    #[test]
    fn single_and_pair_round_trip() {
        round_trip(&regular(1, |_| 3.5));
        round_trip(&regular(2, |i| i as f64));
        round_trip(&regular(3, |i| [1.0, 5.0, 2.0][i]));
        round_trip(&[]);
    }

    #[test]
    fn mixed_exponents_share_one() {
        let s = regular(4, |i| [1.5, 2.25, 1e6, 0.001][i]);
        round_trip(&s);
    }

    #[test]
    fn garbage_never_panics() {
        let s = regular(200, |i| i as f64 * 0.5);
        let bytes = encode(&s);
        for cut in 0..bytes.len() {
            let _ = decode_into(&bytes[..cut], &mut Vec::new());
        }
        for i in 1..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            let _ = decode_into(&b, &mut Vec::new());
        }
    }
}
