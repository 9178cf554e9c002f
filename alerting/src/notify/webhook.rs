//! The generic webhook: Alertmanager's version 4 JSON payload, `max_alerts` truncation with
//! `truncatedAlerts`, POSTed to the configured URL.

use futures::future::BoxFuture;
use serde::Serialize;

use crate::config::WebhookConfig;
use crate::error::AlertingError;
use crate::model::LabelSet;
use crate::notify::http::{HttpClient, check_status};
use crate::notify::{BuildContext, Notifier, NotifyError, SendContext, value_or_file};
use crate::template::{NotificationData, TemplateAlert};

/// Alertmanager's webhook message, version 4.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage<'a> {
    pub receiver: &'a str,
    pub status: &'a str,
    pub alerts: &'a [TemplateAlert],
    pub group_labels: &'a LabelSet,
    pub common_labels: &'a LabelSet,
    pub common_annotations: &'a LabelSet,
    #[serde(rename = "externalURL")]
    pub external_url: &'a str,
    pub version: &'a str,
    pub group_key: &'a str,
    pub truncated_alerts: u64,
}

/// Serialises the v4 payload for `data`, keeping at most `max_alerts` alerts (0 = all).
pub fn payload(data: &NotificationData, max_alerts: u64) -> Vec<u8> {
    let (alerts, truncated) = if max_alerts > 0 && data.alerts.len() as u64 > max_alerts {
        (
            &data.alerts[..max_alerts as usize],
            data.alerts.len() as u64 - max_alerts,
        )
    } else {
        (&data.alerts[..], 0)
    };
    let msg = WebhookMessage {
        receiver: &data.receiver,
        status: &data.status,
        alerts,
        group_labels: &data.group_labels,
        common_labels: &data.common_labels,
        common_annotations: &data.common_annotations,
        external_url: &data.external_url,
        version: "4",
        group_key: &data.group_key,
        truncated_alerts: truncated,
    };
    serde_json::to_vec(&msg).unwrap_or_default()
}

pub struct WebhookNotifier {
    url: String,
    max_alerts: u64,
    client: HttpClient,
}

impl WebhookNotifier {
    pub fn new(ctx: &mut BuildContext<'_>, c: &WebhookConfig) -> Result<Self, AlertingError> {
        let url = value_or_file(ctx.base_dir, &c.url, &c.url_file)?.ok_or_else(|| {
            AlertingError::Config("webhook: one of url or url_file must be configured".into())
        })?;
        let timeout = c
            .timeout
            .map(|t| t.as_duration().to_std().unwrap_or(ctx.timeout))
            .unwrap_or(ctx.timeout);
        let client = HttpClient::new(
            c.http_config.as_ref().or(ctx.config.global.http_config.as_ref()),
            ctx.base_dir,
            timeout,
        )?;
        Ok(WebhookNotifier {
            url: url.trim().to_string(),
            max_alerts: c.max_alerts,
            client,
        })
    }
}

impl Notifier for WebhookNotifier {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn notify<'a>(
        &'a self,
        data: &'a NotificationData,
        _ctx: &'a SendContext,
    ) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            let body = payload(data, self.max_alerts);
            let (status, text) = self.client.post_json(&self.url, &body).await?;
            check_status(&self.url, status, &text)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Alert;
    use chrono::{DateTime, Duration, Utc};

    #[test]
    fn max_alerts_truncates_and_counts() {
        let now = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let alerts: Vec<Alert> = (0..5)
            .map(|i| Alert {
                labels: [("alertname".to_string(), format!("A{i}"))].into(),
                annotations: LabelSet::new(),
                starts_at: now,
                ends_at: now + Duration::hours(1),
                generator_url: String::new(),
                updated_at: now,
                timeout: false,
            })
            .collect();
        let d = NotificationData::build("r", "k", &LabelSet::new(), &alerts, now, "http://x", "t", "");
        let v: serde_json::Value = serde_json::from_slice(&payload(&d, 2)).unwrap_or_default();
        assert_eq!(v["alerts"].as_array().map(|a| a.len()), Some(2));
        assert_eq!(v["truncatedAlerts"], 3);
        let v: serde_json::Value = serde_json::from_slice(&payload(&d, 0)).unwrap_or_default();
        assert_eq!(v["alerts"].as_array().map(|a| a.len()), Some(5));
        assert_eq!(v["version"], "4");
    }
}
