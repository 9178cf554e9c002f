//! Byte-level building blocks shared by every on-disk and on-log format:
//! LEB128 varints, zigzag, order-preserving escaped strings, big-endian
//! integers whose byte order sorts like their numeric order, and a bounds-
//! checked [`Reader`] that turns truncated or garbled input into
//! [`StorageError::Corrupt`] instead of a panic.

use crate::error::StorageError;

/// Appends `v` as an unsigned LEB128 varint.
#[inline]
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded as a varint (small magnitudes take one byte).
#[inline]
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// An `i64` as 8 big-endian bytes that sort like the numbers (sign bit flipped).
#[inline]
pub fn i64_sortable(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

#[inline]
pub fn i64_from_sortable(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

/// Appends `s` so that the concatenation of escaped strings sorts like the
/// tuple of strings and can be split unambiguously: `0x00` becomes
/// `0x00 0xFF`, and the string ends with `0x00 0x01`.
pub fn put_escaped(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.push(0);
    out.push(1);
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A bounds-checked cursor over encoded bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// `what` names the structure being decoded, for error messages.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, pos: 0, what }
    }

    pub fn corrupt(&self, detail: impl Into<String>) -> StorageError {
        StorageError::Corrupt {
            what: self.what,
            detail: format!("{} at byte {}", detail.into(), self.pos),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos.min(self.buf.len())..]
    }

    pub fn u8(&mut self) -> Result<u8, StorageError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.corrupt("unexpected end"))?;
        self.pos += 1;
        Ok(b)
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| self.corrupt("length overflow"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.corrupt("unexpected end"))?;
        self.pos = end;
        Ok(s)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], StorageError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn u32_be(&mut self) -> Result<u32, StorageError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn u64_be(&mut self) -> Result<u64, StorageError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub fn f64_le(&mut self) -> Result<f64, StorageError> {
        Ok(f64::from_bits(u64::from_le_bytes(self.array()?)))
    }

    pub fn i64_sortable(&mut self) -> Result<i64, StorageError> {
        Ok(i64_from_sortable(self.array()?))
    }

    pub fn uvarint(&mut self) -> Result<u64, StorageError> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(self.corrupt("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(self.corrupt("varint too long"));
            }
        }
    }

    pub fn varint(&mut self) -> Result<i64, StorageError> {
        Ok(unzigzag(self.uvarint()?))
    }

    /// A varint that must fit `usize` and stay below `max` (guards against
    /// huge allocations driven by corrupt lengths).
    pub fn len(&mut self, max: usize) -> Result<usize, StorageError> {
        let v = self.uvarint()?;
        if v > max as u64 {
            return Err(self.corrupt(format!("length {v} exceeds limit {max}")));
        }
        Ok(v as usize)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], StorageError> {
        let n = self.len(self.buf.len())?;
        self.take(n)
    }

    pub fn str(&mut self) -> Result<&'a str, StorageError> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| self.corrupt("invalid UTF-8"))
    }

    /// Reads a string written by [`put_escaped`].
    pub fn escaped(&mut self) -> Result<Vec<u8>, StorageError> {
        let mut out = Vec::new();
        loop {
            let b = self.u8()?;
            if b != 0 {
                out.push(b);
                continue;
            }
            match self.u8()? {
                0xFF => out.push(0),
                1 => return Ok(out),
                other => return Err(self.corrupt(format!("bad escape byte {other:#x}"))),
            }
        }
    }

    pub fn escaped_string(&mut self) -> Result<String, StorageError> {
        let b = self.escaped()?;
        String::from_utf8(b).map_err(|_| self.corrupt("invalid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_extremes() {
        let mut buf = Vec::new();
        let vals = [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 1 << 40];
        for v in vals {
            put_varint(&mut buf, v);
        }
        put_uvarint(&mut buf, u64::MAX);
        let mut r = Reader::new(&buf, "test");
        for v in vals {
            assert_eq!(r.varint().unwrap(), v);
        }
        assert_eq!(r.uvarint().unwrap(), u64::MAX);
        assert!(r.is_empty());
    }

    #[test]
    fn truncated_and_overlong_varints_are_errors() {
        assert!(Reader::new(&[0x80], "t").uvarint().is_err());
        assert!(Reader::new(&[0xff; 11], "t").uvarint().is_err());
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], "t")
                .uvarint()
                .is_err()
        );
    }

    #[test]
    fn escaped_strings_sort_like_tuples() {
        let enc = |parts: &[&[u8]]| {
            let mut out = Vec::new();
            for p in parts {
                put_escaped(&mut out, p);
            }
            out
        };
        let a = enc(&[b"a", b"b"]);
        let b = enc(&[b"a\0", b""]);
        let c = enc(&[b"ab", b""]);
        assert!(a < b && b < c, "{a:?} {b:?} {c:?}");
        let mut r = Reader::new(&b, "t");
        assert_eq!(r.escaped().unwrap(), b"a\0");
        assert_eq!(r.escaped().unwrap(), b"");
    }

    #[test]
    fn sortable_i64_orders_negative_first() {
        assert!(i64_sortable(-5) < i64_sortable(3));
        assert!(i64_sortable(i64::MIN) < i64_sortable(i64::MAX));
        assert_eq!(i64_from_sortable(i64_sortable(-42)), -42);
    }
}
