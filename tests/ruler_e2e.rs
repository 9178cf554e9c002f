//! The ruler end to end with the real `fenghuo` binary: `fenghuo check-rules` and
//! `fenghuo test rules` against `promtool` (Debian `prometheus`) on the fixtures in
//! `tests/testdata/rules/`, and `fenghuo serve` evaluating a tenant's rules over remote-written
//! data: recorded series queryable, alerts in `/api/v1/rules`, `/api/v1/alerts` and the alert
//! engine, tenant isolation, reload on `POST /-/reload` and SIGHUP, and the ruler's metrics.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Fenghuo, http, remote_write_v1, wait_for, which};
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
    let cfg = tmp.path().join("fenghuo.yml");
    std::fs::write(
        &cfg,
        format!(
            "ruler:\n  evaluation_interval: 1s\n  external_labels:\n    cluster: e2e\n  tenant_rule_files:\n    team-a: ['{}']\n",
            rules.display()
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
