//! Load against the resource limits of a real `fenghuo serve`, each driven
//! past its bound while other traffic goes on:
//! - `ingest.max_inflight_bytes`: concurrent large writes beyond the byte
//!   budget get 503 naming the limit (Prometheus retries), the rest 204;
//! - `query.max_concurrency`: slow queries beyond the slots wait in the
//!   queue, and past their timeout get 503 "query timed out in query queue";
//! - meanwhile health checks and a small query keep answering, and the
//!   process's peak memory stays far below what the unbounded requests would
//!   have taken.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Fenghuo, TestSeries};
use fenghuo_proto::Message;

/// Peak resident memory of a process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// While `busy` holds, checks every 100 ms that the node answers health and a small query
/// quickly; returns the slowest answer seen.
fn watch(f: &Fenghuo, busy: &AtomicBool) -> Duration {
    let c = client();
    let mut slowest = Duration::ZERO;
    while busy.load(Ordering::SeqCst) {
        let started = Instant::now();
        let healthy = c.get(f.url("/-/healthy")).send().map(|r| r.status().as_u16());
        assert_eq!(healthy.ok(), Some(200));
        let q = c
            .get(f.url("/api/v1/format_query"))
            .query(&[("query", "sum(up)")])
            .send()
            .map(|r| r.status().as_u16());
        assert_eq!(q.ok(), Some(200));
        slowest = slowest.max(started.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    slowest
}

#[test]
fn limits_hold_under_load_and_other_traffic_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fenghuo.yml");
    std::fs::write(
        &config,
        "ingest:\n  max_request_bytes: 4194304\n  max_decompressed_bytes: 16777216\n  max_inflight_bytes: 40000000\nquery:\n  max_concurrency: 2\n  timeout: 3s\n",
    )
    .unwrap();
    let f = Fenghuo::start_in(
        &dir.path().join("data"),
        &["--config.file", config.to_str().unwrap()],
    );
    let pid = f.child.id();

    // Writes of ~12 MiB decompressed each (2 x 12 MiB reserved): at most one fits the budget
    // at a time, so concurrent ones are refused and retried by their senders.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let value = "v".repeat(4000);
    let names: Vec<String> = (0..3000).map(|i| format!("s{i}")).collect();
    let series: Vec<TestSeries> = names
        .iter()
        .map(|n| {
            (
                vec![("__name__", "big"), ("id", n.as_str()), ("pad", value.as_str())],
                vec![(now, 1.0)],
            )
        })
        .collect();
    let body = Arc::new(
        snap::raw::Encoder::new()
            .compress_vec(&common::v1_request(&series).encode_to_vec())
            .unwrap(),
    );
    assert!(body.len() < 4 << 20, "compressed {}", body.len());

    let busy = AtomicBool::new(true);
    let statuses = Mutex::new(Vec::new());
    let slowest = std::thread::scope(|s| {
        let watcher = s.spawn(|| watch(&f, &busy));
        let writers: Vec<_> = (0..12)
            .map(|_| {
                let body = body.clone();
                let statuses = &statuses;
                let f = &f;
                s.spawn(move || {
                    let r = client()
                        .post(f.url("/api/v1/write"))
                        .header("Content-Type", "application/x-protobuf")
                        .header("Content-Encoding", "snappy")
                        .body(body.to_vec())
                        .send()
                        .expect("write answered");
                    let status = r.status().as_u16();
                    statuses
                        .lock()
                        .unwrap()
                        .push((status, r.text().unwrap_or_default()));
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        // Two slow queries take both slots for the 3 s query timeout; four more with a 1 s
        // timeout wait in the queue and give up there.
        let slow = |timeout: &'static str, delay_ms: u64| {
            let f = &f;
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(delay_ms));
                let r = client()
                    .get(f.url("/api/v1/query"))
                    .query(&[
                        ("query", "count_over_time((vector(time()) > 0)[10d:1s])"),
                        ("timeout", timeout),
                    ])
                    .send()
                    .expect("query answered");
                (r.status().as_u16(), r.text().unwrap_or_default())
            })
        };
        let handles: Vec<_> = [
            ("3s", 0),
            ("3s", 0),
            ("1s", 500),
            ("1s", 500),
            ("1s", 500),
            ("1s", 500),
        ]
        .into_iter()
        .map(|(timeout, delay)| slow(timeout, delay))
        .collect();
        let queries = handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>();
        busy.store(false, Ordering::SeqCst);
        let slowest = watcher.join().unwrap();
        (slowest, queries)
    });
    let (slowest, queries) = slowest;
    let statuses = statuses.into_inner().unwrap();
    let ok = statuses.iter().filter(|(s, _)| *s == 204).count();
    let refused: Vec<_> = statuses.iter().filter(|(s, _)| *s == 503).collect();
    assert!(ok >= 1, "{statuses:?}");
    assert!(!refused.is_empty(), "no write was refused: {statuses:?}");
    assert!(
        refused.iter().all(|(_, t)| t.contains("max_inflight_bytes")),
        "{refused:?}"
    );
    assert_eq!(ok + refused.len(), statuses.len(), "{statuses:?}");
    let queued_out = queries
        .iter()
        .filter(|(s, t)| *s == 503 && t.contains("query timed out in query queue"))
        .count();
    assert_eq!(queued_out, 4, "{queries:?}");
    assert!(queries.iter().all(|(s, _)| *s == 200 || *s == 503), "{queries:?}");
    // Health and small queries were answered throughout (a generous bound: the point is that
    // they were not stuck behind the load).
    assert!(
        slowest < Duration::from_secs(5),
        "slowest health/format answer {slowest:?}"
    );
    // 12 writes of 12 MiB decompressed, each decoded, would have needed far more at once.
    let peak = peak_rss(pid);
    assert!(peak < 400 << 20, "peak RSS {} MiB", peak >> 20);
    eprintln!(
        "writes: {ok} accepted, {} refused; queries: {queued_out} timed out in the queue; peak RSS {} MiB; slowest probe {slowest:?}",
        refused.len(),
        peak >> 20
    );
}
