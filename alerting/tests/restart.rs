//! State that must survive a restart, checked by really restarting: the engine is dropped, the
//! RocksDB state store closed and reopened, and a new engine continues on the same clock.
//! - the failure-notice queue (deliveries that kept failing): an unsent notice is sent after the
//!   restart, a sent one is not sent again, a failure is not reported twice, and the notice is
//!   cleared once the delivery recovers;
//! - rate budgets: a budget spent before the restart is still spent after it (the notification
//!   waits for the next token, as a digest would, instead of exceeding the robot's limit);
//! - escalation progress and acks: no step is redone, the next comes on time, an ack keeps
//!   pausing and its expiry resumes escalation; ack links stay valid.

mod common;

use std::path::Path;
use std::sync::Arc;

use chrono::Duration;
use common::*;
use fenghuo_alerting::clock::{Clock, ManualClock};
use fenghuo_alerting::engine::Engine;
use fenghuo_alerting::history::EventKind;
use fenghuo_alerting::store::RocksStateStore;

fn start(cfg: &str, dir: &Path, clock: &Arc<ManualClock>) -> Arc<Engine> {
    let store = Arc::new(RocksStateStore::open(dir).unwrap_or_else(|e| panic!("store: {e}")));
    engine_on(cfg, store, clock)
}

/// Drops the engine (and with it the only handle on the RocksDB store) and starts a new one.
async fn restart(e: Arc<Engine>, cfg: &str, dir: &Path, clock: &Arc<ManualClock>) -> Arc<Engine> {
    e.drain().await;
    let _ = e.flush_state();
    drop(e);
    start(cfg, dir, clock)
}

fn events(e: &Engine, clock: &ManualClock, kind: EventKind) -> usize {
    e.history(
        "anonymous",
        t0() - Duration::days(1),
        clock.now() + Duration::seconds(1),
        &[],
        &[kind],
        0,
    )
    .map(|h| h.len())
    .unwrap_or(0)
}

#[tokio::test]
async fn failure_notice_queue_survives_restarts_without_loss_or_duplicates() {
    let (robot, robot_base) = sink().await;
    let (ops, ops_base) = sink().await;
    *robot.answers.lock() = vec![(200, r#"{"errcode":-1,"errmsg":"system busy"}"#.into())];
    *ops.answers.lock() = vec![(503, "down".into())];
    let cfg = format!(
        r#"
route:
  receiver: r
  group_by: [alertname]
  group_wait: 30s
receivers:
- name: r
  dingtalk_configs:
  - webhook_url: '{robot_base}/robot/send?access_token=T'
- name: ops
  webhook_configs: [{{url: '{ops_base}/failed'}}]
fenghuo:
  delivery:
    max_attempts: 3
    initial_backoff: 1s
    max_backoff: 4s
    failure_receiver: ops
"#
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(ManualClock::new(t0()));
    let e = start(&cfg, dir.path(), &clock);
    let errs = e.ingest_posted("anonymous", vec![alert(&[("alertname", "DiskFull")])]);
    assert_eq!(errs.map(|v| v.len()).ok(), Some(0));
    clock.advance(Duration::seconds(30));
    for step in [0, 1, 2] {
        let r = e.tick().await;
        assert_eq!(r.deliveries[0].outcome, "failed", "attempt {step}");
        clock.advance(Duration::seconds(1 << step));
    }
    // The notice is queued; the failure receiver is down too, so it stays unsent.
    let r = e.tick().await;
    assert!(
        r.deliveries
            .iter()
            .any(|d| d.kind == "delivery_failure" && d.outcome == "failed")
    );
    let queued = e.delivery_failures("anonymous").unwrap_or_default();
    assert_eq!(queued.len(), 1);
    assert!(
        queued[0].notified_at.is_none() && queued[0].notify_attempts == 1,
        "{queued:?}"
    );
    assert!(queued[0].error.contains("errcode -1"), "{queued:?}");
    assert_eq!(events(&e, &clock, EventKind::DeliveryFailed), 1);

    // Restart: the unsent notice is still there and is sent once the failure receiver is back.
    let e = restart(e, &cfg, dir.path(), &clock).await;
    let after = e.delivery_failures("anonymous").unwrap_or_default();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, queued[0].id);
    *ops.answers.lock() = vec![(200, "ok".into())];
    clock.advance(Duration::seconds(5));
    let r = e.tick().await;
    let sent: Vec<_> = r
        .deliveries
        .iter()
        .filter(|d| d.kind == "delivery_failure")
        .collect();
    assert_eq!(sent.len(), 1, "{:?}", r.deliveries);
    assert_eq!(sent[0].outcome, "sent");
    // The group keeps failing after the restart: the failure is not reported a second time.
    for _ in 0..4 {
        clock.advance(Duration::seconds(5));
        let _ = e.tick().await;
    }
    assert_eq!(events(&e, &clock, EventKind::DeliveryFailed), 1);
    let ops_calls = ops.requests.lock().len();

    // Restart again: the delivered notice is not sent again.
    let e = restart(e, &cfg, dir.path(), &clock).await;
    for _ in 0..3 {
        clock.advance(Duration::seconds(5));
        let r = e.tick().await;
        assert!(
            r.deliveries.iter().all(|d| d.kind != "delivery_failure"),
            "{:?}",
            r.deliveries
        );
    }
    assert_eq!(ops.requests.lock().len(), ops_calls);
    let n = e.delivery_failures("anonymous").unwrap_or_default();
    assert!(n.len() == 1 && n[0].notified_at.is_some(), "{n:?}");
    assert_eq!(events(&e, &clock, EventKind::DeliveryFailed), 1);

    // The robot recovers: the alert is delivered and the notice cleared, for good.
    *robot.answers.lock() = vec![(200, r#"{"errcode":0,"errmsg":"ok"}"#.into())];
    clock.advance(Duration::seconds(5));
    let r = e.tick().await;
    assert!(
        r.deliveries
            .iter()
            .any(|d| d.receiver == "r" && d.outcome == "sent"),
        "{:?}",
        r.deliveries
    );
    assert!(e.delivery_failures("anonymous").unwrap_or_default().is_empty());
    assert_eq!(events(&e, &clock, EventKind::DeliveryRecovered), 1);
    let e = restart(e, &cfg, dir.path(), &clock).await;
    assert!(e.delivery_failures("anonymous").unwrap_or_default().is_empty());
}

#[tokio::test]
async fn rate_budget_survives_restarts() {
    let (robot, base) = sink().await;
    let cfg = format!(
        r#"
route:
  receiver: r
  group_by: [alertname]
  group_wait: 30s
receivers:
- name: r
  dingtalk_configs:
  - webhook_url: '{base}/robot/send?access_token=T'
    rate_limit: {{messages: 2, per: 10m}}
"#
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(ManualClock::new(t0()));
    let e = start(&cfg, dir.path(), &clock);
    let _ = e.ingest_posted(
        "anonymous",
        vec![alert(&[("alertname", "A")]), alert(&[("alertname", "B")])],
    );
    clock.advance(Duration::seconds(30));
    let r = e.tick().await;
    assert_eq!(r.deliveries.iter().filter(|d| d.outcome == "sent").count(), 2);
    assert_eq!(robot.requests.lock().len(), 2);

    // After a restart the budget is still spent: the new group waits for a token.
    let e = restart(e, &cfg, dir.path(), &clock).await;
    let _ = e.ingest_posted("anonymous", vec![alert(&[("alertname", "C")])]);
    clock.advance(Duration::seconds(30));
    let r = e.tick().await;
    assert_eq!(
        r.deliveries.len(),
        1,
        "A and B are not re-sent: {:?}",
        r.deliveries
    );
    assert_eq!(r.deliveries[0].outcome, "deferred");
    assert_eq!(robot.requests.lock().len(), 2);
    // One token every 5 minutes: C goes out when it exists, exactly once.
    clock.advance(Duration::minutes(4) + Duration::seconds(30));
    let r = e.tick().await;
    assert_eq!(
        r.deliveries.iter().filter(|d| d.outcome == "sent").count(),
        1,
        "{:?}",
        r.deliveries
    );
    let e = restart(e, &cfg, dir.path(), &clock).await;
    clock.advance(Duration::seconds(30));
    let r = e.tick().await;
    assert!(r.deliveries.is_empty(), "{:?}", r.deliveries);
    assert_eq!(robot.requests.lock().len(), 3);
}

/// Escalation progress and an ack survive restarts: a step done before a restart is not done
/// again, the next step comes at its time, an ack made before a restart still pauses the
/// escalation and its expiry (after another restart) resumes it.
#[tokio::test]
async fn escalation_progress_and_acks_survive_restarts() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (s, base) = sink().await;
    let cfg = format!(
        r#"
route:
  receiver: db
  group_by: [alertname]
  group_wait: 30s
  repeat_interval: 12h
  escalation: oncall
receivers:
- name: db
  webhook_configs: [{{url: '{base}/db'}}]
- name: lead
  webhook_configs: [{{url: '{base}/lead'}}]
- name: boss
  webhook_configs: [{{url: '{base}/boss'}}]
fenghuo:
  escalation_policies:
  - name: oncall
    steps:
    - {{wait: 10m, receivers: [lead]}}
    - {{wait: 20m, receivers: [boss], repeat: 3}}
"#
    );
    let count = |path: &str| s.requests.lock().iter().filter(|r| r.uri == path).count();
    let clock = Arc::new(ManualClock::new(t0()));
    let e = start(&cfg, dir.path(), &clock);
    let _ = e.ingest_posted("anonymous", vec![alert(&[("alertname", "DbDown")])]);
    clock.advance(Duration::seconds(30));
    e.tick().await;
    clock.advance(Duration::minutes(10));
    e.tick().await;
    assert_eq!((count("/db"), count("/lead"), count("/boss")), (1, 1, 0));

    let e = restart(e, &cfg, dir.path(), &clock).await;
    clock.advance(Duration::minutes(10));
    e.tick().await;
    assert_eq!(
        (count("/db"), count("/lead"), count("/boss")),
        (1, 1, 0),
        "step 1 not redone"
    );
    clock.advance(Duration::minutes(10));
    e.tick().await;
    assert_eq!(
        count("/boss"),
        1,
        "step 2 at 20m after step 1, across the restart"
    );

    // Acked for 1h: no further steps, across a restart.
    let key = e.group_views("anonymous").unwrap_or_default()[0].key.clone();
    assert!(
        e.ack_group("anonymous", &key, "alice", "", Some(Duration::hours(1)))
            .is_ok()
    );
    let link = e.ack_url("anonymous", &key);
    let e = restart(e, &cfg, dir.path(), &clock).await;
    assert_eq!(
        e.ack_url("anonymous", &key),
        link,
        "ack links in sent messages stay valid"
    );
    for _ in 0..5 {
        clock.advance(Duration::minutes(10));
        e.tick().await;
    }
    assert_eq!(
        count("/boss"),
        1,
        "the ack still pauses escalation after the restart"
    );
    let e = restart(e, &cfg, dir.path(), &clock).await;
    // The ack expires at 1h; the step's wait (20m) starts again then.
    clock.advance(Duration::minutes(10));
    e.tick().await;
    clock.advance(Duration::minutes(20));
    e.tick().await;
    assert_eq!(count("/boss"), 2, "escalation resumed after the ack expired");
    assert_eq!(events(&e, &clock, EventKind::AckExpired), 1);
    assert_eq!(count("/db"), 1, "the group itself was never re-sent");
}
