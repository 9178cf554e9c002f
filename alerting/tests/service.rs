//! The service as the binary uses it: start on a data directory (RocksDB), reload keeping all
//! state, a broken config on reload keeping the old one, and state back after a restart.

mod common;

use std::sync::Arc;

use chrono::Duration;
use common::*;
use fenghuo_alerting::clock::ManualClock;
use fenghuo_alerting::{AlertingOptions, AlertingService};

#[tokio::test]
async fn reload_keeps_state_and_restart_restores_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (sink, url) = sink().await;
    let cfg = dir.path().join("alertmanager.yml");
    let v1 = format!(
        "route:\n  receiver: r\n  group_wait: 30s\nreceivers:\n- name: r\n  webhook_configs: [{{url: '{url}/v1'}}]\n"
    );
    std::fs::write(&cfg, &v1).unwrap_or_else(|e| panic!("{e}"));
    let opts = AlertingOptions {
        config_file: Some(cfg.clone()),
        data_dir: dir.path().join("data"),
        external_url: "http://fh.test".into(),
        tick_interval: None,
        store: None,
    };
    let clock = Arc::new(ManualClock::new(t0()));
    let svc = AlertingService::start(opts.clone(), clock.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        svc.ingest("team-a", vec![alert(&[("alertname", "A")])])
            .map(|e| e.len())
            .ok(),
        Some(0)
    );
    assert!(
        svc.ingest("bad tenant!", vec![alert(&[("alertname", "A")])])
            .is_err()
    );
    clock.advance(Duration::seconds(30));
    svc.tick().await;
    assert_eq!(sink.requests.lock().len(), 1);
    let acked = svc.engine().ack_alert(
        "team-a",
        fenghuo_alerting::model::fingerprint(&[("alertname".to_string(), "A".to_string())].into()),
        "alice",
        "",
        None,
    );
    assert!(acked.is_ok(), "{acked:?}");

    // Reload with a second receiver: state stays, nothing is re-sent.
    let v2 = v1.replace("receivers:\n", "receivers:\n- name: extra\n");
    std::fs::write(&cfg, &v2).unwrap_or_else(|e| panic!("{e}"));
    assert!(svc.reload().await.is_ok());
    assert!(svc.engine().runtime().receivers.contains_key("extra"));
    assert_eq!(svc.engine().acks("team-a").map(|a| a.len()).ok(), Some(1));
    clock.advance(Duration::seconds(30));
    svc.tick().await;
    assert_eq!(sink.requests.lock().len(), 1, "reload did not cause a re-send");

    // A broken config is rejected and the running one stays.
    std::fs::write(&cfg, "route: {receiver: missing}\nreceivers: []\n").unwrap_or_else(|e| panic!("{e}"));
    assert!(svc.reload().await.is_err());
    assert!(svc.engine().runtime().receivers.contains_key("extra"));
    svc.shutdown().await;
    drop(svc);

    // Restart on the same data directory.
    std::fs::write(&cfg, &v2).unwrap_or_else(|e| panic!("{e}"));
    let svc = AlertingService::start(opts, clock.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        svc.engine().acks("team-a").map(|a| a.len()).ok(),
        Some(1),
        "ack survived the restart"
    );
    assert_eq!(svc.engine().alert_views("team-a").map(|a| a.len()).ok(), Some(1));
    assert_eq!(
        svc.engine().alert_views("anonymous").map(|a| a.len()).ok(),
        Some(0),
        "tenants stay apart"
    );
    clock.advance(Duration::seconds(30));
    svc.tick().await;
    assert_eq!(sink.requests.lock().len(), 1, "no re-send after restart");
    let h = svc
        .engine()
        .history(
            "team-a",
            t0(),
            clock.as_ref().now_plus(Duration::seconds(1)),
            &[],
            &[],
            0,
        )
        .unwrap_or_default();
    let kinds: Vec<String> = h.iter().map(|e| format!("{:?}", e.kind)).collect();
    assert_eq!(
        kinds,
        vec!["Fired", "Notified", "Acked"],
        "history survived the restart"
    );
    svc.shutdown().await;
}

trait NowPlus {
    fn now_plus(&self, d: Duration) -> fenghuo_alerting::Ts;
}
impl NowPlus for ManualClock {
    fn now_plus(&self, d: Duration) -> fenghuo_alerting::Ts {
        use fenghuo_alerting::Clock;
        self.now() + d
    }
}

/// A reload while a group's delivery is still in flight (slow receiver) neither sends the group a
/// second time nor loses the in-flight marker: the group's timers and delivery state carry over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_during_a_delivery_does_not_send_twice() {
    let (sink, url) = sink().await;
    sink.delay_ms.store(800, std::sync::atomic::Ordering::SeqCst);
    let cfg = format!(
        "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 30s\n  group_interval: 5m\nreceivers:\n- name: r\n  webhook_configs: [{{url: '{url}/h'}}]\n"
    );
    let (e, clock) = engine(&cfg);
    let _ = e.ingest_posted("anonymous", vec![alert(&[("alertname", "Slow")])]);
    clock.advance(Duration::seconds(30));
    e.tick_detached().await;
    // The delivery is under way; reload the same config, then keep ticking as the service does.
    let loaded =
        fenghuo_alerting::config::load_str(&cfg, std::path::Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    assert!(e.reload(loaded).is_ok());
    for _ in 0..3 {
        clock.advance(Duration::seconds(20));
        e.tick_detached().await;
    }
    e.drain().await;
    assert_eq!(sink.requests.lock().len(), 1, "one delivery, not two");
    // The group is not stuck in flight: a new alert goes out at the next group_interval.
    let _ = e.ingest_posted(
        "anonymous",
        vec![alert(&[("alertname", "Slow"), ("instance", "b")])],
    );
    clock.advance(Duration::minutes(5));
    e.tick().await;
    e.drain().await;
    assert_eq!(sink.requests.lock().len(), 2);
}
