//! Alert state never runs ahead of what is durable without saying so: when
//! the state store refuses a write, the changes stay pending (in order) and
//! are written by the next persist; until then the engine reports its state
//! as not durable (`state_error`, which `/-/ready` shows, and a gauge), and holds back sends
//! whose intent is not durable. A notification interrupted by a crash is delivered at least once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::Duration;
use common::*;
use fenghuo_alerting::AlertingError;
use fenghuo_alerting::clock::{Clock, ManualClock};
use fenghuo_alerting::store::{AlertStateStore, MemoryStateStore, StateKind, StateOp};

/// A store whose writes fail while `failing` is set.
#[derive(Default)]
struct FlakyStore {
    inner: MemoryStateStore,
    failing: AtomicBool,
    refused: AtomicUsize,
}

impl AlertStateStore for FlakyStore {
    fn apply(&self, ops: &[StateOp]) -> Result<(), AlertingError> {
        if self.failing.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(AlertingError::Store("disk full".into()));
        }
        self.inner.apply(ops)
    }
    fn scan(&self, tenant: &str, kind: StateKind) -> Result<Vec<(String, Vec<u8>)>, AlertingError> {
        self.inner.scan(tenant, kind)
    }
    fn scan_range(
        &self,
        tenant: &str,
        kind: StateKind,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, AlertingError> {
        self.inner.scan_range(tenant, kind, from, to)
    }
    fn tenants(&self) -> Result<Vec<String>, AlertingError> {
        self.inner.tenants()
    }
    fn flush(&self) -> Result<(), AlertingError> {
        self.inner.flush()
    }
}

const CONFIG: &str = "route:\n  receiver: r\n  group_wait: 30s\nreceivers:\n- name: r\n";

#[tokio::test]
async fn refused_writes_are_retried_and_reported_until_they_land() {
    let clock = Arc::new(ManualClock::new(t0()));
    let store = Arc::new(FlakyStore::default());
    let e = engine_on(CONFIG, store.clone(), &clock);
    assert_eq!(e.state_error(), None);

    store.failing.store(true, Ordering::SeqCst);
    let r = e.ingest_posted("anonymous", vec![alert(&[("alertname", "DiskFull")])]);
    assert!(
        r.is_err(),
        "the sender must learn that the write is not durable (it retries)"
    );
    let why = e.state_error().unwrap_or_default();
    assert!(why.contains("anonymous") && why.contains("disk full"), "{why}");
    assert!(
        store
            .inner
            .scan("anonymous", StateKind::Alert)
            .unwrap_or_default()
            .is_empty()
    );

    // Ticks while the store still fails keep the changes pending.
    clock.advance(Duration::seconds(10));
    e.tick().await;
    assert!(
        store.refused.load(Ordering::SeqCst) >= 2,
        "the tick retried the write"
    );
    assert!(e.state_error().is_some());

    // The store recovers: the next tick writes what was refused, nothing is lost.
    store.failing.store(false, Ordering::SeqCst);
    clock.advance(Duration::seconds(10));
    e.tick().await;
    assert_eq!(e.state_error(), None);
    let alerts = store
        .inner
        .scan("anonymous", StateKind::Alert)
        .unwrap_or_default();
    assert_eq!(alerts.len(), 1, "the refused alert was written on retry");
    assert!(String::from_utf8_lossy(&alerts[0].1).contains("DiskFull"));
}

/// Statuses of the webhook payloads the sink received.
fn statuses(sink: &Sink) -> Vec<String> {
    sink.requests
        .lock()
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            v["status"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

/// A crash while a notification is on the wire: the first engine sends and never learns the
/// outcome (its receiver does not answer); a second engine starts on the same state, as after
/// kill -9. The intent recorded before the send makes it deliver at least once: the firing
/// message again while the alert fires, and, when the alert resolved in the meantime, the
/// resolved message (which was lost before: nothing in the log said a firing one went out).
#[tokio::test]
async fn a_notification_interrupted_by_a_crash_is_sent_again_or_resolved() {
    for resolve_while_down in [false, true] {
        let (sink, base) = sink().await;
        let cfg = format!(
            "route:\n  receiver: hook\n  group_wait: 30s\n  group_interval: 1m\n  repeat_interval: 4h\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: '{base}/hook'\n    send_resolved: true\n"
        );
        let store: Arc<dyn AlertStateStore> = Arc::new(MemoryStateStore::default());
        let clock = Arc::new(ManualClock::new(t0()));
        let first = engine_on(&cfg, store.clone(), &clock);
        let errs = first.ingest_posted("anonymous", vec![alert(&[("alertname", "Crash")])]);
        assert_eq!(errs.map(|e| e.len()).ok(), Some(0));
        // The receiver takes an hour to answer: the send is on the wire when the "crash" comes.
        sink.delay_ms.store(3_600_000, Ordering::SeqCst);
        clock.advance(Duration::seconds(30));
        first.tick_detached().await;
        for _ in 0..100 {
            if !sink.requests.lock().is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(statuses(&sink), ["firing"], "the first engine sent");
        let pending = store.scan("anonymous", StateKind::Delivery).unwrap_or_default();
        assert!(
            pending.iter().any(|(k, _)| k.starts_with("intent/")),
            "the intent was durable before the send: {pending:?}"
        );
        drop(first);

        sink.delay_ms.store(0, Ordering::SeqCst);
        clock.advance(Duration::seconds(10));
        let second = engine_on(&cfg, store.clone(), &clock);
        if resolve_while_down {
            let mut a = alert(&[("alertname", "Crash")]);
            a.ends_at = Some(clock.now() - Duration::seconds(1));
            let errs = second.ingest_posted("anonymous", vec![a]);
            assert_eq!(errs.map(|e| e.len()).ok(), Some(0));
        }
        clock.advance(Duration::seconds(60));
        second.tick().await;
        let want = if resolve_while_down { "resolved" } else { "firing" };
        assert_eq!(
            statuses(&sink),
            ["firing", want],
            "resolved while down: {resolve_while_down}"
        );
        // Recorded now: later ticks send nothing more.
        assert!(
            !store
                .scan("anonymous", StateKind::Delivery)
                .unwrap_or_default()
                .iter()
                .any(|(k, _)| k.starts_with("intent/"))
        );
        for _ in 0..3 {
            clock.advance(Duration::seconds(60));
            second.tick().await;
        }
        assert_eq!(statuses(&sink).len(), 2, "{:?}", statuses(&sink));
    }
}

/// Jobs of a tenant whose intents the store refused are held back, not sent: a crash during
/// such a send could not be recovered.
#[tokio::test]
async fn nothing_is_sent_while_the_intent_is_not_durable() {
    let (sink, base) = sink().await;
    let cfg = format!(
        "route:\n  receiver: hook\n  group_wait: 30s\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: '{base}/hook'\n"
    );
    let store = Arc::new(FlakyStore::default());
    let clock = Arc::new(ManualClock::new(t0()));
    let e = engine_on(&cfg, store.clone(), &clock);
    let errs = e.ingest_posted("anonymous", vec![alert(&[("alertname", "Held")])]);
    assert_eq!(errs.map(|e| e.len()).ok(), Some(0));
    store.failing.store(true, Ordering::SeqCst);
    clock.advance(Duration::seconds(30));
    let r = e.tick().await;
    assert_eq!(r.deliveries.len(), 1);
    assert_eq!(r.deliveries[0].outcome, "deferred");
    assert!(sink.requests.lock().is_empty(), "sent without a durable intent");
    store.failing.store(false, Ordering::SeqCst);
    clock.advance(Duration::seconds(10));
    let r = e.tick().await;
    assert_eq!(
        r.deliveries
            .iter()
            .map(|d| d.outcome.as_str())
            .collect::<Vec<_>>(),
        ["sent"]
    );
    assert_eq!(sink.requests.lock().len(), 1);
}
