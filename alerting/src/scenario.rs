//! `fenghuo test alerts FILE`: runs YAML scenarios (alerts, silences and acks over time) against
//! an alerting config on a manual clock and compares the notifications produced with the expected
//! ones, per receiver and time, like `promtool test rules` does for rules. The file format is
//! documented in `alerting/README.md`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::api::PostableAlert;
use crate::clock::{ManualClock, Ts};
use crate::config::{LoadedConfig, load_file, load_str};
use crate::duration::PromDuration;
use crate::engine::{DEFAULT_TENANT, Delivery, Engine, EngineOptions};
use crate::error::AlertingError;
use crate::model::LabelSet;
use crate::silence::Silence;
use crate::store::MemoryStateStore;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Config file path (relative to the scenario file), or inline `config`.
    #[serde(default)]
    pub config_file: Option<String>,
    #[serde(default)]
    pub config: Option<String>,
    pub tests: Vec<TestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    /// Start time (default 2024-01-01T00:00:00Z).
    #[serde(default)]
    pub start: Option<DateTime<Utc>>,
    /// Evaluation step (default 10s).
    #[serde(default)]
    pub interval: Option<PromDuration>,
    /// How long to run (default: last input/expectation + 1h).
    #[serde(default)]
    pub until: Option<PromDuration>,
    #[serde(default)]
    pub input: Vec<InputStep>,
    #[serde(default)]
    pub expect: Vec<Expected>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputStep {
    pub at: PromDuration,
    #[serde(default)]
    pub alerts: Vec<InputAlert>,
    #[serde(default)]
    pub silences: Vec<InputSilence>,
    #[serde(default)]
    pub acks: Vec<InputAck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputAlert {
    pub labels: LabelSet,
    #[serde(default)]
    pub annotations: LabelSet,
    /// When the alert ends, relative to the test start (default: resolve_timeout after posting).
    #[serde(default)]
    pub ends_at: Option<PromDuration>,
    /// Post the alert as resolved now.
    #[serde(default)]
    pub resolved: bool,
    /// The alert started this long before it is posted (default: when posted).
    #[serde(default)]
    pub started_before: Option<PromDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSilence {
    pub matchers: Vec<String>,
    pub duration: PromDuration,
    /// The silence starts this long after it is created (pending until then).
    #[serde(default)]
    pub starts_in: Option<PromDuration>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputAck {
    /// Acknowledge every group containing an alert with these labels.
    pub alert: LabelSet,
    pub by: String,
    #[serde(default)]
    pub ttl: Option<PromDuration>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub at: PromDuration,
    pub receiver: String,
    /// `group` (default), `escalation` or `delivery_failure`.
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub step: Option<usize>,
    /// `firing` or `resolved` (not checked when omitted).
    #[serde(default)]
    pub status: Option<String>,
    /// Label subsets, one per alert in the message (not checked when omitted).
    #[serde(default)]
    pub alerts: Option<Vec<LabelSet>>,
}

/// A notification produced by the run, relative to the test start.
#[derive(Debug, Clone)]
pub struct Produced {
    pub at: chrono::Duration,
    pub d: Delivery,
}

fn subset(sub: &LabelSet, of: &LabelSet) -> bool {
    sub.iter().all(|(k, v)| of.get(k) == Some(v))
}

fn matches(e: &Expected, p: &Produced) -> bool {
    if e.at.as_duration() != p.at || e.receiver != p.d.receiver {
        return false;
    }
    if e.kind.as_deref().unwrap_or("group") != p.d.kind {
        return false;
    }
    if e.step.is_some() && e.step != p.d.step {
        return false;
    }
    if e.status.as_ref().is_some_and(|s| *s != p.d.status) {
        return false;
    }
    if let Some(al) = &e.alerts {
        if al.len() != p.d.alerts.len() {
            return false;
        }
        let mut used = vec![false; p.d.alerts.len()];
        for want in al {
            match p
                .d
                .alerts
                .iter()
                .enumerate()
                .find(|(i, got)| !used[*i] && subset(want, got))
            {
                Some((i, _)) => used[i] = true,
                None => return false,
            }
        }
    }
    true
}

fn describe(p: &Produced) -> String {
    let names: Vec<String> = p.d.alerts.iter().map(crate::model::labels_string).collect();
    format!(
        "at {} receiver {} {}{} {}: {}",
        PromDuration(p.at),
        p.d.receiver,
        p.d.kind,
        p.d.step.map(|s| format!(" step {s}")).unwrap_or_default(),
        p.d.status,
        names.join(" ")
    )
}

/// Runs one test case; returns the notifications produced (one per receiver, deduplicated over
/// the receiver's integrations).
pub async fn run_case(loaded: &LoadedConfig, tc: &TestCase) -> Result<Vec<Produced>, AlertingError> {
    let start = tc.start.unwrap_or_else(|| {
        DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    });
    let step = tc
        .interval
        .map(|d| d.as_duration())
        .unwrap_or(chrono::Duration::seconds(10));
    if step <= chrono::Duration::zero() {
        return Err(AlertingError::Scenario("interval must be positive".into()));
    }
    let last = tc
        .input
        .iter()
        .map(|i| i.at.as_duration())
        .chain(tc.expect.iter().map(|e| e.at.as_duration()))
        .max()
        .unwrap_or_default();
    let until = tc
        .until
        .map(|d| d.as_duration())
        .unwrap_or(last + chrono::Duration::hours(1));
    let clock = Arc::new(ManualClock::new(start));
    let engine = Engine::new(
        clock.clone(),
        Arc::new(MemoryStateStore::default()),
        loaded.clone(),
        EngineOptions {
            external_url: "http://fenghuo.test".into(),
            dry_run: true,
        },
    )?;
    let mut inputs: Vec<&InputStep> = tc.input.iter().collect();
    inputs.sort_by_key(|i| i.at);
    let mut next_input = 0;
    let mut produced = Vec::new();
    let mut t = chrono::Duration::zero();
    while t <= until {
        let now: Ts = start + t;
        clock.set(now);
        while next_input < inputs.len() && inputs[next_input].at.as_duration() <= t {
            apply_input(&engine, inputs[next_input], start, now)?;
            next_input += 1;
        }
        let report = engine.tick().await;
        let mut seen = std::collections::BTreeSet::new();
        for d in report.deliveries {
            if d.outcome != "sent" {
                continue;
            }
            // One entry per receiver and message, whatever the number of integrations.
            if !seen.insert((d.receiver.clone(), d.group_key.clone(), d.kind.clone(), d.step)) {
                continue;
            }
            produced.push(Produced { at: t, d });
        }
        // Jump to the next interesting instant: the next step boundary.
        t += step;
    }
    Ok(produced)
}

fn apply_input(engine: &Engine, step: &InputStep, start: Ts, now: Ts) -> Result<(), AlertingError> {
    if !step.alerts.is_empty() {
        let posted: Vec<PostableAlert> = step
            .alerts
            .iter()
            .map(|a| PostableAlert {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: Some(now - a.started_before.map(|d| d.as_duration()).unwrap_or_default()),
                ends_at: if a.resolved {
                    Some(now)
                } else {
                    a.ends_at.map(|d| start + d.as_duration())
                },
                generator_url: String::new(),
            })
            .collect();
        let errs = engine.ingest_posted(DEFAULT_TENANT, posted)?;
        if !errs.is_empty() {
            return Err(AlertingError::Scenario(format!(
                "invalid input alerts: {}",
                errs.join("; ")
            )));
        }
    }
    for s in &step.silences {
        let start = now + s.starts_in.map(|d| d.as_duration()).unwrap_or_default();
        let mut matchers = Vec::new();
        for m in &s.matchers {
            for pm in crate::matchers::parse_matchers(m)? {
                matchers.push(crate::silence::SilenceMatcher {
                    name: pm.name.clone(),
                    value: pm.value.clone(),
                    is_regex: pm.op.is_regex(),
                    is_equal: pm.op.is_equal(),
                });
            }
        }
        engine.set_silence(
            DEFAULT_TENANT,
            Silence {
                id: String::new(),
                matchers,
                starts_at: start,
                ends_at: start + s.duration.as_duration(),
                updated_at: now,
                created_by: s.created_by.clone().unwrap_or_else(|| "scenario".into()),
                comment: s.comment.clone().unwrap_or_else(|| "scenario".into()),
                annotations: LabelSet::new(),
            },
        )?;
    }
    for a in &step.acks {
        let fp = crate::model::fingerprint(&a.alert);
        let views = engine.alert_views(DEFAULT_TENANT)?;
        let target = views
            .iter()
            .find(|v| subset(&a.alert, &v.alert.labels))
            .map(|v| v.alert.fingerprint())
            .unwrap_or(fp);
        engine.ack_alert(
            DEFAULT_TENANT,
            target,
            &a.by,
            "scenario",
            a.ttl.map(|d| d.as_duration()),
        )?;
    }
    Ok(())
}

/// Runs every test of a scenario file; returns the report and whether all passed.
pub async fn run_file(path: &Path) -> Result<(String, bool), AlertingError> {
    let text = std::fs::read_to_string(path).map_err(|e| AlertingError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let file: ScenarioFile = serde_yaml::from_str(&text)
        .map_err(|e| AlertingError::Scenario(format!("{}: {e}", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let loaded = match (&file.config_file, &file.config) {
        (Some(f), None) => load_file(&base.join(f))?,
        (None, Some(c)) => load_str(c, base)?,
        _ => {
            return Err(AlertingError::Scenario(
                "give exactly one of config_file or config".into(),
            ));
        }
    };
    let mut out = format!("Unit Testing: {}\n", path.display());
    let mut all_ok = true;
    for tc in &file.tests {
        let produced = run_case(&loaded, tc).await?;
        let mut expected: Vec<Option<&Expected>> = tc.expect.iter().map(Some).collect();
        let mut unexpected = Vec::new();
        for p in &produced {
            match expected.iter_mut().find(|e| e.is_some_and(|e| matches(e, p))) {
                Some(slot) => *slot = None,
                None => unexpected.push(describe(p)),
            }
        }
        let missing: Vec<String> = expected
            .iter()
            .flatten()
            .map(|e| {
                format!(
                    "at {} receiver {} {}{}{}",
                    e.at,
                    e.receiver,
                    e.kind.as_deref().unwrap_or("group"),
                    e.step.map(|s| format!(" step {s}")).unwrap_or_default(),
                    e.status.as_ref().map(|s| format!(" {s}")).unwrap_or_default()
                )
            })
            .collect();
        if missing.is_empty() && unexpected.is_empty() {
            out.push_str(&format!(
                "  {}: SUCCESS ({} notifications)\n",
                tc.name,
                produced.len()
            ));
        } else {
            all_ok = false;
            out.push_str(&format!("  {}: FAILED\n", tc.name));
            for m in missing {
                out.push_str(&format!("    missing:    {m}\n"));
            }
            for u in unexpected {
                out.push_str(&format!("    unexpected: {u}\n"));
            }
            let by_time: BTreeMap<String, usize> = BTreeMap::new();
            let _ = by_time;
        }
    }
    out.push_str(if all_ok { "SUCCESS\n" } else { "FAILED\n" });
    Ok((out, all_ok))
}
