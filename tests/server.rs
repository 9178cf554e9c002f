//! The `fenghuo` binary as a real process: operational endpoints,
//! durability across `kill -9`, graceful shutdown, tenant isolation and
//! query-side bad input, over real HTTP on 127.0.0.1.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{Fenghuo, get_json, http, remote_write_v1, remote_write_v1_request, v1_request};
use fenghuo_proto::rw1;
use serde_json::json;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn operational_endpoints_answer() {
    let node = Fenghuo::start();
    let c = http();
    // A fresh node lists every layer's metrics before any write, query or alert.
    let fresh = c.get(node.url("/metrics")).send().unwrap().text().unwrap();
    for name in [
        "fenghuo_storage_active_series",
        "fenghuo_storage_samples_appended_total{type=\"float\"}",
        "fenghuo_storage_checkpoint_duration_seconds",
        "fenghuo_raft_proposals_total 0",
        "fenghuo_raft_entries_proposed_total 0",
        "fenghuo_ingest_received_bytes_total",
        "fenghuo_query_samples_loaded_total",
        "fenghuo_query_duration_seconds_count{kind=\"range\"} 0",
        "fenghuo_ingest_request_duration_seconds_count{protocol=\"2.0\"} 0",
        "fenghuo_alerting_alerts{state=\"active\"}",
        "fenghuo_alerting_tick_duration_seconds",
        "fenghuo_ruler_evaluation_duration_seconds",
        "fenghuo_ruler_config_last_reload_successful 1",
    ] {
        assert!(
            fresh.contains(name),
            "a fresh node's /metrics lacks {name}:\n{fresh}"
        );
    }
    let healthy = c.get(node.url("/-/healthy")).send().unwrap();
    assert_eq!(healthy.status(), 200);
    assert_eq!(c.get(node.url("/-/ready")).send().unwrap().status(), 200);
    // Write something so the ingest metrics have samples.
    let t = now_ms();
    let (status, body) = remote_write_v1(
        &node.url("/api/v1/write"),
        None,
        &[(vec![("__name__", "m")], vec![(t, 1.0)])],
    );
    assert_eq!(status, 204, "{body}");
    let metrics = c.get(node.url("/metrics")).send().unwrap().text().unwrap();
    for name in [
        "fenghuo_ingest_requests_total",
        "fenghuo_ingest_written_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        // The write went through the shard's (one-member) Raft group.
        "fenghuo_raft_proposals_total 1",
        "fenghuo_raft_entries_proposed_total 1",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    let build = get_json(&node.url("/api/v1/status/buildinfo"), &[]);
    assert_eq!(build["status"], "success");
    assert!(build["data"]["version"].is_string());
}

/// A config file selecting the store's replicator.
fn replicator_config(dir: &std::path::Path, replicator: &str) -> String {
    let path = dir.join(format!("{replicator}.yml"));
    std::fs::write(
        &path,
        format!("storage:\n  replicator: {replicator}\n  shards: 4\n"),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

/// Sends 200 writes of five series from four concurrent senders (so the
/// Raft replicator coalesces proposals); all must be acknowledged.
fn write_durable_batches(node: &Fenghuo, base: i64) {
    std::thread::scope(|s| {
        for sender in 0..4i64 {
            s.spawn(move || {
                for k in 0..50i64 {
                    let i = sender * 50 + k;
                    let series: Vec<_> = (0..5)
                        .map(|s| (format!("s{s}"), vec![(base + i * 100, (i * 10 + s) as f64)]))
                        .collect();
                    let borrowed: Vec<_> = series
                        .iter()
                        .map(|(n, samples)| {
                            (
                                vec![("__name__", "durable"), ("series", n.as_str())],
                                samples.clone(),
                            )
                        })
                        .collect();
                    let (status, body) = remote_write_v1(&node.url("/api/v1/write"), None, &borrowed);
                    assert_eq!(status, 204, "{body}");
                }
            });
        }
    });
}

/// Each of the five series holds `want` samples up to `base + 200 * 100`.
fn assert_durable_count(node: &Fenghuo, base: i64, want: usize) {
    let at = (base + 200 * 100) as f64 / 1000.0;
    let answer = node.query("count_over_time(durable[5m])", at);
    assert_eq!(answer["status"], "success", "{answer}");
    let result = answer["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 5, "{answer}");
    for series in result {
        assert_eq!(
            series["value"][1],
            want.to_string(),
            "series {} lost samples",
            series["metric"]
        );
    }
}

/// Every write answered 2xx is there after `kill -9` and a restart, on
/// either replicator.
#[test]
fn acknowledged_writes_survive_kill_9() {
    for replicator in ["local", "raft"] {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let config = replicator_config(tmp.path(), replicator);
        let args = ["--config.file", config.as_str()];
        let mut node = Fenghuo::start_in(&data, &args);
        let base = now_ms() - 60_000;
        write_durable_batches(&node, base);
        node.kill9();
        let node = Fenghuo::start_in(&data, &args);
        assert_durable_count(&node, base, 200);
    }
}

/// A node that ran on the local log keeps its data when restarted on Raft,
/// also after `kill -9` (part of the data only in the local log).
#[test]
fn a_node_moves_from_the_local_log_to_raft_with_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let local = replicator_config(tmp.path(), "local");
    let raft = replicator_config(tmp.path(), "raft");
    let mut node = Fenghuo::start_in(&data, &["--config.file", local.as_str()]);
    let base = now_ms() - 60_000;
    write_durable_batches(&node, base);
    node.kill9();
    let mut node = Fenghuo::start_in(&data, &["--config.file", raft.as_str()]);
    assert_durable_count(&node, base, 200);
    assert!(
        !data.join("tsdb/shard-0000/log").exists(),
        "the local log was moved into the store"
    );
    // And it keeps working on Raft: more writes, another kill -9.
    write_durable_batches(&node, base - 30_000);
    node.kill9();
    let node = Fenghuo::start_in(&data, &["--config.file", raft.as_str()]);
    assert_durable_count(&node, base, 400);
}

#[test]
fn graceful_shutdown_exits_cleanly_and_keeps_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut node = Fenghuo::start_in(&data, &[]);
    let t = now_ms();
    let (status, _) = remote_write_v1(
        &node.url("/api/v1/write"),
        None,
        &[(vec![("__name__", "kept")], vec![(t, 42.0)])],
    );
    assert_eq!(status, 204);
    let exit = node.stop();
    assert!(exit.success(), "fenghuo exited with {exit}:\n{}", node.log());
    let node = Fenghuo::start_in(&data, &[]);
    let answer = node.query("kept", t as f64 / 1000.0);
    assert_eq!(answer["data"]["result"][0]["value"][1], "42", "{answer}");
}

#[test]
fn tenants_never_see_each_other() {
    let node = Fenghuo::start();
    let t = now_ms();
    let write = |tenant: &str, value: f64| {
        let (status, body) = remote_write_v1(
            &node.url("/api/v1/write"),
            Some(tenant),
            &[(vec![("__name__", "secret"), ("owner", tenant)], vec![(t, value)])],
        );
        assert_eq!(status, 204, "{body}");
    };
    write("bank-a", 1.0);
    write("bank-b", 2.0);
    // bank-a also sends a counter with metadata and an exemplar.
    let mut req = v1_request(&[(
        vec![("__name__", "secret_total"), ("owner", "bank-a")],
        vec![(t, 5.0)],
    )]);
    req.timeseries[0].exemplars.push(rw1::Exemplar {
        labels: vec![rw1::Label {
            name: "trace_id".into(),
            value: "a1b2".into(),
        }],
        value: 5.0,
        timestamp: t,
    });
    req.metadata.push(rw1::MetricMetadata {
        r#type: 1,
        metric_family_name: "secret_total".into(),
        help: "bank-a's counter".into(),
        unit: String::new(),
    });
    let (status, body) = remote_write_v1_request(&node.url("/api/v1/write"), Some("bank-a"), &req);
    assert_eq!(status, 204, "{body}");
    let ask = |tenant: &str, path: &str, params: &[(&str, &str)]| -> serde_json::Value {
        http()
            .get(node.url(path))
            .query(params)
            .header("X-Scope-OrgID", tenant)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let time = format!("{}", t as f64 / 1000.0);
    let a = ask("bank-a", "/api/v1/query", &[("query", "secret"), ("time", &time)]);
    assert_eq!(a["data"]["result"].as_array().unwrap().len(), 1, "{a}");
    assert_eq!(a["data"]["result"][0]["metric"]["owner"], "bank-a");
    let values = ask("bank-b", "/api/v1/label/owner/values", &[]);
    assert_eq!(values["data"], json!(["bank-b"]));
    let series = ask("bank-c", "/api/v1/series", &[("match[]", "secret")]);
    assert_eq!(series["data"], json!([]));
    let anonymous = node.query("secret", t as f64 / 1000.0);
    assert_eq!(anonymous["data"]["result"], json!([]));
    // Every read endpoint: bank-a sees its own data, bank-b none of it.
    let (start, end) = (format!("{}", t / 1000 - 60), format!("{}", t / 1000 + 60));
    let window = [("start", start.as_str()), ("end", end.as_str())];
    let range = |tenant: &str| {
        ask(
            tenant,
            "/api/v1/query_range",
            &[("query", "secret_total"), ("step", "15"), window[0], window[1]],
        )["data"]["result"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!((range("bank-a"), range("bank-b")), (1, 0));
    let series =
        |tenant: &str| ask(tenant, "/api/v1/series", &[("match[]", "{owner=\"bank-a\"}")])["data"].clone();
    assert_eq!(series("bank-a").as_array().map_or(0, Vec::len), 2);
    assert_eq!(series("bank-b"), json!([]));
    let names = |tenant: &str| ask(tenant, "/api/v1/label/__name__/values", &[])["data"].clone();
    assert_eq!(names("bank-a"), json!(["secret", "secret_total"]));
    assert_eq!(names("bank-b"), json!(["secret"]));
    let labels = ask("bank-b", "/api/v1/labels", &[("match[]", "secret_total")]);
    assert_eq!(labels["data"], json!([]), "{labels}");
    let metadata = |tenant: &str| ask(tenant, "/api/v1/metadata", &[])["data"].clone();
    assert_eq!(
        metadata("bank-a")["secret_total"],
        json!([{"type": "counter", "help": "bank-a's counter", "unit": ""}])
    );
    assert_eq!(metadata("bank-b"), json!({}));
    let exemplars = |tenant: &str| {
        ask(
            tenant,
            "/api/v1/query_exemplars",
            &[("query", "secret_total"), window[0], window[1]],
        )["data"]
            .clone()
    };
    let a = exemplars("bank-a");
    assert_eq!(a[0]["exemplars"][0]["labels"], json!({"trace_id": "a1b2"}), "{a}");
    assert_eq!(exemplars("bank-b"), json!([]));
    let status = |tenant: &str| ask(tenant, "/api/v1/status/tsdb", &[])["data"].clone();
    let (a, b) = (status("bank-a"), status("bank-b"));
    assert_eq!(a["headStats"]["numSeries"], 2, "{a}");
    assert_eq!(b["headStats"]["numSeries"], 1, "{b}");
    assert_eq!(
        b["seriesCountByMetricName"],
        json!([{"name": "secret", "value": 1}]),
        "{b}"
    );
}

/// Bad queries get Prometheus's error types and status codes; the node keeps
/// serving and stored data is unharmed.
#[test]
fn query_bad_input_battery() {
    let node = Fenghuo::start();
    let t = now_ms();
    let (status, _) = remote_write_v1(
        &node.url("/api/v1/write"),
        None,
        &[(vec![("__name__", "up")], vec![(t, 1.0)])],
    );
    assert_eq!(status, 204);
    let c = http();
    /// path, parameters, status, errorType, text the error must contain.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str, &'a str);
    let cases: &[Case] = &[
        (
            "/api/v1/query",
            &[("query", "sum(")],
            400,
            "bad_data",
            "invalid parameter \"query\"",
        ),
        (
            "/api/v1/query",
            &[("query", "up"), ("time", "yesterday")],
            400,
            "bad_data",
            "invalid parameter \"time\"",
        ),
        (
            "/api/v1/query",
            &[("query", "")],
            400,
            "bad_data",
            "invalid parameter \"query\"",
        ),
        (
            "/api/v1/query_range",
            &[("query", "up"), ("start", "100"), ("end", "10"), ("step", "1")],
            400,
            "bad_data",
            "end timestamp must not be before start time",
        ),
        (
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "0"),
                ("end", "100000000"),
                ("step", "1"),
            ],
            400,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries",
        ),
        (
            "/api/v1/query_range",
            &[("query", "up"), ("start", "0"), ("end", "10"), ("step", "-5")],
            400,
            "bad_data",
            "zero or negative query resolution step widths are not accepted",
        ),
        (
            "/api/v1/query_range",
            &[("query", "up"), ("start", "0"), ("end", "10"), ("step", "1e300")],
            400,
            "bad_data",
            "overflows int64",
        ),
        (
            "/api/v1/series",
            &[],
            400,
            "bad_data",
            "no match[] parameter provided",
        ),
        (
            "/api/v1/series",
            &[("match[]", "{job=~\".*\"}")],
            400,
            "bad_data",
            "non-empty matcher",
        ),
        (
            "/api/v1/labels",
            &[("match[]", "up{")],
            400,
            "bad_data",
            "parse error",
        ),
        (
            "/api/v1/status/tsdb",
            &[("limit", "0")],
            400,
            "bad_data",
            "limit must be a positive number",
        ),
        (
            "/api/v1/query",
            &[("query", "up"), ("limit", "-1")],
            400,
            "bad_data",
            "limit must be non-negative",
        ),
    ];
    for (path, params, status, error_type, needle) in cases {
        let resp = c.get(node.url(path)).query(params).send().unwrap();
        assert_eq!(resp.status().as_u16(), *status, "{path} {params:?}");
        let body: serde_json::Value = resp.json().unwrap();
        assert_eq!(body["status"], "error", "{path} {params:?}: {body}");
        assert_eq!(body["errorType"], *error_type, "{path} {params:?}: {body}");
        let msg = body["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains(needle),
            "{path} {params:?}: {msg:?} lacks {needle:?}"
        );
    }
    let answer = node.query("up", t as f64 / 1000.0);
    assert_eq!(answer["data"]["result"][0]["value"][1], "1", "{answer}");
}

/// `lookback_delta`, `stats` and `timeout` query parameters behave as in
/// Prometheus.
#[test]
fn query_parameters_are_honoured() {
    let node = Fenghuo::start();
    let t = now_ms();
    let old = t - 10 * 60_000;
    let (status, _) = remote_write_v1(
        &node.url("/api/v1/write"),
        None,
        &[(vec![("__name__", "old")], vec![(old, 3.0)])],
    );
    assert_eq!(status, 204);
    let time = format!("{}", t as f64 / 1000.0);
    let default = get_json(&node.url("/api/v1/query"), &[("query", "old"), ("time", &time)]);
    assert_eq!(
        default["data"]["result"],
        json!([]),
        "beyond the 5m lookback: {default}"
    );
    let longer = get_json(
        &node.url("/api/v1/query"),
        &[("query", "old"), ("time", &time), ("lookback_delta", "15m")],
    );
    assert_eq!(longer["data"]["result"][0]["value"][1], "3", "{longer}");
    let stats = get_json(
        &node.url("/api/v1/query"),
        &[
            ("query", "old"),
            ("time", &time),
            ("lookback_delta", "15m"),
            ("stats", "all"),
        ],
    );
    assert_eq!(
        stats["data"]["stats"]["samples"]["totalQueryableSamples"], 1,
        "{stats}"
    );
    assert!(
        stats["data"]["stats"]["timings"]["evalTotalTime"].is_number(),
        "{stats}"
    );
    let resp = http()
        .get(node.url("/api/v1/query"))
        .query(&[("query", "old"), ("time", time.as_str()), ("timeout", "0s")])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["errorType"], "timeout", "{body}");
}

/// The requests Grafana's Prometheus datasource makes (POST form bodies,
/// `match[]` on label lookups, buildinfo and metadata probes) get
/// Prometheus's answers.
#[test]
fn grafana_style_requests() {
    let node = Fenghuo::start();
    // Whole seconds, so the instant query at `end` lands on the last sample.
    let t = now_ms() / 1000 * 1000;
    let series: Vec<_> = (0..3)
        .map(|i| {
            (
                vec![
                    ("__name__", "http_requests_total"),
                    ("code", ["200", "404", "500"][i]),
                    ("job", "api"),
                ],
                vec![
                    (t - 60_000, 10.0 * i as f64),
                    (t - 30_000, 20.0 * i as f64),
                    (t, 30.0 * i as f64),
                ],
            )
        })
        .collect();
    let (status, body) = remote_write_v1(&node.url("/api/v1/write"), None, &series);
    assert_eq!(status, 204, "{body}");
    let c = http();
    let form = |path: &str, params: &[(&str, &str)]| -> serde_json::Value {
        let resp = c.post(node.url(path)).form(params).send().unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        resp.json().unwrap()
    };
    let (start, end) = (format!("{}", (t - 60_000) / 1000), format!("{}", t / 1000));
    let range = form(
        "/api/v1/query_range",
        &[
            ("query", "sum by (code) (rate(http_requests_total[1m]))"),
            ("start", &start),
            ("end", &end),
            ("step", "15"),
        ],
    );
    assert_eq!(range["data"]["resultType"], "matrix", "{range}");
    assert_eq!(range["data"]["result"].as_array().unwrap().len(), 3, "{range}");
    let labels = form(
        "/api/v1/labels",
        &[
            ("match[]", "http_requests_total"),
            ("start", &start),
            ("end", &end),
        ],
    );
    assert_eq!(labels["data"], json!(["__name__", "code", "job"]));
    let values = form(
        "/api/v1/series",
        &[("match[]", "http_requests_total{code=~\"4..|5..\"}")],
    );
    assert_eq!(values["data"].as_array().unwrap().len(), 2, "{values}");
    let names = get_json(&node.url("/api/v1/label/__name__/values"), &[]);
    assert_eq!(names["data"], json!(["http_requests_total"]));
    let instant = form(
        "/api/v1/query",
        &[("query", "http_requests_total{code=\"500\"}"), ("time", &end)],
    );
    assert_eq!(
        instant["data"]["result"][0]["value"],
        json!([t / 1000, "60"]),
        "{instant}"
    );
    let exemplars = form(
        "/api/v1/query_exemplars",
        &[("query", "http_requests_total"), ("start", &start), ("end", &end)],
    );
    assert_eq!(exemplars["data"], json!([]));
    let formatted = form("/api/v1/format_query", &[("query", "sum(rate(x[5m]))by(job)")]);
    assert_eq!(formatted["data"], "sum by (job) (rate(x[5m]))");
    // Grafana's metric and label browsers pass `limit` and show Prometheus's warning.
    let limited = get_json(&node.url("/api/v1/label/code/values"), &[("limit", "2")]);
    assert_eq!(limited["data"], json!(["200", "404"]), "{limited}");
    assert_eq!(limited["warnings"], json!(["results truncated due to limit"]));
    let all = get_json(&node.url("/api/v1/label/code/values"), &[("limit", "3")]);
    assert_eq!(all["data"], json!(["200", "404", "500"]));
    assert!(all.get("warnings").is_none(), "{all}");
    let limited = form(
        "/api/v1/series",
        &[("match[]", "http_requests_total"), ("limit", "1")],
    );
    assert_eq!(limited["data"].as_array().map_or(0, Vec::len), 1, "{limited}");
    assert_eq!(limited["warnings"], json!(["results truncated due to limit"]));
    let limited = form("/api/v1/labels", &[("limit", "2")]);
    assert_eq!(limited["data"], json!(["__name__", "code"]), "{limited}");
    let parsed = form("/api/v1/parse_query", &[("query", "sum by (job) (rate(x[5m]))")]);
    assert_eq!(parsed["data"]["type"], "aggregation", "{parsed}");
    assert_eq!(parsed["data"]["op"], "sum");
    assert_eq!(parsed["data"]["grouping"], json!(["job"]));
    assert_eq!(parsed["data"]["expr"]["type"], "call");
    assert_eq!(parsed["data"]["expr"]["func"]["name"], "rate");
    let status = get_json(&node.url("/api/v1/status/tsdb"), &[]);
    let head = &status["data"]["headStats"];
    assert_eq!(head["numSeries"], 3, "{status}");
    for key in ["chunkCount", "minTime", "maxTime", "numLabelPairs"] {
        assert!(head.get(key).is_some(), "headStats lacks {key}: {status}");
    }
    assert_eq!(
        status["data"]["seriesCountByMetricName"],
        json!([{"name": "http_requests_total", "value": 3}])
    );
    assert_eq!(
        status["data"]["labelValueCountByLabelName"][0],
        json!({"name": "code", "value": 3})
    );
}

/// A sample written out of order (inside the window) is answered by queries in its place, and
/// rejected writes show up in `/metrics` by reason.
#[test]
fn out_of_order_writes_are_queried_in_order_and_rejections_counted() {
    let node = Fenghuo::start();
    let t = now_ms() / 1000 * 1000;
    let write = |samples: Vec<(i64, f64)>| {
        remote_write_v1(
            &node.url("/api/v1/write"),
            None,
            &[(vec![("__name__", "late")], samples)],
        )
    };
    assert_eq!(write(vec![(t - 60_000, 1.0), (t, 4.0)]).0, 204);
    assert_eq!(write(vec![(t - 40_000, 2.0), (t - 20_000, 3.0)]).0, 204);
    let range = get_json(
        &node.url("/api/v1/query_range"),
        &[
            ("query", "late"),
            ("start", &format!("{}", t / 1000 - 60)),
            ("end", &format!("{}", t / 1000)),
            ("step", "20"),
        ],
    );
    let values: Vec<&str> = range["data"]["result"][0]["values"]
        .as_array()
        .map(|v| v.iter().filter_map(|p| p[1].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(values, ["1", "2", "3", "4"], "{range}");
    let count = node.query("count_over_time(late[2m])", t as f64 / 1000.0);
    assert_eq!(count["data"]["result"][0]["value"][1], "4", "{count}");
    // A conflicting value for an existing timestamp is refused (400) and counted per sample;
    // an undecodable request is counted as a rejected request.
    let (status, body) = write(vec![(t - 20_000, 99.0)]);
    assert_eq!(status, 400, "{body}");
    let garbage = http()
        .post(node.url("/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .body(b"not snappy".to_vec())
        .send()
        .unwrap();
    assert_eq!(garbage.status(), 400);
    let metrics = http().get(node.url("/metrics")).send().unwrap().text().unwrap();
    for line in [
        "fenghuo_ingest_rejected_samples_total{reason=\"duplicate_timestamp\"} 1",
        "fenghuo_ingest_rejected_requests_total{reason=\"bad_snappy\"} 1",
    ] {
        assert!(metrics.contains(line), "/metrics lacks {line}:\n{metrics}");
    }
    let disk = metrics
        .lines()
        .find(|l| l.starts_with("fenghuo_storage_disk_bytes"))
        .unwrap_or_else(|| panic!("no fenghuo_storage_disk_bytes:\n{metrics}"));
    let bytes: f64 = disk
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(bytes > 0.0, "{disk}");
}

/// `log.format: json` gives one JSON object per line, with the level, the message and the
/// structured fields (what log pipelines index); text is the default.
#[test]
fn json_logs_are_one_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("fenghuo.yml");
    std::fs::write(&config, "log:\n  format: json\n  level: info\n").unwrap();
    let config = config.to_string_lossy().into_owned();
    let mut node = Fenghuo::start_in(&tmp.path().join("data"), &["--config.file", &config]);
    assert!(node.stop().success());
    let log = node.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let ready = lines
        .iter()
        .find(|l| l["fields"]["message"] == "fenghuo is ready.")
        .unwrap_or_else(|| panic!("no ready line in:\n{log}"));
    assert_eq!(ready["level"], "INFO");
    assert_eq!(ready["target"], "fenghuo::server");
    assert_eq!(ready["fields"]["listen"], format!("127.0.0.1:{}", node.port));
}
