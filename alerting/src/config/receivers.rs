//! Receiver configuration: Alertmanager's `email_configs`, `webhook_configs`, `slack_configs`, plus
//! fenghuo's `dingtalk_configs`, `wecom_configs` and `feishu_configs`. Every other Alertmanager
//! integration is recognised by name and rejected at load time as unsupported, never ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::duration::PromDuration;

/// Alertmanager integrations fenghuo knows about but does not implement.
pub const UNSUPPORTED_INTEGRATIONS: &[&str] = &[
    "pagerduty_configs",
    "opsgenie_configs",
    "pushover_configs",
    "victorops_configs",
    "sns_configs",
    "telegram_configs",
    "webex_configs",
    "discord_configs",
    "msteams_configs",
    "msteamsv2_configs",
    "jira_configs",
    "rocketchat_configs",
    "mattermost_configs",
    "incidentio_configs",
    "wechat_configs",
];

/// The integrations fenghuo implements.
pub const SUPPORTED_INTEGRATIONS: &[&str] = &[
    "email_configs",
    "webhook_configs",
    "slack_configs",
    "dingtalk_configs",
    "wecom_configs",
    "feishu_configs",
];

/// One receiver: a name and its integrations.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ReceiverConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email_configs: Vec<EmailConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_configs: Vec<WebhookConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slack_configs: Vec<SlackConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dingtalk_configs: Vec<DingTalkConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wecom_configs: Vec<WeComConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feishu_configs: Vec<FeishuConfig>,
    /// Receiver labels (Alertmanager's `receiver_matchers` filter on these).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Anything else: unsupported integrations and typos, reported by validation.
    #[serde(flatten, skip_serializing)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}

impl ReceiverConfig {
    pub fn integration_count(&self) -> usize {
        self.email_configs.len()
            + self.webhook_configs.len()
            + self.slack_configs.len()
            + self.dingtalk_configs.len()
            + self.wecom_configs.len()
            + self.feishu_configs.len()
    }
}

/// TLS settings (Prometheus common `tls_config`).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
}

/// HTTP client settings (the subset of Prometheus common `http_config` fenghuo implements; `oauth2`
/// is recognised and rejected).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_http2: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_from_environment: Option<bool>,
}

/// Messages per period allowed by a chat robot; excess notifications are folded into digests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub messages: u32,
    pub per: PromDuration,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    #[serde(default)]
    pub send_resolved: Option<bool>,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub hello: Option<String>,
    #[serde(default)]
    pub smarthost: Option<String>,
    #[serde(default)]
    pub auth_username: Option<String>,
    #[serde(default)]
    pub auth_password: Option<String>,
    #[serde(default)]
    pub auth_password_file: Option<String>,
    #[serde(default)]
    pub auth_secret: Option<String>,
    #[serde(default)]
    pub auth_secret_file: Option<String>,
    #[serde(default)]
    pub auth_identity: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub html: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub require_tls: Option<bool>,
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
    #[serde(default)]
    pub force_implicit_tls: Option<bool>,
    #[serde(default)]
    pub threading: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    #[serde(default)]
    pub send_resolved: Option<bool>,
    #[serde(default)]
    pub http_config: Option<HttpConfig>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub url_file: Option<String>,
    #[serde(default)]
    pub max_alerts: u64,
    #[serde(default)]
    pub timeout: Option<PromDuration>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    #[serde(default)]
    pub send_resolved: Option<bool>,
    #[serde(default)]
    pub http_config: Option<HttpConfig>,
    #[serde(default)]
    pub api_url: Option<String>,
    #[serde(default)]
    pub api_url_file: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub color: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub title_link: Option<String>,
    #[serde(default)]
    pub pretext: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub footer: Option<String>,
    #[serde(default)]
    pub fallback: Option<String>,
    #[serde(default)]
    pub callback_id: Option<String>,
    #[serde(default)]
    pub icon_emoji: Option<String>,
    #[serde(default)]
    pub icon_url: Option<String>,
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default)]
    pub thumb_url: Option<String>,
    #[serde(default)]
    pub link_names: bool,
    #[serde(default)]
    pub short_fields: bool,
    #[serde(default)]
    pub mrkdwn_in: Option<Vec<String>>,
    #[serde(default)]
    pub fields: Option<serde_yaml::Value>,
    #[serde(default)]
    pub actions: Option<serde_yaml::Value>,
    #[serde(default)]
    pub message_text: Option<String>,
    #[serde(default)]
    pub update_message: Option<bool>,
    #[serde(default)]
    pub timeout: Option<PromDuration>,
    /// fenghuo: message budget of this webhook (default 1 per second, Slack's documented limit).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// DingTalk custom robot (fenghuo extension).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DingTalkConfig {
    #[serde(default)]
    pub send_resolved: Option<bool>,
    #[serde(default)]
    pub http_config: Option<HttpConfig>,
    /// `https://oapi.dingtalk.com/robot/send?access_token=...`
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub webhook_url_file: Option<String>,
    /// The robot's signing secret (`SEC...`); when set, requests carry `timestamp` and `sign`.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_file: Option<String>,
    #[serde(default)]
    pub at_mobiles: Vec<String>,
    #[serde(default)]
    pub at_user_ids: Vec<String>,
    #[serde(default)]
    pub is_at_all: bool,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    /// Default: 20 messages per minute, DingTalk's documented robot limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// WeCom (WeChat Work) group robot (fenghuo extension).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WeComConfig {
    #[serde(default)]
    pub send_resolved: Option<bool>,
    #[serde(default)]
    pub http_config: Option<HttpConfig>,
    /// `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...`
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub webhook_url_file: Option<String>,
    /// User ids mentioned in the markdown body as `<@userid>`.
    #[serde(default)]
    pub mentioned_userids: Vec<String>,
    #[serde(default)]
    pub content: Option<String>,
    /// Default: 20 messages per minute, WeCom's documented robot limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// Feishu / Lark custom bot (fenghuo extension).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FeishuConfig {
    #[serde(default)]
    pub send_resolved: Option<bool>,
    #[serde(default)]
    pub http_config: Option<HttpConfig>,
    /// `https://open.feishu.cn/open-apis/bot/v2/hook/...`
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub webhook_url_file: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_file: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    /// Default: 100 messages per minute (Feishu allows 100/min and 5/s per bot).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}
