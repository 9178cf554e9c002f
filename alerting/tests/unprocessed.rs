//! The `unprocessed` alert state, reported where Alertmanager reports it: in the
//! `alertmanager_alerts{state}` gauge (fenghuo: `fenghuo_alerting_alerts{state}`), where an alert
//! is unprocessed from its arrival until a group holding it has been through the notification
//! pipeline, and then active or suppressed. The API computes states at query time (Alertmanager's
//! GET shows `active` right after a POST; `am_live.rs` checks that against a real Alertmanager)
//! and accepts the `unprocessed` filter parameter without applying it, as Alertmanager does.
//! One test per binary: the gauge is process-wide.

mod common;

use chrono::Duration;
use common::*;
use fenghuo_alerting::engine::AlertStateCounts;
use fenghuo_alerting::silence::{Silence, SilenceMatcher};

fn gauge(state: &str) -> Option<f64> {
    prometheus::gather()
        .into_iter()
        .find(|f| f.name() == "fenghuo_alerting_alerts")?
        .get_metric()
        .iter()
        .find(|m| m.get_label().iter().any(|l| l.value() == state))
        .map(|m| m.get_gauge().get_value())
}

#[tokio::test]
async fn unprocessed_until_the_pipeline_has_seen_the_alert() {
    let cfg = r#"
route:
  receiver: r
  group_by: [alertname]
  group_wait: 30s
receivers:
- name: r
"#;
    let (e, clock) = engine(cfg);
    let _ = e.ingest_posted(
        "anonymous",
        vec![alert(&[("alertname", "A")]), alert(&[("alertname", "B")])],
    );
    let c = |u, a, s| AlertStateCounts {
        unprocessed: u,
        active: a,
        suppressed: s,
    };
    assert_eq!(e.alert_state_counts(), c(2, 0, 0));
    assert_eq!(gauge("unprocessed"), Some(2.0));
    // The API reports the state computed at query time, as Alertmanager's does.
    let views = e.alert_views("anonymous").unwrap_or_default();
    assert!(views.iter().all(|v| v.state() == "active"));
    // A silence created before the flush: the pipeline then finds B suppressed.
    let now = t0();
    let _ = e.set_silence(
        "anonymous",
        Silence {
            id: String::new(),
            matchers: vec![SilenceMatcher {
                name: "alertname".into(),
                value: "B".into(),
                is_regex: false,
                is_equal: true,
            }],
            starts_at: now,
            ends_at: now + Duration::hours(1),
            updated_at: now,
            created_by: "me".into(),
            comment: "c".into(),
            annotations: Default::default(),
        },
    );
    clock.advance(Duration::seconds(10));
    let _ = e.tick().await;
    assert_eq!(e.alert_state_counts(), c(2, 0, 0), "group_wait has not passed");
    clock.advance(Duration::seconds(20));
    let _ = e.tick().await;
    assert_eq!(e.alert_state_counts(), c(0, 1, 1));
    assert_eq!(
        (gauge("unprocessed"), gauge("active"), gauge("suppressed")),
        (Some(0.0), Some(1.0), Some(1.0))
    );
    // A new alert in an existing group is unprocessed until that group's next flush.
    let _ = e.ingest_posted("anonymous", vec![alert(&[("alertname", "A"), ("instance", "2")])]);
    assert_eq!(e.alert_state_counts(), c(1, 1, 1));
    clock.advance(Duration::minutes(5));
    let _ = e.tick().await;
    assert_eq!(e.alert_state_counts(), c(0, 2, 1));
}
