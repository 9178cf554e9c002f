//! Enforcement of the per-tenant limits (`fenghuo.limits`, see [`crate::config::limits`]):
//! alerts and silences over a limit are refused with a message that names the limit and the
//! numbers, and counted in `fenghuo_alerting_limit_rejections_total{limit}`; what is already held
//! is never touched. Updates of alerts the tenant already holds pass the count limit (as in Mimir).

use std::collections::BTreeSet;

use super::Runtime;
use super::state::TenantState;
use crate::config::Limits;
use crate::metrics;
use crate::model::{Alert, labels_string};
use crate::route::RouteTree;
use crate::silence::{Silence, SilenceState};

/// Bytes of an alert as the limits count them: label and annotation names and values and the
/// generator URL.
pub fn alert_size(a: &Alert) -> u64 {
    labels_size(a)
        + a.annotations
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum::<u64>()
        + a.generator_url.len() as u64
}

/// Bytes of an alert's label names and values.
pub fn labels_size(a: &Alert) -> u64 {
    a.labels.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
}

/// Bytes of a silence as stored (its JSON encoding).
pub fn silence_size(s: &Silence) -> u64 {
    serde_json::to_vec(s).map(|v| v.len() as u64).unwrap_or(0)
}

fn reject(limit: &'static str, msg: String) -> String {
    metrics::LIMIT_REJECTIONS.with_label_values(&[limit]).inc();
    msg
}

/// Running totals of one ingest call.
pub(crate) struct AlertBudget {
    limits: Limits,
    total_bytes: u64,
}

impl AlertBudget {
    pub(crate) fn new(limits: Limits, st: &TenantState) -> Self {
        let total_bytes = if limits.max_alerts_size_bytes > 0 {
            st.alerts.values().map(|s| alert_size(&s.alert)).sum()
        } else {
            0
        };
        AlertBudget { limits, total_bytes }
    }

    /// Admits `a` into the tenant's state, or says which limit it exceeds.
    pub(crate) fn admit(&mut self, rt: &Runtime, st: &TenantState, a: &Alert) -> Result<(), String> {
        let l = &self.limits;
        let name = labels_string(&a.labels);
        let ls = labels_size(a);
        if l.max_alert_labels_size_bytes > 0 && ls > l.max_alert_labels_size_bytes {
            return Err(reject(
                "max_alert_labels_size_bytes",
                format!(
                    "alert {name}: labels are {ls} bytes, over the limit max_alert_labels_size_bytes={}",
                    l.max_alert_labels_size_bytes
                ),
            ));
        }
        let size = alert_size(a);
        if l.max_alert_size_bytes > 0 && size > l.max_alert_size_bytes {
            return Err(reject(
                "max_alert_size_bytes",
                format!(
                    "alert {name}: {size} bytes, over the limit max_alert_size_bytes={}",
                    l.max_alert_size_bytes
                ),
            ));
        }
        let fp = a.fingerprint();
        let old = st.alerts.get(&fp);
        if old.is_none() && l.max_alerts > 0 && st.alerts.len() as u64 >= l.max_alerts {
            return Err(reject(
                "max_alerts",
                format!(
                    "alert {name}: the tenant already holds {} alerts, the limit max_alerts={}",
                    st.alerts.len(),
                    l.max_alerts
                ),
            ));
        }
        let old_size = old.map(|o| alert_size(&o.alert)).unwrap_or(0);
        let total = self.total_bytes.saturating_sub(old_size) + size;
        if l.max_alerts_size_bytes > 0 && total > l.max_alerts_size_bytes {
            return Err(reject(
                "max_alerts_size_bytes",
                format!(
                    "alert {name}: alerts held would total {total} bytes, over the limit max_alerts_size_bytes={}",
                    l.max_alerts_size_bytes
                ),
            ));
        }
        if l.max_aggregation_groups > 0 {
            let mut new_groups = BTreeSet::new();
            for route in rt.routes.matching(&a.labels) {
                let key = format!(
                    "{}:{}",
                    route.key,
                    labels_string(&RouteTree::group_labels(route, &a.labels))
                );
                if !st.groups.contains_key(&(route.idx, key.clone())) {
                    new_groups.insert((route.idx, key));
                }
            }
            let n = st.groups.len() + new_groups.len();
            if !new_groups.is_empty() && n as u64 > l.max_aggregation_groups {
                return Err(reject(
                    "max_aggregation_groups",
                    format!(
                        "alert {name}: it would make {n} aggregation groups, over the limit max_aggregation_groups={}",
                        l.max_aggregation_groups
                    ),
                ));
            }
        }
        self.total_bytes = total;
        Ok(())
    }
}

/// Checks a silence being created or updated against the tenant's silence limits.
pub(crate) fn admit_silence(
    limits: &Limits,
    st: &TenantState,
    s: &Silence,
    now: crate::clock::Ts,
) -> Result<(), String> {
    let size = silence_size(s);
    if limits.max_silence_size_bytes > 0 && size > limits.max_silence_size_bytes {
        return Err(reject(
            "max_silence_size_bytes",
            format!(
                "silence exceeded maximum size: {size} bytes (limit max_silence_size_bytes={})",
                limits.max_silence_size_bytes
            ),
        ));
    }
    if limits.max_silences > 0 {
        // Active and pending silences count; the one being replaced does not.
        let live = st
            .silences
            .all()
            .filter(|x| x.state(now) != SilenceState::Expired && x.id != s.id)
            .count() as u64;
        if live >= limits.max_silences {
            return Err(reject(
                "max_silences",
                format!(
                    "exceeded maximum number of silences: {live} active or pending (limit max_silences={})",
                    limits.max_silences
                ),
            ));
        }
    }
    Ok(())
}
