//! One tenant's in-memory state and its write-through to the [`AlertStateStore`]: alerts,
//! aggregation groups (rebuilt from alerts, not stored; their delivery retry state is), silences,
//! notification log, acks, escalation progress, the failure-notice queue and the history sequence.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Ts;
use crate::error::AlertingError;
use crate::history::{HistoryEvent, event_key};
use crate::model::{Alert, Fingerprint, LabelSet};
use crate::nflog::NflogEntry;
use crate::silence::{Silence, Silences};
use crate::store::{AlertStateStore, StateKind, StateOp};

/// An alert plus what history already knows about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredAlert {
    pub alert: Alert,
    /// The current firing episode was recorded as `fired`.
    pub fired_noted: bool,
    /// The current resolution was recorded as `resolved`.
    pub resolved_noted: bool,
}

/// Groups are keyed by route index and group key (sibling routes may share a key).
pub type GroupId = (usize, String);

/// An aggregation group.
#[derive(Debug, Clone)]
pub struct AggrGroup {
    pub route_idx: usize,
    pub key: String,
    pub labels: LabelSet,
    pub alerts: BTreeMap<Fingerprint, Alert>,
    pub next_flush: Ts,
    pub has_flushed: bool,
    /// Consecutive failed flushes (reset on success).
    pub attempts: u32,
    pub failure_reported: bool,
    /// A flush of this group is being delivered; it is not flushed again until that completes.
    pub in_flight: bool,
}

/// An acknowledgement of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub id: String,
    pub group_key: String,
    pub by: String,
    #[serde(default)]
    pub comment: String,
    pub at: Ts,
    pub expires_at: Ts,
}

/// Escalation progress of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationState {
    pub group_key: String,
    pub policy: String,
    /// Index of the next step to fire.
    pub next_step: usize,
    /// Notifications already sent at `next_step`.
    pub repeats_done: u32,
    /// When the last step fired (or escalation started / resumed).
    pub last_at: Ts,
    pub started_at: Ts,
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub retry_at: Option<Ts>,
    #[serde(default)]
    pub exhausted: bool,
    /// Steps fired so far: (step number, time, receivers).
    #[serde(default)]
    pub log: Vec<(usize, Ts, Vec<String>)>,
}

/// Key prefix of notification intents in the `Delivery` key space.
const INTENT_PREFIX: &str = "intent/";

pub struct TenantState {
    pub tenant: String,
    pub alerts: BTreeMap<Fingerprint, StoredAlert>,
    pub groups: BTreeMap<GroupId, AggrGroup>,
    pub silences: Silences,
    pub nflog: BTreeMap<String, NflogEntry>,
    /// Notifications being sent, by notification-log key: the entry each would write once
    /// delivered. Persisted before sending, removed with the outcome, so after a crash in
    /// between the engine knows the message may have gone out ([`crate::nflog::with_interrupted`]).
    pub intents: BTreeMap<String, NflogEntry>,
    pub acks: BTreeMap<String, Ack>,
    pub escalations: BTreeMap<String, EscalationState>,
    pub history_seq: u64,
    pub ops: Vec<StateOp>,
    /// Groups whose escalation step is being delivered (not persisted).
    pub escalations_in_flight: std::collections::BTreeSet<String>,
    /// Persisted retry state of failing groups, by `route index|group key`.
    pub group_delivery: BTreeMap<String, super::delivery::GroupDelivery>,
    /// The failure-notice queue, by group key.
    pub notices: BTreeMap<String, super::delivery::FailureNotice>,
    /// Notices being delivered to the failure receiver (not persisted).
    pub notices_in_flight: std::collections::BTreeSet<String>,
    /// Alerts the notification pipeline has seen (Alertmanager's marker; not persisted: after a
    /// restart every alert is unprocessed until its group flushes).
    /// Value: whether the pipeline found the alert suppressed (silenced, inhibited or muted).
    pub processed: BTreeMap<Fingerprint, bool>,
}

fn decode<T: for<'de> Deserialize<'de>>(kind: StateKind, k: &str, v: &[u8]) -> Option<T> {
    match serde_json::from_slice(v) {
        Ok(x) => Some(x),
        Err(e) => {
            tracing::warn!(?kind, key = %k, error = %e, "Skipping undecodable alerting state entry.");
            None
        }
    }
}

impl TenantState {
    pub fn empty(tenant: &str) -> Self {
        TenantState {
            tenant: tenant.to_string(),
            alerts: BTreeMap::new(),
            groups: BTreeMap::new(),
            silences: Silences::default(),
            nflog: BTreeMap::new(),
            intents: BTreeMap::new(),
            acks: BTreeMap::new(),
            escalations: BTreeMap::new(),
            history_seq: 0,
            ops: vec![],
            escalations_in_flight: Default::default(),
            group_delivery: BTreeMap::new(),
            notices: BTreeMap::new(),
            notices_in_flight: Default::default(),
            processed: Default::default(),
        }
    }

    /// Loads a tenant's state from the store (groups are rebuilt by the engine).
    pub fn load(store: &dyn AlertStateStore, tenant: &str) -> Result<Self, AlertingError> {
        let mut s = Self::empty(tenant);
        for (k, v) in store.scan(tenant, StateKind::Alert)? {
            if let Some(a) = decode::<StoredAlert>(StateKind::Alert, &k, &v) {
                s.alerts.insert(a.alert.fingerprint(), a);
            }
        }
        let sils: Vec<Silence> = store
            .scan(tenant, StateKind::Silence)?
            .into_iter()
            .filter_map(|(k, v)| decode(StateKind::Silence, &k, &v))
            .collect();
        s.silences = Silences::load(sils);
        for (k, v) in store.scan(tenant, StateKind::NotificationLog)? {
            if let Some(e) = decode(StateKind::NotificationLog, &k, &v) {
                s.nflog.insert(k, e);
            }
        }
        for (k, v) in store.scan(tenant, StateKind::Ack)? {
            if let Some(e) = decode(StateKind::Ack, &k, &v) {
                s.acks.insert(k, e);
            }
        }
        for (k, v) in store.scan(tenant, StateKind::Escalation)? {
            if let Some(e) = decode(StateKind::Escalation, &k, &v) {
                s.escalations.insert(k, e);
            }
        }
        for (k, v) in store.scan(tenant, StateKind::Delivery)? {
            if let Some(key) = k.strip_prefix("group/") {
                if let Some(d) = decode(StateKind::Delivery, &k, &v) {
                    s.group_delivery.insert(key.to_string(), d);
                }
            } else if let Some(key) = k.strip_prefix("notice/")
                && let Some(n) = decode(StateKind::Delivery, &k, &v)
            {
                s.notices.insert(key.to_string(), n);
            } else if let Some(key) = k.strip_prefix(INTENT_PREFIX)
                && let Some(e) = decode(StateKind::Delivery, &k, &v)
            {
                s.intents.insert(key.to_string(), e);
            }
        }
        if let Some((_, v)) = store
            .scan(tenant, StateKind::Meta)?
            .into_iter()
            .find(|(k, _)| k == "history_seq")
        {
            s.history_seq = String::from_utf8_lossy(&v).parse().unwrap_or(0);
        }
        Ok(s)
    }

    pub(crate) fn put<T: Serialize>(&mut self, kind: StateKind, key: &str, v: &T) {
        let value = serde_json::to_vec(v).unwrap_or_default();
        self.ops.push(StateOp::Put {
            tenant: self.tenant.clone(),
            kind,
            key: key.to_string(),
            value,
        });
    }

    pub(crate) fn del(&mut self, kind: StateKind, key: &str) {
        self.ops.push(StateOp::Delete {
            tenant: self.tenant.clone(),
            kind,
            key: key.to_string(),
        });
    }

    pub fn save_alert(&mut self, fp: Fingerprint) {
        if let Some(a) = self.alerts.get(&fp).cloned() {
            self.put(StateKind::Alert, &fp.to_string(), &a);
        }
    }

    pub fn remove_alert(&mut self, fp: Fingerprint) {
        self.alerts.remove(&fp);
        self.processed.remove(&fp);
        self.del(StateKind::Alert, &fp.to_string());
    }

    pub fn save_silence(&mut self, s: &Silence) {
        self.put(StateKind::Silence, &s.id.clone(), s);
    }

    pub fn remove_silence(&mut self, id: &str) {
        self.del(StateKind::Silence, id);
    }

    pub fn set_nflog(&mut self, key: String, e: NflogEntry) {
        self.put(StateKind::NotificationLog, &key, &e);
        self.nflog.insert(key, e);
    }

    pub fn remove_nflog(&mut self, key: &str) {
        self.nflog.remove(key);
        self.del(StateKind::NotificationLog, key);
    }

    /// Records that the notification for nflog `key` is about to be sent (see [`Self::intents`]).
    pub fn set_intent(&mut self, key: &str, e: &NflogEntry) {
        self.put(StateKind::Delivery, &format!("{INTENT_PREFIX}{key}"), e);
        self.intents.insert(key.to_string(), e.clone());
    }

    /// Forgets the intent for nflog `key`: its outcome is recorded, or nothing is left to tell.
    pub fn clear_intent(&mut self, key: &str) {
        if self.intents.remove(key).is_some() {
            self.del(StateKind::Delivery, &format!("{INTENT_PREFIX}{key}"));
        }
    }

    pub fn set_ack(&mut self, a: Ack) {
        self.put(StateKind::Ack, &a.group_key.clone(), &a);
        self.acks.insert(a.group_key.clone(), a);
    }

    pub fn remove_ack(&mut self, group_key: &str) -> Option<Ack> {
        let a = self.acks.remove(group_key);
        if a.is_some() {
            self.del(StateKind::Ack, group_key);
        }
        a
    }

    pub fn set_escalation(&mut self, e: EscalationState) {
        self.put(StateKind::Escalation, &e.group_key.clone(), &e);
        self.escalations.insert(e.group_key.clone(), e);
    }

    pub fn remove_escalation(&mut self, group_key: &str) -> Option<EscalationState> {
        let e = self.escalations.remove(group_key);
        if e.is_some() {
            self.del(StateKind::Escalation, group_key);
        }
        e
    }

    /// Appends a history event.
    pub fn record(&mut self, e: HistoryEvent) {
        self.history_seq += 1;
        let key = event_key(e.ts, self.history_seq);
        self.put(StateKind::History, &key, &e);
        let seq = self.history_seq.to_string();
        self.ops.push(StateOp::Put {
            tenant: self.tenant.clone(),
            kind: StateKind::Meta,
            key: "history_seq".into(),
            value: seq.into_bytes(),
        });
    }

    /// Whether the group is acknowledged at `now`.
    pub fn acked(&self, group_key: &str, now: Ts) -> Option<&Ack> {
        self.acks.get(group_key).filter(|a| a.expires_at > now)
    }

    pub fn take_ops(&mut self) -> Vec<StateOp> {
        std::mem::take(&mut self.ops)
    }

    /// Puts ops a failed write took back in front of any recorded since, so they are written
    /// again in their order.
    pub fn restore_ops(&mut self, mut ops: Vec<StateOp>) {
        ops.append(&mut self.ops);
        self.ops = ops;
    }
}
