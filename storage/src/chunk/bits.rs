//! Bit-granular writer and reader, most significant bit first, used by the
//! Gorilla-style XOR encodings.

use crate::error::StorageError;

/// Appends bits to a byte vector. `free` counts the unused low bits of the
/// last byte (0 when the last byte is full or there is none).
#[derive(Clone, Debug, Default)]
pub struct BitWriter {
    buf: Vec<u8>,
    free: u8,
}

impl BitWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Continues writing after the bits of `buf`, whose last byte has `free`
    /// unused low bits.
    pub fn from_parts(buf: Vec<u8>, free: u8) -> Self {
        Self { buf, free: free & 7 }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    pub fn free_bits(&self) -> u8 {
        self.free
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn bit_len(&self) -> usize {
        self.buf.len() * 8 - self.free as usize
    }

    #[inline]
    pub fn write_bit(&mut self, bit: bool) {
        if self.free == 0 {
            self.push_byte();
        }
        self.free -= 1;
        if let (true, Some(last)) = (bit, self.buf.last_mut()) {
            *last |= 1 << self.free;
        }
    }

    /// Writes the low `n` bits of `v` (n <= 64), most significant first.
    #[inline]
    pub fn write_bits(&mut self, v: u64, n: u8) {
        let mut n = n.min(64);
        while n > 0 {
            if self.free == 0 {
                self.push_byte();
            }
            let take = n.min(self.free);
            let shift = n - take;
            let mask = if take == 64 { u64::MAX } else { (1u64 << take) - 1 };
            let bits = ((v >> shift) & mask) as u8;
            self.free -= take;
            if let Some(last) = self.buf.last_mut() {
                *last |= bits << self.free;
            }
            n -= take;
        }
    }

    pub fn shrink_to_fit(&mut self) {
        self.buf.shrink_to_fit();
    }

    /// Appends an empty byte. Past 256 bytes the buffer grows by a quarter
    /// rather than doubling: the head holds one open chunk per series, and
    /// doubling left a third of that memory unused on average.
    #[inline]
    fn push_byte(&mut self) {
        let len = self.buf.len();
        if len == self.buf.capacity() {
            self.buf
                .reserve_exact(if len < 256 { len.max(16) } else { len / 4 });
        }
        self.buf.push(0);
        self.free = 8;
    }
}

/// Reads bits written by [`BitWriter`].
pub struct BitReader<'a> {
    buf: &'a [u8],
    /// Next bit position (in bits from the start).
    pos: usize,
    len: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            len: buf.len() * 8,
        }
    }

    fn eof() -> StorageError {
        StorageError::Corrupt {
            what: "chunk bitstream",
            detail: "unexpected end of bits".into(),
        }
    }

    #[inline]
    pub fn read_bit(&mut self) -> Result<bool, StorageError> {
        if self.pos >= self.len {
            return Err(Self::eof());
        }
        let b = self.buf[self.pos / 8] >> (7 - (self.pos % 8)) & 1;
        self.pos += 1;
        Ok(b == 1)
    }

    /// Reads `n` bits (n <= 64) as the low bits of a u64.
    #[inline]
    pub fn read_bits(&mut self, n: u8) -> Result<u64, StorageError> {
        let n = n.min(64) as usize;
        if self.pos + n > self.len {
            return Err(Self::eof());
        }
        let mut v: u64 = 0;
        let mut left = n;
        while left > 0 {
            let byte = self.buf[self.pos / 8];
            let off = self.pos % 8;
            let avail = 8 - off;
            let take = left.min(avail);
            let bits = (byte >> (avail - take)) & (((1u16 << take) - 1) as u8);
            v = if take == 64 {
                u64::from(bits)
            } else {
                (v << take) | u64::from(bits)
            };
            self.pos += take;
            left -= take;
        }
        Ok(v)
    }

    pub fn position_bits(&self) -> usize {
        self.pos
    }

    /// Reads up to 4 one-bits of a unary prefix (stops at the first zero).
    #[inline]
    pub fn read_prefix(&mut self, max: u8) -> Result<u8, StorageError> {
        let mut n = 0;
        while n < max {
            if !self.read_bit()? {
                break;
            }
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip() {
        let mut w = BitWriter::new();
        w.write_bit(true);
        w.write_bits(0b101, 3);
        w.write_bits(u64::MAX, 64);
        w.write_bits(0x1234, 13);
        w.write_bit(false);
        w.write_bits(7, 3);
        assert_eq!(w.bit_len(), 1 + 3 + 64 + 13 + 1 + 3);
        let bytes = w.bytes().to_vec();
        let mut r = BitReader::new(&bytes);
        assert!(r.read_bit().unwrap());
        assert_eq!(r.read_bits(3).unwrap(), 0b101);
        assert_eq!(r.read_bits(64).unwrap(), u64::MAX);
        assert_eq!(r.read_bits(13).unwrap(), 0x1234 & 0x1fff);
        assert!(!r.read_bit().unwrap());
        assert_eq!(r.read_bits(3).unwrap(), 7);
    }

    #[test]
    fn resuming_from_parts_continues_the_stream() {
        let mut w = BitWriter::new();
        w.write_bits(0b1011, 4);
        let free = w.free_bits();
        let mut w2 = BitWriter::from_parts(w.into_bytes(), free);
        w2.write_bits(0b0110, 4);
        assert_eq!(w2.bytes(), &[0b1011_0110]);
    }

    #[test]
    fn reading_past_the_end_is_an_error() {
        let mut r = BitReader::new(&[0xff]);
        assert!(r.read_bits(9).is_err());
    }
}
