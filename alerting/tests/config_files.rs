//! Golden config files: every `*.good.yml` under `tests/testdata/alerting/config/` and every
//! `deploy/examples/alertmanager*.yml` passes `check-config`; every `*.bad.yml` fails with the
//! message named in its first line (`# error: ...`). Also the route tester and template renderer.

use std::path::{Path, PathBuf};

use fenghuo_alerting::cli;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &Path, pred: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(&pred))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn good_configs_load() {
    let mut good = files(&root().join("tests/testdata/alerting/config"), |n| {
        n.ends_with(".good.yml")
    });
    good.extend(files(&root().join("deploy/examples"), |n| {
        n.starts_with("alertmanager") && n.ends_with(".yml")
    }));
    assert!(good.len() >= 2);
    for f in good {
        let (report, ok) = cli::check_config_files(std::slice::from_ref(&f));
        assert!(ok, "{}: {report}", f.display());
        assert!(report.contains("SUCCESS"), "{report}");
    }
}

#[test]
fn upstream_go_templates_load_and_render() {
    let f = root().join("tests/testdata/alerting/config/upstream-style.good.yml");
    let r = cli::check_config(&f).unwrap_or_else(|e| panic!("{e}"));
    assert!(!r.contains("WARNING"), "Go templates are supported now: {r}");
    assert!(r.contains(" - 2 inhibit rules"), "{r}");
    assert!(r.contains(" - 5 receivers"), "{r}");
    let out = cli::render(
        Some(&f),
        r#"{{ template "email.default.subject" . }}"#,
        "none",
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, "[FIRING:1] TestAlert (example:9100 warning)");
    let html = cli::render(Some(&f), "@email.default.html", "html", None).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        html.contains("<title>[FIRING:1] TestAlert (example:9100 warning)</title>"),
        "{html}"
    );
}

#[test]
fn go_template_files_and_fields() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("team.tmpl"),
        r#"{{ define "team.title" }}[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} for {{ .Receiver }}{{ end }}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let cfg = dir.path().join("am.yml");
    std::fs::write(
        &cfg,
        "templates: ['*.tmpl']\nroute:\n  receiver: a\nreceivers:\n- name: a\n  wecom_configs:\n  - webhook_url: 'http://127.0.0.1:9/x'\n    content: '{{ template \"team.title\" . }}'\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (report, ok) = cli::check_config_files(std::slice::from_ref(&cfg));
    assert!(ok, "{report}");
    let out = cli::render(Some(&cfg), "@team.title", "none", None).unwrap_or_default();
    assert_eq!(out, "[FIRING] TestAlert for preview");
    // A broken Go template file fails the load with its position.
    std::fs::write(dir.path().join("team.tmpl"), "{{ define \"x\" }}{{ .Status ").unwrap_or_default();
    let (report, ok) = cli::check_config_files(std::slice::from_ref(&cfg));
    assert!(!ok && report.contains("team.tmpl"), "{report}");
}

#[test]
fn bad_configs_fail_with_their_message() {
    let bad = files(&root().join("tests/testdata/alerting/config"), |n| {
        n.ends_with(".bad.yml")
    });
    assert!(bad.len() >= 10);
    for f in bad {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let want = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# error: "))
            .unwrap_or("")
            .to_string();
        assert!(!want.is_empty(), "{} needs a '# error: ' first line", f.display());
        let (report, ok) = cli::check_config_files(std::slice::from_ref(&f));
        assert!(!ok, "{} should fail", f.display());
        assert!(
            report.contains(&want),
            "{}: expected {want:?} in {report}",
            f.display()
        );
    }
}

#[test]
fn routes_test_like_amtool() {
    let f = root().join("tests/testdata/alerting/config/upstream-style.good.yml");
    let labels = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let r = cli::routes_test(&f, &labels(&["service=foo1", "severity=critical"]), None);
    assert_eq!(r.ok(), Some(("team-X-pager\n".to_string(), true)));
    // A matching child (even with continue) means the parent itself is not a match.
    let r = cli::routes_test(&f, &labels(&["service=database", "owner=team-X"]), None);
    assert_eq!(r.ok(), Some(("team-X-pager\n".to_string(), true)));
    let r = cli::routes_test(&f, &labels(&["service=database", "owner=nobody"]), None);
    assert_eq!(r.ok(), Some(("team-DB-pager\n".to_string(), true)));
    let r = cli::routes_test(&f, &labels(&["service=files"]), Some("team-Y-mails"));
    assert_eq!(r.map(|x| x.1).ok(), Some(true));
    let r = cli::routes_test(&f, &labels(&["service=files"]), Some("team-X-mails"));
    assert_eq!(r.map(|x| x.1).ok(), Some(false));
}

#[test]
fn render_templates() {
    let out = cli::render(None, "@default.title", "none", None).unwrap_or_default();
    assert_eq!(out.trim(), "[FIRING:1] TestAlert (example:9100 warning)");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let alerts = dir.path().join("alerts.json");
    std::fs::write(
        &alerts,
        r#"[{"labels":{"alertname":"X"},"annotations":{"summary":"<b>\"q\"</b>"}}]"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let t = "{{#each alerts}}{{annotations.summary}}{{/each}}";
    assert_eq!(
        cli::render(None, t, "html", Some(&alerts)).unwrap_or_default(),
        "&lt;b&gt;&quot;q&quot;&lt;/b&gt;"
    );
    assert_eq!(
        cli::render(None, t, "json", Some(&alerts)).unwrap_or_default(),
        "<b>\\\"q\\\"</b>"
    );
    assert_eq!(
        cli::render(None, t, "none", Some(&alerts)).unwrap_or_default(),
        "<b>\"q\"</b>"
    );
    assert!(cli::render(None, "{{#each}}", "none", None).is_err());
    assert!(cli::render(None, "@nope", "none", None).is_err());
}

#[test]
fn user_template_files() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("team.hbs"),
        "TEAM {{receiver}} {{> default.title}}",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let cfg = dir.path().join("am.yml");
    std::fs::write(
        &cfg,
        "templates: ['*.hbs']\nroute:\n  receiver: a\nreceivers:\n- name: a\n  wecom_configs:\n  - webhook_url: 'http://127.0.0.1:9/x'\n    content: '{{> team}}'\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (report, ok) = cli::check_config_files(std::slice::from_ref(&cfg));
    assert!(ok, "{report}");
    let out = cli::render(Some(&cfg), "@team", "none", None).unwrap_or_default();
    assert_eq!(
        out.trim(),
        "TEAM preview [FIRING:1] TestAlert (example:9100 warning)"
    );
}

#[derive(serde::Deserialize)]
struct ParityCases {
    cases: Vec<ParityCase>,
}

#[derive(serde::Deserialize)]
struct ParityCase {
    name: String,
    config: String,
    amtool: String,
    fenghuo: Option<String>,
    why: Option<String>,
}

/// `check-config` agrees with the real `amtool check-config` (Debian `prometheus-alertmanager`)
/// on every case of `tests/testdata/alerting/check-config-cases.yml`: both accept or both reject
/// (differences are listed with their reason), and accepted files report the same counts.
#[test]
fn check_config_agrees_with_amtool() {
    let text = std::fs::read_to_string(root().join("tests/testdata/alerting/check-config-cases.yml"))
        .unwrap_or_else(|e| panic!("cases: {e}"));
    let cases: ParityCases = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("cases: {e}"));
    assert!(cases.cases.len() > 30);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for c in &cases.cases {
        let f = dir.path().join(format!("{}.yml", c.name));
        std::fs::write(&f, &c.config).unwrap_or_else(|e| panic!("{e}"));
        let out = std::process::Command::new("amtool")
            .arg("check-config")
            .arg(&f)
            .output()
            .unwrap_or_else(|e| panic!("amtool missing (apt-get install -y prometheus-alertmanager): {e}"));
        let am_text =
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        let am_ok = !am_text.contains("FAILED");
        assert_eq!(am_ok, c.amtool == "ok", "{}: amtool says\n{am_text}", c.name);
        let (fh_text, fh_ok) = cli::check_config_files(std::slice::from_ref(&f));
        let want = c.fenghuo.as_deref().unwrap_or(&c.amtool) == "ok";
        assert_eq!(
            fh_ok, want,
            "{}: fenghuo says\n{fh_text}\namtool says\n{am_text}",
            c.name
        );
        if c.fenghuo.is_some() {
            assert!(c.why.is_some(), "{}: a difference needs its reason", c.name);
        }
        if am_ok && fh_ok {
            for line in am_text.lines().filter(|l| l.starts_with(" - ")) {
                assert!(
                    fh_text.contains(line),
                    "{}: {line:?} missing from\n{fh_text}",
                    c.name
                );
            }
        }
    }
}
