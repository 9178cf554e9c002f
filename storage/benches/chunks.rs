//! Chunk encode/decode throughput: the XOR head chunk, the dense on-disk
//! chunk and the histogram chunk, on node_exporter-like data (a counter
//! with two decimals, a jittery gauge, a constant). Also prints the encoded
//! bytes per sample of each so density regressions show up next to speed.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fenghuo_storage::chunk::{dense, histogram, xor};
use fenghuo_storage::model::{BucketSpan, FloatHistogram, HistogramSample, Sample};

const N: usize = 480;

fn series() -> Vec<(&'static str, Vec<Sample>)> {
    let t0 = 1_700_000_000_000i64;
    let ts = |i: usize| t0 + i as i64 * 15_000 + ((i * 7) % 5) as i64 - 2;
    let mut seed = 42u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut counter = 1_234_567i64;
    let counter: Vec<_> = (0..N)
        .map(|i| {
            counter += 1400 + (rnd() % 200) as i64;
            Sample {
                t: ts(i),
                v: counter as f64 / 100.0,
            }
        })
        .collect();
    let gauge: Vec<_> = (0..N)
        .map(|i| Sample {
            t: ts(i),
            v: (rnd() % 100_000) as f64 / 1000.0,
        })
        .collect();
    let constant: Vec<_> = (0..N)
        .map(|i| Sample {
            t: t0 + i as i64 * 15_000,
            v: 1.0,
        })
        .collect();
    vec![("counter", counter), ("gauge", gauge), ("constant", constant)]
}

fn hist_series() -> Vec<HistogramSample> {
    (0..N)
        .map(|i| {
            let k = i as f64;
            HistogramSample {
                t: 1_700_000_000_000 + i as i64 * 15_000,
                h: Arc::new(FloatHistogram {
                    schema: 3,
                    count: 10.0 * k,
                    sum: 1.25 * k,
                    zero_count: k,
                    positive_spans: vec![BucketSpan {
                        offset: -3,
                        length: 8,
                    }],
                    positive_buckets: (0..8).map(|b| k * f64::from(b + 1)).collect(),
                    ..Default::default()
                }),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("chunks");
    g.throughput(Throughput::Elements(N as u64));
    for (name, s) in series() {
        let x = xor::encode(&s);
        let d = dense::encode(&s);
        println!(
            "{name}: xor {:.3} bytes/sample, dense {:.3} bytes/sample",
            x.len() as f64 / N as f64,
            d.len() as f64 / N as f64
        );
        g.bench_function(format!("xor_encode/{name}"), |b| {
            b.iter(|| xor::encode(black_box(&s)))
        });
        g.bench_function(format!("xor_decode/{name}"), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(N);
                xor::decode_into(black_box(&x), &mut out).map(|_| out.len())
            })
        });
        g.bench_function(format!("dense_encode/{name}"), |b| {
            b.iter(|| dense::encode(black_box(&s)))
        });
        g.bench_function(format!("dense_decode/{name}"), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(N);
                dense::decode_into(black_box(&d), &mut out).map(|_| out.len())
            })
        });
    }
    let h = hist_series();
    let hb = histogram::encode(&h);
    println!("histogram: {:.3} bytes/sample", hb.len() as f64 / N as f64);
    g.bench_function("histogram_encode", |b| {
        b.iter(|| histogram::encode(black_box(&h)))
    });
    g.bench_function("histogram_decode", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(N);
            histogram::decode_into(black_box(&hb), &mut out).map(|_| out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
