//! Silences with Alertmanager's semantics: states pending / active / expired from the clock,
//! create-or-update (an update that would rewrite history expires the old silence and creates a
//! new one with a fresh id), expiry, validation (at least one matcher that does not match the empty
//! string), and garbage collection of long-expired silences.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Ts;
use crate::error::AlertingError;
use crate::matchers::{MatchOp, Matcher};
use crate::model::LabelSet;

/// A stored silence matcher (the API's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    #[serde(rename = "isRegex")]
    pub is_regex: bool,
    #[serde(rename = "isEqual", default = "default_true")]
    pub is_equal: bool,
}

fn default_true() -> bool {
    true
}

impl SilenceMatcher {
    pub fn compile(&self) -> Result<Matcher, AlertingError> {
        Matcher::new(
            &self.name,
            MatchOp::from_flags(self.is_regex, self.is_equal),
            &self.value,
        )
    }
}

/// A silence as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at: Ts,
    pub ends_at: Ts,
    pub updated_at: Ts,
    pub created_by: String,
    pub comment: String,
    #[serde(default)]
    pub annotations: LabelSet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Active,
    Pending,
    Expired,
}

impl SilenceState {
    pub fn as_str(&self) -> &'static str {
        match self {
            SilenceState::Active => "active",
            SilenceState::Pending => "pending",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    /// Alertmanager's `getState`: an instant equal to `ends_at` is still active.
    pub fn state(&self, now: Ts) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now > self.ends_at {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }

    pub fn compiled(&self) -> Vec<Matcher> {
        self.matchers.iter().filter_map(|m| m.compile().ok()).collect()
    }

    pub fn matches(&self, labels: &LabelSet) -> bool {
        let ms = self.compiled();
        !ms.is_empty() && ms.len() == self.matchers.len() && ms.iter().all(|m| m.matches(labels))
    }

    fn validate(&self) -> Result<(), String> {
        if self.matchers.is_empty() {
            return Err("at least one matcher required".into());
        }
        let mut all_empty = true;
        for (i, m) in self.matchers.iter().enumerate() {
            if m.name.is_empty() {
                return Err(format!("invalid label matcher {i}: invalid label name \"\""));
            }
            let c = m
                .compile()
                .map_err(|e| format!("invalid label matcher {i}: {e}"))?;
            let matches_empty = match c.op {
                MatchOp::Equal | MatchOp::Regex => c.matches_value(""),
                _ => false,
            };
            all_empty &= matches_empty;
        }
        if all_empty {
            return Err("at least one matcher must not match the empty string".into());
        }
        if self.ends_at < self.starts_at {
            return Err("end time must not be before start time".into());
        }
        Ok(())
    }
}

/// Whether `b` may replace `a` in place without rewriting what `a` already silenced.
fn can_update(a: &Silence, b: &Silence, now: Ts) -> bool {
    if a.matchers != b.matchers {
        return false;
    }
    match a.state(now) {
        SilenceState::Active => a.starts_at.timestamp() == b.starts_at.timestamp() && b.ends_at >= now,
        SilenceState::Pending => b.starts_at >= now,
        SilenceState::Expired => false,
    }
}

/// One tenant's silences.
#[derive(Debug, Default, Clone)]
pub struct Silences {
    by_id: BTreeMap<String, Silence>,
}

/// The result of a `set`: the silence's id and every silence that changed (to persist).
pub struct SetOutcome {
    pub id: String,
    pub changed: Vec<Silence>,
}

impl Silences {
    pub fn load(items: impl IntoIterator<Item = Silence>) -> Self {
        Silences {
            by_id: items.into_iter().map(|s| (s.id.clone(), s)).collect(),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id)
    }

    pub fn all(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values()
    }

    /// Creates or updates a silence (Alertmanager's `Silences.Set`). An unknown non-empty id is
    /// `NotFound`; `starts_at` unset means now.
    pub fn set(&mut self, mut sil: Silence, now: Ts) -> Result<SetOutcome, AlertingError> {
        sil.validate()
            .map_err(|e| AlertingError::BadRequest(format!("invalid silence: {e}")))?;
        let prev = if sil.id.is_empty() {
            None
        } else {
            Some(
                self.by_id
                    .get(&sil.id)
                    .cloned()
                    .ok_or_else(|| AlertingError::NotFound(format!("silence {} not found", sil.id)))?,
            )
        };
        if let Some(p) = &prev
            && can_update(p, &sil, now)
        {
            sil.updated_at = now;
            self.by_id.insert(sil.id.clone(), sil.clone());
            return Ok(SetOutcome {
                id: sil.id.clone(),
                changed: vec![sil],
            });
        }
        let mut changed = Vec::new();
        sil.id = uuid::Uuid::new_v4().to_string();
        if sil.starts_at < now {
            sil.starts_at = now;
        }
        sil.updated_at = now;
        if let Some(p) = prev
            && p.state(now) != SilenceState::Expired
            && let Some(e) = self.expire(&p.id, now)?
        {
            changed.push(e);
        }
        self.by_id.insert(sil.id.clone(), sil.clone());
        changed.push(sil.clone());
        Ok(SetOutcome { id: sil.id, changed })
    }

    /// Expires a silence now. Expiring an expired silence changes nothing.
    pub fn expire(&mut self, id: &str, now: Ts) -> Result<Option<Silence>, AlertingError> {
        let s = self
            .by_id
            .get_mut(id)
            .ok_or_else(|| AlertingError::NotFound(format!("silence {id} not found")))?;
        match s.state(now) {
            SilenceState::Expired => return Ok(None),
            SilenceState::Active => s.ends_at = now,
            SilenceState::Pending => {
                s.starts_at = now;
                s.ends_at = now;
            }
        }
        s.updated_at = now;
        Ok(Some(s.clone()))
    }

    /// Ids of active silences muting `labels`.
    pub fn muting(&self, labels: &LabelSet, now: Ts) -> Vec<String> {
        self.by_id
            .values()
            .filter(|s| s.state(now) == SilenceState::Active && s.matches(labels))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Removes silences expired for longer than `retention`; returns their ids.
    pub fn gc(&mut self, now: Ts, retention: chrono::Duration) -> Vec<String> {
        let dead: Vec<String> = self
            .by_id
            .values()
            .filter(|s| s.ends_at + retention < now)
            .map(|s| s.id.clone())
            .collect();
        for id in &dead {
            self.by_id.remove(id);
        }
        dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration, Utc};

    fn t0() -> Ts {
        DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn sil(matchers: Vec<SilenceMatcher>, start: Ts, end: Ts) -> Silence {
        Silence {
            id: String::new(),
            matchers,
            starts_at: start,
            ends_at: end,
            updated_at: start,
            created_by: "me".into(),
            comment: "c".into(),
            annotations: LabelSet::new(),
        }
    }

    fn eq(n: &str, v: &str) -> SilenceMatcher {
        SilenceMatcher {
            name: n.into(),
            value: v.into(),
            is_regex: false,
            is_equal: true,
        }
    }

    #[test]
    fn states_follow_the_clock() {
        let now = t0();
        let s = sil(
            vec![eq("a", "b")],
            now + Duration::minutes(1),
            now + Duration::minutes(2),
        );
        assert_eq!(s.state(now), SilenceState::Pending);
        assert_eq!(s.state(now + Duration::minutes(1)), SilenceState::Active);
        assert_eq!(s.state(now + Duration::minutes(2)), SilenceState::Active);
        assert_eq!(s.state(now + Duration::minutes(3)), SilenceState::Expired);
    }

    #[test]
    fn rejects_matchers_matching_everything() {
        let mut ss = Silences::default();
        let now = t0();
        let bad = sil(vec![eq("a", "")], now, now + Duration::hours(1));
        assert!(ss.set(bad, now).is_err());
        let re = SilenceMatcher {
            name: "a".into(),
            value: ".*".into(),
            is_regex: true,
            is_equal: true,
        };
        assert!(ss.set(sil(vec![re], now, now + Duration::hours(1)), now).is_err());
        assert!(ss.set(sil(vec![], now, now + Duration::hours(1)), now).is_err());
    }

    #[test]
    fn update_in_place_or_replace() {
        let mut ss = Silences::default();
        let now = t0();
        let out = ss.set(sil(vec![eq("a", "b")], now, now + Duration::hours(1)), now);
        let id = out.map(|o| o.id).unwrap_or_default();
        // Extending an active silence keeps its id.
        let mut upd = ss.get(&id).cloned().unwrap_or_else(|| sil(vec![], now, now));
        upd.ends_at = now + Duration::hours(2);
        let id2 = ss
            .set(upd.clone(), now + Duration::minutes(1))
            .map(|o| o.id)
            .unwrap_or_default();
        assert_eq!(id, id2);
        // Changing matchers of an active silence expires it and creates a new one.
        upd.matchers = vec![eq("a", "c")];
        let later = now + Duration::minutes(2);
        let id3 = ss.set(upd, later).map(|o| o.id).unwrap_or_default();
        assert_ne!(id, id3);
        assert_eq!(
            ss.get(&id).map(|s| s.state(later + Duration::seconds(1))),
            Some(SilenceState::Expired)
        );
        // Unknown id.
        let mut unknown = sil(vec![eq("a", "b")], now, now + Duration::hours(1));
        unknown.id = "nope".into();
        assert!(matches!(ss.set(unknown, now), Err(AlertingError::NotFound(_))));
    }

    #[test]
    fn expire_pending_and_active() {
        let mut ss = Silences::default();
        let now = t0();
        let id = ss
            .set(
                sil(
                    vec![eq("a", "b")],
                    now + Duration::hours(1),
                    now + Duration::hours(2),
                ),
                now,
            )
            .map(|o| o.id)
            .unwrap_or_default();
        let e = ss.expire(&id, now).ok().flatten();
        assert_eq!(e.map(|s| (s.starts_at, s.ends_at)), Some((now, now)));
        assert!(
            ss.expire(&id, now + Duration::seconds(1))
                .ok()
                .flatten()
                .is_none()
        );
        assert!(ss.expire("missing", now).is_err());
    }
}
