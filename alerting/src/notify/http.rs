//! Shared HTTP plumbing for webhook-style integrations: a reqwest client built from Prometheus'
//! `http_config` (auth, TLS, proxy, redirects), and the classification of responses into success,
//! retryable and permanent failures.

use std::path::Path;
use std::time::Duration;

use crate::config::HttpConfig;
use crate::error::AlertingError;
use crate::notify::{NotifyError, read_secret_file};

/// A client plus the auth header it adds to every request.
#[derive(Clone, Debug)]
pub struct HttpClient {
    pub client: reqwest::Client,
    auth: Option<String>,
}

impl HttpClient {
    pub fn new(cfg: Option<&HttpConfig>, base: &Path, timeout: Duration) -> Result<Self, AlertingError> {
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent("fenghuo-alerting");
        let mut auth = None;
        if let Some(c) = cfg {
            if let Some(tls) = &c.tls_config {
                if tls.insecure_skip_verify {
                    b = b.danger_accept_invalid_certs(true);
                }
                let ca = match (&tls.ca, &tls.ca_file) {
                    (Some(pem), _) => Some(pem.clone().into_bytes()),
                    (None, Some(f)) => Some(read_secret_file(base, f)?.into_bytes()),
                    _ => None,
                };
                if let Some(pem) = ca {
                    let cert = reqwest::Certificate::from_pem(&pem)
                        .map_err(|e| AlertingError::Config(format!("tls_config ca: {e}")))?;
                    b = b.add_root_certificate(cert);
                }
            }
            if let Some(p) = &c.proxy_url {
                let proxy = reqwest::Proxy::all(p)
                    .map_err(|e| AlertingError::Config(format!("proxy_url {}: {e}", redact(p))))?;
                b = b.proxy(proxy);
            }
            if c.follow_redirects == Some(false) {
                b = b.redirect(reqwest::redirect::Policy::none());
            }
            if let Some(ba) = &c.basic_auth {
                let pw = match (&ba.password, &ba.password_file) {
                    (Some(p), _) => p.clone(),
                    (None, Some(f)) => read_secret_file(base, f)?,
                    _ => String::new(),
                };
                use base64::Engine;
                let enc = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", ba.username, pw));
                auth = Some(format!("Basic {enc}"));
            }
            if let Some(a) = &c.authorization {
                let cred = match (&a.credentials, &a.credentials_file) {
                    (Some(c), _) => c.clone(),
                    (None, Some(f)) => read_secret_file(base, f)?,
                    _ => String::new(),
                };
                auth = Some(format!(
                    "{} {cred}",
                    a.kind.clone().unwrap_or_else(|| "Bearer".into())
                ));
            }
            if let Some(t) = &c.bearer_token {
                auth = Some(format!("Bearer {t}"));
            } else if let Some(f) = &c.bearer_token_file {
                auth = Some(format!("Bearer {}", read_secret_file(base, f)?));
            }
        }
        let client = b
            .build()
            .map_err(|e| AlertingError::Config(format!("http client: {e}")))?;
        Ok(HttpClient { client, auth })
    }

    /// POSTs a JSON body; returns status and body text. Transport errors are retryable.
    pub async fn post_json(&self, url: &str, body: &[u8]) -> Result<(u16, String), NotifyError> {
        let mut req = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_vec());
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.map_err(|e| {
            let reason = if e.is_timeout() { "timeout" } else { "connect" };
            NotifyError::new(
                reason,
                true,
                format!("POST {}: {}", redact(url), transport_error(e)),
            )
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, text))
    }
}

/// Classifies a non-2xx status like Alertmanager's retrier: 5xx and 429 are retryable.
pub fn check_status(url: &str, status: u16, body: &str) -> Result<(), NotifyError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let retryable = status >= 500 || status == 429;
    let reason = if status >= 500 {
        "http_5xx"
    } else if status == 429 {
        "http_429"
    } else {
        "http_4xx"
    };
    let snippet: String = body.chars().take(256).collect();
    Err(NotifyError::new(
        reason,
        retryable,
        format!("unexpected status code {status} from {}: {snippet}", redact(url)),
    ))
}

/// Interprets the `{"errcode":…,"errmsg":…}` body DingTalk and WeCom robots answer with status
/// 200: `errcode` 0 is success; -1 ("busy"), `rate_limited_code` and an unreadable body are
/// retryable, any other code is a permanent `api_error`.
pub fn check_errcode_body(channel: &str, body: &str, rate_limited_code: i64) -> Result<(), NotifyError> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|_| {
        NotifyError::new(
            "api_error",
            true,
            format!("{channel}: unparseable response {body:?}"),
        )
    })?;
    let code = v.get("errcode").and_then(|c| c.as_i64()).unwrap_or(-1);
    if code == 0 {
        return Ok(());
    }
    let msg = v.get("errmsg").and_then(|m| m.as_str()).unwrap_or("");
    let rate_limited = code == rate_limited_code;
    Err(NotifyError::new(
        if rate_limited { "rate_limited" } else { "api_error" },
        rate_limited || code == -1,
        format!("{channel} errcode {code}: {msg}"),
    ))
}

/// What errors and logs show of a receiver URL: scheme, host and port only. Robot tokens live in
/// query strings (DingTalk, WeCom) or paths (Feishu, Slack), and Alertmanager treats these URLs as
/// secrets, so nothing after the authority is shown.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{}{port}/<redacted>",
                u.scheme(),
                u.host_str().unwrap_or_default()
            )
        }
        Err(_) => "<redacted>".to_string(),
    }
}

/// A transport error with its causes but without the request URL reqwest puts in its message.
pub fn transport_error(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}
