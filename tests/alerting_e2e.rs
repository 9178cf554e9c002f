//! End-to-end alerting with real programs: amtool (Debian `prometheus-alertmanager`) creates,
//! queries and expires silences and queries alerts against fenghuo's Alertmanager API; a real
//! Prometheus (Debian `prometheus`) fires a rule, sends the alert to fenghuo, and fenghuo delivers
//! the mail to a real SMTP listener (Debian `python3-aiosmtpd`). The alerting router is served
//! in-process on 127.0.0.1 until `fenghuo serve` mounts it. Missing programs make the tests fail.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fenghuo_alerting::{AlertingOptions, AlertingService, SystemClock};

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start(config: &str, dir: &Path) -> (Arc<AlertingService>, String) {
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(&cfg, config).unwrap_or_else(|e| panic!("{e}"));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let opts = AlertingOptions {
        config_file: Some(cfg),
        data_dir: dir.join("data"),
        external_url: format!("http://{addr}"),
        tick_interval: Some(Duration::from_millis(200)),
        store: None,
    };
    let svc = AlertingService::start(opts, Arc::new(SystemClock))
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    let app = svc.router();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (svc, format!("http://{addr}"))
}

async fn amtool(url: &str, args: &[&str]) -> String {
    let mut all = vec![format!("--alertmanager.url={url}")];
    all.extend(args.iter().map(|s| s.to_string()));
    let out = tokio::task::spawn_blocking(move || Command::new("amtool").args(&all).output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("amtool missing (apt-get install -y prometheus-alertmanager): {e}"));
    assert!(
        out.status.success(),
        "amtool {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_manages_silences_and_queries_alerts() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (svc, url) = start("route:\n  receiver: r\nreceivers:\n- name: r\n", dir.path()).await;
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{url}/api/v2/alerts"))
        .json(&serde_json::json!([{"labels": {"alertname": "AmtoolE2E", "severity": "warning", "instance": "i1"}}]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 200);

    let alerts = amtool(&url, &["alert", "query", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&alerts).unwrap_or_default();
    assert_eq!(v[0]["labels"]["alertname"], "AmtoolE2E", "{alerts}");
    assert_eq!(v[0]["status"]["state"], "active");

    let id = amtool(
        &url,
        &[
            "silence",
            "add",
            "alertname=AmtoolE2E",
            "--comment=e2e",
            "--author=ci",
            "--duration=1h",
        ],
    )
    .await;
    let id = id.trim().to_string();
    assert_eq!(id.len(), 36, "silence id: {id:?}");

    let q = amtool(&url, &["silence", "query", "-o", "json"]).await;
    assert!(q.contains(&id), "{q}");
    let q = amtool(&url, &["silence", "query", "-q", "alertname=AmtoolE2E"]).await;
    assert_eq!(q.trim(), id);

    let alerts = amtool(&url, &["alert", "query", "-o", "json", "--silenced"]).await;
    let v: serde_json::Value = serde_json::from_str(&alerts).unwrap_or_default();
    assert_eq!(v[0]["status"]["state"], "suppressed", "{alerts}");
    assert_eq!(v[0]["status"]["silencedBy"][0], id.as_str());

    amtool(&url, &["silence", "expire", &id]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let q = amtool(&url, &["silence", "query", "--expired", "-o", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&q).unwrap_or_default();
    assert_eq!(v[0]["id"], id.as_str(), "{q}");
    assert_eq!(v[0]["status"]["state"], "expired");
    let active = amtool(&url, &["silence", "query", "-q"]).await;
    assert!(active.trim().is_empty(), "{active}");

    // amtool check-config and fenghuo agree on a valid file.
    let (report, ok) = fenghuo_alerting::cli::check_config_files(&[dir.path().join("alertmanager.yml")]);
    assert!(ok, "{report}");
    svc.shutdown().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_rule_fires_and_fenghuo_mails_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let maildir = dir.path().join("mail");
    std::fs::create_dir_all(&maildir).unwrap_or_else(|e| panic!("{e}"));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/alerting/smtp_sink.py");
    let mut smtp = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&maildir)
        .arg("plain")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3-aiosmtpd missing: {e}"));
    let mut line = String::new();
    let _ = BufReader::new(smtp.stdout.take().unwrap_or_else(|| panic!("stdout"))).read_line(&mut line);
    let _smtp = Proc(smtp);
    let smtp_port: u16 = line
        .trim()
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("smtp: {line:?}"));

    let cfg = format!(
        "global:\n  smtp_from: fenghuo@example.com\n  smtp_smarthost: 127.0.0.1:{smtp_port}\n  smtp_require_tls: false\n\
         route:\n  receiver: mail\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1m\n\
         receivers:\n- name: mail\n  email_configs:\n  - to: oncall@example.com\n"
    );
    let (svc, url) = start(&cfg, dir.path()).await;
    let am = url.trim_start_matches("http://").to_string();

    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: e2e\n  interval: 1s\n  rules:\n  - alert: E2EAlwaysFiring\n    expr: vector(1)\n    labels:\n      severity: critical\n    annotations:\n      summary: fired by a real Prometheus\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let prom_cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: ['{}']\nalerting:\n  alertmanagers:\n  - api_version: v2\n    static_configs:\n    - targets: ['{am}']\n",
            rules.display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let prom = Command::new("prometheus")
        .arg(format!("--config.file={}", prom_cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        // The first send can happen before discovery found fenghuo; resend quickly instead of after 1m.
        .arg("--rules.alert.resend-delay=1s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("prometheus missing (apt-get install -y prometheus): {e}"));
    let _prom = Proc(prom);

    let deadline = Instant::now() + Duration::from_secs(60);
    let mail = loop {
        let found = std::fs::read_dir(&maildir).ok().and_then(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "eml"))
        });
        if let Some(p) = found {
            break std::fs::read_to_string(p).unwrap_or_default();
        }
        assert!(Instant::now() < deadline, "no mail within 60s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(mail.contains("Subject: [FIRING:1] E2EAlwaysFiring"), "{mail}");
    assert!(mail.contains("To: oncall@example.com"), "{mail}");
    let alerts = reqwest::get(format!("{url}/api/v2/alerts"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value = alerts.json().await.unwrap_or_default();
    assert_eq!(v[0]["labels"]["alertname"], "E2EAlwaysFiring");
    assert!(
        v[0]["generatorURL"]
            .as_str()
            .unwrap_or_default()
            .contains("/graph?g0.expr=")
    );
    svc.shutdown().await;
}

async fn amtool_status(args: &[String]) -> (bool, String) {
    let args = args.to_vec();
    let out = tokio::task::spawn_blocking(move || Command::new("amtool").args(&args).output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("amtool missing (apt-get install -y prometheus-alertmanager): {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// fenghuo's route tester and config checker agree with amtool's on Alertmanager configs.
#[tokio::test]
async fn routing_and_validation_agree_with_amtool() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/alerting/config");
    let good = dir.join("upstream-style.good.yml");
    let cases: &[&[&str]] = &[
        &["service=foo1", "severity=critical"],
        &["service=foo2"],
        &["service=files", "severity=critical"],
        &["service=database", "owner=team-X"],
        &["service=db", "owner=team-Y"],
        &["service=db"],
        &["service=batch", "alertname=x"],
        &["service=other"],
    ];
    for labels in cases {
        let mut args = vec![
            "config".to_string(),
            "routes".into(),
            "test".into(),
            format!("--config.file={}", good.display()),
        ];
        args.extend(labels.iter().map(|s| s.to_string()));
        let (ok, want) = amtool_status(&args).await;
        assert!(ok, "amtool routes test {labels:?}");
        let labels: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        let got = fenghuo_alerting::cli::routes_test(&good, &labels, None)
            .map(|r| r.0)
            .unwrap_or_default();
        assert_eq!(got.trim(), want.trim(), "labels {labels:?}");
    }
    // Files Alertmanager itself rejects are rejected by fenghuo too.
    for name in [
        "undefined-receiver.bad.yml",
        "root-matchers.bad.yml",
        "group-by-wildcard.bad.yml",
        "typo.bad.yml",
        "bad-matcher.bad.yml",
        "bad-time-interval.bad.yml",
        "missing-smtp.bad.yml",
    ] {
        let f = dir.join(name);
        let (am_ok, _) = amtool_status(&["check-config".to_string(), f.display().to_string()]).await;
        let (fh_report, fh_ok) = fenghuo_alerting::cli::check_config_files(std::slice::from_ref(&f));
        assert!(!am_ok, "amtool accepted {name}");
        assert!(!fh_ok, "fenghuo accepted {name}: {fh_report}");
    }
    let (am_ok, am_out) = amtool_status(&["check-config".to_string(), good.display().to_string()]).await;
    assert!(am_ok, "{am_out}");
}
