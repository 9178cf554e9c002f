//! Label matchers (`=`, `!=`, `=~`, `!~`) and their text syntax, accepted in both of Alertmanager's
//! forms: the classic one (`foo=bar`, `{foo="bar",baz=~"x.*"}`, unquoted values) and the UTF-8 one
//! (quoted label names). Regexes are anchored (`^(?:re)$`) as in Prometheus; a missing label
//! matches as the empty string.

use std::cmp::Ordering;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::AlertingError;
use crate::model::{LabelSet, go_quote, is_classic_label_name};

/// The comparison a matcher performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(&self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }

    /// From the API's `isRegex`/`isEqual` flags.
    pub fn from_flags(is_regex: bool, is_equal: bool) -> Self {
        match (is_regex, is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        }
    }

    pub fn is_regex(&self) -> bool {
        matches!(self, MatchOp::Regex | MatchOp::NotRegex)
    }

    pub fn is_equal(&self) -> bool {
        matches!(self, MatchOp::Equal | MatchOp::Regex)
    }
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}
impl Eq for Matcher {}

impl PartialOrd for Matcher {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Matcher {
    fn cmp(&self, o: &Self) -> Ordering {
        (&self.name, self.op, &self.value).cmp(&(&o.name, o.op, &o.value))
    }
}

impl Matcher {
    /// Builds a matcher, compiling the anchored regex for regex operators.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, AlertingError> {
        let re = if op.is_regex() {
            Some(
                Regex::new(&format!("^(?:{value})$")).map_err(|e| AlertingError::Matcher {
                    input: format!("{name}{}{}", op.as_str(), go_quote(value)),
                    message: format!("invalid regular expression: {e}"),
                })?,
            )
        } else {
            None
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// Whether the value matches.
    pub fn matches_value(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether a label set matches (a missing label counts as the empty value).
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.matches_value(labels.get(&self.name).map(String::as_str).unwrap_or(""))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_classic_label_name(&self.name) {
            write!(f, "{}{}{}", self.name, self.op.as_str(), go_quote(&self.value))
        } else {
            write!(
                f,
                "{}{}{}",
                go_quote(&self.name),
                self.op.as_str(),
                go_quote(&self.value)
            )
        }
    }
}

impl Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_matcher(&s).map_err(serde::de::Error::custom)
    }
}

/// All matchers must match.
pub fn matches_all(ms: &[Matcher], labels: &LabelSet) -> bool {
    ms.iter().all(|m| m.matches(labels))
}

/// Formats matchers as Alertmanager's `Matchers.String()`: `{a="1",b=~"x"}`.
pub fn matchers_string(ms: &[Matcher]) -> String {
    let parts: Vec<String> = ms.iter().map(|m| m.to_string()).collect();
    format!("{{{}}}", parts.join(","))
}

/// Parses exactly one matcher.
pub fn parse_matcher(input: &str) -> Result<Matcher, AlertingError> {
    let ms = parse_matchers(input)?;
    match ms.len() {
        1 => ms.into_iter().next().ok_or_else(|| unreachable_err(input)),
        0 => Err(AlertingError::Matcher {
            input: input.into(),
            message: "no matcher found".into(),
        }),
        _ => Err(AlertingError::Matcher {
            input: input.into(),
            message: "expected exactly one matcher".into(),
        }),
    }
}

fn unreachable_err(input: &str) -> AlertingError {
    AlertingError::Matcher {
        input: input.into(),
        message: "no matcher found".into(),
    }
}

/// Parses a list of matchers, optionally enclosed in braces and separated by commas.
pub fn parse_matchers(input: &str) -> Result<Vec<Matcher>, AlertingError> {
    let err = |message: String| AlertingError::Matcher {
        input: input.to_string(),
        message,
    };
    let mut s = input.trim();
    if let Some(rest) = s.strip_prefix('{') {
        s = rest
            .strip_suffix('}')
            .ok_or_else(|| err("missing closing '}'".into()))?;
    } else if s.ends_with('}') {
        return Err(err("missing opening '{'".into()));
    }
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        // Label name: quoted or bare.
        let name = if chars[i] == '"' {
            let (v, next) = parse_quoted(&chars, i).map_err(err)?;
            i = next;
            v
        } else {
            let start = i;
            while i < chars.len() && !matches!(chars[i], '=' | '!' | '~' | ',') && !chars[i].is_whitespace() {
                i += 1;
            }
            chars[start..i].iter().collect()
        };
        if name.is_empty() {
            return Err(err(format!("expected a label name at position {i}")));
        }
        skip_ws(&mut i);
        let op = match (chars.get(i), chars.get(i + 1)) {
            (Some('='), Some('~')) => MatchOp::Regex,
            (Some('!'), Some('~')) => MatchOp::NotRegex,
            (Some('!'), Some('=')) => MatchOp::NotEqual,
            (Some('='), _) => MatchOp::Equal,
            _ => {
                return Err(err(format!(
                    "expected an operator (=, !=, =~, !~) after {name:?}"
                )));
            }
        };
        i += if op == MatchOp::Equal { 1 } else { 2 };
        skip_ws(&mut i);
        let value = if chars.get(i) == Some(&'"') {
            let (v, next) = parse_quoted(&chars, i).map_err(err)?;
            i = next;
            v
        } else {
            let start = i;
            while i < chars.len() && chars[i] != ',' {
                if chars[i] == '"' {
                    return Err(err("unexpected '\"' inside an unquoted value".into()));
                }
                i += 1;
            }
            chars[start..i].iter().collect::<String>().trim_end().to_string()
        };
        out.push(Matcher::new(&name, op, &value)?);
        skip_ws(&mut i);
        match chars.get(i) {
            None => break,
            Some(',') => i += 1,
            Some(c) => {
                return Err(err(format!(
                    "unexpected {c:?} after matcher {name:?}; expected ','"
                )));
            }
        }
    }
    Ok(out)
}

/// Parses a double-quoted string starting at `start` with Go escapes; returns the value and the
/// index after the closing quote.
fn parse_quoted(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let mut i = start + 1;
    let mut out = String::new();
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((out, i + 1)),
            '\\' => {
                let c = chars.get(i + 1).ok_or("unterminated escape sequence")?;
                match c {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    other => {
                        // Unknown escapes are kept verbatim so regexes like "\d" survive.
                        out.push('\\');
                        out.push(*other);
                    }
                }
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err("unterminated quoted string".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_all_forms() {
        let ms = parse_matchers(r#"{foo="bar", baz=~"a|b",qux!="x", "a b"!~".*z"}"#).unwrap_or_default();
        assert_eq!(ms.len(), 4);
        assert_eq!(ms[0].op, MatchOp::Equal);
        assert_eq!(ms[1].op, MatchOp::Regex);
        assert_eq!(ms[2].op, MatchOp::NotEqual);
        assert_eq!(ms[3].name, "a b");
        let ms = parse_matchers("alertname=Watchdog, severity =~ crit.*").unwrap_or_default();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[1].value, "crit.*");
        assert!(parse_matchers("").unwrap_or_default().is_empty());
    }

    #[test]
    fn rejects_invalid() {
        for s in [
            "{foo=bar",
            "foo",
            "=bar",
            "foo=~\"(\"",
            "foo=\"bar",
            "foo=\"a\" x",
        ] {
            assert!(parse_matchers(s).is_err(), "{s} should fail");
        }
    }

    #[test]
    fn matching_semantics() {
        let l = ls(&[("job", "api"), ("sev", "critical")]);
        let m = |s: &str| parse_matcher(s).map(|m| m.matches(&l)).unwrap_or(false);
        assert!(m("job=api"));
        assert!(!m("job=ap"));
        assert!(m("sev=~crit.*"));
        assert!(!m("sev=~crit"), "regex is anchored");
        assert!(m("missing=\"\""), "missing label is the empty string");
        assert!(m("missing!~\".+\""));
        assert!(m("job!=web"));
    }

    #[test]
    fn display_round_trips() {
        let ms = parse_matchers(r#"a="x\"y",b=~"c.*""#).unwrap_or_default();
        assert_eq!(matchers_string(&ms), r#"{a="x\"y",b=~"c.*"}"#);
        let again = parse_matchers(&matchers_string(&ms)).unwrap_or_default();
        assert_eq!(ms, again);
    }
}
