//! IM and webhook payloads checked against local HTTP sinks on 127.0.0.1: DingTalk and Feishu
//! signatures recomputed here from the vendors' documented algorithms, WeCom markdown, Slack
//! attachments, Alertmanager's webhook v4 payload byte for byte; 200-with-error-code answers count
//! as failures and are retried and escalated; rate budgets fold surplus messages into a digest.

mod common;

use base64::Engine as _;
use chrono::Duration;
use common::*;
use fenghuo_alerting::Clock;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|e| panic!("{e}"));
    m.update(msg);
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

fn cfg(receivers: &str) -> String {
    format!(
        r#"
route:
  receiver: r
  group_by: [alertname]
  group_wait: 30s
receivers:
- name: r
{receivers}
- name: fallback
  webhook_configs: [{{url: "http://127.0.0.1:9/unused"}}]
"#
    )
}

async fn fire(
    cfg: &str,
) -> (
    Vec<fenghuo_alerting::engine::Delivery>,
    std::sync::Arc<fenghuo_alerting::engine::Engine>,
    std::sync::Arc<fenghuo_alerting::ManualClock>,
) {
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
    let r = e.tick().await;
    (r.deliveries, e, clock)
}

#[tokio::test]
async fn dingtalk_signed_markdown() {
    let (sink, base) = sink().await;
    let c = cfg(&format!(
        "  dingtalk_configs:\n  - webhook_url: '{base}/robot/send?access_token=TOKEN'\n    secret: 'SEC123'\n    at_mobiles: ['13800000000']\n"
    ));
    let (d, _, _) = fire(&c).await;
    assert_eq!(d[0].outcome, "sent", "{:?}", d[0].error);
    let reqs = sink.requests.lock().clone();
    assert_eq!(reqs.len(), 1);
    let ts = (t0() + Duration::seconds(30)).timestamp_millis();
    let expected_sign = hmac_b64(b"SEC123", format!("{ts}\nSEC123").as_bytes());
    let enc =
        percent_encoding::utf8_percent_encode(&expected_sign, percent_encoding::NON_ALPHANUMERIC).to_string();
    assert_eq!(
        reqs[0].uri,
        format!("/robot/send?access_token=TOKEN&timestamp={ts}&sign={enc}")
    );
    assert_eq!(
        reqs[0].headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap_or_default();
    assert_eq!(body["msgtype"], "markdown");
    assert_eq!(body["markdown"]["title"], "[FIRING:1] DiskFull (db1 critical)");
    let text = body["markdown"]["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("### [FIRING:1] DiskFull (db1 critical)"),
        "{text}"
    );
    assert!(
        text.contains("disk <b>full</b> & \"bad\""),
        "markdown is not escaped: {text}"
    );
    assert!(text.ends_with("@13800000000"), "mentioned in text: {text}");
    assert_eq!(body["at"]["atMobiles"][0], "13800000000");
    assert_eq!(body["at"]["isAtAll"], false);
    assert_eq!(body.as_object().map(|o| o.len()), Some(3));
}

#[tokio::test]
async fn feishu_signed_card() {
    let (sink, base) = sink().await;
    *sink.answers.lock() = vec![(200, r#"{"code":0,"msg":"success","data":{}}"#.into())];
    let c = cfg(&format!(
        "  feishu_configs:\n  - webhook_url: '{base}/open-apis/bot/v2/hook/abc'\n    secret: 'fsecret'\n"
    ));
    let (d, _, _) = fire(&c).await;
    assert_eq!(d[0].outcome, "sent", "{:?}", d[0].error);
    let reqs = sink.requests.lock().clone();
    assert_eq!(reqs[0].uri, "/open-apis/bot/v2/hook/abc");
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap_or_default();
    let ts = (t0() + Duration::seconds(30)).timestamp();
    assert_eq!(body["timestamp"], ts.to_string());
    // Feishu: HMAC-SHA256 keyed with "timestamp\nsecret" over an empty message, base64.
    assert_eq!(body["sign"], hmac_b64(format!("{ts}\nfsecret").as_bytes(), b""));
    assert_eq!(body["msg_type"], "interactive");
    assert_eq!(
        body["card"]["header"]["title"]["content"],
        "[FIRING:1] DiskFull (db1 critical)"
    );
    assert_eq!(body["card"]["header"]["template"], "red");
    assert_eq!(body["card"]["elements"][0]["tag"], "markdown");
}

#[tokio::test]
async fn wecom_markdown_with_mentions() {
    let (sink, base) = sink().await;
    let c = cfg(&format!(
        "  wecom_configs:\n  - webhook_url: '{base}/cgi-bin/webhook/send?key=KEY'\n    mentioned_userids: [zhangsan]\n"
    ));
    let (d, _, _) = fire(&c).await;
    assert_eq!(d[0].outcome, "sent", "{:?}", d[0].error);
    let reqs = sink.requests.lock().clone();
    assert_eq!(reqs[0].uri, "/cgi-bin/webhook/send?key=KEY");
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap_or_default();
    assert_eq!(body["msgtype"], "markdown");
    let content = body["markdown"]["content"].as_str().unwrap_or_default();
    assert!(content.starts_with("### [FIRING:1] DiskFull"), "{content}");
    assert!(content.ends_with("<@zhangsan>"), "{content}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(2));
}

#[tokio::test]
async fn slack_incoming_webhook() {
    let (sink, base) = sink().await;
    *sink.answers.lock() = vec![(200, "ok".into())];
    let c = cfg(&format!(
        "  slack_configs:\n  - api_url: '{base}/services/T/B/X'\n    channel: '#ops'\n"
    ));
    let (d, _, _) = fire(&c).await;
    assert_eq!(d[0].outcome, "sent", "{:?}", d[0].error);
    let reqs = sink.requests.lock().clone();
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap_or_default();
    assert_eq!(body["channel"], "#ops");
    assert_eq!(
        body["attachments"][0]["title"],
        "[FIRING:1] DiskFull (db1 critical)"
    );
    assert_eq!(body["attachments"][0]["color"], "danger");
    assert_eq!(
        body["attachments"][0]["title_link"],
        "http://fh.test:9093/#/alerts?receiver=r"
    );
    // Slack answering anything but "ok" is a failure.
    let (sink2, base2) = common::sink().await;
    *sink2.answers.lock() = vec![(400, "invalid_payload".into())];
    let c = cfg(&format!(
        "  slack_configs:\n  - api_url: '{base2}/services/T/B/X'\n"
    ));
    let (d, _, _) = fire(&c).await;
    assert_eq!(d[0].outcome, "failed");
}

#[tokio::test]
async fn slack_fields_are_go_templates_as_in_alertmanager() {
    let (sink, base) = sink().await;
    *sink.answers.lock() = vec![(200, "ok".into())];
    let c = cfg(&format!(
        r#"  slack_configs:
  - api_url: '{base}/services/T/B/X'
    channel: '#{{{{ .CommonLabels.severity }}}}'
    username: '{{{{ template "slack.default.username" . }}}}'
    color: '{{{{ if eq .Status "firing" }}}}#ff0000{{{{ else }}}}#00ff00{{{{ end }}}}'
    title: '{{{{ .CommonLabels.alertname | toUpper }}}} on {{{{ .CommonLabels.instance }}}}'
    text: '{{{{ range .Alerts }}}}{{{{ .Annotations.summary }}}}{{{{ end }}}}'
    short_fields: true
    fields:
    - title: severity
      value: '{{{{ .CommonLabels.severity }}}}'
    actions:
    - type: button
      text: Runbook
      url: 'https://wiki/{{{{ .CommonLabels.alertname }}}}'
"#
    ));
    let (d, _, _) = fire(&c).await;
    assert_eq!(d[0].outcome, "sent", "{:?}", d[0].error);
    let reqs = sink.requests.lock().clone();
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap_or_default();
    assert_eq!(body["channel"], "#critical");
    assert_eq!(body["username"], "Alertmanager");
    let att = &body["attachments"][0];
    assert_eq!(att["color"], "#ff0000");
    assert_eq!(att["title"], "DISKFULL on db1");
    assert_eq!(att["text"], "disk <b>full</b> & \"bad\"");
    assert_eq!(
        att["fields"][0],
        serde_json::json!({"title": "severity", "value": "critical", "short": true})
    );
    assert_eq!(att["actions"][0]["url"], "https://wiki/DiskFull");
}

#[tokio::test]
async fn webhook_v4_payload_byte_for_byte() {
    let (sink, base) = sink().await;
    let c = cfg(&format!("  webhook_configs:\n  - url: '{base}/hook'\n"));
    let (d, _, _) = fire(&c).await;
    assert_eq!(d[0].outcome, "sent", "{:?}", d[0].error);
    let reqs = sink.requests.lock().clone();
    let fp = fenghuo_alerting::model::fingerprint(
        &[
            ("alertname", "DiskFull"),
            ("instance", "db1"),
            ("severity", "critical"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    let expected = format!(
        concat!(
            r#"{{"receiver":"r","status":"firing","alerts":[{{"status":"firing","labels":{{"alertname":"DiskFull","instance":"db1","severity":"critical"}},"#,
            r#""annotations":{{"summary":"disk <b>full</b> & \"bad\""}},"startsAt":"2024-03-04T05:06:07Z","endsAt":"0001-01-01T00:00:00Z","#,
            r#""generatorURL":"http://prom:9090/graph?g0.expr=up","fingerprint":"{fp}"}}],"groupLabels":{{"alertname":"DiskFull"}},"#,
            r#""commonLabels":{{"alertname":"DiskFull","instance":"db1","severity":"critical"}},"commonAnnotations":{{"summary":"disk <b>full</b> & \"bad\""}},"#,
            r#""externalURL":"http://fh.test:9093","version":"4","groupKey":"{{}}:{{alertname=\"DiskFull\"}}","truncatedAlerts":0}}"#
        ),
        fp = fp
    );
    assert_eq!(String::from_utf8_lossy(&reqs[0].body), expected);
}

#[tokio::test]
async fn error_code_in_200_is_a_failure_retried_then_escalated() {
    let (sink, base) = sink().await;
    let (fb, fb_base) = common::sink().await;
    *sink.answers.lock() = vec![(200, r#"{"errcode":-1,"errmsg":"system busy"}"#.into())];
    let c = format!(
        r#"
route:
  receiver: r
  group_by: [alertname]
  group_wait: 30s
receivers:
- name: r
  dingtalk_configs:
  - webhook_url: '{base}/robot/send?access_token=T'
- name: ops
  webhook_configs: [{{url: '{fb_base}/failed'}}]
fenghuo:
  delivery:
    max_attempts: 3
    initial_backoff: 1s
    failure_receiver: ops
"#
    );
    let (d, e, clock) = fire(&c).await;
    assert_eq!(d[0].outcome, "failed");
    assert!(
        d[0].error.as_deref().unwrap_or_default().contains("errcode -1"),
        "{:?}",
        d[0].error
    );
    // Backoff 1s, then 2s: third failure reaches max_attempts.
    clock.advance(Duration::seconds(1));
    assert_eq!(e.tick().await.deliveries[0].outcome, "failed");
    clock.advance(Duration::seconds(2));
    assert_eq!(e.tick().await.deliveries[0].outcome, "failed");
    // The failure is escalated to the failure receiver on the next step.
    clock.advance(Duration::seconds(1));
    let r = e.tick().await;
    let notice: Vec<_> = r
        .deliveries
        .iter()
        .filter(|d| d.kind == "delivery_failure")
        .collect();
    assert_eq!(notice.len(), 1, "{:?}", r.deliveries);
    assert_eq!(notice[0].outcome, "sent");
    let fbody: Value = serde_json::from_slice(&fb.requests.lock()[0].body).unwrap_or_default();
    assert!(
        fbody["commonAnnotations"]["fenghuo_delivery_failure"]
            .as_str()
            .unwrap_or_default()
            .contains("errcode -1")
    );
    // Still not lost: once the robot recovers the alert is delivered.
    *sink.answers.lock() = vec![(200, r#"{"errcode":0,"errmsg":"ok"}"#.into())];
    clock.advance(Duration::seconds(10));
    let r = e.tick().await;
    assert!(
        r.deliveries
            .iter()
            .any(|d| d.receiver == "r" && d.outcome == "sent"),
        "{:?}",
        r.deliveries
    );
    let h = e
        .history(
            "anonymous",
            t0(),
            clock.now() + Duration::seconds(1),
            &[],
            &[fenghuo_alerting::history::EventKind::DeliveryFailed],
            0,
        )
        .unwrap_or_default();
    assert_eq!(h.len(), 1);
    // Metrics per receiver, integration and failure reason.
    let text = {
        let mut buf = Vec::new();
        let enc = prometheus::TextEncoder::new();
        let _ = prometheus::Encoder::encode(&enc, &prometheus::gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    };
    assert!(
        text.contains("fenghuo_alerting_notifications_failed_total{integration=\"dingtalk\",reason=\"api_error\",receiver=\"r\"}"),
        "{text}"
    );
    assert!(text.contains(
        "fenghuo_alerting_delivery_failures_escalated_total{integration=\"dingtalk\",receiver=\"r\"}"
    ));
}

#[tokio::test]
async fn rate_budget_folds_into_digest() {
    let (sink, base) = sink().await;
    let c = cfg(&format!(
        "  dingtalk_configs:\n  - webhook_url: '{base}/robot/send?access_token=T'\n    rate_limit: {{messages: 2, per: 10m}}\n"
    ));
    let (e, clock) = engine(&c);
    let alerts: Vec<_> = (0..5)
        .map(|i| alert(&[("alertname", &format!("A{i}"))]))
        .collect();
    let _ = e.ingest_posted("anonymous", alerts);
    clock.advance(Duration::seconds(30));
    let r = e.tick().await;
    assert_eq!(r.deliveries.len(), 5);
    assert!(
        r.deliveries.iter().all(|d| d.outcome == "sent"),
        "{:?}",
        r.deliveries
    );
    let reqs = sink.requests.lock().clone();
    assert_eq!(reqs.len(), 2, "one single message and one digest");
    let digest: Value = serde_json::from_slice(&reqs[1].body).unwrap_or_default();
    let text = digest["markdown"]["text"].as_str().unwrap_or_default();
    assert!(text.contains("Digest of 4 notifications"), "{text}");
    for i in 1..5 {
        assert!(text.contains(&format!("**A{i}**")), "{text}");
    }
    // Budget spent: a new group waits for the next token instead of being dropped.
    let _ = e.ingest_posted("anonymous", vec![alert(&[("alertname", "Late")])]);
    clock.advance(Duration::seconds(30));
    let r = e.tick().await;
    assert_eq!(r.deliveries[0].outcome, "deferred");
    // One token per 5 minutes: the deferred group is sent when the next token exists.
    clock.advance(Duration::minutes(4) + Duration::seconds(30));
    let r = e.tick().await;
    assert_eq!(
        r.deliveries.iter().filter(|d| d.outcome == "sent").count(),
        1,
        "{:?}",
        r.deliveries
    );
}

/// A digest bigger than WeCom's 4096-byte message is sent as numbered parts: every alert of the
/// digest appears in the messages, in order, none cut off.
#[tokio::test]
async fn a_digest_over_the_size_limit_keeps_every_alert() {
    let (sink, base) = sink().await;
    let c = cfg(&format!(
        "  wecom_configs:\n  - webhook_url: '{base}/cgi-bin/webhook/send?key=K'\n    rate_limit: {{messages: 2, per: 10m}}\n"
    ));
    let (e, clock) = engine(&c);
    let n = 300;
    let alerts: Vec<_> = (0..n)
        .map(|i| {
            alert(&[
                ("alertname", &format!("Alert{i:03}")),
                ("instance", "db-primary-1"),
            ])
        })
        .collect();
    let _ = e.ingest_posted("anonymous", alerts);
    clock.advance(Duration::seconds(30));
    let r = e.tick().await;
    assert_eq!(r.deliveries.len(), n);
    assert!(
        r.deliveries.iter().all(|d| d.outcome == "sent"),
        "{:?}",
        r.deliveries.iter().find(|d| d.outcome != "sent")
    );
    let reqs = sink.requests.lock().clone();
    assert!(reqs.len() > 3, "the digest was split: {} requests", reqs.len());
    let mut text = String::new();
    for (i, req) in reqs.iter().enumerate() {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let content = body["markdown"]["content"].as_str().unwrap_or_default();
        assert!(content.len() <= 4096, "request {i}: {} bytes", content.len());
        if i > 0 {
            assert!(
                content.starts_with(&format!("(part {i}/{})", reqs.len() - 1)),
                "{content}"
            );
        }
        text.push_str(content);
    }
    let mut last = 0;
    for i in 0..n {
        let name = format!("**Alert{i:03}**");
        let at = text
            .find(&name)
            .unwrap_or_else(|| panic!("{name} missing from the digest"));
        assert!(i < 2 || at > last, "{name} out of order");
        last = at;
    }
    // Every part past the digest's first was charged to the budget (one token per 5 minutes):
    // a new group waits until that deficit is paid back, not just for the next token.
    let parts = reqs.len() - 1; // the first request is the single message before the digest
    let _ = e.ingest_posted("anonymous", vec![alert(&[("alertname", "Late")])]);
    clock.advance(Duration::seconds(30));
    let r = e.tick().await;
    let outcomes: Vec<&str> = r.deliveries.iter().map(|d| d.outcome.as_str()).collect();
    assert_eq!(outcomes, ["deferred"]);
    clock.advance(Duration::minutes(5));
    let r = e.tick().await;
    assert!(
        r.deliveries.iter().all(|d| d.outcome != "sent"),
        "sent one token after a {parts}-part digest: {:?}",
        r.deliveries
    );
    clock.advance(Duration::minutes(5 * parts as i64 - 5));
    let r = e.tick().await;
    assert_eq!(
        r.deliveries.iter().filter(|d| d.outcome == "sent").count(),
        1,
        "{:?}",
        r.deliveries
    );
    assert_eq!(sink.requests.lock().len(), reqs.len() + 1);
}

/// A template that parses but fails when executed (index out of range, missing handlebars
/// partial data) fails that delivery visibly: a permanent failure, a failure notice to the
/// failure receiver, a history event; other groups and receivers keep working.
#[tokio::test]
async fn a_template_failing_at_send_time_is_a_visible_failure() {
    let (sink, base) = sink().await;
    *sink.answers.lock() = vec![(200, "ok".into())];
    let c = format!(
        r#"
route:
  receiver: broken
  group_by: [alertname]
  group_wait: 30s
  routes:
  - matchers: [alertname="Fine"]
    receiver: ops
receivers:
- name: broken
  slack_configs:
  - api_url: '{base}/services/T/B/X'
    title: '{{{{ (index .Alerts 5).Labels.alertname }}}}'
- name: ops
  webhook_configs: [{{url: '{base}/ops'}}]
fenghuo:
  delivery: {{max_attempts: 3, failure_receiver: ops}}
"#
    );
    let (e, clock) = engine(&c);
    let _ = e.ingest_posted(
        "anonymous",
        vec![alert(&[("alertname", "Broken")]), alert(&[("alertname", "Fine")])],
    );
    clock.advance(Duration::seconds(30));
    let r = e.tick().await;
    let broken: Vec<_> = r.deliveries.iter().filter(|d| d.receiver == "broken").collect();
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0].outcome, "failed");
    let err = broken[0].error.clone().unwrap_or_default();
    assert!(err.contains("index"), "{err}");
    assert!(
        r.deliveries
            .iter()
            .any(|d| d.receiver == "ops" && d.outcome == "sent"),
        "{:?}",
        r.deliveries
    );
    // Permanent: the failure notice goes out on the next step, without waiting for retries.
    clock.advance(Duration::seconds(1));
    let r = e.tick().await;
    assert!(
        r.deliveries
            .iter()
            .any(|d| d.kind == "delivery_failure" && d.outcome == "sent"),
        "{:?}",
        r.deliveries
    );
    assert_eq!(
        sink.requests
            .lock()
            .iter()
            .filter(|q| q.uri.starts_with("/services"))
            .count(),
        0
    );
    let notices = e.delivery_failures("anonymous").unwrap_or_default();
    assert_eq!(notices.len(), 1);
}

/// The ack link in an IM message works: following it (GET shows a form, POST acknowledges)
/// records who acked, and the silence link points at the external URL's silence form.
#[tokio::test]
async fn the_ack_link_in_a_message_acknowledges_the_group() {
    let (sink, base) = sink().await;
    let c = cfg(&format!(
        "  dingtalk_configs:\n  - webhook_url: '{base}/robot/send?access_token=T'\n"
    ));
    let (d, e, _) = fire(&c).await;
    assert_eq!(d[0].outcome, "sent", "{:?}", d[0].error);
    let body: Value = serde_json::from_slice(&sink.requests.lock()[0].body).unwrap_or_default();
    let text = body["markdown"]["text"].as_str().unwrap_or_default().to_string();
    let link = text
        .split("[Acknowledge](")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no ack link in {text}"))
        .to_string();
    assert!(
        link.starts_with("http://fh.test:9093/api/v1/alerting/ack?"),
        "{link}"
    );
    assert!(
        text.contains("[Silence](http://fh.test:9093/#/silences/new?filter="),
        "{text}"
    );
    let api = serve_api(e.clone()).await;
    let link = link.replace("http://fh.test:9093", &api);
    let c = reqwest::Client::new();
    let page = match c.get(&link).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => panic!("{e}"),
    };
    assert!(page.contains("<form"), "{page}");
    assert_eq!(e.acks("anonymous").map(|a| a.len()).ok(), Some(0));
    let r = c
        .post(&link)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("by=carol&ttl=15m")
        .send()
        .await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(200));
    let acks = e.acks("anonymous").unwrap_or_default();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].by, "carol");
    assert_eq!(acks[0].expires_at - acks[0].at, Duration::minutes(15));
}

/// Whole request bodies of the Chinese IM robots, with user templates so every byte is known:
/// each equals the vendor's documented message object exactly (no missing or extra fields).
#[tokio::test]
async fn im_bodies_are_exactly_the_documented_objects() {
    let (sink, base) = sink().await;
    let c = cfg(&format!(
        r#"  dingtalk_configs:
  - webhook_url: '{base}/ding?access_token=T'
    secret: S
    title: '{{{{ .CommonLabels.alertname }}}} title'
    text: '{{{{ .Status }}}} text'
    at_user_ids: [u1]
  wecom_configs:
  - webhook_url: '{base}/wecom?key=K'
    content: '{{{{ .Status }}}} content'
  feishu_configs:
  - webhook_url: '{base}/feishu'
    secret: F
    title: '{{{{ .CommonLabels.alertname }}}} title'
    content: '{{{{ .Status }}}} content'
"#
    ));
    *sink.answers.lock() = vec![(200, r#"{"errcode":0,"errmsg":"ok","code":0}"#.into())];
    let (d, _, _) = fire(&c).await;
    assert!(d.iter().all(|d| d.outcome == "sent"), "{d:?}");
    let reqs = sink.requests.lock().clone();
    let body = |prefix: &str| -> Value {
        reqs.iter()
            .find(|r| r.uri.starts_with(prefix))
            .map(|r| serde_json::from_slice(&r.body).unwrap_or_default())
            .unwrap_or_else(|| panic!("no request to {prefix}"))
    };
    let ts_ms = (t0() + Duration::seconds(30)).timestamp_millis();
    assert_eq!(
        body("/ding"),
        serde_json::json!({
            "msgtype": "markdown",
            "markdown": {"title": "DiskFull title", "text": "firing text\n\n@u1"},
            "at": {"atMobiles": [], "atUserIds": ["u1"], "isAtAll": false},
        })
    );
    assert!(
        reqs.iter().any(|r| r.uri
            == format!(
                "/ding?access_token=T&timestamp={ts_ms}&sign={}",
                percent_encoding::utf8_percent_encode(
                    &hmac_b64(b"S", format!("{ts_ms}\nS").as_bytes()),
                    percent_encoding::NON_ALPHANUMERIC
                )
            )),
        "{:?}",
        reqs.iter().map(|r| r.uri.clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        body("/wecom"),
        serde_json::json!({"msgtype": "markdown", "markdown": {"content": "firing content"}})
    );
    let ts = ts_ms / 1000;
    assert_eq!(
        body("/feishu"),
        serde_json::json!({
            "timestamp": ts.to_string(),
            "sign": hmac_b64(format!("{ts}\nF").as_bytes(), b""),
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": true},
                "header": {"title": {"tag": "plain_text", "content": "DiskFull title"}, "template": "red"},
                "elements": [{"tag": "markdown", "content": "firing content"}],
            },
        })
    );
    for r in &reqs {
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{}",
            r.uri
        );
    }
}

#[tokio::test]
async fn test_receiver_sends_a_marked_test_message() {
    let (sink, base) = sink().await;
    let c = cfg(&format!(
        "  webhook_configs:\n  - url: '{base}/hook'\n  wecom_configs:\n  - webhook_url: '{base}/wecom?key=K'\n"
    ));
    let (e, _) = engine(&c);
    let res = e
        .test_receiver("anonymous", "r", vec![])
        .await
        .unwrap_or_default();
    assert_eq!(res.len(), 2);
    assert!(res.iter().all(|r| r["error"].is_null()), "{res:?}");
    let reqs = sink.requests.lock().clone();
    let wecom: Value = serde_json::from_slice(&reqs[1].body).unwrap_or_default();
    assert!(
        wecom["markdown"]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("Test notification from fenghuo")
    );
    assert!(e.test_receiver("anonymous", "nope", vec![]).await.is_err());
    // A failing integration is reported, not hidden.
    *sink.answers.lock() = vec![(200, r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#.into())];
    let res = e
        .test_receiver("anonymous", "r", vec![])
        .await
        .unwrap_or_default();
    assert!(
        res[1]["error"].as_str().unwrap_or_default().contains("93000"),
        "{res:?}"
    );
    // The same over HTTP, with a sample alert of the caller's.
    *sink.answers.lock() = vec![(200, r#"{"errcode":0,"errmsg":"ok"}"#.into())];
    let api = serve_api(e.clone()).await;
    let before = sink.requests.lock().len();
    let r = reqwest::Client::new()
        .post(format!("{api}/api/v1/alerting/receivers/r/test"))
        .json(&serde_json::json!([{"labels": {"alertname": "MyProbe"}}]))
        .send()
        .await;
    let (status, v) = match r {
        Ok(r) => (r.status().as_u16(), r.json::<Value>().await.unwrap_or_default()),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"].as_array().map(|a| a.len()), Some(2), "{v}");
    let reqs = sink.requests.lock().clone();
    assert_eq!(reqs.len(), before + 2);
    assert!(String::from_utf8_lossy(&reqs[before].body).contains("MyProbe"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_does_not_delay_others() {
    let (slow, slow_url) = common::sink().await;
    let (fast, fast_url) = common::sink().await;
    slow.delay_ms.store(1500, std::sync::atomic::Ordering::SeqCst);
    let c = format!(
        r#"
route:
  receiver: fast
  group_by: [alertname]
  group_wait: 30s
  group_interval: 1m
  routes:
  - matchers: ['alertname="Slow"']
    receiver: slow
receivers:
- name: fast
  webhook_configs: [{{url: '{fast_url}/f'}}]
- name: slow
  webhook_configs: [{{url: '{slow_url}/s'}}]
"#
    );
    let (e, clock) = engine(&c);
    let _ = e.ingest_posted("anonymous", vec![alert(&[("alertname", "Slow")])]);
    clock.advance(Duration::seconds(30));
    e.tick_detached().await;
    let _ = e.ingest_posted("anonymous", vec![alert(&[("alertname", "Fast")])]);
    clock.advance(Duration::seconds(30));
    e.tick_detached().await;
    // Meanwhile the slow group is due again but still in flight: it is not flushed twice.
    clock.advance(Duration::minutes(2));
    e.tick_detached().await;
    let notified = |receiver: &str| {
        e.history(
            "anonymous",
            t0(),
            t0() + Duration::hours(1),
            &[],
            &[fenghuo_alerting::history::EventKind::Notified],
            0,
        )
        .unwrap_or_default()
        .iter()
        .filter(|h| h.receiver == receiver)
        .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while notified("fast") == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        notified("fast"),
        1,
        "fast receiver served while the slow one hangs"
    );
    assert_eq!(notified("slow"), 0, "slow delivery still in flight");
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    assert_eq!(notified("slow"), 1);
    assert_eq!(slow.requests.lock().len(), 1, "no second flush while in flight");
    assert_eq!(fast.requests.lock().len(), 1);
}
