//! Hostile and careless input against a real `fenghuo serve`: every request
//! that used to abort the whole process (stack overflows from recursive
//! templates and deeply nested PromQL), then a battery over every route the
//! server exposes (garbage, huge and deeply nested bodies, wrong content
//! types, invalid UTF-8, absurd parameters), then seeded mutations of valid
//! requests. After each step the process must still answer, no answer may
//! be a 5xx caused by the input, and every answer must be well formed.

mod common;

use std::time::Duration;

use common::Fenghuo;
use fenghuo_storage::fuzz::Rng;
use serde_json::Value;

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

/// The process still serves: health and a real query answer.
fn assert_alive(f: &Fenghuo, after: &str) {
    let c = client();
    let healthy = c.get(f.url("/-/healthy")).send().map(|r| r.status().as_u16());
    assert_eq!(
        healthy.ok(),
        Some(200),
        "not healthy after {after}\nlog:\n{}",
        f.log()
    );
    let q: Value = c
        .get(f.url("/api/v1/query"))
        .query(&[("query", "1+1")])
        .send()
        .and_then(|r| r.json())
        .unwrap_or_default();
    assert_eq!(q["data"]["result"][1], "2", "query failed after {after}: {q}");
}

/// Sends one request; returns status and body, or the transport error.
fn try_send(
    f: &Fenghuo,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), String> {
    let c = client();
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut req = c.request(method, f.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    let r = req.send().map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    Ok((status, r.bytes().map(|b| b.to_vec()).unwrap_or_default()))
}

/// Like [`try_send`]; a transport error (the process died, or dropped the
/// connection) fails the test.
fn send(f: &Fenghuo, method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, Vec<u8>) {
    try_send(f, method, path, content_type, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\nlog:\n{}", f.log()))
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish().into_bytes()
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const JSON: Option<&str> = Some("application/json");

#[test]
fn requests_that_used_to_abort_the_process_get_a_4xx_naming_the_limit() {
    let f = Fenghuo::start();
    let deep_parens = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let long_chain = vec!["1"; 10_001].join("+");
    for path in [
        "/api/v1/query",
        "/api/v1/query_range",
        "/api/v1/format_query",
        "/api/v1/parse_query",
        "/api/v1/query_exemplars",
    ] {
        for q in [&deep_parens, &long_chain] {
            let mut params = vec![
                ("query", q.as_str()),
                ("start", "0"),
                ("end", "60"),
                ("step", "15"),
            ];
            if path == "/api/v1/query_exemplars" {
                params.truncate(1);
            }
            let (status, body) = send(&f, "POST", path, FORM, form(&params));
            let text = String::from_utf8_lossy(&body);
            assert_eq!(status, 400, "{path}: {text}");
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            assert_eq!(v["errorType"], "bad_data", "{path}: {text}");
            assert!(text.contains("limit of 1000 levels"), "{path}: {text}");
        }
        assert_alive(&f, path);
    }
    for path in ["/api/v1/series", "/api/v1/labels"] {
        let (status, body) = send(&f, "POST", path, FORM, form(&[("match[]", &deep_parens)]));
        assert_eq!(status, 400, "{path}: {}", String::from_utf8_lossy(&body));
    }
    // Just inside the limit still works.
    let ok = format!("{}1{}", "(".repeat(900), ")".repeat(900));
    let (status, body) = send(&f, "POST", "/api/v1/query", FORM, form(&[("query", &ok)]));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // Templates: the request from the issue, then every recursion route.
    let nested_blocks = format!("{}x{}", "{{#if true}}".repeat(10_000), "{{/if}}".repeat(10_000));
    let nested_each = format!("{}x{}", "{{#each alerts}}".repeat(500), "{{/each}}".repeat(500));
    let else_chain = format!("{{{{#if a}}}}{}{{{{/if}}}}", "{{else if b}}x".repeat(10_000));
    let go_self = r#"{{ define "a" }}{{ template "a" . }}{{ end }}{{ template "a" . }}"#.to_string();
    let go_nested = format!(
        "{}x{}",
        "{{ if true }}".repeat(10_000),
        "{{ end }}".repeat(10_000)
    );
    let go_parens = format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000));
    let go_loop = "{{ range 1000000000000 }}{{ end }}".to_string();
    let cases: [(&str, &str, &str); 9] = [
        (
            "inline partial including itself",
            r#"{{#*inline "a"}}x{{> a}}{{/inline}}{{> a}}"#,
            "include themselves",
        ),
        ("blocks 10000 deep", &nested_blocks, "limit of 100"),
        ("each 500 deep", &nested_each, "limit of 100"),
        ("else-if chain of 10000", &else_chain, "limit of 100"),
        (
            "partial block including itself",
            r#"{{#*inline "p"}}{{#> p}}y{{/p}}{{/inline}}{{> p}}"#,
            "include themselves",
        ),
        ("Go template calling itself", &go_self, "maximum template depth"),
        ("Go ifs 10000 deep", &go_nested, "depth exceeded"),
        // Refused by the Go parser, or (as it is then not a Go template) by handlebars' limit.
        (
            "Go parentheses 10000 deep",
            &go_parens,
            "deeper than the limit|depth exceeded",
        ),
        // The step limit or the render time budget, whichever comes first.
        ("Go range over 10^12", &go_loop, "exceeds"),
    ];
    for (what, template, needle) in cases {
        let body = serde_json::to_vec(&serde_json::json!({"template": template})).unwrap_or_default();
        let (status, resp) = send(&f, "POST", "/api/v1/alerting/templates/preview", JSON, body);
        let text = String::from_utf8_lossy(&resp);
        assert!((400..500).contains(&status), "{what}: {status} {text}");
        assert!(needle.split('|').any(|n| text.contains(n)), "{what}: {text}");
        assert_alive(&f, what);
    }
}

/// Every route with its methods.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/query"),
    ("POST", "/api/v1/query"),
    ("GET", "/api/v1/query_range"),
    ("POST", "/api/v1/query_range"),
    ("GET", "/api/v1/query_exemplars"),
    ("POST", "/api/v1/query_exemplars"),
    ("GET", "/api/v1/format_query"),
    ("POST", "/api/v1/format_query"),
    ("GET", "/api/v1/parse_query"),
    ("POST", "/api/v1/parse_query"),
    ("GET", "/api/v1/series"),
    ("POST", "/api/v1/series"),
    ("GET", "/api/v1/labels"),
    ("POST", "/api/v1/labels"),
    ("GET", "/api/v1/label/job/values"),
    ("GET", "/api/v1/label/%FF%FE/values"),
    ("GET", "/api/v1/metadata"),
    ("GET", "/api/v1/status/buildinfo"),
    ("GET", "/api/v1/status/tsdb"),
    ("POST", "/api/v1/write"),
    ("POST", "/api/v1/push"),
    ("GET", "/api/v1/rules"),
    ("POST", "/api/v1/rules"),
    ("GET", "/api/v1/alerts"),
    ("POST", "/api/v1/alerts"),
    ("GET", "/api/v2/alerts"),
    ("POST", "/api/v2/alerts"),
    ("GET", "/api/v2/alerts/groups"),
    ("GET", "/api/v2/silences"),
    ("POST", "/api/v2/silences"),
    ("GET", "/api/v2/silence/not-a-uuid"),
    ("DELETE", "/api/v2/silence/00000000-0000-0000-0000-000000000000"),
    ("GET", "/api/v2/status"),
    ("GET", "/api/v2/receivers"),
    ("POST", "/api/v1/alerting/ingest"),
    ("GET", "/api/v1/alerting/acks"),
    ("POST", "/api/v1/alerting/acks"),
    ("DELETE", "/api/v1/alerting/acks"),
    ("GET", "/api/v1/alerting/ack"),
    ("POST", "/api/v1/alerting/ack"),
    ("GET", "/api/v1/alerting/history"),
    ("GET", "/api/v1/alerting/stats"),
    ("GET", "/api/v1/alerting/escalations"),
    ("GET", "/api/v1/alerting/delivery-failures"),
    ("DELETE", "/api/v1/alerting/delivery-failures"),
    ("POST", "/api/v1/alerting/templates/preview"),
    ("POST", "/api/v1/alerting/receivers/nobody/test"),
    ("POST", "/api/v1/alerting/routes/test"),
    ("GET", "/api/v1/alerting/config"),
    ("GET", "/metrics"),
    ("GET", "/-/healthy"),
    ("GET", "/-/ready"),
];

/// Query strings no route should choke on.
const ABSURD_PARAMS: &[&str] = &[
    "query=up&time=1e400&start=-9e99&end=NaN&step=0.0000001&limit=-1&lookback_delta=-5m",
    "query=%FF%FE%00&match[]=%7B&match[]=up%7Bjob%3D~%22(%22%7D&start=abc&end=%00",
    "query=sum(rate(x%5B100y%5D))&start=0&end=99999999999&step=1&limit=99999999999999999999",
    "filter=%ZZ&active=maybe&silenced=2&inhibited=&receiver=(&matchers=%7B%7D",
    "tenant=..&group=%00&expires=-1&token=zz&from=yesterday&to=1e999&limit=-3",
    "type=alert&rule_name[]=%FF&group_limit=0&exclude_alerts=maybe",
];

fn deep_json(n: usize) -> Vec<u8> {
    format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()
}

/// Whether an answer is a 5xx the input caused. 503 is right for a query
/// that ran out of time (Prometheus answers so too); the battery sends none
/// on purpose, but absurd ranges may get there.
fn input_caused_server_error(status: u16, body: &[u8]) -> bool {
    status >= 500 && !(status == 503 && String::from_utf8_lossy(body).contains("timed out"))
}

/// Answers of the JSON APIs are JSON, errors included.
fn well_formed(path: &str, status: u16, body: &[u8]) -> bool {
    let json_api = path.starts_with("/api/v1/")
        && !path.starts_with("/api/v1/write")
        && !path.starts_with("/api/v1/push")
        && !path.starts_with("/api/v1/alerting/ack");
    let json_api = json_api || path.starts_with("/api/v2/");
    // Alertmanager answers a successful POST of alerts with an empty 200.
    if !json_api || status == 404 || status == 405 || status == 413 || (status < 300 && body.is_empty()) {
        return true;
    }
    serde_json::from_slice::<Value>(body).is_ok()
}

#[test]
fn every_route_survives_a_battery_of_bad_requests() {
    let f = Fenghuo::start();
    let mut rng = Rng::new(0x5eed_f00d_1234_5678);
    let huge = vec![b'a'; 8 << 20];
    let mut failures = Vec::new();
    for (method, path) in ROUTES {
        let mut bodies: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
            ("empty", None, Vec::new()),
            ("garbage", None, rng.bytes(1024)),
            ("garbage as JSON", JSON, rng.bytes(4096)),
            ("garbage as form", FORM, rng.bytes(512)),
            ("invalid UTF-8 JSON", JSON, b"{\"a\":\"\xff\xfe\"}".to_vec()),
            ("deeply nested JSON", JSON, deep_json(100_000)),
            (
                "wrong JSON types",
                JSON,
                b"{\"alerts\":7,\"labels\":[1],\"matchers\":\"x\"}".to_vec(),
            ),
            ("huge", JSON, huge.clone()),
            (
                "protobuf content type",
                Some("application/x-protobuf"),
                rng.bytes(2048),
            ),
            ("text", Some("text/plain"), b"hello".to_vec()),
        ];
        if *method == "GET" || *method == "DELETE" {
            bodies.truncate(2);
        }
        for (what, ct, body) in bodies {
            // A huge body goes once: it is about body limits, not parameters.
            let variants = if what == "huge" { 0 } else { ABSURD_PARAMS.len() };
            for params in std::iter::once("").chain(ABSURD_PARAMS.iter().take(variants).copied()) {
                let target = if params.is_empty() {
                    path.to_string()
                } else {
                    format!("{path}?{params}")
                };
                let (status, resp) = match try_send(&f, method, &target, ct, body.clone()) {
                    Ok(r) => r,
                    // A server may answer 413 and close before a huge body is sent; it must
                    // still be serving (checked after the route).
                    Err(_) if what == "huge" => continue,
                    Err(e) => {
                        failures.push(format!("{method} {target} ({what}): {e}"));
                        continue;
                    }
                };
                if input_caused_server_error(status, &resp) || !well_formed(path, status, &resp) {
                    failures.push(format!(
                        "{method} {target} ({what}): {status} {}",
                        String::from_utf8_lossy(&resp[..resp.len().min(300)])
                    ));
                }
            }
        }
        assert_alive(&f, &format!("the battery of {method} {path}"));
    }
    assert!(
        failures.is_empty(),
        "{} bad answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn seeded_mutations_of_valid_requests_never_crash_or_fail_as_server_errors() {
    let f = Fenghuo::start();
    let mut rng = Rng::new(0xdead_beef_cafe_f00d);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let write = {
        use fenghuo_proto::Message;
        let req = common::v1_request(&[(
            vec![("__name__", "up"), ("job", "a"), ("instance", "b")],
            vec![(now, 1.0), (now + 1, 2.0)],
        )]);
        snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap_or_default()
    };
    let alert = br#"[{"labels":{"alertname":"A","job":"x"},"annotations":{"s":"{{ .Labels }}"},"startsAt":"2026-01-01T00:00:00Z"}]"#;
    let silence = br#"{"matchers":[{"name":"a","value":"b","isRegex":false,"isEqual":true}],"startsAt":"2026-01-01T00:00:00Z","endsAt":"2027-01-01T00:00:00Z","createdBy":"x","comment":"y"}"#;
    let preview = br#"{"template":"{{#each alerts}}{{labels.alertname}} {{/each}}{{> email.subject}}"}"#;
    let query = "sum by (job) (rate(up{job=~\"a|b\"}[5m])) / on(job) group_left count(up) > 0.5";
    let mut failures = Vec::new();
    for i in 0..400 {
        let (method, path, ct, base): (&str, &str, Option<&str>, Vec<u8>) = match i % 5 {
            0 => (
                "POST",
                "/api/v1/write",
                Some("application/x-protobuf"),
                write.clone(),
            ),
            1 => ("POST", "/api/v2/alerts", JSON, alert.to_vec()),
            2 => ("POST", "/api/v2/silences", JSON, silence.to_vec()),
            3 => (
                "POST",
                "/api/v1/alerting/templates/preview",
                JSON,
                preview.to_vec(),
            ),
            _ => ("POST", "/api/v1/query", FORM, form(&[("query", query)])),
        };
        let body = rng.mutate(&base, &[]);
        let (status, resp) = send(&f, method, path, ct, body);
        if input_caused_server_error(status, &resp) || !well_formed(path, status, &resp) {
            failures.push(format!(
                "#{i} {method} {path}: {status} {}",
                String::from_utf8_lossy(&resp[..resp.len().min(300)])
            ));
        }
    }
    assert_alive(&f, "the mutations");
    assert!(
        failures.is_empty(),
        "{} bad answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Writes still work after all that (a series the mutants cannot have touched).
    let fresh = {
        use fenghuo_proto::Message;
        let req = common::v1_request(&[(vec![("__name__", "after_the_mutants")], vec![(now, 1.0)])]);
        snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap_or_default()
    };
    let (status, body) = send(&f, "POST", "/api/v1/write", Some("application/x-protobuf"), fresh);
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
}
