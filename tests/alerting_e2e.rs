//! End-to-end alerting with the real `fenghuo` binary and real programs: amtool (Debian
//! `prometheus-alertmanager`) creates, queries and expires silences and queries alerts; a real
//! Prometheus (Debian `prometheus`) fires a rule and fenghuo delivers the mail to a real SMTP
//! listener (Debian `python3-aiosmtpd`); silences survive `POST /-/reload` and kill -9; fenghuo's
//! route tester and config checker agree with amtool's; real process restarts (kill -9 and SIGTERM)
//! neither lose a pending notification nor re-send a delivered one; SIGHUP keeps silences, acks,
//! the notification log and escalation progress. Missing programs make the tests fail.

mod common;

use std::io::{BufRead, BufReader};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Fenghuo, free_port, http, wait_for};

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `fenghuo serve` with `alertmanager` as its alerting config, data under `dir/data`.
fn start(alertmanager: &str, dir: &Path) -> Fenghuo {
    let am = dir.join("alertmanager.yml");
    std::fs::write(&am, alertmanager).expect("write alertmanager.yml");
    let cfg = dir.join("fenghuo.yml");
    std::fs::write(&cfg, format!("alerting:\n  config_file: '{}'\n", am.display()))
        .expect("write fenghuo.yml");
    let cfg = cfg.display().to_string();
    Fenghuo::start_in(&dir.join("data"), &["--config.file", &cfg])
}

fn amtool_out(args: &[String]) -> (bool, String, String) {
    let out = Command::new("amtool")
        .args(args)
        .output()
        .expect("amtool missing (apt-get install -y prometheus-alertmanager)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn amtool(node: &Fenghuo, args: &[&str]) -> String {
    let mut all = vec![format!("--alertmanager.url={}", node.url(""))];
    all.extend(args.iter().map(|s| s.to_string()));
    let (ok, out, err) = amtool_out(&all);
    assert!(
        ok,
        "amtool {args:?} failed: {out}{err}\nfenghuo log:\n{}",
        node.log()
    );
    out
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_default()
}

#[test]
fn amtool_manages_silences_and_queries_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = start("route:\n  receiver: r\nreceivers:\n- name: r\n", dir.path());
    let r = http()
        .post(node.url("/api/v2/alerts"))
        .json(&serde_json::json!([{"labels": {"alertname": "AmtoolE2E", "severity": "warning", "instance": "i1"}}]))
        .send()
        .expect("post alerts");
    assert_eq!(r.status().as_u16(), 200);

    let v = json(&amtool(&node, &["alert", "query", "-o", "json"]));
    assert_eq!(v[0]["labels"]["alertname"], "AmtoolE2E", "{v}");
    assert_eq!(v[0]["status"]["state"], "active");

    let id = amtool(
        &node,
        &[
            "silence",
            "add",
            "alertname=AmtoolE2E",
            "--comment=e2e",
            "--author=ci",
            "--duration=1h",
        ],
    );
    let id = id.trim().to_string();
    assert_eq!(id.len(), 36, "silence id: {id:?}");
    let q = amtool(&node, &["silence", "query", "-q", "alertname=AmtoolE2E"]);
    assert_eq!(q.trim(), id);
    let v = json(&amtool(&node, &["alert", "query", "-o", "json", "--silenced"]));
    assert_eq!(v[0]["status"]["state"], "suppressed", "{v}");
    assert_eq!(v[0]["status"]["silencedBy"][0], id.as_str());

    // Silences survive a config reload and a kill -9.
    let r = http().post(node.url("/-/reload")).send().expect("reload");
    assert!(r.status().is_success());
    assert_eq!(amtool(&node, &["silence", "query", "-q"]).trim(), id);
    node.kill9();
    let node = Fenghuo::start_in(
        &dir.path().join("data"),
        &[
            "--config.file",
            &dir.path().join("fenghuo.yml").display().to_string(),
        ],
    );
    assert_eq!(
        amtool(&node, &["silence", "query", "-q"]).trim(),
        id,
        "silence survived kill -9"
    );

    amtool(&node, &["silence", "expire", &id]);
    std::thread::sleep(Duration::from_millis(20));
    let v = json(&amtool(&node, &["silence", "query", "--expired", "-o", "json"]));
    assert_eq!(v[0]["id"], id.as_str(), "{v}");
    assert_eq!(v[0]["status"]["state"], "expired");
    assert!(amtool(&node, &["silence", "query", "-q"]).trim().is_empty());
}

#[test]
fn prometheus_rule_fires_and_fenghuo_mails_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let maildir = dir.path().join("mail");
    std::fs::create_dir_all(&maildir).expect("maildir");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/alerting/smtp_sink.py");
    let mut smtp = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&maildir)
        .arg("plain")
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3-aiosmtpd missing (apt-get install -y python3-aiosmtpd)");
    let mut line = String::new();
    let _ = BufReader::new(smtp.stdout.take().expect("stdout")).read_line(&mut line);
    let _smtp = Proc(smtp);
    let smtp_port: u16 = line
        .trim()
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok())
        .expect("SMTP sink ready");

    let node = start(
        &format!(
            "global:\n  smtp_from: fenghuo@example.com\n  smtp_smarthost: 127.0.0.1:{smtp_port}\n  smtp_require_tls: false\n\
             route:\n  receiver: mail\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1m\n\
             receivers:\n- name: mail\n  email_configs:\n  - to: oncall@example.com\n"
        ),
        dir.path(),
    );
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: e2e\n  interval: 1s\n  rules:\n  - alert: E2EAlwaysFiring\n    expr: vector(1)\n    labels:\n      severity: critical\n    annotations:\n      summary: fired by a real Prometheus\n",
    )
    .expect("rules");
    let prom_cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: ['{}']\nalerting:\n  alertmanagers:\n  - api_version: v2\n    static_configs:\n    - targets: ['127.0.0.1:{}']\n",
            rules.display(),
            node.port
        ),
    )
    .expect("prometheus.yml");
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
        .expect("prometheus missing (apt-get install -y prometheus)");
    let _prom = Proc(prom);

    let mail = wait_for("the mail", Duration::from_secs(60), || {
        std::fs::read_dir(&maildir)
            .ok()
            .and_then(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|e| e == "eml"))
            })
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
    });
    assert!(mail.contains("Subject: [FIRING:1] E2EAlwaysFiring"), "{mail}");
    assert!(mail.contains("To: oncall@example.com"), "{mail}");
    let v: serde_json::Value = http()
        .get(node.url("/api/v2/alerts"))
        .send()
        .expect("alerts")
        .json()
        .unwrap_or_default();
    assert_eq!(v[0]["labels"]["alertname"], "E2EAlwaysFiring");
    assert!(
        v[0]["generatorURL"]
            .as_str()
            .unwrap_or_default()
            .contains("/graph?g0.expr=")
    );
    // fenghuo's history recorded who was told through what.
    let h: serde_json::Value = http()
        .get(node.url("/api/v1/alerting/history?kind=notified&start=0"))
        .send()
        .expect("history")
        .json()
        .unwrap_or_default();
    assert_eq!(h["data"][0]["receiver"], "mail", "{h}");
    assert_eq!(h["data"][0]["integration"], "email");
}

/// fenghuo's route tester and config checker agree with amtool's on Alertmanager configs.
#[test]
fn routing_and_validation_agree_with_amtool() {
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
        let (ok, want, err) = amtool_out(&args);
        assert!(ok, "amtool routes test {labels:?}: {err}");
        let labels: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        let got = fenghuo_alerting::cli::routes_test(&good, &labels, None)
            .map(|r| r.0)
            .unwrap_or_default();
        assert_eq!(got.trim(), want.trim(), "labels {labels:?}");
    }
    // Files Alertmanager itself rejects are rejected by fenghuo too (through the real binary).
    for name in [
        "undefined-receiver.bad.yml",
        "root-matchers.bad.yml",
        "group-by-wildcard.bad.yml",
        "typo.bad.yml",
        "bad-matcher.bad.yml",
        "bad-time-interval.bad.yml",
        "missing-smtp.bad.yml",
    ] {
        let f = dir.join(name).display().to_string();
        let (am_ok, _, _) = amtool_out(&["check-config".to_string(), f.clone()]);
        assert!(!am_ok, "amtool accepted {name}");
        let out = Command::new(env!("CARGO_BIN_EXE_fenghuo"))
            .args(["check-config", &f])
            .output()
            .expect("fenghuo");
        assert!(!out.status.success(), "fenghuo accepted {name}");
    }
    let (am_ok, am_out, _) = amtool_out(&["check-config".to_string(), good.display().to_string()]);
    assert!(am_ok, "{am_out}");
    let out = Command::new(env!("CARGO_BIN_EXE_fenghuo"))
        .args(["check-config", &good.display().to_string()])
        .output()
        .expect("fenghuo");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // `fenghuo test alerts` runs the scenario files.
    let scen = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/testdata/alerting/scenarios/alertmanager-semantics.yml");
    let out = Command::new(env!("CARGO_BIN_EXE_fenghuo"))
        .args(["test", "alerts", &scen.display().to_string()])
        .output()
        .expect("fenghuo");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// A webhook receiver on 127.0.0.1: records (path, body) of every POST and answers 200 (while
/// `hold` is set, only once it is cleared: a delivery on the wire).
struct HookSink {
    port: u16,
    got: Arc<Mutex<Vec<(String, String)>>>,
    hold: Arc<std::sync::atomic::AtomicBool>,
}

impl HookSink {
    fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind hook sink");
        let port = l.local_addr().map(|a| a.port()).expect("port");
        let got: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let hold: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let g = got.clone();
        let h = hold.clone();
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let g = g.clone();
                let h = h.clone();
                std::thread::spawn(move || Self::serve(conn, &g, &h));
            }
        });
        HookSink { port, got, hold }
    }

    fn serve(
        conn: std::net::TcpStream,
        g: &Mutex<Vec<(String, String)>>,
        hold: &std::sync::atomic::AtomicBool,
    ) {
        {
            let mut conn = conn;
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            // Headers, then Content-Length bytes of body.
            let (head_end, len) = loop {
                let Ok(n) = conn.read(&mut chunk) else {
                    break (0, 0);
                };
                if n == 0 {
                    break (0, 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (i + 4, len);
                }
            };
            if head_end == 0 {
                return;
            }
            while buf.len() < head_end + len {
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let path = head.split_whitespace().nth(1).unwrap_or_default().to_string();
            let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
            if let Ok(mut g) = g.lock() {
                g.push((path, body));
            }
            for _ in 0..1200 {
                if !hold.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Requests to `path` whose body mentions `text`.
    fn count(&self, path: &str, text: &str) -> usize {
        self.got
            .lock()
            .map(|g| g.iter().filter(|(p, b)| p == path && b.contains(text)).count())
            .unwrap_or(0)
    }
}

/// Posts one alert without endsAt (it stays firing for resolve_timeout, 5m).
fn post_alert(node: &Fenghuo, labels: serde_json::Value) {
    let r = http()
        .post(node.url("/api/v2/alerts"))
        .json(&serde_json::json!([{"labels": labels}]))
        .send()
        .expect("post alerts");
    assert_eq!(r.status().as_u16(), 200, "{}", node.log());
}

/// A node whose one route groups by alertname into `hook` after `group_wait`.
fn start_with_hook(hook: &HookSink, group_wait: &str, dir: &Path) -> Fenghuo {
    start(
        &format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: {group_wait}\n  group_interval: 2s\n  repeat_interval: 1h\n\
             receivers:\n- name: hook\n  webhook_configs: [{{url: '{}'}}]\n",
            hook.url("/hook")
        ),
        dir,
    )
}

fn restart(dir: &Path) -> Fenghuo {
    Fenghuo::start_in(
        &dir.join("data"),
        &["--config.file", &dir.join("fenghuo.yml").display().to_string()],
    )
}

/// Real process restarts: an alert still in group_wait when the process is killed is delivered
/// after the restart, once; a delivered notification is not sent again after kill -9 or SIGTERM.
#[test]
fn restarts_neither_lose_pending_nor_resend_delivered_notifications() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = HookSink::start();
    let mut node = start_with_hook(&hook, "3s", dir.path());
    post_alert(
        &node,
        serde_json::json!({"alertname": "PendingE2E", "instance": "a"}),
    );
    // Killed inside group_wait: nothing was sent yet.
    node.kill9();
    assert_eq!(hook.count("/hook", "PendingE2E"), 0);
    let mut node = restart(dir.path());
    wait_for(
        "the pending notification after kill -9",
        Duration::from_secs(30),
        || (hook.count("/hook", "PendingE2E") >= 1).then_some(()),
    );
    // Several group_intervals pass: still exactly one (the notification log dedups).
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(hook.count("/hook", "PendingE2E"), 1, "{}", node.log());

    // A graceful restart and a kill -9 restart re-send nothing.
    assert!(node.stop().success(), "clean exit on SIGTERM");
    let mut node = restart(dir.path());
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        hook.count("/hook", "PendingE2E"),
        1,
        "re-sent after SIGTERM restart"
    );
    node.kill9();
    let node = restart(dir.path());
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        hook.count("/hook", "PendingE2E"),
        1,
        "re-sent after kill -9 restart"
    );
    // The group still works: a new alert in it goes out at the next group_interval.
    post_alert(
        &node,
        serde_json::json!({"alertname": "PendingE2E", "instance": "b"}),
    );
    wait_for("the group's update", Duration::from_secs(30), || {
        (hook.count("/hook", "PendingE2E") >= 2).then_some(())
    });
    let got = hook.got.lock().map(|g| g.clone()).unwrap_or_default();
    let last: serde_json::Value = serde_json::from_str(&got[got.len() - 1].1).unwrap_or_default();
    assert_eq!(last["alerts"].as_array().map(|a| a.len()), Some(2), "{last}");
}

/// kill -9 while a notification is on the wire (the receiver got it but has not answered): the
/// restarted process delivers it again (at least once), and only once more. The alert still
/// fires here, which the notification log alone already handles; the case that needs the
/// intent (the alert resolved while the process was down) is `state_durability.rs`.
#[test]
fn a_delivery_interrupted_by_kill_9_is_sent_again_after_the_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = HookSink::start();
    let mut node = start_with_hook(&hook, "1s", dir.path());
    hook.hold.store(true, std::sync::atomic::Ordering::SeqCst);
    post_alert(
        &node,
        serde_json::json!({"alertname": "OnTheWire", "instance": "a"}),
    );
    wait_for(
        "the delivery to reach the receiver",
        Duration::from_secs(30),
        || (hook.count("/hook", "OnTheWire") == 1).then_some(()),
    );
    node.kill9();
    hook.hold.store(false, std::sync::atomic::Ordering::SeqCst);
    let node = restart(dir.path());
    wait_for("the interrupted delivery again", Duration::from_secs(30), || {
        (hook.count("/hook", "OnTheWire") >= 2).then_some(())
    });
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(hook.count("/hook", "OnTheWire"), 2, "{}", node.log());
}

/// SIGHUP re-reads the config and keeps silences, acks, the notification log and escalation
/// progress: nothing is re-sent, the escalation continues with its next step.
#[test]
fn sighup_keeps_silences_acks_nflog_and_escalation_progress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = HookSink::start();
    let config = format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1m\n  repeat_interval: 1h\n  routes:\n  - matchers: ['team=\"db\"']\n    receiver: hook\n    escalation: db\n\
         receivers:\n- name: hook\n  webhook_configs: [{{url: '{h}'}}]\n- name: lead\n  webhook_configs: [{{url: '{l}'}}]\n- name: boss\n  webhook_configs: [{{url: '{b}'}}]\n\
         fenghuo:\n  escalation_policies:\n  - name: db\n    steps:\n    - {{wait: 3s, receivers: [lead]}}\n    - {{wait: 5s, receivers: [boss]}}\n",
        h = hook.url("/hook"),
        l = hook.url("/lead"),
        b = hook.url("/boss"),
    );
    let node = start(&config, dir.path());
    post_alert(&node, serde_json::json!({"alertname": "EscE2E", "team": "db"}));
    post_alert(&node, serde_json::json!({"alertname": "AckedE2E"}));
    post_alert(&node, serde_json::json!({"alertname": "SilencedE2E"}));
    let sil: serde_json::Value = http()
        .post(node.url("/api/v2/silences"))
        .json(&serde_json::json!({
            "matchers": [{"name": "alertname", "value": "SilencedE2E", "isRegex": false, "isEqual": true}],
            "startsAt": "2020-01-01T00:00:00Z",
            "endsAt": "2099-01-01T00:00:00Z",
            "createdBy": "ci", "comment": "e2e"
        }))
        .send()
        .expect("silence")
        .json()
        .unwrap_or_default();
    let sil_id = sil["silenceID"].as_str().unwrap_or_default().to_string();
    assert_eq!(sil_id.len(), 36, "{sil}");
    wait_for("step 1 of the escalation", Duration::from_secs(30), || {
        (hook.count("/lead", "EscE2E") == 1).then_some(())
    });
    assert_eq!(hook.count("/hook", "AckedE2E"), 1);
    let r = http()
        .post(node.url("/api/v1/alerting/acks"))
        .json(&serde_json::json!({"groupKey": "{}:{alertname=\"AckedE2E\"}", "by": "alice", "ttl": "1h"}))
        .send()
        .expect("ack");
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());

    // SIGHUP with a changed config (one more receiver) while step 2 is pending.
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        config.replace("receivers:\n", "receivers:\n- name: extra\n"),
    )
    .expect("rewrite config");
    let _ = Command::new("kill")
        .arg("-HUP")
        .arg(node.child.id().to_string())
        .status();
    wait_for("the reload", Duration::from_secs(10), || {
        let v: serde_json::Value = http()
            .get(node.url("/api/v2/receivers"))
            .send()
            .ok()?
            .json()
            .ok()?;
        v.as_array()?.iter().any(|r| r["name"] == "extra").then_some(())
    });
    let acks: serde_json::Value = http()
        .get(node.url("/api/v1/alerting/acks"))
        .send()
        .expect("acks")
        .json()
        .unwrap_or_default();
    assert_eq!(acks["data"][0]["by"], "alice", "ack kept: {acks}");
    let s: serde_json::Value = http()
        .get(node.url(&format!("/api/v2/silence/{sil_id}")))
        .send()
        .expect("silence")
        .json()
        .unwrap_or_default();
    assert_eq!(s["status"]["state"], "active", "silence kept: {s}");
    let esc: serde_json::Value = http()
        .get(node.url("/api/v1/alerting/escalations"))
        .send()
        .expect("escalations")
        .json()
        .unwrap_or_default();
    assert_eq!(esc["data"][0]["next_step"], 1, "escalation progress kept: {esc}");
    wait_for("step 2 of the escalation", Duration::from_secs(30), || {
        (hook.count("/boss", "EscE2E") == 1).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hook.count("/lead", "EscE2E"), 1, "step 1 not repeated");
    assert_eq!(hook.count("/hook", "EscE2E"), 1, "not re-sent after SIGHUP");
    assert_eq!(hook.count("/hook", "AckedE2E"), 1, "not re-sent after SIGHUP");
    assert_eq!(hook.count("/hook", "SilencedE2E"), 0, "still silenced");
}
