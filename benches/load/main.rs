//! `fenghuo-load`: a remote-write load generator that measures the server.
//!
//! It builds a fixed fleet of node_exporter- and cAdvisor-like series
//! (counters, gauges and constants, from a fixed seed), pre-encodes every
//! request (snappy + protobuf, remote write 1.0, 2,000 samples each, as
//! Prometheus batches them) so the client spends little CPU during the run,
//! then replays `--rounds` scrapes at `--interval` spacing of simulated time
//! as fast as the server accepts them. It reports samples/s, the server's
//! CPU seconds (from /proc), peak RSS per active series, and, after a
//! graceful stop of the server, bytes on disk per sample.
//!
//! The same payload can be sent to fenghuo and to VictoriaMetrics (or
//! anything else that speaks remote write) for a side-by-side comparison;
//! see BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use fenghuo_proto::{Message, rw1};

#[derive(Parser, Debug)]
#[command(name = "fenghuo-load", about = "Remote-write load generator and server meter")]
struct Args {
    /// Remote-write URL.
    #[arg(long, default_value = "http://127.0.0.1:9800/api/v1/write")]
    url: String,
    /// Simulated hosts; each has ~ 300 node_exporter series and `--pods-per-host`
    /// pods of ~ 35 cAdvisor series.
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    #[arg(long, default_value_t = 10)]
    pods_per_host: usize,
    /// Scrape rounds to send (each is one sample per series).
    #[arg(long, default_value_t = 60)]
    rounds: usize,
    /// Simulated scrape interval in seconds.
    #[arg(long, default_value_t = 15)]
    interval: i64,
    /// Samples per request (Prometheus's max_samples_per_send).
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Concurrent senders (Prometheus's shards).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Timestamp of the first round in milliseconds (default: so that the
    /// last round is a minute in the past). Runs that must send the same
    /// payload to several servers pass the same value.
    #[arg(long)]
    start_ms: Option<i64>,
    /// PID of the server, to read its CPU time and peak RSS from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// The server's data directory, to measure bytes on disk.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Send SIGTERM to `--pid` after the run and wait for it to exit before
    /// measuring the disk (so the server flushes everything).
    #[arg(long)]
    stop_server: bool,
    /// A label for the report line.
    #[arg(long, default_value = "server")]
    name: String,
    /// URLs to GET after the run, before waiting and stopping (e.g.
    /// VictoriaMetrics's `/internal/force_merge`).
    #[arg(long = "settle-url")]
    settle_urls: Vec<String>,
    /// Seconds to wait after the run before stopping the server, so
    /// background compaction/merging can settle the on-disk size.
    #[arg(long, default_value_t = 0)]
    settle_seconds: u64,
}

/// SplitMix64: tiny, fast and reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How a series' value evolves from scrape to scrape.
#[derive(Clone, Copy)]
enum Kind {
    /// A counter growing by about `rate` per second, integral.
    Counter {
        rate: f64,
    },
    /// A counter of seconds (float increments, e.g. node_cpu_seconds_total).
    SecondsCounter {
        rate: f64,
    },
    /// A gauge wandering around `base` in steps of `quantum`.
    Gauge {
        base: f64,
        spread: f64,
        quantum: f64,
    },
    Constant(f64),
}

struct Series {
    labels: Vec<rw1::Label>,
    kind: Kind,
    value: f64,
}

fn label(n: &str, v: impl Into<String>) -> rw1::Label {
    rw1::Label {
        name: n.to_string(),
        value: v.into(),
    }
}

fn series(name: &str, mut labels: Vec<rw1::Label>, kind: Kind) -> Series {
    labels.push(label("__name__", name));
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    let value = match kind {
        Kind::Constant(v) => v,
        Kind::Gauge { base, .. } => base,
        _ => 0.0,
    };
    Series { labels, kind, value }
}

/// The fleet: node_exporter per host, cAdvisor per pod.
fn fleet(args: &Args, rng: &mut Rng) -> Vec<Series> {
    let mut out = Vec::new();
    for h in 0..args.hosts {
        let instance = format!("10.{}.{}.{}:9100", h / 65536, (h / 256) % 256, h % 256);
        let node = |extra: Vec<rw1::Label>| {
            let mut l = vec![label("job", "node"), label("instance", instance.clone())];
            l.extend(extra);
            l
        };
        for cpu in 0..8 {
            for mode in [
                "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
            ] {
                let rate = if mode == "idle" {
                    0.7
                } else {
                    0.05 + rng.unit() * 0.1
                };
                out.push(series(
                    "node_cpu_seconds_total",
                    node(vec![label("cpu", cpu.to_string()), label("mode", mode)]),
                    Kind::SecondsCounter { rate },
                ));
            }
        }
        for (m, base) in [
            ("node_memory_MemTotal_bytes", 64.0 * 1024.0 * 1024.0 * 1024.0),
            ("node_memory_SwapTotal_bytes", 0.0),
        ] {
            out.push(series(m, node(vec![]), Kind::Constant(base)));
        }
        for m in [
            "node_memory_MemAvailable_bytes",
            "node_memory_MemFree_bytes",
            "node_memory_Cached_bytes",
            "node_memory_Buffers_bytes",
            "node_memory_Active_bytes",
            "node_memory_Inactive_bytes",
            "node_memory_Dirty_bytes",
            "node_memory_Slab_bytes",
        ] {
            let base = (8.0 + rng.unit() * 30.0) * 1024.0 * 1024.0 * 1024.0;
            out.push(series(
                m,
                node(vec![]),
                Kind::Gauge {
                    base,
                    spread: 0.02,
                    quantum: 4096.0,
                },
            ));
        }
        for (m, base) in [("node_load1", 2.0), ("node_load5", 2.0), ("node_load15", 2.0)] {
            out.push(series(
                m,
                node(vec![]),
                Kind::Gauge {
                    base,
                    spread: 0.3,
                    quantum: 0.01,
                },
            ));
        }
        for dev in ["eth0", "eth1", "lo", "docker0"] {
            for (m, rate) in [
                ("node_network_receive_bytes_total", 50_000.0),
                ("node_network_transmit_bytes_total", 40_000.0),
                ("node_network_receive_packets_total", 400.0),
                ("node_network_transmit_packets_total", 350.0),
                ("node_network_receive_errs_total", 0.0),
                ("node_network_transmit_drop_total", 0.0),
            ] {
                out.push(series(
                    m,
                    node(vec![label("device", dev)]),
                    Kind::Counter {
                        rate: rate * rng.unit(),
                    },
                ));
            }
            out.push(series(
                "node_network_up",
                node(vec![label("device", dev)]),
                Kind::Constant(1.0),
            ));
        }
        for (dev, mp) in [("sda1", "/"), ("sdb1", "/data"), ("tmpfs", "/run")] {
            let fs = |extra: Vec<rw1::Label>| {
                let mut l = node(vec![
                    label("device", dev),
                    label("mountpoint", mp),
                    label("fstype", "ext4"),
                ]);
                l.extend(extra);
                l
            };
            let size = 500.0 * 1024.0 * 1024.0 * 1024.0;
            out.push(series(
                "node_filesystem_size_bytes",
                fs(vec![]),
                Kind::Constant(size),
            ));
            out.push(series(
                "node_filesystem_avail_bytes",
                fs(vec![]),
                Kind::Gauge {
                    base: size * 0.4,
                    spread: 0.001,
                    quantum: 4096.0,
                },
            ));
            out.push(series(
                "node_filesystem_free_bytes",
                fs(vec![]),
                Kind::Gauge {
                    base: size * 0.45,
                    spread: 0.001,
                    quantum: 4096.0,
                },
            ));
            out.push(series(
                "node_filesystem_files",
                fs(vec![]),
                Kind::Constant(32_768_000.0),
            ));
            out.push(series(
                "node_filesystem_readonly",
                fs(vec![]),
                Kind::Constant(0.0),
            ));
        }
        for dev in ["sda", "sdb", "nvme0n1"] {
            for (m, rate) in [
                ("node_disk_read_bytes_total", 1e6),
                ("node_disk_written_bytes_total", 3e6),
                ("node_disk_reads_completed_total", 100.0),
                ("node_disk_writes_completed_total", 300.0),
                ("node_disk_io_time_seconds_total", 0.2),
            ] {
                let kind = if m.ends_with("seconds_total") {
                    Kind::SecondsCounter { rate }
                } else {
                    Kind::Counter {
                        rate: rate * rng.unit(),
                    }
                };
                out.push(series(m, node(vec![label("device", dev)]), kind));
            }
        }
        out.push(series(
            "node_uname_info",
            node(vec![
                label("sysname", "Linux"),
                label("release", "5.15.0-91-generic"),
                label("nodename", format!("node-{h:04}")),
                label("machine", "x86_64"),
            ]),
            Kind::Constant(1.0),
        ));
        out.push(series(
            "node_boot_time_seconds",
            node(vec![]),
            Kind::Constant(1.7e9 + h as f64),
        ));
        out.push(series(
            "node_context_switches_total",
            node(vec![]),
            Kind::Counter { rate: 20_000.0 },
        ));
        out.push(series(
            "node_intr_total",
            node(vec![]),
            Kind::Counter { rate: 15_000.0 },
        ));
        out.push(series("up", node(vec![]), Kind::Constant(1.0)));

        for p in 0..args.pods_per_host {
            let ns = ["default", "payments", "risk", "kube-system", "monitoring"][p % 5];
            let pod = format!(
                "{}-{:08x}-{:05x}",
                ["api", "web", "worker", "db", "cache"][p % 5],
                rng.next() as u32,
                rng.below(1 << 20)
            );
            let id = format!("/kubepods/burstable/pod{:016x}/{:016x}", rng.next(), rng.next());
            let c = |extra: Vec<rw1::Label>| {
                let mut l = vec![
                    label("job", "kubelet"),
                    label("instance", instance.replace(":9100", ":10250")),
                    label("namespace", ns),
                    label("pod", pod.clone()),
                    label("container", "app"),
                    label("image", format!("registry.example.com/{ns}/app:1.{}", p % 7)),
                    label("id", id.clone()),
                    label("name", format!("k8s_app_{pod}_{ns}_0")),
                ];
                l.extend(extra);
                l
            };
            for (m, rate) in [
                ("container_cpu_usage_seconds_total", 0.3),
                ("container_cpu_user_seconds_total", 0.2),
                ("container_cpu_system_seconds_total", 0.1),
                ("container_cpu_cfs_throttled_seconds_total", 0.01),
            ] {
                out.push(series(
                    m,
                    c(vec![]),
                    Kind::SecondsCounter {
                        rate: rate * rng.unit(),
                    },
                ));
            }
            for (m, rate) in [
                ("container_cpu_cfs_periods_total", 10.0),
                ("container_cpu_cfs_throttled_periods_total", 0.5),
                ("container_fs_reads_bytes_total", 2e4),
                ("container_fs_writes_bytes_total", 5e4),
                ("container_fs_reads_total", 5.0),
                ("container_fs_writes_total", 9.0),
                ("container_network_receive_bytes_total", 1e5),
                ("container_network_transmit_bytes_total", 8e4),
                ("container_network_receive_packets_total", 90.0),
                ("container_network_transmit_packets_total", 70.0),
                ("container_network_receive_errors_total", 0.0),
                ("container_network_transmit_packets_dropped_total", 0.0),
                ("container_oom_events_total", 0.0),
            ] {
                let extra = if m.contains("network") {
                    vec![label("interface", "eth0")]
                } else {
                    vec![]
                };
                out.push(series(
                    m,
                    c(extra),
                    Kind::Counter {
                        rate: rate * rng.unit(),
                    },
                ));
            }
            for m in [
                "container_memory_working_set_bytes",
                "container_memory_usage_bytes",
                "container_memory_rss",
                "container_memory_cache",
                "container_memory_mapped_file",
                "container_memory_swap",
            ] {
                let base = (64.0 + rng.unit() * 2000.0) * 1024.0 * 1024.0;
                out.push(series(
                    m,
                    c(vec![]),
                    Kind::Gauge {
                        base,
                        spread: 0.05,
                        quantum: 4096.0,
                    },
                ));
            }
            for (m, v) in [
                (
                    "container_spec_memory_limit_bytes",
                    4.0 * 1024.0 * 1024.0 * 1024.0,
                ),
                ("container_spec_cpu_quota", 200_000.0),
                ("container_spec_cpu_period", 100_000.0),
                ("container_spec_cpu_shares", 1024.0),
                ("container_start_time_seconds", 1.7e9 + p as f64),
                ("container_last_seen", 0.0),
            ] {
                out.push(series(m, c(vec![]), Kind::Constant(v)));
            }
            for m in [
                "container_threads",
                "container_processes",
                "container_sockets",
                "container_file_descriptors",
            ] {
                let base = (rng.below(200) + 5) as f64;
                out.push(series(
                    m,
                    c(vec![]),
                    Kind::Gauge {
                        base,
                        spread: 0.1,
                        quantum: 1.0,
                    },
                ));
            }
        }
    }
    out
}

/// Advances every series by one scrape interval.
fn advance(series: &mut [Series], interval: f64, round_t: i64, rng: &mut Rng) {
    for s in series.iter_mut() {
        s.value = match s.kind {
            Kind::Counter { rate } => s.value + (rate * interval * (0.5 + rng.unit())).round(),
            Kind::SecondsCounter { rate } => {
                let v = s.value + rate * interval * (0.5 + rng.unit());
                (v * 100.0).round() / 100.0
            }
            Kind::Gauge {
                base,
                spread,
                quantum,
            } => {
                let step = base * spread * (rng.unit() - 0.5);
                let v = (s.value + step).clamp(base * (1.0 - spread * 10.0), base * (1.0 + spread * 10.0));
                (v / quantum).round() * quantum
            }
            Kind::Constant(v) if v == 0.0 && s.labels.iter().any(|l| l.value == "container_last_seen") => {
                (round_t / 1000) as f64
            }
            Kind::Constant(v) => v,
        };
    }
}

fn encode_rounds(args: &Args) -> (Vec<Vec<u8>>, usize, u64) {
    let mut rng = Rng(args.seed);
    let mut fleet = fleet(args, &mut rng);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let interval_ms = args.interval * 1000;
    let start = args.start_ms.unwrap_or_else(|| {
        // Far enough back that the last round is a minute in the past.
        let start = now - (args.rounds as i64) * interval_ms - 60_000;
        start - start.rem_euclid(interval_ms)
    });
    let mut bodies = Vec::new();
    let mut samples = 0u64;
    let mut encoder = snap::raw::Encoder::new();
    for round in 0..args.rounds {
        let t = start + round as i64 * interval_ms;
        advance(&mut fleet, args.interval as f64, t, &mut rng);
        for chunk in fleet.chunks(args.batch) {
            let req = rw1::WriteRequest {
                timeseries: chunk
                    .iter()
                    .map(|s| rw1::TimeSeries {
                        labels: s.labels.clone(),
                        // Scrapes are jittered by a few ms, as real ones are.
                        samples: vec![rw1::Sample {
                            value: s.value,
                            timestamp: t + (rng.below(20) as i64),
                        }],
                        ..Default::default()
                    })
                    .collect(),
                metadata: vec![],
            };
            samples += chunk.len() as u64;
            bodies.push(
                encoder
                    .compress_vec(&req.encode_to_vec())
                    .expect("snappy encodes"),
            );
        }
    }
    (bodies, fleet.len(), samples)
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Linux reports in clock ticks, 100 per second on every common kernel.
    Some((utime + stime) / 100.0)
}

/// A field of /proc/<pid>/status in bytes (e.g. VmHWM, VmRSS).
fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes of the files under `dir`, each file counted once however many
/// hard links it has (as `du` does: snapshots hard-link the store's files).
fn dir_bytes(dir: &Path) -> u64 {
    fn walk(dir: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let mut total = 0;
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                match e.metadata() {
                    Ok(m) if m.is_dir() => total += walk(&e.path(), seen),
                    Ok(m) if seen.insert((m.dev(), m.ino())) => total += m.len(),
                    _ => {}
                }
            }
        }
        total
    }
    walk(dir, &mut std::collections::HashSet::new())
}

fn main() {
    let args = Args::parse();
    let t0 = Instant::now();
    let (bodies, series, samples) = encode_rounds(&args);
    let payload: usize = bodies.iter().map(Vec::len).sum();
    eprintln!(
        "prepared {} requests: {series} series x {} rounds = {samples} samples, {:.1} MiB compressed, in {:.1}s",
        bodies.len(),
        args.rounds,
        payload as f64 / 1048576.0,
        t0.elapsed().as_secs_f64()
    );
    let cpu_before = args.pid.and_then(cpu_seconds);
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let bodies = bodies.clone();
            let next = next.clone();
            let failed = failed.clone();
            let url = args.url.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .expect("http client");
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    // Retry retryable answers like Prometheus does.
                    let mut backoff = Duration::from_millis(30);
                    loop {
                        let r = client
                            .post(&url)
                            .header("Content-Type", "application/x-protobuf")
                            .header("Content-Encoding", "snappy")
                            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                            .body(body.clone())
                            .send();
                        match r {
                            Ok(resp) if resp.status().is_success() => break,
                            Ok(resp) if resp.status().is_client_error() && resp.status() != 429 => {
                                eprintln!(
                                    "request {i} rejected: {} {}",
                                    resp.status(),
                                    resp.text().unwrap_or_default()
                                );
                                failed.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            _ => {
                                std::thread::sleep(backoff);
                                backoff = (backoff * 2).min(Duration::from_secs(2));
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, args.pid.and_then(cpu_seconds)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let peak_rss = args.pid.and_then(|p| status_bytes(p, "VmHWM"));
    for url in &args.settle_urls {
        match reqwest::blocking::Client::new()
            .get(url)
            .timeout(Duration::from_secs(600))
            .send()
        {
            Ok(r) => eprintln!("GET {url}: {}", r.status()),
            Err(e) => eprintln!("GET {url}: {e}"),
        }
    }
    std::thread::sleep(Duration::from_secs(args.settle_seconds));
    if let Some(pid) = args.pid.filter(|_| args.stop_server) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(300);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let disk = args.data_dir.as_deref().map(dir_bytes);
    let rate = samples as f64 / elapsed;
    println!("name: {}", args.name);
    println!("series: {series}");
    println!(
        "samples: {samples} ({} requests failed)",
        failed.load(Ordering::Relaxed)
    );
    println!("wall_seconds: {elapsed:.2}");
    println!("samples_per_second: {rate:.0}");
    if let Some(cpu) = cpu {
        println!("server_cpu_seconds: {cpu:.2}");
        println!(
            "samples_per_server_cpu_second: {:.0}",
            samples as f64 / cpu.max(1e-9)
        );
    }
    if let Some(rss) = peak_rss {
        println!("server_peak_rss_bytes: {rss}");
        println!(
            "peak_rss_bytes_per_active_series: {:.0}",
            rss as f64 / series as f64
        );
    }
    if let Some(disk) = disk {
        println!("disk_bytes: {disk}");
        println!("disk_bytes_per_sample: {:.3}", disk as f64 / samples as f64);
    }
}
