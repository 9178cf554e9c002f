//! Deliveries that keep failing, and the state that must survive a restart for them:
//! - per aggregation group, the consecutive failed flushes and whether the failure was reported
//!   (persisted, so a restart neither resets the count nor reports the same failure twice);
//! - the failure-notice queue: one notice per failing group, sent to
//!   `fenghuo.delivery.failure_receiver` and retried with backoff until a delivery is confirmed,
//!   listed by `GET /api/v1/alerting/delivery-failures`, and cleared when the group's own delivery
//!   recovers (or an operator dismisses it). Notices live in the state store, so a restart neither
//!   loses an unsent notice nor re-sends a delivered one.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::Engine;
use super::state::{AggrGroup, GroupId, TenantState};
use crate::clock::Ts;
use crate::error::AlertingError;
use crate::history::{EventKind, HistoryEvent};
use crate::model::{Alert, LabelSet};
use crate::store::StateKind;

/// What is persisted of a group's delivery retries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroupDelivery {
    pub attempts: u32,
    pub failure_reported: bool,
}

/// A delivery that kept failing, queued for the failure receiver and shown to operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureNotice {
    pub id: String,
    pub group_key: String,
    pub group_labels: LabelSet,
    pub alerts: Vec<Alert>,
    /// The integration that failed (`receiver/kind/index`).
    pub integration: String,
    pub error: String,
    /// Failed flushes when the failure was escalated.
    pub attempts: u32,
    pub failed_at: Ts,
    /// When the failure receiver confirmed the notice; `None` while it is still to be sent.
    #[serde(default)]
    pub notified_at: Option<Ts>,
    #[serde(default)]
    pub notify_attempts: u32,
    #[serde(default)]
    pub next_notify_at: Option<Ts>,
    #[serde(default)]
    pub last_notify_error: String,
}

/// The store key of a group's delivery state.
pub(crate) fn group_key_of(gid: &GroupId) -> String {
    format!("{}|{}", gid.0, gid.1)
}

/// Exponential backoff for attempt `n` (1-based) between `initial` and `max`.
pub(crate) fn backoff(n: u32, initial: Duration, max: Duration) -> Duration {
    let shift = n.saturating_sub(1).min(20);
    (initial * (1i32 << shift)).min(max)
}

impl TenantState {
    /// Persists a group's retry state (or deletes it once back to zero).
    pub fn save_group_delivery(&mut self, gid: &GroupId, g: &AggrGroup) {
        let key = group_key_of(gid);
        if g.attempts == 0 && !g.failure_reported {
            if self.group_delivery.remove(&key).is_some() {
                self.del(StateKind::Delivery, &format!("group/{key}"));
            }
            return;
        }
        let d = GroupDelivery {
            attempts: g.attempts,
            failure_reported: g.failure_reported,
        };
        self.put(StateKind::Delivery, &format!("group/{key}"), &d);
        self.group_delivery.insert(key, d);
    }

    pub fn remove_group_delivery(&mut self, gid: &GroupId) {
        let key = group_key_of(gid);
        if self.group_delivery.remove(&key).is_some() {
            self.del(StateKind::Delivery, &format!("group/{key}"));
        }
    }

    pub fn set_notice(&mut self, n: FailureNotice) {
        self.put(StateKind::Delivery, &format!("notice/{}", n.group_key), &n);
        self.notices.insert(n.group_key.clone(), n);
    }

    pub fn remove_notice(&mut self, group_key: &str) -> Option<FailureNotice> {
        let n = self.notices.remove(group_key);
        if n.is_some() {
            self.del(StateKind::Delivery, &format!("notice/{group_key}"));
        }
        n
    }

    /// Applies persisted retry state to the rebuilt groups and drops state of groups that no
    /// longer exist (after a config change).
    pub fn restore_group_delivery(&mut self) {
        let keys: Vec<(GroupId, String)> = self.groups.keys().map(|g| (g.clone(), group_key_of(g))).collect();
        let mut live = std::collections::BTreeSet::new();
        for (gid, key) in keys {
            if let Some(d) = self.group_delivery.get(&key).copied()
                && let Some(g) = self.groups.get_mut(&gid)
            {
                g.attempts = d.attempts;
                g.failure_reported = d.failure_reported;
                live.insert(key);
            }
        }
        let stale: Vec<String> = self
            .group_delivery
            .keys()
            .filter(|k| !live.contains(*k))
            .cloned()
            .collect();
        for k in stale {
            self.group_delivery.remove(&k);
            self.del(StateKind::Delivery, &format!("group/{k}"));
        }
    }

    /// A group's delivery recovered: its notice (if any) is cleared and recorded.
    pub fn delivery_recovered(&mut self, group_key: &str, now: Ts) {
        if let Some(n) = self.remove_notice(group_key) {
            let mut e = HistoryEvent::new(now, EventKind::DeliveryRecovered);
            e.group_key = group_key.to_string();
            e.integration = n.integration;
            e.detail = format!("delivered again after failing since {}", n.failed_at.to_rfc3339());
            self.record(e);
        }
    }
}

impl Engine {
    /// The failure-notice queue of a tenant (delivered and pending notices).
    pub fn delivery_failures(&self, tenant: &str) -> Result<Vec<FailureNotice>, AlertingError> {
        Ok(match self.existing_tenant(tenant) {
            Some(t) => t.lock().notices.values().cloned().collect(),
            None => Vec::new(),
        })
    }

    /// Removes a notice by hand (the operator has seen it); recorded in the history.
    pub fn dismiss_delivery_failure(
        &self,
        tenant: &str,
        group_key: &str,
        by: &str,
    ) -> Result<(), AlertingError> {
        let now = self.now();
        let t = self
            .existing_tenant(tenant)
            .ok_or_else(|| AlertingError::NotFound(format!("no delivery failure for group {group_key:?}")))?;
        let mut st = t.lock();
        if st.remove_notice(group_key).is_none() {
            return Err(AlertingError::NotFound(format!(
                "no delivery failure for group {group_key:?}"
            )));
        }
        let mut e = HistoryEvent::new(now, EventKind::DeliveryRecovered);
        e.group_key = group_key.to_string();
        e.by = by.to_string();
        e.detail = "dismissed".into();
        st.record(e);
        self.persist(&mut st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (i, m) = (Duration::seconds(1), Duration::seconds(60));
        assert_eq!(backoff(1, i, m), Duration::seconds(1));
        assert_eq!(backoff(3, i, m), Duration::seconds(4));
        assert_eq!(backoff(30, i, m), Duration::seconds(60));
    }
}
