//! Per-tenant limits over HTTP: alerts held, alert and label size, total size, aggregation
//! groups, silences (active + pending) and silence size, request size. Exceeding one is a 4xx whose
//! message names the limit; what is within the limits is still accepted, what is held is kept, and
//! the engine keeps serving. Reads for an unknown tenant create no tenant state.

mod common;

use std::sync::Arc;

use chrono::Duration;
use common::*;
use fenghuo_alerting::api::{ApiState, fenghuo, v2};
use fenghuo_alerting::clock::Clock;
use serde_json::{Value, json};

async fn serve(e: Arc<fenghuo_alerting::engine::Engine>) -> String {
    let st = ApiState { engine: e };
    let app = v2::router(st.clone()).merge(fenghuo::router(st));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    format!("http://{addr}")
}

const CFG: &str = r#"
route:
  receiver: r
  group_by: [alertname]
  group_wait: 30s
receivers:
- name: r
fenghuo:
  limits:
    max_alerts: 3
    max_alert_labels_size_bytes: 200
    max_alert_size_bytes: 1000
    max_alerts_size_bytes: 2500
    max_aggregation_groups: 10
    max_silences: 2
    max_silence_size_bytes: 600
    max_request_bytes: 4096
    tenants:
      big:
        max_alerts: 100
        max_aggregation_groups: 2
"#;

async fn post(c: &reqwest::Client, url: String, tenant: &str, body: String) -> (u16, String) {
    let r = c
        .post(url)
        .header("X-Scope-OrgID", tenant)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    // Alertmanager's API answers errors as a JSON string.
    (status, serde_json::from_str::<String>(&text).unwrap_or(text))
}

fn alerts(names: &[&str]) -> String {
    json!(
        names
            .iter()
            .map(|n| json!({"labels": {"alertname": n}}))
            .collect::<Vec<_>>()
    )
    .to_string()
}

#[tokio::test]
async fn limits_refuse_with_their_name_and_keep_the_rest() {
    let (e, clock) = engine(CFG);
    let base = serve(e.clone()).await;
    let c = reqwest::Client::new();
    let url = format!("{base}/api/v2/alerts");

    // Alerts held: 3 accepted, the 4th refused (updates of held alerts still pass).
    let (st, txt) = post(&c, url.clone(), "t", alerts(&["A", "B", "C", "D"])).await;
    assert_eq!(st, 400, "{txt}");
    assert!(
        txt.contains("max_alerts=3") && txt.contains("alertname=\"D\""),
        "{txt}"
    );
    assert_eq!(e.alert_views("t").map(|v| v.len()).ok(), Some(3));
    let (st, txt) = post(&c, url.clone(), "t", alerts(&["A", "B"])).await;
    assert_eq!(st, 200, "{txt}");
    // Another tenant has its own (overridden) limit.
    let (st, _) = post(&c, url.clone(), "big", alerts(&["A", "B"])).await;
    assert_eq!(st, 200);
    // ... and there the aggregation group limit (2) bites first.
    let (st, txt) = post(&c, url.clone(), "big", alerts(&["C"])).await;
    assert_eq!(st, 400);
    assert!(txt.contains("max_aggregation_groups=2"), "{txt}");

    // Label size and alert size.
    let long = "x".repeat(300);
    let body = json!([{"labels": {"alertname": "A", "big": long}}]).to_string();
    let (st, txt) = post(&c, url.clone(), "u", body).await;
    assert_eq!(st, 400);
    assert!(txt.contains("max_alert_labels_size_bytes=200"), "{txt}");
    let body = json!([{"labels": {"alertname": "A"}, "annotations": {"d": "y".repeat(1200)}}]).to_string();
    let (st, txt) = post(&c, url.clone(), "u", body).await;
    assert_eq!(st, 400);
    assert!(txt.contains("max_alert_size_bytes=1000"), "{txt}");
    // Total size of alerts held.
    let fat = |n: &str| json!({"labels": {"alertname": n}, "annotations": {"d": "z".repeat(900)}});
    let (st, txt) = post(
        &c,
        url.clone(),
        "v",
        json!([fat("A"), fat("B"), fat("C")]).to_string(),
    )
    .await;
    assert_eq!(st, 400);
    assert!(txt.contains("max_alerts_size_bytes=2500"), "{txt}");
    assert_eq!(e.alert_views("v").map(|v| v.len()).ok(), Some(2));

    // Request size: 413 naming the limit, nothing ingested.
    let names: Vec<String> = (0..200).map(|i| format!("N{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (st, txt) = post(&c, url.clone(), "w", alerts(&refs)).await;
    assert_eq!(st, 413, "{txt}");
    assert!(txt.contains("max_request_bytes=4096"), "{txt}");
    assert!(e.alert_views("w").unwrap_or_default().is_empty());
    let (st, txt) = post(&c, format!("{base}/api/v1/alerting/ingest"), "w", alerts(&refs)).await;
    assert_eq!(st, 413, "{txt}");

    // Silences: active + pending count; expired ones do not.
    let sil = |m: &str, start: chrono::DateTime<chrono::Utc>| {
        json!({"matchers": [{"name": "alertname", "value": m, "isRegex": false}],
               "startsAt": start, "endsAt": start + Duration::hours(1),
               "createdBy": "me", "comment": "c"})
        .to_string()
    };
    let surl = format!("{base}/api/v2/silences");
    let now = clock.now();
    let (st, first) = post(&c, surl.clone(), "t", sil("A", now)).await;
    assert_eq!(st, 200);
    let (st, _) = post(&c, surl.clone(), "t", sil("B", now + Duration::minutes(30))).await;
    assert_eq!(st, 200, "a pending silence counts too");
    let (st, txt) = post(&c, surl.clone(), "t", sil("C", now)).await;
    assert_eq!(st, 400);
    assert!(txt.contains("max_silences=2"), "{txt}");
    let id = serde_json::from_str::<Value>(&first).unwrap_or_default()["silenceID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let r = c
        .delete(format!("{base}/api/v2/silence/{id}"))
        .header("X-Scope-OrgID", "t")
        .send()
        .await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(200));
    clock.advance(Duration::seconds(1));
    let (st, txt) = post(&c, surl.clone(), "t", sil("C", clock.now())).await;
    assert_eq!(st, 200, "an expired silence frees its slot: {txt}");
    let big = json!({"matchers": [{"name": "alertname", "value": "q".repeat(700), "isRegex": false}],
                     "startsAt": clock.now(), "endsAt": clock.now() + Duration::hours(1),
                     "createdBy": "me", "comment": "c"});
    let (st, txt) = post(&c, surl.clone(), "u", big.to_string()).await;
    assert_eq!(st, 400);
    assert!(txt.contains("max_silence_size_bytes=600"), "{txt}");

    // The engine still serves and notifies what it accepted.
    clock.advance(Duration::seconds(30));
    let r = e.tick().await;
    let _ = r;
    assert_eq!(e.alert_views("t").map(|v| v.len()).ok(), Some(3));
    let text = {
        let mut buf = Vec::new();
        let enc = prometheus::TextEncoder::new();
        let _ = prometheus::Encoder::encode(&enc, &prometheus::gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    };
    for l in [
        "max_alerts",
        "max_silences",
        "max_request_bytes",
        "max_aggregation_groups",
    ] {
        assert!(
            text.contains(&format!(
                "fenghuo_alerting_limit_rejections_total{{limit=\"{l}\"}}"
            )),
            "{l}"
        );
    }
}

#[tokio::test]
async fn reads_do_not_create_tenants() {
    let (e, _clock) = engine(CFG);
    let base = serve(e.clone()).await;
    let c = reqwest::Client::new();
    for path in [
        "/api/v2/alerts",
        "/api/v2/alerts/groups",
        "/api/v2/silences",
        "/api/v2/silence/6f5b3c1e-2a4b-4c1d-9e2f-0a1b2c3d4e5f",
        "/api/v1/alerting/acks",
        "/api/v1/alerting/escalations",
        "/api/v1/alerting/delivery-failures",
        "/api/v1/alerting/history",
    ] {
        for i in 0..3 {
            let r = c
                .get(format!("{base}{path}"))
                .header("X-Scope-OrgID", format!("ghost-{i}"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                r.status().as_u16() == 200 || r.status().as_u16() == 404,
                "{path}: {}",
                r.status()
            );
        }
    }
    let r = c
        .delete(format!(
            "{base}/api/v2/silence/6f5b3c1e-2a4b-4c1d-9e2f-0a1b2c3d4e5f"
        ))
        .header("X-Scope-OrgID", "ghost-x")
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(r.ok(), Some(404));
    assert!(e.tenant_names().is_empty(), "{:?}", e.tenant_names());
}

/// Alert names come from whoever posts alerts: `/metrics` keeps a series for the first 500 and
/// counts the rest under `__other__`, so a sender inventing names cannot grow it without bound.
#[tokio::test]
async fn alertname_labels_in_metrics_are_capped() {
    let (e, _clock) = engine("route:\n  receiver: r\nreceivers:\n- name: r\n");
    let alerts: Vec<_> = (0..700)
        .map(|i| alert(&[("alertname", &format!("Invented{i}"))]))
        .collect();
    let errs = e.ingest_posted("anonymous", alerts).unwrap_or_default();
    assert!(errs.is_empty(), "{errs:?}");
    let families = prometheus::gather();
    let fired = families
        .iter()
        .find(|f| f.name() == "fenghuo_alerting_alerts_fired_total")
        .unwrap_or_else(|| panic!("no alerts_fired metric"));
    let names: Vec<String> = fired
        .get_metric()
        .iter()
        .flat_map(|m| {
            m.get_label()
                .iter()
                .map(|l| l.value().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        names.len() <= fenghuo_alerting::metrics::MAX_ALERTNAME_LABELS + 1,
        "{}",
        names.len()
    );
    assert!(names.iter().any(|n| n == "__other__"));
    let other = fired
        .get_metric()
        .iter()
        .find(|m| m.get_label().iter().any(|l| l.value() == "__other__"))
        .map(|m| m.get_counter().get_value())
        .unwrap_or_default();
    assert!(other >= 200.0, "{other}");
}
