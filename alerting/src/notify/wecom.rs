//! WeCom (WeChat Work) group robot: `{"msgtype":"markdown","markdown":{"content":...}}`; content
//! over WeCom's 4096 bytes is sent as several numbered messages (never cut), mentions as
//! `<@userid>`. A 200 answer with `errcode` != 0 is a failure (45009 "api freq out of limit" and
//! -1 "busy" are retryable).

use futures::future::BoxFuture;

use crate::config::WeComConfig;
use crate::error::AlertingError;
use crate::notify::http::{HttpClient, check_errcode_body, check_status};
use crate::notify::{
    BuildContext, Notifier, NotifyError, SendContext, render, template_field, value_or_file,
};
use crate::template::{Escape, NotificationData};

/// WeCom's markdown content limit in bytes.
pub const MAX_CONTENT_BYTES: usize = 4096;

pub struct WeComNotifier {
    pub url: String,
    mentions: Vec<String>,
    content: String,
    client: HttpClient,
}

/// Interprets WeCom's answer body (45009 is its rate limit).
pub fn check_body(body: &str) -> Result<(), NotifyError> {
    check_errcode_body("wecom", body, 45009)
}

impl WeComNotifier {
    pub fn new(ctx: &mut BuildContext<'_>, receiver: &str, c: &WeComConfig) -> Result<Self, AlertingError> {
        let url = value_or_file(ctx.base_dir, &c.webhook_url, &c.webhook_url_file)?.ok_or_else(|| {
            AlertingError::Config(format!("receiver {receiver:?}: wecom webhook_url missing"))
        })?;
        Ok(WeComNotifier {
            url: url.trim().to_string(),
            mentions: c.mentioned_userids.clone(),
            content: template_field(
                ctx.templates,
                &format!("receiver {receiver:?} wecom content"),
                &c.content,
                "im.markdown",
            )?,
            client: HttpClient::new(
                c.http_config.as_ref().or(ctx.config.global.http_config.as_ref()),
                ctx.base_dir,
                ctx.timeout,
            )?,
        })
    }

    /// The request bodies for `data`: one, or several when the content exceeds WeCom's limit.
    pub fn bodies(&self, data: &NotificationData, ctx: &SendContext) -> Result<Vec<Vec<u8>>, NotifyError> {
        let mut content = render(ctx, &self.content, Escape::None, data)?
            .trim_end()
            .to_string();
        if !self.mentions.is_empty() {
            let m: Vec<String> = self.mentions.iter().map(|u| format!("<@{u}>")).collect();
            content = format!("{content}\n{}", m.join(" "));
        }
        Ok(crate::notify::split::split(&content, MAX_CONTENT_BYTES)
            .into_iter()
            .map(|content| {
                let body = serde_json::json!({"msgtype": "markdown", "markdown": {"content": content}});
                serde_json::to_vec(&body).unwrap_or_default()
            })
            .collect())
    }
}

impl Notifier for WeComNotifier {
    fn kind(&self) -> &'static str {
        "wecom"
    }

    fn messages(&self, data: &NotificationData, ctx: &SendContext) -> usize {
        self.bodies(data, ctx).map(|b| b.len().max(1)).unwrap_or(1)
    }

    fn notify<'a>(
        &'a self,
        data: &'a NotificationData,
        ctx: &'a SendContext,
    ) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            // Parts go out in order; a failed part fails the notification (retried whole).
            for body in self.bodies(data, ctx)? {
                let (status, text) = self.client.post_json(&self.url, &body).await?;
                check_status(&self.url, status, &text)?;
                check_body(&text)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_errors() {
        assert!(check_body(r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        assert_eq!(
            check_body(r#"{"errcode":45009,"errmsg":"freq"}"#)
                .err()
                .map(|e| e.retryable),
            Some(true)
        );
        assert_eq!(
            check_body(r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#)
                .err()
                .map(|e| e.retryable),
            Some(false)
        );
    }
}
