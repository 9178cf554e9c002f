//! Secrets never leave fenghuo: `/api/v2/status` shows `<secret>` where Alertmanager does (and
//! for robot URLs and webhook URLs), fenghuo's config API too, and delivery errors (kept in the
//! history, the failure-notice queue, logs and metrics) never carry a receiver's URL path, query
//! token or signing secret.

mod common;

use chrono::Duration;
use common::*;
use fenghuo_alerting::Clock;
use serde_json::Value;

const SECRETS: &[&str] = &[
    "TOKDING",
    "SECDING",
    "HOOKFEI",
    "SECFEI",
    "KEYWECOM",
    "SLACKPATH",
    "HOOKPATH",
    "PWBASIC",
    "SMTPPW",
    "PROXYPW",
    "BEARERTOK",
];

/// Everything fenghuo logs during the test, at every level.
#[derive(Clone, Default)]
struct LogCapture(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_stay_out_of_api_output_and_errors() {
    // 127.0.0.1:9 refuses connections; the sink answers 500 with an error body.
    let (sink, base) = sink().await;
    *sink.answers.lock() = vec![(500, "internal error".into())];
    let cfg = format!(
        r#"
global:
  smtp_smarthost: 127.0.0.1:9
  smtp_from: fh@example.com
  smtp_auth_username: fh
  smtp_auth_password: SMTPPW
  smtp_require_tls: false
route:
  receiver: r
  group_by: [alertname]
  group_wait: 30s
receivers:
- name: r
  dingtalk_configs:
  - webhook_url: 'http://127.0.0.1:9/robot/send?access_token=TOKDING'
    secret: SECDING
  feishu_configs:
  - webhook_url: '{base}/open-apis/bot/v2/hook/HOOKFEI'
    secret: SECFEI
  wecom_configs:
  - webhook_url: '{base}/cgi-bin/webhook/send?key=KEYWECOM'
  slack_configs:
  - api_url: '{base}/services/SLACKPATH'
  webhook_configs:
  - url: '{base}/HOOKPATH'
    http_config: {{basic_auth: {{username: u, password: PWBASIC}}}}
  - url: '{base}/other'
    http_config:
      proxy_url: 'http://proxyuser:PROXYPW@127.0.0.1:9'
      authorization: {{credentials: BEARERTOK}}
  email_configs:
  - to: oncall@example.com
fenghuo:
  delivery: {{max_attempts: 1, failure_receiver: r}}
"#
    );
    let logs = LogCapture::default();
    let writer = logs.clone();
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .try_init();
    let (e, clock) = engine(&cfg);
    let api = serve_api(e.clone()).await;
    let _ = e.ingest_posted("anonymous", vec![alert(&[("alertname", "Leak")])]);
    clock.advance(Duration::seconds(30));
    let r = e.tick().await;
    let errors: Vec<String> = r.deliveries.iter().filter_map(|d| d.error.clone()).collect();
    assert_eq!(errors.len(), 7, "every integration failed: {:?}", r.deliveries);
    // The errors still say what went wrong and where.
    assert!(
        errors.iter().any(|e| e.contains("127.0.0.1:9/<redacted>")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("status code 500")), "{errors:?}");
    clock.advance(Duration::seconds(5));
    let _ = e.tick().await;

    let c = reqwest::Client::new();
    let mut seen = String::new();
    for path in [
        "/api/v2/status",
        "/api/v1/alerting/config",
        "/api/v1/alerting/history?start=2024-03-04T00:00:00Z&end=2024-03-05T00:00:00Z",
        "/api/v1/alerting/delivery-failures",
        "/api/v2/receivers",
    ] {
        let body = match c.get(format!("{api}{path}")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => panic!("{path}: {e}"),
        };
        seen.push_str(&body);
        seen.push('\n');
    }
    seen.push_str(&errors.join("\n"));
    // What the failure receiver was told about the failures.
    for req in sink.requests.lock().iter() {
        seen.push_str(&String::from_utf8_lossy(&req.body));
    }
    let metrics = {
        let mut buf = Vec::new();
        let _ = prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &prometheus::gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    };
    seen.push_str(&metrics);
    let logged = String::from_utf8_lossy(&logs.0.lock()).into_owned();
    assert!(
        logged.contains("Leak") || logged.contains("notif"),
        "the log capture works: {logged}"
    );
    seen.push_str(&logged);
    for s in SECRETS {
        assert!(!seen.contains(s), "secret {s} leaked:\n{seen}");
    }
    let status: Value = c
        .get(format!("{api}/api/v2/status"))
        .send()
        .await
        .ok()
        .map(|r| r.json())
        .unwrap_or_else(|| panic!("status"))
        .await
        .unwrap_or_default();
    let original = status["config"]["original"].as_str().unwrap_or_default();
    assert!(original.contains("smtp_auth_password: <secret>"), "{original}");
    assert!(original.contains("password: <secret>"), "{original}");
    assert!(original.contains("api_url: <secret>"), "{original}");
    assert!(original.contains("smtp_auth_username: fh"), "{original}");
    // A proxy URL keeps its user and host; only the password is hidden (as Prometheus shows it).
    assert!(
        original.contains("proxy_url: http://proxyuser:%3Csecret%3E@127.0.0.1:9"),
        "{original}"
    );
    // The failures were recorded (with their redacted reasons), not hidden.
    let h = e
        .history(
            "anonymous",
            t0(),
            clock.now() + Duration::seconds(1),
            &[],
            &[fenghuo_alerting::history::EventKind::NotifyFailed],
            0,
        )
        .unwrap_or_default();
    assert!(!h.is_empty());
}
