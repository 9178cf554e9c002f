//! The XOR float chunk (encoding byte `0x01`): Gorilla-style
//! delta-of-delta timestamps and XOR'd values in a bit stream. It is the
//! encoding of open head chunks because it is append-only at a few
//! nanoseconds per sample; flushed chunks are re-encoded densely
//! ([`super::dense`]) when that is smaller.
//!
//! Layout: `0x01`, sample count (u16 big-endian), then bits: the first
//! sample as raw 64-bit timestamp and value; the second as a bucketed delta
//! and XOR'd value; each later one as a bucketed delta-of-delta and XOR'd
//! value (see FORMAT.md).

use super::bits::{BitReader, BitWriter};
use crate::error::StorageError;
use crate::model::Sample;

pub const ENCODING_XOR: u8 = 0x01;
const HEADER_LEN: usize = 3;
/// Hard cap on samples per XOR chunk (the count is a u16).
pub const MAX_SAMPLES: usize = u16::MAX as usize;

/// An open XOR chunk that samples are appended to, in timestamp order.
#[derive(Clone, Debug)]
pub struct XorAppender {
    w: BitWriter,
    /// First timestamp, cached: the head checks it on every append.
    first: i64,
    t: i64,
    delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
    count: u16,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl XorAppender {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(32);
        buf.extend_from_slice(&[ENCODING_XOR, 0, 0]);
        Self {
            w: BitWriter::from_parts(buf, 0),
            first: 0,
            t: 0,
            delta: 0,
            v: 0,
            leading: 0xff,
            trailing: 0,
            count: 0,
        }
    }

    /// Resumes appending to an encoded XOR chunk (e.g. a head chunk
    /// restored from a snapshot). Decodes it once to rebuild the state.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StorageError> {
        let mut it = XorIter::new(bytes)?;
        let mut last = None;
        let mut first = 0;
        while let Some(s) = it.next_sample()? {
            if last.is_none() {
                first = s.t;
            }
            last = Some(s);
        }
        let count = it.total;
        let free = ((8 - (it.r.position_bits() % 8)) % 8) as u8;
        let used_bytes = HEADER_LEN + it.r.position_bits().div_ceil(8);
        let mut buf = bytes[..used_bytes.min(bytes.len())].to_vec();
        buf.reserve_exact(16);
        let (t, v) = last.map(|s| (s.t, s.v.to_bits())).unwrap_or((0, 0));
        Ok(Self {
            w: BitWriter::from_parts(buf, free),
            first,
            t,
            delta: it.delta,
            v,
            leading: it.leading,
            trailing: it.trailing,
            count,
        })
    }

    pub fn count(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn is_full(&self) -> bool {
        self.count as usize >= MAX_SAMPLES
    }

    pub fn last_t(&self) -> i64 {
        self.t
    }

    pub fn last_v(&self) -> f64 {
        f64::from_bits(self.v)
    }

    /// Timestamp of the first sample (meaningless when empty).
    pub fn first_t(&self) -> i64 {
        self.first
    }

    /// The encoded chunk (valid at any point).
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    /// Heap bytes held (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.w.bytes().len()
    }

    pub fn into_bytes(mut self) -> Vec<u8> {
        self.w.shrink_to_fit();
        self.w.into_bytes()
    }

    /// Appends a sample. The caller guarantees `t` is greater than the last
    /// appended timestamp and that the chunk is not full.
    pub fn append(&mut self, t: i64, v: f64) {
        let vb = v.to_bits();
        match self.count {
            0 => {
                self.first = t;
                self.w.write_bits(t as u64, 64);
                self.w.write_bits(vb, 64);
            }
            1 => {
                let delta = t.wrapping_sub(self.t);
                write_dod(&mut self.w, delta);
                self.delta = delta;
                self.write_value(vb);
            }
            _ => {
                let delta = t.wrapping_sub(self.t);
                write_dod(&mut self.w, delta.wrapping_sub(self.delta));
                self.delta = delta;
                self.write_value(vb);
            }
        }
        self.t = t;
        self.v = vb;
        self.count = self.count.saturating_add(1);
        let c = self.count.to_be_bytes();
        let buf = self.w.bytes_mut();
        buf[1] = c[0];
        buf[2] = c[1];
    }

    fn write_value(&mut self, vb: u64) {
        let x = vb ^ self.v;
        if x == 0 {
            self.w.write_bit(false);
            return;
        }
        self.w.write_bit(true);
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.w.write_bit(false);
            let sig = 64 - self.leading - self.trailing;
            self.w.write_bits(x >> self.trailing, sig);
        } else {
            self.w.write_bit(true);
            let sig = 64 - leading - trailing;
            self.w.write_bits(u64::from(leading), 5);
            // 64 significant bits do not fit in 6 bits; 0 stands for 64.
            self.w.write_bits(u64::from(sig & 63), 6);
            self.w.write_bits(x >> trailing, sig);
            self.leading = leading;
            self.trailing = trailing;
        }
    }
}

/// Bucketed signed integer: `0` for zero, then 14/17/20-bit buckets, then
/// 64 raw bits.
fn write_dod(w: &mut BitWriter, dod: i64) {
    if dod == 0 {
        w.write_bit(false);
    } else if fits_signed(dod, 14) {
        w.write_bits(0b10, 2);
        w.write_bits(dod as u64, 14);
    } else if fits_signed(dod, 17) {
        w.write_bits(0b110, 3);
        w.write_bits(dod as u64, 17);
    } else if fits_signed(dod, 20) {
        w.write_bits(0b1110, 4);
        w.write_bits(dod as u64, 20);
    } else {
        w.write_bits(0b1111, 4);
        w.write_bits(dod as u64, 64);
    }
}

fn fits_signed(v: i64, bits: u32) -> bool {
    let lim = 1i64 << (bits - 1);
    (-lim..lim).contains(&v)
}

fn sign_extend(v: u64, bits: u8) -> i64 {
    let shift = 64 - u32::from(bits);
    ((v << shift) as i64) >> shift
}

fn read_dod(r: &mut BitReader<'_>) -> Result<i64, StorageError> {
    Ok(match r.read_prefix(4)? {
        0 => 0,
        1 => sign_extend(r.read_bits(14)?, 14),
        2 => sign_extend(r.read_bits(17)?, 17),
        3 => sign_extend(r.read_bits(20)?, 20),
        _ => r.read_bits(64)? as i64,
    })
}

/// Decodes an XOR chunk sample by sample.
pub struct XorIter<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
}

impl<'a> XorIter<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, StorageError> {
        if bytes.len() < HEADER_LEN || bytes[0] != ENCODING_XOR {
            return Err(StorageError::Corrupt {
                what: "xor chunk",
                detail: format!("bad header ({} bytes)", bytes.len()),
            });
        }
        let total = u16::from_be_bytes([bytes[1], bytes[2]]);
        Ok(Self {
            r: BitReader::new(&bytes[HEADER_LEN..]),
            total,
            read: 0,
            t: 0,
            delta: 0,
            v: 0,
            leading: 0xff,
            trailing: 0,
        })
    }

    pub fn len(&self) -> usize {
        self.total as usize
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn next_sample(&mut self) -> Result<Option<Sample>, StorageError> {
        if self.read >= self.total {
            return Ok(None);
        }
        match self.read {
            0 => {
                self.t = self.r.read_bits(64)? as i64;
                self.v = self.r.read_bits(64)?;
            }
            1 => {
                self.delta = read_dod(&mut self.r)?;
                self.t = self.t.wrapping_add(self.delta);
                self.read_value()?;
            }
            _ => {
                self.delta = self.delta.wrapping_add(read_dod(&mut self.r)?);
                self.t = self.t.wrapping_add(self.delta);
                self.read_value()?;
            }
        }
        self.read += 1;
        Ok(Some(Sample {
            t: self.t,
            v: f64::from_bits(self.v),
        }))
    }

    fn read_value(&mut self) -> Result<(), StorageError> {
        if !self.r.read_bit()? {
            return Ok(());
        }
        if !self.r.read_bit()? {
            if self.leading == 0xff {
                return Err(StorageError::Corrupt {
                    what: "xor chunk",
                    detail: "value reuses a window before one was set".into(),
                });
            }
            let sig = 64 - self.leading - self.trailing;
            let bits = self.r.read_bits(sig)?;
            self.v ^= bits << self.trailing;
        } else {
            let leading = self.r.read_bits(5)? as u8;
            let mut sig = self.r.read_bits(6)? as u8;
            if sig == 0 {
                sig = 64;
            }
            if u32::from(leading) + u32::from(sig) > 64 {
                return Err(StorageError::Corrupt {
                    what: "xor chunk",
                    detail: format!("leading {leading} + significant {sig} bits exceed 64"),
                });
            }
            let trailing = 64 - leading - sig;
            let bits = self.r.read_bits(sig)?;
            self.v ^= if trailing >= 64 { 0 } else { bits << trailing };
            self.leading = leading;
            self.trailing = trailing;
        }
        Ok(())
    }
}

/// Decodes a whole XOR chunk, appending its samples to `out`.
pub fn decode_into(bytes: &[u8], out: &mut Vec<Sample>) -> Result<(), StorageError> {
    let mut it = XorIter::new(bytes)?;
    out.reserve(it.len());
    while let Some(s) = it.next_sample()? {
        out.push(s);
    }
    Ok(())
}

/// Encodes sorted samples as one XOR chunk.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    let mut a = XorAppender::new();
    // Whole chunks at once: size for ~2 bytes a sample up front.
    a.w.bytes_mut().reserve(samples.len().min(MAX_SAMPLES) * 2);
    for s in samples.iter().take(MAX_SAMPLES) {
        a.append(s.t, s.v);
    }
    a.into_bytes()
}

/// Encodes only the values of `samples` as an XOR bit stream (used by the
/// dense encoding's fallback value mode).
pub fn encode_values(w: &mut BitWriter, values: impl Iterator<Item = u64>) {
    let mut prev = 0u64;
    let mut leading = 0xffu8;
    let mut trailing = 0u8;
    for (i, vb) in values.enumerate() {
        if i == 0 {
            w.write_bits(vb, 64);
            prev = vb;
            continue;
        }
        let x = vb ^ prev;
        prev = vb;
        if x == 0 {
            w.write_bit(false);
            continue;
        }
        w.write_bit(true);
        let l = (x.leading_zeros() as u8).min(31);
        let tz = x.trailing_zeros() as u8;
        if leading != 0xff && l >= leading && tz >= trailing {
            w.write_bit(false);
            w.write_bits(x >> trailing, 64 - leading - trailing);
        } else {
            w.write_bit(true);
            let sig = 64 - l - tz;
            w.write_bits(u64::from(l), 5);
            w.write_bits(u64::from(sig & 63), 6);
            w.write_bits(x >> tz, sig);
            leading = l;
            trailing = tz;
        }
    }
}

/// Decodes `n` values written by [`encode_values`].
pub fn decode_values(r: &mut BitReader<'_>, n: usize, out: &mut Vec<u64>) -> Result<(), StorageError> {
    let mut prev = 0u64;
    let mut leading = 0xffu8;
    let mut trailing = 0u8;
    for i in 0..n {
        if i == 0 {
            prev = r.read_bits(64)?;
            out.push(prev);
            continue;
        }
        if r.read_bit()? {
            if !r.read_bit()? {
                if leading == 0xff {
                    return Err(StorageError::Corrupt {
                        what: "dense chunk values",
                        detail: "value reuses a window before one was set".into(),
                    });
                }
                let bits = r.read_bits(64 - leading - trailing)?;
                prev ^= bits << trailing;
            } else {
                let l = r.read_bits(5)? as u8;
                let mut sig = r.read_bits(6)? as u8;
                if sig == 0 {
                    sig = 64;
                }
                if u32::from(l) + u32::from(sig) > 64 {
                    return Err(StorageError::Corrupt {
                        what: "dense chunk values",
                        detail: "bad XOR window".into(),
                    });
                }
                let tz = 64 - l - sig;
                let bits = r.read_bits(sig)?;
                prev ^= if tz >= 64 { 0 } else { bits << tz };
                leading = l;
                trailing = tz;
            }
        }
        out.push(prev);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::STALE_NAN_BITS;

    fn samples() -> Vec<Sample> {
        let mut out = Vec::new();
        let mut t = 1_700_000_000_000i64;
        let mut v = 100.0;
        for i in 0..500 {
            t += 15_000 + (i % 7) - 3;
            v += (i % 13) as f64 * 0.25;
            out.push(Sample { t, v });
        }
        out.push(Sample {
            t: t + 1,
            v: f64::from_bits(STALE_NAN_BITS),
        });
        out.push(Sample {
            t: t + 10_000_000_000,
            v: -0.0,
        });
        out.push(Sample {
            t: t + 10_000_000_001,
            v: f64::INFINITY,
        });
        out.push(Sample {
            t: t + 10_000_000_002,
            v: f64::MIN_POSITIVE,
        });
        out
    }

    #[test]
    fn round_trip_preserves_bits() {
        let s = samples();
        let bytes = encode(&s);
        let mut out = Vec::new();
        decode_into(&bytes, &mut out).unwrap();
        assert_eq!(out.len(), s.len());
        for (a, b) in s.iter().zip(&out) {
            assert_eq!(a.t, b.t);
            assert_eq!(a.v.to_bits(), b.v.to_bits());
        }
    }

    #[test]
    fn resumed_appender_matches_one_shot_encoding() {
        let s = samples();
        let mut a = XorAppender::new();
        for x in &s[..100] {
            a.append(x.t, x.v);
        }
        let mut b = XorAppender::from_bytes(a.bytes()).unwrap();
        for x in &s[100..] {
            b.append(x.t, x.v);
        }
        assert_eq!(b.bytes(), encode(&s).as_slice());
        assert_eq!(b.first_t(), s[0].t);
        assert_eq!(b.last_t(), s.last().unwrap().t);
    }

    #[test]
    fn extreme_timestamps_round_trip() {
        let s = vec![
            Sample { t: i64::MIN, v: 1.0 },
            Sample { t: 0, v: 2.0 },
            Sample { t: i64::MAX, v: 3.0 },
        ];
        let mut out = Vec::new();
        decode_into(&encode(&s), &mut out).unwrap();
        assert_eq!(out, s);
    }

    #[test]
    fn garbage_never_panics() {
        let s = samples();
        let bytes = encode(&s);
        for cut in 0..bytes.len() {
            let mut out = Vec::new();
            let _ = decode_into(&bytes[..cut], &mut out);
        }
        let mut junk = bytes.clone();
        for (i, b) in junk.iter_mut().enumerate().skip(3) {
            *b = b.wrapping_mul(31).wrapping_add(i as u8);
        }
        let mut out = Vec::new();
        let _ = decode_into(&junk, &mut out);
    }

    #[test]
    fn values_only_stream_round_trips() {
        let s = samples();
        let mut w = BitWriter::new();
        encode_values(&mut w, s.iter().map(|x| x.v.to_bits()));
        let bytes = w.into_bytes();
        let mut r = BitReader::new(&bytes);
        let mut out = Vec::new();
        decode_values(&mut r, s.len(), &mut out).unwrap();
        assert_eq!(out, s.iter().map(|x| x.v.to_bits()).collect::<Vec<_>>());
    }
}
