//! Command-line helpers the binary mounts under `fenghuo`: `check-config` (like `amtool
//! check-config`), `test alerts` (scenario files, like `promtool test rules`), `routes-test`
//! (like `amtool config routes test`) and `render` (template preview). Each returns its report as
//! text plus whether it succeeded.

use std::path::{Path, PathBuf};

use crate::config::{load_file, load_str};
use crate::error::AlertingError;
use crate::model::LabelSet;
use crate::route::RouteTree;
use crate::template::{Escape, Templates};

/// Alerting subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AlertingCommand {
    /// Validate alertmanager.yml files (like `amtool check-config`).
    CheckConfig {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run alerting scenario files: input alerts over time → expected notifications.
    TestAlerts {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show the receivers an alert with the given labels is routed to (like `amtool config routes test`).
    RoutesTest {
        #[arg(long)]
        config: PathBuf,
        /// Expected receivers, comma-separated; fails when they differ.
        #[arg(long = "verify.receivers")]
        verify_receivers: Option<String>,
        /// Labels as `name=value`.
        labels: Vec<String>,
    },
    /// Render a template against sample alerts (or alerts from a JSON file).
    Render {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Handlebars source, or `@name` for a registered template (e.g. `@email.html`).
        #[arg(long)]
        template: String,
        /// html, json or none.
        #[arg(long, default_value = "none")]
        escape: String,
        /// JSON file with an array of alerts in the API's shape.
        #[arg(long)]
        alerts: Option<PathBuf>,
    },
}

/// Runs a command; returns the report and whether it succeeded.
pub async fn run(cmd: AlertingCommand) -> (String, bool) {
    match cmd {
        AlertingCommand::CheckConfig { files } => check_config_files(&files),
        AlertingCommand::TestAlerts { files } => {
            let mut out = String::new();
            let mut ok = true;
            for f in files {
                match crate::scenario::run_file(&f).await {
                    Ok((report, passed)) => {
                        out.push_str(&report);
                        ok &= passed;
                    }
                    Err(e) => {
                        out.push_str(&format!("{}: FAILED\n  {e}\n", f.display()));
                        ok = false;
                    }
                }
            }
            (out, ok)
        }
        AlertingCommand::RoutesTest {
            config,
            verify_receivers,
            labels,
        } => match routes_test(&config, &labels, verify_receivers.as_deref()) {
            Ok(r) => r,
            Err(e) => (format!("{e}\n"), false),
        },
        AlertingCommand::Render {
            config,
            template,
            escape,
            alerts,
        } => match render(config.as_deref(), &template, &escape, alerts.as_deref()) {
            Ok(s) => (s, true),
            Err(e) => (format!("{e}\n"), false),
        },
    }
}

/// `amtool check-config`: validates each file and summarises what it found.
pub fn check_config_files(files: &[PathBuf]) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    for f in files {
        match check_config(f) {
            Ok(s) => out.push_str(&s),
            Err(e) => {
                ok = false;
                out.push_str(&format!("Checking '{}'  FAILED: {e}\n\n", f.display()));
            }
        }
    }
    out.push_str(if ok { "SUCCESS\n" } else { "FAILED\n" });
    (out, ok)
}

/// Validates one file, including templates and receivers (which compile templates and read
/// secret files), and reports it like amtool.
pub fn check_config(path: &Path) -> Result<String, AlertingError> {
    let loaded = load_file(path)?;
    // Building the runtime compiles templates and integrations: broken ones fail here.
    let limiters = crate::notify::LimiterRegistry::default();
    crate::engine::Runtime::build(loaded.clone(), "http://localhost", &limiters, chrono::Utc::now())?;
    let c = &loaded.config;
    let mut s = format!("Checking '{}'  SUCCESS\nFound:\n", path.display());
    s.push_str(" - global config\n - route\n");
    s.push_str(&format!(" - {} inhibit rules\n", c.inhibit_rules.len()));
    s.push_str(&format!(" - {} receivers\n", c.receivers.len()));
    s.push_str(&format!(" - {} templates\n", c.templates.len()));
    if !c.time_intervals.is_empty() || !c.mute_time_intervals.is_empty() {
        s.push_str(&format!(
            " - {} time intervals\n",
            c.time_intervals.len() + c.mute_time_intervals.len()
        ));
    }
    if !c.fenghuo.escalation_policies.is_empty() {
        s.push_str(&format!(
            " - {} escalation policies\n",
            c.fenghuo.escalation_policies.len()
        ));
    }
    for w in &loaded.warnings {
        s.push_str(&format!("WARNING: {w}\n"));
    }
    s.push('\n');
    Ok(s)
}

/// Parses `name=value` labels.
pub fn parse_labels(labels: &[String]) -> Result<LabelSet, AlertingError> {
    let mut out = LabelSet::new();
    for l in labels {
        let ms = crate::matchers::parse_matchers(l)?;
        for m in ms {
            if m.op != crate::matchers::MatchOp::Equal {
                return Err(AlertingError::BadRequest(format!(
                    "label {l:?} must be name=value"
                )));
            }
            out.insert(m.name, m.value);
        }
    }
    Ok(out)
}

/// `amtool config routes test`: prints the receivers, comma-separated.
pub fn routes_test(
    config: &Path,
    labels: &[String],
    verify: Option<&str>,
) -> Result<(String, bool), AlertingError> {
    let loaded = load_file(config)?;
    let route = loaded
        .config
        .route
        .clone()
        .ok_or_else(|| AlertingError::Config("no routes provided".into()))?;
    let tree = RouteTree::build(&route)?;
    let ls = parse_labels(labels)?;
    let receivers: Vec<String> = tree.matching(&ls).iter().map(|r| r.receiver.clone()).collect();
    let got = receivers.join(",");
    match verify {
        Some(v) if v != got => Ok((
            format!("{got}\nWARNING: Expected receivers did not match resolved receivers.\n"),
            false,
        )),
        _ => Ok((format!("{got}\n"), true)),
    }
}

pub fn parse_escape(s: &str) -> Result<Escape, AlertingError> {
    match s {
        "html" => Ok(Escape::Html),
        "json" => Ok(Escape::Json),
        "none" | "markdown" | "text" => Ok(Escape::None),
        other => Err(AlertingError::BadRequest(format!(
            "unknown escape {other:?} (html, json, none)"
        ))),
    }
}

/// Renders a template against sample alerts.
pub fn render(
    config: Option<&Path>,
    template: &str,
    escape: &str,
    alerts: Option<&Path>,
) -> Result<String, AlertingError> {
    let loaded = match config {
        Some(p) => load_file(p)?,
        None => load_str(crate::service::DEFAULT_CONFIG, Path::new("."))?,
    };
    let templates = Templates::load(&loaded.config.templates, &loaded.base_dir)?;
    let posted: Vec<crate::api::PostableAlert> = match alerts {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| AlertingError::Io {
                path: p.display().to_string(),
                source: e,
            })?;
            serde_json::from_str(&text)
                .map_err(|e| AlertingError::BadRequest(format!("{}: {e}", p.display())))?
        }
        None => vec![],
    };
    let clock = std::sync::Arc::new(crate::clock::SystemClock);
    let engine = crate::engine::Engine::new(
        clock,
        std::sync::Arc::new(crate::store::MemoryStateStore::default()),
        loaded,
        crate::engine::EngineOptions {
            external_url: "http://localhost:9093".into(),
            dry_run: true,
        },
    )?;
    let data = engine.sample_data(crate::engine::DEFAULT_TENANT, "preview", posted)?;
    let esc = parse_escape(escape)?;
    match template.strip_prefix('@') {
        Some(name) => {
            if !templates.has(name) {
                return Err(AlertingError::NotFound(format!("template {name:?} not found")));
            }
            templates.render(name, esc, &data)
        }
        None => templates.render_source(template, esc, &data),
    }
}
