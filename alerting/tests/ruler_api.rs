//! `/api/v1/rules` and `/api/v1/alerts` over HTTP: Prometheus's JSON shapes, every filter,
//! pagination, errors, a failing rule's `lastError`, and tenant isolation (`X-Scope-OrgID`).
//! Also the notifiers: alerts reach fenghuo's alert engine and an external Alertmanager.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use fenghuo_alerting::ruler::notifier::{AlertmanagerNotifier, Fanout, LocalNotifier};
use fenghuo_alerting::ruler::{
    AlertmanagerConfig, Backend, Notifier, RulerConfig, RulerOptions, RulerService, api,
};
use fenghuo_alerting::{AlertingOptions, AlertingService, ManualClock};
use fenghuo_query::{Engine, EngineOptions};
use fenghuo_storage_api::api::Appender;
use fenghuo_storage_api::memory::MemStore;
use fenghuo_storage_api::model::{PromDuration, Sample, SeriesWrite, TenantId, WriteBatch};
use parking_lot::Mutex;
use serde_json::Value;

const T0: i64 = 1_700_000_000_000;

/// Requests an Alertmanager stand-in received: tenant header and body.
type Received = Vec<(Option<String>, Value)>;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn write(store: &MemStore, tenant: &str, series: &str, v: f64) {
    let labels = fenghuo_alerting::ruler::unittest::parse_metric(series).unwrap_or_default();
    let samples = (0..200)
        .map(|i| Sample {
            t: T0 - 60_000 + i * 5_000,
            v,
        })
        .collect();
    let batch = WriteBatch {
        series: vec![SeriesWrite {
            labels,
            samples,
            ..Default::default()
        }],
        metadata: Vec::new(),
    };
    let t = TenantId::new(tenant).unwrap_or_else(|_| TenantId::default_tenant());
    assert!(store.append(&t, batch).is_ok());
}

const RULES_A: &str = r#"groups:
- name: team-a
  interval: 10s
  rules:
  - alert: HighLoad
    expr: load > 1
    for: 20s
    labels:
      severity: page
    annotations:
      summary: "load {{ $value }}"
  - record: load:sum
    expr: sum(load)
    labels:
      team: a
  - record: broken
    expr: load
    labels:
      instance: same
- name: team-a-other
  interval: 10s
  rules:
  - record: other
    expr: vector(1)
"#;

const RULES_B: &str =
    "groups:\n- name: team-b\n  interval: 10s\n  rules:\n  - alert: HighLoad\n    expr: load > 1\n";

struct Fixture {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    svc: Arc<RulerService>,
    base: String,
    file_a: String,
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

async fn fixture(notifier: Arc<dyn Notifier>) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file_a = dir.path().join("a.yml");
    let file_b = dir.path().join("b.yml");
    std::fs::write(&file_a, RULES_A).unwrap_or_default();
    std::fs::write(&file_b, RULES_B).unwrap_or_default();
    let store = Arc::new(MemStore::new());
    write(&store, "tenant-a", "load{instance=\"x\"}", 3.0);
    write(&store, "tenant-a", "load{instance=\"y\"}", 0.5);
    let mut tenants = BTreeMap::new();
    tenants.insert("tenant-a".to_string(), vec![file_a.display().to_string()]);
    tenants.insert("tenant-b".to_string(), vec![file_b.display().to_string()]);
    let cfg = RulerConfig {
        tenant_rule_files: tenants,
        external_labels: [("cluster".to_string(), "eu1".to_string())].into(),
        for_grace_period: PromDuration::from_secs(60),
        ..RulerConfig::default()
    };
    let clock = Arc::new(ManualClock::new(at(T0)));
    let svc = RulerService::start(
        RulerOptions {
            config: cfg,
            default_external_url: "http://fenghuo:9800".into(),
            run_loop: false,
        },
        Backend {
            engine: Arc::new(Engine::new(EngineOptions::default())),
            queryable: store.clone(),
            appender: store.clone(),
        },
        notifier,
        clock.clone(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Run every group through enough evaluations for restoration and `for`.
    for _ in 0..7 {
        clock.advance(Duration::seconds(10));
        svc.tick();
    }
    let base = serve(api::router(svc.clone())).await;
    Fixture {
        _dir: dir,
        clock,
        svc,
        base,
        file_a: file_a.display().to_string(),
    }
}

async fn get(url: &str, tenant: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[derive(Default)]
struct Sink(Mutex<Vec<String>>);
impl Notifier for Sink {
    fn send(&self, tenant: &TenantId, alerts: Vec<fenghuo_alerting::ruler::OutgoingAlert>) {
        self.0
            .lock()
            .extend(alerts.iter().map(|a| format!("{tenant}:{}", a.labels)));
    }
}

#[tokio::test]
async fn rules_endpoint_has_prometheus_shape_and_filters() {
    let f = fixture(Arc::new(Sink::default())).await;
    let (code, body) = get(&format!("{}/api/v1/rules", f.base), Some("tenant-a")).await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "success");
    let groups = body["data"]["groups"].as_array().cloned().unwrap_or_default();
    assert_eq!(groups.len(), 2);
    let g = &groups[0];
    assert_eq!(g["name"], "team-a");
    assert_eq!(g["file"], f.file_a.as_str());
    assert_eq!(g["interval"], 10.0);
    // Whole seconds print as Go prints a float64 in JSON: `10`, not `10.0`.
    assert_eq!(g["interval"].to_string(), "10");
    assert_eq!(g["limit"], 0);
    assert!(g["evaluationTime"].is_number());
    assert!(
        g["lastEvaluation"]
            .as_str()
            .is_some_and(|s| s.starts_with("2023-11-14T22:"))
    );
    let rules = g["rules"].as_array().cloned().unwrap_or_default();
    assert_eq!(rules.len(), 3);
    let alert = &rules[0];
    assert_eq!(alert["type"], "alerting");
    assert_eq!(alert["name"], "HighLoad");
    assert_eq!(alert["query"], "load > 1");
    assert_eq!(alert["duration"], 20.0);
    assert_eq!(alert["keepFiringFor"], 0.0);
    assert_eq!(alert["duration"].to_string(), "20");
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["health"], "ok");
    assert!(alert.get("lastError").is_none());
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["annotations"]["summary"], "load {{ $value }}");
    let alerts = alert["alerts"].as_array().cloned().unwrap_or_default();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["labels"]["instance"], "x");
    assert_eq!(alerts[0]["labels"]["alertname"], "HighLoad");
    assert_eq!(alerts[0]["annotations"]["summary"], "load 3");
    assert_eq!(alerts[0]["state"], "firing");
    assert_eq!(alerts[0]["value"], "3e+00");
    // activeAt is the evaluation slot with its nanoseconds, as Go prints a time.Time (trailing
    // zeros trimmed): the slot offset is the group's hash modulo the interval in nanoseconds.
    let group = f
        .svc
        .tenant_groups(&TenantId::new("tenant-a").unwrap_or_else(|_| TenantId::default_tenant()))
        .into_iter()
        .find(|g| g.name == "team-a")
        .unwrap_or_else(|| panic!("group"));
    let active_ns = group
        .alerting_rules()
        .next()
        .map(|r| r.active_alerts()[0].active_at)
        .unwrap_or_default();
    assert_eq!(active_ns, group.eval_timestamp_ns(active_ns));
    let t = chrono::DateTime::from_timestamp_nanos(active_ns);
    let mut want = t.format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
    while want.ends_with('0') {
        want.pop();
    }
    want = format!("{}Z", want.trim_end_matches('.'));
    assert_eq!(alerts[0]["activeAt"], want.as_str());
    let rec = &rules[1];
    assert_eq!(rec["type"], "recording");
    assert_eq!(rec["query"], "sum(load)");
    assert_eq!(rec["labels"]["team"], "a");
    let broken = &rules[2];
    assert_eq!(broken["health"], "err");
    assert_eq!(
        broken["lastError"],
        "vector contains metrics with the same labelset after applying rule labels"
    );

    // Filters.
    let q = |s: &str| format!("{}/api/v1/rules?{s}", f.base);
    let (_, b) = get(&q("type=alert"), Some("tenant-a")).await;
    assert_eq!(b["data"]["groups"].as_array().map(Vec::len), Some(1));
    assert_eq!(b["data"]["groups"][0]["rules"].as_array().map(Vec::len), Some(1));
    let (_, b) = get(&q("type=record&rule_group[]=team-a-other"), Some("tenant-a")).await;
    assert_eq!(b["data"]["groups"][0]["rules"][0]["name"], "other");
    let (_, b) = get(&q("rule_name[]=load:sum&rule_name[]=other"), Some("tenant-a")).await;
    let names: Vec<String> = b["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(names, vec!["load:sum", "other"]);
    let (_, b) = get(&q(&format!("file[]={}", f.file_a)), Some("tenant-a")).await;
    assert_eq!(b["data"]["groups"].as_array().map(Vec::len), Some(2));
    let (_, b) = get(&q("file[]=/nope.yml"), Some("tenant-a")).await;
    assert_eq!(b["data"]["groups"].as_array().map(Vec::len), Some(0));
    let (_, b) = get(&q("match[]={severity=\"page\"}"), Some("tenant-a")).await;
    assert_eq!(b["data"]["groups"][0]["rules"].as_array().map(Vec::len), Some(1));
    let (_, b) = get(&q("exclude_alerts=true"), Some("tenant-a")).await;
    assert!(b["data"]["groups"][0]["rules"][0]["alerts"].is_null());
    let (_, b) = get(&q("group_limit=1"), Some("tenant-a")).await;
    assert_eq!(b["data"]["groups"].as_array().map(Vec::len), Some(1));
    let token = b["data"]["groupNextToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(token.len(), 64);
    let (_, b) = get(
        &q(&format!("group_limit=1&group_next_token={token}")),
        Some("tenant-a"),
    )
    .await;
    assert_eq!(b["data"]["groups"][0]["name"], "team-a-other");
    assert!(b["data"].get("groupNextToken").is_none());

    // Errors.
    let (code, b) = get(&q("type=bogus"), Some("tenant-a")).await;
    assert_eq!(code, 400);
    assert_eq!(b["errorType"], "bad_data");
    assert_eq!(
        b["error"],
        "invalid parameter \"type\": not supported value \"bogus\""
    );
    let (code, _) = get(&q("group_limit=0"), Some("tenant-a")).await;
    assert_eq!(code, 400);
    let (code, _) = get(&q("group_next_token=abc"), Some("tenant-a")).await;
    assert_eq!(code, 400);
    let (code, _) = get(&q("match[]=up{"), Some("tenant-a")).await;
    assert_eq!(code, 400);
    let (code, _) = get(&q("exclude_alerts=maybe"), Some("tenant-a")).await;
    assert_eq!(code, 400);
    let (code, _) = get(&q(""), Some("bad tenant!")).await;
    assert_eq!(code, 400);
    drop(f.clock);
}

#[tokio::test]
async fn tenants_see_only_their_rules_and_alerts() {
    let f = fixture(Arc::new(Sink::default())).await;
    let (_, b) = get(&format!("{}/api/v1/rules", f.base), Some("tenant-b")).await;
    let groups = b["data"]["groups"].as_array().cloned().unwrap_or_default();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["name"], "team-b");
    // Tenant b has no `load` data: its identical rule sees nothing of tenant a's.
    assert_eq!(groups[0]["rules"][0]["alerts"].as_array().map(Vec::len), Some(0));
    assert_eq!(groups[0]["rules"][0]["state"], "inactive");
    let (_, a) = get(&format!("{}/api/v1/alerts", f.base), Some("tenant-a")).await;
    let alerts = a["data"]["alerts"].as_array().cloned().unwrap_or_default();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["labels"]["instance"], "x");
    let (_, b) = get(&format!("{}/api/v1/alerts", f.base), Some("tenant-b")).await;
    assert_eq!(b["data"]["alerts"].as_array().map(Vec::len), Some(0));
    let (_, none) = get(&format!("{}/api/v1/rules", f.base), None).await;
    assert_eq!(none["data"]["groups"].as_array().map(Vec::len), Some(0));
    assert_eq!(f.svc.all_groups().len(), 3);
}

#[tokio::test]
async fn alerts_reach_the_alert_engine_and_an_external_alertmanager() {
    // A stand-in Alertmanager recording what it receives.
    let received: Arc<Mutex<Received>> = Arc::default();
    let r2 = received.clone();
    let am = axum::Router::new().route(
        "/api/v2/alerts",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
            let r = r2.clone();
            async move {
                let t = headers
                    .get("X-Scope-OrgID")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                r.lock().push((t, body.0));
                "ok"
            }
        }),
    );
    let am_url = serve(am).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(ManualClock::new(at(T0)));
    let engine = AlertingService::start(
        AlertingOptions {
            data_dir: dir.path().to_path_buf(),
            tick_interval: None,
            ..AlertingOptions::default()
        },
        clock.clone(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let ext: BTreeMap<String, String> = [("cluster".to_string(), "eu1".to_string())].into();
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let external = AlertmanagerNotifier::start(
        vec![AlertmanagerConfig {
            urls: vec![am_url],
            send_tenant_header: true,
            ..AlertmanagerConfig::default()
        }],
        100,
        ext.clone(),
        stop_rx,
    );
    let notifier = Arc::new(Fanout(vec![
        Arc::new(LocalNotifier::new(engine.clone(), true, ext)),
        external,
    ]));
    let f = fixture(notifier).await;
    // The external Alertmanager got the firing alert with external labels and the tenant.
    let mut got = Vec::new();
    for _ in 0..100 {
        got = received.lock().clone();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(got.len(), 1, "{got:?}");
    let (tenant, body) = &got[0];
    assert_eq!(tenant.as_deref(), Some("tenant-a"));
    let a = &body[0];
    assert_eq!(a["labels"]["alertname"], "HighLoad");
    assert_eq!(a["labels"]["cluster"], "eu1");
    assert_eq!(a["annotations"]["summary"], "load 3");
    assert!(a["startsAt"].is_string() && a["endsAt"].is_string());
    assert!(
        a["generatorURL"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://fenghuo:9800/graph?g0.expr="))
    );
    // fenghuo's own alert engine holds it for the same tenant only.
    let base = serve(engine.router()).await;
    let (_, alerts) = get(&format!("{base}/api/v2/alerts"), Some("tenant-a")).await;
    let list = alerts.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1, "{alerts}");
    assert_eq!(list[0]["labels"]["cluster"], "eu1");
    let (_, other) = get(&format!("{base}/api/v2/alerts"), Some("tenant-b")).await;
    assert_eq!(other.as_array().map(Vec::len), Some(0));
    drop(f.svc);
}
