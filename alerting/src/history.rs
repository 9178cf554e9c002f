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
    /// Mean time to acknowledge, seconds: first ack of each incident (null when nothing was acked).
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
    let mut acked: std::collections::BTreeSet<(&str, Ts)> = std::collections::BTreeSet::new();
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
                // Time to acknowledge is measured once per incident (group and firing start):
                // later acks of the same incident (re-acks, other people) do not count again.
                if let Some(st) = e.started_at
                    && acked.insert((e.group_key.as_str(), st))
                {
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn ev(ts: Ts, kind: EventKind, name: &str, sev: &str) -> HistoryEvent {
        let mut labels = LabelSet::new();
        labels.insert("alertname".into(), name.into());
        if !sev.is_empty() {
            labels.insert("severity".into(), sev.into());
        }
        HistoryEvent::new(ts, kind).with_labels(&labels)
    }

    #[test]
    fn counts_mtta_mttr_and_noisiest() {
        let t0 = Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let m = |n: i64| t0 + Duration::minutes(n);
        let mut events = vec![
            ev(m(0), EventKind::Fired, "Disk", "critical"),
            ev(m(0), EventKind::Fired, "Cpu", "warning"),
            ev(m(1), EventKind::Fired, "Cpu", "warning"),
        ];
        for (at, name, recv) in [
            (1, "Disk", "ops"),
            (1, "Cpu", "ops"),
            (2, "Cpu", "dev"),
            (3, "Cpu", "ops"),
        ] {
            let mut e = ev(m(at), EventKind::Notified, name, "");
            e.receiver = recv.into();
            events.push(e);
        }
        // Disk acked after 4m, then acked again by someone else after 10m (same incident);
        // Cpu's group acked after 6m.
        for (at, key) in [(4, "g-disk"), (10, "g-disk"), (6, "g-cpu")] {
            let mut e = ev(m(at), EventKind::Acked, "", "");
            e.group_key = key.into();
            e.started_at = Some(t0);
            events.push(e);
        }
        // Disk resolved after 20m, Cpu after 40m.
        for (at, name) in [(20, "Disk"), (40, "Cpu")] {
            let mut e = ev(m(at), EventKind::Resolved, name, "");
            e.started_at = Some(t0);
            events.push(e);
        }
        let s = stats(&events, t0, m(60));
        assert_eq!((s.fired, s.resolved, s.notifications, s.acks), (3, 2, 4, 3));
        assert_eq!(s.mtta_seconds, Some(300.0), "first acks only: (4m + 6m) / 2");
        assert_eq!(s.mttr_seconds, Some(1800.0), "(20m + 40m) / 2");
        let names: Vec<(&str, u64, u64)> = s
            .by_alertname
            .iter()
            .map(|c| (c.name.as_str(), c.fired, c.notifications))
            .collect();
        assert_eq!(names, vec![("Cpu", 2, 3), ("Disk", 1, 1)]);
        let recv: Vec<(&str, u64)> = s
            .by_receiver
            .iter()
            .map(|c| (c.name.as_str(), c.notifications))
            .collect();
        assert_eq!(recv, vec![("dev", 1), ("ops", 3)]);
        let sev: Vec<(&str, u64, u64)> = s
            .by_severity
            .iter()
            .map(|c| (c.name.as_str(), c.fired, c.notifications))
            .collect();
        assert_eq!(sev, vec![("critical", 1, 0), ("none", 0, 4), ("warning", 2, 0)]);
        assert_eq!(s.noisiest[0].name, "Cpu");
        assert_eq!(s.noisiest[1].name, "Disk");
        // Nothing acked or resolved: no means.
        let s = stats(&events[..3], t0, m(60));
        assert_eq!((s.mtta_seconds, s.mttr_seconds), (None, None));
    }
}
