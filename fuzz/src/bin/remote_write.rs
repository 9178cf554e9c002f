//! AFL target: a remote-write body as sent (snappy, then protobuf of either
//! version), and the same bytes as an uncompressed message.

use fenghuo_ingest::IngestLimits;
use fenghuo_ingest::decode::{Protocol, decode, decompress};

fn main() {
    let limits = IngestLimits::default();
    afl::fuzz!(|data: &[u8]| {
        if let Ok(message) = decompress(data, &limits) {
            let _ = decode(Protocol::V1, &message, 0, &limits);
            let _ = decode(Protocol::V2, &message, 0, &limits);
        }
        let _ = decode(Protocol::V1, data, 0, &limits);
        let _ = decode(Protocol::V2, data, 0, &limits);
    });
}
