//! Per-tenant limits (`fenghuo.limits`), after Mimir's Alertmanager limits: alerts held
//! (`alertmanager_max_alerts_count`), their total size (`alertmanager_max_alerts_size_bytes`), one
//! alert's size and its labels' size, silences (active + pending, `max_silences_count`) and one
//! silence's size (`max_silence_size_bytes`), aggregation groups
//! (`alertmanager_max_dispatcher_aggregation_groups`) and request bodies. 0 means unlimited.
//! `tenants:` overrides any of them per tenant. Exceeding a limit is a 4xx that names it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The limits that apply to one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_alerts: u64,
    pub max_alerts_size_bytes: u64,
    pub max_alert_size_bytes: u64,
    pub max_alert_labels_size_bytes: u64,
    pub max_silences: u64,
    pub max_silence_size_bytes: u64,
    pub max_aggregation_groups: u64,
    pub max_request_bytes: u64,
}

/// Request bodies larger than this are refused unless configured otherwise (4 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 4 << 20;

fn default_request_bytes() -> u64 {
    DEFAULT_MAX_REQUEST_BYTES
}

/// Overrides for one tenant; unset fields keep the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_alerts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_alerts_size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_alert_size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_alert_labels_size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_silences: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_silence_size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_aggregation_groups: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_bytes: Option<u64>,
}

/// The `fenghuo.limits` section: defaults for every tenant plus per-tenant overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default)]
    pub max_alerts: u64,
    #[serde(default)]
    pub max_alerts_size_bytes: u64,
    #[serde(default)]
    pub max_alert_size_bytes: u64,
    #[serde(default)]
    pub max_alert_labels_size_bytes: u64,
    #[serde(default)]
    pub max_silences: u64,
    #[serde(default)]
    pub max_silence_size_bytes: u64,
    #[serde(default)]
    pub max_aggregation_groups: u64,
    #[serde(default = "default_request_bytes")]
    pub max_request_bytes: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tenants: BTreeMap<String, LimitOverrides>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_alerts: 0,
            max_alerts_size_bytes: 0,
            max_alert_size_bytes: 0,
            max_alert_labels_size_bytes: 0,
            max_silences: 0,
            max_silence_size_bytes: 0,
            max_aggregation_groups: 0,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            tenants: BTreeMap::new(),
        }
    }
}

impl LimitsConfig {
    /// The limits of `tenant`: its overrides over the defaults.
    pub fn for_tenant(&self, tenant: &str) -> Limits {
        let o = self.tenants.get(tenant).cloned().unwrap_or_default();
        Limits {
            max_alerts: o.max_alerts.unwrap_or(self.max_alerts),
            max_alerts_size_bytes: o.max_alerts_size_bytes.unwrap_or(self.max_alerts_size_bytes),
            max_alert_size_bytes: o.max_alert_size_bytes.unwrap_or(self.max_alert_size_bytes),
            max_alert_labels_size_bytes: o
                .max_alert_labels_size_bytes
                .unwrap_or(self.max_alert_labels_size_bytes),
            max_silences: o.max_silences.unwrap_or(self.max_silences),
            max_silence_size_bytes: o.max_silence_size_bytes.unwrap_or(self.max_silence_size_bytes),
            max_aggregation_groups: o.max_aggregation_groups.unwrap_or(self.max_aggregation_groups),
            max_request_bytes: o.max_request_bytes.unwrap_or(self.max_request_bytes),
        }
    }

    /// The largest request size any tenant may send (a bound for reading bodies before the
    /// tenant is known to the handler).
    pub fn largest_request_bytes(&self) -> u64 {
        let per_tenant = self.tenants.values().filter_map(|o| o.max_request_bytes);
        per_tenant
            .chain([self.max_request_bytes])
            .fold(0, |a, b| if a == 0 || b == 0 { 0 } else { a.max(b) })
    }
}

/// A limit's value as the error messages print it.
pub fn over(v: u64, limit: u64) -> bool {
    limit > 0 && v > limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_per_tenant() {
        let c: LimitsConfig = serde_yaml::from_str(
            "max_alerts: 10\nmax_silences: 5\ntenants:\n  big: {max_alerts: 1000, max_request_bytes: 0}\n",
        )
        .unwrap_or_default();
        assert_eq!(c.for_tenant("x").max_alerts, 10);
        assert_eq!(c.for_tenant("big").max_alerts, 1000);
        assert_eq!(c.for_tenant("big").max_silences, 5);
        assert_eq!(c.for_tenant("x").max_request_bytes, DEFAULT_MAX_REQUEST_BYTES);
        assert_eq!(
            c.largest_request_bytes(),
            0,
            "an unlimited tenant lifts the bound"
        );
        assert!(serde_yaml::from_str::<LimitsConfig>("max_alertz: 1\n").is_err());
    }
}
