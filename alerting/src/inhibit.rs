//! Inhibition rules: a firing alert matching a rule's source matchers mutes alerts matching its
//! target matchers when the `equal` labels have the same value in both (missing = empty). As in
//! Alertmanager, an alert matching both sides cannot inhibit another alert that also matches both
//! sides (so a rule never lets such alerts mute each other).

use crate::clock::Ts;
use crate::config::InhibitRuleConfig;
use crate::error::AlertingError;
use crate::matchers::{MatchOp, Matcher, matches_all, parse_matchers};
use crate::model::{Alert, Fingerprint, LabelSet};

/// A compiled inhibition rule.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub source: Vec<Matcher>,
    pub target: Vec<Matcher>,
    pub equal: Vec<String>,
}

impl InhibitRule {
    pub fn from_config(c: &InhibitRuleConfig) -> Result<Self, AlertingError> {
        let mut source = Vec::new();
        for (k, v) in &c.source_match {
            source.push(Matcher::new(k, MatchOp::Equal, v)?);
        }
        for (k, v) in &c.source_match_re {
            source.push(Matcher::new(k, MatchOp::Regex, v)?);
        }
        for s in &c.source_matchers {
            source.extend(parse_matchers(s)?);
        }
        let mut target = Vec::new();
        for (k, v) in &c.target_match {
            target.push(Matcher::new(k, MatchOp::Equal, v)?);
        }
        for (k, v) in &c.target_match_re {
            target.push(Matcher::new(k, MatchOp::Regex, v)?);
        }
        for s in &c.target_matchers {
            target.extend(parse_matchers(s)?);
        }
        Ok(InhibitRule {
            source,
            target,
            equal: c.equal.clone(),
        })
    }

    /// The fingerprint of a source alert inhibiting `labels`, if any. `alerts` are all known alerts.
    pub fn inhibited_by<'a>(
        &self,
        labels: &LabelSet,
        alerts: impl Iterator<Item = &'a Alert>,
        now: Ts,
    ) -> Option<Fingerprint> {
        if !matches_all(&self.target, labels) {
            return None;
        }
        let exclude_two_sided = matches_all(&self.source, labels);
        let empty = String::new();
        for a in alerts {
            if a.resolved_at(now) || !matches_all(&self.source, &a.labels) {
                continue;
            }
            if self
                .equal
                .iter()
                .any(|n| a.labels.get(n).unwrap_or(&empty) != labels.get(n).unwrap_or(&empty))
            {
                continue;
            }
            if exclude_two_sided && matches_all(&self.target, &a.labels) {
                continue;
            }
            return Some(a.fingerprint());
        }
        None
    }
}
