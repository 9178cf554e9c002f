//! Bounded fuzzing of what the alert engine and the ruler parse from
//! outside: `alertmanager.yml`, rule files, label matchers, and templates
//! in both languages (compiled and rendered). Mutations of the checked-in
//! examples must load or fail with an error, never panic or hang.

use std::path::{Path, PathBuf};

use fenghuo_alerting::template::{Escape, NotificationData, Templates};
use fenghuo_storage_api::fuzz;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &Path, ext: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    out.sort();
    out
}

const YAML_TOKENS: &[&[u8]] = &[
    b"\n- ", b": ", b"&a ", b"*a", b"<<: *a", b"[", b"{", b"'", b"\"", b"\t", b"!!str ", b"~",
];

#[test]
fn alertmanager_configs_load_or_fail_cleanly() {
    let mut seeds = files(&repo().join("deploy/examples"), "yml");
    seeds.extend(files(&repo().join("tests/testdata/alerting/config"), "yml"));
    let base = repo().join("deploy/examples");
    let runs = fuzz::run("alertmanager.yml", 0xa1, &seeds, YAML_TOKENS, |input| {
        if let Ok(text) = std::str::from_utf8(input) {
            let _ = fenghuo_alerting::config::load_str(text, &base);
        }
    });
    assert!(runs > seeds.len());
}

#[test]
fn rule_files_parse_or_fail_cleanly() {
    let seeds = files(&repo().join("tests/testdata/rules"), "yml");
    assert!(seeds.len() > 10);
    let mut tokens = YAML_TOKENS.to_vec();
    tokens.extend([&b"{{ $labels.x }}"[..], b"expr: (((", b"for: 99999999999h"]);
    fuzz::run("rule file", 0xa2, &seeds, &tokens, |input| {
        if let Ok(text) = std::str::from_utf8(input)
            && let Ok(groups) = fenghuo_alerting::ruler::rulefmt::parse(text)
        {
            let _ = fenghuo_alerting::ruler::rulefmt::validate(&groups);
        }
    });
}

#[test]
fn matchers_parse_or_fail_cleanly() {
    let seeds: Vec<Vec<u8>> = [
        "{alertname=\"Down\", severity=~\"critical|warning\"}",
        "foo!=bar,baz=~\"a.*\"",
        "{\"quoted name\"=\"x\", a!~\"(\"}",
        "job=\"\\\"escaped\\\"\"",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzz::run(
        "matchers",
        0xa3,
        &seeds,
        &[b"\"", b"\\", b"=~", b"!~", b",", b"{", b"}"],
        |input| {
            if let Ok(text) = std::str::from_utf8(input) {
                let _ = fenghuo_alerting::matchers::parse_matchers(text);
            }
        },
    );
}

#[test]
fn templates_compile_and_render_or_fail_cleanly() {
    let templates = Templates::load(&[], Path::new(".")).expect("default templates");
    let data = NotificationData::build(
        "team",
        "{}:{alertname=\"Down\"}",
        &Default::default(),
        &[],
        chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
        "http://fh:9093",
        "t",
        "http://ack",
    );
    let seeds: Vec<Vec<u8>> = [
        "{{#each alerts}}{{labels.alertname}}: {{annotations.summary}}{{/each}}{{> email.subject}}",
        "{{#if commonLabels.severity}}{{upper commonLabels.severity}}{{else}}none{{/if}} {{join groupLabelValues \", \"}}",
        "{{#*inline \"row\"}}<tr>{{this}}</tr>{{/inline}}{{#each alerts}}{{> row}}{{/each}}",
        "{{ range .Alerts }}{{ .Labels.alertname }} {{ end }}{{ template \"__subject\" . }}",
        "{{ define \"x\" }}{{ if gt (len .Alerts) 1 }}many{{ else }}one{{ end }}{{ end }}{{ template \"x\" . }}",
        "{{ with .CommonLabels }}{{ .SortedPairs.Names | join \",\" }}{{ end }} {{ printf \"%q\" .Status }}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let tokens: &[&[u8]] = &[
        b"{{",
        b"}}",
        b"{{#each alerts}}",
        b"{{/each}}",
        b"{{> ",
        b"{{#*inline \"a\"}}",
        b"{{/inline}}",
        b"(",
        b")",
        b"{{ range . }}",
        b"{{ end }}",
        b"{{ template \"x\" . }}",
        b"{{ define \"x\" }}",
        b"|",
        b"$",
    ];
    fuzz::run("templates", 0xa4, &seeds, tokens, |input| {
        if let Ok(src) = std::str::from_utf8(input) {
            for escape in [Escape::None, Escape::Html] {
                let _ = templates.render_source(src, escape, &data);
            }
        }
    });
}
