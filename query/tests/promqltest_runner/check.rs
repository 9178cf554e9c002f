//! Judging an eval as Prometheus's promqltest does: expected failures,
//! annotations, and results (floats within 1e-6 relative error, histograms
//! compared after compaction).

use fenghuo_query::histogram::buckets::{from_sparse, sparse};
use fenghuo_query::{QueryError, QueryOutput, Value};
use fenghuo_storage_api::model::{FloatHistogram, Labels};

use super::parse::{EvalCmd, ExpectCmd, ExpectedSeries};

const EPSILON: f64 = 0.000001;

pub fn almost_equal(a: f64, b: f64) -> bool {
    fenghuo_query::almost_equal(a, b, EPSILON)
}

pub fn check_expected_failure(cmd: &EvalCmd, err: &QueryError) -> Result<(), String> {
    let msg = err.to_string();
    if let Some(m) = &cmd.expected_fail_message
        && *m != msg
    {
        return Err(format!("expected error {m:?}, but got: {msg}"));
    }
    if let Some(r) = &cmd.expected_fail_regexp
        && !r.is_match(&msg)
    {
        return Err(format!(
            "expected error matching {:?}, but got: {msg}",
            r.as_str()
        ));
    }
    if let Some(e) = cmd.expects.fail.first()
        && !e.matches(&msg)
    {
        return Err(format!(
            "expected error matching {}, but got: {msg}",
            e.describe()
        ));
    }
    Ok(())
}

fn check_kind(expected: &[ExpectCmd], actual: &[String], kind: &str) -> Result<(), String> {
    if expected.is_empty() {
        return Ok(());
    }
    if actual.is_empty() {
        return Err(format!("expected {kind} annotations but none were found"));
    }
    for e in expected {
        if !actual.iter().any(|a| e.matches(a)) {
            return Err(format!(
                "expected {kind} annotation matching {} but found: {actual:?}",
                e.describe()
            ));
        }
    }
    for a in actual {
        if !expected.iter().any(|e| e.matches(a)) {
            return Err(format!("unexpected {kind} annotation {a:?}"));
        }
    }
    Ok(())
}

pub fn check_annotations(cmd: &EvalCmd, out: &QueryOutput) -> Result<(), String> {
    if cmd.warn && out.warnings.is_empty() {
        return Err("expected warnings but got none".into());
    }
    if cmd.info && out.infos.is_empty() {
        return Err("expected info annotations but got none".into());
    }
    check_kind(&cmd.expects.warn, &out.warnings, "warn")?;
    check_kind(&cmd.expects.info, &out.infos, "info")?;
    if cmd.expects.no_warn && !out.warnings.is_empty() {
        return Err(format!("unexpected warning annotations: {:?}", out.warnings));
    }
    if cmd.expects.no_info && !out.infos.is_empty() {
        return Err(format!("unexpected info annotations: {:?}", out.infos));
    }
    Ok(())
}

fn find<'a>(cmd: &'a EvalCmd, labels: &Labels) -> Option<&'a ExpectedSeries> {
    cmd.expected.iter().find(|e| e.labels == *labels)
}

/// Compacted (index, count) view for comparisons.
fn canonical(h: &FloatHistogram) -> FloatHistogram {
    let mut c = h.clone();
    fenghuo_query::histogram::compact(&mut c, 0);
    let (ps, pb) = from_sparse(&sparse(&c.positive_spans, &c.positive_buckets));
    let (ns, nb) = from_sparse(&sparse(&c.negative_spans, &c.negative_buckets));
    c.positive_spans = ps;
    c.positive_buckets = pb;
    c.negative_spans = ns;
    c.negative_buckets = nb;
    c
}

pub fn histograms_match(exp: &FloatHistogram, got: &FloatHistogram, hint_set: bool) -> bool {
    let (e, g) = (canonical(exp), canonical(got));
    if e.schema != g.schema || !almost_equal(e.count, g.count) || !almost_equal(e.sum, g.sum) {
        return false;
    }
    if e.uses_custom_buckets() && e.custom_values != g.custom_values {
        return false;
    }
    if e.zero_threshold != g.zero_threshold || !almost_equal(e.zero_count, g.zero_count) {
        return false;
    }
    let buckets_match =
        |a: &[f64], b: &[f64]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| almost_equal(*x, *y));
    if e.negative_spans != g.negative_spans || !buckets_match(&e.negative_buckets, &g.negative_buckets) {
        return false;
    }
    if e.positive_spans != g.positive_spans || !buckets_match(&e.positive_buckets, &g.positive_buckets) {
        return false;
    }
    !hint_set || e.counter_reset_hint == g.counter_reset_hint
}

/// Compares a query value with the eval's expectations (`start`, `end`,
/// `step` give the timestamps of expected range points).
pub fn compare_result(cmd: &EvalCmd, value: &Value, start: i64, end: i64, step: i64) -> Result<(), String> {
    match value {
        Value::Matrix(m) => {
            if cmd.is_ordered() {
                return Err("expected ordered result, but query returned a matrix".into());
            }
            if cmd.expect_scalar.is_some() {
                return Err("expected scalar result, but got matrix".into());
            }
            for w in m.windows(2) {
                if w[0].labels > w[1].labels {
                    return Err(format!(
                        "matrix not sorted: {} before {}",
                        w[0].labels, w[1].labels
                    ));
                }
            }
            for s in m {
                let Some(exp) = find(cmd, &s.labels) else {
                    return Err(format!(
                        "unexpected metric {} in result, has {} floats and {} histograms",
                        s.labels,
                        s.floats.len(),
                        s.histograms.len()
                    ));
                };
                if !cmd.is_range && !cmd.expect_range_vector && !exp.values.is_empty() {
                    return Err(format!(
                        "expected {} points for {}, but query time range cannot return this many points",
                        exp.values.len(),
                        exp.labels
                    ));
                }
                let mut ef = Vec::new();
                let mut eh = Vec::new();
                for (i, v) in exp.values.iter().enumerate() {
                    let t = start + i as i64 * step;
                    if t > end || (step == 0 && i > 0) {
                        return Err(format!(
                            "expected {} points for {}, but query time range cannot return this many points",
                            exp.values.len(),
                            exp.labels
                        ));
                    }
                    if let Some(h) = &v.histogram {
                        eh.push((t, h, v.hint_set));
                    } else if !v.omitted {
                        ef.push((t, v.value));
                    }
                }
                if ef.len() != s.floats.len() || eh.len() != s.histograms.len() {
                    return Err(format!(
                        "expected {} float points and {} histogram points for {}, but got {:?} and {} histograms",
                        ef.len(),
                        eh.len(),
                        exp.labels,
                        s.floats.iter().map(|p| (p.t, p.v)).collect::<Vec<_>>(),
                        s.histograms.len()
                    ));
                }
                for (i, (t, v)) in ef.iter().enumerate() {
                    let a = s.floats[i];
                    if a.t != *t {
                        return Err(format!(
                            "expected float at index {i} for {} to have timestamp {t}, got {}",
                            exp.labels, a.t
                        ));
                    }
                    if !almost_equal(a.v, *v) {
                        return Err(format!(
                            "expected float value at index {i} (t={t}) for {} to be {v}, but got {}",
                            exp.labels, a.v
                        ));
                    }
                }
                for (i, (t, h, hint)) in eh.iter().enumerate() {
                    let a = &s.histograms[i];
                    if a.t != *t {
                        return Err(format!(
                            "expected histogram at index {i} for {} to have timestamp {t}, got {}",
                            exp.labels, a.t
                        ));
                    }
                    if !histograms_match(h, &a.h, *hint) {
                        return Err(format!(
                            "expected histogram at index {i} (t={t}) for {} to be {h:?}, got {:?}",
                            exp.labels, a.h
                        ));
                    }
                }
            }
            for e in &cmd.expected {
                if !m.iter().any(|s| s.labels == e.labels) {
                    return Err(format!("expected metric {} not found", e.labels));
                }
            }
            Ok(())
        }
        Value::Vector(v) => {
            if cmd.expect_scalar.is_some() {
                return Err("expected scalar result, but got vector".into());
            }
            for (i, s) in v.iter().enumerate() {
                let Some(exp) = find(cmd, &s.labels) else {
                    return Err(format!(
                        "unexpected metric {} in result, has value {:?}",
                        s.labels, s.value
                    ));
                };
                if cmd.is_ordered() && exp.pos != i + 1 {
                    return Err(format!(
                        "expected metric {} at position {} but was at {}",
                        s.labels,
                        exp.pos,
                        i + 1
                    ));
                }
                let Some(e0) = exp.values.first() else {
                    return Err(format!("no expected value for {}", exp.labels));
                };
                match (&e0.histogram, &s.value) {
                    (None, fenghuo_query::PointValue::Histogram(_)) => {
                        return Err(format!(
                            "expected float value {} for {} but got histogram",
                            e0.value, s.labels
                        ));
                    }
                    (Some(_), fenghuo_query::PointValue::Float(f)) => {
                        return Err(format!(
                            "expected histogram for {} but got float value {f}",
                            s.labels
                        ));
                    }
                    (Some(h), fenghuo_query::PointValue::Histogram(a)) => {
                        if !histograms_match(h, a, e0.hint_set) {
                            return Err(format!("expected {h:?} for {} but got {a:?}", s.labels));
                        }
                    }
                    (None, fenghuo_query::PointValue::Float(f)) => {
                        if !almost_equal(e0.value, *f) {
                            return Err(format!("expected {} for {} but got {f}", e0.value, s.labels));
                        }
                    }
                }
            }
            for e in &cmd.expected {
                if !v.iter().any(|s| s.labels == e.labels) {
                    return Err(format!("expected metric {} not found", e.labels));
                }
            }
            Ok(())
        }
        Value::Scalar { v, .. } => {
            let Some(exp) = cmd.expect_scalar else {
                return Err(format!("expected vector or matrix result, but got scalar {v}"));
            };
            if !almost_equal(exp, *v) {
                return Err(format!("expected scalar {exp} but got {v}"));
            }
            Ok(())
        }
        Value::String { v, .. } => {
            let exp = cmd.expected_string.clone().unwrap_or_default();
            if exp != *v {
                return Err(format!("expected string \"{exp}\" but got \"{v}\""));
            }
            Ok(())
        }
    }
}
