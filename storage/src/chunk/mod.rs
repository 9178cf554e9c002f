//! Chunk encodings. Every encoded chunk starts with a version byte naming
//! its encoding, so formats can evolve while old data stays readable:
//!
//! | byte | encoding | used for |
//! |------|----------|----------|
//! | `0x01` | [`xor`]: Gorilla delta-of-delta + XOR bit stream | open head chunks, snapshots |
//! | `0x02` | [`dense`]: varint columns, exact decimal values | flushed and compacted float chunks |
//! | `0x03` | [`histogram`]: float native histograms | histogram chunks everywhere |

pub mod bits;
pub mod dense;
pub mod histogram;
pub mod xor;

use crate::error::StorageError;
use crate::model::{HistogramSample, Sample};

/// What kind of samples a chunk holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkKind {
    Float,
    Histogram,
}

/// The kind of an encoded chunk, from its version byte.
pub fn kind(bytes: &[u8]) -> Result<ChunkKind, StorageError> {
    match bytes.first() {
        Some(&xor::ENCODING_XOR) | Some(&dense::ENCODING_DENSE) => Ok(ChunkKind::Float),
        Some(&histogram::ENCODING_HISTOGRAM) => Ok(ChunkKind::Histogram),
        other => Err(StorageError::Corrupt {
            what: "chunk",
            detail: format!("unknown chunk encoding {other:?}"),
        }),
    }
}

/// Decodes a float chunk of any float encoding, appending to `out`.
pub fn decode_floats(bytes: &[u8], out: &mut Vec<Sample>) -> Result<(), StorageError> {
    match bytes.first() {
        Some(&xor::ENCODING_XOR) => xor::decode_into(bytes, out),
        Some(&dense::ENCODING_DENSE) => dense::decode_into(bytes, out),
        other => Err(StorageError::Corrupt {
            what: "float chunk",
            detail: format!("unknown float chunk encoding {other:?}"),
        }),
    }
}

/// Decodes a histogram chunk, appending to `out`.
pub fn decode_histograms(bytes: &[u8], out: &mut Vec<HistogramSample>) -> Result<(), StorageError> {
    histogram::decode_into(bytes, out)
}

/// The on-disk encoding of sorted float samples: dense, unless the XOR
/// chunk is smaller (it rarely is once RocksDB's zstd has run).
pub fn encode_floats_for_disk(samples: &[Sample]) -> Vec<u8> {
    dense::encode(samples)
}

/// Most samples a single persisted chunk holds; longer runs are split.
pub fn max_samples_per_disk_chunk(kind: ChunkKind) -> usize {
    match kind {
        ChunkKind::Float => dense::MAX_SAMPLES.min(16_384),
        ChunkKind::Histogram => histogram::MAX_SAMPLES.min(4_096),
    }
}
