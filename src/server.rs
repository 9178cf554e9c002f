//! `fenghuo serve`: opens the store, wires ingest, query and alerting into
//! one HTTP server, and handles reloads and graceful shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fenghuo_alerting::{AlertingOptions, AlertingService, SystemClock};
use fenghuo_ingest::http::IngestState;
use fenghuo_ingest::{Distributor, IngestAppender, ShardedDistributor};
use fenghuo_query::Engine;
use fenghuo_query::api::QueryApi;
use fenghuo_raft::{LogStoreOptions, RaftReplicas};
use fenghuo_storage::replicate::LocalLogOptions;
use fenghuo_storage::tsdb::{ReplicatorKind, Tsdb, TsdbOptions};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::security;

/// State of the operational endpoints.
struct Ops {
    ready: AtomicBool,
    alerting: Arc<AlertingService>,
    ruler: Arc<fenghuo_alerting::ruler::ServerRuler>,
    /// fenghuo's config file, re-read on reload (its `ruler:` section takes effect).
    config_file: Option<PathBuf>,
}

impl Ops {
    /// Re-reads every reloadable configuration (SIGHUP, `POST /-/reload`);
    /// state is kept. A config file that no longer loads changes nothing.
    async fn reload(&self) -> anyhow::Result<()> {
        let ruler_config = match &self.config_file {
            Some(path) => Some(Config::load(path)?.ruler),
            None => None,
        };
        self.alerting
            .reload()
            .await
            .context("reloading the alerting configuration")?;
        // A reload waits for the evaluations in flight of the groups it replaces, which can
        // take as long as a slow query: keep that wait off the async workers.
        let ruler = self.ruler.clone();
        tokio::task::spawn_blocking(move || ruler.reload(ruler_config))
            .await
            .context("reload task failed")?
            .context("reloading the rule files")?;
        tracing::info!("Configuration reloaded.");
        Ok(())
    }
}

/// Opens the store with the configured replicator.
fn open_store(dir: &std::path::Path, opts: TsdbOptions) -> Result<Arc<Tsdb>, fenghuo_storage::StorageError> {
    match opts.replicator {
        ReplicatorKind::Local => Tsdb::open(dir, opts),
        ReplicatorKind::Raft => {
            let replicas = RaftReplicas::single_node(LogStoreOptions {
                log: LocalLogOptions {
                    segment_bytes: opts.log_segment_bytes,
                    fsync: opts.fsync,
                },
                ..LogStoreOptions::default()
            })?;
            Tsdb::open_with_replicas(
                dir,
                opts,
                Arc::new(fenghuo_storage::tsdb::SystemClock),
                true,
                &replicas,
            )
        }
    }
}

pub async fn serve(config: Config, config_file: Option<PathBuf>) -> anyhow::Result<()> {
    // Every family is in /metrics from the start, as in Prometheus, not from first use.
    fenghuo_storage::metrics::register();
    fenghuo_raft::metrics::register();
    fenghuo_ingest::metrics::register();
    fenghuo_query::metrics::register();
    fenghuo_alerting::metrics::register();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let tsdb_dir = config.data_dir.join("tsdb");
    let storage_opts = config.storage.clone();
    let tsdb = tokio::task::spawn_blocking(move || open_store(&tsdb_dir, storage_opts))
        .await?
        .context("opening the time-series store")?;

    let external_url = if config.server.external_url.is_empty() {
        format!("http://{}", config.server.listen)
    } else {
        config.server.external_url.clone()
    };
    let alerting = AlertingService::start(
        AlertingOptions {
            config_file: config.alerting.config_file.clone(),
            data_dir: config.data_dir.clone(),
            external_url: external_url.clone(),
            tick_interval: Some(Duration::from_secs(1)),
            store: None,
        },
        Arc::new(SystemClock),
    )
    .await
    .context("starting the alert engine")?;

    let engine = Arc::new(Engine::new(config.query.clone()));
    let distributor: Arc<dyn Distributor> = Arc::new(ShardedDistributor::new(tsdb.clone()));
    let ruler = Arc::new(
        fenghuo_alerting::ruler::ServerRuler::start(
            config.ruler.clone(),
            &external_url,
            fenghuo_alerting::ruler::Backend {
                engine: engine.clone(),
                queryable: tsdb.clone(),
                // Rule results take the write path: validated, counted and distributed as
                // remote-written series are.
                appender: Arc::new(IngestAppender::new(distributor.clone(), config.ingest.clone())),
            },
            Some(alerting.clone()),
            Arc::new(SystemClock),
        )
        .context("starting the ruler")?,
    );
    let ops = Arc::new(Ops {
        ready: AtomicBool::new(false),
        alerting: alerting.clone(),
        ruler: ruler.clone(),
        config_file,
    });
    let ingest = fenghuo_ingest::router(Arc::new(IngestState::new(distributor, config.ingest.clone())));
    let query = fenghuo_query::api::router(Arc::new(QueryApi::new(engine, tsdb.clone())));
    let app = Router::new()
        .merge(ingest)
        .merge(query)
        .merge(alerting.router())
        .merge(ruler.router())
        .merge(ops_router(ops.clone()));
    tokio::spawn(reload_on_sighup(ops.clone()));

    let app = match security::Authenticator::new(&config.server.auth) {
        Some(auth) => app.layer(axum::middleware::from_fn_with_state(auth, security::require_auth)),
        None => app,
    };

    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    ops.ready.store(true, Ordering::SeqCst);
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(listen = %config.server.listen, scheme, data_dir = %config.data_dir.display(), "fenghuo is ready.");

    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    match &config.server.tls {
        Some(tls) => {
            let listener = security::TlsListener::new(listener, security::tls_acceptor(tls)?)?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await
                .context("serving HTTPS")?;
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await
                .context("serving HTTP")?;
        }
    }
    ops.ready.store(false, Ordering::SeqCst);
    tracing::info!("Shutting down: saving alerting state and flushing the store.");
    ruler.shutdown().await;
    alerting.shutdown().await;
    tokio::time::timeout(grace, tokio::task::spawn_blocking(move || tsdb.close()))
        .await
        .context("store did not close within the grace period")??
        .context("closing the store")?;
    tracing::info!("fenghuo stopped.");
    Ok(())
}

fn ops_router(ops: Arc<Ops>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "fenghuo is Healthy.\n" }))
        .route("/-/ready", get(ready))
        // Prometheus accepts both methods.
        .route("/-/reload", post(reload).put(reload))
        .with_state(ops)
}

async fn ready(State(ops): State<Arc<Ops>>) -> Response {
    if !ops.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response();
    }
    // Alert state the store refused is kept in memory and retried; until it is written, a
    // crash would lose it, and a load balancer should know.
    if let Some(why) = ops.alerting.engine().state_error() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Service Unavailable: {why}\n"),
        )
            .into_response();
    }
    (StatusCode::OK, "fenghuo is Ready.\n").into_response()
}

async fn reload(State(ops): State<Arc<Ops>>) -> Response {
    match ops.reload().await {
        Ok(()) => (StatusCode::OK, "").into_response(),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "Reload failed.");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to reload config: {e:#}\n"),
            )
                .into_response()
        }
    }
}

async fn reload_on_sighup(ops: Arc<Ops>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        if let Err(e) = ops.reload().await {
            tracing::error!(error = format!("{e:#}"), "Reload on SIGHUP failed.");
        }
    }
}

async fn metrics() -> Response {
    let encoder = prometheus::TextEncoder::new();
    let families = prometheus::default_registry().gather();
    match encoder.encode_to_string(&families) {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("Received shutdown signal.");
}
