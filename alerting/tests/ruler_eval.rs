//! The ruler's evaluation semantics driven by a manual clock: recording results written back and
//! queryable, stale markers, the alert state machine with `for`, `keep_firing_for`, resolved
//! alerts and the resend delay, `ALERTS`/`ALERTS_FOR_STATE`, `for` restoration after a restart,
//! slotted timestamps and missed iterations, failing rules, reloads, and the real TSDB.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use fenghuo_alerting::ruler::group::Group;
use fenghuo_alerting::ruler::{
    Backend, Notifier, OutgoingAlert, RulerConfig, RulerOptions, RulerService, metrics,
};
use fenghuo_alerting::{Clock, ManualClock};
use fenghuo_query::{Engine, EngineOptions, PointValue};
use fenghuo_storage::api::{Appender, Queryable};
use fenghuo_storage::memory::MemStore;
use fenghuo_storage::model::PromDuration;
use fenghuo_storage::model::{Labels, Sample, SeriesWrite, TenantId, WriteBatch, stale_nan};
use parking_lot::Mutex;

#[derive(Default)]
struct Sink(Mutex<Vec<(String, OutgoingAlert)>>);

impl Notifier for Sink {
    fn send(&self, tenant: &TenantId, alerts: Vec<OutgoingAlert>) {
        self.0
            .lock()
            .extend(alerts.into_iter().map(|a| (tenant.to_string(), a)));
    }
}

impl Sink {
    fn take(&self) -> Vec<(String, OutgoingAlert)> {
        std::mem::take(&mut *self.0.lock())
    }
}

struct Env {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    store: Arc<MemStore>,
    clock: Arc<ManualClock>,
    sink: Arc<Sink>,
    svc: Arc<RulerService>,
}

const T0: i64 = 1_700_000_000_000;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn at_ns(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

fn write(store: &dyn Appender, tenant: &str, series: &str, points: &[(i64, f64)]) {
    let labels = fenghuo_alerting::ruler::unittest::parse_metric(series).unwrap_or_default();
    let batch = WriteBatch {
        series: vec![SeriesWrite {
            labels,
            samples: points.iter().map(|(t, v)| Sample { t: *t, v: *v }).collect(),
            ..Default::default()
        }],
        metadata: Vec::new(),
    };
    let tenant = TenantId::new(tenant).unwrap_or_else(|_| TenantId::default_tenant());
    assert!(store.append(&tenant, batch).is_ok());
}

fn config(dir: &Path, files: &[(&str, &str)]) -> RulerConfig {
    let mut cfg = RulerConfig {
        evaluation_interval: fenghuo_storage::model::PromDuration::from_secs(10),
        for_grace_period: fenghuo_storage::model::PromDuration::from_secs(60),
        ..RulerConfig::default()
    };
    let mut tenants: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (tenant, text) in files {
        let path = dir.join(format!("{tenant}-{}.yml", tenants.len()));
        std::fs::write(&path, text).unwrap_or_default();
        tenants
            .entry(tenant.to_string())
            .or_default()
            .push(path.display().to_string());
    }
    cfg.tenant_rule_files = tenants;
    cfg
}

fn backend(store: &Arc<MemStore>) -> Backend {
    Backend {
        engine: Arc::new(Engine::new(EngineOptions::default())),
        queryable: store.clone(),
        appender: store.clone(),
    }
}

fn start(files: &[(&str, &str)], store: Option<Arc<MemStore>>, now: i64) -> Env {
    start_with(files, store, now, |_| {})
}

/// [`start`] with a tweak to the ruler config.
fn start_with(
    files: &[(&str, &str)],
    store: Option<Arc<MemStore>>,
    now: i64,
    tweak: impl FnOnce(&mut RulerConfig),
) -> Env {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().to_path_buf();
    let store = store.unwrap_or_default();
    let clock = Arc::new(ManualClock::new(at(now)));
    let sink = Arc::new(Sink::default());
    let mut cfg = config(&dir, files);
    tweak(&mut cfg);
    let svc = RulerService::start(
        RulerOptions {
            config: cfg,
            default_external_url: "http://fenghuo:9800".into(),
            run_loop: false,
        },
        backend(&store),
        sink.clone(),
        clock.clone(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    Env {
        _dir: tmp,
        dir,
        store,
        clock,
        sink,
        svc,
    }
}

impl Env {
    fn group(&self, tenant: &str) -> Arc<Group> {
        let t = TenantId::new(tenant).unwrap_or_else(|_| TenantId::default_tenant());
        self.svc
            .tenant_groups(&t)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no group"))
    }

    /// Like [`Env::step`], in nanoseconds (what alert times carry).
    fn step_ns(&self, tenant: &str) -> i64 {
        let g = self.group(tenant);
        let next = self
            .svc
            .next_eval_ns(&g.tenant, &g.file, &g.name)
            .unwrap_or_else(|| panic!("not scheduled"));
        self.clock.set(at_ns(next));
        assert_eq!(self.svc.tick(), 1);
        next
    }

    fn now_ns(&self) -> i64 {
        self.clock.now().timestamp_nanos_opt().unwrap_or_default()
    }

    /// The `activeAt` of the group's only alert (nanoseconds).
    fn active_at(&self, tenant: &str) -> i64 {
        let g = self.group(tenant);
        let alerts: Vec<_> = g.alerting_rules().flat_map(|r| r.active_alerts()).collect();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        alerts[0].active_at
    }

    /// Steps until an alert is sent; returns that evaluation's time (ns).
    fn step_until_fired(&self, tenant: &str, max_steps: usize) -> i64 {
        for _ in 0..max_steps {
            let t = self.step_ns(tenant);
            if !self.sink.take().is_empty() {
                return t;
            }
        }
        panic!("no alert fired in {max_steps} evaluations");
    }

    /// Moves the clock to the group's next evaluation and runs it; returns the evaluation time
    /// in milliseconds (the samples' timestamp).
    fn step(&self, tenant: &str) -> i64 {
        let g = self.group(tenant);
        let next = self
            .svc
            .next_eval_ns(&g.tenant, &g.file, &g.name)
            .unwrap_or_else(|| panic!("not scheduled"));
        self.clock.set(at_ns(next));
        assert_eq!(self.svc.tick(), 1);
        next / 1_000_000
    }

    fn query(&self, tenant: &str, q: &str, t: i64) -> Vec<(Labels, f64)> {
        let tenant = TenantId::new(tenant).unwrap_or_else(|_| TenantId::default_tenant());
        let querier = self.store.querier(&tenant).unwrap_or_else(|e| panic!("{e}"));
        let out = Engine::new(EngineOptions::default())
            .instant(&*querier, q, t)
            .unwrap_or_else(|e| panic!("{e}"));
        match out.value {
            fenghuo_query::Value::Vector(v) => v
                .into_iter()
                .map(|s| {
                    let f = match s.value {
                        PointValue::Float(f) => f,
                        PointValue::Histogram(_) => f64::NAN,
                    };
                    (s.labels, f)
                })
                .collect(),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn series(points: std::ops::Range<i64>, step: i64, v: f64) -> Vec<(i64, f64)> {
    points.step_by(step as usize).map(|t| (t, v)).collect()
}

#[test]
fn eval_timestamps_are_slotted_like_prometheus() {
    let env = start(
        &[(
            "anonymous",
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: vector(1)\n",
        )],
        None,
        T0 + 3,
    );
    let g = env.group("anonymous");
    let next = env
        .svc
        .next_eval_ns(&g.tenant, &g.file, &g.name)
        .unwrap_or_default();
    const S: i64 = 1_000_000_000;
    // The first evaluation is the group's next slot: in (now, now + interval], and every slot is
    // the hash offset plus a multiple of the interval, in nanoseconds (Prometheus's
    // EvalTimestamp: xxhash64 of the labels {file, name} modulo the interval).
    let now = (T0 + 3) * 1_000_000;
    assert!(next > now && next <= now + 10 * S, "{next}");
    let mut key = Vec::new();
    for (k, v) in [("file", g.file.as_str()), ("name", g.name.as_str())] {
        key.extend_from_slice(k.as_bytes());
        key.push(0xff);
        key.extend_from_slice(v.as_bytes());
        key.push(0xff);
    }
    let offset = (xxhash_rust::xxh64::xxh64(&key, 0) % (10 * S) as u64) as i64;
    assert_eq!(next.rem_euclid(10 * S), offset);
    assert_eq!(g.eval_timestamp_ns(next), next);
    assert_eq!(g.eval_timestamp_ns(next + 10 * S - 1), next);
    assert_eq!(g.eval_timestamp_ns(next + 10 * S), next + 10 * S);
    // Samples carry the slot's millisecond, truncated.
    assert_eq!(g.eval_timestamp(next / 1_000_000 + 1), next / 1_000_000);
    env.step("anonymous");
    assert_eq!(g.last_eval_ts_ns(), Some(next));
    assert_eq!(g.last_eval_ts(), Some(next / 1_000_000));
    assert_eq!(env.query("anonymous", "r", next / 1_000_000)[0].1, 1.0);
    // Different groups get different offsets.
    let other = Group::new(
        g.tenant.clone(),
        &g.file,
        "other",
        10_000,
        0,
        None,
        BTreeMap::new(),
        Vec::new(),
    );
    assert_ne!(other.eval_timestamp(T0) % 10_000, g.eval_timestamp(T0) % 10_000);
}

#[test]
fn recording_results_are_written_back_and_go_stale() {
    let rules = "groups:\n- name: rec\n  rules:\n  - record: job:m:doubled\n    expr: m * 2\n    labels:\n      source: rule\n";
    let env = start(&[("anonymous", rules)], None, T0);
    write(
        &*env.store,
        "anonymous",
        "m{job=\"a\"}",
        &series(T0 - 60_000..T0 + 1, 5_000, 21.0),
    );
    let t1 = env.step("anonymous");
    let got = env.query("anonymous", "job:m:doubled", t1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, 42.0);
    assert_eq!(got[0].0.get("source"), Some("rule"));
    assert_eq!(got[0].0.get("job"), Some("a"));
    // The input disappears: the recorded series is stale-marked at the next evaluation.
    write(
        &*env.store,
        "anonymous",
        "m{job=\"a\"}",
        &[(t1 + 1_000, stale_nan())],
    );
    let t2 = env.step("anonymous");
    assert!(env.query("anonymous", "job:m:doubled", t2).is_empty());
    assert!(env.query("anonymous", "job:m:doubled", t2 + 60_000).is_empty());
    assert_eq!(env.query("anonymous", "job:m:doubled", t2 - 1).len(), 1);
}

#[test]
fn alert_lifecycle_pending_firing_resolved_and_resent() {
    let rules = "groups:\n- name: a\n  rules:\n  - alert: High\n    expr: m > 10\n    for: 30s\n    labels:\n      severity: page\n    annotations:\n      summary: 'value {{ $value }} on {{ $labels.instance }}'\n";
    let env = start(&[("anonymous", rules)], None, T0);
    write(
        &*env.store,
        "anonymous",
        "m{instance=\"h\"}",
        &series(T0 - 60_000..T0 + 120_000, 5_000, 20.0),
    );
    write(
        &*env.store,
        "anonymous",
        "m{instance=\"h\"}",
        &series(T0 + 120_000..T0 + 1_500_000, 5_000, 1.0),
    );
    // Restoration on the first load keeps ALERTS back for two evaluations.
    let t1 = env.step("anonymous");
    assert_eq!(
        env.group("anonymous").alert_states()[0].2,
        fenghuo_alerting::ruler::rule::AlertState::Pending
    );
    assert!(env.query("anonymous", "ALERTS", t1).is_empty());
    let t2 = env.step("anonymous");
    assert!(env.query("anonymous", "ALERTS", t2).is_empty());
    let t3 = env.step("anonymous");
    let alerts = env.query("anonymous", "ALERTS", t3);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].0.get("alertstate"), Some("pending"));
    let fs = env.query("anonymous", "ALERTS_FOR_STATE", t3);
    assert_eq!(fs[0].1, (t1 / 1000) as f64);
    assert!(env.sink.take().is_empty(), "pending alerts are not sent");
    let t4 = env.step("anonymous");
    assert_eq!(t4 - t1, 30_000);
    let sent = env.sink.take();
    assert_eq!(sent.len(), 1);
    let a = &sent[0].1;
    // Alert times keep the nanoseconds of the group's evaluation slot.
    let t4_ns = env.group("anonymous").last_eval_ts_ns().unwrap_or_default();
    assert_eq!(t4_ns / 1_000_000, t4);
    assert_eq!(a.starts_at, Some(t4_ns));
    // Valid for four times max(interval, resend delay).
    assert_eq!(a.ends_at, Some(t4_ns + 4 * 60_000_000_000));
    assert_eq!(a.annotations.get("summary"), Some("value 20 on h"));
    assert_eq!(a.labels.get("alertname"), Some("High"));
    assert!(
        a.generator_url.starts_with("http://fenghuo:9800/graph?g0.expr="),
        "{}",
        a.generator_url
    );
    assert_eq!(
        env.query("anonymous", "ALERTS", t4)[0].0.get("alertstate"),
        Some("firing")
    );
    // Resend delay: nothing new until a minute has passed.
    let mut resent_at = None;
    for _ in 0..7 {
        let t = env.step("anonymous");
        if t >= T0 + 120_000 {
            break;
        }
        let s = env.sink.take();
        if !s.is_empty() {
            resent_at = Some(t);
            break;
        }
    }
    assert_eq!(
        resent_at,
        Some(t4 + 70_000),
        "resent once the 1m delay has passed"
    );
    // Resolution: sent with endsAt = resolution time, then kept (and re-sent) for 15 minutes.
    let mut resolved_at = None;
    while resolved_at.is_none() {
        let t = env.step("anonymous");
        if let Some((_, a)) = env.sink.take().into_iter().next()
            && a.ends_at.map(|e| e / 1_000_000) == Some(t)
        {
            resolved_at = Some(t);
        }
    }
    let r = resolved_at.unwrap_or_default();
    assert!(
        env.group("anonymous")
            .alert_states()
            .iter()
            .all(|s| s.2 == fenghuo_alerting::ruler::rule::AlertState::Inactive)
    );
    assert!(
        env.query("anonymous", "ALERTS", r).is_empty(),
        "ALERTS goes stale on resolution"
    );
    let mut resends = 0;
    loop {
        let t = env.step("anonymous");
        resends += env.sink.take().len();
        if t > r + 15 * 60_000 + 10_000 {
            break;
        }
    }
    // Re-sent once the resend delay has passed (every 70s at a 10s interval) until dropped
    // after 15 minutes: at r+70s, r+140s, ..., r+840s.
    assert_eq!(
        resends, 12,
        "a resolved alert is re-sent every resend delay while retained"
    );
    assert!(
        env.group("anonymous").alert_states().is_empty(),
        "dropped after 15 minutes"
    );
}

#[test]
fn keep_firing_for_holds_a_firing_alert() {
    let rules = "groups:\n- name: k\n  rules:\n  - alert: Flap\n    expr: m > 0\n    keep_firing_for: 30s\n";
    let env = start(&[("anonymous", rules)], None, T0);
    let g = env.group("anonymous");
    let first = env.svc.next_eval(&g.tenant, &g.file, &g.name).unwrap_or_default();
    write(
        &*env.store,
        "anonymous",
        "m",
        &series(first - 60_000..first + 5_000, 5_000, 1.0),
    );
    write(&*env.store, "anonymous", "m", &[(first + 5_000, stale_nan())]);
    use fenghuo_alerting::ruler::rule::AlertState::*;
    env.step("anonymous");
    assert_eq!(env.group("anonymous").alert_states()[0].2, Firing);
    for _ in 0..3 {
        env.step("anonymous");
        assert_eq!(env.group("anonymous").alert_states()[0].2, Firing, "kept firing");
    }
    env.step("anonymous");
    assert_eq!(
        env.group("anonymous").alert_states()[0].2,
        Inactive,
        "resolved after 30s"
    );
}

#[test]
fn for_state_is_restored_after_a_restart() {
    let rules = "groups:\n- name: r\n  rules:\n  - alert: Slow\n    expr: m > 0\n    for: 5m\n";
    let store = Arc::new(MemStore::new());
    write(
        &*store,
        "anonymous",
        "m",
        &series(T0 - 60_000..T0 + 3_600_000, 5_000, 1.0),
    );
    let env = start(&[("anonymous", rules)], Some(store.clone()), T0);
    let first = env.step("anonymous");
    for _ in 0..11 {
        env.step("anonymous");
    }
    // Down for two minutes after two minutes pending.
    let down_at = env.step("anonymous");
    assert_eq!(down_at - first, 120_000);
    let env2 = start(&[("anonymous", rules)], Some(store), down_at + 120_000);
    let r1 = env2.step("anonymous");
    let r2 = env2.step("anonymous");
    let _ = r1;
    // Restored: active since `first`, shifted by the downtime (Prometheus keeps the pending time
    // spent before the outage), so it fires 3 minutes after the restart, not 5.
    let g = env2.group("anonymous");
    let active_at = g
        .alerting_rules()
        .next()
        .map(|r| r.active_alerts()[0].active_at)
        .unwrap_or_default();
    // In nanoseconds: the restored `activeAt` and the outage are whole seconds as Prometheus
    // reads them from ALERTS_FOR_STATE; the restoration time is the wall clock's.
    let now = env2.clock.now().timestamp_nanos_opt().unwrap_or_default();
    const S: i64 = 1_000_000_000;
    assert_eq!(active_at, first / 1000 * S + (now - down_at / 1000 * S));
    let mut fired = None;
    for _ in 0..40 {
        let t = env2.step("anonymous");
        if !env2.sink.take().is_empty() {
            fired = Some(t);
            break;
        }
    }
    let fired = fired.unwrap_or_default();
    assert!(
        fired - r2 < 300_000 - 30_000,
        "fired {}s after restoration",
        (fired - r2) / 1000
    );
    assert!(fired * 1_000_000 + 999_999 >= active_at + 300 * S);
}

#[test]
fn missed_iterations_are_counted_and_skipped() {
    let env = start(
        &[(
            "missed",
            "groups:\n- name: slow\n  rules:\n  - record: r\n    expr: vector(1)\n",
        )],
        None,
        T0,
    );
    let g = env.group("missed");
    let key = g.key();
    let first = env.step("missed");
    env.clock.set(at(first + 10_000 * 5 + 1));
    assert_eq!(env.svc.tick(), 1);
    let missed = metrics::ITERATIONS_MISSED
        .with_label_values(&["missed", &key])
        .get();
    assert_eq!(missed, 4);
    assert_eq!(g.last_eval_ts(), Some(first + 50_000));
    assert_eq!(
        env.svc.next_eval(&g.tenant, &g.file, &g.name),
        Some(first + 60_000)
    );
}

#[test]
fn a_failing_rule_is_reported_and_does_not_stop_the_others() {
    let rules = "groups:\n- name: mixed\n  rules:\n  - record: broken\n    expr: m\n    labels:\n      i: same\n  - record: fine\n    expr: count(m)\n";
    let env = start(&[("anonymous", rules)], None, T0);
    write(
        &*env.store,
        "anonymous",
        "m{i=\"1\"}",
        &series(T0 - 60_000..T0 + 60_000, 5_000, 1.0),
    );
    write(
        &*env.store,
        "anonymous",
        "m{i=\"2\"}",
        &series(T0 - 60_000..T0 + 60_000, 5_000, 1.0),
    );
    let key = env.group("anonymous").key();
    let before = metrics::EVALUATION_FAILURES
        .with_label_values(&["anonymous", &key])
        .get();
    let t = env.step("anonymous");
    let g = env.group("anonymous");
    let st = g.rules[0].status().lock().clone();
    assert_eq!(st.health, fenghuo_alerting::ruler::rule::Health::Bad);
    assert_eq!(
        st.last_error.as_deref(),
        Some("vector contains metrics with the same labelset after applying rule labels")
    );
    assert_eq!(
        g.rules[1].status().lock().health,
        fenghuo_alerting::ruler::rule::Health::Good
    );
    assert_eq!(env.query("anonymous", "fine", t)[0].1, 2.0);
    assert_eq!(
        metrics::EVALUATION_FAILURES
            .with_label_values(&["anonymous", &key])
            .get(),
        before + 1
    );
}

#[test]
fn reload_keeps_alert_state_and_stale_marks_removed_groups() {
    let v1 = "groups:\n- name: keep\n  rules:\n  - alert: A\n    expr: m > 0\n    for: 1m\n- name: gone\n  rules:\n  - record: gone:m\n    expr: m\n";
    let env = start(&[("anonymous", v1)], None, T0);
    write(
        &*env.store,
        "anonymous",
        "m",
        &series(T0 - 60_000..T0 + 600_000, 5_000, 1.0),
    );
    for _ in 0..4 {
        env.clock.advance(Duration::seconds(10));
        env.svc.tick();
    }
    let t_before = env.clock.now().timestamp_millis();
    assert_eq!(env.query("anonymous", "gone:m", t_before).len(), 1);
    let keep = env
        .svc
        .all_groups()
        .into_iter()
        .find(|g| g.name == "keep")
        .unwrap_or_else(|| panic!("keep"));
    let active_at = keep
        .alerting_rules()
        .next()
        .map(|r| r.active_alerts()[0].active_at);
    // A broken file does not replace the rules in force.
    let path = env.dir.join("anonymous-0.yml");
    std::fs::write(
        &path,
        "groups:\n- name: keep\n  rules:\n  - alert: A\n    expr: sum(\n",
    )
    .unwrap_or_default();
    assert!(env.svc.reload(None).is_err());
    assert_eq!(env.svc.all_groups().len(), 2);
    // Changed group (new annotation) keeps its alert's activeAt; the removed group's series go stale.
    std::fs::write(&path, "groups:\n- name: keep\n  rules:\n  - alert: A\n    expr: m > 0\n    for: 1m\n    annotations:\n      new: x\n").unwrap_or_default();
    assert!(env.svc.reload(None).is_ok());
    let groups = env.svc.all_groups();
    assert_eq!(groups.len(), 1);
    let keep2 = &groups[0];
    assert_eq!(
        keep2
            .alerting_rules()
            .next()
            .map(|r| r.active_alerts()[0].active_at),
        active_at
    );
    env.clock.advance(Duration::seconds(25));
    env.svc.tick();
    assert!(
        env.query("anonymous", "gone:m", env.clock.now().timestamp_millis())
            .is_empty()
    );
}

#[test]
fn recording_rules_write_through_the_real_tsdb() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tsdb = fenghuo_storage::tsdb::Tsdb::open(&dir.path().join("tsdb"), Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let now = Utc::now().timestamp_millis();
    write(
        &*tsdb,
        "t1",
        "m{job=\"x\"}",
        &series(now - 60_000..now + 60_000, 5_000, 3.0),
    );
    let clock = Arc::new(ManualClock::new(at(now)));
    let cfg = config(
        dir.path(),
        &[(
            "t1",
            "groups:\n- name: g\n  rules:\n  - record: m:x10\n    expr: m * 10\n",
        )],
    );
    let svc = RulerService::start(
        RulerOptions {
            config: cfg,
            default_external_url: String::new(),
            run_loop: false,
        },
        Backend {
            engine: Arc::new(Engine::new(EngineOptions::default())),
            queryable: tsdb.clone(),
            appender: tsdb.clone(),
        },
        Arc::new(Sink::default()),
        clock.clone(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    clock.advance(Duration::seconds(11));
    assert_eq!(svc.tick(), 1);
    let t = svc.all_groups()[0].last_eval_ts().unwrap_or_default();
    let q = tsdb.querier(&TenantId::new("t1").unwrap_or_else(|_| TenantId::default_tenant()));
    let q = q.unwrap_or_else(|e| panic!("{e}"));
    let out = Engine::new(EngineOptions::default())
        .instant(&*q, "m:x10", t)
        .unwrap_or_else(|e| panic!("{e}"));
    match out.value {
        fenghuo_query::Value::Vector(v) => {
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].value, PointValue::Float(30.0));
        }
        other => panic!("{other:?}"),
    }
    let other_tenant = tsdb
        .querier(&TenantId::default_tenant())
        .unwrap_or_else(|e| panic!("{e}"));
    let none = Engine::new(EngineOptions::default())
        .instant(&*other_tenant, "m:x10", t)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(none.value, fenghuo_query::Value::Vector(Vec::new()));
    let _ = tsdb.close();
}

#[test]
fn query_offset_shifts_queries_and_written_samples() {
    let rules = "groups:\n- name: off\n  query_offset: 1m\n  labels:\n    team: infra\n  rules:\n  - record: m:copy\n    expr: m\n";
    let env = start(&[("anonymous", rules)], None, T0);
    // Only data older than a minute before the evaluation: visible with the offset only.
    write(&*env.store, "anonymous", "m", &[(T0 - 70_000, 7.0)]);
    let t = env.step("anonymous");
    let got = env.query("anonymous", "m:copy", t - 60_000);
    assert_eq!(got.len(), 1, "the sample is written at the offset time");
    assert_eq!(got[0].1, 7.0);
    assert_eq!(
        got[0].0.get("team"),
        Some("infra"),
        "group labels apply to every rule"
    );
}

#[test]
fn alert_limit_fails_the_rule_and_clears_its_alerts() {
    let rules = "groups:\n- name: lim\n  limit: 1\n  rules:\n  - alert: Many\n    expr: m > 0\n";
    let env = start(&[("anonymous", rules)], None, T0);
    write(
        &*env.store,
        "anonymous",
        "m{i=\"1\"}",
        &series(T0 - 60_000..T0 + 60_000, 5_000, 1.0),
    );
    env.step("anonymous");
    assert_eq!(env.group("anonymous").alert_states().len(), 1);
    write(
        &*env.store,
        "anonymous",
        "m{i=\"2\"}",
        &series(T0 - 60_000..T0 + 60_000, 5_000, 1.0),
    );
    env.step("anonymous");
    let g = env.group("anonymous");
    assert_eq!(
        g.rules[0].status().lock().last_error.as_deref(),
        Some("exceeded limit of 1 with 2 alerts")
    );
    assert!(g.alert_states().is_empty());
}

/// A store whose first query (of `only` tenant, or any) blocks until released, counting that
/// tenant's queries in flight.
struct SlowStore {
    inner: Arc<MemStore>,
    only: Option<&'static str>,
    gate: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: std::sync::atomic::AtomicUsize,
    calls: std::sync::atomic::AtomicUsize,
}

impl Queryable for SlowStore {
    fn querier(
        &self,
        tenant: &TenantId,
    ) -> Result<Arc<dyn fenghuo_storage::api::Querier>, fenghuo_storage::StorageError> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.only.is_some_and(|t| t != tenant.as_str()) {
            return self.inner.querier(tenant);
        }
        let n = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.max_in_flight.fetch_max(n, SeqCst);
        self.calls.fetch_add(1, SeqCst);
        let gate = self.gate.lock().take();
        if let Some(rx) = gate {
            let _ = rx.recv_timeout(std::time::Duration::from_secs(30));
        }
        let q = self.inner.querier(tenant);
        self.in_flight.fetch_sub(1, SeqCst);
        q
    }
}

fn wait(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn a_slow_group_is_never_evaluated_twice_at_once_and_counts_missed_iterations() {
    use std::sync::atomic::Ordering::SeqCst;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let _guard = rt.enter();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (release, gate) = std::sync::mpsc::channel();
    let mem = Arc::new(MemStore::new());
    let slow = Arc::new(SlowStore {
        inner: mem.clone(),
        only: None,
        gate: Mutex::new(Some(gate)),
        in_flight: Default::default(),
        max_in_flight: Default::default(),
        calls: Default::default(),
    });
    let clock = Arc::new(ManualClock::new(at(T0)));
    let svc = RulerService::start(
        RulerOptions {
            config: config(
                tmp.path(),
                &[(
                    "slow",
                    "groups:\n- name: slow\n  rules:\n  - record: r\n    expr: vector(1)\n",
                )],
            ),
            default_external_url: "http://fenghuo:9800".into(),
            run_loop: true,
        },
        Backend {
            engine: Arc::new(Engine::new(EngineOptions::default())),
            queryable: slow.clone(),
            appender: mem.clone(),
        },
        Arc::new(Sink::default()),
        clock.clone(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let g = svc.all_groups()[0].clone();
    let key = g.key();
    let missed = || {
        metrics::ITERATIONS_MISSED
            .with_label_values(&["slow", &key])
            .get()
    };
    let first_ns = svc.next_eval_ns(&g.tenant, &g.file, &g.name).unwrap_or_default();
    let first = first_ns / 1_000_000;
    // The first evaluation starts and hangs in its query.
    clock.set(at_ns(first_ns));
    wait("the first evaluation to hang", || {
        slow.in_flight.load(SeqCst) == 1
    });
    // Five intervals pass while it runs: no second evaluation starts meanwhile.
    for k in 1..=5 {
        clock.set(at_ns(first_ns + k * 10_000_000_000 + 1_000_000));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(slow.calls.load(SeqCst), 1, "a second evaluation started");
    assert_eq!(missed(), 0);
    let _ = release.send(());
    wait("the next evaluation", || g.last_eval_ts() == Some(first + 50_000));
    // The iterations at +10s..+40s were missed; the evaluation at +50s ran.
    assert_eq!(missed(), 4);
    assert_eq!(slow.max_in_flight.load(SeqCst), 1);
    assert_eq!(svc.next_eval(&g.tenant, &g.file, &g.name), Some(first + 60_000));
    // A reload replacing the group's definition waits for the evaluation in flight, then takes
    // over its state.
    let (release, gate) = std::sync::mpsc::channel();
    *slow.gate.lock() = Some(gate);
    clock.set(at_ns(first_ns + 60_000_000_000));
    wait("the evaluation at +60s to hang", || {
        slow.in_flight.load(SeqCst) == 1
    });
    std::fs::write(
        tmp.path().join("slow-0.yml"),
        "groups:\n- name: slow\n  rules:\n  - record: r\n    expr: vector(2)\n",
    )
    .unwrap_or_default();
    let svc2 = svc.clone();
    let reloading = std::thread::spawn(move || svc2.reload(None));
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(!reloading.is_finished(), "reload did not wait for the evaluation");
    let _ = release.send(());
    assert!(reloading.join().is_ok_and(|r| r.is_ok()));
    let new = svc.all_groups()[0].clone();
    assert!(!Arc::ptr_eq(&new, &g));
    assert_eq!(new.last_eval_ts(), Some(first + 60_000));
    assert_eq!(slow.max_in_flight.load(SeqCst), 1);
    rt.block_on(svc.shutdown());
}

#[test]
fn a_reload_waiting_for_a_slow_group_blocks_neither_other_groups_nor_the_api() {
    use std::sync::atomic::Ordering::SeqCst;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let _guard = rt.enter();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (release, gate) = std::sync::mpsc::channel();
    let mem = Arc::new(MemStore::new());
    let slow = Arc::new(SlowStore {
        inner: mem.clone(),
        only: Some("slow"),
        gate: Mutex::new(Some(gate)),
        in_flight: Default::default(),
        max_in_flight: Default::default(),
        calls: Default::default(),
    });
    let clock = Arc::new(ManualClock::new(at(T0)));
    let rules = "groups:\n- name: g\n  rules:\n  - record: r\n    expr: vector(1)\n  - record: r2\n    expr: vector(1)\n";
    let svc = RulerService::start(
        RulerOptions {
            config: config(tmp.path(), &[("slow", rules), ("other", rules)]),
            default_external_url: "http://fenghuo:9800".into(),
            run_loop: true,
        },
        Backend {
            engine: Arc::new(Engine::new(EngineOptions::default())),
            queryable: slow.clone(),
            appender: mem.clone(),
        },
        Arc::new(Sink::default()),
        clock.clone(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let group =
        |tenant: &str| svc.tenant_groups(&TenantId::new(tenant).unwrap_or_else(|e| panic!("{e}")))[0].clone();
    let (slow_g, other) = (group("slow"), group("other"));
    let slow_first = svc
        .next_eval_ns(&slow_g.tenant, &slow_g.file, &slow_g.name)
        .unwrap_or_default();
    clock.set(at_ns(slow_first));
    wait("the slow evaluation to hang", || slow.in_flight.load(SeqCst) == 1);
    std::fs::write(
        tmp.path().join("slow-0.yml"),
        rules.replace("vector(1)", "vector(2)"),
    )
    .unwrap_or_default();
    let svc2 = svc.clone();
    let reloading = std::thread::spawn(move || svc2.reload(None));
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(!reloading.is_finished(), "reload did not wait for the evaluation");
    // Meanwhile the API's view of the groups answers...
    let svc3 = svc.clone();
    let listing = std::thread::spawn(move || svc3.all_groups().len());
    wait("the group listing", || listing.is_finished());
    assert!(listing.join().is_ok_and(|n| n == 2));
    // ...and the other tenant's group keeps being evaluated on schedule.
    for _ in 0..2 {
        let next = svc
            .next_eval_ns(&other.tenant, &other.file, &other.name)
            .unwrap_or_default();
        clock.set(at_ns(next.max(slow_first)));
        wait("the other group's evaluation", || {
            other.last_eval_ts_ns() == Some(next)
        });
    }
    assert!(!reloading.is_finished());
    let _ = release.send(());
    assert!(reloading.join().is_ok_and(|r| r.is_ok()));
    assert!(!Arc::ptr_eq(&group("slow"), &slow_g));
    // The reload waited for the rule in flight only: the stopped group skipped its second rule.
    assert!(slow_g.rules[0].status().lock().last_evaluation.is_some());
    assert!(slow_g.rules[1].status().lock().last_evaluation.is_none());
    assert_eq!(slow.calls.load(SeqCst), 1);
    rt.block_on(svc.shutdown());
}

/// A store whose `select` panics for the metric `boom` (a stand-in for a bug in the engine or
/// storage that unwinds).
struct PanickyStore(Arc<MemStore>);

struct PanickyQuerier(Arc<dyn fenghuo_storage::api::Querier>);

impl Queryable for PanickyStore {
    fn querier(
        &self,
        tenant: &TenantId,
    ) -> Result<Arc<dyn fenghuo_storage::api::Querier>, fenghuo_storage::StorageError> {
        Ok(Arc::new(PanickyQuerier(self.0.querier(tenant)?)))
    }
}

impl fenghuo_storage::api::Querier for PanickyQuerier {
    fn select(
        &self,
        matchers: &[fenghuo_storage::model::Matcher],
        hints: &fenghuo_storage::api::SelectHints,
    ) -> Result<Vec<fenghuo_storage::api::Series>, fenghuo_storage::StorageError> {
        if matchers.iter().any(|m| m.name == "__name__" && m.value == "boom") {
            panic!("boom selected");
        }
        self.0.select(matchers, hints)
    }
    fn label_names(
        &self,
        start: i64,
        end: i64,
        matchers: &[fenghuo_storage::model::Matcher],
    ) -> Result<Vec<String>, fenghuo_storage::StorageError> {
        self.0.label_names(start, end, matchers)
    }
    fn label_values(
        &self,
        name: &str,
        start: i64,
        end: i64,
        matchers: &[fenghuo_storage::model::Matcher],
    ) -> Result<Vec<String>, fenghuo_storage::StorageError> {
        self.0.label_values(name, start, end, matchers)
    }
    fn series_labels(
        &self,
        start: i64,
        end: i64,
        matchers: &[fenghuo_storage::model::Matcher],
    ) -> Result<Vec<Labels>, fenghuo_storage::StorageError> {
        self.0.series_labels(start, end, matchers)
    }
    fn metadata(
        &self,
        metric: Option<&str>,
    ) -> Result<Vec<fenghuo_storage::model::MetricMetadata>, fenghuo_storage::StorageError> {
        self.0.metadata(metric)
    }
    fn exemplars(
        &self,
        start: i64,
        end: i64,
        matcher_sets: &[Vec<fenghuo_storage::model::Matcher>],
    ) -> Result<Vec<(Labels, Vec<fenghuo_storage::model::Exemplar>)>, fenghuo_storage::StorageError> {
        self.0.exemplars(start, end, matcher_sets)
    }
    fn tsdb_status(
        &self,
        limit: usize,
    ) -> Result<fenghuo_storage::api::TsdbStatus, fenghuo_storage::StorageError> {
        self.0.tsdb_status(limit)
    }
}

const PANICKY_RULES: &str =
    "groups:\n- name: p\n  rules:\n  - record: a\n    expr: sum(boom)\n  - record: b\n    expr: vector(1)\n";

#[test]
fn a_panicking_rule_is_that_rules_error_and_the_group_goes_on() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mem = Arc::new(MemStore::new());
    let clock = Arc::new(ManualClock::new(at(T0)));
    let svc = RulerService::start(
        RulerOptions {
            config: config(tmp.path(), &[("panicky", PANICKY_RULES)]),
            default_external_url: "http://fenghuo:9800".into(),
            run_loop: false,
        },
        Backend {
            engine: Arc::new(Engine::new(EngineOptions::default())),
            queryable: Arc::new(PanickyStore(mem.clone())),
            appender: mem.clone(),
        },
        Arc::new(Sink::default()),
        clock.clone(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let g = svc.all_groups()[0].clone();
    let key = g.key();
    let failures = || {
        metrics::EVALUATION_FAILURES
            .with_label_values(&["panicky", &key])
            .get()
    };
    for k in 1..=2 {
        let next = svc.next_eval_ns(&g.tenant, &g.file, &g.name).unwrap_or_default();
        clock.set(at_ns(next));
        assert_eq!(svc.tick(), 1, "evaluation {k} did not run");
        let st = g.rules[0].status().lock().clone();
        assert_eq!(st.health, fenghuo_alerting::ruler::rule::Health::Bad);
        assert_eq!(st.last_error.as_deref(), Some("unexpected error: boom selected"));
        assert!(st.last_evaluation.is_some());
        assert_eq!(
            g.rules[1].status().lock().health,
            fenghuo_alerting::ruler::rule::Health::Good
        );
        assert_eq!(g.last_eval_ts_ns(), Some(next));
        assert_eq!(failures(), k);
    }
    let env_query = |q: &str, t: i64| {
        let tenant = TenantId::new("panicky").unwrap_or_else(|e| panic!("{e}"));
        let querier = mem.querier(&tenant).unwrap_or_else(|e| panic!("{e}"));
        Engine::new(EngineOptions::default())
            .instant(&*querier, q, t)
            .map(|o| format!("{:?}", o.value))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let t = g.last_eval_ts().unwrap_or_default();
    assert!(env_query("b", t).contains("Float(1.0)"), "{}", env_query("b", t));
}

#[test]
fn a_panicking_evaluation_does_not_freeze_the_evaluation_loop() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let _guard = rt.enter();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mem = Arc::new(MemStore::new());
    let clock = Arc::new(ManualClock::new(at(T0)));
    let svc = RulerService::start(
        RulerOptions {
            config: config(tmp.path(), &[("panicky-loop", PANICKY_RULES)]),
            default_external_url: "http://fenghuo:9800".into(),
            run_loop: true,
        },
        Backend {
            engine: Arc::new(Engine::new(EngineOptions::default())),
            queryable: Arc::new(PanickyStore(mem.clone())),
            appender: mem.clone(),
        },
        Arc::new(Sink::default()),
        clock.clone(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let g = svc.all_groups()[0].clone();
    let first = svc.next_eval_ns(&g.tenant, &g.file, &g.name).unwrap_or_default();
    for k in 0..3 {
        let t = first + k * 10_000_000_000;
        clock.set(at_ns(t));
        wait("the next evaluation", || g.last_eval_ts_ns() == Some(t));
    }
    // A reload replacing the group does not wait forever for an evaluation that panicked.
    std::fs::write(
        tmp.path().join("panicky-loop-0.yml"),
        PANICKY_RULES.replace("vector(1)", "vector(2)"),
    )
    .unwrap_or_default();
    assert!(svc.reload(None).is_ok());
    rt.block_on(svc.shutdown());
}

const S: i64 = 1_000_000_000;

/// An alert with `for` pending for `pending` seconds (evaluated every 10s from T0), then the
/// ruler down for `outage` seconds and restarted on the same store, with `grace` as
/// `for_grace_period`. Returns the first run's first evaluation and last evaluation (ns), the
/// restarted ruler after its first two evaluations (restoration runs after the second), and
/// its first evaluation (ns).
fn restart_case(for_: &str, grace: u64, pending: i64, outage: i64) -> (i64, i64, Env, i64) {
    let rules = format!("groups:\n- name: r\n  rules:\n  - alert: Slow\n    expr: m > 0\n    for: {for_}\n");
    let store = Arc::new(MemStore::new());
    write(
        &*store,
        "anonymous",
        "m",
        &series(T0 - 60_000..T0 + 3 * 3_600_000, 5_000, 1.0),
    );
    let tweak = |c: &mut RulerConfig| c.for_grace_period = PromDuration::from_secs(grace);
    let env = start_with(&[("anonymous", &rules)], Some(store.clone()), T0, tweak);
    let first = env.step_ns("anonymous");
    let mut down_at = first;
    while down_at - first < pending * S {
        down_at = env.step_ns("anonymous");
    }
    assert_eq!(down_at - first, pending * S);
    assert!(env.sink.take().is_empty(), "fired before the outage");
    let restart_ms = (down_at + outage * S) / 1_000_000;
    let env2 = start_with(&[("anonymous", &rules)], Some(store), restart_ms, tweak);
    let r1 = env2.step_ns("anonymous");
    env2.step_ns("anonymous");
    (first, down_at, env2, r1)
}

#[test]
fn for_state_is_restored_within_the_outage_tolerance_only() {
    // 59 minutes down (of the default 1h tolerance): the 2 minutes pending before the outage
    // count, the alert fires 3 minutes after the restart.
    let (first, down_at, env, r1) = restart_case("5m", 60, 120, 59 * 60);
    let restored_at = env.now_ns();
    assert_eq!(
        env.active_at("anonymous"),
        first / S * S + (restored_at - down_at / S * S)
    );
    let fired = env.step_until_fired("anonymous", 40);
    let after = (fired - restored_at) / S;
    assert!(
        (170..=180).contains(&after),
        "fired {after}s after the restoration"
    );
    let _ = r1;
    // 61 minutes down: ALERTS_FOR_STATE is older than the tolerance, nothing is restored and
    // the alert waits its whole `for` again.
    let (_, _, env, r1) = restart_case("5m", 60, 120, 61 * 60);
    assert_eq!(env.active_at("anonymous"), r1);
    let fired = env.step_until_fired("anonymous", 40);
    assert_eq!(fired - r1, 300 * S);
}

#[test]
fn restoration_leaves_at_least_the_grace_period_before_firing() {
    // `for: 5m`, pending 4m30s when the ruler went down: only 30s would remain, less than the
    // 60s grace period, so the alert fires one grace period after the restoration.
    let (_, _, env, _) = restart_case("5m", 60, 270, 120);
    let restored_at = env.now_ns();
    assert_eq!(env.active_at("anonymous"), restored_at + 60 * S - 300 * S);
    let fired = env.step_until_fired("anonymous", 20);
    assert!(fired >= restored_at + 60 * S, "fired before the grace period");
    assert!(fired < restored_at + 70 * S, "fired late");
}

#[test]
fn alerts_with_for_shorter_than_the_grace_period_are_not_restored() {
    // `for: 30s` with a 10m grace period: restoring would hold the alert for 10 minutes, so
    // Prometheus skips it and the alert waits its 30s from the restart.
    let (_, _, env, r1) = restart_case("30s", 600, 20, 60);
    assert_eq!(env.active_at("anonymous"), r1);
    let fired = env.step_until_fired("anonymous", 10);
    assert_eq!(fired - r1, 30 * S);
    let g = env.group("anonymous");
    assert!(g.alerting_rules().all(|r| r.is_restored()));
}

#[test]
fn the_configured_default_query_offset_applies_to_groups_without_their_own() {
    let rules = "groups:\n- name: off\n  rules:\n  - record: m:copy\n    expr: m\n  - alert: Up\n    expr: m > 0\n- name: own\n  query_offset: 0s\n  rules:\n  - record: m:own\n    expr: m\n";
    let env = start_with(&[("anonymous", rules)], None, T0, |c| {
        c.query_offset = PromDuration::from_secs(60);
    });
    // Only data older than a minute before the evaluations: seen through the offset only.
    write(&*env.store, "anonymous", "m", &[(T0 - 70_000, 7.0)]);
    let tenant = TenantId::new("anonymous").unwrap_or_else(|e| panic!("{e}"));
    let (off, own) = {
        let gs = env.svc.tenant_groups(&tenant);
        let find = |n: &str| {
            gs.iter()
                .find(|g| g.name == n)
                .cloned()
                .unwrap_or_else(|| panic!("no group {n}"))
        };
        (find("off"), find("own"))
    };
    // Three evaluations: ALERTS is written once `for` state restoration ran (after the second).
    for _ in 0..3 {
        let next = env
            .svc
            .next_eval_ns(&off.tenant, &off.file, &off.name)
            .unwrap_or_default();
        env.clock.set(at_ns(next));
        env.svc.tick();
    }
    let last = off.last_eval_ts().unwrap_or_default();
    let raw = |q: &str| -> Vec<i64> {
        let querier = env.store.querier(&tenant).unwrap_or_else(|e| panic!("{e}"));
        let sel = querier
            .select(
                &[fenghuo_storage::model::Matcher::equal("__name__", q)],
                &fenghuo_storage::api::SelectHints {
                    start: T0 - 3_600_000,
                    end: T0 + 3_600_000,
                    max_samples: None,
                },
            )
            .unwrap_or_else(|e| panic!("{e}"));
        sel.iter().flat_map(|s| s.floats.iter().map(|p| p.t)).collect()
    };
    // Samples of the group without its own offset are written a minute before evaluation.
    assert_eq!(raw("m:copy").last().copied(), Some(last - 60_000));
    assert_eq!(raw("ALERTS").last().copied(), Some(last - 60_000));
    assert_eq!(raw("ALERTS_FOR_STATE").last().copied(), Some(last - 60_000));
    // The group's own `query_offset: 0s` overrides the default.
    assert_eq!(raw("m:own").last().copied(), own.last_eval_ts());
    assert_eq!(off.query_offset_ms, None);
}

/// The `/metrics` text lines of one tenant's group.
fn group_metric_lines(tenant: &str, key: &str) -> Vec<String> {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&prometheus::default_registry().gather())
        .unwrap_or_default();
    let (t, g) = (format!("tenant=\"{tenant}\""), format!("rule_group=\"{key}\""));
    text.lines()
        .filter(|l| l.contains(&t) && l.contains(&g))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_removed_groups_metrics_are_deleted() {
    let stays = "- name: stays\n  rules:\n  - record: a\n    expr: vector(1)\n";
    let goes = "- name: goes\n  rules:\n  - alert: B\n    expr: vector(1) > 0\n    for: 1m\n";
    let env = start(&[("metrics-gc", &format!("groups:\n{stays}{goes}"))], None, T0);
    let tenant = TenantId::new("metrics-gc").unwrap_or_else(|e| panic!("{e}"));
    let groups = env.svc.tenant_groups(&tenant);
    assert_eq!(groups.len(), 2);
    // Three rounds: the alerting group's `for` restoration (and its metric) runs after the second.
    for _ in 0..3 {
        let next = groups
            .iter()
            .filter_map(|g| env.svc.next_eval_ns(&g.tenant, &g.file, &g.name))
            .max()
            .unwrap_or_default();
        env.clock.set(at_ns(next));
        env.svc.tick();
    }
    let key = |name: &str| {
        groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.key())
            .unwrap_or_default()
    };
    let before = group_metric_lines("metrics-gc", &key("goes"));
    // Every per-group family: evaluations, failures, iterations (scheduled and missed), last
    // duration, last evaluation, interval, restore duration, rules, samples.
    assert_eq!(before.len(), 10, "{before:#?}");
    let kept = group_metric_lines("metrics-gc", &key("stays")).len();
    std::fs::write(env.dir.join("metrics-gc-0.yml"), format!("groups:\n{stays}")).unwrap_or_default();
    assert!(env.svc.reload(None).is_ok());
    assert_eq!(
        group_metric_lines("metrics-gc", &key("goes")),
        Vec::<String>::new()
    );
    assert_eq!(group_metric_lines("metrics-gc", &key("stays")).len(), kept);
}
