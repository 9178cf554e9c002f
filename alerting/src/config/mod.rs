//! `alertmanager.yml` loading and validation. Alertmanager's file loads unchanged; fenghuo's own
//! additions are a top-level `fenghuo:` section (escalation policies, acks, history, delivery), a
//! route field `escalation`, and the IM receivers in [`receivers`]. Validation follows
//! Alertmanager's `config.Load` checks; problems fenghuo cannot honour (unsupported integrations)
//! are errors or explicit warnings, never silently dropped. Template fields and files (Go or
//! handlebars) are compiled when the runtime is built, so broken templates fail the load.

pub mod limits;
pub mod receivers;
pub mod redact;
pub mod timeinterval;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::duration::PromDuration;
use crate::error::AlertingError;
use crate::matchers::{Matcher, parse_matchers};
pub use limits::{Limits, LimitsConfig};
pub use receivers::*;
pub use timeinterval::{NamedTimeInterval, TimeInterval, TimeRange};

/// Alertmanager global keys that only configure integrations fenghuo does not implement; accepted
/// so existing files load, and any receiver using those integrations is rejected.
const FOREIGN_GLOBAL_KEYS: &[&str] = &[
    "pagerduty_url",
    "opsgenie_api_key",
    "opsgenie_api_key_file",
    "opsgenie_api_url",
    "victorops_api_key",
    "victorops_api_key_file",
    "victorops_api_url",
    "wechat_api_url",
    "wechat_api_secret",
    "wechat_api_corp_id",
    "telegram_api_url",
    "telegram_bot_token",
    "telegram_bot_token_file",
    "webex_api_url",
    "rocketchat_api_url",
    "rocketchat_token",
    "rocketchat_token_id",
    "rocketchat_token_file",
    "rocketchat_token_id_file",
    "jira_api_url",
    "mattermost_webhook_url",
    "mattermost_webhook_url_file",
    "smtp_auth_secret_file",
];

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub global: GlobalConfig,
    #[serde(default)]
    pub route: Option<RouteConfig>,
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    #[serde(default)]
    pub templates: Vec<String>,
    #[serde(default)]
    pub mute_time_intervals: Vec<NamedTimeInterval>,
    #[serde(default)]
    pub time_intervals: Vec<NamedTimeInterval>,
    #[serde(default)]
    pub tracing: Option<serde_yaml::Value>,
    /// fenghuo's own section.
    #[serde(default)]
    pub fenghuo: FenghuoConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GlobalConfig {
    #[serde(default = "default_resolve_timeout")]
    pub resolve_timeout: PromDuration,
    #[serde(default)]
    pub http_config: Option<HttpConfig>,
    #[serde(default)]
    pub smtp_from: Option<String>,
    #[serde(default = "default_hello")]
    pub smtp_hello: String,
    #[serde(default)]
    pub smtp_smarthost: Option<String>,
    #[serde(default)]
    pub smtp_auth_username: Option<String>,
    #[serde(default)]
    pub smtp_auth_password: Option<String>,
    #[serde(default)]
    pub smtp_auth_password_file: Option<String>,
    #[serde(default)]
    pub smtp_auth_secret: Option<String>,
    #[serde(default)]
    pub smtp_auth_identity: Option<String>,
    #[serde(default = "default_true")]
    pub smtp_require_tls: bool,
    #[serde(default)]
    pub smtp_tls_config: Option<TlsConfig>,
    #[serde(default)]
    pub slack_api_url: Option<String>,
    #[serde(default)]
    pub slack_api_url_file: Option<String>,
    #[serde(flatten, skip_serializing)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            resolve_timeout: default_resolve_timeout(),
            http_config: None,
            smtp_from: None,
            smtp_hello: default_hello(),
            smtp_smarthost: None,
            smtp_auth_username: None,
            smtp_auth_password: None,
            smtp_auth_password_file: None,
            smtp_auth_secret: None,
            smtp_auth_identity: None,
            smtp_require_tls: true,
            smtp_tls_config: None,
            slack_api_url: None,
            slack_api_url_file: None,
            other: BTreeMap::new(),
        }
    }
}

fn default_resolve_timeout() -> PromDuration {
    PromDuration::from_mins(5)
}
fn default_hello() -> String {
    "localhost".into()
}
fn default_true() -> bool {
    true
}

/// A route node as written in the file; inheritance is resolved in [`crate::route`].
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    #[serde(default, rename = "match", skip_serializing_if = "BTreeMap::is_empty")]
    pub match_: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_re: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mute_time_intervals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_time_intervals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
    /// fenghuo: name of an escalation policy from `fenghuo.escalation_policies`; inherited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
}

impl RouteConfig {
    /// The route's matchers from `match`, `match_re` and `matchers`, sorted like Alertmanager.
    pub fn all_matchers(&self) -> Result<Vec<Matcher>, AlertingError> {
        let mut out = Vec::new();
        for (k, v) in &self.match_ {
            out.push(Matcher::new(k, crate::matchers::MatchOp::Equal, v)?);
        }
        for (k, v) in &self.match_re {
            out.push(Matcher::new(k, crate::matchers::MatchOp::Regex, v)?);
        }
        for s in &self.matchers {
            out.extend(parse_matchers(s)?);
        }
        out.sort();
        Ok(out)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_match: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_match_re: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_matchers: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target_match: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target_match_re: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_matchers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub equal: Vec<String>,
}

/// fenghuo's own configuration section.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FenghuoConfig {
    #[serde(default)]
    pub escalation_policies: Vec<EscalationPolicy>,
    #[serde(default)]
    pub ack: AckConfig,
    #[serde(default)]
    pub history: HistoryConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// Ordered escalation steps attached to routes by name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    pub name: String,
    pub steps: Vec<EscalationStep>,
}

/// One step: after `wait` without acknowledgement, notify `receivers`; do so `repeat` times
/// (`wait` apart) before moving to the next step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EscalationStep {
    pub wait: PromDuration,
    pub receivers: Vec<String>,
    #[serde(default = "default_repeat")]
    pub repeat: u32,
}

fn default_repeat() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckConfig {
    #[serde(default = "default_ack_ttl")]
    pub default_ttl: PromDuration,
    #[serde(default = "default_ack_max_ttl")]
    pub max_ttl: PromDuration,
    /// Whether an acknowledged group stops getting `repeat_interval` re-notifications.
    #[serde(default = "default_true")]
    pub suppress_repeats: bool,
}

impl Default for AckConfig {
    fn default() -> Self {
        AckConfig {
            default_ttl: default_ack_ttl(),
            max_ttl: default_ack_max_ttl(),
            suppress_repeats: true,
        }
    }
}
fn default_ack_ttl() -> PromDuration {
    PromDuration::from_secs(4 * 3600)
}
fn default_ack_max_ttl() -> PromDuration {
    PromDuration::from_secs(7 * 24 * 3600)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    #[serde(default = "default_history_retention")]
    pub retention: PromDuration,
}
impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            retention: default_history_retention(),
        }
    }
}
fn default_history_retention() -> PromDuration {
    PromDuration::from_secs(90 * 24 * 3600)
}

/// Delivery confirmation: retries with backoff, then escalation of the failure.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff: PromDuration,
    #[serde(default = "default_max_backoff")]
    pub max_backoff: PromDuration,
    /// Receiver told when a delivery keeps failing after `max_attempts`.
    #[serde(default)]
    pub failure_receiver: Option<String>,
    #[serde(default = "default_send_timeout")]
    pub timeout: PromDuration,
}
impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_attempts: default_attempts(),
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
            failure_receiver: None,
            timeout: default_send_timeout(),
        }
    }
}
fn default_attempts() -> u32 {
    5
}
fn default_initial_backoff() -> PromDuration {
    PromDuration::from_secs(1)
}
fn default_max_backoff() -> PromDuration {
    PromDuration::from_secs(60)
}
fn default_send_timeout() -> PromDuration {
    PromDuration::from_secs(15)
}

/// A loaded, validated configuration with its original text and any warnings.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub original: String,
    pub warnings: Vec<String>,
    /// Directory relative paths (template globs, *_file) resolve against.
    pub base_dir: std::path::PathBuf,
}

/// Loads and validates a config file.
pub fn load_file(path: &Path) -> Result<LoadedConfig, AlertingError> {
    let text = std::fs::read_to_string(path).map_err(|e| AlertingError::ConfigFile {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_str(&text, &base).map_err(|e| AlertingError::ConfigFile {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Parses and validates config text.
pub fn load_str(text: &str, base_dir: &Path) -> Result<LoadedConfig, AlertingError> {
    let config: Config = if text.trim().is_empty() {
        return Err(AlertingError::Config("configuration is empty".into()));
    } else {
        serde_yaml::from_str(text).map_err(|e| AlertingError::Config(e.to_string()))?
    };
    let warnings = validate(&config)?;
    Ok(LoadedConfig {
        config,
        original: text.to_string(),
        warnings,
        base_dir: base_dir.to_path_buf(),
    })
}

fn cfg_err(msg: impl Into<String>) -> AlertingError {
    AlertingError::Config(msg.into())
}

/// Validates like Alertmanager's `config.Load`; returns warnings for accepted-but-degraded parts.
pub fn validate(c: &Config) -> Result<Vec<String>, AlertingError> {
    let mut warnings = Vec::new();
    for k in c.global.other.keys() {
        if !FOREIGN_GLOBAL_KEYS.contains(&k.as_str()) {
            return Err(cfg_err(format!("global: unknown field {k:?}")));
        }
    }
    if c.global.smtp_auth_secret.is_some() {
        return Err(cfg_err(
            "global: smtp_auth_secret (CRAM-MD5) is not supported by fenghuo; use smtp_auth_password",
        ));
    }
    let route = c.route.as_ref().ok_or_else(|| cfg_err("no routes provided"))?;
    if route.receiver.as_deref().unwrap_or("").is_empty() {
        return Err(cfg_err("root route must specify a default receiver"));
    }
    if !route.match_.is_empty() || !route.match_re.is_empty() || !route.matchers.is_empty() {
        return Err(cfg_err("root route must not have any matchers"));
    }
    if !route.mute_time_intervals.is_empty() {
        return Err(cfg_err("root route must not have any mute time intervals"));
    }
    if !route.active_time_intervals.is_empty() {
        return Err(cfg_err("root route must not have any active time intervals"));
    }
    if route.continue_ {
        return Err(cfg_err("cannot have continue in root route"));
    }

    // Receivers.
    let mut names = BTreeSet::new();
    for r in &c.receivers {
        if r.name.is_empty() {
            return Err(cfg_err("missing name in receiver"));
        }
        if !names.insert(r.name.clone()) {
            return Err(cfg_err(format!(
                "notification config name {:?} is not unique",
                r.name
            )));
        }
        if let Some(k) = r.other.keys().next() {
            if UNSUPPORTED_INTEGRATIONS.contains(&k.as_str()) {
                return Err(cfg_err(format!(
                    "receiver {:?}: integration {k} is not supported by fenghuo (supported: {})",
                    r.name,
                    SUPPORTED_INTEGRATIONS.join(", ")
                )));
            }
            return Err(cfg_err(format!("receiver {:?}: unknown field {k:?}", r.name)));
        }
        validate_receiver(c, r, &mut warnings)?;
    }

    // Time intervals.
    let mut intervals = BTreeSet::new();
    for ti in c.mute_time_intervals.iter().chain(c.time_intervals.iter()) {
        if ti.name.is_empty() {
            return Err(cfg_err("missing name in time interval"));
        }
        if !intervals.insert(ti.name.clone()) {
            return Err(cfg_err(format!("time interval {:?} is not unique", ti.name)));
        }
        for t in &ti.time_intervals {
            t.validate()
                .map_err(|e| cfg_err(format!("time interval {:?}: {e}", ti.name)))?;
        }
    }

    // Escalation policies.
    let mut policies = BTreeSet::new();
    for p in &c.fenghuo.escalation_policies {
        if !policies.insert(p.name.clone()) {
            return Err(cfg_err(format!("escalation policy {:?} is not unique", p.name)));
        }
        if p.steps.is_empty() {
            return Err(cfg_err(format!("escalation policy {:?} has no steps", p.name)));
        }
        for (i, s) in p.steps.iter().enumerate() {
            if s.wait.is_zero() {
                return Err(cfg_err(format!(
                    "escalation policy {:?} step {}: wait must be > 0",
                    p.name,
                    i + 1
                )));
            }
            if s.repeat == 0 {
                return Err(cfg_err(format!(
                    "escalation policy {:?} step {}: repeat must be >= 1",
                    p.name,
                    i + 1
                )));
            }
            for r in &s.receivers {
                if !names.contains(r) {
                    return Err(cfg_err(format!(
                        "undefined receiver {r:?} used in escalation policy {:?}",
                        p.name
                    )));
                }
            }
        }
    }
    if let Some(r) = &c.fenghuo.delivery.failure_receiver
        && !names.contains(r)
    {
        return Err(cfg_err(format!(
            "undefined receiver {r:?} used in fenghuo.delivery.failure_receiver"
        )));
    }
    for t in c.fenghuo.limits.tenants.keys() {
        crate::engine::validate_tenant(t)
            .map_err(|_| cfg_err(format!("fenghuo.limits.tenants: invalid tenant id {t:?}")))?;
    }
    if c.fenghuo.delivery.max_attempts == 0 {
        return Err(cfg_err("fenghuo.delivery.max_attempts must be >= 1"));
    }

    validate_route(route, &names, &intervals, &policies, true, &mut warnings)?;

    for (i, ir) in c.inhibit_rules.iter().enumerate() {
        let ctx = |e: AlertingError| cfg_err(format!("inhibit rule {}: {e}", i + 1));
        let rule = crate::inhibit::InhibitRule::from_config(ir).map_err(ctx)?;
        let _ = rule;
    }

    Ok(warnings)
}

fn validate_route(
    r: &RouteConfig,
    receivers: &BTreeSet<String>,
    intervals: &BTreeSet<String>,
    policies: &BTreeSet<String>,
    root: bool,
    warnings: &mut Vec<String>,
) -> Result<(), AlertingError> {
    if let Some(rc) = &r.receiver
        && !receivers.contains(rc)
    {
        return Err(cfg_err(format!("undefined receiver {rc:?} used in route")));
    }
    r.all_matchers()?;
    if let Some(gb) = &r.group_by {
        let mut seen = BTreeSet::new();
        for l in gb {
            if l == "..." && gb.len() > 1 {
                return Err(cfg_err(
                    "cannot have wildcard group_by (`...`) and other other labels at the same time",
                ));
            }
            if l != "..." && l.is_empty() {
                return Err(cfg_err("invalid label name \"\" in group_by list"));
            }
            if !seen.insert(l) {
                return Err(cfg_err(format!("duplicated label {l:?} in group_by")));
            }
        }
    }
    if r.group_interval.is_some_and(|d| d.is_zero()) {
        return Err(cfg_err("group_interval cannot be zero"));
    }
    if r.repeat_interval.is_some_and(|d| d.is_zero()) {
        return Err(cfg_err("repeat_interval cannot be zero"));
    }
    if let (Some(ri), Some(gi)) = (r.repeat_interval, r.group_interval)
        && ri < gi
    {
        warnings.push(format!(
            "repeat_interval {ri} is less than group_interval {gi}; notifications repeat at group_interval"
        ));
    }
    for n in r.mute_time_intervals.iter().chain(r.active_time_intervals.iter()) {
        if !intervals.contains(n) {
            return Err(cfg_err(format!("undefined time interval {n:?} used in route")));
        }
    }
    if let Some(p) = &r.escalation
        && !policies.contains(p)
    {
        return Err(cfg_err(format!(
            "undefined escalation policy {p:?} used in route"
        )));
    }
    let _ = root;
    for child in &r.routes {
        validate_route(child, receivers, intervals, policies, false, warnings)?;
    }
    Ok(())
}

fn validate_http(receiver: &str, h: &Option<HttpConfig>) -> Result<(), AlertingError> {
    if let Some(h) = h {
        if h.oauth2.is_some() {
            return Err(cfg_err(format!(
                "receiver {receiver:?}: http_config.oauth2 is not supported by fenghuo"
            )));
        }
        let n = usize::from(h.basic_auth.is_some())
            + usize::from(h.authorization.is_some())
            + usize::from(h.bearer_token.is_some() || h.bearer_token_file.is_some());
        if n > 1 {
            return Err(cfg_err(format!(
                "receiver {receiver:?}: at most one of basic_auth, authorization and bearer_token may be configured"
            )));
        }
    }
    Ok(())
}

fn validate_url(
    receiver: &str,
    what: &str,
    url: &Option<String>,
    file: &Option<String>,
) -> Result<(), AlertingError> {
    match (url, file) {
        (Some(_), Some(_)) => Err(cfg_err(format!(
            "receiver {receiver:?}: at most one of {what} & {what}_file must be configured"
        ))),
        (None, None) => Err(cfg_err(format!(
            "receiver {receiver:?}: one of {what} or {what}_file must be configured"
        ))),
        (Some(u), None) => {
            url::Url::parse(u)
                .map_err(|e| cfg_err(format!("receiver {receiver:?}: invalid {what} {u:?}: {e}")))?;
            Ok(())
        }
        (None, Some(_)) => Ok(()),
    }
}

fn validate_receiver(
    c: &Config,
    r: &ReceiverConfig,
    warnings: &mut Vec<String>,
) -> Result<(), AlertingError> {
    let n = &r.name;
    for e in &r.email_configs {
        if e.to.is_empty() {
            return Err(cfg_err(format!(
                "receiver {n:?}: missing to address in email config"
            )));
        }
        if e.smarthost.is_none() && c.global.smtp_smarthost.is_none() {
            return Err(cfg_err(format!("receiver {n:?}: no global SMTP smarthost set")));
        }
        if e.from.is_none() && c.global.smtp_from.is_none() {
            return Err(cfg_err(format!("receiver {n:?}: no global SMTP from set")));
        }
        if e.auth_secret.is_some() || e.auth_secret_file.is_some() {
            return Err(cfg_err(format!(
                "receiver {n:?}: auth_secret (CRAM-MD5) is not supported by fenghuo"
            )));
        }
        if let Some(sh) = e.smarthost.as_ref().or(c.global.smtp_smarthost.as_ref()) {
            crate::notify::email::split_smarthost(sh)
                .map_err(|m| cfg_err(format!("receiver {n:?}: invalid smarthost {sh:?}: {m}")))?;
        }
        for k in e.headers.keys() {
            if k.eq_ignore_ascii_case("to") || k.eq_ignore_ascii_case("from") {
                warnings.push(format!(
                    "receiver {n:?}: email header {k} is not applied; fenghuo uses the `to`/`from` fields for both envelope and header"
                ));
            }
        }
    }
    for w in &r.webhook_configs {
        validate_url(n, "url", &w.url, &w.url_file)?;
        validate_http(n, &w.http_config)?;
    }
    for s in &r.slack_configs {
        if s.api_url.is_none()
            && s.api_url_file.is_none()
            && c.global.slack_api_url.is_none()
            && c.global.slack_api_url_file.is_none()
        {
            return Err(cfg_err(format!("receiver {n:?}: no global Slack API URL set")));
        }
        if s.api_url.is_some() || s.api_url_file.is_some() {
            validate_url(n, "api_url", &s.api_url, &s.api_url_file)?;
        }
        validate_http(n, &s.http_config)?;
    }
    for d in &r.dingtalk_configs {
        validate_url(n, "webhook_url", &d.webhook_url, &d.webhook_url_file)?;
        validate_http(n, &d.http_config)?;
        validate_rate(n, &d.rate_limit)?;
    }
    for w in &r.wecom_configs {
        validate_url(n, "webhook_url", &w.webhook_url, &w.webhook_url_file)?;
        validate_http(n, &w.http_config)?;
        validate_rate(n, &w.rate_limit)?;
    }
    for f in &r.feishu_configs {
        validate_url(n, "webhook_url", &f.webhook_url, &f.webhook_url_file)?;
        validate_http(n, &f.http_config)?;
        validate_rate(n, &f.rate_limit)?;
    }
    Ok(())
}

fn validate_rate(receiver: &str, r: &Option<RateLimit>) -> Result<(), AlertingError> {
    if let Some(r) = r
        && (r.messages == 0 || r.per.is_zero())
    {
        return Err(cfg_err(format!(
            "receiver {receiver:?}: rate_limit needs messages >= 1 and per > 0"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(s: &str) -> Result<LoadedConfig, AlertingError> {
        load_str(s, Path::new("."))
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = load("route:\n  receiver: x\nreceivers:\n- name: x\n").map(|c| c.config);
        let c = c.unwrap_or_default();
        assert_eq!(c.global.resolve_timeout, PromDuration::from_mins(5));
        assert!(c.global.smtp_require_tls);
    }

    #[test]
    fn unsupported_integration_is_an_error() {
        let r = load(
            "route:\n  receiver: x\nreceivers:\n- name: x\n  pagerduty_configs:\n  - routing_key: abc\n",
        );
        let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("pagerduty_configs is not supported"), "{msg}");
    }

    #[test]
    fn typo_is_an_error() {
        assert!(load("route:\n  receiver: x\n  group_wiat: 1m\nreceivers:\n- name: x\n").is_err());
        assert!(load("route:\n  receiver: x\nreceivers:\n- name: x\n  emial_configs: []\n").is_err());
    }
}
