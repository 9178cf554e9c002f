//! Engine throughput: ingesting batches of alerts (routing, grouping, history, state writes to the
//! in-memory store) and one evaluation step flushing every group (dry run: no network).

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use fenghuo_alerting::PostableAlert;
use fenghuo_alerting::clock::ManualClock;
use fenghuo_alerting::config::load_str;
use fenghuo_alerting::engine::{Engine, EngineOptions};
use fenghuo_alerting::store::MemoryStateStore;

const CFG: &str = r#"
route:
  receiver: r
  group_by: [alertname, cluster]
  routes:
  - matchers: ['severity="critical"']
    receiver: r
    continue: true
receivers:
- name: r
  webhook_configs: [{url: "http://127.0.0.1:9/"}]
inhibit_rules:
- source_matchers: ['severity="critical"']
  target_matchers: ['severity="warning"']
  equal: [cluster]
"#;

fn alerts(n: usize, t0: DateTime<Utc>) -> Vec<PostableAlert> {
    (0..n)
        .map(|i| PostableAlert {
            labels: [
                ("alertname".to_string(), format!("A{}", i % 50)),
                ("cluster".to_string(), format!("c{}", i % 4)),
                ("instance".to_string(), format!("host-{i}:9100")),
                (
                    "severity".to_string(),
                    if i % 10 == 0 { "critical" } else { "warning" }.to_string(),
                ),
            ]
            .into(),
            annotations: [("summary".to_string(), format!("alert {i}"))].into(),
            starts_at: Some(t0),
            ends_at: Some(t0 + Duration::hours(1)),
            generator_url: String::new(),
        })
        .collect()
}

fn engine() -> (Arc<Engine>, Arc<ManualClock>, DateTime<Utc>) {
    let t0 = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    let clock = Arc::new(ManualClock::new(t0));
    let loaded = load_str(CFG, Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    let e = Engine::new(
        clock.clone(),
        Arc::new(MemoryStateStore::default()),
        loaded,
        EngineOptions {
            external_url: "http://x".into(),
            dry_run: true,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (e, clock, t0)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("ingest 1000 alerts", |b| {
        b.iter_with_setup(
            || {
                let (e, _, t0) = engine();
                (e, alerts(1000, t0))
            },
            |(e, a)| e.ingest_posted("t", a),
        )
    });
    c.bench_function("tick flushing 200 groups of 1000 alerts", |b| {
        b.iter_with_setup(
            || {
                let (e, clock, t0) = engine();
                let _ = e.ingest_posted("t", alerts(1000, t0));
                clock.advance(Duration::minutes(1));
                e
            },
            |e| rt.block_on(e.tick()),
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
