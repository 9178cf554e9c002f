//! Alert state never runs ahead of what is durable without saying so: when
//! the state store refuses a write, the changes stay pending (in order) and
//! are written by the next persist; until then the engine reports its state
//! as not durable (`state_error`, which `/-/ready` shows, and a gauge).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::Duration;
use common::*;
use fenghuo_alerting::AlertingError;
use fenghuo_alerting::clock::ManualClock;
use fenghuo_alerting::config::load_str;
use fenghuo_alerting::engine::{Engine, EngineOptions};
use fenghuo_alerting::store::{AlertStateStore, MemoryStateStore, StateKind, StateOp};

/// A store whose writes fail while `failing` is set.
#[derive(Default)]
struct FlakyStore {
    inner: MemoryStateStore,
    failing: AtomicBool,
    refused: AtomicUsize,
}

impl AlertStateStore for FlakyStore {
    fn apply(&self, ops: Vec<StateOp>) -> Result<(), AlertingError> {
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
    let loaded = load_str(CONFIG, std::path::Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    let e = Engine::new(
        clock.clone(),
        store.clone(),
        loaded,
        EngineOptions {
            external_url: "http://fh.test:9093".into(),
            dry_run: false,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
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
