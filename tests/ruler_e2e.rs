//! The ruler end to end with the real `fenghuo` binary: `fenghuo check-rules` and
//! `fenghuo test rules` against `promtool` (Debian `prometheus`) on the fixtures in
//! `tests/testdata/rules/`, and `fenghuo serve` evaluating a tenant's rules over remote-written
//! data: recorded series queryable, alerts in `/api/v1/rules`, `/api/v1/alerts` and the alert
//! engine, tenant isolation, reload on `POST /-/reload` and SIGHUP, and the ruler's metrics; and
//! side by side with a real Prometheus evaluating the same rule file: same evaluation slots (to
//! the nanosecond), same results and alert texts, the API fields Prometheus has.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Fenghuo, Prometheus, get_json, http, remote_write_v1, wait_for, which};
use serde_json::Value;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/rules")
}

fn fixtures(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(testdata())
        .expect("testdata")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".yml"))
        .collect();
    v.sort();
    v
}

fn run(program: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(testdata())
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fenghuo() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fenghuo"))
}

#[test]
fn test_rules_gives_promtools_verdicts() {
    let promtool = which("promtool").expect("promtool (Debian package prometheus) is installed");
    let files = fixtures("test_");
    let mut same = 0;
    let mut differ = Vec::new();
    for f in &files {
        let (pc, _, _) = run(&promtool, &["test", "rules", f]);
        let (fc, fout, _) = run(&fenghuo(), &["test", "rules", f]);
        if pc == fc {
            same += 1;
        } else {
            differ.push(format!("{f}: promtool exit {pc}, fenghuo exit {fc}\n{fout}"));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert_eq!(same, files.len());
    // Several files at once: one failure fails the run, as in promtool.
    let (pc, _, _) = run(
        &promtool,
        &["test", "rules", "test_basic_pass.yml", "test_limit.yml"],
    );
    let (fc, out, _) = run(
        &fenghuo(),
        &["test", "rules", "test_basic_pass.yml", "test_limit.yml"],
    );
    assert_eq!((pc, fc), (1, 1));
    assert!(
        out.contains("Unit Testing:  test_basic_pass.yml\n  SUCCESS"),
        "{out}"
    );
}

#[test]
fn check_rules_gives_promtools_verdicts() {
    let promtool = which("promtool").expect("promtool (Debian package prometheus) is installed");
    for f in fixtures("rules_") {
        let (pc, pout, _) = run(&promtool, &["check", "rules", &f]);
        let (fc, fout, ferr) = run(&fenghuo(), &["check-rules", &f]);
        assert_eq!(pc, fc, "{f}: promtool {pc}, fenghuo {fc}\n{fout}{ferr}");
        assert_eq!(pout, fout, "{f}");
    }
    let (fc, _, err) = run(&fenghuo(), &["check-rules", "no-such-file.yml"]);
    assert_eq!(fc, 1);
    assert!(
        err.contains("no-such-file.yml: open no-such-file.yml: no such file or directory"),
        "{err}"
    );
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn get(node: &Fenghuo, path: &str, tenant: &str, params: &[(&str, &str)]) -> Value {
    http()
        .get(node.url(path))
        .header("X-Scope-OrgID", tenant)
        .query(params)
        .send()
        .expect("GET")
        .json()
        .expect("JSON")
}

const RULES: &str = r#"groups:
  - name: e2e
    interval: 1s
    rules:
      - record: job:temp:max
        expr: max by (job) (temperature)
      - alert: TooHot
        expr: job:temp:max > 30
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.job }} is at {{ $value }} degrees"
"#;

#[test]
fn serve_evaluates_tenant_rules_and_alerts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rules = tmp.path().join("team-a.yml");
    std::fs::write(&rules, RULES).expect("rules");
    // A rule whose output breaks the write path's label limit: refused like a remote-written
    // series would be, and reported as that rule's error.
    let wide = tmp.path().join("zz-wide.yml");
    std::fs::write(
        &wide,
        format!(
            "groups:\n  - name: wide\n    rules:\n      - record: job:temp:wide\n        expr: max by (job) (temperature)\n        labels:\n          note: {}\n",
            "x".repeat(100)
        ),
    )
    .expect("rules");
    let cfg = tmp.path().join("fenghuo.yml");
    std::fs::write(
        &cfg,
        format!(
            "ingest:\n  max_label_value_bytes: 64\nruler:\n  evaluation_interval: 1s\n  external_labels:\n    cluster: e2e\n  tenant_rule_files:\n    team-a: ['{}', '{}']\n",
            rules.display(),
            wide.display()
        ),
    )
    .expect("config");
    let data = tmp.path().join("data");
    let node = Fenghuo::start_in(&data, &["--config.file", cfg.to_str().expect("utf-8 path")]);

    // Samples for two tenants; only team-a has rules.
    let t0 = now_ms();
    let samples: Vec<(i64, f64)> = (0..40).map(|i| (t0 - 30_000 + i * 1_000, 35.0)).collect();
    for tenant in ["team-a", "team-b"] {
        let (code, body) = remote_write_v1(
            &node.url("/api/v1/write"),
            Some(tenant),
            &[(
                vec![("__name__", "temperature"), ("job", "oven")],
                samples.clone(),
            )],
        );
        assert_eq!(code, 204, "{body}");
    }

    // The recorded series appears for team-a only.
    wait_for("the recording rule's result", Duration::from_secs(30), || {
        let r = get(&node, "/api/v1/query", "team-a", &[("query", "job:temp:max")]);
        let v = r["data"]["result"].as_array().cloned().unwrap_or_default();
        (!v.is_empty()).then_some(v)
    });
    let b = get(&node, "/api/v1/query", "team-b", &[("query", "job:temp:max")]);
    assert_eq!(b["data"]["result"].as_array().map(Vec::len), Some(0), "{b}");

    // The alert fires and shows in both APIs and in the alert engine.
    let alerts = wait_for("the alert to fire", Duration::from_secs(30), || {
        let r = get(&node, "/api/v1/alerts", "team-a", &[]);
        let v = r["data"]["alerts"].as_array().cloned().unwrap_or_default();
        v.iter().any(|a| a["state"] == "firing").then_some(v)
    });
    assert_eq!(alerts[0]["annotations"]["summary"], "oven is at 35 degrees");
    let rules_api = get(&node, "/api/v1/rules", "team-a", &[]);
    let group = &rules_api["data"]["groups"][0];
    assert_eq!(group["name"], "e2e");
    assert_eq!(group["interval"], 1.0);
    assert_eq!(group["rules"][0]["health"], "ok");
    assert_eq!(group["rules"][1]["state"], "firing");
    let other = get(&node, "/api/v1/rules", "team-b", &[]);
    assert_eq!(other["data"]["groups"].as_array().map(Vec::len), Some(0));
    let engine = wait_for(
        "the alert engine to hold the alert",
        Duration::from_secs(30),
        || {
            let r = get(&node, "/api/v2/alerts", "team-a", &[]);
            r.as_array().filter(|a| !a.is_empty()).cloned()
        },
    );
    assert_eq!(engine[0]["labels"]["alertname"], "TooHot");
    assert_eq!(engine[0]["labels"]["cluster"], "e2e");
    let engine_b = get(&node, "/api/v2/alerts", "team-b", &[]);
    assert_eq!(engine_b.as_array().map(Vec::len), Some(0));
    // ALERTS is written once `for` state restoration ran (after the second evaluation).
    let fires = wait_for("the ALERTS series", Duration::from_secs(30), || {
        let r = get(
            &node,
            "/api/v1/query",
            "team-a",
            &[("query", "ALERTS{alertname=\"TooHot\"}")],
        );
        r["data"]["result"].as_array().filter(|a| !a.is_empty()).cloned()
    });
    assert_eq!(fires[0]["metric"]["alertstate"], "firing");
    assert_eq!(fires[0]["metric"]["severity"], "page");
    let wide_rule = wait_for("the wide rule's error", Duration::from_secs(30), || {
        let r = get(
            &node,
            "/api/v1/rules",
            "team-a",
            &[("rule_name[]", "job:temp:wide")],
        );
        let rule = r["data"]["groups"][0]["rules"][0].clone();
        (rule["health"] == "err").then_some(rule)
    });
    let err = wide_rule["lastError"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("value of label \"note\" has 100 bytes, more than the limit of 64 for series {"),
        "{wide_rule}"
    );
    let wide_q = get(&node, "/api/v1/query", "team-a", &[("query", "job:temp:wide")]);
    assert_eq!(
        wide_q["data"]["result"].as_array().map(Vec::len),
        Some(0),
        "{wide_q}"
    );
    let metrics = http()
        .get(node.url("/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    assert!(
        metrics.contains("fenghuo_ingest_rejected_samples_total{reason=\"invalid_series\"}"),
        "rule output is not counted by the write path"
    );

    // Reload picks up a new rule (POST /-/reload), and a broken file keeps the old rules.
    std::fs::write(
        &rules,
        format!("{RULES}      - record: job:temp:min\n        expr: min by (job) (temperature)\n"),
    )
    .expect("rules");
    let resp = http().post(node.url("/-/reload")).send().expect("reload");
    assert!(resp.status().is_success());
    wait_for("the new rule", Duration::from_secs(30), || {
        let r = get(
            &node,
            "/api/v1/rules",
            "team-a",
            &[("rule_name[]", "job:temp:min")],
        );
        (r["data"]["groups"].as_array().map(Vec::len) == Some(1)).then_some(())
    });
    std::fs::write(
        &rules,
        "groups:\n  - name: e2e\n    rules:\n      - record: x\n        expr: sum(\n",
    )
    .expect("rules");
    let resp = http().post(node.url("/-/reload")).send().expect("reload");
    assert!(resp.status().is_server_error());
    let r = get(&node, "/api/v1/rules", "team-a", &[]);
    assert_eq!(r["data"]["groups"][0]["rules"].as_array().map(Vec::len), Some(3));
    // PUT reloads too, as in Prometheus.
    std::fs::write(
        &rules,
        format!("{RULES}      - record: job:temp:avg\n        expr: avg by (job) (temperature)\n"),
    )
    .expect("rules");
    let resp = http().put(node.url("/-/reload")).send().expect("reload");
    assert!(resp.status().is_success(), "{}", resp.status());
    let r = get(
        &node,
        "/api/v1/rules",
        "team-a",
        &[("rule_name[]", "job:temp:avg")],
    );
    assert_eq!(r["data"]["groups"].as_array().map(Vec::len), Some(1), "{r}");
    std::fs::write(&rules, RULES).expect("rules");
    let _ = Command::new("kill")
        .arg("-HUP")
        .arg(node.child.id().to_string())
        .status();
    wait_for("SIGHUP reload", Duration::from_secs(30), || {
        let r = get(&node, "/api/v1/rules", "team-a", &[]);
        (r["data"]["groups"][0]["rules"].as_array().map(Vec::len) == Some(2)).then_some(())
    });

    // Reload re-reads the config file's `ruler:` section too: team-b gets rule files, the
    // external labels change (alerts are re-sent every second with the new label).
    let rules_b = tmp.path().join("team-b.yml");
    std::fs::write(
        &rules_b,
        "groups:\n  - name: b\n    rules:\n      - record: b:temp:max\n        expr: max(temperature)\n",
    )
    .expect("rules");
    std::fs::write(
        &cfg,
        format!(
            "ruler:\n  evaluation_interval: 1s\n  resend_delay: 1s\n  external_labels:\n    cluster: e2e-reloaded\n  tenant_rule_files:\n    team-a: ['{}']\n    team-b: ['{}']\n",
            rules.display(),
            rules_b.display()
        ),
    )
    .expect("config");
    let resp = http().post(node.url("/-/reload")).send().expect("reload");
    assert!(resp.status().is_success());
    wait_for("team-b's recorded series", Duration::from_secs(30), || {
        let r = get(&node, "/api/v1/query", "team-b", &[("query", "b:temp:max")]);
        r["data"]["result"].as_array().filter(|a| !a.is_empty()).cloned()
    });
    wait_for(
        "alerts with the reloaded external labels",
        Duration::from_secs(30),
        || {
            let r = get(&node, "/api/v2/alerts", "team-a", &[]);
            r.as_array()
                .filter(|a| a.iter().any(|x| x["labels"]["cluster"] == "e2e-reloaded"))
                .cloned()
        },
    );
    // A config file that no longer loads keeps the running configuration and says why.
    std::fs::write(&cfg, "ruler:\n  evaluation_interval: 0s\n").expect("config");
    let resp = http().post(node.url("/-/reload")).send().expect("reload");
    assert!(resp.status().is_server_error());
    let body = resp.text().unwrap_or_default();
    assert!(body.contains("evaluation_interval"), "{body}");
    let r = get(&node, "/api/v1/rules", "team-b", &[]);
    assert_eq!(r["data"]["groups"][0]["name"], "b", "{r}");

    let metrics = http()
        .get(node.url("/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    for name in [
        "fenghuo_ruler_evaluations_total{rule_group=",
        "fenghuo_ruler_group_last_duration_seconds",
        "fenghuo_ruler_group_iterations_missed_total",
        "fenghuo_ruler_evaluation_duration_seconds_bucket",
        "fenghuo_ruler_group_rules",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

/// Serves `temp{room="a"} 30` and `temp{room="b"} 20` to Prometheus's scrapes.
fn start_exporter() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|r| r > 2).unwrap_or(false) {
                line.clear();
            }
            let body = "# TYPE temp gauge\ntemp{room=\"a\"} 30\ntemp{room=\"b\"} 20\n";
            let mut s = &stream;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                body.len(),
                body
            );
        }
    });
    port
}

const SIDE_RULES: &str = r#"groups:
  - name: side-by-side
    interval: 2s
    rules:
      - record: room:temp:max
        expr: max by (room) (temp)
      - alert: Hot
        expr: temp > 25
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.room }} is at {{ $value }} ({{ humanize $value }})"
"#;

/// An RFC 3339 UTC time (`2024-01-02T03:04:05.123456789Z`) modulo two seconds, in nanoseconds
/// (days, hours and minutes are whole multiples of 2s).
fn mod_2s_ns(s: &str) -> i64 {
    let t = s.strip_suffix('Z').unwrap_or_else(|| panic!("not UTC: {s:?}"));
    let secs = t
        .get(17..19)
        .and_then(|x| x.parse::<i64>().ok())
        .unwrap_or_else(|| panic!("{s:?}"));
    let frac = t.get(19..).unwrap_or("").trim_start_matches('.');
    let ns = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}")
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("{s:?}"))
    };
    (secs % 2) * 1_000_000_000 + ns
}

fn keys(v: &Value) -> std::collections::BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn rules_evaluate_in_the_same_slots_as_prometheus() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The same absolute path in both: a group's slot offset hashes its file and name.
    let rules = tmp.path().join("side.yml");
    std::fs::write(&rules, SIDE_RULES).expect("rules");
    let cfg = tmp.path().join("fenghuo.yml");
    std::fs::write(&cfg, format!("ruler:\n  rule_files: ['{}']\n", rules.display())).expect("config");
    let node = Fenghuo::start_in(
        &tmp.path().join("data"),
        &["--config.file", cfg.to_str().expect("utf-8 path")],
    );
    let exporter = start_exporter();
    let prom_config = format!(
        r#"
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ['{rules}']
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ['127.0.0.1:{exporter}']
remote_write:
  - url: {write}
    queue_config:
      batch_send_deadline: 500ms
    # Prometheus's own rule results stay home: fenghuo records its own.
    write_relabel_configs:
      - source_labels: [__name__]
        regex: 'room:.*|ALERTS.*'
        action: drop
"#,
        rules = rules.display(),
        write = node.url("/api/v1/write")
    );
    let prom = Prometheus::start(&prom_config, &[]);
    let count = |url: String, q: &str| -> usize {
        get_json(&url, &[("query", q)])["data"]["result"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    };
    wait_for("both to record several times", Duration::from_secs(90), || {
        let enough = |url: String| {
            get_json(
                &url,
                &[("query", "count_over_time(room:temp:max{room=\"a\"}[1m])")],
            )["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|n| *n >= 4.0)
        };
        (enough(prom.url("/api/v1/query")).is_some() && enough(node.url("/api/v1/query")).is_some())
            .then_some(())
    });
    assert_eq!(count(node.url("/api/v1/query"), "room:temp:max"), 2);
    // The latest recorded sample at several past instants: the same timestamps (to the
    // millisecond) and values in both, so the evaluation slots coincide.
    let now = now_ms() as f64 / 1000.0;
    for back in [3.0, 4.1, 5.3] {
        let t = format!("{:.3}", now - back);
        let ask = |url: String| {
            get_json(
                &url,
                &[
                    ("query", "timestamp(room:temp:max) * 1000 + room:temp:max / 1000"),
                    ("time", &t),
                ],
            )["data"]["result"]
                .clone()
        };
        let (p, f) = (ask(prom.url("/api/v1/query")), ask(node.url("/api/v1/query")));
        let vals = |v: &Value| -> Vec<(String, String)> {
            let mut out: Vec<(String, String)> = v
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| (s["metric"]["room"].to_string(), s["value"][1].to_string()))
                        .collect()
                })
                .unwrap_or_default();
            out.sort();
            out
        };
        assert_eq!(vals(&p), vals(&f), "at {t}: prometheus {p} fenghuo {f}");
        assert_eq!(vals(&f).len(), 2);
    }
    // The alert: same labels and annotation text, active since a slot with the same offset.
    let alerts = |url: String| {
        wait_for("a firing alert", Duration::from_secs(30), || {
            let a = get_json(&url, &[]);
            let v = a["data"]["alerts"].as_array().cloned().unwrap_or_default();
            v.iter().any(|x| x["state"] == "firing").then_some(v)
        })
    };
    let (pa, fa) = (
        alerts(prom.url("/api/v1/alerts")),
        alerts(node.url("/api/v1/alerts")),
    );
    assert_eq!(pa.len(), 1);
    assert_eq!(fa.len(), 1);
    assert_eq!(pa[0]["labels"], fa[0]["labels"]);
    assert_eq!(pa[0]["annotations"], fa[0]["annotations"]);
    assert_eq!(fa[0]["annotations"]["summary"], "a is at 30 (30)");
    assert_eq!(pa[0]["value"], fa[0]["value"]);
    let slot = |a: &Value| mod_2s_ns(a["activeAt"].as_str().unwrap_or_default());
    assert_eq!(
        slot(&pa[0]),
        slot(&fa[0]),
        "activeAt {} vs {}",
        pa[0]["activeAt"],
        fa[0]["activeAt"]
    );
    assert_eq!(keys(&pa[0]), keys(&fa[0]));
    // /api/v1/rules: every field Prometheus shows is there, the same group and rule texts.
    let rules_of = |url: String| get_json(&url, &[])["data"]["groups"][0].clone();
    let (pg, fg) = (
        rules_of(prom.url("/api/v1/rules")),
        rules_of(node.url("/api/v1/rules")),
    );
    assert!(
        keys(&fg).is_superset(&keys(&pg)),
        "group {:?} vs {:?}",
        keys(&pg),
        keys(&fg)
    );
    for k in ["name", "file", "interval", "limit"] {
        assert_eq!(pg[k], fg[k], "{k}");
    }
    for i in 0..2 {
        let (pr, fr) = (&pg["rules"][i], &fg["rules"][i]);
        assert!(
            keys(fr).is_superset(&keys(pr)),
            "rule {:?} vs {:?}",
            keys(pr),
            keys(fr)
        );
        for k in [
            "name",
            "query",
            "labels",
            "health",
            "type",
            "state",
            "duration",
            "annotations",
        ] {
            // Prometheus 2.42 writes a rule without labels as `null`; 3.x (and fenghuo) `{}`.
            if k == "labels" && pr[k].is_null() {
                assert_eq!(fr[k], serde_json::json!({}));
                continue;
            }
            assert_eq!(pr[k], fr[k], "{k}");
        }
        assert!(fr["lastEvaluation"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
}
