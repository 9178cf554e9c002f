//! Runs every scenario file under `tests/testdata/alerting/scenarios/` (Alertmanager's semantics
//! case by case, escalation and acks) through the scenario runner behind `fenghuo test-alerts`.

use std::path::PathBuf;

fn scenario_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/testdata/alerting/scenarios")
}

#[tokio::test]
async fn all_scenarios_pass() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenario_dir())
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yml"))
                .collect()
        })
        .unwrap_or_default();
    files.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/alerting-tests.yml"));
    files.sort();
    assert!(
        files.len() >= 3,
        "scenario files missing in {}",
        scenario_dir().display()
    );
    let mut failures = String::new();
    for f in files {
        match fenghuo_alerting::scenario::run_file(&f).await {
            Ok((report, true)) => println!("{report}"),
            Ok((report, false)) => failures.push_str(&report),
            Err(e) => failures.push_str(&format!("{}: {e}\n", f.display())),
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[tokio::test]
async fn a_wrong_expectation_fails() {
    let dir = tempfile::tempdir().ok();
    let Some(dir) = dir else { return };
    let f = dir.path().join("bad.yml");
    let body = r#"
config: |
  route: {receiver: r, group_wait: 30s}
  receivers: [{name: r, webhook_configs: [{url: "http://127.0.0.1:9/"}]}]
tests:
- name: wrong time
  until: 2m
  input: [{at: 0s, alerts: [{labels: {alertname: A}, ends_at: 1h}]}]
  expect: [{at: 40s, receiver: r}]
"#;
    assert!(std::fs::write(&f, body).is_ok());
    let r = fenghuo_alerting::scenario::run_file(&f).await;
    let (report, ok) = r.unwrap_or_default();
    assert!(!ok, "{report}");
    assert!(report.contains("missing:    at 40s receiver r"), "{report}");
    assert!(report.contains("unexpected: at 30s receiver r"), "{report}");
}
