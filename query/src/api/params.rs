//! Request parameters as Prometheus reads them: form values from the URL
//! query and from `application/x-www-form-urlencoded` POST bodies, times as
//! Unix seconds or RFC 3339, durations as seconds or Prometheus durations,
//! `match[]` selectors and `limit`.

use chrono::{DateTime, SecondsFormat};
use fenghuo_storage_api::model::{MatchOp, Matcher, PromDuration};
use promql_parser::label::MatchOp as ParsedOp;
use promql_parser::parser::{Expr, VectorSelector};

/// Prometheus's `MinTime`/`MaxTime`: the default bounds of optional time
/// ranges, in milliseconds.
pub const MIN_TIME_MS: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;
pub const MAX_TIME_MS: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;

/// All form values of a request, in order: POST body first, then URL (as
/// Go's `Request.FormValue` sees them).
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>, form_body: Option<&[u8]>) -> Self {
        let mut pairs = Vec::new();
        if let Some(body) = form_body {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        if let Some(q) = query {
            pairs.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Self(pairs)
    }

    /// The first value of `name`, or "" (Go's `FormValue`).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A bad parameter, rendered as Prometheus does.
#[derive(Debug, thiserror::Error)]
#[error("invalid parameter {name:?}: {reason}")]
pub struct InvalidParam {
    pub name: &'static str,
    pub reason: String,
}

pub fn invalid(name: &'static str, reason: impl Into<String>) -> InvalidParam {
    InvalidParam {
        name,
        reason: reason.into(),
    }
}

/// Parses a time: Unix seconds (fractions rounded to milliseconds) or RFC
/// 3339, including Prometheus's own min/max boundary strings.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        let secs = f.trunc();
        let ms = ((f - secs) * 1000.0).round();
        let total = secs * 1000.0 + ms;
        if total >= i64::MIN as f64 && total <= i64::MAX as f64 {
            return Ok(total as i64);
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    if s == format_rfc3339(MIN_TIME_MS) {
        return Ok(MIN_TIME_MS);
    }
    if s == format_rfc3339(MAX_TIME_MS) {
        return Ok(MAX_TIME_MS);
    }
    Err(format!("cannot parse {s:?} to a valid timestamp"))
}

fn format_rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

/// A time parameter with a default when absent.
pub fn time_param(params: &Params, name: &'static str, default: i64) -> Result<i64, InvalidParam> {
    let v = params.get(name);
    if v.is_empty() {
        return Ok(default);
    }
    parse_time(v).map_err(|e| invalid(name, format!("invalid time value for '{name}': {e}")))
}

/// Parses a duration into milliseconds: float seconds or a Prometheus
/// duration such as `1h30m`.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if !ms.is_finite() || ms > i64::MAX as f64 / 1e6 || ms < i64::MIN as f64 / 1e6 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ms as i64);
    }
    parse_prometheus_duration(s).ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

/// `[0-9]+(y|w|d|h|m|s|ms)` repeated, units in descending order, or `0`.
pub fn parse_prometheus_duration(s: &str) -> Option<i64> {
    PromDuration::parse(s).ok().map(PromDuration::as_millis_i64)
}

/// `limit`: absent or 0 means no limit.
pub fn limit_param(params: &Params) -> Result<usize, InvalidParam> {
    let s = params.get("limit");
    if s.is_empty() {
        return Ok(0);
    }
    let n: i64 = s
        .parse()
        .map_err(|_| invalid("limit", format!("strconv.Atoi: parsing {s:?}: invalid syntax")))?;
    if n < 0 {
        return Err(invalid("limit", "limit must be non-negative"));
    }
    Ok(n as usize)
}

/// Converts a parsed selector's matchers (name and every `or` branch) into
/// storage matcher sets; a selector matches the union of its sets.
pub fn selector_matcher_sets(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, String> {
    let convert = |ms: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>, String> {
        let mut out = Vec::with_capacity(ms.len() + 1);
        if let Some(name) = &vs.name {
            out.push(Matcher::equal(
                fenghuo_storage_api::model::METRIC_NAME,
                name.clone(),
            ));
        }
        for m in ms {
            let op = match m.op {
                ParsedOp::Equal => MatchOp::Equal,
                ParsedOp::NotEqual => MatchOp::NotEqual,
                ParsedOp::Re(_) => MatchOp::Regex,
                ParsedOp::NotRe(_) => MatchOp::NotRegex,
            };
            out.push(Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())?);
        }
        Ok(out)
    };
    if vs.matchers.or_matchers.is_empty() {
        Ok(vec![convert(&vs.matchers.matchers)?])
    } else {
        vs.matchers.or_matchers.iter().map(|ms| convert(ms)).collect()
    }
}

/// Parses `match[]` values: each must be a series selector with at least
/// one matcher that does not match the empty string.
pub fn match_params(values: &[&str]) -> Result<Vec<Vec<Matcher>>, String> {
    let mut sets = Vec::new();
    for v in values {
        let expr = crate::depth::parse(v).map_err(|e| format!("1:1: {e}"))?;
        let Expr::VectorSelector(vs) = expr else {
            return Err(format!(
                "1:1: parse error: expected type vector selector in {v:?}"
            ));
        };
        for set in selector_matcher_sets(&vs)? {
            if set.iter().all(Matcher::matches_empty) {
                return Err("match[] must contain at least one non-empty matcher".into());
            }
            sets.push(set);
        }
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_prometheus() {
        assert_eq!(parse_time("1435781451.781").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time("1435781451").unwrap(), 1_435_781_451_000);
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time("-1.5").unwrap(), -1500);
        assert!(
            parse_time("abc")
                .unwrap_err()
                .contains("cannot parse \"abc\" to a valid timestamp")
        );
    }

    #[test]
    fn durations_parse_as_prometheus() {
        assert_eq!(parse_duration("15").unwrap(), 15_000);
        assert_eq!(parse_duration("0.5").unwrap(), 500);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("10s53ms").unwrap(), 10_053);
        assert!(parse_duration("1m1h").is_err());
        assert!(parse_duration("1e300").unwrap_err().contains("overflows"));
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn match_params_reject_empty_matching_selectors() {
        assert!(
            match_params(&["{job=~\".*\"}"])
                .unwrap_err()
                .contains("non-empty matcher")
        );
        let sets = match_params(&["up{job=\"a\"}"]).unwrap();
        assert_eq!(sets[0].len(), 2);
        assert!(match_params(&["rate(up[5m])"]).is_err());
    }
}
