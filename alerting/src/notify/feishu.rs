//! Feishu / Lark custom bot: an interactive card with a markdown element; with a secret, the body
//! carries `timestamp` (seconds, as a string) and `sign` = base64 of HMAC-SHA256 with key
//! "timestamp\nsecret" over an empty message, as Feishu documents. A 200 answer with a non-zero
//! `code` (or legacy `StatusCode`) is a failure; 11232 (frequency limited) is retryable.

use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::FeishuConfig;
use crate::error::AlertingError;
use crate::notify::http::{HttpClient, check_status};
use crate::notify::{
    BuildContext, Notifier, NotifyError, SendContext, render, template_field, value_or_file,
};
use crate::template::{Escape, NotificationData};

/// Markdown bytes per card: Feishu refuses request bodies over 20 KB; the rest of the card, the
/// signature and JSON escaping of the content need the remainder.
pub const MAX_CONTENT_BYTES: usize = 16_000;

pub struct FeishuNotifier {
    pub url: String,
    secret: Option<String>,
    title: String,
    content: String,
    client: HttpClient,
}

/// The `sign` body field for a timestamp in seconds.
pub fn sign(timestamp_s: i64, secret: &str) -> String {
    let key = format!("{timestamp_s}\n{secret}");
    let Ok(mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Interprets Feishu's answer body.
pub fn check_body(body: &str) -> Result<(), NotifyError> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|_| {
        NotifyError::new(
            "api_error",
            true,
            format!("feishu: unparseable response {body:?}"),
        )
    })?;
    let code = v
        .get("code")
        .or_else(|| v.get("StatusCode"))
        .and_then(|c| c.as_i64())
        .unwrap_or(-1);
    if code == 0 {
        return Ok(());
    }
    let msg = v
        .get("msg")
        .or_else(|| v.get("StatusMessage"))
        .and_then(|m| m.as_str())
        .unwrap_or("");
    let retryable = matches!(code, 11232 | -1);
    Err(NotifyError::new(
        if code == 11232 {
            "rate_limited"
        } else {
            "api_error"
        },
        retryable,
        format!("feishu code {code}: {msg}"),
    ))
}

impl FeishuNotifier {
    pub fn new(ctx: &mut BuildContext<'_>, receiver: &str, c: &FeishuConfig) -> Result<Self, AlertingError> {
        let url = value_or_file(ctx.base_dir, &c.webhook_url, &c.webhook_url_file)?.ok_or_else(|| {
            AlertingError::Config(format!("receiver {receiver:?}: feishu webhook_url missing"))
        })?;
        Ok(FeishuNotifier {
            url: url.trim().to_string(),
            secret: value_or_file(ctx.base_dir, &c.secret, &c.secret_file)?,
            title: template_field(
                ctx.templates,
                &format!("receiver {receiver:?} feishu title"),
                &c.title,
                "default.title",
            )?,
            content: template_field(
                ctx.templates,
                &format!("receiver {receiver:?} feishu content"),
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

    /// The request bodies for `data`: one card, or several numbered ones when the markdown content
    /// would push the body over Feishu's 20 KB limit (never cut).
    pub fn bodies(&self, data: &NotificationData, ctx: &SendContext) -> Result<Vec<Vec<u8>>, NotifyError> {
        let title = render(ctx, &self.title, Escape::None, data)?.trim().to_string();
        let content = render(ctx, &self.content, Escape::None, data)?;
        let color = if data.status == "firing" { "red" } else { "green" };
        let ts = ctx.now.timestamp();
        Ok(crate::notify::split::split(&content, MAX_CONTENT_BYTES)
            .into_iter()
            .map(|content| {
                let mut body = serde_json::json!({
                    "msg_type": "interactive",
                    "card": {
                        "config": {"wide_screen_mode": true},
                        "header": {"title": {"tag": "plain_text", "content": title}, "template": color},
                        "elements": [{"tag": "markdown", "content": content}],
                    },
                });
                if let Some(secret) = &self.secret
                    && let Some(o) = body.as_object_mut()
                {
                    o.insert("timestamp".into(), serde_json::Value::String(ts.to_string()));
                    o.insert("sign".into(), serde_json::Value::String(sign(ts, secret)));
                }
                serde_json::to_vec(&body).unwrap_or_default()
            })
            .collect())
    }
}

impl Notifier for FeishuNotifier {
    fn kind(&self) -> &'static str {
        "feishu"
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
    fn signature_matches_the_documented_algorithm() {
        // Known answer from Feishu's documented recipe, computed with Python's hmac:
        // base64(HMAC-SHA256(key = "1700000000\nfsecret", msg = "")).
        assert_eq!(
            sign(1_700_000_000, "fsecret"),
            "HLzt7YDW5Xjz5Mh4RVOd0NRODMm01O79OcTFVCyWBbQ="
        );
    }

    #[test]
    fn body_codes() {
        assert!(check_body(r#"{"code":0,"msg":"success","data":{}}"#).is_ok());
        assert!(check_body(r#"{"StatusCode":0,"StatusMessage":"success"}"#).is_ok());
        assert_eq!(
            check_body(r#"{"code":19021,"msg":"sign match fail"}"#)
                .err()
                .map(|e| e.retryable),
            Some(false)
        );
        assert_eq!(
            check_body(r#"{"code":11232,"msg":"frequency limited"}"#)
                .err()
                .map(|e| e.retryable),
            Some(true)
        );
    }
}
