//! Go templates render as Alertmanager renders them. `tests/testdata/alerting/gotemplate/`
//! holds data sets and templates (`cases.json`) and what Alertmanager's template code produces
//! for them (`expected.json`: its default templates and functions on Go's text/template and
//! html/template; `alerting_am_templates` in `am_live.rs` checks these goldens against a running
//! Alertmanager). Text must match byte for byte; `email.default.html` (fenghuo's own layout)
//! must carry the same text and links.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use fenghuo_alerting::model::{Alert, LabelSet};
use fenghuo_alerting::template::{Escape, NotificationData, Templates};
use serde::Deserialize;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/testdata/alerting/gotemplate")
}

#[derive(Deserialize)]
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
    #[serde(rename = "externalURL")]
    external_url: String,
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

fn load() -> (Cases, BTreeMap<String, String>) {
    let read = |f: &str| std::fs::read_to_string(dir().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let cases: Cases = serde_json::from_str(&read("cases.json")).unwrap_or_else(|e| panic!("cases: {e}"));
    let expected = serde_json::from_str(&read("expected.json")).unwrap_or_else(|e| panic!("expected: {e}"));
    (cases, expected)
}

/// The notification data of a case, as the engine builds it.
fn notification(d: &CaseData) -> NotificationData {
    let alerts: Vec<Alert> = d
        .alerts
        .iter()
        .map(|a| Alert {
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            generator_url: a.generator_url.clone(),
            updated_at: d.now,
            timeout: false,
        })
        .collect();
    NotificationData::build(
        &d.receiver,
        "{}:{}",
        &d.group_labels,
        &alerts,
        d.now,
        &d.external_url,
        "anonymous",
        "http://ack",
    )
}

/// Visible text and link targets of an HTML document, whitespace-normalised.
fn html_digest(html: &str) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut links = Vec::new();
    let mut rest = html;
    let mut skip_until: Option<&str> = None;
    while !rest.is_empty() {
        if let Some(end) = skip_until {
            match rest.find(end) {
                Some(i) => rest = &rest[i + end.len()..],
                None => break,
            }
            skip_until = None;
            continue;
        }
        match rest.find('<') {
            None => {
                text.push_str(rest);
                break;
            }
            Some(i) => {
                text.push_str(&rest[..i]);
                text.push(' ');
                let tag_end = rest[i..].find('>').map(|j| i + j + 1).unwrap_or(rest.len());
                let tag = &rest[i..tag_end];
                if let Some(h) = tag.find("href=\"") {
                    let v = &tag[h + 6..];
                    links.push(v[..v.find('"').unwrap_or(v.len())].to_string());
                }
                if tag.starts_with("<style") {
                    skip_until = Some("</style>");
                } else if tag.starts_with("<!--") {
                    skip_until = Some("-->");
                }
                rest = &rest[tag_end..];
            }
        }
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (text, links)
}

#[test]
fn go_templates_match_alertmanager() {
    let (cases, expected) = load();
    let mut templates = Templates::load(&[], Path::new(".")).unwrap_or_else(|e| panic!("load: {e}"));
    let names: Vec<(String, bool, String)> = cases
        .templates
        .iter()
        .map(|t| {
            let n = templates
                .add_go(&t.name, &t.src)
                .unwrap_or_else(|e| panic!("{}: {e}", t.name));
            (t.name.clone(), t.html, n)
        })
        .collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    for d in &cases.data {
        let data = notification(d);
        for (name, html, tname) in &names {
            let key = format!("{}/{}", d.name, name);
            let Some(want) = expected.get(&key) else {
                panic!("no expected output for {key}");
            };
            let esc = if *html { Escape::Html } else { Escape::None };
            let got = match templates.render(tname, esc, &data) {
                Ok(s) => s,
                Err(e) => format!("ERROR: {e}"),
            };
            checked += 1;
            let ok = if name == "html-email-default" {
                html_digest(&got) == html_digest(want)
            } else if want.starts_with("ERROR") {
                got.starts_with("ERROR")
            } else {
                &got == want
            };
            if !ok {
                failures.push(format!("{key}:\n  want {want:?}\n  got  {got:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} renderings differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, expected.len());
}
