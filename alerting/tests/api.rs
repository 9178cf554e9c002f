//! The HTTP API served in-process on 127.0.0.1: Alertmanager v2 shapes and status codes, tenant
//! isolation by `X-Scope-OrgID`, bad input answered with 400, generic ingestion, acks, history,
//! and state (silences, notification log, acks) surviving a restart on RocksDB without re-sending.

mod common;

use std::sync::Arc;

use chrono::Duration;
use common::*;
use fenghuo_alerting::api::{ApiState, fenghuo, v2};
use fenghuo_alerting::store::RocksStateStore;
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
"#;

#[tokio::test]
async fn v2_alerts_silences_and_tenants() {
    let (e, clock) = engine(CFG);
    let base = serve(e.clone()).await;
    let c = reqwest::Client::new();
    let now = t0();
    // Post to tenant A.
    let body = json!([{"labels": {"alertname": "Up", "job": "api"}, "annotations": {"s": "x"}, "startsAt": now.to_rfc3339()}]);
    let r = c
        .post(format!("{base}/api/v2/alerts"))
        .header("X-Scope-OrgID", "team-a")
        .json(&body)
        .send()
        .await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(200));
    // Invalid alerts: 400 naming the problem; valid ones in the same batch are still accepted.
    let bad = json!([{"labels": {}}, {"labels": {"alertname": "Ok2"}}]);
    let r = c
        .post(format!("{base}/api/v2/alerts"))
        .header("X-Scope-OrgID", "team-a")
        .json(&bad)
        .send()
        .await;
    let (st, txt) = match r {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(st, 400);
    assert!(txt.contains("at least one label pair required"), "{txt}");
    let r = c
        .post(format!("{base}/api/v2/alerts"))
        .body("{not json")
        .send()
        .await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(400));
    // Tenant A sees its alerts with Alertmanager's shape; tenant B and the default tenant see none.
    let get = |tenant: &'static str, path: &'static str| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let mut rq = c.get(format!("{base}{path}"));
            if !tenant.is_empty() {
                rq = rq.header("X-Scope-OrgID", tenant);
            }
            let r = rq.send().await.unwrap_or_else(|e| panic!("{e}"));
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or_default())
        }
    };
    let (s, a) = get("team-a", "/api/v2/alerts").await;
    assert_eq!(s, 200);
    assert_eq!(a.as_array().map(|a| a.len()), Some(2));
    let up = a
        .as_array()
        .and_then(|a| a.iter().find(|x| x["labels"]["alertname"] == "Up"))
        .cloned()
        .unwrap_or_default();
    for k in [
        "annotations",
        "endsAt",
        "fingerprint",
        "receivers",
        "startsAt",
        "status",
        "updatedAt",
        "labels",
    ] {
        assert!(up.get(k).is_some(), "missing {k} in {up}");
    }
    assert_eq!(up["status"]["state"], "active");
    assert_eq!(up["receivers"][0]["name"], "r");
    assert_eq!(up["startsAt"], "2024-03-04T05:06:07.000Z");
    assert_eq!(
        up["endsAt"], "2024-03-04T05:11:07.000Z",
        "resolve_timeout default 5m"
    );
    assert_eq!(get("team-b", "/api/v2/alerts").await.1, json!([]));
    assert_eq!(get("", "/api/v2/alerts").await.1, json!([]));
    // Silence in tenant A.
    let sil = json!({"matchers": [{"name": "alertname", "value": "Up", "isRegex": false}],
        "startsAt": now.to_rfc3339(), "endsAt": (now + Duration::hours(1)).to_rfc3339(), "createdBy": "me", "comment": "c"});
    let r = c
        .post(format!("{base}/api/v2/silences"))
        .header("X-Scope-OrgID", "team-a")
        .json(&sil)
        .send()
        .await;
    let v: Value = match r {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(e) => panic!("{e}"),
    };
    let id = v["silenceID"].as_str().unwrap_or_default().to_string();
    assert_eq!(id.len(), 36);
    let (_, a) = get("team-a", "/api/v2/alerts?filter=alertname%3D%22Up%22").await;
    assert_eq!(a[0]["status"]["state"], "suppressed");
    assert_eq!(a[0]["status"]["silencedBy"][0], id.as_str());
    let (_, a) = get("team-a", "/api/v2/alerts?silenced=false").await;
    assert_eq!(a.as_array().map(|a| a.len()), Some(1));
    // Tenant B cannot see or expire tenant A's silence.
    assert_eq!(get("team-b", "/api/v2/silences").await.1, json!([]));
    let r = c
        .delete(format!("{base}/api/v2/silence/{id}"))
        .header("X-Scope-OrgID", "team-b")
        .send()
        .await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(404));
    // Invalid matcher and a silence matching everything are rejected.
    let (s, _) = get("team-a", "/api/v2/silences?filter=%7Bfoo").await;
    assert_eq!(s, 400);
    let mut all = sil.clone();
    all["matchers"] = json!([{"name": "a", "value": ".*", "isRegex": true}]);
    let r = c.post(format!("{base}/api/v2/silences")).json(&all).send().await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(400));
    // Expire: 200; the state becomes expired once the clock moves on.
    let r = c
        .delete(format!("{base}/api/v2/silence/{id}"))
        .header("X-Scope-OrgID", "team-a")
        .send()
        .await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(200));
    clock.advance(Duration::seconds(1));
    let (s, one) = get(
        "team-a",
        Box::leak(format!("/api/v2/silence/{id}").into_boxed_str()),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(one["status"]["state"], "expired");
    let (s, _) = get("team-a", "/api/v2/silence/not-a-uuid").await;
    assert_eq!(s, 422);
    // Groups, status, receivers.
    let (_, g) = get("team-a", "/api/v2/alerts/groups").await;
    assert_eq!(g.as_array().map(|a| a.len()), Some(2));
    assert_eq!(g[0]["receiver"]["name"], "r");
    let (_, st) = get("", "/api/v2/status").await;
    assert_eq!(st["cluster"]["status"], "disabled");
    assert!(
        st["config"]["original"]
            .as_str()
            .unwrap_or_default()
            .contains("receiver: r")
    );
    let (_, rc) = get("", "/api/v2/receivers").await;
    assert_eq!(rc, json!([{"name": "r"}]));
    // Bad tenant id.
    let (s, _) = get("../x", "/api/v2/alerts").await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn generic_ingest_ack_history_stats() {
    let (e, clock) = engine(CFG);
    let base = serve(e.clone()).await;
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{base}/api/v1/alerting/ingest"))
        .json(&json!({"name": "BackupFailed", "severity": "critical", "summary": "nightly backup failed", "labels": {"host": "db1"}}))
        .send()
        .await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(200));
    let r = c
        .post(format!("{base}/api/v1/alerting/ingest"))
        .json(&json!({"severity": "x"}))
        .send()
        .await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(400));
    clock.advance(Duration::seconds(30));
    e.tick().await;
    let groups = e.group_views("anonymous").unwrap_or_default();
    let key = groups[0].key.clone();
    clock.advance(Duration::minutes(2));
    let r = c
        .post(format!("{base}/api/v1/alerting/acks"))
        .json(&json!({"groupKey": key, "by": "alice", "comment": "on it", "ttl": "1h"}))
        .send()
        .await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(200));
    // The signed link works only with the right token.
    let link = e.ack_url("anonymous", &key).replace("http://fh.test:9093", &base);
    let r = c.get(link.replace("token=", "token=bad")).send().await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(403));
    // GET only shows the confirmation form (a chat client's link preview must not ack).
    let page = c
        .get(&link)
        .send()
        .await
        .ok()
        .map(|r| r.text())
        .unwrap_or_else(|| panic!())
        .await
        .unwrap_or_default();
    assert!(page.contains("<form method=\"post\""), "{page}");
    assert_eq!(
        e.acks("anonymous").map(|a| a.len()).ok(),
        Some(1),
        "GET did not ack"
    );
    let r = c
        .post(&link)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("by=bob&ttl=30m")
        .send()
        .await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(200));
    let r = c.post(&link).body("by=").send().await;
    assert_eq!(
        r.map(|r| r.status().as_u16()).ok(),
        Some(400),
        "an ack needs a name"
    );
    let acks: Value = c
        .get(format!("{base}/api/v1/alerting/acks"))
        .send()
        .await
        .ok()
        .map(|r| r.json())
        .unwrap_or_else(|| panic!())
        .await
        .unwrap_or_default();
    assert_eq!(acks["data"][0]["by"], "bob");
    // Links carry their expiry under the signature: a changed expiry is a bad signature, and a
    // link past its expiry (7 days) is refused even with the right token.
    let later = link.replace("expires=", "expires=9");
    let r = c.get(&later).send().await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(403));
    clock.advance(Duration::days(8));
    let r = c.post(&link).body("by=carol").send().await.ok();
    assert_eq!(r.as_ref().map(|r| r.status().as_u16()), Some(403));
    let text = match r {
        Some(r) => r.text().await.unwrap_or_default(),
        None => String::new(),
    };
    assert!(text.contains("expired"), "{text}");
    clock.advance(-Duration::days(8));
    // Resolve, then look at history and stats.
    let _ = c
        .post(format!("{base}/api/v1/alerting/ingest"))
        .json(&json!({"name": "BackupFailed", "severity": "critical", "labels": {"host": "db1"}, "status": "resolved"}))
        .send()
        .await;
    clock.advance(Duration::minutes(5));
    e.tick().await;
    let h: Value = c
        .get(format!(
            "{base}/api/v1/alerting/history?start=2024-03-04T00:00:00Z&end=2024-03-05T00:00:00Z"
        ))
        .send()
        .await
        .ok()
        .map(|r| r.json())
        .unwrap_or_else(|| panic!())
        .await
        .unwrap_or_default();
    let kinds: Vec<&str> = h["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, vec!["fired", "acked", "acked", "resolved"], "{h}");
    let s: Value = c
        .get(format!(
            "{base}/api/v1/alerting/stats?start=2024-03-04T00:00:00Z&end=2024-03-05T00:00:00Z"
        ))
        .send()
        .await
        .ok()
        .map(|r| r.json())
        .unwrap_or_else(|| panic!())
        .await
        .unwrap_or_default();
    assert_eq!(s["data"]["fired"], 1);
    assert_eq!(s["data"]["acks"], 2);
    assert_eq!(
        s["data"]["mtta_seconds"], 150.0,
        "acked 2m30s after firing (first ack)"
    );
    assert_eq!(s["data"]["by_severity"][0]["name"], "critical");
    assert_eq!(s["data"]["resolved"], 1);
    assert_eq!(
        s["data"]["mttr_seconds"], 150.0,
        "resolved when the ingest said so"
    );
    assert_eq!(s["data"]["by_alertname"][0]["name"], "BackupFailed");
    assert_eq!(s["data"]["by_alertname"][0]["fired"], 1);
    // Receiver "r" has no integrations, so nothing was notified (by_receiver: unit tests).
    assert_eq!(s["data"]["by_receiver"], json!([]));
    assert_eq!(s["data"]["noisiest"][0]["name"], "BackupFailed");
    // A range that ends before anything happened counts nothing.
    let s: Value = c
        .get(format!(
            "{base}/api/v1/alerting/stats?start=2024-03-01T00:00:00Z&end=2024-03-02T00:00:00Z"
        ))
        .send()
        .await
        .ok()
        .map(|r| r.json())
        .unwrap_or_else(|| panic!())
        .await
        .unwrap_or_default();
    assert_eq!(s["data"]["fired"], 0, "{s}");
    assert!(s["data"]["mtta_seconds"].is_null());
    // Preview a template.
    let p: Value = c
        .post(format!("{base}/api/v1/alerting/templates/preview"))
        .json(&json!({"template": "{{status}} {{#each alerts}}{{labels.alertname}}{{/each}}"}))
        .send()
        .await
        .ok()
        .map(|r| r.json())
        .unwrap_or_else(|| panic!())
        .await
        .unwrap_or_default();
    assert_eq!(p["data"]["output"], "firing TestAlert");
    let r = c
        .post(format!("{base}/api/v1/alerting/templates/preview"))
        .json(&json!({"template": "{{#if}}"}))
        .send()
        .await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(400));
}

#[tokio::test]
async fn restart_keeps_state_and_does_not_resend() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (sink, url) = sink().await;
    let cfg = format!(
        "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 30s\nreceivers:\n- name: r\n  webhook_configs: [{{url: '{url}/h'}}]\n"
    );
    let open = || -> Arc<dyn fenghuo_alerting::store::AlertStateStore> {
        Arc::new(RocksStateStore::open(dir.path()).unwrap_or_else(|e| panic!("{e}")))
    };
    let sil_id;
    {
        let (e, clock) = engine_with(&cfg, open());
        let _ = e.ingest_posted("t1", vec![alert(&[("alertname", "A")])]);
        let _ = e.ingest_posted("t1", vec![alert(&[("alertname", "Pending")])]);
        clock.advance(Duration::seconds(30));
        // Only A's group is due... both are due at 30s; silence Pending's first so it stays pending.
        sil_id = e
            .set_silence(
                "t1",
                fenghuo_alerting::silence::Silence {
                    id: String::new(),
                    matchers: vec![fenghuo_alerting::silence::SilenceMatcher {
                        name: "alertname".into(),
                        value: "Pending".into(),
                        is_regex: false,
                        is_equal: true,
                    }],
                    starts_at: t0(),
                    ends_at: t0() + Duration::minutes(10),
                    updated_at: t0(),
                    created_by: "me".into(),
                    comment: "c".into(),
                    annotations: Default::default(),
                },
            )
            .unwrap_or_default();
        e.tick().await;
        assert_eq!(sink.requests.lock().len(), 1);
        let _ = e.flush_state();
    }
    // "Restart": a new engine on the same RocksDB directory, later.
    let (e, clock) = engine_with(&cfg, open());
    clock.advance(Duration::minutes(1));
    assert!(
        e.silence("t1", &sil_id).ok().flatten().is_some(),
        "silence survived"
    );
    assert_eq!(
        e.alert_views("t1").map(|v| v.len()).unwrap_or(0),
        2,
        "alerts survived"
    );
    e.tick().await;
    assert_eq!(
        sink.requests.lock().len(),
        1,
        "A was not re-sent after the restart"
    );
    // The pending (silenced) group is delivered once the silence ends.
    clock.advance(Duration::minutes(10));
    e.tick().await;
    let reqs = sink.requests.lock().clone();
    assert_eq!(reqs.len(), 2);
    assert!(String::from_utf8_lossy(&reqs[1].body).contains("Pending"));
}

#[tokio::test]
async fn hostile_input_gets_4xx_and_never_panics() {
    let (e, _) = engine(CFG);
    let base = serve(e.clone()).await;
    let c = reqwest::Client::new();
    let posts: &[(&str, &str)] = &[
        ("/api/v2/alerts", "{}"),
        (
            "/api/v2/alerts",
            "[{\"labels\":{\"a\":\"b\"},\"startsAt\":\"9999-12-31T23:59:59Z\",\"endsAt\":\"0001-01-02T00:00:00Z\"}]",
        ),
        ("/api/v2/alerts", "[{\"labels\":{\"a\":1}}]"),
        ("/api/v2/silences", "{\"matchers\":[],\"startsAt\":\"x\"}"),
        (
            "/api/v2/silences",
            "{\"matchers\":[{\"name\":\"a\",\"value\":\"(\",\"isRegex\":true}],\"startsAt\":\"2024-03-04T05:06:07Z\",\"endsAt\":\"9999-12-31T23:59:59Z\",\"createdBy\":\"x\",\"comment\":\"c\"}",
        ),
        ("/api/v1/alerting/ingest", "[{\"name\":\"\"}]"),
        (
            "/api/v1/alerting/ingest",
            "[{\"name\":\"a\",\"startsAt\":\"never\"}]",
        ),
        (
            "/api/v1/alerting/acks",
            "{\"groupKey\":\"nope\",\"by\":\"x\",\"ttl\":\"99999999y\"}",
        ),
        ("/api/v1/alerting/acks", "{\"groupKey\":\"nope\",\"by\":\"x\"}"),
        (
            "/api/v1/alerting/templates/preview",
            "{\"template\":\"{{> missing}}\"}",
        ),
        ("/api/v1/alerting/receivers/nope/test", ""),
        ("/api/v1/alerting/routes/test", "{\"labels\":[]}"),
    ];
    for (path, body) in posts {
        let r = c
            .post(format!("{base}{path}"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
        assert!((400..500).contains(&status), "POST {path} {body} -> {status}");
    }
    for q in [
        "/api/v2/alerts?active=maybe",
        "/api/v2/alerts?receiver=(",
        "/api/v2/alerts/groups?filter=a%3D~%22(%22",
        "/api/v1/alerting/history?end=-99999999999999999",
        "/api/v1/alerting/history?start=2024-01-02T00:00:00Z&end=2024-01-01T00:00:00Z",
        "/api/v1/alerting/history?kind=bogus",
        "/api/v1/alerting/stats?start=garbage",
    ] {
        let r = c.get(format!("{base}{q}")).send().await;
        let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
        assert!((400..500).contains(&status), "GET {q} -> {status}");
    }
    // The engine still works.
    e.tick().await;
    let r = c.get(format!("{base}/api/v2/status")).send().await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(200));
}
