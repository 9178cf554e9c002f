//! Column families and the byte layout of every key and value in a shard's
//! RocksDB instance. `storage/FORMAT.md` documents the same layouts; keep
//! the two in step.

use crate::codec::{Reader, i64_sortable, put_bytes, put_escaped, put_uvarint, put_varint};
use crate::error::StorageError;
use crate::model::{Exemplar, Label, Labels, MetricMetadata};
use crate::replicate::entry::{metric_type_byte, metric_type_from_byte};

/// Shard metadata: applied index, id counters, markers.
pub const CF_META: &str = "default";
/// Series id -> tenant + labels.
pub const CF_SERIES: &str = "series";
/// Tenant + labels -> series id.
pub const CF_SERIES_BY_LABELS: &str = "series_by_labels";
/// Series id -> head snapshot (open chunks and series state).
pub const CF_HEAD: &str = "head";
/// Series id -> newest sample time of a series evicted from the head.
pub const CF_IDLE: &str = "idle";
/// Partition + tenant + label pair + series id -> (empty).
pub const CF_POSTINGS: &str = "postings";
/// Partition + series id + max time + min time -> chunk.
pub const CF_CHUNKS: &str = "chunks";
/// Tenant + metric family -> metadata.
pub const CF_METADATA: &str = "metadata";
/// Tenant + sequence -> exemplar.
pub const CF_EXEMPLARS: &str = "exemplars";

pub const ALL_CFS: [&str; 9] = [
    CF_META,
    CF_SERIES,
    CF_SERIES_BY_LABELS,
    CF_HEAD,
    CF_IDLE,
    CF_POSTINGS,
    CF_CHUNKS,
    CF_METADATA,
    CF_EXEMPLARS,
];

/// On-disk format version of a shard; bumped on incompatible changes.
pub const FORMAT_VERSION: u8 = 1;

pub const META_FORMAT: &[u8] = b"format";
pub const META_SHARD: &[u8] = b"shard";
pub const META_APPLIED: &[u8] = b"applied_index";
pub const META_NEXT_SID: &[u8] = b"next_series_id";
/// The replicator's opaque position at the applied index (a Raft group
/// keeps its applied log id and membership there).
pub const META_POSITION: &[u8] = b"position";
pub const META_RETENTION_DONE: &[u8] = b"retention_done_below";
/// Prefix of "window needs compaction" markers: `dw` + window (sortable i64).
pub const META_DIRTY_WINDOW: &[u8] = b"dw";
/// Prefix of per-partition sample counters: `ps` + partition (sortable i32).
pub const META_PARTITION_SAMPLES: &[u8] = b"ps";

const VALUE_VERSION: u8 = 1;

/// A partition number as 4 bytes that sort like the number.
pub fn partition_bytes(p: i32) -> [u8; 4] {
    ((p as u32) ^ (1 << 31)).to_be_bytes()
}

pub fn partition_from_bytes(b: [u8; 4]) -> i32 {
    (u32::from_be_bytes(b) ^ (1 << 31)) as i32
}

pub fn dirty_window_key(window: i64) -> Vec<u8> {
    let mut k = META_DIRTY_WINDOW.to_vec();
    k.extend_from_slice(&i64_sortable(window));
    k
}

pub fn partition_samples_key(p: i32) -> Vec<u8> {
    let mut k = META_PARTITION_SAMPLES.to_vec();
    k.extend_from_slice(&partition_bytes(p));
    k
}

pub fn sid_key(sid: u64) -> [u8; 8] {
    sid.to_be_bytes()
}

pub fn sid_from_key(k: &[u8]) -> Result<u64, StorageError> {
    let a: [u8; 8] = k
        .get(..8)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| StorageError::Corrupt {
            what: "series key",
            detail: format!("key of {} bytes", k.len()),
        })?;
    Ok(u64::from_be_bytes(a))
}

/// `esc(tenant) (esc(name) esc(value))*`: the series-by-labels key.
pub fn series_labels_key(
    tenant: &str,
    labels: impl Iterator<Item = (impl AsRef<str>, impl AsRef<str>)>,
) -> Vec<u8> {
    let mut k = Vec::with_capacity(128);
    put_escaped(&mut k, tenant.as_bytes());
    for (n, v) in labels {
        put_escaped(&mut k, n.as_ref().as_bytes());
        put_escaped(&mut k, v.as_ref().as_bytes());
    }
    k
}

/// Series record value: version, tenant, labels.
pub fn encode_series_record(
    tenant: &str,
    labels: impl Iterator<Item = (impl AsRef<str>, impl AsRef<str>)>,
) -> Vec<u8> {
    let mut v = Vec::with_capacity(128);
    v.push(VALUE_VERSION);
    put_bytes(&mut v, tenant.as_bytes());
    let labels: Vec<_> = labels.collect();
    put_uvarint(&mut v, labels.len() as u64);
    for (n, val) in labels {
        put_bytes(&mut v, n.as_ref().as_bytes());
        put_bytes(&mut v, val.as_ref().as_bytes());
    }
    v
}

pub fn decode_series_record(b: &[u8]) -> Result<(String, Labels), StorageError> {
    let mut r = Reader::new(b, "series record");
    if r.u8()? != VALUE_VERSION {
        return Err(r.corrupt("unknown series record version"));
    }
    let tenant = r.str()?.to_string();
    let labels = decode_labels(&mut r)?;
    Ok((tenant, labels))
}

fn decode_labels(r: &mut Reader<'_>) -> Result<Labels, StorageError> {
    let n = r.len(1 << 16)?;
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.str()?.to_string();
        let value = r.str()?.to_string();
        labels.push(Label { name, value });
    }
    if labels.windows(2).all(|w| w[0].name < w[1].name) && labels.iter().all(|l| !l.value.is_empty()) {
        Ok(Labels::from_sorted_unchecked(labels))
    } else {
        Ok(Labels::new(labels))
    }
}

/// `partition (4) | esc(tenant) | esc(name) | esc(value) | sid (8)`. The
/// "all series" posting uses an empty name and value.
pub fn posting_key(p: i32, tenant: &str, name: &str, value: &str, sid: u64) -> Vec<u8> {
    let mut k = posting_prefix(p, tenant, Some(name), Some(value));
    k.extend_from_slice(&sid.to_be_bytes());
    k
}

/// A prefix of posting keys: the partition and tenant, optionally the
/// name, optionally the value.
pub fn posting_prefix(p: i32, tenant: &str, name: Option<&str>, value: Option<&str>) -> Vec<u8> {
    let mut k = Vec::with_capacity(64);
    k.extend_from_slice(&partition_bytes(p));
    put_escaped(&mut k, tenant.as_bytes());
    if let Some(n) = name {
        put_escaped(&mut k, n.as_bytes());
        if let Some(v) = value {
            put_escaped(&mut k, v.as_bytes());
        }
    }
    k
}

/// The smallest key after every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff: no upper bound exists; use a key longer than any real one.
    vec![0xff; prefix.len() + 64]
}

/// `partition (4) | sid (8) | max_t (8, sortable) | min_t (8, sortable)`.
pub fn chunk_key(p: i32, sid: u64, min_t: i64, max_t: i64) -> [u8; 28] {
    let mut k = [0u8; 28];
    k[..4].copy_from_slice(&partition_bytes(p));
    k[4..12].copy_from_slice(&sid.to_be_bytes());
    k[12..20].copy_from_slice(&i64_sortable(max_t));
    k[20..28].copy_from_slice(&i64_sortable(min_t));
    k
}

pub fn chunk_series_prefix(p: i32, sid: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&partition_bytes(p));
    k[4..12].copy_from_slice(&sid.to_be_bytes());
    k
}

/// Parsed chunk key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkKey {
    pub partition: i32,
    pub sid: u64,
    pub max_t: i64,
    pub min_t: i64,
}

pub fn parse_chunk_key(k: &[u8]) -> Result<ChunkKey, StorageError> {
    if k.len() != 28 {
        return Err(StorageError::Corrupt {
            what: "chunk key",
            detail: format!("key of {} bytes", k.len()),
        });
    }
    let mut r = Reader::new(k, "chunk key");
    let partition = partition_from_bytes(r.array()?);
    let sid = r.u64_be()?;
    let max_t = r.i64_sortable()?;
    let min_t = r.i64_sortable()?;
    Ok(ChunkKey {
        partition,
        sid,
        max_t,
        min_t,
    })
}

/// Kinds of keys in the head column family (`sid (8) | kind (1) | ...`).
pub const HEAD_META: u8 = 0;
pub const HEAD_FLOAT: u8 = 1;
pub const HEAD_HISTOGRAM: u8 = 2;

/// State of a series in the head besides its open chunks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadMeta {
    pub max_t: i64,
    pub last_write: i64,
    pub flushed_max_t: i64,
    pub postings_partition: i32,
}

pub fn head_meta_key(sid: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[..8].copy_from_slice(&sid.to_be_bytes());
    k[8] = HEAD_META;
    k
}

/// `sid (8) | kind (1) | first_t of the chunk (8, sortable) | start offset (u32 BE)`.
pub fn head_segment_key(sid: u64, kind: u8, first_t: i64, start: u32) -> [u8; 21] {
    let mut k = [0u8; 21];
    k[..8].copy_from_slice(&sid.to_be_bytes());
    k[8] = kind;
    k[9..17].copy_from_slice(&i64_sortable(first_t));
    k[17..21].copy_from_slice(&start.to_be_bytes());
    k
}

/// Key range of every segment of one kind of a series.
pub fn head_kind_range(sid: u64, kind: u8) -> ([u8; 9], [u8; 9]) {
    let mut from = [0u8; 9];
    from[..8].copy_from_slice(&sid.to_be_bytes());
    from[8] = kind;
    let mut to = from;
    to[8] = kind + 1;
    (from, to)
}

/// Key range of everything a series has in the head column family.
pub fn head_series_range(sid: u64) -> ([u8; 8], [u8; 8]) {
    (sid.to_be_bytes(), sid.saturating_add(1).to_be_bytes())
}

/// A parsed head key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadKey {
    Meta {
        sid: u64,
    },
    Segment {
        sid: u64,
        kind: u8,
        first_t: i64,
        start: u32,
    },
}

pub fn parse_head_key(k: &[u8]) -> Result<HeadKey, StorageError> {
    let mut r = Reader::new(k, "head key");
    let sid = r.u64_be()?;
    match r.u8()? {
        HEAD_META if r.is_empty() => Ok(HeadKey::Meta { sid }),
        kind @ (HEAD_FLOAT | HEAD_HISTOGRAM) => {
            let first_t = r.i64_sortable()?;
            let start = r.u32_be()?;
            if !r.is_empty() {
                return Err(r.corrupt("trailing bytes"));
            }
            Ok(HeadKey::Segment {
                sid,
                kind,
                first_t,
                start,
            })
        }
        other => Err(r.corrupt(format!("unknown head key kind {other}"))),
    }
}

pub fn encode_head_meta(m: &HeadMeta) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    v.push(VALUE_VERSION);
    put_varint(&mut v, m.max_t);
    put_varint(&mut v, m.last_write);
    put_varint(&mut v, m.flushed_max_t);
    put_varint(&mut v, i64::from(m.postings_partition));
    v
}

pub fn decode_head_meta(b: &[u8]) -> Result<HeadMeta, StorageError> {
    let mut r = Reader::new(b, "head meta");
    if r.u8()? != VALUE_VERSION {
        return Err(r.corrupt("unknown head meta version"));
    }
    Ok(HeadMeta {
        max_t: r.varint()?,
        last_write: r.varint()?,
        flushed_max_t: r.varint()?,
        postings_partition: i32::try_from(r.varint()?).map_err(|_| r.corrupt("partition out of range"))?,
    })
}

/// A head chunk segment: the chunk's sample count when it was written and
/// the chunk bytes from the segment's start offset on.
pub fn encode_head_segment(count: u16, bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(3 + bytes.len());
    v.push(VALUE_VERSION);
    v.extend_from_slice(&count.to_be_bytes());
    v.extend_from_slice(bytes);
    v
}

pub fn decode_head_segment(b: &[u8]) -> Result<(u16, &[u8]), StorageError> {
    let mut r = Reader::new(b, "head segment");
    if r.u8()? != VALUE_VERSION {
        return Err(r.corrupt("unknown head segment version"));
    }
    let c: [u8; 2] = r.array()?;
    Ok((u16::from_be_bytes(c), r.rest()))
}

pub fn encode_idle(max_t: i64) -> Vec<u8> {
    let mut v = vec![VALUE_VERSION];
    put_varint(&mut v, max_t);
    v
}

pub fn decode_idle(b: &[u8]) -> Result<i64, StorageError> {
    let mut r = Reader::new(b, "idle series record");
    if r.u8()? != VALUE_VERSION {
        return Err(r.corrupt("unknown idle record version"));
    }
    r.varint()
}

pub fn metadata_key(tenant: &str, family: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + family.len() + 4);
    put_escaped(&mut k, tenant.as_bytes());
    put_escaped(&mut k, family.as_bytes());
    k
}

pub fn encode_metadata(m: &MetricMetadata) -> Vec<u8> {
    let mut v = vec![VALUE_VERSION, metric_type_byte(m.metric_type)];
    put_bytes(&mut v, m.help.as_bytes());
    put_bytes(&mut v, m.unit.as_bytes());
    v
}

pub fn decode_metadata(key: &[u8], value: &[u8]) -> Result<(String, MetricMetadata), StorageError> {
    let mut k = Reader::new(key, "metadata key");
    let tenant = k.escaped_string()?;
    let metric_family = k.escaped_string()?;
    let mut r = Reader::new(value, "metadata value");
    if r.u8()? != VALUE_VERSION {
        return Err(r.corrupt("unknown metadata version"));
    }
    let metric_type = metric_type_from_byte(r.u8()?);
    let help = r.str()?.to_string();
    let unit = r.str()?.to_string();
    Ok((
        tenant,
        MetricMetadata {
            metric_family,
            metric_type,
            help,
            unit,
        },
    ))
}

pub fn exemplar_key(tenant: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + 12);
    put_escaped(&mut k, tenant.as_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn encode_exemplar(sid: u64, e: &Exemplar) -> Vec<u8> {
    let mut v = vec![VALUE_VERSION];
    v.extend_from_slice(&sid.to_be_bytes());
    put_uvarint(&mut v, e.labels.len() as u64);
    for l in &e.labels {
        put_bytes(&mut v, l.name.as_bytes());
        put_bytes(&mut v, l.value.as_bytes());
    }
    v.extend_from_slice(&e.value.to_bits().to_le_bytes());
    put_varint(&mut v, e.t);
    v
}

/// Decodes an exemplar record: (tenant, seq, sid, exemplar).
pub fn decode_exemplar(key: &[u8], value: &[u8]) -> Result<(String, u64, u64, Exemplar), StorageError> {
    let mut k = Reader::new(key, "exemplar key");
    let tenant = k.escaped_string()?;
    let seq = k.u64_be()?;
    let mut r = Reader::new(value, "exemplar value");
    if r.u8()? != VALUE_VERSION {
        return Err(r.corrupt("unknown exemplar version"));
    }
    let sid = r.u64_be()?;
    let labels = decode_labels(&mut r)?;
    let value = r.f64_le()?;
    let t = r.varint()?;
    Ok((tenant, seq, sid, Exemplar { labels, value, t }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_keys_sort_by_partition_series_then_time() {
        let a = chunk_key(-1, 5, 0, 10);
        let b = chunk_key(0, 1, 0, 10);
        let c = chunk_key(0, 1, -100, 20);
        let d = chunk_key(0, 2, 0, -5);
        assert!(a < b && b < c && c < d);
        let parsed = parse_chunk_key(&c).unwrap();
        assert_eq!(
            parsed,
            ChunkKey {
                partition: 0,
                sid: 1,
                max_t: 20,
                min_t: -100
            }
        );
    }

    #[test]
    fn posting_prefixes_nest() {
        let full = posting_key(3, "t", "job", "node", 9);
        assert!(full.starts_with(&posting_prefix(3, "t", Some("job"), Some("node"))));
        assert!(full.starts_with(&posting_prefix(3, "t", Some("job"), None)));
        assert!(!full.starts_with(&posting_prefix(3, "t", Some("jo"), None)));
        assert!(!posting_key(3, "t2", "job", "node", 9).starts_with(&posting_prefix(3, "t", None, None)));
        let end = prefix_end(&posting_prefix(3, "t", Some("job"), None));
        assert!(full < end);
    }

    #[test]
    fn records_round_trip() {
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let rec = encode_series_record("t", labels.iter().map(|l| (&l.name, &l.value)));
        assert_eq!(decode_series_record(&rec).unwrap(), ("t".to_string(), labels));
        let meta = HeadMeta {
            max_t: 5,
            last_write: 6,
            flushed_max_t: i64::MIN,
            postings_partition: -3,
        };
        assert_eq!(decode_head_meta(&encode_head_meta(&meta)).unwrap(), meta);
        assert_eq!(
            decode_head_segment(&encode_head_segment(7, &[1, 2])).unwrap(),
            (7, &[1u8, 2][..])
        );
        let k = head_segment_key(9, HEAD_FLOAT, -4, 17);
        assert_eq!(
            parse_head_key(&k).unwrap(),
            HeadKey::Segment {
                sid: 9,
                kind: HEAD_FLOAT,
                first_t: -4,
                start: 17
            }
        );
        assert_eq!(
            parse_head_key(&head_meta_key(9)).unwrap(),
            HeadKey::Meta { sid: 9 }
        );
        let (from, to) = head_kind_range(9, HEAD_FLOAT);
        assert!(from.as_slice() < k.as_slice() && k.as_slice() < to.as_slice());
        assert_eq!(decode_idle(&encode_idle(-9)).unwrap(), -9);
        let e = Exemplar {
            labels: Labels::from_pairs([("trace_id", "x")]),
            value: 1.5,
            t: 100,
        };
        let (tenant, seq, sid, back) =
            decode_exemplar(&exemplar_key("t", 7), &encode_exemplar(42, &e)).unwrap();
        assert_eq!((tenant.as_str(), seq, sid, back), ("t", 7, 42, e));
    }
}
