//! A hand-written decoder for the hot path of remote write: it walks the
//! protobuf bytes of a `prometheus.WriteRequest` once, without prost's
//! intermediate messages, and leaves label strings where they are: pairs of
//! `&str` borrowed from the message (checked for UTF-8), all series' pairs
//! in one vector. Owned label sets are built later, and only for series
//! storage does not know. Rare parts (native histograms, metadata) still go
//! through the prost types in `fenghuo_proto`. For remote write 2.0 only the
//! top level is walked by hand, so the symbol table is borrowed too. Field
//! numbers follow `prompb/types.proto` and `io/prometheus/write/v2`; unknown
//! fields are skipped as protobuf requires.

use std::ops::Range;

use fenghuo_proto::{Message, rw1, rw2};
use fenghuo_storage_api::model::Sample;

/// A malformed message.
#[derive(Debug, PartialEq, Eq)]
pub struct WireError(pub String);

type Result<T> = std::result::Result<T, WireError>;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// A cursor over protobuf bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn truncated(&self) -> WireError {
        WireError(format!("message truncated at byte {}", self.pos))
    }

    pub fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.truncated());
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError(format!(
            "varint longer than 10 bytes at byte {}",
            self.pos
        )))
    }

    /// The next field number and wire type.
    pub fn key(&mut self) -> Result<(u32, u8)> {
        let key = self.varint()?;
        let field =
            u32::try_from(key >> 3).map_err(|_| WireError(format!("field number {} too large", key >> 3)))?;
        if field == 0 {
            return Err(WireError(format!("invalid field number 0 at byte {}", self.pos)));
        }
        Ok((field, (key & 7) as u8))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| self.truncated())?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| self.truncated())?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn fixed64(&mut self) -> Result<u64> {
        let end = self.pos + 8;
        let b = self.buf.get(self.pos..end).ok_or_else(|| self.truncated())?;
        self.pos = end;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| self.truncated())?))
    }

    /// Skips a field of the given wire type.
    pub fn skip(&mut self, wire_type: u8) -> Result<()> {
        match wire_type {
            VARINT => self.varint().map(|_| ()),
            FIXED64 => self.fixed64().map(|_| ()),
            LEN => self.bytes().map(|_| ()),
            FIXED32 => {
                let end = self.pos + 4;
                if end > self.buf.len() {
                    return Err(self.truncated());
                }
                self.pos = end;
                Ok(())
            }
            t => Err(WireError(format!(
                "unsupported wire type {t} at byte {}",
                self.pos
            ))),
        }
    }
}

fn expect(wire_type: u8, want: u8, what: &str) -> Result<()> {
    if wire_type == want {
        Ok(())
    } else {
        Err(WireError(format!("invalid wire type {wire_type} for {what}")))
    }
}

fn utf8<'a>(b: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(b).map_err(|_| WireError(format!("invalid UTF-8 in {what}")))
}

/// A label pair borrowed from the message.
pub type Pair<'a> = (&'a str, &'a str);

/// One `prometheus.TimeSeries` as decoded from the wire.
#[derive(Debug, Default)]
pub struct RawSeries<'a> {
    /// This series' pairs in [`RawRequest::labels`], as sent (not yet
    /// validated).
    pub labels: Range<u32>,
    pub samples: Vec<Sample>,
    pub exemplars: Vec<RawExemplar<'a>>,
    pub histograms: Vec<rw1::Histogram>,
}

#[derive(Debug)]
pub struct RawExemplar<'a> {
    pub labels: Vec<Pair<'a>>,
    pub value: f64,
    pub timestamp: i64,
}

/// A decoded `prometheus.WriteRequest`; label strings borrow from the
/// message, and the pairs of every series share one vector.
#[derive(Debug, Default)]
pub struct RawRequest<'a> {
    pub labels: Vec<Pair<'a>>,
    pub series: Vec<RawSeries<'a>>,
    pub metadata: Vec<rw1::MetricMetadata>,
}

impl<'a> RawRequest<'a> {
    /// The pairs of one series, as sent.
    pub fn labels_of(&self, s: &RawSeries<'_>) -> &[Pair<'a>] {
        &self.labels[s.labels.start as usize..s.labels.end as usize]
    }
}

/// Decodes a `prometheus.WriteRequest`.
pub fn decode_write_request(buf: &[u8]) -> Result<RawRequest<'_>> {
    let mut r = Reader::new(buf);
    // Sized for typical label sets (a label takes ~25 bytes on the wire, a
    // series ~250) so the shared vectors rarely move while they grow.
    let mut out = RawRequest {
        labels: Vec::with_capacity(buf.len() / 24),
        series: Vec::with_capacity(buf.len() / 256),
        metadata: Vec::new(),
    };
    while !r.is_empty() {
        match r.key()? {
            (1, t) => {
                expect(t, LEN, "timeseries")?;
                let series = decode_series(r.bytes()?, &mut out.labels)?;
                out.series.push(series);
            }
            (3, t) => {
                expect(t, LEN, "metadata")?;
                let m = rw1::MetricMetadata::decode(r.bytes()?).map_err(|e| WireError(e.to_string()))?;
                out.metadata.push(m);
            }
            (_, t) => r.skip(t)?,
        }
    }
    Ok(out)
}

fn decode_series<'a>(buf: &'a [u8], labels: &mut Vec<Pair<'a>>) -> Result<RawSeries<'a>> {
    let mut r = Reader::new(buf);
    let start = labels.len() as u32;
    let mut s = RawSeries {
        samples: Vec::with_capacity(1),
        ..RawSeries::default()
    };
    while !r.is_empty() {
        match r.key()? {
            (1, t) => {
                expect(t, LEN, "label")?;
                labels.push(decode_label(r.bytes()?)?);
            }
            (2, t) => {
                expect(t, LEN, "sample")?;
                s.samples.push(decode_sample(r.bytes()?)?);
            }
            (3, t) => {
                expect(t, LEN, "exemplar")?;
                s.exemplars.push(decode_exemplar(r.bytes()?)?);
            }
            (4, t) => {
                expect(t, LEN, "histogram")?;
                s.histograms
                    .push(rw1::Histogram::decode(r.bytes()?).map_err(|e| WireError(e.to_string()))?);
            }
            (_, t) => r.skip(t)?,
        }
    }
    s.labels = start..labels.len() as u32;
    Ok(s)
}

fn decode_label(buf: &[u8]) -> Result<Pair<'_>> {
    let mut r = Reader::new(buf);
    let (mut name, mut value): (&[u8], &[u8]) = (&[], &[]);
    while !r.is_empty() {
        match r.key()? {
            (1, t) => {
                expect(t, LEN, "label name")?;
                name = r.bytes()?;
            }
            (2, t) => {
                expect(t, LEN, "label value")?;
                value = r.bytes()?;
            }
            (_, t) => r.skip(t)?,
        }
    }
    Ok((utf8(name, "a label name")?, utf8(value, "a label value")?))
}

fn decode_sample(buf: &[u8]) -> Result<Sample> {
    let mut r = Reader::new(buf);
    let (mut t, mut v) = (0i64, 0f64);
    while !r.is_empty() {
        match r.key()? {
            (1, wt) => {
                expect(wt, FIXED64, "sample value")?;
                v = f64::from_bits(r.fixed64()?);
            }
            (2, wt) => {
                expect(wt, VARINT, "sample timestamp")?;
                t = r.varint()? as i64;
            }
            (_, wt) => r.skip(wt)?,
        }
    }
    Ok(Sample { t, v })
}

fn decode_exemplar(buf: &[u8]) -> Result<RawExemplar<'_>> {
    let mut r = Reader::new(buf);
    let mut e = RawExemplar {
        labels: Vec::new(),
        value: 0.0,
        timestamp: 0,
    };
    while !r.is_empty() {
        match r.key()? {
            (1, t) => {
                expect(t, LEN, "exemplar label")?;
                e.labels.push(decode_label(r.bytes()?)?);
            }
            (2, t) => {
                expect(t, FIXED64, "exemplar value")?;
                e.value = f64::from_bits(r.fixed64()?);
            }
            (3, t) => {
                expect(t, VARINT, "exemplar timestamp")?;
                e.timestamp = r.varint()? as i64;
            }
            (_, t) => r.skip(t)?,
        }
    }
    Ok(e)
}

/// The top level of an `io.prometheus.write.v2.Request`: the symbol table
/// borrowed from the message, the series decoded by prost (they hold no
/// strings, only references into the table).
#[derive(Debug, Default)]
pub struct RawRequestV2<'a> {
    pub symbols: Vec<&'a str>,
    pub timeseries: Vec<rw2::TimeSeries>,
}

/// Decodes an `io.prometheus.write.v2.Request`.
pub fn decode_request_v2(buf: &[u8]) -> Result<RawRequestV2<'_>> {
    let mut r = Reader::new(buf);
    let mut out = RawRequestV2::default();
    while !r.is_empty() {
        match r.key()? {
            (4, t) => {
                expect(t, LEN, "symbols")?;
                out.symbols.push(utf8(r.bytes()?, "a symbol")?);
            }
            (5, t) => {
                expect(t, LEN, "timeseries")?;
                let ts = rw2::TimeSeries::decode(r.bytes()?).map_err(|e| WireError(e.to_string()))?;
                out.timeseries.push(ts);
            }
            (_, t) => r.skip(t)?,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_request() -> rw1::WriteRequest {
        rw1::WriteRequest {
            timeseries: vec![rw1::TimeSeries {
                labels: vec![
                    rw1::Label {
                        name: "__name__".into(),
                        value: "up".into(),
                    },
                    rw1::Label {
                        name: "job".into(),
                        value: "节点".into(),
                    },
                ],
                samples: vec![
                    rw1::Sample {
                        value: -1.5,
                        timestamp: -5,
                    },
                    rw1::Sample {
                        value: f64::NAN,
                        timestamp: 1_700_000_000_000,
                    },
                ],
                exemplars: vec![rw1::Exemplar {
                    labels: vec![rw1::Label {
                        name: "trace_id".into(),
                        value: "abc".into(),
                    }],
                    value: 2.0,
                    timestamp: 7,
                }],
                histograms: vec![rw1::Histogram {
                    schema: 3,
                    timestamp: 9,
                    ..Default::default()
                }],
            }],
            metadata: vec![rw1::MetricMetadata {
                r#type: 1,
                metric_family_name: "up".into(),
                help: "h".into(),
                unit: String::new(),
            }],
        }
    }

    /// The hand-written decoder agrees with prost on every field.
    #[test]
    fn agrees_with_prost() {
        let req = sample_request();
        let buf = req.encode_to_vec();
        let raw = decode_write_request(&buf).unwrap();
        let ts = &req.timeseries[0];
        let got = &raw.series[0];
        assert_eq!(raw.labels_of(got), &[("__name__", "up"), ("job", "节点")]);
        assert_eq!(got.samples[0], Sample { t: -5, v: -1.5 });
        assert!(got.samples[1].v.is_nan() && got.samples[1].t == 1_700_000_000_000);
        assert_eq!(got.exemplars[0].labels, vec![("trace_id", "abc")]);
        assert_eq!((got.exemplars[0].value, got.exemplars[0].timestamp), (2.0, 7));
        assert_eq!(got.histograms, ts.histograms);
        assert_eq!(raw.metadata, req.metadata);
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut buf = sample_request().encode_to_vec();
        // Field 15 as a varint, field 16 as a fixed32, at the top level.
        buf.extend_from_slice(&[0x78, 0x01, 0x85, 0x01, 1, 2, 3, 4]);
        assert_eq!(decode_write_request(&buf).unwrap().series.len(), 1);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let buf = sample_request().encode_to_vec();
        for cut in 0..buf.len() {
            // Any prefix either decodes (a cut between top-level fields) or
            // fails cleanly.
            let _ = decode_write_request(&buf[..cut]);
        }
        assert!(decode_write_request(&buf[..buf.len() - 1]).is_err());
    }

    #[test]
    fn wrong_wire_types_and_bad_utf8_are_named() {
        // Field 1 (timeseries) with wire type 0.
        assert!(
            decode_write_request(&[0x08, 0x01])
                .unwrap_err()
                .0
                .contains("wire type")
        );
        // timeseries { label { name: 0xff } }
        let err = decode_write_request(&[0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0xff]).unwrap_err();
        assert!(err.0.contains("UTF-8"), "{err:?}");
    }

    #[test]
    fn v2_top_level_agrees_with_prost() {
        let req = rw2::Request {
            symbols: vec!["".into(), "__name__".into(), "up".into()],
            timeseries: vec![rw2::TimeSeries {
                labels_refs: vec![1, 2],
                samples: vec![rw2::Sample {
                    value: 1.0,
                    timestamp: 10,
                }],
                created_timestamp: 4,
                ..Default::default()
            }],
        };
        let buf = req.encode_to_vec();
        let raw = decode_request_v2(&buf).unwrap();
        assert_eq!(raw.symbols, vec!["", "__name__", "up"]);
        assert_eq!(raw.timeseries, req.timeseries);
        for cut in 0..buf.len() {
            let _ = decode_request_v2(&buf[..cut]);
        }
        // symbols: [0xff]
        let err = decode_request_v2(&[0x22, 0x01, 0xff]).unwrap_err();
        assert!(err.0.contains("UTF-8"), "{err:?}");
    }
}
