//! The float native-histogram chunk (encoding byte `0x03`), used both for
//! open head chunks and on disk.
//!
//! Layout: `0x03`, sample count (u16 big-endian), then per sample:
//! timestamp (zigzag varint: absolute, then delta, then delta-of-delta),
//! a flags byte (counter-reset hint in bits 0-1, bit 2 = a new bucket
//! layout follows, bit 3 = counts are integral), the layout when it
//! changed (schema, zero threshold, positive and negative spans, custom
//! bounds), the counts (`count`, `zero_count`, positive then negative
//! buckets) as zigzag varint differences from the previous sample's counts
//! when integral or raw f64s otherwise, and the sum (exact decimal or raw).

use std::sync::Arc;

use super::dense::{from_decimal, to_decimal};
use crate::codec::{Reader, put_uvarint, put_varint};
use crate::error::StorageError;
use crate::model::{BucketSpan, CounterResetHint, FloatHistogram, HistogramSample};

pub const ENCODING_HISTOGRAM: u8 = 0x03;
const HEADER_LEN: usize = 3;
pub const MAX_SAMPLES: usize = u16::MAX as usize;
/// Guard against absurd bucket counts in corrupt data.
const MAX_BUCKETS: usize = 1 << 16;

const FLAG_LAYOUT: u8 = 1 << 2;
const FLAG_INTEGRAL: u8 = 1 << 3;
const SUM_RAW: u8 = 0;
const SUM_DECIMAL: u8 = 1;

fn hint_bits(h: CounterResetHint) -> u8 {
    match h {
        CounterResetHint::Unknown => 0,
        CounterResetHint::CounterReset => 1,
        CounterResetHint::NotCounterReset => 2,
        CounterResetHint::Gauge => 3,
    }
}

fn hint_from_bits(b: u8) -> CounterResetHint {
    match b & 3 {
        1 => CounterResetHint::CounterReset,
        2 => CounterResetHint::NotCounterReset,
        3 => CounterResetHint::Gauge,
        _ => CounterResetHint::Unknown,
    }
}

fn same_layout(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    a.schema == b.schema
        && a.zero_threshold.to_bits() == b.zero_threshold.to_bits()
        && a.positive_spans == b.positive_spans
        && a.negative_spans == b.negative_spans
        && a.custom_values.len() == b.custom_values.len()
        && a.custom_values
            .iter()
            .zip(&b.custom_values)
            .all(|(x, y)| x.to_bits() == y.to_bits())
        && a.positive_buckets.len() == b.positive_buckets.len()
        && a.negative_buckets.len() == b.negative_buckets.len()
}

fn counts(h: &FloatHistogram) -> impl Iterator<Item = f64> + '_ {
    [h.count, h.zero_count]
        .into_iter()
        .chain(h.positive_buckets.iter().copied())
        .chain(h.negative_buckets.iter().copied())
}

fn integral(v: f64) -> bool {
    v.is_finite() && v.fract() == 0.0 && v.abs() <= (1u64 << 53) as f64 && v.to_bits() != (-0.0f64).to_bits()
}

/// An open histogram chunk.
#[derive(Clone, Debug)]
pub struct HistogramAppender {
    buf: Vec<u8>,
    count: u16,
    t: i64,
    delta: i64,
    prev: Option<Arc<FloatHistogram>>,
}

impl Default for HistogramAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl HistogramAppender {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[ENCODING_HISTOGRAM, 0, 0]);
        Self {
            buf,
            count: 0,
            t: 0,
            delta: 0,
            prev: None,
        }
    }

    /// Resumes appending to an encoded chunk.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StorageError> {
        let mut out = Vec::new();
        let state = decode_with_state(bytes, &mut out)?;
        let last = out.pop();
        Ok(Self {
            buf: bytes[..state.end].to_vec(),
            count: state.count,
            t: last.as_ref().map(|s| s.t).unwrap_or(0),
            delta: state.delta,
            prev: last.map(|s| s.h),
        })
    }

    pub fn count(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }

    pub fn last_t(&self) -> i64 {
        self.t
    }

    /// Timestamp of the first sample, if any.
    pub fn first_t(&self) -> Option<i64> {
        if self.count == 0 {
            return None;
        }
        crate::codec::Reader::new(&self.buf[HEADER_LEN..], "histogram chunk")
            .varint()
            .ok()
    }

    pub fn last(&self) -> Option<&Arc<FloatHistogram>> {
        self.prev.as_ref()
    }

    pub fn into_bytes(mut self) -> Vec<u8> {
        self.buf.shrink_to_fit();
        self.buf
    }

    /// Appends a sample with a timestamp above the last one.
    pub fn append(&mut self, t: i64, h: &Arc<FloatHistogram>) {
        match self.count {
            0 => put_varint(&mut self.buf, t),
            1 => {
                self.delta = t.wrapping_sub(self.t);
                put_varint(&mut self.buf, self.delta);
            }
            _ => {
                let d = t.wrapping_sub(self.t);
                put_varint(&mut self.buf, d.wrapping_sub(self.delta));
                self.delta = d;
            }
        }
        let prev = self.prev.as_deref().filter(|p| same_layout(p, h));
        let integral_counts = counts(h).all(integral) && prev.is_none_or(|p| counts(p).all(integral));
        let mut flags = hint_bits(h.counter_reset_hint);
        if prev.is_none() {
            flags |= FLAG_LAYOUT;
        }
        if integral_counts {
            flags |= FLAG_INTEGRAL;
        }
        self.buf.push(flags);
        if prev.is_none() {
            write_layout(&mut self.buf, h);
        }
        if integral_counts {
            match prev {
                Some(p) => {
                    for (c, pc) in counts(h).zip(counts(p)) {
                        put_varint(&mut self.buf, (c as i64).wrapping_sub(pc as i64));
                    }
                }
                None => {
                    for c in counts(h) {
                        put_varint(&mut self.buf, c as i64);
                    }
                }
            }
        } else {
            for c in counts(h) {
                self.buf.extend_from_slice(&c.to_bits().to_le_bytes());
            }
        }
        match to_decimal(h.sum) {
            Some((m, e)) => {
                self.buf.push(SUM_DECIMAL);
                put_varint(&mut self.buf, i64::from(e));
                put_varint(&mut self.buf, m);
            }
            None => {
                self.buf.push(SUM_RAW);
                self.buf.extend_from_slice(&h.sum.to_bits().to_le_bytes());
            }
        }
        self.t = t;
        self.prev = Some(h.clone());
        self.count = self.count.saturating_add(1);
        let c = self.count.to_be_bytes();
        self.buf[1] = c[0];
        self.buf[2] = c[1];
    }
}

fn write_spans(buf: &mut Vec<u8>, spans: &[BucketSpan]) {
    put_uvarint(buf, spans.len() as u64);
    for s in spans {
        put_varint(buf, i64::from(s.offset));
        put_uvarint(buf, u64::from(s.length));
    }
}

fn write_layout(buf: &mut Vec<u8>, h: &FloatHistogram) {
    put_varint(buf, i64::from(h.schema));
    buf.extend_from_slice(&h.zero_threshold.to_bits().to_le_bytes());
    write_spans(buf, &h.positive_spans);
    put_uvarint(buf, h.positive_buckets.len() as u64);
    write_spans(buf, &h.negative_spans);
    put_uvarint(buf, h.negative_buckets.len() as u64);
    put_uvarint(buf, h.custom_values.len() as u64);
    for v in &h.custom_values {
        buf.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

fn read_spans(r: &mut Reader<'_>) -> Result<Vec<BucketSpan>, StorageError> {
    let n = r.len(MAX_BUCKETS)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let offset = r.varint()?;
        let length = r.uvarint()?;
        let offset = i32::try_from(offset).map_err(|_| r.corrupt("span offset out of range"))?;
        let length = u32::try_from(length).map_err(|_| r.corrupt("span length out of range"))?;
        out.push(BucketSpan { offset, length });
    }
    Ok(out)
}

struct DecodeState {
    end: usize,
    count: u16,
    delta: i64,
}

fn decode_with_state(bytes: &[u8], out: &mut Vec<HistogramSample>) -> Result<DecodeState, StorageError> {
    if bytes.len() < HEADER_LEN || bytes[0] != ENCODING_HISTOGRAM {
        return Err(StorageError::Corrupt {
            what: "histogram chunk",
            detail: "bad header".into(),
        });
    }
    let n = u16::from_be_bytes([bytes[1], bytes[2]]);
    let mut r = Reader::new(&bytes[HEADER_LEN..], "histogram chunk");
    let mut t = 0i64;
    let mut delta = 0i64;
    let mut layout: Option<FloatHistogram> = None;
    let mut prev_counts: Vec<f64> = Vec::new();
    for i in 0..n {
        let v = r.varint()?;
        match i {
            0 => t = v,
            1 => {
                delta = v;
                t = t.wrapping_add(delta);
            }
            _ => {
                delta = delta.wrapping_add(v);
                t = t.wrapping_add(delta);
            }
        }
        let flags = r.u8()?;
        let new_layout = flags & FLAG_LAYOUT != 0;
        if new_layout {
            let schema = r.varint()?;
            let schema = i32::try_from(schema).map_err(|_| r.corrupt("schema out of range"))?;
            let zero_threshold = r.f64_le()?;
            let positive_spans = read_spans(&mut r)?;
            let npos = r.len(MAX_BUCKETS)?;
            let negative_spans = read_spans(&mut r)?;
            let nneg = r.len(MAX_BUCKETS)?;
            let ncustom = r.len(MAX_BUCKETS)?;
            let mut custom_values = Vec::with_capacity(ncustom);
            for _ in 0..ncustom {
                custom_values.push(r.f64_le()?);
            }
            layout = Some(FloatHistogram {
                schema,
                zero_threshold,
                positive_spans,
                negative_spans,
                positive_buckets: vec![0.0; npos],
                negative_buckets: vec![0.0; nneg],
                custom_values,
                ..Default::default()
            });
        }
        let Some(base) = layout.as_ref() else {
            return Err(r.corrupt("first histogram sample has no layout"));
        };
        let nfields = 2 + base.positive_buckets.len() + base.negative_buckets.len();
        let mut fields = Vec::with_capacity(nfields);
        if flags & FLAG_INTEGRAL != 0 {
            let relative = !new_layout && prev_counts.len() == nfields;
            let mut bases = prev_counts.iter().map(|p| *p as i64);
            for _ in 0..nfields {
                let d = r.varint()?;
                let base = if relative { bases.next().unwrap_or(0) } else { 0 };
                fields.push(base.wrapping_add(d) as f64);
            }
        } else {
            for _ in 0..nfields {
                fields.push(r.f64_le()?);
            }
        }
        let sum = match r.u8()? {
            SUM_RAW => r.f64_le()?,
            SUM_DECIMAL => {
                let e = r.varint()?;
                let m = r.varint()?;
                if !(-22..=22).contains(&e) {
                    return Err(r.corrupt("sum exponent out of range"));
                }
                from_decimal(m, e as i32)
            }
            other => return Err(r.corrupt(format!("unknown sum mode {other}"))),
        };
        let mut h = base.clone();
        h.counter_reset_hint = hint_from_bits(flags);
        h.count = fields[0];
        h.zero_count = fields[1];
        let npos = h.positive_buckets.len();
        h.positive_buckets.copy_from_slice(&fields[2..2 + npos]);
        h.negative_buckets.copy_from_slice(&fields[2 + npos..]);
        h.sum = sum;
        prev_counts = fields;
        out.push(HistogramSample { t, h: Arc::new(h) });
    }
    Ok(DecodeState {
        end: HEADER_LEN + r.position(),
        count: n,
        delta,
    })
}

/// Decodes a histogram chunk, appending its samples to `out`.
pub fn decode_into(bytes: &[u8], out: &mut Vec<HistogramSample>) -> Result<(), StorageError> {
    decode_with_state(bytes, out).map(|_| ())
}

/// Encodes sorted histogram samples as one chunk.
pub fn encode(samples: &[HistogramSample]) -> Vec<u8> {
    let mut a = HistogramAppender::new();
    for s in samples.iter().take(MAX_SAMPLES) {
        a.append(s.t, &s.h);
    }
    a.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(i: u32) -> Arc<FloatHistogram> {
        let layout_change = i >= 5;
        Arc::new(FloatHistogram {
            counter_reset_hint: if i == 0 {
                CounterResetHint::Unknown
            } else {
                CounterResetHint::NotCounterReset
            },
            schema: 3,
            zero_threshold: 1e-128,
            zero_count: f64::from(i),
            count: f64::from(i * 10 + 3),
            sum: 1.5 * f64::from(i) + 0.1,
            positive_spans: if layout_change {
                vec![BucketSpan {
                    offset: -2,
                    length: 3,
                }]
            } else {
                vec![BucketSpan { offset: 0, length: 2 }]
            },
            positive_buckets: if layout_change {
                vec![f64::from(i), 2.0, 3.0]
            } else {
                vec![f64::from(i), 0.5 * f64::from(i)]
            },
            ..Default::default()
        })
    }

    #[test]
    fn round_trip_with_layout_change_and_fractional_counts() {
        let samples: Vec<_> = (0..10u32)
            .map(|i| HistogramSample {
                t: 1000 + i64::from(i) * 15_000 + i64::from(i % 3),
                h: hist(i),
            })
            .collect();
        let bytes = encode(&samples);
        let mut out = Vec::new();
        decode_into(&bytes, &mut out).unwrap();
        assert_eq!(out, samples);

        let mut a = HistogramAppender::from_bytes(&encode(&samples[..4])).unwrap();
        for s in &samples[4..] {
            a.append(s.t, &s.h);
        }
        assert_eq!(a.bytes(), bytes.as_slice());
    }

    #[test]
    fn custom_buckets_round_trip() {
        let h = Arc::new(FloatHistogram {
            schema: crate::model::CUSTOM_BUCKETS_SCHEMA,
            count: 5.0,
            sum: 0.30000000000000004,
            positive_spans: vec![BucketSpan { offset: 0, length: 2 }],
            positive_buckets: vec![2.0, 3.0],
            custom_values: vec![0.5, 1.0],
            counter_reset_hint: CounterResetHint::Gauge,
            ..Default::default()
        });
        let s = vec![HistogramSample { t: -5, h }];
        let mut out = Vec::new();
        decode_into(&encode(&s), &mut out).unwrap();
        assert_eq!(out, s);
    }

    #[test]
    fn garbage_never_panics() {
        let samples: Vec<_> = (0..6u32)
            .map(|i| HistogramSample {
                t: i64::from(i),
                h: hist(i),
            })
            .collect();
        let bytes = encode(&samples);
        for cut in 0..bytes.len() {
            let _ = decode_into(&bytes[..cut], &mut Vec::new());
        }
        for i in 3..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xa5;
            let _ = decode_into(&b, &mut Vec::new());
        }
    }
}
