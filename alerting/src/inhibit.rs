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

/// The inhibition rules with their current source alerts, computed once per evaluation so each
/// check costs O(sources) instead of O(all alerts).
#[derive(Debug, Clone, Default)]
pub struct Inhibitor {
    rules: Vec<(InhibitRule, Vec<Alert>)>,
}

impl Inhibitor {
    /// Collects, for every rule, the firing alerts matching its source matchers.
    pub fn new<'a>(rules: &[InhibitRule], alerts: impl Iterator<Item = &'a Alert> + Clone, now: Ts) -> Self {
        let rules = rules
            .iter()
            .map(|r| {
                let sources = alerts
                    .clone()
                    .filter(|a| !a.resolved_at(now) && matches_all(&r.source, &a.labels))
                    .cloned()
                    .collect();
                (r.clone(), sources)
            })
            .collect();
        Inhibitor { rules }
    }

    /// Fingerprints of the source alerts inhibiting `labels` (one per rule that inhibits).
    pub fn inhibited_by(&self, labels: &LabelSet, now: Ts) -> Vec<Fingerprint> {
        let mut out: Vec<Fingerprint> = self
            .rules
            .iter()
            .filter_map(|(r, sources)| r.inhibited_by(labels, sources.iter(), now))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    pub fn is_inhibited(&self, labels: &LabelSet, now: Ts) -> bool {
        self.rules
            .iter()
            .any(|(r, sources)| r.inhibited_by(labels, sources.iter(), now).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration, Utc};

    fn alert(pairs: &[(&str, &str)], now: Ts, firing: bool) -> Alert {
        Alert {
            labels: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: LabelSet::new(),
            starts_at: now - Duration::minutes(1),
            ends_at: if firing {
                now + Duration::minutes(5)
            } else {
                now - Duration::seconds(1)
            },
            generator_url: String::new(),
            updated_at: now,
            timeout: false,
        }
    }

    #[test]
    fn alertmanager_inhibition_cases() {
        let now = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let cfg = InhibitRuleConfig {
            source_matchers: vec!["severity=\"critical\"".into()],
            target_matchers: vec!["severity=~\"warning|critical\"".into()],
            equal: vec!["instance".into()],
            ..Default::default()
        };
        let rule = InhibitRule::from_config(&cfg).unwrap_or_else(|_| InhibitRule {
            source: vec![],
            target: vec![],
            equal: vec![],
        });
        let crit_a = alert(
            &[("alertname", "Down"), ("severity", "critical"), ("instance", "a")],
            now,
            true,
        );
        let resolved_crit_b = alert(
            &[("alertname", "Down"), ("severity", "critical"), ("instance", "b")],
            now,
            false,
        );
        let alerts = [crit_a.clone(), resolved_crit_b];
        let inh = Inhibitor::new(std::slice::from_ref(&rule), alerts.iter(), now);
        let warn_a = alert(
            &[("alertname", "Slow"), ("severity", "warning"), ("instance", "a")],
            now,
            true,
        );
        let warn_b = alert(
            &[("alertname", "Slow"), ("severity", "warning"), ("instance", "b")],
            now,
            true,
        );
        assert_eq!(inh.inhibited_by(&warn_a.labels, now), vec![crit_a.fingerprint()]);
        assert!(
            !inh.is_inhibited(&warn_b.labels, now),
            "resolved sources do not inhibit"
        );
        // An alert matching both sides is not inhibited by another alert matching both sides.
        let crit_a2 = alert(
            &[
                ("alertname", "Other"),
                ("severity", "critical"),
                ("instance", "a"),
            ],
            now,
            true,
        );
        assert!(!inh.is_inhibited(&crit_a2.labels, now));
        // Missing equal labels count as equal (both empty).
        let no_inst = alert(&[("alertname", "X"), ("severity", "warning")], now, true);
        assert!(!inh.is_inhibited(&no_inst.labels, now));
        let crit_none = alert(&[("alertname", "Y"), ("severity", "critical")], now, true);
        let inh2 = Inhibitor::new(std::slice::from_ref(&rule), [crit_none].iter(), now);
        assert!(inh2.is_inhibited(&no_inst.labels, now));
    }
}
