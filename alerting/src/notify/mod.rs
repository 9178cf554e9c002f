//! Receivers' integrations. Each integration implements [`Notifier`]: it renders the notification
//! data with its channel's templates and escaping, sends it, and reports a [`NotifyError`] that
//! says whether a retry may help. Vendor APIs that answer HTTP 200 with an error code in the body
//! count as failures. [`Integration`] wraps a notifier with its identity and rate budget.

pub mod dingtalk;
pub mod email;
pub mod feishu;
pub mod http;
pub mod ratelimit;
pub mod slack;
pub mod split;
pub mod webhook;
pub mod wecom;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use parking_lot::Mutex;

use crate::clock::Ts;
use crate::config::{Config, ReceiverConfig};
use crate::error::AlertingError;
use crate::template::{NotificationData, Templates};
pub use ratelimit::TokenBucket;

/// A failed delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyError {
    pub message: String,
    pub retryable: bool,
    /// Short machine-readable cause for metrics: `http_5xx`, `api_error`, `connect`, `smtp`, ...
    pub reason: &'static str,
}

impl NotifyError {
    pub fn new(reason: &'static str, retryable: bool, message: impl Into<String>) -> Self {
        NotifyError {
            message: message.into(),
            retryable,
            reason,
        }
    }
}

impl std::fmt::Display for NotifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}{})",
            self.message,
            self.reason,
            if self.retryable { ", retryable" } else { "" }
        )
    }
}

/// One way of delivering a notification.
pub trait Notifier: Send + Sync {
    /// Integration kind as in Alertmanager's nflog (`email`, `webhook`, `slack`, `dingtalk`, ...).
    fn kind(&self) -> &'static str;
    fn notify<'a>(
        &'a self,
        data: &'a NotificationData,
        ctx: &'a SendContext,
    ) -> BoxFuture<'a, Result<(), NotifyError>>;
    /// How many messages `notify` will post for `data`: more than one when a text over the
    /// vendor's size limit is split into parts. Each part costs a token of a rate budget.
    fn messages(&self, _data: &NotificationData, _ctx: &SendContext) -> usize {
        1
    }
}

/// What a notifier needs at send time besides the data.
pub struct SendContext {
    pub templates: std::sync::Arc<Templates>,
    /// The engine clock's time, used for signatures so tests are deterministic.
    pub now: Ts,
}

/// Renders a template for a notifier, mapping errors to a permanent failure.
pub fn render(
    ctx: &SendContext,
    name: &str,
    escape: crate::template::Escape,
    data: &NotificationData,
) -> Result<String, NotifyError> {
    ctx.templates
        .render(name, escape, data)
        .map_err(|e| NotifyError::new("template", false, e.to_string()))
}

/// A notifier with its place in the config.
#[derive(Clone)]
pub struct Integration {
    pub receiver: String,
    pub kind: &'static str,
    pub idx: usize,
    pub send_resolved: bool,
    pub notifier: Arc<dyn Notifier>,
    /// Rate budget shared by every integration posting to the same robot.
    pub limiter: Option<Arc<Mutex<TokenBucket>>>,
    /// The budget's key in the state store (a hash: robot URLs carry secrets).
    pub limiter_key: Option<String>,
}

impl std::fmt::Debug for Integration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.receiver, self.kind, self.idx)
    }
}

impl Integration {
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.receiver, self.kind, self.idx)
    }
}

/// Rate limiters by robot URL; kept across config reloads so a reload does not reset budgets,
/// and seeded from the state store so a restart does not either.
#[derive(Default)]
pub struct LimiterRegistry {
    by_key: Mutex<BTreeMap<String, Arc<Mutex<TokenBucket>>>>,
    /// Persisted budgets by [`LimiterRegistry::store_key`], applied when a bucket is created.
    persisted: Mutex<BTreeMap<String, ratelimit::BucketState>>,
}

impl LimiterRegistry {
    /// The store key of a robot URL's budget.
    pub fn store_key(key: &str) -> String {
        format!("{:016x}", xxhash_rust::xxh64::xxh64(key.as_bytes(), 0))
    }

    /// Budgets loaded from the state store.
    pub fn preload(&self, entries: impl IntoIterator<Item = (String, ratelimit::BucketState)>) {
        self.persisted.lock().extend(entries);
    }

    pub fn get(&self, key: &str, messages: u32, per: chrono::Duration, now: Ts) -> Arc<Mutex<TokenBucket>> {
        let mut m = self.by_key.lock();
        let e = m.entry(key.to_string()).or_insert_with(|| {
            let mut b = TokenBucket::new(messages, per, now);
            if let Some(s) = self.persisted.lock().remove(&Self::store_key(key)) {
                b.restore(s);
            }
            Arc::new(Mutex::new(b))
        });
        e.lock().reconfigure(messages, per);
        e.clone()
    }
}

/// Everything needed to build integrations.
pub struct BuildContext<'a> {
    pub config: &'a Config,
    pub base_dir: &'a std::path::Path,
    pub templates: &'a mut Templates,
    pub limiters: &'a LimiterRegistry,
    pub now: Ts,
    pub timeout: std::time::Duration,
}

/// Reads a `*_file` secret, trimming the trailing newline.
pub fn read_secret_file(base: &std::path::Path, f: &str) -> Result<String, AlertingError> {
    let p = if std::path::Path::new(f).is_absolute() {
        std::path::PathBuf::from(f)
    } else {
        base.join(f)
    };
    std::fs::read_to_string(&p)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| AlertingError::Io {
            path: p.display().to_string(),
            source: e,
        })
}

/// Picks a configured string or the content of its `_file` variant.
pub fn value_or_file(
    base: &std::path::Path,
    v: &Option<String>,
    f: &Option<String>,
) -> Result<Option<String>, AlertingError> {
    match (v, f) {
        (Some(v), _) => Ok(Some(v.clone())),
        (None, Some(f)) => read_secret_file(base, f).map(Some),
        _ => Ok(None),
    }
}

/// Builds all integrations of one receiver.
pub fn build_receiver(
    ctx: &mut BuildContext<'_>,
    r: &ReceiverConfig,
) -> Result<Vec<Integration>, AlertingError> {
    let mut out = Vec::new();
    let name = r.name.clone();
    let integ = |kind: &'static str,
                 idx,
                 send_resolved,
                 notifier: Arc<dyn Notifier>,
                 limiter: Option<(String, _)>| {
        let (limiter_key, limiter) = match limiter {
            Some((k, l)) => (Some(LimiterRegistry::store_key(&k)), Some(l)),
            None => (None, None),
        };
        Integration {
            receiver: name.clone(),
            kind,
            idx,
            send_resolved,
            notifier,
            limiter,
            limiter_key,
        }
    };
    for (i, c) in r.email_configs.iter().enumerate() {
        let n = email::EmailNotifier::new(ctx, &r.name, c)?;
        out.push(integ(
            "email",
            i,
            c.send_resolved.unwrap_or(false),
            Arc::new(n),
            None,
        ));
    }
    for (i, c) in r.webhook_configs.iter().enumerate() {
        let n = webhook::WebhookNotifier::new(ctx, c)?;
        out.push(integ(
            "webhook",
            i,
            c.send_resolved.unwrap_or(true),
            Arc::new(n),
            None,
        ));
    }
    for (i, c) in r.slack_configs.iter().enumerate() {
        let n = slack::SlackNotifier::new(ctx, &r.name, c)?;
        let url = n.url.clone();
        let lim = ctx.limiters.get(
            &n.url,
            c.rate_limit.as_ref().map(|l| l.messages).unwrap_or(60),
            c.rate_limit
                .as_ref()
                .map(|l| l.per.as_duration())
                .unwrap_or(chrono::Duration::minutes(1)),
            ctx.now,
        );
        out.push(integ(
            "slack",
            i,
            c.send_resolved.unwrap_or(false),
            Arc::new(n),
            Some((url, lim)),
        ));
    }
    for (i, c) in r.dingtalk_configs.iter().enumerate() {
        let n = dingtalk::DingTalkNotifier::new(ctx, &r.name, c)?;
        let url = n.url.clone();
        let lim = ctx.limiters.get(
            &n.url,
            c.rate_limit.as_ref().map(|l| l.messages).unwrap_or(20),
            c.rate_limit
                .as_ref()
                .map(|l| l.per.as_duration())
                .unwrap_or(chrono::Duration::minutes(1)),
            ctx.now,
        );
        out.push(integ(
            "dingtalk",
            i,
            c.send_resolved.unwrap_or(true),
            Arc::new(n),
            Some((url, lim)),
        ));
    }
    for (i, c) in r.wecom_configs.iter().enumerate() {
        let n = wecom::WeComNotifier::new(ctx, &r.name, c)?;
        let url = n.url.clone();
        let lim = ctx.limiters.get(
            &n.url,
            c.rate_limit.as_ref().map(|l| l.messages).unwrap_or(20),
            c.rate_limit
                .as_ref()
                .map(|l| l.per.as_duration())
                .unwrap_or(chrono::Duration::minutes(1)),
            ctx.now,
        );
        out.push(integ(
            "wecom",
            i,
            c.send_resolved.unwrap_or(true),
            Arc::new(n),
            Some((url, lim)),
        ));
    }
    for (i, c) in r.feishu_configs.iter().enumerate() {
        let n = feishu::FeishuNotifier::new(ctx, &r.name, c)?;
        let url = n.url.clone();
        let lim = ctx.limiters.get(
            &n.url,
            c.rate_limit.as_ref().map(|l| l.messages).unwrap_or(100),
            c.rate_limit
                .as_ref()
                .map(|l| l.per.as_duration())
                .unwrap_or(chrono::Duration::minutes(1)),
            ctx.now,
        );
        out.push(integ(
            "feishu",
            i,
            c.send_resolved.unwrap_or(true),
            Arc::new(n),
            Some((url, lim)),
        ));
    }
    Ok(out)
}

/// Registers a template field: the user's string (a Go template renders as in Alertmanager,
/// anything else as handlebars), or the default template `default` when unset.
pub fn template_field(
    templates: &mut Templates,
    context: &str,
    v: &Option<String>,
    default: &str,
) -> Result<String, AlertingError> {
    match v {
        Some(s) => templates.add_field(context, s),
        None => Ok(default.to_string()),
    }
}
