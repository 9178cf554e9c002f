//! Parsing of the promqltest file language (`FORMAT.md`): commands, series
//! descriptions (value sequences, native histograms) and expectations.

use fenghuo_storage_api::model::Labels;

pub use fenghuo_query::series_desc::{SeqValue, parse_number, parse_series, unquote_prefix};

#[derive(Clone, Debug)]
pub struct ExpectCmd {
    pub message: Option<String>,
    pub regex: Option<regex::Regex>,
}

impl ExpectCmd {
    pub fn matches(&self, s: &str) -> bool {
        match (&self.message, &self.regex) {
            (Some(m), _) => m == s,
            (None, Some(r)) => r.is_match(s),
            (None, None) => true,
        }
    }
    pub fn describe(&self) -> String {
        match (&self.message, &self.regex) {
            (Some(m), _) => format!("message {m:?}"),
            (None, Some(r)) => format!("pattern {:?}", r.as_str()),
            (None, None) => "anything".into(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Expects {
    pub ordered: bool,
    pub fail: Vec<ExpectCmd>,
    pub warn: Vec<ExpectCmd>,
    pub no_warn: bool,
    pub info: Vec<ExpectCmd>,
    pub no_info: bool,
}

#[derive(Clone, Debug)]
pub struct ExpectedSeries {
    pub labels: Labels,
    pub pos: usize,
    pub values: Vec<SeqValue>,
}

#[derive(Clone, Debug)]
pub struct EvalCmd {
    /// 1-based line of the eval command.
    pub line: usize,
    pub expr: String,
    pub is_range: bool,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    /// Evaluation time of an instant query (the range end for `expect range vector`).
    pub eval_time: i64,
    pub fail: bool,
    pub warn: bool,
    pub info: bool,
    pub expects: Expects,
    pub expected_fail_message: Option<String>,
    pub expected_fail_regexp: Option<regex::Regex>,
    pub expect_scalar: Option<f64>,
    pub expected: Vec<ExpectedSeries>,
    pub expected_string: Option<String>,
    pub exclude_from_range_query: bool,
    pub expect_range_vector: bool,
    /// The expected output mentions a native histogram.
    pub has_histogram_literal: bool,
}

impl EvalCmd {
    pub fn is_fail(&self) -> bool {
        self.fail || !self.expects.fail.is_empty()
    }
    pub fn is_ordered(&self) -> bool {
        self.expects.ordered
    }
}

#[derive(Clone, Debug)]
pub struct LoadCmd {
    pub line: usize,
    pub gap: i64,
    pub with_nhcb: bool,
    pub series: Vec<(Labels, Vec<SeqValue>)>,
}

#[derive(Clone, Debug)]
pub enum Command {
    Clear,
    Load(LoadCmd),
    Eval(Box<EvalCmd>),
    /// An eval line the runner could not read (reported as a failure).
    Broken {
        line: usize,
        reason: String,
    },
}

/// Parses a Prometheus duration (`1m30s`, `10s53ms`, `0`, `-5m`).
pub fn parse_duration(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return None;
        }
        let n: i64 = s[start..i].parse().ok()?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let mult = match &s[ustart..i] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
    }
    Some(if neg { -total } else { total })
}

fn parse_expect(line: &str) -> Result<(String, ExpectCmd), String> {
    let rest = line
        .trim()
        .strip_prefix("expect")
        .ok_or("not an expect line")?
        .trim_start();
    let (kind, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !matches!(kind, "ordered" | "fail" | "warn" | "no_warn" | "info" | "no_info") {
        return Err(format!("invalid expected error/annotation type {kind}"));
    }
    let tail = tail.trim();
    let cmd = if tail.is_empty() {
        ExpectCmd {
            message: None,
            regex: None,
        }
    } else if let Some(m) = tail.strip_prefix("msg:") {
        ExpectCmd {
            message: Some(m.trim().to_string()),
            regex: None,
        }
    } else if let Some(r) = tail.strip_prefix("regex:") {
        ExpectCmd {
            message: None,
            regex: Some(regex::Regex::new(r.trim()).map_err(|e| e.to_string())?),
        }
    } else {
        return Err(format!("invalid expect statement {line:?}"));
    };
    Ok((kind.to_string(), cmd))
}

/// Splits `eval…` into its parts (the regexes of Prometheus's test.go).
fn parse_eval_header(line: &str, lineno: usize) -> Result<EvalCmd, String> {
    let re_instant =
        regex::Regex::new(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
            .map_err(|e| e.to_string())?;
    let re_range = regex::Regex::new(
        r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$",
    )
    .map_err(|e| e.to_string())?;
    let mut cmd = EvalCmd {
        line: lineno,
        expr: String::new(),
        is_range: false,
        start: 0,
        end: 0,
        step: 0,
        eval_time: 0,
        fail: false,
        warn: false,
        info: false,
        expects: Expects::default(),
        expected_fail_message: None,
        expected_fail_regexp: None,
        expect_scalar: None,
        expected: Vec::new(),
        expected_string: None,
        exclude_from_range_query: false,
        expect_range_vector: false,
        has_histogram_literal: false,
    };
    let modifier;
    if let Some(c) = re_instant.captures(line) {
        modifier = c.get(1).map(|m| m.as_str().to_string());
        let at = c.get(2).map_or("0", |m| m.as_str());
        cmd.eval_time = parse_duration(at).ok_or_else(|| format!("invalid timestamp definition {at:?}"))?;
        cmd.start = cmd.eval_time;
        cmd.expr = c[3].to_string();
    } else if let Some(c) = re_range.captures(line) {
        modifier = c.get(1).map(|m| m.as_str().to_string());
        cmd.is_range = true;
        cmd.start = parse_duration(&c[2]).ok_or("invalid start")?;
        cmd.end = parse_duration(&c[3]).ok_or("invalid end")?;
        cmd.step = parse_duration(&c[4]).ok_or("invalid step")?;
        cmd.expr = c[5].to_string();
    } else {
        return Err("invalid evaluation command".into());
    }
    match modifier.as_deref() {
        Some("fail") => cmd.fail = true,
        Some("warn") => cmd.warn = true,
        Some("info") => cmd.info = true,
        Some("ordered") => cmd.expects.ordered = true,
        _ => {}
    }
    Ok(cmd)
}

/// Parses a whole test file.
pub fn parse_file(content: &str) -> Vec<Command> {
    let lines: Vec<String> = content
        .split('\n')
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        if word == "clear" {
            cmds.push(Command::Clear);
            i += 1;
        } else if word.starts_with("load") {
            let (next, cmd) = parse_load(&lines, i);
            cmds.push(cmd);
            i = next;
        } else if word.starts_with("eval") {
            let (next, cmd) = parse_eval(&lines, i);
            cmds.push(cmd);
            i = next;
        } else {
            cmds.push(Command::Broken {
                line: i + 1,
                reason: format!("invalid command {l:?}"),
            });
            i += 1;
        }
    }
    cmds
}

fn body_end(lines: &[String], start: usize) -> usize {
    let mut j = start + 1;
    while j < lines.len() && !lines[j].is_empty() {
        j += 1;
    }
    j
}

fn parse_load(lines: &[String], i: usize) -> (usize, Command) {
    let end = body_end(lines, i);
    let header = &lines[i];
    let mut parts = header.split_whitespace();
    let kind = parts.next().unwrap_or("");
    let with_nhcb = kind.eq_ignore_ascii_case("load_with_nhcb");
    let Some(gap) = parts.next().and_then(parse_duration) else {
        return (
            end,
            Command::Broken {
                line: i + 1,
                reason: "invalid load step".into(),
            },
        );
    };
    let mut series: Vec<(Labels, Vec<SeqValue>)> = Vec::new();
    for (k, l) in lines[i + 1..end].iter().enumerate() {
        let first = l.split_whitespace().next().unwrap_or("");
        if first.ends_with("@st") {
            // Start-timestamp lines: the store keeps no per-sample start
            // timestamps, so they are parsed for validity and ignored.
            continue;
        }
        match parse_series(l) {
            Ok((ls, vals)) => {
                if let Some(existing) = series.iter_mut().find(|(x, _)| *x == ls) {
                    existing.1 = vals;
                } else {
                    series.push((ls, vals));
                }
            }
            Err(e) => {
                return (
                    end,
                    Command::Broken {
                        line: i + k + 2,
                        reason: format!("bad series: {e}"),
                    },
                );
            }
        }
    }
    (
        end,
        Command::Load(LoadCmd {
            line: i + 1,
            gap,
            with_nhcb,
            series,
        }),
    )
}

fn parse_eval(lines: &[String], i: usize) -> (usize, Command) {
    let end = body_end(lines, i);
    let mut cmd = match parse_eval_header(&lines[i], i + 1) {
        Ok(c) => c,
        Err(e) => {
            return (
                end,
                Command::Broken {
                    line: i + 1,
                    reason: e,
                },
            );
        }
    };
    let range_vector_re =
        regex::Regex::new(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$").ok();
    let mut pos = 0;
    let mut j = i + 1;
    while j < end {
        let l = &lines[j];
        j += 1;
        if cmd.fail && l.starts_with("expected_fail_message") {
            cmd.expected_fail_message = Some(l["expected_fail_message".len()..].trim().to_string());
            break;
        }
        if cmd.fail && l.starts_with("expected_fail_regexp") {
            match regex::Regex::new(l["expected_fail_regexp".len()..].trim()) {
                Ok(r) => cmd.expected_fail_regexp = Some(r),
                Err(e) => {
                    return (
                        end,
                        Command::Broken {
                            line: j,
                            reason: e.to_string(),
                        },
                    );
                }
            }
            break;
        }
        if l.starts_with("expect range vector") {
            let re = range_vector_re.clone();
            let Some(c) = re.and_then(|r| r.captures(l)) else {
                return (
                    end,
                    Command::Broken {
                        line: j,
                        reason: "bad range vector expectation".into(),
                    },
                );
            };
            let (Some(a), Some(b), Some(s)) = (
                parse_duration(&c[1]),
                parse_duration(&c[2]),
                parse_duration(&c[3]),
            ) else {
                return (
                    end,
                    Command::Broken {
                        line: j,
                        reason: "bad range vector durations".into(),
                    },
                );
            };
            cmd.start = a;
            cmd.end = b;
            cmd.step = s;
            cmd.eval_time = b;
            cmd.exclude_from_range_query = true;
            cmd.expect_range_vector = true;
            continue;
        }
        if let Some(rest) = l.strip_prefix("expect string") {
            match unquote_prefix(rest.trim()) {
                Some((s, _)) => cmd.expected_string = Some(s),
                None => {
                    return (
                        end,
                        Command::Broken {
                            line: j,
                            reason: "bad expected string".into(),
                        },
                    );
                }
            }
            cmd.exclude_from_range_query = true;
            continue;
        }
        if l.split(' ').next() == Some("expect") {
            match parse_expect(l) {
                Ok((kind, e)) => match kind.as_str() {
                    "ordered" => cmd.expects.ordered = true,
                    "fail" => cmd.expects.fail.push(e),
                    "warn" => cmd.expects.warn.push(e),
                    "no_warn" => cmd.expects.no_warn = true,
                    "info" => cmd.expects.info.push(e),
                    _ => cmd.expects.no_info = true,
                },
                Err(e) => return (end, Command::Broken { line: j, reason: e }),
            }
            continue;
        }
        if let Some(v) = parse_number(l) {
            cmd.expect_scalar = Some(v);
            break;
        }
        if l.contains("{{") {
            cmd.has_histogram_literal = true;
        }
        match parse_series(l) {
            Ok((labels, values)) => {
                if values.len() > 1 && !cmd.is_range && !cmd.expect_range_vector {
                    return (
                        end,
                        Command::Broken {
                            line: j,
                            reason: "multiple values in instant evaluation".into(),
                        },
                    );
                }
                pos += 1;
                cmd.expected.retain(|e| e.labels != labels);
                cmd.expected.push(ExpectedSeries { labels, pos, values });
            }
            Err(e) => {
                return (
                    end,
                    Command::Broken {
                        line: j,
                        reason: format!("bad expected series: {e}"),
                    },
                );
            }
        }
    }
    (end, Command::Eval(Box::new(cmd)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_sequences() {
        let (ls, v) =
            parse_series(r#"http_requests{job="api", instance="0"}  0+10x2 _ stale 1x1 -1-1x1"#).unwrap();
        assert_eq!(ls.get("job"), Some("api"));
        let vals: Vec<String> = v
            .iter()
            .map(|s| {
                if s.omitted {
                    "_".into()
                } else {
                    s.value.to_string()
                }
            })
            .collect();
        assert_eq!(vals, vec!["0", "10", "20", "_", "NaN", "1", "1", "-1", "-2"]);
        let (_, v) = parse_series("m 0x5").unwrap();
        assert_eq!(v.len(), 6);
    }

    #[test]
    fn histograms_parse() {
        let (_, v) = parse_series("m {{schema:1 sum:5 count:4 buckets:[1 2 1] offset:-1}}x1").unwrap();
        assert_eq!(v.len(), 2);
        let h = v[0].histogram.as_ref().unwrap();
        assert_eq!(h.schema, 1);
        assert_eq!(h.positive_spans[0].offset, -1);
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(parse_number("0x1p-3"), Some(0.125));
        assert_eq!(parse_number("3"), Some(3.0));
        assert!(parse_number("-Inf").unwrap().is_infinite());
        assert_eq!(parse_duration("1m30s"), Some(90_000));
        assert_eq!(parse_duration("0"), Some(0));
    }
}
