//! Mail delivered to a real SMTP listener (Debian's python3-aiosmtpd) on 127.0.0.1: plain,
//! STARTTLS and implicit TLS with a generated certificate, with auth; recipients, headers and
//! both MIME parts are checked. Fails (not skips) when /usr/bin/python3 or aiosmtpd is missing.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use chrono::Duration;
use common::*;

struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/testdata/alerting/smtp_sink.py")
}

fn start_smtp(mode: &str, tls: Option<(&Path, &Path)>, creds: Option<&str>) -> SmtpSink {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(script()).arg(dir.path()).arg(mode);
    if let Some((c, k)) = tls {
        cmd.arg(c).arg(k);
    }
    if let Some(c) = creds {
        cmd.arg(c);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start /usr/bin/python3 (apt-get install -y python3-aiosmtpd): {e}")
        });
    let out = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut line = String::new();
    let _ = BufReader::new(out).read_line(&mut line);
    let port = line
        .trim()
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("SMTP sink did not start (is python3-aiosmtpd installed?): {line:?}"));
    SmtpSink { child, port, dir }
}

fn messages(dir: &Path) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for p in names {
        let eml = std::fs::read_to_string(&p).unwrap_or_default();
        let env = std::fs::read_to_string(p.with_extension("env")).unwrap_or_default();
        out.push((eml, serde_json::from_str(&env).unwrap_or_default()));
    }
    out
}

fn config(port: u16, extra: &str) -> String {
    format!(
        r#"
global:
  smtp_from: 'Fenghuo Alerts <alerts@fenghuo.test>'
  smtp_smarthost: '127.0.0.1:{port}'
  smtp_require_tls: false
route:
  receiver: mail
  group_by: [alertname]
  group_wait: 30s
receivers:
- name: mail
  email_configs:
  - to: 'ops@example.com, dba@example.com'
    send_resolved: true
    headers:
      X-Team: 'db {{{{commonLabels.severity}}}}'
{extra}
fenghuo:
  delivery:
    timeout: 5s
"#
    )
}

async fn deliver(cfg: &str) -> fenghuo_alerting::engine::TickReport {
    let (e, clock) = engine(cfg);
    let errs = e.ingest_posted(
        "anonymous",
        vec![alert(&[
            ("alertname", "DiskFull"),
            ("severity", "critical"),
            ("instance", "db1"),
        ])],
    );
    assert_eq!(errs.map(|v| v.len()).ok(), Some(0));
    clock.advance(Duration::seconds(30));
    e.tick().await
}

fn check_mail(eml: &str, env: &serde_json::Value) {
    let rcpts: Vec<String> = env["rcpt_tos"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    assert_eq!(
        rcpts,
        vec!["ops@example.com".to_string(), "dba@example.com".to_string()]
    );
    assert_eq!(env["mail_from"], "alerts@fenghuo.test");
    let lower = eml.to_lowercase();
    assert!(
        eml.contains("Subject: [FIRING:1] DiskFull (db1 critical)"),
        "{eml}"
    );
    assert!(eml.contains("To: ops@example.com, dba@example.com"), "{eml}");
    assert!(
        eml.contains("From: \"Fenghuo Alerts\" <alerts@fenghuo.test>"),
        "{eml}"
    );
    assert!(eml.contains("X-Team: db critical"), "{eml}");
    assert!(lower.contains("content-type: multipart/alternative"), "{eml}");
    assert!(lower.contains("content-type: text/plain"), "{eml}");
    assert!(lower.contains("content-type: text/html"), "{eml}");
    // The HTML part escapes the annotation; the text part keeps it verbatim.
    let decoded = decode_qp(eml);
    assert!(
        decoded.contains("disk &lt;b&gt;full&lt;/b&gt; &amp; &quot;bad&quot;"),
        "{decoded}"
    );
    assert!(decoded.contains("disk <b>full</b> & \"bad\""), "{decoded}");
    assert!(
        decoded.contains("/api/v1/alerting/ack?tenant=anonymous"),
        "ack link: {decoded}"
    );
}

/// Undoes quoted-printable soft breaks and escapes well enough for substring checks.
fn decode_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn plain_smtp_delivers_both_parts() {
    let s = start_smtp("plain", None, None);
    let r = deliver(&config(s.port, "")).await;
    assert_eq!(r.deliveries.len(), 1);
    assert_eq!(r.deliveries[0].outcome, "sent", "{:?}", r.deliveries[0].error);
    let m = messages(s.dir.path());
    assert_eq!(m.len(), 1);
    check_mail(&m[0].0, &m[0].1);
}

fn certs(dir: &Path) -> (PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap_or_else(|e| panic!("rcgen: {e}"));
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    assert!(std::fs::write(&c, ck.cert.pem()).is_ok());
    assert!(std::fs::write(&k, ck.key_pair.serialize_pem()).is_ok());
    (c, k)
}

#[tokio::test]
async fn starttls_with_auth() {
    let td = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (c, k) = certs(td.path());
    let s = start_smtp("starttls", Some((&c, &k)), Some("alice:s3cret"));
    let extra = format!(
        "    require_tls: true\n    auth_username: alice\n    auth_password: s3cret\n    tls_config:\n      ca_file: '{}'\n",
        c.display()
    );
    let r = deliver(&config(s.port, &extra)).await;
    assert_eq!(r.deliveries[0].outcome, "sent", "{:?}", r.deliveries[0].error);
    let m = messages(s.dir.path());
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].1["tls"], true);
    check_mail(&m[0].0, &m[0].1);
}

#[tokio::test]
async fn implicit_tls() {
    let td = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (c, k) = certs(td.path());
    let s = start_smtp("tls", Some((&c, &k)), None);
    let extra = format!(
        "    force_implicit_tls: true\n    tls_config:\n      ca_file: '{}'\n",
        c.display()
    );
    let r = deliver(&config(s.port, &extra)).await;
    assert_eq!(r.deliveries[0].outcome, "sent", "{:?}", r.deliveries[0].error);
    let m = messages(s.dir.path());
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].1["tls"], true);
}

#[tokio::test]
async fn wrong_password_and_untrusted_cert_fail_visibly() {
    let td = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (c, k) = certs(td.path());
    let s = start_smtp("starttls", Some((&c, &k)), Some("alice:s3cret"));
    // Wrong password.
    let extra = format!(
        "    require_tls: true\n    auth_username: alice\n    auth_password: wrong\n    tls_config:\n      ca_file: '{}'\n",
        c.display()
    );
    let t = std::time::Instant::now();
    let r = deliver(&config(s.port, &extra)).await;
    eprintln!("wrong password took {:?}", t.elapsed());
    assert_eq!(r.deliveries[0].outcome, "failed");
    // Certificate not trusted.
    let t = std::time::Instant::now();
    let extra = "    require_tls: true\n    auth_username: alice\n    auth_password: s3cret\n";
    let r = deliver(&config(s.port, extra)).await;
    eprintln!("untrusted took {:?}: {:?}", t.elapsed(), r.deliveries[0].error);
    assert_eq!(r.deliveries[0].outcome, "failed");
    assert!(messages(s.dir.path()).is_empty());
}

#[tokio::test]
async fn unreachable_smtp_is_retried_not_lost() {
    // Nothing listens on this port.
    let (e, clock) = engine(&config(1, ""));
    let _ = e.ingest_posted("anonymous", vec![alert(&[("alertname", "DiskFull")])]);
    clock.advance(Duration::seconds(30));
    let r = e.tick().await;
    assert_eq!(r.deliveries[0].outcome, "failed");
    // Retried with backoff (1s), long before group_interval.
    clock.advance(Duration::seconds(1));
    let r = e.tick().await;
    assert_eq!(r.deliveries.len(), 1, "retried after the backoff");
}

#[tokio::test]
async fn go_templated_recipients_headers_and_parts() {
    let s = start_smtp("plain", None, None);
    let cfg = format!(
        r#"
global:
  smtp_from: 'am@fenghuo.test'
  smtp_smarthost: '127.0.0.1:{}'
  smtp_require_tls: false
route:
  receiver: mail
  group_by: [alertname]
  group_wait: 30s
receivers:
- name: mail
  email_configs:
  - to: '{{{{ .CommonLabels.instance }}}}-team@example.com'
    from: 'alerts+{{{{ .CommonLabels.severity }}}}@fenghuo.test'
    headers:
      Subject: '{{{{ template "email.default.subject" . }}}}'
    html: '{{{{ template "email.default.html" . }}}}'
    text: '{{{{ template "__text_alert_list" .Alerts }}}}'
"#,
        s.port
    );
    let r = deliver(&cfg).await;
    assert_eq!(r.deliveries[0].outcome, "sent", "{:?}", r.deliveries[0].error);
    let m = messages(s.dir.path());
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].1["rcpt_tos"], serde_json::json!(["db1-team@example.com"]));
    assert_eq!(m[0].1["mail_from"], "alerts+critical@fenghuo.test");
    let eml = decode_qp(&m[0].0);
    assert!(
        eml.contains("Subject: [FIRING:1] DiskFull (db1 critical)"),
        "{eml}"
    );
    // html/template escaping in the HTML part, verbatim text in the text part.
    assert!(
        eml.contains("summary = disk &lt;b&gt;full&lt;/b&gt; &amp; &#34;bad&#34;<br>"),
        "{eml}"
    );
    assert!(
        eml.contains(" - summary = disk <b>full</b> & \"bad\"\n")
            || eml.contains(" - summary = disk <b>full</b> & \"bad\"\r\n"),
        "{eml}"
    );
}
