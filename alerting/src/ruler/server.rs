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
    local: Option<Arc<LocalNotifier>>,
    external: Arc<AlertmanagerNotifier>,
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
        // Both sinks exist from the start so a reload can turn either on or off.
        let local = alerting.map(|svc| {
            Arc::new(LocalNotifier::new(
                svc,
                config.send_to_local_alertmanager,
                config.external_labels.clone(),
            ))
        });
        if let Some(l) = &local {
            sinks.push(l.clone());
        }
        let external = AlertmanagerNotifier::start(
            config.alertmanagers.clone(),
            config.notification_queue_capacity,
            config.external_labels.clone(),
            stop_rx,
        );
        sinks.push(external.clone());
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
        Ok(ServerRuler {
            service,
            stop,
            local,
            external,
        })
    }

    /// `/api/v1/rules` and `/api/v1/alerts`.
    pub fn router(&self) -> axum::Router {
        api::router(self.service.clone())
    }

    /// Re-reads the rule files (SIGHUP, `POST /-/reload`); with `config` (the `ruler:` section
    /// of a re-read config file), also takes its rule files, evaluation settings, external
    /// labels and URL, and where alerts go. On error the rules and settings in force stay.
    pub fn reload(&self, config: Option<RulerConfig>) -> Result<(), RulerError> {
        let Some(cfg) = config else {
            return self.service.reload(None);
        };
        cfg.validate()?;
        self.service.reload(Some(cfg.clone()))?;
        if let Some(l) = &self.local {
            l.configure(cfg.send_to_local_alertmanager, cfg.external_labels.clone());
        }
        self.external.configure(
            cfg.alertmanagers.clone(),
            cfg.notification_queue_capacity,
            cfg.external_labels.clone(),
        );
        Ok(())
    }

    /// Stops evaluation and the Alertmanager sender.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.service.shutdown().await;
    }
}
