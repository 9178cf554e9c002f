//! Unit tests of the Go template layer: language detection, the shared namespace with user
//! files, and errors. Alertmanager-compatibility of the output is checked against golden files
//! and a real Alertmanager in `alerting/tests/gotemplate.rs` and `alerting/tests/am_live.rs`.

use super::*;
use crate::ruler::gotemplate::Value;

fn t0() -> Ts {
    chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default()
}

fn data() -> Value {
    let d = crate::template::NotificationData::build(
        "team",
        "{}:{}",
        &[("alertname".to_string(), "Down".to_string())].into(),
        &[crate::model::Alert {
            labels: [("alertname", "Down"), ("job", "api")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: Default::default(),
            starts_at: t0(),
            ends_at: t0() + chrono::Duration::hours(1),
            generator_url: String::new(),
            updated_at: t0(),
            timeout: false,
        }],
        t0(),
        "http://fh:9093",
        "t1",
        "http://ack",
    );
    data::data_value(&d)
}

#[test]
fn go_and_handlebars_are_told_apart() {
    for go in [
        "{{ .Status }}",
        "{{ template \"__subject\" . }}",
        "{{ range .Alerts }}{{ .Labels.alertname }}{{ end }}",
        "{{ toUpper .Status }}",
        "plain text",
        "{{/* comment */}}x",
    ] {
        assert!(is_go_template(go), "{go}");
    }
    for hbs in [
        "{{status}}",
        "{{commonLabels.alertname}}",
        "{{#each alerts}}{{labels.alertname}}{{/each}}",
        "{{> default.title}}",
        "{{upper status}}",
        "{{json alerts}}",
    ] {
        assert!(!is_go_template(hbs), "{hbs}");
    }
}

#[test]
fn user_files_override_defaults_but_empty_bodies_do_not() {
    let mut g = GoTemplates::new().unwrap_or_else(|e| panic!("{e}"));
    g.add_file(
        "mine.tmpl",
        r#"{{ define "__alertmanager" }}fenghuo{{ end }}{{ define "__description" }}   {{ end }}{{ define "mine" }}[{{ template "__subject" . }}]{{ end }}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let t = g.compile(r#"{{ template "slack.default.username" . }}|{{ template "mine" . }}"#);
    let out = t.and_then(|t| t.render(&data(), false, t0()));
    assert_eq!(out.as_deref(), Ok("fenghuo|[[FIRING:1] Down (api)]"));
    assert!(g.has("mine") && g.has("mine.tmpl") && g.has("email.default.html"));
}

#[test]
fn errors_are_reported_not_panics() {
    let g = GoTemplates::new().unwrap_or_else(|e| panic!("{e}"));
    assert!(g.compile("{{ .Status ").is_err());
    assert!(g.compile("{{ nosuchfunc .Status }}").is_err());
    let t = g
        .compile(r#"{{ template "nosuch" . }}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let err = t.render(&data(), false, t0()).err().unwrap_or_default();
    assert!(err.contains("no template \"nosuch\""), "{err}");
    let t = g
        .compile(r#"{{ reReplaceAll "(" "x" .Status }}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(t.render(&data(), false, t0()).is_err());
    let t = g
        .compile(r#"{{ tz "Nowhere/Nothing" now }}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let err = t.render(&data(), false, t0()).err().unwrap_or_default();
    assert!(err.contains("unknown time zone"), "{err}");
    // Malformed HTML around an action fails like html/template does.
    let t = g
        .compile(r#"<a href=x{{ .Status }}"y">"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(t.render(&data(), true, t0()).is_err());
}

#[test]
fn now_and_since_use_the_engine_clock() {
    let g = GoTemplates::new().unwrap_or_else(|e| panic!("{e}"));
    let t = g
        .compile(r#"{{ now }}|{{ range .Alerts }}{{ since .StartsAt }}{{ end }}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let later = t0() + chrono::Duration::minutes(90);
    assert_eq!(
        t.render(&data(), false, later).as_deref(),
        Ok("2024-01-01 01:30:00 +0000 UTC|1h30m0s")
    );
}

#[test]
fn fenghuo_fields_are_available() {
    let g = GoTemplates::new().unwrap_or_else(|e| panic!("{e}"));
    let t = g
        .compile(r#"{{ .Tenant }} {{ .AckURL }} {{ .DigestCount }} {{ if .Escalation }}esc{{ else }}none{{ end }}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        t.render(&data(), false, t0()).as_deref(),
        Ok("t1 http://ack 1 none")
    );
}

#[test]
fn runaway_recursion_and_output_are_errors_not_crashes() {
    // Rendering happens on tokio worker threads (2 MiB stacks); a self-recursive definition must
    // hit the depth limit there, not overflow the stack.
    let h = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let g = GoTemplates::new().unwrap_or_else(|e| panic!("{e}"));
            let t = g
                .compile(r#"{{ define "a" }}x{{ template "a" . }}{{ end }}{{ template "a" . }}"#)
                .unwrap_or_else(|e| panic!("{e}"));
            let deep = t.render(&data(), true, t0());
            let t = g
                .compile(r#"{{ range $i := 100000 }}{{ range 1000 }}xxxxxxxxxx{{ end }}{{ end }}"#)
                .unwrap_or_else(|e| panic!("{e}"));
            (deep.is_err(), t.render(&data(), false, t0()).is_err())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.join().ok(), Some((true, true)));
}

#[test]
fn loops_that_write_nothing_run_into_the_step_limit() {
    let g = GoTemplates::new().unwrap_or_else(|e| panic!("{e}"));
    // Neither loop writes a byte, so the output cap never fires; ranging over a huge integer
    // must neither allocate its whole list nor run for minutes.
    for src in [
        r#"{{ range 1000000000000 }}{{ end }}"#,
        r#"{{ range $i := 100000 }}{{ range $j := 100000 }}{{ end }}{{ end }}"#,
    ] {
        let t = g.compile(src).unwrap_or_else(|e| panic!("{e}"));
        let r = t.render(&data(), false, t0());
        assert!(r.as_ref().is_err_and(|e| e.contains("steps")), "{src}: {r:?}");
    }
    // Ordinary integer ranges still count from zero, with break and else.
    let t = g
        .compile(r#"{{ range $i := 5 }}{{ if eq $i 3 }}{{ break }}{{ end }}{{ $i }}{{ end }}|{{ range 0 }}x{{ else }}empty{{ end }}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.render(&data(), false, t0()).as_deref(), Ok("012|empty"));
}

#[test]
fn huge_intermediate_strings_are_errors_not_gigabytes() {
    let g = GoTemplates::new().unwrap_or_else(|e| panic!("{e}"));
    let k = "k".repeat(1000);
    // Two chained replacements of every empty match would build ~1 GB in a variable.
    let src = format!(
        r#"{{{{ $a := reReplaceAll "" "{k}" "{k}" }}}}{{{{ $b := reReplaceAll "" "{k}" $a }}}}{{{{ len $b }}}}"#
    );
    let t = g.compile(&src).unwrap_or_else(|e| panic!("{e}"));
    let r = t.render(&data(), false, t0());
    assert!(r.as_ref().is_err_and(|e| e.contains("reReplaceAll")), "{r:?}");
    // Within the limit, reReplaceAll still expands groups like Go's ReplaceAllString.
    let t = g
        .compile(r#"{{ reReplaceAll "(a)(b)" "$2$1${1}x" "zabab" }}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.render(&data(), false, t0()).as_deref(), Ok("zbaaxbaax"));
    // join of a list that would exceed the limit.
    let t = g
        .compile(&format!(
            r#"{{{{ $l := stringSlice "{k}" "{k}" }}}}{{{{ $s := join "{}" $l }}}}{{{{ len $s }}}}"#,
            "s".repeat(5 << 20)
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(t.render(&data(), false, t0()).is_err_and(|e| e.contains("join")));
    // printf refuses Go-sized widths (checked against Go in ruler::gotemplate::fmt).
    let t = g
        .compile(r#"{{ printf "%0999999999d" 1 }}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        t.render(&data(), false, t0()).as_deref(),
        Ok("%!(NOVERB)%!(EXTRA int=1)")
    );
}
