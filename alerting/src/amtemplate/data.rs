//! The data Alertmanager hands its notification templates (`template.Data`): `.Receiver`,
//! `.Status`, `.Alerts` (with `.Firing`/`.Resolved`), `.GroupLabels`, `.CommonLabels`,
//! `.CommonAnnotations`, `.ExternalURL`, and per alert `.Status`, `.Labels`, `.Annotations`,
//! `.StartsAt`, `.EndsAt`, `.GeneratorURL`, `.Fingerprint` — built from fenghuo's
//! [`NotificationData`], plus fenghuo's own fields (`.GroupKey`, `.Tenant`, `.SilenceURL`,
//! `.AckURL`, `.Escalation`, `.DigestCount`, `.Test`).

use std::sync::Arc;

use super::funcs::{ALERT_TYPE, DATA_TYPE, kv};
use super::timefmt::GO_ZERO_SECS;
use crate::ruler::gotemplate::{Struct, Value};
use crate::template::{NotificationData, TemplateAlert};

/// Go's `regexp.QuoteMeta`, which Alertmanager applies to the receiver name in template data.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An RFC 3339 timestamp of the webhook payload as a time value (Go's zero time if unset).
fn time_of(s: &str) -> Value {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => Value::Time {
            secs: t.timestamp(),
            nanos: t.timestamp_subsec_nanos(),
        },
        Err(_) => Value::Time {
            secs: GO_ZERO_SECS,
            nanos: 0,
        },
    }
}

fn structure(type_name: &str, pointer: bool, fields: Vec<(&str, Value)>) -> Value {
    Value::Struct(Arc::new(Struct {
        type_name: type_name.into(),
        fields: fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        pointer,
    }))
}

/// One `template.Alert`.
pub fn alert_value(a: &TemplateAlert) -> Value {
    structure(
        ALERT_TYPE,
        false,
        vec![
            ("Status", Value::str(a.status.clone())),
            ("Labels", kv(&a.labels)),
            ("Annotations", kv(&a.annotations)),
            ("StartsAt", time_of(&a.starts_at)),
            ("EndsAt", time_of(&a.ends_at)),
            ("GeneratorURL", Value::str(a.generator_url.clone())),
            ("Fingerprint", Value::str(a.fingerprint.clone())),
        ],
    )
}

/// The `*template.Data` of a notification.
pub fn data_value(d: &NotificationData) -> Value {
    let escalation = match &d.escalation {
        Some(e) => structure(
            "fenghuo.Escalation",
            false,
            vec![
                ("Policy", Value::str(e.policy.clone())),
                ("Step", Value::Int(e.step as i64)),
                ("Steps", Value::Int(e.steps as i64)),
                ("Repeat", Value::Int(i64::from(e.repeat))),
            ],
        ),
        None => Value::Nil,
    };
    structure(
        DATA_TYPE,
        true,
        vec![
            ("Receiver", Value::str(quote_meta(&d.receiver))),
            ("Status", Value::str(d.status.clone())),
            (
                "Alerts",
                Value::List(Arc::new(d.alerts.iter().map(alert_value).collect())),
            ),
            ("GroupLabels", kv(&d.group_labels)),
            ("CommonLabels", kv(&d.common_labels)),
            ("CommonAnnotations", kv(&d.common_annotations)),
            ("ExternalURL", Value::str(d.external_url.clone())),
            ("GroupKey", Value::str(d.group_key.clone())),
            ("Tenant", Value::str(d.tenant.clone())),
            ("SilenceURL", Value::str(d.silence_url.clone())),
            ("AckURL", Value::str(d.ack_url.clone())),
            ("Escalation", escalation),
            ("DigestCount", Value::Int(d.digest_count as i64)),
            ("Test", Value::Bool(d.test)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_meta_like_go() {
        assert_eq!(quote_meta("team-a.b (x)"), "team-a\\.b \\(x\\)");
        assert_eq!(quote_meta("plain"), "plain");
    }
}
