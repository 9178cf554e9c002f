//! End-to-end storage ingest on node_exporter-like data (fixed seed):
//! constants, rarely ticking counters, steady-rate counters with noise,
//! CPU-seconds counters with two decimals and wandering gauges, 15 s
//! scrapes with occasional millisecond jitter.
//!
//! - criterion: `append` of one 2,000-sample batch (log write without fsync
//!   + apply), i.e. the CPU cost of the storage write path;
//! - a report: samples per CPU-second for a full hour of data written by 4
//!   threads with fsync on, head memory per active series (RSS delta and
//!   the head's own estimate), and bytes per sample on disk after
//!   checkpoint + compaction.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fenghuo_storage::api::Appender;
use fenghuo_storage::model::{Label, Labels, Sample, SeriesWrite, TenantId, WriteBatch};
use fenghuo_storage::tsdb::{ManualClock, PromDuration, Tsdb, TsdbOptions};

// Same allocator as the fenghuo binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const T0: i64 = 1_700_000_000_000;
const SERIES_PER_TARGET: usize = 500;

/// Scrape targets (500 series each); `FENGHUO_BENCH_TARGETS` overrides.
fn targets() -> usize {
    std::env::var("FENGHUO_BENCH_TARGETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

/// 15 s rounds in the report; `FENGHUO_BENCH_ROUNDS` overrides.
fn rounds() -> i64 {
    std::env::var("FENGHUO_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(240)
}
const BATCH: usize = 2_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Value behaviours, in roughly node_exporter's proportions: many series
/// never change or rarely tick, counters grow at a steady rate with noise,
/// CPU-time counters grow by about the scrape interval, gauges wander.
#[derive(Clone, Copy)]
enum Kind {
    Constant,
    RareCounter,
    RateCounter { rate: i64 },
    CpuSeconds,
    Gauge,
}
struct Gen {
    labels: Vec<Labels>,
    kinds: Vec<Kind>,
    values: Vec<i64>,
    rng: Rng,
}

impl Gen {
    fn new() -> Self {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let families = [
            "node_cpu_seconds_total",
            "node_network_receive_bytes_total",
            "node_memory_MemAvailable_bytes",
            "node_filesystem_size_bytes",
            "node_disk_io_time_seconds_total",
            "node_netstat_Tcp_InSegs",
            "node_load1",
            "node_vmstat_pgfault",
        ];
        let mut labels = Vec::new();
        let mut kinds = Vec::new();
        let mut values = Vec::new();
        for t in 0..targets() {
            for s in 0..SERIES_PER_TARGET {
                let fam = families[s % families.len()];
                labels.push(Labels::new(vec![
                    Label::new("__name__", fam),
                    Label::new("instance", format!("10.0.{}.{}:9100", t / 250, t % 250)),
                    Label::new("job", "node"),
                    Label::new("cpu", (s / families.len() % 16).to_string()),
                    Label::new("mode", ["user", "system", "idle", "iowait"][s % 4]),
                    Label::new("device", format!("dev{}", s / 64)),
                ]));
                let kind = match rng.next() % 10 {
                    0..=2 => Kind::Constant,
                    3..=5 => Kind::RareCounter,
                    6..=7 => Kind::RateCounter {
                        rate: 1 + (rng.next() % 50_000) as i64,
                    },
                    8 => Kind::CpuSeconds,
                    _ => Kind::Gauge,
                };
                kinds.push(kind);
                values.push((rng.next() % 1_000_000) as i64);
            }
        }
        Self {
            labels,
            kinds,
            values,
            rng,
        }
    }

    /// All series' samples of one scrape round, as batches of `BATCH`.
    fn round(&mut self, r: i64) -> Vec<WriteBatch> {
        let mut out = Vec::new();
        let mut cur = Vec::with_capacity(BATCH);
        for i in 0..self.labels.len() {
            let jitter = if self.rng.next().is_multiple_of(10) {
                (self.rng.next() % 5) as i64
            } else {
                0
            };
            let t = T0 + r * 15_000 + jitter;
            let v = &mut self.values[i];
            let value = match self.kinds[i] {
                Kind::Constant => *v as f64,
                Kind::RareCounter => {
                    if self.rng.next().is_multiple_of(8) {
                        *v += 1 + (self.rng.next() % 10) as i64;
                    }
                    *v as f64
                }
                Kind::RateCounter { rate } => {
                    let noise = (self.rng.next() % (rate as u64 / 10 + 1)) as i64;
                    *v += rate * 15 - rate * 15 / 20 + noise;
                    *v as f64
                }
                Kind::CpuSeconds => {
                    // Hundredths of a second: 15 s of wall time, a little less.
                    *v += 1495 + (self.rng.next() % 6) as i64;
                    *v as f64 / 100.0
                }
                Kind::Gauge => {
                    *v += ((self.rng.next() % 9) as i64 - 4) * 4096;
                    *v as f64
                }
            };
            cur.push(SeriesWrite {
                labels: self.labels[i].clone(),
                samples: vec![Sample { t, v: value }],
                ..Default::default()
            });
            if cur.len() == BATCH {
                out.push(WriteBatch {
                    series: std::mem::take(&mut cur),
                    metadata: vec![],
                });
            }
        }
        if !cur.is_empty() {
            out.push(WriteBatch {
                series: cur,
                metadata: vec![],
            });
        }
        out
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn cpu_seconds() -> f64 {
    // utime + stime of the whole process, in clock ticks (100 Hz).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit(')').next()?.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let u: f64 = f.get(11)?.parse().ok()?;
            let k: f64 = f.get(12)?.parse().ok()?;
            Some((u + k) / 100.0)
        })
        .unwrap_or(0.0)
}

fn opts(fsync: bool) -> TsdbOptions {
    TsdbOptions {
        fsync,
        retention: PromDuration::from_secs(0),
        ..Default::default()
    }
}

fn report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let db = Tsdb::open_manual(dir.path(), opts(true), clock.clone()).expect("open");
    let tenant = TenantId::default_tenant();
    let mut g = Gen::new();
    // The generator's own cost (building and dropping batches), to tell
    // storage's share of the CPU time below.
    let gen_cpu0 = cpu_seconds();
    for r in 0..20 {
        drop(black_box(g.round(r)));
    }
    let gen_per_sample = (cpu_seconds() - gen_cpu0) / (20 * targets() * SERIES_PER_TARGET) as f64;
    let mut g = Gen::new();
    let rounds = rounds();
    let rss0 = rss_bytes();
    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let mut samples = 0u64;
    for r in 0..rounds {
        clock.set(T0 + r * 15_000);
        let batches = g.round(r);
        samples += batches.iter().map(|b| b.sample_count() as u64).sum::<u64>();
        let chunks: Vec<Vec<WriteBatch>> = {
            let mut v: Vec<Vec<WriteBatch>> = (0..4).map(|_| Vec::new()).collect();
            for (i, b) in batches.into_iter().enumerate() {
                v[i % 4].push(b);
            }
            v
        };
        std::thread::scope(|s| {
            for part in chunks {
                let db = db.clone();
                let tenant = tenant.clone();
                s.spawn(move || {
                    for b in part {
                        let out = db.append(&tenant, b).expect("append");
                        assert!(out.rejected.is_empty());
                    }
                });
            }
        });
        if r % 4 == 3 {
            if r == 7 {
                let st = db.stats();
                println!(
                    "log before a checkpoint: {} B for {} samples = {:.1} B/sample",
                    st.log_bytes,
                    4 * targets() * SERIES_PER_TARGET,
                    st.log_bytes as f64 / (4 * targets() * SERIES_PER_TARGET) as f64
                );
            }
            db.checkpoint().expect("checkpoint");
        }
        if r == 0 || r == 3 || r == 4 {
            let st = db.stats();
            println!(
                "after round {r}: RSS delta {:.0} B/series, head estimate {:.0} B/series",
                rss_bytes().saturating_sub(rss0) as f64 / st.active_series.max(1) as f64,
                st.head_memory_bytes as f64 / st.active_series.max(1) as f64
            );
        }
        // What the maintenance thread does every 5 minutes.
        if r % 20 == 19 {
            db.compact(false).expect("compact");
        }
        if r == rounds / 2 - 1 {
            let st = db.stats();
            let rss = rss_bytes().saturating_sub(rss0);
            println!(
                "head after {} min: {} active series, RSS delta {:.0} B/series, head estimate {:.0} B/series",
                rounds / 8,
                st.active_series,
                rss as f64 / st.active_series.max(1) as f64,
                st.head_memory_bytes as f64 / st.active_series.max(1) as f64
            );
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let storage_cpu = cpu - gen_per_sample * samples as f64;
    println!(
        "ingest: {samples} samples in {wall:.2}s wall, {cpu:.2} CPU-s (incl. checkpoints, fsync on): \
         {:.0} samples/s, {:.0} samples/CPU-s; without the generator's {:.2} CPU-s: {:.0} samples/CPU-s",
        samples as f64 / wall,
        samples as f64 / cpu.max(1e-9),
        cpu - storage_cpu,
        samples as f64 / storage_cpu.max(1e-9)
    );
    db.checkpoint().expect("checkpoint");
    let before = db.stats();
    println!(
        "SST bytes by column family before compaction: {:?}",
        before.sst_bytes_by_cf
    );
    clock.advance(3 * 3_600_000);
    db.tick().expect("tick");
    db.checkpoint().expect("checkpoint");
    db.compact(true).expect("compact");
    let st = db.stats();
    println!(
        "disk before compaction: {} B total ({:.3} B/sample), chunks {:.3} B/sample",
        before.disk_bytes,
        before.disk_bytes as f64 / samples as f64,
        before.bytes_per_sample
    );
    println!(
        "disk after compaction: {} B total = {:.3} B/sample; chunk CF {} B = {:.3} B/sample; log {} B",
        st.disk_bytes,
        st.disk_bytes as f64 / samples as f64,
        st.chunk_bytes,
        st.chunk_bytes as f64 / samples as f64,
        st.log_bytes
    );
    println!("SST bytes by column family: {:?}", st.sst_bytes_by_cf);
}

fn bench(c: &mut Criterion) {
    if std::env::var_os("FENGHUO_BENCH_SKIP_REPORT").is_none() {
        report();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let db = Tsdb::open_manual(dir.path(), opts(false), clock.clone()).expect("open");
    let tenant = TenantId::default_tenant();
    let mut g = Gen::new();
    let mut round = 0i64;
    let mut pending: Vec<WriteBatch> = Vec::new();
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("append_2000_samples_no_fsync", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for i in 0..iters {
                if pending.is_empty() {
                    clock.set(T0 + round * 15_000);
                    pending = g.round(round);
                    round += 1;
                }
                let batch = pending.pop().unwrap_or_default();
                let t = Instant::now();
                black_box(db.append(&tenant, batch).expect("append"));
                total += t.elapsed();
                // Keep the head bounded as the background thread would
                // (not timed: checkpoints are measured in the report).
                if i % 500 == 499 {
                    db.checkpoint().expect("checkpoint");
                }
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
