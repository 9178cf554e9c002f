//! Log entries and their binary encoding (version byte `0x01`).
//!
//! An entry carries everything applying it needs, including the proposer's
//! clock reading (`now_ms`), so that apply never consults a clock and every
//! replica reaches the same decisions (retention bounds, idle series).
//!
//! A series the proposer found active in the head is written as a
//! reference (its series id) instead of its labels, which makes entries
//! about three times smaller. Whether a referenced series is still active
//! when the entry is applied is a deterministic property of the log; if it
//! is not, apply hands the series back and the proposer writes it again
//! with labels.

use std::sync::Arc;

use crate::codec::{Reader, put_bytes, put_uvarint, put_varint};
use crate::error::StorageError;
use crate::model::{
    BucketSpan, CounterResetHint, Exemplar, FloatHistogram, HistogramSample, Label, Labels, MetricMetadata,
    MetricType, Sample, SeriesWrite, TenantId, WriteBatch,
};

pub const ENTRY_VERSION: u8 = 0x01;
const KIND_WRITE: u8 = 1;
const KIND_TICK: u8 = 2;

/// Decode-time sanity bound on any count in an entry.
const MAX_COUNT: usize = 1 << 28;

/// One entry of a shard's log.
#[derive(Clone, Debug, PartialEq)]
pub enum LogEntry {
    /// A batch of one tenant's writes.
    Write {
        tenant: TenantId,
        now_ms: i64,
        batch: WriteBatch,
        /// Per series of `batch`, the id it is referenced by (its labels are
        /// then not in the encoding; decoded entries have empty labels).
        /// Empty, or as long as `batch.series`.
        refs: Vec<Option<u64>>,
    },
    /// Periodic maintenance: evict idle series from the head, advance the
    /// retention floor. Appended by the shard's background thread.
    Tick { now_ms: i64 },
}

impl LogEntry {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.push(ENTRY_VERSION);
        match self {
            LogEntry::Write {
                tenant,
                now_ms,
                batch,
                refs,
            } => {
                out.push(KIND_WRITE);
                encode_write(&mut out, tenant, *now_ms, batch, refs);
            }
            LogEntry::Tick { now_ms } => {
                out.push(KIND_TICK);
                put_varint(&mut out, *now_ms);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        let mut r = Reader::new(bytes, "log entry");
        let version = r.u8()?;
        if version != ENTRY_VERSION {
            return Err(r.corrupt(format!("unsupported log entry version {version}")));
        }
        match r.u8()? {
            KIND_WRITE => decode_write(&mut r),
            KIND_TICK => Ok(LogEntry::Tick { now_ms: r.varint()? }),
            other => Err(r.corrupt(format!("unknown log entry kind {other}"))),
        }
    }
}

/// Encodes a write entry without cloning the batch.
pub fn encode_write_entry(
    tenant: &TenantId,
    now_ms: i64,
    batch: &WriteBatch,
    refs: &[Option<u64>],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + batch.series.len() * 32);
    out.push(ENTRY_VERSION);
    out.push(KIND_WRITE);
    encode_write(&mut out, tenant, now_ms, batch, refs);
    out
}

const SERIES_LABELS: u8 = 0;
const SERIES_REF: u8 = 1;

fn put_labels(out: &mut Vec<u8>, labels: &Labels) {
    put_uvarint(out, labels.len() as u64);
    for l in labels {
        put_bytes(out, l.name.as_bytes());
        put_bytes(out, l.value.as_bytes());
    }
}

const LABEL_LITERAL: u8 = 0;
const LABEL_SAME_NAME: u8 = 1;
const LABEL_SAME: u8 = 2;

/// Series labels, each coded against the label at the same position of the
/// previous series of the entry: consecutive series of a remote-write batch
/// mostly share label names and the `job`/`instance` values.
fn put_series_labels(out: &mut Vec<u8>, labels: &Labels, prev: Option<&Labels>) {
    put_uvarint(out, labels.len() as u64);
    let prev = prev.map(|p| p.as_slice()).unwrap_or(&[]);
    for (i, l) in labels.iter().enumerate() {
        match prev.get(i) {
            Some(p) if p.name == l.name && p.value == l.value => out.push(LABEL_SAME),
            Some(p) if p.name == l.name => {
                out.push(LABEL_SAME_NAME);
                put_bytes(out, l.value.as_bytes());
            }
            _ => {
                out.push(LABEL_LITERAL);
                put_bytes(out, l.name.as_bytes());
                put_bytes(out, l.value.as_bytes());
            }
        }
    }
}

fn encode_write(out: &mut Vec<u8>, tenant: &TenantId, now_ms: i64, batch: &WriteBatch, refs: &[Option<u64>]) {
    put_varint(out, now_ms);
    put_bytes(out, tenant.as_str().as_bytes());
    put_uvarint(out, batch.metadata.len() as u64);
    for m in &batch.metadata {
        put_bytes(out, m.metric_family.as_bytes());
        out.push(metric_type_byte(m.metric_type));
        put_bytes(out, m.help.as_bytes());
        put_bytes(out, m.unit.as_bytes());
    }
    put_uvarint(out, batch.series.len() as u64);
    let mut prev: Option<&Labels> = None;
    for (i, s) in batch.series.iter().enumerate() {
        match refs.get(i).copied().flatten() {
            Some(sid) => {
                out.push(SERIES_REF);
                put_uvarint(out, sid);
            }
            None => {
                out.push(SERIES_LABELS);
                put_series_labels(out, &s.labels, prev);
                prev = Some(&s.labels);
            }
        }
        put_varint(out, s.created_timestamp);
        put_uvarint(out, s.samples.len() as u64);
        // Timestamps relative to the entry's clock reading: small varints.
        let mut prev = now_ms;
        for x in &s.samples {
            put_varint(out, x.t.wrapping_sub(prev));
            prev = x.t;
            out.extend_from_slice(&x.v.to_bits().to_le_bytes());
        }
        put_uvarint(out, s.histograms.len() as u64);
        for h in &s.histograms {
            put_varint(out, h.t);
            put_histogram(out, &h.h);
        }
        put_uvarint(out, s.exemplars.len() as u64);
        for e in &s.exemplars {
            put_labels(out, &e.labels);
            out.extend_from_slice(&e.value.to_bits().to_le_bytes());
            put_varint(out, e.t);
        }
    }
}

pub(crate) fn metric_type_byte(t: MetricType) -> u8 {
    match t {
        MetricType::Unknown => 0,
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Histogram => 3,
        MetricType::GaugeHistogram => 4,
        MetricType::Summary => 5,
        MetricType::Info => 6,
        MetricType::StateSet => 7,
    }
}

pub(crate) fn metric_type_from_byte(b: u8) -> MetricType {
    match b {
        1 => MetricType::Counter,
        2 => MetricType::Gauge,
        3 => MetricType::Histogram,
        4 => MetricType::GaugeHistogram,
        5 => MetricType::Summary,
        6 => MetricType::Info,
        7 => MetricType::StateSet,
        _ => MetricType::Unknown,
    }
}

fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_bits().to_le_bytes());
}

fn put_spans(out: &mut Vec<u8>, spans: &[BucketSpan]) {
    put_uvarint(out, spans.len() as u64);
    for s in spans {
        put_varint(out, i64::from(s.offset));
        put_uvarint(out, u64::from(s.length));
    }
}

fn put_histogram(out: &mut Vec<u8>, h: &FloatHistogram) {
    out.push(match h.counter_reset_hint {
        CounterResetHint::Unknown => 0,
        CounterResetHint::CounterReset => 1,
        CounterResetHint::NotCounterReset => 2,
        CounterResetHint::Gauge => 3,
    });
    put_varint(out, i64::from(h.schema));
    put_f64(out, h.zero_threshold);
    put_f64(out, h.zero_count);
    put_f64(out, h.count);
    put_f64(out, h.sum);
    put_spans(out, &h.positive_spans);
    put_spans(out, &h.negative_spans);
    for list in [&h.positive_buckets, &h.negative_buckets, &h.custom_values] {
        put_uvarint(out, list.len() as u64);
        for v in list.iter() {
            put_f64(out, *v);
        }
    }
}

fn get_string(r: &mut Reader<'_>) -> Result<String, StorageError> {
    Ok(r.str()?.to_string())
}

fn get_labels(r: &mut Reader<'_>) -> Result<Labels, StorageError> {
    let n = r.len(MAX_COUNT)?;
    let mut v = Vec::with_capacity(n.min(256));
    for _ in 0..n {
        let name = get_string(r)?;
        let value = get_string(r)?;
        v.push(Label { name, value });
    }
    // Entries are written from validated, sorted labels; re-normalise so a
    // hand-made or damaged entry cannot create an unsorted label set.
    if v.windows(2).all(|w| w[0].name < w[1].name) && v.iter().all(|l| !l.value.is_empty()) {
        Ok(Labels::from_sorted_unchecked(v))
    } else {
        Ok(Labels::new(v))
    }
}

fn get_series_labels(r: &mut Reader<'_>, prev: &[Label]) -> Result<Labels, StorageError> {
    let n = r.len(MAX_COUNT)?;
    let mut v = Vec::with_capacity(n.min(256));
    for i in 0..n {
        let label = match r.u8()? {
            LABEL_LITERAL => Label {
                name: get_string(r)?,
                value: get_string(r)?,
            },
            LABEL_SAME_NAME => Label {
                name: prev
                    .get(i)
                    .ok_or_else(|| r.corrupt("label refers to a missing previous label"))?
                    .name
                    .clone(),
                value: get_string(r)?,
            },
            LABEL_SAME => prev
                .get(i)
                .cloned()
                .ok_or_else(|| r.corrupt("label refers to a missing previous label"))?,
            other => return Err(r.corrupt(format!("unknown label tag {other}"))),
        };
        v.push(label);
    }
    if v.windows(2).all(|w| w[0].name < w[1].name) && v.iter().all(|l| !l.value.is_empty()) {
        Ok(Labels::from_sorted_unchecked(v))
    } else {
        Ok(Labels::new(v))
    }
}

fn get_spans(r: &mut Reader<'_>) -> Result<Vec<BucketSpan>, StorageError> {
    let n = r.len(MAX_COUNT)?;
    let mut v = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let offset = i32::try_from(r.varint()?).map_err(|_| r.corrupt("span offset"))?;
        let length = u32::try_from(r.uvarint()?).map_err(|_| r.corrupt("span length"))?;
        v.push(BucketSpan { offset, length });
    }
    Ok(v)
}

fn get_f64s(r: &mut Reader<'_>) -> Result<Vec<f64>, StorageError> {
    let n = r.len(MAX_COUNT)?;
    let mut v = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        v.push(r.f64_le()?);
    }
    Ok(v)
}

fn get_histogram(r: &mut Reader<'_>) -> Result<FloatHistogram, StorageError> {
    let counter_reset_hint = match r.u8()? {
        1 => CounterResetHint::CounterReset,
        2 => CounterResetHint::NotCounterReset,
        3 => CounterResetHint::Gauge,
        _ => CounterResetHint::Unknown,
    };
    let schema = i32::try_from(r.varint()?).map_err(|_| r.corrupt("schema"))?;
    let zero_threshold = r.f64_le()?;
    let zero_count = r.f64_le()?;
    let count = r.f64_le()?;
    let sum = r.f64_le()?;
    let positive_spans = get_spans(r)?;
    let negative_spans = get_spans(r)?;
    let positive_buckets = get_f64s(r)?;
    let negative_buckets = get_f64s(r)?;
    let custom_values = get_f64s(r)?;
    Ok(FloatHistogram {
        counter_reset_hint,
        schema,
        zero_threshold,
        zero_count,
        count,
        sum,
        positive_spans,
        negative_spans,
        positive_buckets,
        negative_buckets,
        custom_values,
    })
}

fn decode_write(r: &mut Reader<'_>) -> Result<LogEntry, StorageError> {
    let now_ms = r.varint()?;
    let tenant = TenantId::new(get_string(r)?).map_err(|e| r.corrupt(e))?;
    let nmeta = r.len(MAX_COUNT)?;
    let mut metadata = Vec::with_capacity(nmeta.min(1024));
    for _ in 0..nmeta {
        let metric_family = get_string(r)?;
        let metric_type = metric_type_from_byte(r.u8()?);
        let help = get_string(r)?;
        let unit = get_string(r)?;
        metadata.push(MetricMetadata {
            metric_family,
            metric_type,
            help,
            unit,
        });
    }
    let nseries = r.len(MAX_COUNT)?;
    let mut series: Vec<SeriesWrite> = Vec::with_capacity(nseries.min(65_536));
    let mut refs: Vec<Option<u64>> = Vec::with_capacity(nseries.min(65_536));
    let mut prev_labels = Labels::empty();
    for _ in 0..nseries {
        let labels = match r.u8()? {
            SERIES_LABELS => {
                let l = get_series_labels(r, prev_labels.as_slice())?;
                prev_labels = l.clone();
                refs.push(None);
                l
            }
            SERIES_REF => {
                refs.push(Some(r.uvarint()?));
                Labels::empty()
            }
            other => return Err(r.corrupt(format!("unknown series tag {other}"))),
        };
        let created_timestamp = r.varint()?;
        let n = r.len(MAX_COUNT)?;
        let mut samples = Vec::with_capacity(n.min(65_536));
        let mut t = now_ms;
        for _ in 0..n {
            t = t.wrapping_add(r.varint()?);
            let v = r.f64_le()?;
            samples.push(Sample { t, v });
        }
        let n = r.len(MAX_COUNT)?;
        let mut histograms = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let t = r.varint()?;
            let h = get_histogram(r)?;
            histograms.push(HistogramSample { t, h: Arc::new(h) });
        }
        let n = r.len(MAX_COUNT)?;
        let mut exemplars = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let labels = get_labels(r)?;
            let value = r.f64_le()?;
            let t = r.varint()?;
            exemplars.push(Exemplar { labels, value, t });
        }
        series.push(SeriesWrite {
            labels,
            samples,
            histograms,
            exemplars,
            created_timestamp,
        });
    }
    if !r.is_empty() {
        return Err(r.corrupt("trailing bytes after write entry"));
    }
    if refs.iter().all(Option::is_none) {
        refs.clear();
    }
    Ok(LogEntry::Write {
        tenant,
        now_ms,
        batch: WriteBatch { series, metadata },
        refs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_batch() -> WriteBatch {
        WriteBatch {
            series: vec![SeriesWrite {
                labels: Labels::from_pairs([("__name__", "up"), ("job", "node\0x")]),
                samples: vec![Sample { t: 20, v: 1.0 }, Sample { t: 10, v: f64::NAN }],
                histograms: vec![HistogramSample {
                    t: 30,
                    h: Arc::new(FloatHistogram {
                        schema: 1,
                        count: 3.0,
                        sum: 2.5,
                        positive_spans: vec![BucketSpan { offset: 1, length: 2 }],
                        positive_buckets: vec![1.0, 2.0],
                        ..Default::default()
                    }),
                }],
                exemplars: vec![Exemplar {
                    labels: Labels::from_pairs([("trace_id", "abc")]),
                    value: 0.5,
                    t: 20,
                }],
                created_timestamp: 5,
            }],
            metadata: vec![MetricMetadata {
                metric_family: "up".into(),
                metric_type: MetricType::Gauge,
                help: "Up.".into(),
                unit: String::new(),
            }],
        }
    }

    #[test]
    fn write_entry_round_trips() {
        let mut batch = sample_batch();
        for pairs in [
            vec![("__name__", "up"), ("job", "node\0x"), ("x", "1")],
            vec![("__name__", "down"), ("job", "node\0x")],
            vec![("a", "1")],
        ] {
            batch.series.push(SeriesWrite {
                labels: Labels::from_pairs(pairs),
                samples: vec![Sample { t: 1, v: 2.0 }],
                ..Default::default()
            });
        }
        let e = LogEntry::Write {
            tenant: TenantId::new("team-a").unwrap(),
            now_ms: 1_700_000_000_000,
            batch: batch.clone(),
            refs: vec![],
        };
        let bytes = e.encode();
        let back = LogEntry::decode(&bytes).unwrap();
        // NaN != NaN, so compare the re-encoding and the labels.
        assert_eq!(back.encode(), bytes);
        let LogEntry::Write { batch: b2, .. } = back else {
            panic!("kind changed")
        };
        let labels: Vec<_> = b2.series.iter().map(|s| s.labels.clone()).collect();
        assert_eq!(
            labels,
            batch.series.iter().map(|s| s.labels.clone()).collect::<Vec<_>>()
        );
        // References replace labels; labels of later series are coded
        // against the last labelled one.
        let refs = vec![None, Some(42), None, None];
        let e = LogEntry::Write {
            tenant: TenantId::new("team-a").unwrap(),
            now_ms: 5,
            batch: batch.clone(),
            refs: refs.clone(),
        };
        let LogEntry::Write {
            batch: b3, refs: r3, ..
        } = LogEntry::decode(&e.encode()).unwrap()
        else {
            panic!("kind changed")
        };
        assert_eq!(r3, refs);
        assert_eq!(b3.series[1].labels, Labels::empty());
        assert_eq!(b3.series[2].labels, batch.series[2].labels);
        assert_eq!(b3.series[3].labels, batch.series[3].labels);
        let tick = LogEntry::Tick { now_ms: -3 };
        assert_eq!(LogEntry::decode(&tick.encode()).unwrap(), tick);
    }

    #[test]
    fn damaged_entries_are_errors_not_panics() {
        let e = LogEntry::Write {
            tenant: TenantId::default_tenant(),
            now_ms: 1,
            batch: sample_batch(),
            refs: vec![None, Some(7)],
        };
        let bytes = e.encode();
        for cut in 0..bytes.len() {
            assert!(LogEntry::decode(&bytes[..cut]).is_err());
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] = b[i].wrapping_add(0x41);
            let _ = LogEntry::decode(&b);
        }
    }
}
