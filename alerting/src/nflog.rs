//! The notification log: per (group key, receiver integration) the alerts last notified as firing
//! and resolved and when. Its dedup rule is Alertmanager's `DedupStage.needsUpdate`; entries are
//! written only after a confirmed delivery, and persisted, so a restart neither re-sends nor forgets.

use std::collections::BTreeSet;

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::clock::Ts;

/// One log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NflogEntry {
    pub group_key: String,
    pub receiver: String,
    pub integration: String,
    pub idx: usize,
    pub firing: BTreeSet<u64>,
    pub resolved: BTreeSet<u64>,
    pub timestamp: Ts,
    pub expires_at: Ts,
}

/// The key of an entry: group key plus receiver integration.
pub fn entry_key(group_key: &str, receiver: &str, integration: &str, idx: usize) -> String {
    format!("{group_key}\u{1}{receiver}/{integration}/{idx}")
}

/// Why a notification is (not) sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyReason {
    FirstNotification,
    NewAlertsInGroup,
    AllAlertsResolved,
    NewResolvedAlerts,
    RepeatIntervalElapsed,
    DoNotNotify,
}

impl NotifyReason {
    pub fn should_notify(self) -> bool {
        self != NotifyReason::DoNotNotify
    }
}

/// Alertmanager's dedup decision. `repeat_allowed` is false while the group is acknowledged
/// (fenghuo: acks suppress repeats of what was already sent).
pub fn needs_update(
    entry: Option<&NflogEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat: Duration,
    now: Ts,
    repeat_allowed: bool,
) -> NotifyReason {
    let Some(e) = entry else {
        return if firing.is_empty() {
            NotifyReason::DoNotNotify
        } else {
            NotifyReason::FirstNotification
        };
    };
    if !firing.is_subset(&e.firing) {
        return if e.firing.is_empty() {
            NotifyReason::FirstNotification
        } else {
            NotifyReason::NewAlertsInGroup
        };
    }
    if firing.is_empty() {
        return if e.firing.is_empty() {
            NotifyReason::DoNotNotify
        } else {
            NotifyReason::AllAlertsResolved
        };
    }
    if send_resolved && !resolved.is_subset(&e.resolved) {
        return NotifyReason::NewResolvedAlerts;
    }
    if repeat_allowed && e.timestamp < now - repeat {
        return NotifyReason::RepeatIntervalElapsed;
    }
    NotifyReason::DoNotNotify
}

/// The entry dedup decides on when a notification for this key may have been interrupted
/// (sent, then the process died before its outcome was recorded): `intent` is the entry that
/// notification would have written. Alerts it reported as firing that fire no more count as
/// notified, so their resolution is told; alerts still firing stay as `prev` has them, so the
/// interrupted message is sent again if it was about them (at least once, never lost).
pub fn with_interrupted(
    prev: Option<&NflogEntry>,
    intent: Option<&NflogEntry>,
    firing: &BTreeSet<u64>,
) -> Option<NflogEntry> {
    let Some(i) = intent else {
        return prev.cloned();
    };
    let mut e = prev.cloned().unwrap_or_else(|| NflogEntry {
        firing: BTreeSet::new(),
        resolved: BTreeSet::new(),
        ..i.clone()
    });
    e.firing.extend(i.firing.iter().filter(|fp| !firing.contains(fp)));
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn t0() -> Ts {
        DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }
    fn set(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }
    fn entry(f: &[u64], r: &[u64], ts: Ts) -> NflogEntry {
        NflogEntry {
            group_key: "g".into(),
            receiver: "r".into(),
            integration: "webhook".into(),
            idx: 0,
            firing: set(f),
            resolved: set(r),
            timestamp: ts,
            expires_at: ts,
        }
    }

    #[test]
    fn alertmanager_dedup_cases() {
        let now = t0();
        let rep = Duration::hours(4);
        use NotifyReason::*;
        // No entry: only firing alerts trigger.
        assert_eq!(
            needs_update(None, &set(&[1]), &set(&[]), true, rep, now, true),
            FirstNotification
        );
        assert_eq!(
            needs_update(None, &set(&[]), &set(&[1]), true, rep, now, true),
            DoNotNotify
        );
        let e = entry(&[1, 2], &[], now);
        // Same firing set, within repeat interval: nothing.
        assert_eq!(
            needs_update(Some(&e), &set(&[1, 2]), &set(&[]), true, rep, now, true),
            DoNotNotify
        );
        // Subset of previously firing: nothing new to say (unless resolved are sent).
        assert_eq!(
            needs_update(Some(&e), &set(&[1]), &set(&[2]), false, rep, now, true),
            DoNotNotify
        );
        assert_eq!(
            needs_update(Some(&e), &set(&[1]), &set(&[2]), true, rep, now, true),
            NewResolvedAlerts
        );
        // New alert.
        assert_eq!(
            needs_update(Some(&e), &set(&[1, 3]), &set(&[]), true, rep, now, true),
            NewAlertsInGroup
        );
        // All resolved: always notify so the log is cleared, even without send_resolved.
        assert_eq!(
            needs_update(Some(&e), &set(&[]), &set(&[1, 2]), false, rep, now, true),
            AllAlertsResolved
        );
        // Repeat interval.
        let later = now + rep + Duration::seconds(1);
        assert_eq!(
            needs_update(Some(&e), &set(&[1, 2]), &set(&[]), true, rep, later, true),
            RepeatIntervalElapsed
        );
        assert_eq!(
            needs_update(Some(&e), &set(&[1, 2]), &set(&[]), true, rep, later, false),
            DoNotNotify
        );
        // Previous notification was a resolution: the next firing is a first notification.
        let r = entry(&[], &[1], now);
        assert_eq!(
            needs_update(Some(&r), &set(&[1]), &set(&[]), true, rep, now, true),
            FirstNotification
        );
        assert_eq!(
            needs_update(Some(&r), &set(&[]), &set(&[1]), true, rep, now, true),
            DoNotNotify
        );
    }

    #[test]
    fn interrupted_notifications_are_resent_or_resolved() {
        use NotifyReason::*;
        let now = t0();
        let rep = Duration::hours(4);
        let decide = |prev: Option<&NflogEntry>, intent: &NflogEntry, firing: &[u64], resolved: &[u64]| {
            let e = with_interrupted(prev, Some(intent), &set(firing));
            needs_update(e.as_ref(), &set(firing), &set(resolved), true, rep, now, true)
        };
        let intent = entry(&[1, 2], &[], now - Duration::minutes(1));
        // Nothing confirmed before; the interrupted message was about 1 and 2.
        assert_eq!(
            decide(None, &intent, &[1, 2], &[]),
            FirstNotification,
            "still firing: again"
        );
        assert_eq!(
            decide(None, &intent, &[], &[1, 2]),
            AllAlertsResolved,
            "resolved meanwhile: told"
        );
        assert_eq!(decide(None, &intent, &[1], &[2]), NewAlertsInGroup);
        // 1 was confirmed earlier; 2 was new in the interrupted message.
        let prev = entry(&[1], &[], now - Duration::minutes(10));
        assert_eq!(decide(Some(&prev), &intent, &[1, 2], &[]), NewAlertsInGroup);
        assert_eq!(decide(Some(&prev), &intent, &[1], &[2]), NewResolvedAlerts);
        // Without an intent the log decides alone (and forgets the resolution).
        assert_eq!(
            with_interrupted(Some(&prev), None, &set(&[1])),
            Some(prev.clone())
        );
        assert_eq!(
            needs_update(None, &set(&[]), &set(&[1, 2]), true, rep, now, true),
            DoNotNotify
        );
    }
}
