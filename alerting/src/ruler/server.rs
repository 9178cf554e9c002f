//! What `fenghuo serve` mounts: the ruler with its notifiers (fenghuo's alert engine and the
//! configured external Alertmanagers) built from the `ruler:` config, its HTTP router, reload and
//! shutdown, in one handle so the binary's wiring stays a few lines.

use std::sync::Arc;

use crate::clock::Clock;
use crate::ruler::api;
use crate::ruler::config::RulerConfig;
use crate::ruler::error::RulerError;
use crate::ruler::group::{Backend, Notifier};
use crate::ruler::manager::{RulerOptions, RulerService};
use crate::ruler::notifier::{AlertmanagerNotifier, Fanout, LocalNotifier};
use crate::service::AlertingService;

/// The running ruler of a server.
pub struct ServerRuler {
    pub service: Arc<RulerService>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl ServerRuler {
    /// Starts evaluating `config`'s rules against `backend`; alerts go to `alerting` (when
    /// `send_to_local_alertmanager`) and to every external Alertmanager. Must run inside Tokio.
    pub fn start(
        config: RulerConfig,
        default_external_url: &str,
        backend: Backend,
        alerting: Option<Arc<AlertingService>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RulerError> {
        config.validate()?;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut sinks: Vec<Arc<dyn Notifier>> = Vec::new();
        if config.send_to_local_alertmanager
            && let Some(svc) = alerting
        {
            sinks.push(Arc::new(LocalNotifier {
                service: svc,
                external_labels: config.external_labels.clone(),
            }));
        }
        if config.alertmanagers.iter().any(|a| !a.urls.is_empty()) {
            sinks.push(AlertmanagerNotifier::start(
                config.alertmanagers.clone(),
                config.notification_queue_capacity,
                config.external_labels.clone(),
                stop_rx,
            ));
        }
        let service = RulerService::start(
            RulerOptions {
                config,
                default_external_url: default_external_url.to_string(),
                run_loop: true,
            },
            backend,
            Arc::new(Fanout(sinks)),
            clock,
        )?;
        let groups = service.all_groups();
        tracing::info!(
            groups = groups.len(),
            rules = groups.iter().map(|g| g.rules.len()).sum::<usize>(),
            "Ruler started."
        );
        Ok(ServerRuler { service, stop })
    }

    /// `/api/v1/rules` and `/api/v1/alerts`.
    pub fn router(&self) -> axum::Router {
        api::router(self.service.clone())
    }

    /// Re-reads the rule files (SIGHUP, `POST /-/reload`); with `config`, also takes its new
    /// rule files and evaluation settings. On error the rules in force stay.
    pub fn reload(&self, config: Option<RulerConfig>) -> Result<(), RulerError> {
        self.service.reload(config)
    }

    /// Stops evaluation and the Alertmanager sender.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.service.shutdown().await;
    }
}
