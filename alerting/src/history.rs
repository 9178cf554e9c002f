//! Alert history: every lifecycle event (fired, notified whom through what, delivery failures,
//! acks, escalation steps, resolved) is recorded per tenant, and statistics are computed over a
//! time range: counts per alertname / receiver / severity, MTTA, MTTR and the noisiest alerts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Ts;
use crate::model::LabelSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Fired,
    Resolved,
    Notified,
    NotifyFailed,
    DeliveryFailed,
    /// A failing group's delivery succeeded again (or its failure notice was dismissed).
    DeliveryRecovered,
    Deferred,
    Acked,
    AckExpired,
    Unacked,
    Escalated,
    EscalationStopped,
    EscalationExhausted,
}

/// One history event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub ts: Ts,
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alertname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub severity: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fingerprints: Vec<String>,
    #[serde(default, skip_serializing_if = "LabelSet::is_empty")]
    pub labels: LabelSet,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group_key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub receiver: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub integration: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// For `resolved` and `acked`: when the alert (group) started firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Ts>,
}

impl HistoryEvent {
    pub fn new(ts: Ts, kind: EventKind) -> Self {
        HistoryEvent {
            ts,
            kind,
            alertname: String::new(),
            severity: String::new(),
            fingerprints: vec![],
            labels: LabelSet::new(),
            group_key: String::new(),
            receiver: String::new(),
            integration: String::new(),
            by: String::new(),
            detail: String::new(),
            started_at: None,
        }
    }

    pub fn with_labels(mut self, labels: &LabelSet) -> Self {
        self.alertname = labels.get("alertname").cloned().unwrap_or_default();
        self.severity = labels.get("severity").cloned().unwrap_or_default();
        self.fingerprints = vec![crate::model::fingerprint(labels).to_string()];
        self.labels = labels.clone();
        self
    }
}

/// The storage key of an event: sortable by time.
pub fn event_key(ts: Ts, seq: u64) -> String {
    format!("{:015}-{:010}", ts.timestamp_millis().max(0), seq)
}

/// Range bound key for scans.
pub fn bound_key(ts: Ts) -> String {
    format!("{:015}-", ts.timestamp_millis().max(0))
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct CountEntry {
    pub name: String,
    pub fired: u64,
    pub notifications: u64,
}

/// Statistics over a time range.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Stats {
    pub start: String,
    pub end: String,
    pub fired: u64,
    pub resolved: u64,
    pub notifications: u64,
    pub delivery_failures: u64,
    pub acks: u64,
    pub escalations: u64,
    pub by_alertname: Vec<CountEntry>,
    pub by_severity: Vec<CountEntry>,
    pub by_receiver: Vec<CountEntry>,
    /// Mean time to acknowledge, seconds (null when nothing was acked).
    pub mtta_seconds: Option<f64>,
    /// Mean time to resolve, seconds (null when nothing resolved).
    pub mttr_seconds: Option<f64>,
    /// Alertnames by notifications + firings, most first (top 10).
    pub noisiest: Vec<CountEntry>,
}

fn bump(m: &mut BTreeMap<String, CountEntry>, name: &str, fired: u64, notified: u64) {
    let e = m.entry(name.to_string()).or_insert_with(|| CountEntry {
        name: name.to_string(),
        ..Default::default()
    });
    e.fired += fired;
    e.notifications += notified;
}

/// Computes statistics from events (already restricted to the range).
pub fn stats(events: &[HistoryEvent], start: Ts, end: Ts) -> Stats {
    let mut s = Stats {
        start: start.to_rfc3339(),
        end: end.to_rfc3339(),
        ..Default::default()
    };
    let (mut by_name, mut by_sev, mut by_recv) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let (mut tta, mut ttr) = (Vec::new(), Vec::new());
    for e in events {
        match e.kind {
            EventKind::Fired => {
                s.fired += 1;
                bump(&mut by_name, &e.alertname, 1, 0);
                bump(
                    &mut by_sev,
                    if e.severity.is_empty() {
                        "none"
                    } else {
                        &e.severity
                    },
                    1,
                    0,
                );
            }
            EventKind::Resolved => {
                s.resolved += 1;
                if let Some(st) = e.started_at {
                    ttr.push((e.ts - st).num_milliseconds() as f64 / 1000.0);
                }
            }
            EventKind::Notified => {
                s.notifications += 1;
                bump(&mut by_recv, &e.receiver, 0, 1);
                bump(&mut by_name, &e.alertname, 0, 1);
                bump(
                    &mut by_sev,
                    if e.severity.is_empty() {
                        "none"
                    } else {
                        &e.severity
                    },
                    0,
                    1,
                );
            }
            EventKind::DeliveryFailed => s.delivery_failures += 1,
            EventKind::Acked => {
                s.acks += 1;
                if let Some(st) = e.started_at {
                    tta.push((e.ts - st).num_milliseconds() as f64 / 1000.0);
                }
            }
            EventKind::Escalated => s.escalations += 1,
            _ => {}
        }
    }
    let mean = |v: &[f64]| {
        if v.is_empty() {
            None
        } else {
            Some(v.iter().sum::<f64>() / v.len() as f64)
        }
    };
    s.mtta_seconds = mean(&tta);
    s.mttr_seconds = mean(&ttr);
    s.by_alertname = by_name.values().cloned().collect();
    s.by_severity = by_sev.into_values().collect();
    s.by_receiver = by_recv.into_values().collect();
    let mut noisy: Vec<CountEntry> = by_name.into_values().collect();
    noisy.sort_by(|a, b| {
        (b.fired + b.notifications)
            .cmp(&(a.fired + a.notifications))
            .then(a.name.cmp(&b.name))
    });
    noisy.truncate(10);
    s.noisiest = noisy;
    s
}
