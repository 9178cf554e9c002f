//! `fenghuo test rules`: promtool's rule unit-test format (`rule_files`, `evaluation_interval`,
//! `group_eval_order`, `tests` with `input_series`, `alert_rule_test`, `promql_expr_test`,
//! `external_labels`, `external_url`) run with the ruler's own evaluation code against an
//! in-memory store, reporting like `promtool test rules` so verdicts and messages compare.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fenghuo_query::{Engine, EngineOptions, PointValue};
use fenghuo_storage::api::Appender;
use fenghuo_storage::memory::MemStore;
use fenghuo_storage::model::{Labels, Sample, SeriesWrite, TenantId, WriteBatch, stale_nan};

use crate::ruler::duration::format_duration;
use crate::ruler::gotemplate::fmt::format_go_duration;
use crate::ruler::group::{Backend, GroupOptions, Notifier, OutgoingAlert};
use crate::ruler::loader::load_groups;
use crate::ruler::rule::AlertState;
use crate::ruler::yaml::{self, Decoder, Node};

/// What running one or more test files printed, and whether all passed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub stdout: String,
    pub stderr: String,
    pub passed: bool,
}

#[derive(Debug, Default)]
struct TestFile {
    rule_files: Vec<String>,
    evaluation_interval_ms: i64,
    group_eval_order: Vec<String>,
    tests: Vec<TestGroup>,
    fuzzy_compare: bool,
}

#[derive(Debug, Default)]
struct TestGroup {
    interval_ms: i64,
    input_series: Vec<(String, String)>,
    alert_tests: Vec<AlertTest>,
    promql_tests: Vec<PromqlTest>,
    external_labels: BTreeMap<String, String>,
    external_url: String,
    name: String,
    start_ms: i64,
}

#[derive(Debug, Default)]
struct AlertTest {
    eval_time_ms: i64,
    alertname: String,
    exp_alerts: Vec<(BTreeMap<String, String>, BTreeMap<String, String>)>,
}

#[derive(Debug, Default)]
struct PromqlTest {
    expr: String,
    eval_time_ms: i64,
    exp_samples: Vec<(String, f64)>,
}

fn decode_file(doc: &Node, d: &mut Decoder) -> TestFile {
    let mut f = TestFile::default();
    let known = [
        "rule_files",
        "evaluation_interval",
        "group_eval_order",
        "tests",
        "fuzzy_compare",
    ];
    for (k, v) in d.fields(doc, "main.unitTestFile", &known) {
        match k {
            "rule_files" => f.rule_files = d.seq(v, "[]string").iter().map(|n| d.string(n)).collect(),
            "evaluation_interval" => f.evaluation_interval_ms = d.duration(v),
            "group_eval_order" => {
                f.group_eval_order = d.seq(v, "[]string").iter().map(|n| d.string(n)).collect()
            }
            "fuzzy_compare" => f.fuzzy_compare = d.string(v) == "true",
            _ => {
                for t in d.seq(v, "[]main.testGroup") {
                    f.tests.push(decode_group(t, d));
                }
            }
        }
    }
    f
}

fn decode_group(n: &Node, d: &mut Decoder) -> TestGroup {
    let mut g = TestGroup::default();
    let known = [
        "interval",
        "input_series",
        "alert_rule_test",
        "promql_expr_test",
        "external_labels",
        "external_url",
        "name",
        "start_timestamp",
    ];
    for (k, v) in d.fields(n, "main.testGroup", &known) {
        match k {
            "interval" => g.interval_ms = d.duration(v),
            "input_series" => {
                for s in d.seq(v, "[]main.series") {
                    let (mut series, mut values) = (String::new(), String::new());
                    for (k, v) in d.fields(s, "main.series", &["series", "values"]) {
                        if k == "series" {
                            series = d.string(v);
                        } else {
                            values = d.string(v);
                        }
                    }
                    g.input_series.push((series, values));
                }
            }
            "alert_rule_test" => {
                for a in d.seq(v, "[]main.alertTestCase") {
                    let mut t = AlertTest::default();
                    for (k, v) in d.fields(a, "main.alertTestCase", &["eval_time", "alertname", "exp_alerts"])
                    {
                        match k {
                            "eval_time" => t.eval_time_ms = d.duration(v),
                            "alertname" => t.alertname = d.string(v),
                            _ => {
                                for e in d.seq(v, "[]main.alert") {
                                    let (mut l, mut an) = (BTreeMap::new(), BTreeMap::new());
                                    for (k, v) in
                                        d.fields(e, "main.alert", &["exp_labels", "exp_annotations"])
                                    {
                                        if k == "exp_labels" {
                                            l = d.string_map(v);
                                        } else {
                                            an = d.string_map(v);
                                        }
                                    }
                                    t.exp_alerts.push((l, an));
                                }
                            }
                        }
                    }
                    g.alert_tests.push(t);
                }
            }
            "promql_expr_test" => {
                for p in d.seq(v, "[]main.promqlTestCase") {
                    let mut t = PromqlTest::default();
                    for (k, v) in d.fields(p, "main.promqlTestCase", &["expr", "eval_time", "exp_samples"]) {
                        match k {
                            "expr" => t.expr = d.string(v),
                            "eval_time" => t.eval_time_ms = d.duration(v),
                            _ => {
                                for s in d.seq(v, "[]main.sample") {
                                    let (mut l, mut val) = (String::new(), 0.0);
                                    for (k, v) in
                                        d.fields(s, "main.sample", &["labels", "value", "histogram"])
                                    {
                                        match k {
                                            "labels" => l = d.string(v),
                                            "value" => val = d.float(v),
                                            _ => {}
                                        }
                                    }
                                    t.exp_samples.push((l, val));
                                }
                            }
                        }
                    }
                    g.promql_tests.push(t);
                }
            }
            "external_labels" => g.external_labels = d.string_map(v),
            "external_url" => g.external_url = d.string(v),
            "name" => g.name = d.string(v),
            _ => {
                let s = d.string(v);
                match parse_start(&s) {
                    Ok(ms) => g.start_ms = ms,
                    Err(e) => d.errors.push(e),
                }
            }
        }
    }
    g
}

fn parse_start(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        return Ok((f * 1000.0).round() as i64);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("cannot parse {s:?} to a valid timestamp"))
}

/// Parses a series in metric notation (`up{job="x"}`, `{a="1"}`, `{}`) into labels
/// (`parser.ParseMetric`).
pub fn parse_metric(s: &str) -> Result<Labels, String> {
    let bad = |what: &str| format!("1:1: parse error: {what}");
    let s = s.trim();
    let (name, rest) = match s.find('{') {
        Some(i) => (s[..i].trim(), &s[i..]),
        None => (s, ""),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        if !fenghuo_storage::model::is_legacy_metric_name(name) {
            return Err(bad(&format!("unexpected character in metric name {name:?}")));
        }
        pairs.push(("__name__".into(), name.to_string()));
    } else if rest.is_empty() {
        return Err(bad("unexpected end of input"));
    }
    if !rest.is_empty() {
        let body = rest
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .ok_or_else(|| bad("unclosed left brace"))?;
        let mut chars = body.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let mut key = String::new();
            if chars.peek() == Some(&'"') {
                key = read_quoted(&mut chars).ok_or_else(|| bad("unterminated quoted string"))?;
            } else {
                while let Some(c) = chars.peek().copied().filter(|c| c.is_alphanumeric() || *c == '_') {
                    key.push(c);
                    chars.next();
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if key.is_empty() || chars.next() != Some('=') {
                return Err(bad("unexpected character inside braces"));
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() != Some(&'"') {
                return Err(bad("unexpected label value, expected string"));
            }
            let val = read_quoted(&mut chars).ok_or_else(|| bad("unterminated quoted string"))?;
            pairs.push((key, val));
        }
    }
    Ok(Labels::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
}

fn read_quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
    chars.next();
    let mut out = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                c => out.push(c),
            },
            c => out.push(c),
        }
    }
}

/// Expands promqltest's value notation (`1+2x3 _ stale 5x2 _x3`) into optional values.
pub fn expand_values(text: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for item in text.split_whitespace() {
        if item.starts_with("{{") {
            return Err(format!("native histogram input values are not supported: {item}"));
        }
        let bad = || format!("invalid series value {item:?}");
        let (head, times) = match item.rsplit_once('x') {
            Some((h, n)) if !h.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => {
                (h, Some(n.parse::<usize>().map_err(|_| bad())?))
            }
            _ => (item, None),
        };
        if head == "_" {
            out.extend(std::iter::repeat_n(None, times.unwrap_or(1)));
            continue;
        }
        let (start, step) = split_step(head).ok_or_else(bad)?;
        match times {
            None => {
                if step.is_some() {
                    return Err(bad());
                }
                out.push(Some(start));
            }
            Some(n) => {
                let mut v = start;
                for _ in 0..=n {
                    out.push(Some(v));
                    v += step.unwrap_or(0.0);
                }
            }
        }
    }
    Ok(out)
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "stale" => Some(stale_nan()),
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// `a`, `a+b` or `a-b` (the sign of `a` is part of it).
fn split_step(s: &str) -> Option<(f64, Option<f64>)> {
    let b = s.as_bytes();
    for i in 1..b.len() {
        if (b[i] == b'+' || b[i] == b'-') && !matches!(b[i - 1], b'e' | b'E') {
            let start = parse_value(&s[..i])?;
            let step = parse_value(&s[i + 1..])?;
            return Some((start, Some(if b[i] == b'-' { -step } else { step })));
        }
    }
    Some((parse_value(s)?, None))
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`.
fn format_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let e = format!("{v:E}");
    let (mant, exp) = e.split_once('E').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!("{mant}E{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

struct NoopNotifier;
impl Notifier for NoopNotifier {
    fn send(&self, _: &TenantId, _: Vec<OutgoingAlert>) {}
}

fn indent_lines(s: &str, indent: &str) -> String {
    s.split('\n').collect::<Vec<_>>().join(&format!("\n{indent}"))
}

type LabelsAndAnnotations = Vec<(Labels, Labels)>;

fn la_string(la: &LabelsAndAnnotations) -> String {
    if la.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[");
    for (i, (l, a)) in la.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "\n{i}:{}",
            indent_lines(&format!("\nLabels:{l}\nAnnotations:{a}"), "  ")
        ));
    }
    s.push_str("\n]");
    s
}

fn to_labels(m: &BTreeMap<String, String>) -> Labels {
    Labels::from_pairs(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn floats_equal(a: f64, b: f64, fuzzy: bool) -> bool {
    a == b || (fuzzy && (next_toward(a, f64::NEG_INFINITY) == b || next_toward(a, f64::INFINITY) == b))
}

fn next_toward(x: f64, to: f64) -> f64 {
    if x.is_nan() || x == to {
        return x;
    }
    if x == 0.0 {
        return if to > 0.0 {
            f64::from_bits(1)
        } else {
            -f64::from_bits(1)
        };
    }
    let bits = x.to_bits();
    let up = (to > x) == (x > 0.0);
    f64::from_bits(if up { bits + 1 } else { bits - 1 })
}

impl TestGroup {
    fn max_eval_time(&self) -> i64 {
        self.alert_tests
            .iter()
            .map(|a| a.eval_time_ms)
            .chain(self.promql_tests.iter().map(|p| p.eval_time_ms))
            .max()
            .unwrap_or(0)
            .max(0)
    }

    fn run(&self, file: &TestFile, rule_files: &[PathBuf], eval_interval: i64) -> Vec<String> {
        let interval = if self.interval_ms > 0 {
            self.interval_ms
        } else {
            eval_interval
        };
        let tenant = TenantId::default_tenant();
        let store = Arc::new(MemStore::new());
        // Input series.
        let mut batch = WriteBatch::default();
        for (series, values) in &self.input_series {
            let labels = match parse_metric(series) {
                Ok(l) => l,
                Err(e) => return vec![e],
            };
            let vals = match expand_values(values) {
                Ok(v) => v,
                Err(e) => return vec![e],
            };
            let samples: Vec<Sample> = vals
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    v.map(|v| Sample {
                        t: self.start_ms + i as i64 * interval,
                        v,
                    })
                })
                .collect();
            batch.series.push(SeriesWrite {
                labels,
                samples,
                ..Default::default()
            });
        }
        if let Err(e) = store.append(&tenant, batch) {
            return vec![e.to_string()];
        }
        let engine = Engine::new(EngineOptions {
            default_subquery_step_ms: eval_interval,
            ..EngineOptions::default()
        });
        let backend = Backend {
            engine: Arc::new(engine),
            queryable: store.clone(),
            appender: store.clone(),
        };
        let mut groups = match load_groups(&tenant, rule_files, interval, true) {
            Ok(g) => g,
            Err(e) => return e,
        };
        let order: BTreeMap<&str, usize> = file
            .group_eval_order
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        groups.sort_by_key(|g| order.get(g.name.as_str()).copied().unwrap_or(0));
        let opts = GroupOptions {
            external_labels: self.external_labels.clone(),
            external_url: self.external_url.clone(),
            ..GroupOptions::default()
        };

        for a in &self.alert_tests {
            if a.alertname.is_empty() {
                let g = if self.name.is_empty() {
                    String::new()
                } else {
                    format!(" (in TestGroup {})", self.name)
                };
                return vec![format!(
                    "an item under alert_rule_test misses required attribute alertname at eval_time {}{g}",
                    format_duration(a.eval_time_ms)
                )];
            }
        }
        let mut eval_times: Vec<i64> = self.alert_tests.iter().map(|a| a.eval_time_ms).collect();
        eval_times.sort_unstable();
        eval_times.dedup();

        let mint = self.start_ms;
        let maxt = mint + self.max_eval_time();
        let mut errs = Vec::new();
        let mut curr = 0;
        let mut ts = mint;
        while ts <= maxt {
            let mut eval_errs = Vec::new();
            for g in &groups {
                g.eval(ts, ts, &backend, &opts, &NoopNotifier);
                for r in &g.rules {
                    if let Some(e) = &r.status().lock().last_error {
                        eval_errs.push(format!(
                            "    rule: {}, time: {}, err: {e}",
                            r.name(),
                            format_go_duration(ts.saturating_mul(1_000_000))
                        ));
                    }
                }
            }
            if !eval_errs.is_empty() {
                errs.extend(eval_errs);
                return errs;
            }
            while curr < eval_times.len()
                && ts - mint <= eval_times[curr]
                && eval_times[curr] < ts + eval_interval - mint
            {
                let t = eval_times[curr];
                let mut got: BTreeMap<&str, LabelsAndAnnotations> = BTreeMap::new();
                for g in &groups {
                    for ar in g.alerting_rules() {
                        if !self
                            .alert_tests
                            .iter()
                            .any(|a| a.eval_time_ms == t && a.alertname == ar.name)
                        {
                            continue;
                        }
                        let firing = ar
                            .active_alerts()
                            .into_iter()
                            .filter(|a| a.state == AlertState::Firing)
                            .map(|a| (a.labels, a.annotations));
                        got.entry(ar.name.as_str()).or_default().extend(firing);
                    }
                }
                for tc in self.alert_tests.iter().filter(|a| a.eval_time_ms == t) {
                    let mut got_alerts = got.get(tc.alertname.as_str()).cloned().unwrap_or_default();
                    let mut exp: LabelsAndAnnotations = tc
                        .exp_alerts
                        .iter()
                        .map(|(l, a)| {
                            let mut l = l.clone();
                            l.insert("alertname".into(), tc.alertname.clone());
                            (to_labels(&l), to_labels(a))
                        })
                        .collect();
                    got_alerts.sort();
                    exp.sort();
                    if exp != got_alerts {
                        let name = if self.name.is_empty() {
                            String::new()
                        } else {
                            format!("    name: {},\n", self.name)
                        };
                        errs.push(format!(
                            "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                            tc.alertname,
                            format_duration(tc.eval_time_ms),
                            indent_lines(&la_string(&exp), "            "),
                            indent_lines(&la_string(&got_alerts), "            ")
                        ));
                    }
                }
                curr += 1;
            }
            ts += eval_interval;
        }

        'outer: for tc in &self.promql_tests {
            let got = match crate::ruler::group::Group::query(
                &backend,
                &tenant,
                &tc.expr,
                mint + tc.eval_time_ms,
            ) {
                Ok(v) => v,
                Err(e) => {
                    errs.push(format!(
                        "    expr: {:?}, time: {}, err: {e}",
                        tc.expr,
                        format_duration(tc.eval_time_ms)
                    ));
                    continue;
                }
            };
            let mut got: Vec<(Labels, f64)> = got
                .into_iter()
                .map(|s| {
                    let v = match s.value {
                        PointValue::Float(f) => f,
                        PointValue::Histogram(_) => f64::NAN,
                    };
                    (s.labels, v)
                })
                .collect();
            let mut exp = Vec::new();
            for (l, v) in &tc.exp_samples {
                match parse_metric(l) {
                    Ok(lb) => exp.push((lb, *v)),
                    Err(e) => {
                        errs.push(format!(
                            "    expr: {:?}, time: {}, err: labels {l:?}: {e}",
                            tc.expr,
                            format_duration(tc.eval_time_ms)
                        ));
                        continue 'outer;
                    }
                }
            }
            exp.sort_by(|a, b| a.0.cmp(&b.0));
            got.sort_by(|a, b| a.0.cmp(&b.0));
            let equal = exp.len() == got.len()
                && exp
                    .iter()
                    .zip(&got)
                    .all(|(e, g)| e.0 == g.0 && floats_equal(e.1, g.1, file.fuzzy_compare));
            if !equal {
                let s = |v: &[(Labels, f64)]| -> String {
                    if v.is_empty() {
                        return "nil".into();
                    }
                    v.iter()
                        .map(|(l, f)| format!("{l} {}", format_float_e(*f)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                errs.push(format!(
                    "    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
                    tc.expr,
                    format_duration(tc.eval_time_ms),
                    s(&exp),
                    s(&got)
                ));
            }
        }
        errs
    }
}

fn glob_files(base: &Path, patterns: &[String], warnings: &mut String) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in patterns {
        // Go's filepath.Join cleans the result: "./x.yml" becomes "x.yml".
        let full = if p.is_empty() || Path::new(p).is_absolute() || base == Path::new(".") {
            PathBuf::from(p.strip_prefix("./").unwrap_or(p))
        } else {
            base.join(p)
        };
        let matched = crate::ruler::files::glob(&full.display().to_string());
        if matched.is_empty() {
            warnings.push_str(&format!("  WARNING: no file match pattern {}\n", full.display()));
        }
        out.extend(matched);
    }
    out
}

/// Runs one test file; returns the errors (empty when it passed) and any warnings.
fn run_file(path: &Path, warnings: &mut String) -> Vec<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return vec![crate::ruler::rulefmt::go_io_error(
                &path.display().to_string(),
                &e,
            )];
        }
    };
    let docs = match yaml::parse(&text) {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let Some(doc) = docs.first() else {
        return Vec::new();
    };
    let mut d = Decoder::default();
    let mut file = decode_file(doc, &mut d);
    if let Some(e) = d.into_error() {
        return vec![e];
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let rule_files = glob_files(base, &file.rule_files, warnings);
    if file.evaluation_interval_ms == 0 {
        file.evaluation_interval_ms = 60_000;
    }
    let mut seen = std::collections::HashSet::new();
    for g in &file.group_eval_order {
        if !seen.insert(g) {
            return vec![format!("group name repeated in evaluation order: {g}")];
        }
    }
    let mut errs = Vec::new();
    for t in &file.tests {
        errs.extend(t.run(&file, &rule_files, file.evaluation_interval_ms));
    }
    errs
}

/// Runs test files the way `promtool test rules FILES...` does.
pub fn run(files: &[PathBuf]) -> Report {
    let mut r = Report {
        passed: true,
        ..Default::default()
    };
    for f in files {
        r.stdout.push_str(&format!("Unit Testing:  {}\n", f.display()));
        let mut warnings = String::new();
        let errs = run_file(f, &mut warnings);
        r.stderr.push_str(&warnings);
        if errs.is_empty() {
            r.stdout.push_str("  SUCCESS\n");
        } else {
            r.passed = false;
            r.stderr.push_str("  FAILED:\n");
            for e in errs {
                r.stderr.push_str(&e);
                r.stderr.push('\n');
                r.stdout.push('\n');
            }
        }
        r.stdout.push('\n');
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_series_notation() {
        let v = expand_values("1+2x2 _ 5 _x2 3-1x1 stale").unwrap_or_default();
        let f: Vec<Option<f64>> = v.iter().map(|x| x.filter(|f| !f.is_nan())).collect();
        assert_eq!(
            f,
            vec![
                Some(1.0),
                Some(3.0),
                Some(5.0),
                None,
                Some(5.0),
                None,
                None,
                Some(3.0),
                Some(2.0),
                None
            ]
        );
        assert!(v[9].is_some_and(fenghuo_storage::model::is_stale_nan));
        assert_eq!(expand_values("-1e3").unwrap_or_default(), vec![Some(-1000.0)]);
    }

    #[test]
    fn formats_floats_like_strconv_e() {
        assert_eq!(format_float_e(1.0), "1E+00");
        assert_eq!(format_float_e(0.5), "5E-01");
        assert_eq!(format_float_e(12345.0), "1.2345E+04");
    }

    #[test]
    fn parses_metric_notation() {
        let l = parse_metric("up{job=\"a\", instance=\"b\"}").unwrap_or_default();
        assert_eq!(l.to_string(), "{__name__=\"up\", instance=\"b\", job=\"a\"}");
        assert_eq!(parse_metric("{a=\"1\"}").unwrap_or_default().len(), 1);
    }
}
