//! Postings intersection: two large lists of similar size (linear merge)
//! and a small list against a large one (galloping), as selectors like
//! `{job="node", instance="x"}` produce.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fenghuo_storage::tsdb::postings::{intersect, intersect_all, union_all};

fn bench(c: &mut Criterion) {
    let big_a: Vec<u64> = (0..1_000_000u64).filter(|i| i % 3 != 0).collect();
    let big_b: Vec<u64> = (0..1_000_000u64).filter(|i| i % 5 != 0).collect();
    let small: Vec<u64> = (0..1_000u64).map(|i| i * 997).collect();
    let mut g = c.benchmark_group("postings");
    g.bench_function("intersect_1M_x_1M", |b| {
        b.iter(|| intersect(black_box(&big_a), black_box(&big_b)).len())
    });
    g.bench_function("intersect_1k_x_1M", |b| {
        b.iter(|| intersect(black_box(&small), black_box(&big_a)).len())
    });
    g.bench_function("intersect_all_3", |b| {
        b.iter(|| intersect_all(vec![big_a.clone(), big_b.clone(), small.clone()]).len())
    });
    let lists: Vec<Vec<u64>> = (0..100u64)
        .map(|k| (0..1000u64).map(|i| i * 100 + k).collect())
        .collect();
    g.bench_function("union_100_x_1k", |b| {
        b.iter(|| union_all(black_box(lists.clone())).len())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
