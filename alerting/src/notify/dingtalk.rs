//! DingTalk custom robot: markdown messages; with a secret, the URL carries `timestamp` (ms) and
//! `sign` = URL-encoded base64 of HMAC-SHA256(key = secret, message = "timestamp\nsecret"), as
//! DingTalk documents. A 200 answer with `errcode` != 0 is a failure (130101 "send too fast" and
//! -1 "busy" are retryable).

use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::DingTalkConfig;
use crate::error::AlertingError;
use crate::notify::http::{HttpClient, check_errcode_body, check_status};
use crate::notify::{
    BuildContext, Notifier, NotifyError, SendContext, render, template_field, value_or_file,
};
use crate::template::{Escape, NotificationData};

/// DingTalk's limit for a markdown message's text, in bytes.
pub const MAX_TEXT_BYTES: usize = 20_000;

pub struct DingTalkNotifier {
    pub url: String,
    secret: Option<String>,
    at_mobiles: Vec<String>,
    at_user_ids: Vec<String>,
    is_at_all: bool,
    title: String,
    text: String,
    client: HttpClient,
}

/// The `sign` query value for a timestamp in milliseconds (already URL-encoded).
pub fn sign(timestamp_ms: i64, secret: &str) -> String {
    let to_sign = format!("{timestamp_ms}\n{secret}");
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(to_sign.as_bytes());
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    percent_encoding::utf8_percent_encode(&b64, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Interprets DingTalk's answer body (130101 is its rate limit).
pub fn check_body(body: &str) -> Result<(), NotifyError> {
    check_errcode_body("dingtalk", body, 130101)
}

impl DingTalkNotifier {
    pub fn new(
        ctx: &mut BuildContext<'_>,
        receiver: &str,
        c: &DingTalkConfig,
    ) -> Result<Self, AlertingError> {
        let url = value_or_file(ctx.base_dir, &c.webhook_url, &c.webhook_url_file)?.ok_or_else(|| {
            AlertingError::Config(format!("receiver {receiver:?}: dingtalk webhook_url missing"))
        })?;
        Ok(DingTalkNotifier {
            url: url.trim().to_string(),
            secret: value_or_file(ctx.base_dir, &c.secret, &c.secret_file)?,
            at_mobiles: c.at_mobiles.clone(),
            at_user_ids: c.at_user_ids.clone(),
            is_at_all: c.is_at_all,
            title: template_field(
                ctx.templates,
                &format!("receiver {receiver:?} dingtalk title"),
                &c.title,
                "default.title",
            )?,
            text: template_field(
                ctx.templates,
                &format!("receiver {receiver:?} dingtalk text"),
                &c.text,
                "im.markdown",
            )?,
            client: HttpClient::new(
                c.http_config.as_ref().or(ctx.config.global.http_config.as_ref()),
                ctx.base_dir,
                ctx.timeout,
            )?,
        })
    }

    /// The request URL and bodies for `data` at `now`: one body, or several numbered ones when the
    /// markdown text exceeds DingTalk's limit (never cut).
    pub fn requests(
        &self,
        data: &NotificationData,
        ctx: &SendContext,
    ) -> Result<(String, Vec<Vec<u8>>), NotifyError> {
        let title = render(ctx, &self.title, Escape::None, data)?.trim().to_string();
        let mut text = render(ctx, &self.text, Escape::None, data)?;
        // DingTalk only notifies people who are also mentioned in the markdown text.
        let mentions: Vec<String> = self
            .at_mobiles
            .iter()
            .chain(self.at_user_ids.iter())
            .map(|m| format!("@{m}"))
            .collect();
        if !mentions.is_empty() {
            text = format!("{}\n\n{}", text.trim_end(), mentions.join(" "));
        }
        let bodies = crate::notify::split::split(&text, MAX_TEXT_BYTES)
            .into_iter()
            .map(|text| {
                let body = serde_json::json!({
                    "msgtype": "markdown",
                    "markdown": {"title": title, "text": text},
                    "at": {"atMobiles": self.at_mobiles, "atUserIds": self.at_user_ids, "isAtAll": self.is_at_all},
                });
                serde_json::to_vec(&body).unwrap_or_default()
            })
            .collect();
        let mut url = self.url.clone();
        if let Some(secret) = &self.secret {
            let ts = ctx.now.timestamp_millis();
            let sep = if url.contains('?') { '&' } else { '?' };
            url = format!("{url}{sep}timestamp={ts}&sign={}", sign(ts, secret));
        }
        Ok((url, bodies))
    }
}

impl Notifier for DingTalkNotifier {
    fn kind(&self) -> &'static str {
        "dingtalk"
    }

    fn messages(&self, data: &NotificationData, ctx: &SendContext) -> usize {
        self.requests(data, ctx).map(|(_, b)| b.len().max(1)).unwrap_or(1)
    }

    fn notify<'a>(
        &'a self,
        data: &'a NotificationData,
        ctx: &'a SendContext,
    ) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            // Parts go out in order; a failed part fails the notification (retried whole).
            let (url, bodies) = self.requests(data, ctx)?;
            for body in bodies {
                let (status, text) = self.client.post_json(&url, &body).await?;
                check_status(&url, status, &text)?;
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
        // Independent computation: HMAC-SHA256("SECxyz", "1700000000000\nSECxyz"), base64, URL-encoded.
        let s = sign(1_700_000_000_000, "SECxyz");
        assert!(!s.contains('+') && !s.contains('/') && !s.contains('='));
        let decoded = percent_encoding::percent_decode_str(&s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .unwrap_or_default();
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(decoded)
            .unwrap_or_default();
        assert_eq!(raw.len(), 32);
        // Known answer from DingTalk's documented Python recipe (hmac + base64 + quote_plus).
        assert_eq!(s, "0PUR1j8g85Xg3vlFV%2FUrEcxXfF5HpCAGzcjrNfyJoyg%3D");
    }

    #[test]
    fn body_errors_are_failures() {
        assert!(check_body(r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        let e = check_body(r#"{"errcode":310000,"errmsg":"sign not match"}"#).err();
        assert_eq!(e.map(|e| e.retryable), Some(false));
        let e = check_body(r#"{"errcode":130101,"errmsg":"send too fast"}"#).err();
        assert_eq!(e.map(|e| e.retryable), Some(true));
    }
}
