//! Remote-write decoding: snappy + protobuf + validation into a
//! `BorrowedBatch` (labels borrowed from the message), for a
//! Prometheus-sized request (2,000 node_exporter-like series with one
//! sample each) in remote write 1.0 and 2.0.
//!
//! `cargo bench -p fenghuo-ingest --bench decode`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fenghuo_ingest::IngestLimits;
use fenghuo_ingest::decode::{self, Protocol};
use fenghuo_proto::{Message, rw1, rw2};

const SERIES: usize = 2000;
const NOW: i64 = 1_700_000_000_000;

/// Label sets shaped like node_exporter's: job, instance, metric-specific labels.
fn label_sets() -> Vec<Vec<(String, String)>> {
    (0..SERIES)
        .map(|i| {
            let host = i / 100;
            let mut l = vec![
                ("__name__".to_string(), "node_cpu_seconds_total".to_string()),
                ("cpu".to_string(), (i % 16).to_string()),
                (
                    "instance".to_string(),
                    format!("10.0.{}.{}:9100", host / 256, host % 256),
                ),
                ("job".to_string(), "node".to_string()),
                (
                    "mode".to_string(),
                    ["idle", "user", "system", "iowait", "irq"][i % 5].to_string(),
                ),
            ];
            l.sort();
            l
        })
        .collect()
}

fn v1_body() -> Vec<u8> {
    let req = rw1::WriteRequest {
        timeseries: label_sets()
            .into_iter()
            .enumerate()
            .map(|(i, labels)| rw1::TimeSeries {
                labels: labels
                    .into_iter()
                    .map(|(name, value)| rw1::Label { name, value })
                    .collect(),
                samples: vec![rw1::Sample {
                    value: i as f64 * 1.5,
                    timestamp: NOW,
                }],
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

fn v2_body() -> Vec<u8> {
    let mut symbols = vec![String::new()];
    let mut index = std::collections::HashMap::new();
    let mut sym = |s: &str| -> u32 {
        *index.entry(s.to_string()).or_insert_with(|| {
            symbols.push(s.to_string());
            (symbols.len() - 1) as u32
        })
    };
    let timeseries = label_sets()
        .into_iter()
        .enumerate()
        .map(|(i, labels)| rw2::TimeSeries {
            labels_refs: labels.iter().flat_map(|(n, v)| [sym(n), sym(v)]).collect(),
            samples: vec![rw2::Sample {
                value: i as f64 * 1.5,
                timestamp: NOW,
            }],
            ..Default::default()
        })
        .collect();
    let req = rw2::Request { symbols, timeseries };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let limits = IngestLimits::default();
    let mut group = c.benchmark_group("remote_write_decode");
    group.throughput(Throughput::Elements(SERIES as u64));
    for (name, protocol, body) in [("v1", Protocol::V1, v1_body()), ("v2", Protocol::V2, v2_body())] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let message = decode::decompress(&body, &limits).unwrap();
                let batch = decode::decode(protocol, &message, NOW, &limits).unwrap();
                black_box(&batch);
                batch.series.len()
            })
        });
    }
    // What storage pays on top for a request of series it does not know
    // yet (owned label sets for every series); known series skip this.
    let body = v1_body();
    group.bench_function("v1_all_new_series", |b| {
        b.iter(|| {
            let message = decode::decompress(&body, &limits).unwrap();
            let batch = decode::decode(Protocol::V1, &message, NOW, &limits).unwrap();
            batch.into_owned()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
