//! Email through lettre's async SMTP transport: implicit TLS on port 465 (or `force_implicit_tls`),
//! STARTTLS required when `require_tls` (Alertmanager's default), plain otherwise; PLAIN/LOGIN
//! auth; a multipart/alternative body with text and HTML parts; `headers`, `to` and `from`
//! templated (Subject defaults to the group title). SMTP 4xx answers and connection failures are retryable.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{EmailConfig, TlsConfig};
use crate::error::AlertingError;
use crate::notify::{
    BuildContext, Notifier, NotifyError, SendContext, read_secret_file, render, template_field,
};
use crate::template::{Escape, NotificationData};

/// Splits `host:port` (IPv6 in brackets allowed).
pub fn split_smarthost(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s.rsplit_once(':').ok_or("missing port in address")?;
    let port: u16 = port.parse().map_err(|_| format!("invalid port {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("missing host".into());
    }
    Ok((host.to_string(), port))
}

/// An address list fixed at load time, or a template rendered per message (Alertmanager
/// templates `to` and `from`).
enum Addresses {
    Fixed(Vec<Mailbox>),
    Template(String),
}

pub struct EmailNotifier {
    to: Addresses,
    from: Addresses,
    headers: BTreeMap<String, String>,
    subject: String,
    html: String,
    text: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

fn tls_params(
    host: &str,
    tls: Option<&TlsConfig>,
    base: &std::path::Path,
) -> Result<TlsParameters, AlertingError> {
    let server = tls
        .and_then(|t| t.server_name.clone())
        .unwrap_or_else(|| host.to_string());
    let mut b = TlsParameters::builder(server);
    if let Some(t) = tls {
        let pem = match (&t.ca, &t.ca_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(f)) => Some(read_secret_file(base, f)?),
            _ => None,
        };
        if let Some(pem) = pem {
            let cert = Certificate::from_pem(pem.as_bytes())
                .map_err(|e| AlertingError::Config(format!("email tls_config ca: {e}")))?;
            b = b.add_root_certificate(cert);
        }
        if t.insecure_skip_verify {
            b = b.dangerous_accept_invalid_certs(true);
        }
    }
    b.build_rustls()
        .map_err(|e| AlertingError::Config(format!("email tls: {e}")))
}

fn mailboxes(s: &str) -> Result<Vec<Mailbox>, AlertingError> {
    s.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.parse::<Mailbox>()
                .map_err(|e| AlertingError::Config(format!("invalid email address {a:?}: {e}")))
        })
        .collect()
}

impl EmailNotifier {
    pub fn new(ctx: &mut BuildContext<'_>, receiver: &str, c: &EmailConfig) -> Result<Self, AlertingError> {
        let g = &ctx.config.global;
        let smarthost = c
            .smarthost
            .clone()
            .or_else(|| g.smtp_smarthost.clone())
            .ok_or_else(|| {
                AlertingError::Config(format!("receiver {receiver:?}: no global SMTP smarthost set"))
            })?;
        let (host, port) = split_smarthost(&smarthost)
            .map_err(|m| AlertingError::Config(format!("smarthost {smarthost:?}: {m}")))?;
        let from_s = c.from.clone().or_else(|| g.smtp_from.clone()).ok_or_else(|| {
            AlertingError::Config(format!("receiver {receiver:?}: no global SMTP from set"))
        })?;
        let from = if from_s.contains("{{") {
            Addresses::Template(
                ctx.templates
                    .add_field(&format!("receiver {receiver:?} email from"), &from_s)?,
            )
        } else {
            let m = from_s
                .parse::<Mailbox>()
                .map_err(|e| AlertingError::Config(format!("invalid from address {from_s:?}: {e}")))?;
            Addresses::Fixed(vec![m])
        };
        let to = if c.to.contains("{{") {
            Addresses::Template(
                ctx.templates
                    .add_field(&format!("receiver {receiver:?} email to"), &c.to)?,
            )
        } else {
            let to = mailboxes(&c.to)?;
            if to.is_empty() {
                return Err(AlertingError::Config(format!(
                    "receiver {receiver:?}: missing to address in email config"
                )));
            }
            Addresses::Fixed(to)
        };
        let require_tls = c.require_tls.unwrap_or(g.smtp_require_tls);
        let tls_cfg = c.tls_config.as_ref().or(g.smtp_tls_config.as_ref());
        let implicit = c.force_implicit_tls.unwrap_or(port == 465);
        let tls = if implicit {
            Tls::Wrapper(tls_params(&host, tls_cfg, ctx.base_dir)?)
        } else if require_tls {
            Tls::Required(tls_params(&host, tls_cfg, ctx.base_dir)?)
        } else {
            Tls::None
        };
        let hello = c.hello.clone().unwrap_or_else(|| g.smtp_hello.clone());
        let mut tb = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(tls)
            .hello_name(ClientId::Domain(hello))
            .timeout(Some(ctx.timeout));
        let user = c.auth_username.clone().or_else(|| g.smtp_auth_username.clone());
        if let Some(user) = user {
            let pw = match (&c.auth_password, &c.auth_password_file) {
                (Some(p), _) => p.clone(),
                (None, Some(f)) => read_secret_file(ctx.base_dir, f)?,
                _ => match (&g.smtp_auth_password, &g.smtp_auth_password_file) {
                    (Some(p), _) => p.clone(),
                    (None, Some(f)) => read_secret_file(ctx.base_dir, f)?,
                    _ => String::new(),
                },
            };
            tb = tb.credentials(Credentials::new(user, pw));
        }
        let mut headers = BTreeMap::new();
        let mut subject = "email.subject".to_string();
        for (k, v) in &c.headers {
            let name = template_field(
                ctx.templates,
                &format!("receiver {receiver:?} email header {k}"),
                &Some(v.clone()),
                "email.subject",
            )?;
            if k.eq_ignore_ascii_case("subject") {
                subject = name;
            } else if !["to", "from"].iter().any(|h| h.eq_ignore_ascii_case(k)) {
                headers.insert(k.clone(), name);
            }
        }
        Ok(EmailNotifier {
            to,
            from,
            headers,
            subject,
            html: template_field(
                ctx.templates,
                &format!("receiver {receiver:?} email html"),
                &c.html,
                "email.html",
            )?,
            text: template_field(
                ctx.templates,
                &format!("receiver {receiver:?} email text"),
                &c.text,
                "email.text",
            )?,
            transport: tb.build(),
        })
    }

    fn addresses(
        &self,
        a: &Addresses,
        what: &str,
        data: &NotificationData,
        ctx: &SendContext,
    ) -> Result<Vec<Mailbox>, NotifyError> {
        match a {
            Addresses::Fixed(v) => Ok(v.clone()),
            Addresses::Template(t) => {
                let s = render(ctx, t, Escape::None, data)?;
                let v = mailboxes(&s)
                    .map_err(|e| NotifyError::new("build", false, format!("email {what}: {e}")))?;
                if v.is_empty() {
                    return Err(NotifyError::new(
                        "build",
                        false,
                        format!("email {what}: template rendered no address"),
                    ));
                }
                Ok(v)
            }
        }
    }

    /// Builds the message for `data`.
    pub fn message(&self, data: &NotificationData, ctx: &SendContext) -> Result<Message, NotifyError> {
        let subject = render(ctx, &self.subject, Escape::None, data)?
            .trim()
            .replace(['\r', '\n'], " ");
        let html = render(ctx, &self.html, Escape::Html, data)?;
        let text = render(ctx, &self.text, Escape::None, data)?;
        let from = self.addresses(&self.from, "from", data, ctx)?;
        let to = self.addresses(&self.to, "to", data, ctx)?;
        let mut b = Message::builder().subject(subject);
        if let Some(f) = from.into_iter().next() {
            b = b.from(f);
        }
        for t in to {
            b = b.to(t);
        }
        let mut msg = b
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text))
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
            )
            .map_err(|e| NotifyError::new("build", false, format!("email: {e}")))?;
        for (k, tname) in &self.headers {
            let v = render(ctx, tname, Escape::None, data)?
                .trim()
                .replace(['\r', '\n'], " ");
            let name = HeaderName::new_from_ascii(k.clone())
                .map_err(|e| NotifyError::new("build", false, format!("email header {k:?}: {e}")))?;
            msg.headers_mut().insert_raw(HeaderValue::new(name, v));
        }
        Ok(msg)
    }
}

impl Notifier for EmailNotifier {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn notify<'a>(
        &'a self,
        data: &'a NotificationData,
        ctx: &'a SendContext,
    ) -> BoxFuture<'a, Result<(), NotifyError>> {
        Box::pin(async move {
            let msg = self.message(data, ctx)?;
            match self.transport.send(msg).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    let permanent = e.is_permanent();
                    Err(NotifyError::new("smtp", !permanent, format!("email: {e}")))
                }
            }
        })
    }
}

/// Default SMTP timeout when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
