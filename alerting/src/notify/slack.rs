//! Slack incoming webhook: Alertmanager's attachment-style payload (title, title_link, text,
//! color, fallback, ...). Slack answers `ok` as text; any other answer, or JSON with `ok: false`,
//! is a failure.

use futures::future::BoxFuture;

use crate::config::SlackConfig;
use crate::error::AlertingError;
use crate::notify::http::{HttpClient, check_status};
use crate::notify::{
    BuildContext, Notifier, NotifyError, SendContext, render, template_field, value_or_file,
};
use crate::template::{Escape, NotificationData};

pub struct SlackNotifier {
    pub url: String,
    cfg: SlackConfig,
    title: String,
    text: String,
    pretext: Option<String>,
    fallback: Option<String>,
    client: HttpClient,
}

/// Interprets Slack's answer body.
pub fn check_body(body: &str) -> Result<(), NotifyError> {
    let t = body.trim();
    if t == "ok" {
        return Ok(());
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(t)
        && v.get("ok").and_then(|o| o.as_bool()) == Some(true)
    {
        return Ok(());
    }
    Err(NotifyError::new("api_error", false, format!("slack: {t}")))
}

impl SlackNotifier {
    pub fn new(ctx: &mut BuildContext<'_>, receiver: &str, c: &SlackConfig) -> Result<Self, AlertingError> {
        let url = match value_or_file(ctx.base_dir, &c.api_url, &c.api_url_file)? {
            Some(u) => u,
            None => value_or_file(
                ctx.base_dir,
                &ctx.config.global.slack_api_url,
                &ctx.config.global.slack_api_url_file,
            )?
            .ok_or_else(|| {
                AlertingError::Config(format!("receiver {receiver:?}: no global Slack API URL set"))
            })?,
        };
        let ctxs = |f: &str| format!("receiver {receiver:?} slack {f}");
        let pretext = match &c.pretext {
            Some(_) => Some(template_field(
                ctx.templates,
                &ctxs("pretext"),
                &c.pretext,
                "default.title",
            )?),
            None => None,
        };
        let fallback = match &c.fallback {
            Some(_) => Some(template_field(
                ctx.templates,
                &ctxs("fallback"),
                &c.fallback,
                "default.title",
            )?),
            None => None,
        };
        Ok(SlackNotifier {
            url: url.trim().to_string(),
            cfg: c.clone(),
            title: template_field(ctx.templates, &ctxs("title"), &c.title, "default.title")?,
            text: template_field(ctx.templates, &ctxs("text"), &c.text, "slack.text")?,
            pretext,
            fallback,
            client: HttpClient::new(
                c.http_config.as_ref().or(ctx.config.global.http_config.as_ref()),
                ctx.base_dir,
                ctx.timeout,
            )?,
        })
    }

    pub fn body(&self, data: &NotificationData, ctx: &SendContext) -> Result<Vec<u8>, NotifyError> {
        let title = render(ctx, &self.title, Escape::None, data)?.trim().to_string();
        let text = render(ctx, &self.text, Escape::None, data)?;
        let title_link = format!(
            "{}/#/alerts?receiver={}",
            data.external_url.trim_end_matches('/'),
            percent_encoding::utf8_percent_encode(&data.receiver, percent_encoding::NON_ALPHANUMERIC)
        );
        let fallback = match &self.fallback {
            Some(f) => render(ctx, f, Escape::None, data)?,
            None => format!("{title} | {title_link}"),
        };
        let color = self.cfg.color.clone().unwrap_or_else(|| {
            if data.status == "firing" {
                "danger".into()
            } else {
                "good".into()
            }
        });
        let mut att = serde_json::json!({
            "title": title,
            "title_link": self.cfg.title_link.clone().unwrap_or(title_link),
            "text": text,
            "fallback": fallback,
            "color": color,
            "mrkdwn_in": self.cfg.mrkdwn_in.clone().unwrap_or_else(|| vec!["fallback".into(), "pretext".into(), "text".into()]),
        });
        if let Some(o) = att.as_object_mut() {
            if let Some(p) = &self.pretext {
                o.insert("pretext".into(), render(ctx, p, Escape::None, data)?.into());
            }
            for (k, v) in [
                ("footer", &self.cfg.footer),
                ("callback_id", &self.cfg.callback_id),
                ("image_url", &self.cfg.image_url),
                ("thumb_url", &self.cfg.thumb_url),
            ] {
                if let Some(v) = v {
                    o.insert(k.into(), v.clone().into());
                }
            }
            if let Some(f) = &self.cfg.fields {
                o.insert("fields".into(), serde_json::to_value(f).unwrap_or_default());
            }
            if let Some(a) = &self.cfg.actions {
                o.insert("actions".into(), serde_json::to_value(a).unwrap_or_default());
            }
        }
        let mut body = serde_json::json!({
            "username": self.cfg.username.clone().unwrap_or_else(|| "fenghuo".into()),
            "attachments": [att],
        });
        if let Some(o) = body.as_object_mut() {
            if let Some(c) = &self.cfg.channel {
                o.insert("channel".into(), c.clone().into());
            }
            if let Some(c) = &self.cfg.icon_emoji {
                o.insert("icon_emoji".into(), c.clone().into());
            }
            if let Some(c) = &self.cfg.icon_url {
                o.insert("icon_url".into(), c.clone().into());
            }
            if self.cfg.link_names {
                o.insert("link_names".into(), true.into());
            }
        }
        Ok(serde_json::to_vec(&body).unwrap_or_default())
    }
}

impl Notifier for SlackNotifier {
    fn kind(&self) -> &'static str {
        "slack"
    }

    fn notify<'a>(
        &'a self,
        data: &'a NotificationData,
        ctx: &'a SendContext,
    ) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            let body = self.body(data, ctx)?;
            let (status, text) = self.client.post_json(&self.url, &body).await?;
            check_status(&self.url, status, &text)?;
            check_body(&text)
        })
    }
}
