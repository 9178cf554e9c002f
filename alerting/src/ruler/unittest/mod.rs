//! `fenghuo test rules`: promtool's rule unit-test format ([`decode`]) run with the ruler's own
//! evaluation code against an in-memory store fed lazily ([`input`]), reporting like
//! `promtool test rules` so verdicts and messages compare; with promtool's options `--run`
//! (test groups by name), `--junit` ([`crate::ruler::junit`]), `--diff`
//! ([`crate::ruler::jsondiff`]) and `--debug`.

pub mod decode;
pub mod input;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use fenghuo_query::series_desc::histogram_test_expression;
use fenghuo_query::{Engine, EngineOptions, PointValue, Value as QValue};
use fenghuo_storage_api::memory::MemStore;
use fenghuo_storage_api::model::{Labels, TenantId};
use serde_json::{Value as Json, json};

use crate::ruler::duration::format_duration;
use crate::ruler::gotemplate::fmt::format_go_duration;
use crate::ruler::group::{Backend, GroupOptions, Notifier, OutgoingAlert};
use crate::ruler::jsondiff;
use crate::ruler::junit::TestSuite;
use crate::ruler::loader::load_groups_with;
use crate::ruler::rule::AlertState;
use crate::ruler::yaml::{self, Decoder};
use decode::{TestFile, TestGroup, decode_file};
pub use input::parse_metric;
use input::{LazyLoader, parse_expected_histogram};

/// What running one or more test files printed, and whether all passed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub stdout: String,
    pub stderr: String,
    pub passed: bool,
    /// One JUnit suite per file (`--junit`).
    pub suites: Vec<TestSuite>,
}

/// promtool's `test rules` flags.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Options {
    /// `--run`: only test groups whose name matches one of these regular expressions.
    pub run: Vec<String>,
    /// `--diff`: show differing alerts as a colored JSON difference.
    pub diff: bool,
    /// `--debug`: print when each test group starts and ends, and dump all its data.
    pub debug: bool,
    /// `--ignore-unknown-fields`: rule files may carry fields Prometheus does not know.
    pub ignore_unknown_fields: bool,
}

/// A test sample: labels, float value and the histogram in series notation (empty for floats).
type TestSample = (Labels, f64, String);

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

/// `Series.String()` of a range-query result for `--debug` (`labels =>` then `value @[t]` lines).
fn matrix_string(m: &[fenghuo_query::RangeSeries]) -> String {
    m.iter()
        .map(|s| {
            let mut vals: Vec<String> = s
                .floats
                .iter()
                .map(|p| format!("{} @[{}]", fenghuo_gofmt::f_shortest(p.v), p.t))
                .collect();
            vals.extend(s.histograms.iter().map(|h| {
                format!(
                    "{} @[{}]",
                    fenghuo_query::series_desc::histogram_string(&h.h),
                    h.t
                )
            }));
            format!("{} =>\n{}", s.labels, vals.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The alerts of one check as `json.Marshal(labelsAndAnnotations)` sees them.
fn la_json(la: &LabelsAndAnnotations) -> Json {
    let obj = |l: &Labels| -> Json {
        Json::Object(
            l.iter()
                .map(|x| (x.name.clone(), Json::String(x.value.clone())))
                .collect(),
        )
    };
    Json::Array(
        la.iter()
            .map(|(l, a)| json!({"Labels": obj(l), "Annotations": obj(a)}))
            .collect(),
    )
}

/// What a group's run needs besides the group.
struct RunCtx<'a> {
    file: &'a TestFile,
    rule_files: &'a [PathBuf],
    opts: &'a Options,
    testname: String,
    stderr: &'a mut String,
}

fn max_eval_time(g: &TestGroup) -> i64 {
    g.alert_tests
        .iter()
        .map(|a| a.eval_time_ms)
        .chain(g.promql_tests.iter().map(|p| p.eval_time_ms))
        .max()
        .unwrap_or(0)
        .max(0)
}

fn sample_string((l, v, h): &TestSample) -> String {
    if h.is_empty() {
        format!("{l} {}", fenghuo_gofmt::format_float(*v, b'E', -1))
    } else {
        format!("{l} {h}")
    }
}

fn samples_string(v: &[TestSample]) -> String {
    if v.is_empty() {
        return "nil".into();
    }
    v.iter().map(sample_string).collect::<Vec<_>>().join(", ")
}

/// Runs one test group (`testGroup.test`); returns its errors.
fn run_group(tg: &TestGroup, ctx: &mut RunCtx<'_>) -> Vec<String> {
    let started = Instant::now();
    if ctx.opts.debug {
        ctx.stderr
            .push_str(&format!("DEBUG: Starting test {}\n", ctx.testname));
    }
    let errs = run_group_inner(tg, ctx);
    if ctx.opts.debug {
        ctx.stderr.push_str(&format!(
            "DEBUG: Test {} finished, took {}\n",
            ctx.testname,
            format_go_duration(started.elapsed().as_nanos().min(i64::MAX as u128) as i64)
        ));
    }
    errs
}

fn run_group_inner(tg: &TestGroup, ctx: &mut RunCtx<'_>) -> Vec<String> {
    let eval_interval = ctx.file.evaluation_interval_ms;
    let interval = if tg.interval_ms > 0 {
        tg.interval_ms
    } else {
        eval_interval
    };
    let tenant = TenantId::default_tenant();
    let store = Arc::new(MemStore::new());
    let mut loader = match LazyLoader::new(&tg.input_series, tg.start_ms, interval) {
        Ok(l) => l,
        Err(e) => return vec![e],
    };
    let engine = Engine::new(EngineOptions {
        default_subquery_step_ms: eval_interval,
        ..EngineOptions::default()
    });
    let backend = Backend {
        engine: Arc::new(engine),
        queryable: store.clone(),
        appender: store.clone(),
    };
    let mut groups = match load_groups_with(
        &tenant,
        ctx.rule_files,
        interval,
        true,
        ctx.opts.ignore_unknown_fields,
    ) {
        Ok(g) => g,
        Err(e) => return e,
    };
    let order: BTreeMap<&str, usize> = ctx
        .file
        .group_eval_order
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    groups.sort_by_key(|g| order.get(g.name.as_str()).copied().unwrap_or(0));
    let opts = GroupOptions {
        external_labels: tg.external_labels.clone(),
        external_url: tg.external_url.clone(),
        ..GroupOptions::default()
    };

    for a in &tg.alert_tests {
        if a.alertname.is_empty() {
            let g = if tg.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", tg.name)
            };
            return vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{g}",
                format_duration(a.eval_time_ms)
            )];
        }
    }
    let mut eval_times: Vec<i64> = tg.alert_tests.iter().map(|a| a.eval_time_ms).collect();
    eval_times.sort_unstable();
    eval_times.dedup();

    let mint = tg.start_ms;
    let maxt = mint + max_eval_time(tg);
    let mut errs = Vec::new();
    let mut curr = 0;
    let mut ts = mint;
    while ts <= maxt {
        // Input samples reach the store only up to the evaluation time, as promtool loads them.
        match loader.append_till(&backend.appender, &tenant, ts) {
            Err(e) => errs.push(e),
            Ok(()) => {
                let mut eval_errs = Vec::new();
                for g in &groups {
                    let ts_ns = ts.saturating_mul(1_000_000);
                    g.eval(ts_ns, ts_ns, &backend, &opts, &NoopNotifier);
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
            }
        }
        while curr < eval_times.len()
            && ts - mint <= eval_times[curr]
            && eval_times[curr] < ts + eval_interval - mint
        {
            let t = eval_times[curr];
            check_alerts(tg, &groups, t, ctx.opts.diff, &mut errs);
            curr += 1;
        }
        ts += eval_interval;
    }

    for tc in &tg.promql_tests {
        if let Some(e) = check_promql(tg, tc, &backend, &tenant, ctx.file.fuzzy_compare) {
            errs.push(e);
        }
    }
    if ctx.opts.debug {
        debug_dump(tg, &backend, &tenant, ctx.stderr);
    }
    errs
}

fn check_alerts(
    tg: &TestGroup,
    groups: &[crate::ruler::group::Group],
    t: i64,
    diff: bool,
    errs: &mut Vec<String>,
) {
    let mut got: BTreeMap<&str, LabelsAndAnnotations> = BTreeMap::new();
    for g in groups {
        for ar in g.alerting_rules() {
            if !tg
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
    for tc in tg.alert_tests.iter().filter(|a| a.eval_time_ms == t) {
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
        if exp == got_alerts {
            continue;
        }
        let name = if tg.name.is_empty() {
            String::new()
        } else {
            format!("    name: {},\n", tg.name)
        };
        if diff {
            // An empty side is shown as one alert without labels and annotations.
            let empty = || vec![(Labels::empty(), Labels::empty())];
            let e = if exp.is_empty() { empty() } else { exp };
            let g = if got_alerts.is_empty() {
                empty()
            } else {
                got_alerts
            };
            let (res, text) = jsondiff::compare(&la_json(&e), &la_json(&g));
            if res != jsondiff::Difference::FullMatch {
                errs.push(format!(
                    "{name}    alertname: {}, time: {}, \n        diff: {}",
                    tc.alertname,
                    format_duration(tc.eval_time_ms),
                    indent_lines(&text, "            ")
                ));
            }
        } else {
            errs.push(format!(
                "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                tc.alertname,
                format_duration(tc.eval_time_ms),
                indent_lines(&la_string(&exp), "            "),
                indent_lines(&la_string(&got_alerts), "            ")
            ));
        }
    }
}

fn check_promql(
    tg: &TestGroup,
    tc: &decode::PromqlTest,
    backend: &Backend,
    tenant: &TenantId,
    fuzzy: bool,
) -> Option<String> {
    let prefix = |rest: String| {
        format!(
            "    expr: {:?}, time: {}, {rest}",
            tc.expr,
            format_duration(tc.eval_time_ms)
        )
    };
    let got =
        match crate::ruler::group::Group::query(backend, tenant, &tc.expr, tg.start_ms + tc.eval_time_ms) {
            Ok(v) => v,
            Err(e) => return Some(prefix(format!("err: {e}"))),
        };
    let mut got: Vec<TestSample> = got
        .into_iter()
        .map(|s| match s.value {
            PointValue::Float(f) => (s.labels, f, String::new()),
            PointValue::Histogram(h) => (s.labels, 0.0, histogram_test_expression(&h)),
        })
        .collect();
    let mut exp: Vec<TestSample> = Vec::new();
    for s in &tc.exp_samples {
        let parsed = parse_metric(&s.labels).and_then(|l| {
            if s.histogram.is_empty() {
                Ok((l, s.value, String::new()))
            } else {
                parse_expected_histogram(&s.histogram).map(|h| (l, s.value, histogram_test_expression(&h)))
            }
        });
        match parsed {
            Ok(x) => exp.push(x),
            Err(e) => return Some(prefix(format!("err: labels {:?}: {e}", s.labels))),
        }
    }
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let equal = exp.len() == got.len()
        && exp
            .iter()
            .zip(&got)
            .all(|(e, g)| e.0 == g.0 && e.2 == g.2 && floats_equal(e.1, g.1, fuzzy));
    if equal {
        return None;
    }
    Some(format!(
        "    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
        tc.expr,
        format_duration(tc.eval_time_ms),
        samples_string(&exp),
        samples_string(&got)
    ))
}

/// `--debug`'s dump of every series (input and recorded) up to the last evaluation.
fn debug_dump(tg: &TestGroup, backend: &Backend, tenant: &TenantId, stderr: &mut String) {
    // Rounded up to the next whole second, as PromQL cannot select fractions of one.
    let ts = (max_eval_time(tg) + 1000) / 1000 * 1000;
    let dur = format_go_duration(ts.saturating_mul(1_000_000));
    let expr = format!("{{__name__=~\".+\"}}[{dur}]");
    let result = backend
        .queryable
        .querier(tenant)
        .map_err(|e| e.to_string())
        .and_then(|q| {
            backend
                .engine
                .instant(&*q, &expr, tg.start_ms + ts)
                .map_err(|e| e.to_string())
        });
    match result {
        Err(e) => stderr.push_str(&format!("DEBUG: Failed query exec, expr: {expr:?}, err: {e}\n")),
        Ok(out) => match out.value {
            QValue::Matrix(m) => {
                stderr.push_str(&format!(
                    "DEBUG: Dump of all data (input_series and rules) at {dur}:\n{}\n",
                    matrix_string(&m)
                ));
            }
            _ => stderr.push_str("DEBUG: Got unexpected type promql.Vector\n"),
        },
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

/// Runs one test file; returns the errors (empty when it passed).
fn run_file(
    path: &Path,
    opts: &Options,
    run: Option<&regex::Regex>,
    suite: &mut TestSuite,
    stderr: &mut String,
) -> Vec<String> {
    let abort = |suite: &mut TestSuite, e: String| {
        suite.abort(&e);
        vec![e]
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let e = crate::ruler::rulefmt::go_io_error(&path.display().to_string(), &e);
            return abort(suite, e);
        }
    };
    let docs = match yaml::parse(&text) {
        Ok(d) => d,
        Err(e) => return abort(suite, e),
    };
    let Some(doc) = docs.first() else {
        return Vec::new();
    };
    let mut d = Decoder::default();
    let mut file = decode_file(doc, &mut d);
    if let Some(e) = d.into_error() {
        return abort(suite, e);
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let rule_files = glob_files(base, &file.rule_files, stderr);
    if file.evaluation_interval_ms == 0 {
        file.evaluation_interval_ms = 60_000;
    }
    suite.timestamp = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let mut seen = std::collections::HashSet::new();
    for g in &file.group_eval_order {
        if !seen.insert(g) {
            return abort(suite, format!("group name repeated in evaluation order: {g}"));
        }
    }
    let mut errs = Vec::new();
    for (i, t) in file.tests.iter().enumerate() {
        if run.is_some_and(|re| !re.is_match(&t.name)) {
            continue;
        }
        let testname = if t.name.is_empty() {
            format!("unnamed#{i}")
        } else {
            t.name.clone()
        };
        suite.case(&testname);
        let mut ctx = RunCtx {
            file: &file,
            rule_files: &rule_files,
            opts,
            testname,
            stderr,
        };
        let ers = run_group(t, &mut ctx);
        for e in &ers {
            suite.fail(e);
        }
        errs.extend(ers);
    }
    errs
}

/// Runs test files the way `promtool test rules FILES...` does.
pub fn run(files: &[PathBuf]) -> Report {
    run_with(files, &Options::default())
}

/// Runs test files with promtool's `test rules` options.
pub fn run_with(files: &[PathBuf], opts: &Options) -> Report {
    let mut r = Report {
        passed: true,
        ..Default::default()
    };
    let run = if opts.run.is_empty() {
        None
    } else {
        match regex::Regex::new(&opts.run.join("|")) {
            Ok(re) => Some(re),
            Err(e) => {
                r.passed = false;
                r.stderr = format!("invalid --run pattern: {e}\n");
                return r;
            }
        }
    };
    for f in files {
        r.stdout.push_str(&format!("Unit Testing:  {}\n", f.display()));
        let mut suite = TestSuite::new(&f.display().to_string());
        let mut stderr = String::new();
        let errs = run_file(f, opts, run.as_ref(), &mut suite, &mut stderr);
        r.suites.push(suite);
        r.stderr.push_str(&stderr);
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
