//! PromQL evaluation benchmarks over `MemStore` data: rate over many
//! series, `sum by`, `histogram_quantile` over classic buckets, and a
//! binary operation with vector matching, as instant and range queries.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fenghuo_query::{Engine, EngineOptions};
use fenghuo_storage_api::api::{Appender, Queryable};
use fenghuo_storage_api::memory::MemStore;
use fenghuo_storage_api::model::{Labels, Sample, SeriesWrite, TenantId, WriteBatch};

const STEP_MS: i64 = 15_000;
const POINTS: i64 = 240; // one hour at 15s
const INSTANCES: usize = 100;
const CODES: [&str; 5] = ["200", "201", "400", "404", "500"];
const LE: [&str; 8] = ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"];

fn series(name: &str, extra: &[(&str, &str)], i: usize, f: impl Fn(i64) -> f64) -> SeriesWrite {
    let inst = format!("host-{i:03}");
    let job = format!("job-{}", i % 10);
    let mut pairs = vec![
        ("__name__", name),
        ("instance", inst.as_str()),
        ("job", job.as_str()),
    ];
    pairs.extend_from_slice(extra);
    SeriesWrite {
        labels: Labels::from_pairs(pairs),
        samples: (0..POINTS)
            .map(|k| Sample {
                t: k * STEP_MS,
                v: f(k),
            })
            .collect(),
        ..Default::default()
    }
}

fn load() -> MemStore {
    let store = MemStore::new();
    let mut batch = WriteBatch::default();
    for i in 0..INSTANCES {
        for (c, code) in CODES.iter().enumerate() {
            batch
                .series
                .push(series("http_requests_total", &[("code", code)], i, |k| {
                    (k * (c as i64 + 1)) as f64
                }));
        }
        for (b, le) in LE.iter().enumerate() {
            batch.series.push(series(
                "http_request_duration_seconds_bucket",
                &[("le", le)],
                i,
                |k| (k * (b as i64 + 1)) as f64,
            ));
        }
        batch.series.push(series("up", &[], i, |_| 1.0));
        batch
            .series
            .push(series("node_memory_bytes", &[], i, |k| 1e9 + (k * 1000) as f64));
    }
    store
        .append(&TenantId::default_tenant(), batch)
        .expect("append to MemStore");
    store
}

fn bench(c: &mut Criterion) {
    let store = load();
    let querier = store.querier(&TenantId::default_tenant()).expect("querier");
    let engine = Engine::new(EngineOptions::default());
    let end = (POINTS - 1) * STEP_MS;
    let queries = [
        ("rate_500_series", "rate(http_requests_total[5m])"),
        ("sum_by_job_rate", "sum by (job) (rate(http_requests_total[5m]))"),
        (
            "histogram_quantile_classic",
            "histogram_quantile(0.9, sum by (le, job) (rate(http_request_duration_seconds_bucket[5m])))",
        ),
        (
            "binop_on_group_left",
            "node_memory_bytes * on (instance) group_left (job) up",
        ),
    ];
    for (name, q) in queries {
        c.bench_function(&format!("instant/{name}"), |b| {
            b.iter(|| black_box(engine.instant(querier.as_ref(), q, end).expect("query")))
        });
        c.bench_function(&format!("range_1h_step60s/{name}"), |b| {
            b.iter(|| black_box(engine.range(querier.as_ref(), q, 0, end, 60_000).expect("query")))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
