//! Label matchers (`=`, `!=`, `=~`, `!~`) as PromQL selectors and the
//! `match[]` API parameters use them.

use regex::Regex;

use super::labels::Labels;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One matcher. Regexes are fully anchored and let `.` match newlines, as in
/// Prometheus 3 (`^(?s:<re>)$`).
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

/// A regex that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {pattern:?} in matcher for label {label:?}: {reason}")]
pub struct InvalidMatcher {
    pub label: String,
    pub pattern: String,
    pub reason: String,
}

impl Matcher {
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, InvalidMatcher> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(Regex::new(&format!("^(?s:{value})$")).map_err(
                |e| InvalidMatcher {
                    label: name.clone(),
                    pattern: value.clone(),
                    reason: e.to_string(),
                },
            )?),
            _ => None,
        };
        Ok(Self {
            name,
            op,
            value,
            regex,
        })
    }

    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            regex: None,
        }
    }

    /// Whether a label value (empty when the label is absent) matches.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => self.value == value,
            MatchOp::NotEqual => self.value != value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether the matcher accepts a series that lacks the label entirely.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if super::labels::is_legacy_name(&self.name) {
            f.write_str(&self.name)?;
        } else {
            super::labels::write_go_quoted(f, &self.name)?;
        }
        f.write_str(self.op.as_str())?;
        super::labels::write_go_quoted(f, &self.value)
    }
}

/// True when every matcher accepts the label set.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches_labels(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_anchored_and_dot_matches_newline() {
        let m = Matcher::new(MatchOp::Regex, "job", "a.c").unwrap();
        assert!(m.matches("abc"));
        assert!(m.matches("a\nc"));
        assert!(!m.matches("xabc"));
        assert!(!m.matches("abcd"));
    }

    #[test]
    fn absent_label_is_empty_value() {
        let ls = Labels::from_pairs([("a", "1")]);
        assert!(Matcher::equal("b", "").matches_labels(&ls));
        assert!(
            !Matcher::new(MatchOp::NotEqual, "b", "")
                .unwrap()
                .matches_labels(&ls)
        );
        assert!(
            Matcher::new(MatchOp::NotRegex, "b", "x")
                .unwrap()
                .matches_labels(&ls)
        );
    }

    #[test]
    fn bad_regex_names_the_label() {
        let err = Matcher::new(MatchOp::Regex, "job", "(").unwrap_err();
        assert!(err.to_string().contains("job"), "{err}");
    }
}
