//! An exposed fenghuo: HTTPS with a certificate made for the test, HTTP
//! basic auth with bcrypt hashes, and users confined to their tenants — over
//! real HTTP clients and a real Prometheus remote-writing through TLS with
//! credentials.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Fenghuo, Prometheus, TestSeries, wait_for};
use fenghuo_proto::{Message, rw1};
use serde_json::Value;

struct Tls {
    cert_pem: String,
    _dir: tempfile::TempDir,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn make_cert() -> Tls {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("tls.crt");
    let key_path = dir.path().join("tls.key");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    Tls {
        cert_pem: cert.cert.pem(),
        _dir: dir,
        cert: cert_path,
        key: key_path,
    }
}

fn client(tls: &Tls) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(tls.cert_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn start(tls: &Tls, dir: &Path) -> Fenghuo {
    // Cost 4 keeps the test fast; production hashes use 10 or more.
    let alice = bcrypt::hash("alice-secret", 4).unwrap();
    let ops = bcrypt::hash("ops-secret", 4).unwrap();
    let config = format!(
        "server:\n  tls:\n    cert_file: {}\n    key_file: {}\n  auth:\n    users:\n      - username: alice\n        password_hash: '{alice}'\n        tenants: [team-a]\n      - username: ops\n        password_hash: '{ops}'\n        admin: true\n",
        tls.cert.display(),
        tls.key.display()
    );
    let path = dir.join("fenghuo.yml");
    std::fs::write(&path, config).unwrap();
    let node = Fenghuo::spawn(
        &dir.join("data"),
        &["--config.file", path.to_str().unwrap()],
        "https",
    );
    node.wait_ready_with(&client(tls));
    node
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn write_body(series: &[TestSeries]) -> Vec<u8> {
    let req = rw1::WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| rw1::TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| rw1::Label {
                        name: n.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|(t, v)| rw1::Sample {
                        timestamp: *t,
                        value: *v,
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

#[test]
fn https_basic_auth_and_tenant_confinement() {
    let tls = make_cert();
    let dir = tempfile::tempdir().unwrap();
    let node = start(&tls, dir.path());
    let c = client(&tls);

    // Probes stay open; everything else needs credentials.
    assert_eq!(c.get(node.url("/-/healthy")).send().unwrap().status(), 200);
    let anonymous = c.get(node.url("/api/v1/labels")).send().unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let wrong = c
        .get(node.url("/api/v1/labels"))
        .basic_auth("alice", Some("guess"))
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // Plain HTTP on the TLS port gets nowhere.
    let plain = common::http()
        .get(format!("http://127.0.0.1:{}/-/healthy", node.port))
        .send();
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));

    let t = now_ms();
    let post = |user: &str, password: &str, tenant: Option<&str>| {
        let mut r = c
            .post(node.url("/api/v1/write"))
            .basic_auth(user, Some(password))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .body(write_body(&[(
                vec![("__name__", "confined"), ("by", user)],
                vec![(t, 1.0)],
            )]));
        if let Some(tenant) = tenant {
            r = r.header("X-Scope-OrgID", tenant);
        }
        r.send().unwrap()
    };
    // alice may only use team-a, which she gets when she names no tenant.
    assert_eq!(post("alice", "alice-secret", None).status(), 204);
    let forbidden = post("alice", "alice-secret", Some("team-b"));
    assert_eq!(forbidden.status(), 403);
    assert!(
        forbidden
            .text()
            .unwrap()
            .contains("may not access tenant \"team-b\"")
    );
    // ops may use any tenant.
    assert_eq!(post("ops", "ops-secret", Some("team-b")).status(), 204);

    let series = |user: &str, password: &str, tenant: &str| -> Value {
        c.get(node.url("/api/v1/series"))
            .basic_auth(user, Some(password))
            .header("X-Scope-OrgID", tenant)
            .query(&[("match[]", "confined")])
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let a = series("ops", "ops-secret", "team-a");
    assert_eq!(a["data"][0]["by"], "alice", "{a}");
    let b = series("ops", "ops-secret", "team-b");
    assert_eq!(b["data"][0]["by"], "ops", "{b}");
    assert_eq!(b["data"].as_array().unwrap().len(), 1, "{b}");
    let own = series("alice", "alice-secret", "team-a");
    assert_eq!(own["data"].as_array().unwrap().len(), 1, "{own}");
    // Changing what the server runs takes an admin: reloading, and sending test
    // notifications through configured receivers.
    for (path, user, password, want) in [
        ("/-/reload", "alice", "alice-secret", 403),
        (
            "/api/v1/alerting/receivers/any/test",
            "alice",
            "alice-secret",
            403,
        ),
        ("/-/reload", "ops", "ops-secret", 200),
        ("/api/v1/alerting/receivers/any/test", "ops", "ops-secret", 404),
    ] {
        let r = c
            .post(node.url(path))
            .basic_auth(user, Some(password))
            .send()
            .unwrap();
        assert_eq!(
            r.status(),
            want,
            "{user} {path}: {}",
            r.text().unwrap_or_default()
        );
    }
    // One tenant rule everywhere: reserved (__) IDs and characters outside Mimir's set are
    // refused by every API (HTTP itself trims spaces around a header value).
    for path in [
        "/api/v1/labels",
        "/api/v2/alerts",
        "/api/v1/rules",
        "/api/v1/alerting/history",
    ] {
        for tenant in ["__fenghuo", "team a", "team/a"] {
            let r = c
                .get(node.url(path))
                .basic_auth("ops", Some("ops-secret"))
                .header("X-Scope-OrgID", tenant)
                .send()
                .unwrap();
            assert_eq!(r.status(), 400, "{path} {tenant:?}");
        }
    }
    // Secrets stay out of the log.
    assert!(
        !node.log().contains("alice-secret") && !node.log().contains("$2"),
        "{}",
        node.log()
    );
}

/// An unknown user is checked against a decoy hash: refusing it takes as long as refusing a
/// known user's wrong password (bcrypt dominates both; without the decoy an unknown name was
/// refused without hashing, which told an attacker which names exist).
#[test]
fn unknown_users_take_as_long_as_wrong_passwords() {
    let tls = make_cert();
    let dir = tempfile::tempdir().unwrap();
    // A cost high enough that the hash, not the network, dominates.
    let hash = bcrypt::hash("right", 10).unwrap();
    let config = format!(
        "server:\n  tls:\n    cert_file: {}\n    key_file: {}\n  auth:\n    users:\n      - username: known\n        password_hash: '{hash}'\n",
        tls.cert.display(),
        tls.key.display()
    );
    let path = dir.path().join("fenghuo.yml");
    std::fs::write(&path, config).unwrap();
    let node = Fenghuo::spawn(
        &dir.path().join("data"),
        &["--config.file", path.to_str().unwrap()],
        "https",
    );
    node.wait_ready_with(&client(&tls));
    let c = client(&tls);
    let median = |user: &str| {
        let mut times: Vec<Duration> = (0..5)
            .map(|i| {
                let started = std::time::Instant::now();
                let r = c
                    .get(node.url("/api/v1/labels"))
                    .basic_auth(user, Some(format!("wrong-{i}")))
                    .send()
                    .unwrap();
                assert_eq!(r.status(), 401);
                started.elapsed()
            })
            .collect();
        times.sort();
        times[2]
    };
    let known = median("known");
    let unknown = median("nobody");
    assert!(
        unknown * 2 > known,
        "unknown user refused in {unknown:?}, a wrong password in {known:?}"
    );
}

#[test]
fn prometheus_remote_writes_over_tls_with_credentials() {
    let tls = make_cert();
    let dir = tempfile::tempdir().unwrap();
    let node = start(&tls, dir.path());
    let config = format!(
        r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:{{{{port}}}}']
remote_write:
  - url: {url}
    basic_auth:
      username: alice
      password: alice-secret
    tls_config:
      ca_file: {ca}
    queue_config:
      batch_send_deadline: 500ms
"#,
        url = node.url("/api/v1/write"),
        ca = tls.cert.display()
    );
    let _prom = Prometheus::start(&config, &[]);
    let c = client(&tls);
    wait_for(
        "Prometheus's samples to arrive in team-a",
        Duration::from_secs(60),
        || {
            let answer: Value = c
                .get(node.url("/api/v1/query"))
                .basic_auth("ops", Some("ops-secret"))
                .header("X-Scope-OrgID", "team-a")
                .query(&[("query", "up{job=\"prometheus\"}")])
                .send()
                .ok()?
                .json()
                .ok()?;
            (answer["data"]["result"][0]["value"][1] == "1").then_some(())
        },
    );
}
