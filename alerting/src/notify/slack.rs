//! Slack incoming webhook: Alertmanager's attachment-style payload (title, title_link, text,
//! color, fallback, ...). Every string field is a template (Go or handlebars), as are the string
//! values inside `fields` and `actions`. Slack answers `ok` as text; any other answer, or JSON
//! with `ok: false`, is a failure.

use std::collections::BTreeMap;

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
    /// Other templated string fields (Alertmanager templates all of them), by field name.
    fields: Vec<(&'static str, String)>,
    /// Templates of the string leaves of `fields` and `actions`, by source text.
    leaves: BTreeMap<String, String>,
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

/// Collects the template strings among a YAML value's string leaves.
fn template_leaves(v: &serde_yaml::Value, out: &mut Vec<String>) {
    match v {
        serde_yaml::Value::String(s) if s.contains("{{") => out.push(s.clone()),
        serde_yaml::Value::Sequence(items) => items.iter().for_each(|i| template_leaves(i, out)),
        serde_yaml::Value::Mapping(m) => m.values().for_each(|i| template_leaves(i, out)),
        _ => {}
    }
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
        let mut fields = Vec::new();
        for (name, v) in [
            ("username", &c.username),
            ("color", &c.color),
            ("title_link", &c.title_link),
            ("pretext", &c.pretext),
            ("footer", &c.footer),
            ("fallback", &c.fallback),
            ("callback_id", &c.callback_id),
            ("channel", &c.channel),
            ("icon_emoji", &c.icon_emoji),
            ("icon_url", &c.icon_url),
            ("image_url", &c.image_url),
            ("thumb_url", &c.thumb_url),
        ] {
            if let Some(src) = v {
                fields.push((name, ctx.templates.add_field(&ctxs(name), src)?));
            }
        }
        let mut sources = Vec::new();
        for v in [&c.fields, &c.actions].into_iter().flatten() {
            template_leaves(v, &mut sources);
        }
        let mut leaves = BTreeMap::new();
        for src in sources {
            let name = ctx.templates.add_field(&ctxs("fields/actions"), &src)?;
            leaves.insert(src, name);
        }
        Ok(SlackNotifier {
            url: url.trim().to_string(),
            cfg: c.clone(),
            title: template_field(ctx.templates, &ctxs("title"), &c.title, "default.title")?,
            text: template_field(ctx.templates, &ctxs("text"), &c.text, "slack.text")?,
            fields,
            leaves,
            client: HttpClient::new(
                c.http_config.as_ref().or(ctx.config.global.http_config.as_ref()),
                ctx.base_dir,
                ctx.timeout,
            )?,
        })
    }

    fn field(
        &self,
        name: &str,
        data: &NotificationData,
        ctx: &SendContext,
    ) -> Result<Option<String>, NotifyError> {
        match self.fields.iter().find(|(n, _)| *n == name) {
            Some((_, t)) => render(ctx, t, Escape::None, data).map(Some),
            None => Ok(None),
        }
    }

    /// `fields`/`actions` as JSON with their template strings rendered.
    fn rendered(
        &self,
        v: &serde_yaml::Value,
        data: &NotificationData,
        ctx: &SendContext,
    ) -> Result<serde_json::Value, NotifyError> {
        Ok(match v {
            serde_yaml::Value::String(s) => match self.leaves.get(s) {
                Some(t) => serde_json::Value::String(render(ctx, t, Escape::None, data)?),
                None => serde_json::Value::String(s.clone()),
            },
            serde_yaml::Value::Sequence(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|i| self.rendered(i, data, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            serde_yaml::Value::Mapping(m) => {
                let mut o = serde_json::Map::new();
                for (k, v) in m {
                    let key = match k {
                        serde_yaml::Value::String(s) => s.clone(),
                        other => serde_json::to_string(other).unwrap_or_default(),
                    };
                    o.insert(key, self.rendered(v, data, ctx)?);
                }
                serde_json::Value::Object(o)
            }
            other => serde_json::to_value(other).unwrap_or_default(),
        })
    }

    pub fn body(&self, data: &NotificationData, ctx: &SendContext) -> Result<Vec<u8>, NotifyError> {
        let title = render(ctx, &self.title, Escape::None, data)?.trim().to_string();
        let text = render(ctx, &self.text, Escape::None, data)?;
        let default_link = format!(
            "{}/#/alerts?receiver={}",
            data.external_url.trim_end_matches('/'),
            crate::ruler::gotemplate::exec::query_escape(&crate::amtemplate::data::quote_meta(
                &data.receiver
            ))
        );
        let title_link = self.field("title_link", data, ctx)?.unwrap_or(default_link);
        let fallback = match self.field("fallback", data, ctx)? {
            Some(f) => f,
            None => format!("{title} | {title_link}"),
        };
        let color = match self.field("color", data, ctx)? {
            Some(c) => c,
            None if data.status == "firing" => "danger".into(),
            None => "good".into(),
        };
        let mut att = serde_json::json!({
            "title": title,
            "title_link": title_link,
            "text": text,
            "fallback": fallback,
            "color": color,
            "mrkdwn_in": self.cfg.mrkdwn_in.clone().unwrap_or_else(|| vec!["fallback".into(), "pretext".into(), "text".into()]),
        });
        if let Some(o) = att.as_object_mut() {
            for k in ["pretext", "footer", "callback_id", "image_url", "thumb_url"] {
                if let Some(v) = self.field(k, data, ctx)? {
                    o.insert(k.into(), v.into());
                }
            }
            if let Some(f) = &self.cfg.fields {
                let mut fields = self.rendered(f, data, ctx)?;
                // `short_fields` is the default of each field's `short`.
                if let Some(items) = fields.as_array_mut() {
                    for i in items.iter_mut().filter_map(|i| i.as_object_mut()) {
                        i.entry("short").or_insert(self.cfg.short_fields.into());
                    }
                }
                o.insert("fields".into(), fields);
            }
            if let Some(a) = &self.cfg.actions {
                o.insert("actions".into(), self.rendered(a, data, ctx)?);
            }
        }
        let username = self
            .field("username", data, ctx)?
            .unwrap_or_else(|| "fenghuo".into());
        let mut body = serde_json::json!({
            "username": username,
            "attachments": [att],
        });
        if let Some(o) = body.as_object_mut() {
            for k in ["channel", "icon_emoji", "icon_url"] {
                if let Some(v) = self.field(k, data, ctx)? {
                    o.insert(k.into(), v.into());
                }
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
