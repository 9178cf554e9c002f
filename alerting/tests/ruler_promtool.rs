//! `fenghuo test rules` against `promtool test rules` on the unit-test files under
//! `tests/testdata/rules/`: same verdict for every file and the same messages, and
//! `check-rules` against `promtool check rules` on the rule files. Every file's expected promtool
//! output is stored next to it (`*.promtool`), so the comparison also runs where promtool is not
//! installed; when it is, the stored output is checked against a live run first.

use std::path::{Path, PathBuf};
use std::process::Command;

use fenghuo_alerting::ruler::{rulefmt, unittest};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/testdata/rules")
}

fn files(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(testdata())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with(prefix) && n.ends_with(".yml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn promtool() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/promtool");
    p.exists().then_some(p)
}

/// Runs promtool in the testdata directory (relative names, as the stored outputs have).
fn live(args: &[&str]) -> Option<(String, String, bool)> {
    let pt = promtool()?;
    let out = Command::new(pt)
        .args(args)
        .current_dir(testdata())
        .output()
        .ok()?;
    Some((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    ))
}

/// Stored promtool output: `rc=N`, then stdout, a `----stderr----` line, then stderr.
fn stored(name: &str, kind: &str) -> Option<(String, String, bool)> {
    let text = std::fs::read_to_string(testdata().join(format!("{name}.{kind}.promtool"))).ok()?;
    let (head, rest) = text.split_once('\n')?;
    let (out, err) = rest.split_once("----stderr----\n")?;
    Some((out.to_string(), err.to_string(), head == "rc=0"))
}

fn store(name: &str, kind: &str, r: &(String, String, bool)) {
    let text = format!("rc={}\n{}----stderr----\n{}", if r.2 { 0 } else { 1 }, r.0, r.1);
    let _ = std::fs::write(testdata().join(format!("{name}.{kind}.promtool")), text);
}

/// The expected promtool result: live when available (and then recorded), else stored.
fn expected(name: &str, kind: &str, args: &[&str]) -> (String, String, bool) {
    if let Some(l) = live(args) {
        if std::env::var_os("FENGHUO_UPDATE_PROMTOOL").is_some() || stored(name, kind).is_none() {
            store(name, kind, &l);
        }
        let s = stored(name, kind);
        assert_eq!(
            s.as_ref(),
            Some(&l),
            "stored promtool output of {name} is stale; rerun with FENGHUO_UPDATE_PROMTOOL=1"
        );
        return l;
    }
    stored(name, kind).unwrap_or_else(|| panic!("no stored promtool output for {name}"))
}

/// Lines that are expected to differ: promtool 2.42's PromQL parse errors carry positions and
/// wording that promql-parser does not produce.
/// Also where Prometheus 3.x (which fenghuo follows) words things differently from promtool 2.42:
/// a recording rule name with braces (2.42: "invalid recording rule name"), the position of
/// "one of 'record' or 'alert'" (3.x prints both nodes), the YAML type name of a rule
/// (`rulefmt.Rule`, 2.42: `rulefmt.RuleNode`), and YAML syntax errors (a different parser's text).
const BRACES: &str = "braces present in the recording rule name; should it be in expr?: ";

fn normalize(s: &str) -> String {
    s.lines()
        .map(|l| {
            if let Some(i) = l.find("could not parse expression:") {
                format!("{}could not parse expression: <parse error>", &l[..i])
            } else if let Some(i) = l.find(BRACES) {
                format!(
                    "{}invalid recording rule name: {}",
                    &l[..i],
                    &l[i + BRACES.len()..]
                )
            } else if let Some(i) = l.find("yaml: line ") {
                format!("{}yaml: <syntax error>", &l[..i])
            } else {
                l.replace("0:0: 0:0: group", "0:0: group")
                    .replace("type rulefmt.RuleNode", "type rulefmt.Rule")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn test_rules_verdicts_and_messages_match_promtool() {
    let names = files("test_");
    assert!(
        names.len() >= 10,
        "expected the unit-test fixtures, found {names:?}"
    );
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut mismatches = Vec::new();
    let (mut pass, mut fail) = (0, 0);
    for name in &names {
        let exp = expected(name, "test", &["test", "rules", name]);
        std::env::set_current_dir(testdata()).unwrap_or_default();
        let got = unittest::run(&[PathBuf::from(name)]);
        std::env::set_current_dir(&cwd).unwrap_or_default();
        if exp.2 {
            pass += 1;
        } else {
            fail += 1;
        }
        if got.passed != exp.2 {
            mismatches.push(format!(
                "{name}: verdict fenghuo={} promtool={}",
                got.passed, exp.2
            ));
        }
        if normalize(&got.stdout) != normalize(&exp.0) || normalize(&got.stderr) != normalize(&exp.1) {
            mismatches.push(format!(
                "{name}: output differs\n--- promtool stdout\n{}\n--- fenghuo stdout\n{}\n--- promtool stderr\n{}\n--- fenghuo stderr\n{}",
                exp.0, got.stdout, exp.1, got.stderr
            ));
        }
    }
    assert!(
        pass >= 3 && fail >= 3,
        "need passing and failing fixtures: {pass} pass, {fail} fail"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} files differ:\n{}",
        mismatches.len(),
        names.len(),
        mismatches.join("\n\n")
    );
}

#[test]
fn check_rules_matches_promtool() {
    let names = files("rules_");
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut mismatches = Vec::new();
    for name in &names {
        let exp = expected(name, "check", &["check", "rules", name]);
        std::env::set_current_dir(testdata()).unwrap_or_default();
        let got = rulefmt::check_file(Path::new(name));
        std::env::set_current_dir(&cwd).unwrap_or_default();
        if got.failed == exp.2 {
            mismatches.push(format!(
                "{name}: verdict fenghuo failed={} promtool ok={}",
                got.failed, exp.2
            ));
        }
        // promtool prints errors in Go map order for labels/annotations; compare as sets.
        let mut a: Vec<String> = normalize(&got.stderr).lines().map(str::to_string).collect();
        let mut b: Vec<String> = normalize(&exp.1).lines().map(str::to_string).collect();
        a.sort();
        b.sort();
        if normalize(&got.stdout) != normalize(&exp.0) || a != b {
            mismatches.push(format!(
                "{name}:\n--- promtool\n{}{}\n--- fenghuo\n{}{}",
                exp.0, exp.1, got.stdout, got.stderr
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}
