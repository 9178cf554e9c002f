//! The alerting service the binary wires in: loads the config, opens the state store, runs the
//! engine's tick loop, serves the HTTP routers, reloads on request and flushes on shutdown.

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::api::{ApiState, PostableAlert};
use crate::clock::Clock;
use crate::config::{LoadedConfig, load_file, load_str};
use crate::engine::{Engine, EngineOptions, TickReport};
use crate::error::AlertingError;
use crate::metrics;
use crate::store::{AlertStateStore, RocksStateStore};

/// Used when no config file is given: every alert goes to a receiver without integrations.
pub const DEFAULT_CONFIG: &str = "route:\n  receiver: default\nreceivers:\n- name: default\n";

/// Options of [`AlertingService::start`].
#[derive(Clone)]
pub struct AlertingOptions {
    pub config_file: Option<PathBuf>,
    /// State lives in `<data_dir>/alerting`.
    pub data_dir: PathBuf,
    /// The URL fenghuo is reachable at; used in links in messages.
    pub external_url: String,
    /// How often the engine evaluates groups; `None` disables the loop (tests call `tick`).
    pub tick_interval: Option<std::time::Duration>,
    /// A state store to use instead of RocksDB under `data_dir` (tests, or replicated state).
    pub store: Option<Arc<dyn AlertStateStore>>,
}

impl Default for AlertingOptions {
    fn default() -> Self {
        AlertingOptions {
            config_file: None,
            data_dir: PathBuf::from("./data"),
            external_url: "http://localhost:9093".into(),
            tick_interval: Some(std::time::Duration::from_secs(1)),
            store: None,
        }
    }
}

pub struct AlertingService {
    engine: Arc<Engine>,
    opts: AlertingOptions,
    stop: tokio::sync::watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn load(opts: &AlertingOptions) -> Result<LoadedConfig, AlertingError> {
    let loaded = match &opts.config_file {
        Some(p) => load_file(p)?,
        None => load_str(DEFAULT_CONFIG, std::path::Path::new("."))?,
    };
    for w in &loaded.warnings {
        tracing::warn!(warning = %w, "Alerting config warning.");
    }
    Ok(loaded)
}

impl AlertingService {
    /// Loads the config and persisted state and starts the evaluation loop.
    pub async fn start(opts: AlertingOptions, clock: Arc<dyn Clock>) -> Result<Arc<Self>, AlertingError> {
        let loaded = load(&opts)?;
        let store: Arc<dyn AlertStateStore> = match &opts.store {
            Some(s) => s.clone(),
            None => Arc::new(RocksStateStore::open(&opts.data_dir.join("alerting"))?),
        };
        let engine = Engine::new(
            clock,
            store,
            loaded,
            EngineOptions {
                external_url: opts.external_url.clone(),
                dry_run: false,
            },
        )?;
        let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
        let svc = Arc::new(AlertingService {
            engine: engine.clone(),
            opts: opts.clone(),
            stop,
            task: Mutex::new(None),
        });
        if let Some(every) = opts.tick_interval {
            let e = engine.clone();
            let handle = tokio::spawn(async move {
                let mut iv = tokio::time::interval(every);
                iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = iv.tick() => {
                            let timer = metrics::TICK_DURATION.start_timer();
                            e.tick_detached().await;
                            timer.observe_duration();
                        }
                        _ = stop_rx.changed() => break,
                    }
                }
            });
            *svc.task.lock() = Some(handle);
        }
        tracing::info!(tenants = engine.tenant_names().len(), "Alerting service started.");
        Ok(svc)
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// `/api/v2/...` (Alertmanager API) and `/api/v1/alerting/...` (fenghuo's API).
    pub fn router(self: &Arc<Self>) -> axum::Router {
        let st = ApiState {
            engine: self.engine.clone(),
        };
        crate::api::v2::router(st.clone()).merge(crate::api::fenghuo::router(st))
    }

    /// Re-reads the config file; all state is kept. On error the old config stays active.
    pub async fn reload(&self) -> Result<(), AlertingError> {
        let res = load(&self.opts).and_then(|l| self.engine.reload(l));
        match &res {
            Ok(()) => {
                metrics::CONFIG_RELOADS.with_label_values(&["success"]).inc();
                tracing::info!("Alerting config reloaded.");
            }
            Err(e) => {
                metrics::CONFIG_RELOADS.with_label_values(&["failure"]).inc();
                tracing::error!(error = %e, "Alerting config reload failed; keeping the old config.");
            }
        }
        res
    }

    /// Stops the loop and flushes state.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let handle = self.task.lock().take();
        if let Some(h) = handle {
            let _ = h.await;
        }
        // Deliveries in flight finish (each is bounded by the delivery timeout) and are recorded.
        self.engine.drain().await;
        if let Err(e) = self.engine.flush_state() {
            tracing::error!(error = %e, "Failed to flush alerting state.");
        }
    }

    /// What the ruler calls in-process: alerts in the API's shape for a tenant. Returns the
    /// validation errors of rejected alerts (valid ones are accepted regardless).
    pub fn ingest(&self, tenant: &str, alerts: Vec<PostableAlert>) -> Result<Vec<String>, AlertingError> {
        crate::engine::validate_tenant(tenant)?;
        self.engine.ingest_posted(tenant, alerts)
    }

    /// Runs one evaluation step now (tests with a manual clock).
    pub async fn tick(&self) -> TickReport {
        self.engine.tick().await
    }
}
