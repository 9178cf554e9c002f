//! A real Alertmanager (Debian `prometheus-alertmanager`) and fenghuo render the same Go templates
//! for the same alerts. Alertmanager gets the alerts of `tests/testdata/alerting/gotemplate/`
//! (times shifted to now) over its API, renders the templates into the text part, the HTML part
//! and the Subject of an email to a real SMTP listener; fenghuo renders the same template text
//! against the same data; both must be equal section by section (`email.default.html`, fenghuo's
//! own layout, must carry the same text and links). Only what Alertmanager 0.25 supports is sent
//! to it (its function set predates `trimSpace`, `date`, `tz`, `toJson`, ...; those are covered
//! by the goldens in `gotemplate.rs`). Fails when the binaries are missing
//! (`apt-get install -y prometheus-alertmanager python3-aiosmtpd`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fenghuo_alerting::model::{Alert, LabelSet};
use fenghuo_alerting::template::{Escape, NotificationData, Templates};
use serde::Deserialize;
use serde_json::{Value, json};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/testdata/alerting")
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct CaseAlert {
    labels: LabelSet,
    annotations: LabelSet,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    #[serde(rename = "generatorURL")]
    generator_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaseData {
    name: String,
    receiver: String,
    now: DateTime<Utc>,
    group_labels: LabelSet,
    alerts: Vec<CaseAlert>,
}

#[derive(Deserialize)]
struct CaseTemplate {
    name: String,
    html: bool,
    src: String,
}

#[derive(Deserialize)]
struct Cases {
    data: Vec<CaseData>,
    templates: Vec<CaseTemplate>,
}

/// Case templates Alertmanager 0.25 can parse (and that do not redefine shared definitions).
fn supported(name: &str) -> bool {
    let unsupported = [
        "def:slack.default.color",
        "def:discord.default.content",
        "list-md",
        "kv-print",
        "kv-methods",
        "funcs-string",
        "funcs-time",
        "funcs-json",
        "funcs-misc",
        "data-json",
        "define-local",
        "missing-field-error",
        "html-typed",
    ];
    !unsupported.contains(&name)
}

/// Templates only this test sends (Alertmanager 0.25's own function set, incl. its `title`).
fn live_only() -> Vec<(String, bool, String)> {
    vec![(
        "funcs-025".into(),
        false,
        r#"{{ toUpper .Status }} {{ toLower "ÄBC" }} {{ title "hELLO wORLD-x o'neil" }} {{ join "-" (stringSlice "a" "b" "c") }} {{ match "^Disk" .CommonLabels.alertname }} {{ reReplaceAll `(\w+)-(\d)` "$2.$1" "node-1 node-2" }} {{ safeHtml "<b>" }} {{ .GroupLabels.SortedPairs.Values | join "," }} {{ (.CommonLabels.Remove .GroupLabels.Names).Values | join "," }}"#.into(),
    )]
}

const MARK: &str = "@@@";

fn section_text(templates: &[(String, bool, String)], html: bool) -> String {
    templates
        .iter()
        .filter(|t| t.1 == html)
        .map(|(n, _, src)| format!("\n{MARK}{n}{MARK}\n{src}"))
        .collect()
}

fn split_sections(s: &str) -> Vec<(String, String)> {
    let s = s.replace("\r\n", "\n");
    let mut out = Vec::new();
    for chunk in s.split(&format!("\n{MARK}")).skip(1) {
        if let Some((name, body)) = chunk.split_once(&format!("{MARK}\n")) {
            out.push((name.to_string(), body.to_string()));
        }
    }
    out
}

/// Alertmanager's `AlertSlice` order: `job`, then `instance` (present first), then the label set.
fn am_order(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    for k in ["job", "instance"] {
        match (a.labels.get(k), b.labels.get(k)) {
            (None, None) => continue,
            (None, Some(_)) => return std::cmp::Ordering::Greater,
            (Some(_), None) => return std::cmp::Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    let flat = |l: &LabelSet| {
        l.iter()
            .flat_map(|(k, v)| [k.clone(), v.clone()])
            .collect::<Vec<_>>()
    };
    flat(&a.labels).cmp(&flat(&b.labels))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("port: {e}"))
}

const PARSE_MAIL: &str = r#"
import email, glob, json, sys
from email import policy
out = []
for f in sorted(glob.glob(sys.argv[1] + "/*.eml")):
    m = email.message_from_bytes(open(f, "rb").read(), policy=policy.default)
    parts = {}
    for p in m.walk():
        if p.get_content_type() in ("text/plain", "text/html"):
            parts[p.get_content_type()] = p.get_content()
    out.append({"to": str(m["To"]), "subject": str(m["Subject"]),
                "text": parts.get("text/plain", ""), "html": parts.get("text/html", "")})
print(json.dumps(out))
"#;

fn mails(dir: &std::path::Path) -> Vec<Value> {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(PARSE_MAIL)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap_or_default()
}

fn html_digest(html: &str) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut links = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        text.push_str(&rest[..i]);
        text.push(' ');
        let end = rest[i..].find('>').map(|j| i + j + 1).unwrap_or(rest.len());
        let tag = &rest[i..end];
        if let Some(h) = tag.find("href=\"") {
            let v = &tag[h + 6..];
            links.push(v[..v.find('"').unwrap_or(v.len())].to_string());
        }
        rest = &rest[end..];
        if tag.starts_with("<style") {
            rest = rest.find("</style>").map(|j| &rest[j..]).unwrap_or("");
        }
    }
    text.push_str(rest);
    (text.split_whitespace().collect::<Vec<_>>().join(" "), links)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_and_fenghuo_render_the_same() {
    let cases: Cases = serde_json::from_str(
        &std::fs::read_to_string(testdata().join("gotemplate/cases.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("cases: {e}"));
    let mut templates: Vec<(String, bool, String)> = cases
        .templates
        .iter()
        .filter(|t| supported(&t.name))
        .map(|t| (t.name.clone(), t.html, t.src.clone()))
        .collect();
    templates.extend(live_only());
    let text_src = section_text(&templates, false);
    let html_src = section_text(&templates, true);
    let subject_src = r#"{{ template "email.default.subject" . }}"#;

    // A real SMTP listener.
    let mail_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut smtp = Command::new("/usr/bin/python3")
        .arg(testdata().join("smtp_sink.py"))
        .arg(mail_dir.path())
        .arg("plain")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 missing (apt-get install -y python3-aiosmtpd): {e}"));
    let mut line = String::new();
    let _ = BufReader::new(smtp.stdout.take().unwrap_or_else(|| panic!("stdout"))).read_line(&mut line);
    let smtp_port: u16 = line
        .trim()
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("SMTP sink did not start: {line:?}"));
    let _smtp = Proc(smtp);

    // A real Alertmanager with one email receiver per data set.
    let recv = |name: &str, to: &str| {
        json!({"name": name, "email_configs": [{
            "to": to, "send_resolved": true, "headers": {"Subject": subject_src},
            "text": text_src, "html": html_src,
        }]})
    };
    let config = json!({
        "global": {"smtp_smarthost": format!("127.0.0.1:{smtp_port}"), "smtp_from": "am@example.org",
                   "smtp_require_tls": false},
        "route": {"receiver": "default", "group_by": ["job"], "group_wait": "1s", "group_interval": "2s",
                  "repeat_interval": "1h", "routes": [
            {"matchers": ["alertname=\"DiskFull\""], "receiver": "ops.team (mail)", "group_by": ["alertname", "cluster"]},
            {"matchers": ["alertname=\"磁盘满\""], "receiver": "team-磁盘", "group_by": []},
        ]},
        "receivers": [recv("default", "default@example.org"), recv("ops.team (mail)", "ops@example.org"),
                      recv("team-磁盘", "team@example.org")],
    });
    let am_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cfg_path = am_dir.path().join("alertmanager.yml");
    std::fs::write(&cfg_path, serde_yaml::to_string(&config).unwrap_or_default()).unwrap_or_default();
    let port = free_port();
    let external = "http://am.example:9093/am";
    let am = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", cfg_path.display()))
        .arg(format!("--storage.path={}", am_dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--web.external-url={external}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(am_dir.path().join("am.log"))
                .map(Stdio::from)
                .unwrap_or(Stdio::null()),
        )
        .spawn()
        .unwrap_or_else(|e| {
            panic!("prometheus-alertmanager missing (apt-get install -y prometheus-alertmanager): {e}")
        });
    let _am = Proc(am);
    // Alertmanager serves under the external URL's path.
    let base = format!("http://127.0.0.1:{port}/am");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !client
        .get(format!("{base}/-/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            Instant::now() < deadline,
            "Alertmanager did not become ready: {}",
            std::fs::read_to_string(am_dir.path().join("am.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The alerts, shifted so each case's `now` is the real now (times to the millisecond).
    let now = Utc::now();
    let ms = |t: DateTime<Utc>| DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t);
    let shifted: Vec<(&CaseData, Vec<CaseAlert>)> = cases
        .data
        .iter()
        .map(|d| {
            let off = now - d.now;
            let alerts = d
                .alerts
                .iter()
                .map(|a| CaseAlert {
                    starts_at: ms(a.starts_at + off),
                    ends_at: ms(a.ends_at + off),
                    ..a.clone()
                })
                .collect();
            (d, alerts)
        })
        .collect();
    let post = |alerts: Vec<Value>| {
        let client = client.clone();
        let url = format!("{base}/api/v2/alerts");
        async move {
            let r = client
                .post(url)
                .json(&alerts)
                .send()
                .await
                .unwrap_or_else(|e| panic!("post: {e}"));
            assert!(r.status().is_success(), "post: {}", r.status());
        }
    };
    let to_json = |a: &CaseAlert, ends: DateTime<Utc>| {
        json!({"labels": a.labels, "annotations": a.annotations, "startsAt": a.starts_at,
               "endsAt": ends, "generatorURL": a.generator_url})
    };
    // Phase 1: everything fires (Alertmanager sends nothing for a group that never fired).
    let later = now + chrono::Duration::hours(2);
    post(
        shifted
            .iter()
            .flat_map(|(_, a)| a.iter().map(|a| to_json(a, later)))
            .collect(),
    )
    .await;
    let wait_for = |n: usize| {
        let dir = mail_dir.path().to_path_buf();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let m = mails(&dir);
                if m.len() >= n {
                    return m;
                }
                assert!(Instant::now() < deadline, "only {} of {n} mails arrived", m.len());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_for(3).await;
    // Phase 2: the case's resolved alerts resolve.
    post(
        shifted
            .iter()
            .flat_map(|(_, a)| {
                a.iter()
                    .filter(|a| a.ends_at <= now)
                    .map(|a| to_json(a, a.ends_at))
            })
            .collect(),
    )
    .await;
    let all = wait_for(5).await;

    let mut fh = Templates::load(&[], std::path::Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    let text_t = fh.add_go("text", &text_src).unwrap_or_else(|e| panic!("{e}"));
    let html_t = fh.add_go("html", &html_src).unwrap_or_else(|e| panic!("{e}"));
    let subj_t = fh
        .add_go("subject", subject_src)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut compared = 0;
    for (d, alerts) in &shifted {
        let to = match d.name.as_str() {
            "mixed" => "ops@example.org",
            "firing-one" => "team@example.org",
            _ => "default@example.org",
        };
        let mail = all
            .iter()
            .rev()
            .find(|m| m["to"].as_str() == Some(to))
            .unwrap_or_else(|| panic!("no mail for {}", d.name));
        let mut alerts: Vec<Alert> = alerts
            .iter()
            .map(|a| Alert {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: a.starts_at,
                ends_at: a.ends_at,
                generator_url: a.generator_url.clone(),
                updated_at: now,
                timeout: false,
            })
            .collect();
        alerts.sort_by(am_order);
        let data = NotificationData::build(
            &d.receiver,
            "{}",
            &d.group_labels,
            &alerts,
            Utc::now(),
            external,
            "anonymous",
            "",
        );
        let render = |t: &str, e| {
            fh.render(t, e, &data)
                .unwrap_or_else(|e| panic!("{}: {e}", d.name))
        };
        assert_eq!(
            mail["subject"].as_str(),
            Some(render(&subj_t, Escape::None).as_str()),
            "{}",
            d.name
        );
        for (part, tname, esc) in [("text", &text_t, Escape::None), ("html", &html_t, Escape::Html)] {
            let theirs = split_sections(mail[part].as_str().unwrap_or_default());
            let ours = split_sections(&render(tname, esc));
            assert_eq!(theirs.len(), ours.len(), "{} {part}: sections", d.name);
            for ((name, a), (_, f)) in theirs.iter().zip(ours.iter()) {
                if name == "html-email-default" {
                    assert_eq!(html_digest(a), html_digest(f), "{}/{name}", d.name);
                } else {
                    assert_eq!(a, f, "{}/{name}", d.name);
                }
                compared += 1;
            }
        }
    }
    assert!(compared > 100, "only {compared} sections compared");
}

/// Where Alertmanager reports `unprocessed`: in its `alertmanager_alerts{state}` gauge before the
/// pipeline saw the alert; its API shows the state computed at query time (`active`) and accepts
/// `unprocessed=false` without filtering. fenghuo does the same (`unprocessed.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_reports_unprocessed_in_its_gauge_only() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cfg = dir.path().join("alertmanager.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: r\n  group_wait: 10m\nreceivers:\n- name: r\n",
    )
    .unwrap_or_default();
    let port = free_port();
    let am = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("prometheus-alertmanager missing: {e}"));
    let _am = Proc(am);
    let base = format!("http://127.0.0.1:{port}");
    let c = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c
        .get(format!("{base}/-/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "Alertmanager did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = c
        .post(format!("{base}/api/v2/alerts"))
        .json(&json!([{"labels": {"alertname": "A"}}]))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(r.ok(), Some(200));
    let metrics = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default();
    assert!(
        metrics.contains("alertmanager_alerts{state=\"unprocessed\"} 1"),
        "{metrics}"
    );
    let alerts: Value = c
        .get(format!("{base}/api/v2/alerts?unprocessed=false"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(alerts[0]["status"]["state"], "active", "{alerts}");
}

/// The JSON shape of a value: object keys and value types, recursively (first array element).
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                // Fields newer Alertmanagers added (fenghuo follows the current API).
                .filter(|(k, _)| {
                    !["mutedBy", "routeLabels", "annotations"].contains(&k.as_str())
                        || k.as_str() == "annotations" && m.contains_key("labels")
                })
                .map(|(k, x)| (k.clone(), shape(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

/// Alertmanager API v2 requests answered by a real Alertmanager and by fenghuo: same status
/// codes and JSON shapes, including go-openapi's error objects for malformed bodies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_v2_status_codes_and_shapes_match_alertmanager() {
    let cfg_text = "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 10m\nreceivers:\n- name: r\n- name: other\n";
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cfg = dir.path().join("alertmanager.yml");
    std::fs::write(&cfg, cfg_text).unwrap_or_default();
    let port = free_port();
    let am = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("prometheus-alertmanager missing: {e}"));
    let _am = Proc(am);
    let am_base = format!("http://127.0.0.1:{port}");
    // fenghuo's API in-process on the same config.
    let store = std::sync::Arc::new(fenghuo_alerting::store::MemoryStateStore::default());
    let loaded = fenghuo_alerting::config::load_str(cfg_text, std::path::Path::new("."))
        .unwrap_or_else(|e| panic!("{e}"));
    let engine = fenghuo_alerting::engine::Engine::new(
        std::sync::Arc::new(fenghuo_alerting::SystemClock),
        store,
        loaded,
        fenghuo_alerting::engine::EngineOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let st = fenghuo_alerting::api::ApiState { engine };
    let app = fenghuo_alerting::api::v2::router(st.clone()).merge(fenghuo_alerting::api::fenghuo::router(st));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let fh_base = format!("http://{}", l.local_addr().unwrap_or_else(|e| panic!("{e}")));
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    let c = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c
        .get(format!("{am_base}/-/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "Alertmanager did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let call = |base: String, method: &'static str, path: String, body: Option<String>| {
        let c = c.clone();
        async move {
            let mut rq = match method {
                "POST" => c.post(format!("{base}{path}")),
                "DELETE" => c.delete(format!("{base}{path}")),
                _ => c.get(format!("{base}{path}")),
            };
            if let Some(b) = body {
                rq = rq.header("Content-Type", "application/json").body(b);
            }
            let r = rq.send().await.unwrap_or_else(|e| panic!("{e}"));
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
            )
        }
    };
    let far = "2099-01-01T00:00:00Z";
    let sil = |matchers: Value, extra: Value| {
        let mut v = json!({"matchers": matchers, "startsAt": "2024-01-01T00:00:00Z", "endsAt": far,
                           "createdBy": "me", "comment": "c"});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                if x.is_null() {
                    o.remove(k);
                } else {
                    o.insert(k.clone(), x.clone());
                }
            }
        }
        Some(v.to_string())
    };
    let m = json!([{"name": "alertname", "value": "A", "isRegex": false}]);
    let cases: Vec<(&str, String, Option<String>)> = vec![
        ("POST", "/api/v2/alerts".into(), Some(json!([{"labels": {"alertname": "A", "job": "x"}, "annotations": {"s": "1"}, "generatorURL": "http://g"}]).to_string())),
        ("POST", "/api/v2/alerts".into(), Some(json!([{"labels": {}}]).to_string())),
        ("POST", "/api/v2/alerts".into(), Some("{bad".into())),
        ("POST", "/api/v2/alerts".into(), Some(json!({"labels": {"a": "b"}}).to_string())),
        ("POST", "/api/v2/alerts".into(), Some(json!([{}]).to_string())),
        ("POST", "/api/v2/alerts".into(), Some(json!([{"labels": {"a": "b"}, "startsAt": "notatime"}]).to_string())),
        ("POST", "/api/v2/alerts".into(), Some(json!([{"labels": {"alertname": "B"}, "startsAt": "2030-01-01T00:00:00Z", "endsAt": "2029-01-01T00:00:00Z"}]).to_string())),
        ("GET", "/api/v2/alerts".into(), None),
        ("GET", "/api/v2/alerts?filter=alertname%3D%22A%22&silenced=false&inhibited=false&unprocessed=false".into(), None),
        ("GET", "/api/v2/alerts?filter=bad%20matcher".into(), None),
        ("GET", "/api/v2/alerts?receiver=(".into(), None),
        ("GET", "/api/v2/alerts/groups".into(), None),
        ("GET", "/api/v2/alerts/groups?filter=x".into(), None),
        ("POST", "/api/v2/silences".into(), sil(m.clone(), json!({}))),
        ("POST", "/api/v2/silences".into(), sil(m.clone(), json!({"startsAt": far, "endsAt": "2024-01-01T00:00:00Z"}))),
        ("POST", "/api/v2/silences".into(), sil(json!([{"name": "alertname", "value": "(", "isRegex": true}]), json!({}))),
        ("POST", "/api/v2/silences".into(), sil(json!([]), json!({}))),
        ("POST", "/api/v2/silences".into(), sil(m.clone(), json!({"createdBy": null}))),
        ("POST", "/api/v2/silences".into(), sil(json!([{"name": "a", "value": "b"}]), json!({}))),
        ("POST", "/api/v2/silences".into(), sil(m.clone(), json!({"id": "6f5b3c1e-2a4b-4c1d-9e2f-0a1b2c3d4e5f"}))),
        ("POST", "/api/v2/silences".into(), Some("{bad".into())),
        ("GET", "/api/v2/silences".into(), None),
        ("GET", "/api/v2/silences?filter=x".into(), None),
        ("GET", "/api/v2/silence/6f5b3c1e-2a4b-4c1d-9e2f-0a1b2c3d4e5f".into(), None),
        ("GET", "/api/v2/silence/xyz".into(), None),
        ("GET", "/api/v2/alerts".into(), None),
        ("GET", "/api/v2/status".into(), None),
        ("GET", "/api/v2/receivers".into(), None),
    ];
    let mut diffs = Vec::new();
    for (method, path, body) in &cases {
        let (sa, ja) = call(am_base.clone(), method, path.clone(), body.clone()).await;
        let (sf, jf) = call(fh_base.clone(), method, path.clone(), body.clone()).await;
        if sa != sf || shape(&ja) != shape(&jf) {
            diffs.push(format!(
                "{method} {path} {body:?}\n  AM {sa} {ja}\n  FH {sf} {jf}"
            ));
        }
    }
    // Silences by id: get, expire, expire again, then the expired one is listed.
    let id_of = |v: &Value| v["silenceID"].as_str().unwrap_or_default().to_string();
    let (_, a) = call(
        am_base.clone(),
        "POST",
        "/api/v2/silences".into(),
        sil(m.clone(), json!({})),
    )
    .await;
    let (_, f) = call(
        fh_base.clone(),
        "POST",
        "/api/v2/silences".into(),
        sil(m.clone(), json!({})),
    )
    .await;
    for (method, suffix) in [("GET", ""), ("DELETE", ""), ("DELETE", ""), ("GET", "")] {
        let (sa, ja) = call(
            am_base.clone(),
            method,
            format!("/api/v2/silence/{}{suffix}", id_of(&a)),
            None,
        )
        .await;
        let (sf, jf) = call(
            fh_base.clone(),
            method,
            format!("/api/v2/silence/{}{suffix}", id_of(&f)),
            None,
        )
        .await;
        if sa != sf || shape(&ja) != shape(&jf) {
            diffs.push(format!("{method} silence\n  AM {sa} {ja}\n  FH {sf} {jf}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
