//! The unit-test file format of `promtool test rules` (`rule_files`, `evaluation_interval`,
//! `group_eval_order`, `fuzzy_compare`, `tests` with `interval`, `input_series`,
//! `alert_rule_test`, `promql_expr_test`, `external_labels`, `external_url`, `name`,
//! `start_timestamp`), decoded with `yaml.v2`'s strictness and messages.

use std::collections::BTreeMap;

use crate::ruler::yaml::{Decoder, Node};

#[derive(Debug, Default)]
pub struct TestFile {
    pub rule_files: Vec<String>,
    pub evaluation_interval_ms: i64,
    pub group_eval_order: Vec<String>,
    pub tests: Vec<TestGroup>,
    pub fuzzy_compare: bool,
}

#[derive(Debug, Default)]
pub struct TestGroup {
    pub interval_ms: i64,
    pub input_series: Vec<(String, String)>,
    pub alert_tests: Vec<AlertTest>,
    pub promql_tests: Vec<PromqlTest>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub name: String,
    pub start_ms: i64,
}

#[derive(Debug, Default)]
pub struct AlertTest {
    pub eval_time_ms: i64,
    pub alertname: String,
    pub exp_alerts: Vec<(BTreeMap<String, String>, BTreeMap<String, String>)>,
}

#[derive(Debug, Default)]
pub struct PromqlTest {
    pub expr: String,
    pub eval_time_ms: i64,
    pub exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Default)]
pub struct ExpSample {
    pub labels: String,
    pub value: f64,
    /// Series notation of an expected native histogram (`{{schema:0 count:1 ...}}`).
    pub histogram: String,
}

pub fn decode_file(doc: &Node, d: &mut Decoder) -> TestFile {
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
                                    let mut e = ExpSample::default();
                                    for (k, v) in
                                        d.fields(s, "main.sample", &["labels", "value", "histogram"])
                                    {
                                        match k {
                                            "labels" => e.labels = d.string(v),
                                            "value" => e.value = d.float(v),
                                            _ => e.histogram = d.string(v),
                                        }
                                    }
                                    t.exp_samples.push(e);
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
