//! Engine behaviour at the edges: error types and messages as Prometheus's
//! API reports them, limits (samples, deadline, cancellation), and a
//! battery of odd queries that must answer or fail cleanly, never panic.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use fenghuo_query::{Engine, EngineOptions, QueryControl, QueryError, Value};
use fenghuo_storage_api::api::{Appender, Querier, Queryable};
use fenghuo_storage_api::memory::MemStore;
use fenghuo_storage_api::model::{Labels, Sample, SeriesWrite, TenantId, WriteBatch, stale_nan};

fn store() -> MemStore {
    let s = MemStore::new();
    let mut b = WriteBatch::default();
    for (job, mult) in [("a", 1.0), ("b", 2.0), ("c", 3.0)] {
        b.series.push(SeriesWrite {
            labels: Labels::from_pairs([("__name__", "http_requests_total"), ("job", job)]),
            samples: (0..=60)
                .map(|i| Sample {
                    t: i * 10_000,
                    v: i as f64 * mult,
                })
                .collect(),
            ..Default::default()
        });
        b.series.push(SeriesWrite {
            labels: Labels::from_pairs([("__name__", "temp"), ("job", job)]),
            samples: vec![
                Sample { t: 0, v: mult },
                Sample { t: 10_000, v: mult },
                Sample {
                    t: 300_000,
                    v: stale_nan(),
                },
            ],
            ..Default::default()
        });
    }
    s.append(&TenantId::default_tenant(), b).unwrap();
    s
}

fn querier(s: &MemStore) -> std::sync::Arc<dyn Querier> {
    s.querier(&TenantId::default_tenant()).unwrap()
}

#[test]
fn errors_carry_prometheus_types_and_messages() {
    let s = store();
    let q = querier(&s);
    let e = Engine::new(EngineOptions::default());

    let err = e.instant(q.as_ref(), "sum(", 0).unwrap_err();
    assert!(matches!(err, QueryError::Parse(_)));
    assert_eq!((err.error_type(), err.http_status()), ("bad_data", 400));
    assert!(err.to_string().contains("parse error"), "{err}");

    let err = e
        .range(q.as_ref(), "http_requests_total[5m]", 0, 60_000, 10_000)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
    );
    assert_eq!(err.error_type(), "bad_data");

    let err = e.range(q.as_ref(), "up", 0, 60_000, 0).unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    let err = e.range(q.as_ref(), "up", 60_000, 0, 1000).unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    let err = e.range(q.as_ref(), "up", 0, 100_000_000, 1).unwrap_err();
    assert!(err.to_string().contains("11,000 points"), "{err}");

    let err = e
        .instant(q.as_ref(), "topk(scalar(vector(NaN)), http_requests_total)", 0)
        .unwrap_err();
    assert_eq!(err.to_string(), "Parameter value is NaN");
    assert_eq!((err.error_type(), err.http_status()), ("execution", 422));

    let err = e
        .instant(q.as_ref(), r#"label_replace(temp, "x", "$1", "job", "(")"#, 0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid regular expression in label_replace(): ("
    );
}

#[test]
fn sample_limit_deadline_and_cancellation() {
    let s = store();
    let q = querier(&s);
    let small = Engine::new(EngineOptions {
        max_samples: 10,
        ..Default::default()
    });
    let err = small
        .range(q.as_ref(), "http_requests_total", 0, 600_000, 10_000)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
    assert_eq!(err.error_type(), "execution");

    let e = Engine::new(EngineOptions::default());
    let expr = Engine::parse("http_requests_total").unwrap();
    let past = QueryControl {
        deadline: Some(Instant::now() - Duration::from_secs(1)),
        cancel: None,
    };
    let err = e
        .instant_expr(q.as_ref(), &expr, "http_requests_total", 0, past)
        .unwrap_err();
    assert!(matches!(err, QueryError::Timeout { .. }), "{err}");
    assert_eq!((err.error_type(), err.http_status()), ("timeout", 503));

    let cancel = AtomicBool::new(true);
    let ctl = QueryControl {
        deadline: None,
        cancel: Some(&cancel),
    };
    let err = e
        .range_expr(q.as_ref(), &expr, "http_requests_total", 0, 60_000, 10_000, ctl)
        .unwrap_err();
    assert!(matches!(err, QueryError::Canceled { .. }), "{err}");
    assert_eq!(err.error_type(), "canceled");
}

#[test]
fn results_and_annotations() {
    let s = store();
    let q = querier(&s);
    let e = Engine::new(EngineOptions::default());

    let out = e
        .instant(q.as_ref(), "sort_desc(rate(http_requests_total[1m]))", 600_000)
        .unwrap();
    let Value::Vector(v) = out.value else {
        panic!("{:?}", out.value)
    };
    let jobs: Vec<_> = v
        .iter()
        .map(|s| s.labels.get("job").unwrap_or("").to_string())
        .collect();
    assert_eq!(jobs, ["c", "b", "a"]);
    assert!(v.iter().all(|s| s.labels.get("__name__").is_none()));
    assert!(out.warnings.is_empty() && out.infos.is_empty());

    let out = e.instant(q.as_ref(), "rate(temp[5m])", 100_000).unwrap();
    assert_eq!(
        out.infos,
        vec![
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"temp\" (1:6)"
                .to_string()
        ]
    );

    // Stale markers end a series before the lookback delta runs out.
    let out = e.instant(q.as_ref(), "temp", 301_000).unwrap();
    assert_eq!(out.value, Value::Vector(Vec::new()));

    let out = e
        .range(q.as_ref(), "sum(http_requests_total)", 0, 60_000, 30_000)
        .unwrap();
    let Value::Matrix(m) = out.value else { panic!() };
    assert_eq!(m.len(), 1);
    assert_eq!(
        m[0].floats.iter().map(|p| p.v).collect::<Vec<_>>(),
        vec![0.0, 18.0, 36.0]
    );
    assert!(out.stats.peak_samples > 0 && out.stats.samples_loaded > 0);
}

#[test]
fn odd_queries_answer_or_fail_cleanly() {
    let s = store();
    let q = querier(&s);
    let e = Engine::new(EngineOptions {
        timeout: Duration::from_secs(5),
        ..Default::default()
    });
    let queries = [
        "http_requests_total offset 100000y",
        "http_requests_total offset -100000y",
        "http_requests_total @ 9999999999999",
        "http_requests_total @ -9999999999999",
        "rate(http_requests_total[100000y])",
        "rate(http_requests_total[1ms])",
        "max_over_time(http_requests_total[10m:1ms] @ 600)",
        "sum_over_time(http_requests_total[1h:7s] offset -1h)",
        "topk(1e300, http_requests_total)",
        "topk(-1, http_requests_total)",
        "quantile(NaN, http_requests_total)",
        "limit_ratio(2, http_requests_total)",
        "count_values(\"\", http_requests_total)",
        "histogram_quantile(0.5, http_requests_total)",
        "histogram_fraction(0, 1, http_requests_total)",
        "label_join(temp, \"\", \",\", \"job\")",
        "http_requests_total / on(job) group_left temp",
        "http_requests_total + ignoring(job) http_requests_total",
        "vector(1) and on() vector(2)",
        "absent(nonexistent{a=\"b\", a=\"c\"})",
        "round(temp, 0)",
        "clamp(temp, 5, 1)",
        "timestamp(temp @ 0 offset 1m)",
        "info(http_requests_total)",
        "-(-(-temp))",
        "1 / 0 + vector(-1 % 0)",
        "changes(http_requests_total[5m:1m] @ end())",
        "sum by (__name__) (http_requests_total)",
        "double_exponential_smoothing(http_requests_total[5m], 0.5, 1.5)",
        "{__name__=~\".+\"}",
        "http_requests_total[5m+1m]",
        "http_requests_total offset (1h/0)",
        "predict_linear(temp[10m], 1e308)",
    ];
    for query in queries {
        for (start, end, step) in [(600_000, 600_000, 0), (0, 600_000, 60_000)] {
            let res = if step == 0 {
                e.instant(q.as_ref(), query, start)
            } else {
                e.range(q.as_ref(), query, start, end, step)
            };
            if let Err(err) = res {
                assert!(!err.to_string().is_empty(), "{query}");
                assert!(
                    matches!(err.http_status(), 400 | 422 | 499 | 500 | 503),
                    "{query}: {err}"
                );
            }
        }
    }
}

/// Mutations of real queries (bounded fuzzing): parse, evaluate as instant
/// and range queries, format and translate; errors are fine, panics are not.
#[test]
fn mutated_queries_answer_or_fail_cleanly() {
    let s = store();
    let q = querier(&s);
    let e = Engine::new(EngineOptions {
        timeout: Duration::from_secs(2),
        ..EngineOptions::default()
    });
    let seeds: Vec<Vec<u8>> = [
        "sum by (job) (rate(http_requests_total{job=~\"a|b\"}[5m]))",
        "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))",
        "max_over_time(deriv(temp[1m])[5m:30s] offset 1m) @ start()",
        "topk(2, http_requests_total) / on(job) group_left sum(temp) > bool 1",
        "label_replace(temp, \"dst\", \"$1\", \"job\", \"(.*)\") unless absent(up)",
        "count_values(\"v\", temp) or vector(1) + scalar(time())",
        "quantile_over_time(0.5, temp[10m:1m]) and predict_linear(temp[5m], 60)",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let dictionary: &[&[u8]] = &[
        b"(",
        b")",
        b"[5m]",
        b"[1m:10s]",
        b" offset -1m",
        b" @ end()",
        b"{job!~\"\"}",
        b" or ",
        b" ^ ",
        b"sum without (job) ",
        b"-",
        b"\"",
        b"\\",
        b"1e308",
        b"NaN",
        b"Inf",
        b"@",
        b"[",
        b"{",
        b",",
    ];
    let runs = fenghuo_storage_api::fuzz::run("promql", 0x9e1, &seeds, dictionary, |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        let _ = e.instant(q.as_ref(), text, 300_000);
        let _ = e.range(q.as_ref(), text, 0, 600_000, 15_000);
        if let Ok(expr) = fenghuo_query::depth::parse(text) {
            let _ = expr.prettify();
            let _ = fenghuo_query::api::ast::translate(&expr).to_string();
        }
    });
    assert!(runs > seeds.len());
}

/// Deep nesting is refused before anything recurses on it, and whatever is
/// accepted evaluates on a thread with a small stack.
#[test]
fn deep_queries_are_refused_and_accepted_ones_evaluate_anywhere() {
    let s = store();
    let e = Engine::new(EngineOptions::default());
    let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
    let chain = vec!["temp"; 20_000].join(" + ");
    for text in [&deep, &chain] {
        let err = e.instant(querier(&s).as_ref(), text, 0).unwrap_err();
        assert_eq!(err.error_type(), "bad_data");
        assert!(err.to_string().contains("limit of 1000 levels"), "{err}");
    }
    let accepted = [
        format!("{}temp{}", "(".repeat(990), ")".repeat(990)),
        vec!["temp"; 990].join(" + "),
        format!("{}temp", "-".repeat(990)),
        format!("{}temp{}", "abs(".repeat(900), ")".repeat(900)),
    ];
    let q = querier(&s);
    let handle = std::thread::Builder::new()
        // Smaller than any thread the server runs queries on.
        .stack_size(256 << 10)
        .spawn(move || {
            for text in accepted {
                let out = e.instant(q.as_ref(), &text, 10_000);
                assert!(out.is_ok(), "{}...: {out:?}", &text[..40.min(text.len())]);
                let parsed = fenghuo_query::depth::run_with_stack(|| {
                    fenghuo_query::depth::parse(&text).map(|e| e.prettify())
                });
                assert!(parsed.is_ok());
            }
        })
        .unwrap();
    handle.join().unwrap();
}

/// The samples budget holds while series are read: storage is asked for at
/// most what is left of it, so a query over too much data fails before it
/// has loaded it all.
#[test]
fn the_samples_budget_is_enforced_while_loading() {
    struct Recording {
        inner: std::sync::Arc<dyn Querier>,
        asked: std::sync::Mutex<Vec<Option<usize>>>,
    }
    impl Querier for Recording {
        fn select(
            &self,
            m: &[fenghuo_storage_api::model::Matcher],
            h: &fenghuo_storage_api::api::SelectHints,
        ) -> Result<Vec<fenghuo_storage_api::api::Series>, fenghuo_storage_api::StorageError> {
            self.asked.lock().unwrap().push(h.max_samples);
            self.inner.select(m, h)
        }
        fn label_names(
            &self,
            s: i64,
            e: i64,
            m: &[fenghuo_storage_api::model::Matcher],
        ) -> Result<Vec<String>, fenghuo_storage_api::StorageError> {
            self.inner.label_names(s, e, m)
        }
        fn label_values(
            &self,
            n: &str,
            s: i64,
            e: i64,
            m: &[fenghuo_storage_api::model::Matcher],
        ) -> Result<Vec<String>, fenghuo_storage_api::StorageError> {
            self.inner.label_values(n, s, e, m)
        }
        fn series_labels(
            &self,
            s: i64,
            e: i64,
            m: &[fenghuo_storage_api::model::Matcher],
        ) -> Result<Vec<Labels>, fenghuo_storage_api::StorageError> {
            self.inner.series_labels(s, e, m)
        }
        fn metadata(
            &self,
            metric: Option<&str>,
        ) -> Result<Vec<fenghuo_storage_api::model::MetricMetadata>, fenghuo_storage_api::StorageError>
        {
            self.inner.metadata(metric)
        }
        fn exemplars(
            &self,
            s: i64,
            e: i64,
            sets: &[Vec<fenghuo_storage_api::model::Matcher>],
        ) -> Result<Vec<(Labels, Vec<fenghuo_storage_api::model::Exemplar>)>, fenghuo_storage_api::StorageError>
        {
            self.inner.exemplars(s, e, sets)
        }
        fn tsdb_status(
            &self,
            limit: usize,
        ) -> Result<fenghuo_storage_api::api::TsdbStatus, fenghuo_storage_api::StorageError> {
            self.inner.tsdb_status(limit)
        }
    }
    let s = store();
    let rec = Recording {
        inner: querier(&s),
        asked: std::sync::Mutex::new(Vec::new()),
    };
    let e = Engine::new(EngineOptions {
        max_samples: 100,
        ..EngineOptions::default()
    });
    // Three series of 61 samples each: more than 100 in storage.
    let err = e
        .instant(&rec, "count_over_time(http_requests_total[10m])", 600_000)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
    assert_eq!(rec.asked.lock().unwrap().as_slice(), &[Some(100)]);
    // Within the budget the same query answers.
    let e = Engine::new(EngineOptions {
        max_samples: 1000,
        ..EngineOptions::default()
    });
    assert!(
        e.instant(&rec, "count_over_time(http_requests_total[10m])", 600_000)
            .is_ok()
    );
}

/// What AFL found (SECURITY.md): promql-parser panics converting a huge range to a `Duration`.
/// Each of these is now a parse error, not a panic (a 500 over HTTP before).
#[test]
fn afl_findings_are_parse_errors() {
    let s = store();
    let e = Engine::new(EngineOptions::default());
    for q in [
        "sum by (job) (rate(up{job=~\"{|b\"}[5555555555555555555555555]))",
        "{yif=~\"|| >[0l])|mm?80sZ\tzbcqk(b\"}[72/7:86766738888888878797]",
        "rate(up[5555555555555E55555 ])",
    ] {
        let err = e.instant(querier(&s).as_ref(), q, 0).unwrap_err();
        assert_eq!(err.error_type(), "bad_data", "{q}: {err}");
    }
}
