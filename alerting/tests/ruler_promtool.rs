//! `fenghuo test rules` against `promtool test rules` on the unit-test files under
//! `tests/testdata/rules/`: same verdict for every file and the same messages, and
//! `check-rules` against `promtool check rules` on the rule files. Every file's expected promtool
//! output is stored next to it (`*.promtool`), so the comparison also runs where promtool is not
//! installed; when it is, the stored output is checked against a live run first.

use std::path::{Path, PathBuf};
use std::process::Command;

use fenghuo_alerting::ruler::{rulefmt, unittest};

/// Tests that change the working directory hold this, so they do not race each other.
static CWD: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
        // Recording is explicit: a missing file written here would compare equal to itself and
        // hide that the expectation was never reviewed.
        if std::env::var_os("FENGHUO_UPDATE_PROMTOOL").is_some() {
            store(name, kind, &l);
        }
        let s = stored(name, kind);
        assert!(
            s.is_some(),
            "no stored promtool output for {name} ({kind}); record it with FENGHUO_UPDATE_PROMTOOL=1 and review it"
        );
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
    let _cwd = CWD.lock().unwrap_or_else(|e| e.into_inner());
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
    let _cwd = CWD.lock().unwrap_or_else(|e| e.into_inner());
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

/// What promtool 2.42 cannot run (native histograms in unit tests came with 2.47): `v3_test_*`
/// fixtures carry the output promtool 3.x gives by its source (`*.test.expected`).
#[test]
fn promtool_3x_features_give_their_expected_output() {
    let _cwd = CWD.lock().unwrap_or_else(|e| e.into_inner());
    let names = files("v3_test_");
    assert!(names.len() >= 2, "{names:?}");
    let cwd = std::env::current_dir().unwrap_or_default();
    for name in &names {
        let exp = (|| {
            let text = std::fs::read_to_string(testdata().join(format!("{name}.test.expected"))).ok()?;
            let (head, rest) = text.split_once('\n')?;
            let (out, err) = rest.split_once("----stderr----\n")?;
            Some((out.to_string(), err.to_string(), head == "rc=0"))
        })();
        let exp = exp.unwrap_or_else(|| panic!("no expected output for {name}"));
        std::env::set_current_dir(testdata()).unwrap_or_default();
        let got = unittest::run(&[PathBuf::from(name)]);
        std::env::set_current_dir(&cwd).unwrap_or_default();
        assert_eq!(
            (got.stdout.as_str(), got.stderr.as_str(), got.passed),
            (exp.0.as_str(), exp.1.as_str(), exp.2),
            "{name}"
        );
    }
}

fn run_in_testdata(names: &[&str], opts: &unittest::Options) -> fenghuo_alerting::ruler::cli::Outcome {
    let files: Vec<PathBuf> = names.iter().map(|n| testdata().join(n)).collect();
    fenghuo_alerting::ruler::cli::test_rules_with(&files, opts, None)
}

#[test]
fn run_flag_selects_test_groups_by_name() {
    let opts = |run: &[&str]| unittest::Options {
        run: run.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    // Without --run both groups run and "fails" fails.
    let all = run_in_testdata(&["test_multi_group.yml"], &opts(&[]));
    assert_eq!(all.code, 1);
    assert!(all.stderr.contains("name: fails,"), "{}", all.stderr);
    let only_pass = run_in_testdata(&["test_multi_group.yml"], &opts(&["^pass"]));
    assert_eq!(only_pass.code, 0, "{}", only_pass.stderr);
    assert!(only_pass.stdout.ends_with("  SUCCESS\n\n"));
    // Patterns are alternatives; an unnamed group only matches a pattern matching "".
    let alt = run_in_testdata(&["test_multi_group.yml"], &opts(&["nomatch", "^fai"]));
    assert_eq!(alt.code, 1);
    let unnamed = run_in_testdata(&["test_promql_value_fail.yml"], &opts(&["x"]));
    assert_eq!(unnamed.code, 0, "the unnamed group is skipped");
    let bad = run_in_testdata(&["test_multi_group.yml"], &opts(&["("]));
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("invalid --run pattern"), "{}", bad.stderr);
}

#[test]
fn junit_output_has_a_suite_per_file_and_a_case_per_group() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("results.xml");
    let files: Vec<PathBuf> = ["test_multi_group.yml", "test_basic_pass.yml", "missing.yml"]
        .iter()
        .map(|n| testdata().join(n))
        .collect();
    let o = fenghuo_alerting::ruler::cli::test_rules_with(&files, &unittest::Options::default(), Some(&out));
    assert_eq!(o.code, 1);
    let xml = std::fs::read_to_string(&out).unwrap_or_default();
    let re =
        regex::Regex::new(r#"timestamp="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d""#).unwrap_or_else(|e| panic!("{e}"));
    let xml = re.replace_all(&xml, "timestamp=\"T\"");
    let multi = testdata().join("test_multi_group.yml").display().to_string();
    let basic = testdata().join("test_basic_pass.yml").display().to_string();
    let missing = testdata().join("missing.yml").display().to_string();
    assert!(xml.starts_with(&format!(
        "<testsuites><testsuite name=\"{multi}\" tests=\"2\" failures=\"2\" errors=\"0\" skipped=\"0\" timestamp=\"T\"><testcase name=\"passes\"></testcase><testcase name=\"fails\"><failure>    name: fails,&#xA;    alertname: InstanceDown, time: 10m, &#xA;"
    )), "{xml}");
    assert!(xml.contains(&format!(
        "</testsuite><testsuite name=\"{basic}\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\" timestamp=\"T\"><testcase name=\"unnamed#0\"></testcase></testsuite>"
    )), "{xml}");
    assert!(xml.ends_with(&format!(
        "<testsuite name=\"{missing}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" timestamp=\"\"><testcase name=\"unknown\"><error>open {missing}: no such file or directory</error></testcase></testsuite></testsuites>"
    )), "{xml}");
}

#[test]
fn diff_flag_prints_a_colored_json_difference() {
    let o = run_in_testdata(
        &["test_alert_labels_fail.yml"],
        &unittest::Options {
            diff: true,
            ..Default::default()
        },
    );
    assert_eq!(o.code, 1);
    // The difference text is what the jsondiff package prints for these documents (see
    // ruler::jsondiff's tests), indented as promtool indents it.
    assert_eq!(
        o.stderr,
        "  FAILED:\n    name: wrong severity,\n    alertname: InstanceDown, time: 6m, \n        diff: [\n                {\n                    \"Annotations\": {\n                        \"description\": \"a:9100 of job node has been down for more than 5 minutes (value 0).\",\n                        \"summary\": \"Instance a:9100 down\"\n                    },\n                    \"Labels\": {\n                        \"alertname\": \"InstanceDown\",\n                        \"instance\": \"a:9100\",\n                        \"job\": \"node\",\n                        \"severity\": \x1b[0;33m\"warning\" => \"page\"\x1b[0m\n                    }\n                }\n            ]\n"
    );
}

#[test]
fn debug_flag_reports_each_group_and_dumps_its_data() {
    let o = run_in_testdata(
        &["test_lookahead.yml"],
        &unittest::Options {
            debug: true,
            ..Default::default()
        },
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines[0], "DEBUG: Starting test unnamed#0");
    assert_eq!(
        lines[1],
        "DEBUG: Dump of all data (input_series and rules) at 6m1s:"
    );
    // Input series and recorded series, each `labels =>` and then `value @[ms]` lines, sorted
    // by labels; the input only up to the last evaluation (6m), as promtool loads it, and the
    // sample at 0 outside the left-open range `[6m1s]` at 6m1s.
    let dump = lines[2..lines.len() - 1].join("\n");
    assert!(
        dump.ends_with("{__name__=\"m\", job=\"a\"} =>\n2 @[60000]\n3 @[120000]\n4 @[180000]\n5 @[240000]\n6 @[300000]\n7 @[360000]"),
        "{dump}"
    );
    assert!(
        dump.starts_with("{__name__=\"ALERTS\", alertname=\"FutureHigh\", alertstate=\"firing\", job=\"a\"} =>\n1 @[240000]\n"),
        "{dump}"
    );
    assert!(dump.contains("{__name__=\"future_m\", job=\"a\"} =>\n2 @[60000]\n3 @[120000]\n4 @[180000]\n5 @[240000]\n6 @[300000]\n6 @[360000]\n"), "{dump}");
    let last = lines[lines.len() - 1];
    assert!(
        last.starts_with("DEBUG: Test unnamed#0 finished, took "),
        "{last}"
    );
}

#[test]
fn ignore_unknown_fields_accepts_rule_files_with_custom_metadata() {
    let strict = run_in_testdata(
        &["flags_test_unknown_rule_fields.yml"],
        &unittest::Options::default(),
    );
    assert_eq!(strict.code, 1);
    assert!(
        strict
            .stderr
            .contains("line 3: field owner not found in type rulefmt.RuleGroup"),
        "{}",
        strict.stderr
    );
    let lenient = run_in_testdata(
        &["flags_test_unknown_rule_fields.yml"],
        &unittest::Options {
            ignore_unknown_fields: true,
            ..Default::default()
        },
    );
    assert_eq!(lenient.code, 0, "{}", lenient.stderr);
}
