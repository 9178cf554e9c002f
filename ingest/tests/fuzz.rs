//! Bounded fuzzing of the remote-write decoder: mutated snappy blocks and
//! mutated protobuf messages of both protocol versions must decode or fail
//! with an error, never panic.

use fenghuo_ingest::IngestLimits;
use fenghuo_ingest::decode::{self, Protocol};
use fenghuo_proto::{Message, rw1, rw2};
use fenghuo_storage_api::fuzz;

const NOW: i64 = 1_700_000_000_000;

fn v1() -> Vec<u8> {
    let series = |name: &str, v: f64| rw1::TimeSeries {
        labels: vec![
            rw1::Label {
                name: "__name__".into(),
                value: name.into(),
            },
            rw1::Label {
                name: "job".into(),
                value: "node".into(),
            },
        ],
        samples: vec![rw1::Sample {
            value: v,
            timestamp: NOW,
        }],
        ..Default::default()
    };
    rw1::WriteRequest {
        timeseries: vec![series("up", 1.0), series("load1", 0.5)],
        ..Default::default()
    }
    .encode_to_vec()
}

fn v2() -> Vec<u8> {
    rw2::Request {
        symbols: vec![
            "".into(),
            "__name__".into(),
            "up".into(),
            "job".into(),
            "node".into(),
        ],
        timeseries: vec![rw2::TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            samples: vec![rw2::Sample {
                value: 1.0,
                timestamp: NOW,
            }],
            created_timestamp: NOW - 1000,
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn check(protocol: Protocol, message: &[u8]) {
    let _ = decode::decode(protocol, message, NOW, &IngestLimits::default());
}

#[test]
fn protobuf_messages_decode_or_fail_cleanly() {
    let dictionary: &[&[u8]] = &[
        &[0x0a, 0xff, 0xff, 0xff, 0x0f],
        &[0x12, 0x00],
        &[0xff; 10],
        &[0x08, 0x80],
    ];
    for (name, protocol, seed) in [("rw1", Protocol::V1, v1()), ("rw2", Protocol::V2, v2())] {
        assert!(decode::decode(protocol, &seed, NOW, &IngestLimits::default()).is_ok());
        let runs = fuzz::run(name, 0x1a, &[seed], dictionary, |m| check(protocol, m));
        assert!(runs > 1, "{name}");
        // The other protocol's bytes too.
        let _ = fuzz::run(name, 0x1b, &[v1(), v2()], dictionary, |m| check(protocol, m));
    }
}

#[test]
fn snappy_blocks_decompress_or_fail_cleanly() {
    let seeds: Vec<Vec<u8>> = [v1(), v2()]
        .iter()
        .map(|m| snap::raw::Encoder::new().compress_vec(m).unwrap())
        .collect();
    let limits = IngestLimits::default();
    fuzz::run(
        "snappy",
        0x5a,
        &seeds,
        &[&[0xff, 0xff, 0xff, 0xff, 0x0f]],
        |body| {
            if let Ok(m) = decode::decompress(body, &limits) {
                check(Protocol::V1, &m);
                check(Protocol::V2, &m);
            }
        },
    );
}
