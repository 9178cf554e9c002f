//! fenghuo's own configuration file (YAML) and the command-line overrides.
//! Every option has a default, so `fenghuo serve` runs with no file at all;
//! `deploy/examples/fenghuo.yml` documents each option and is loaded by the
//! tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use fenghuo_ingest::IngestLimits;
use fenghuo_query::EngineOptions;
use fenghuo_storage::tsdb::TsdbOptions;
use serde::Deserialize;

use crate::security::{AuthConfig, TlsConfig};

/// The default listen address. 9800 clashes with none of Prometheus (9090),
/// Alertmanager (9093/9094), VictoriaMetrics (8428), Grafana (3000) or the
/// common exporters.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9800";

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    /// Where RocksDB and all state live.
    pub data_dir: PathBuf,
    pub log: LogConfig,
    pub storage: TsdbOptions,
    pub ingest: IngestLimits,
    pub query: EngineOptions,
    pub alerting: AlertingConfig,
    /// Prometheus rule files per tenant, evaluated against the store.
    pub ruler: fenghuo_alerting::ruler::RulerConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            data_dir: PathBuf::from("./data"),
            log: LogConfig::default(),
            storage: TsdbOptions::default(),
            ingest: IngestLimits::default(),
            query: EngineOptions::default(),
            alerting: AlertingConfig::default(),
            ruler: fenghuo_alerting::ruler::RulerConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The URL users reach fenghuo under (links in notifications).
    pub external_url: String,
    /// Seconds to wait for in-flight requests on shutdown.
    pub shutdown_grace_seconds: u64,
    /// Serve HTTPS instead of HTTP.
    pub tls: Option<TlsConfig>,
    /// Require HTTP basic auth and restrict users to tenants.
    pub auth: AuthConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("constant address parses"),
            external_url: String::new(),
            shutdown_grace_seconds: 30,
            tls: None,
            auth: AuthConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertingConfig {
    /// An Alertmanager configuration file (`alertmanager.yml`), loaded
    /// unchanged; without it the alert engine runs with no receivers.
    pub config_file: Option<PathBuf>,
}

impl Config {
    /// Loads a file; relative paths in it are taken as they are (relative
    /// to the working directory), as Prometheus does for `--storage.tsdb.path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: Config =
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if !matches!(self.log.format.as_str(), "text" | "json") {
            bail!(
                "log.format must be \"text\" or \"json\", not {:?}",
                self.log.format
            );
        }
        if self.data_dir.as_os_str().is_empty() {
            bail!("data_dir must not be empty");
        }
        self.ruler.validate().context("ruler")?;
        self.ingest.validate().map_err(anyhow::Error::msg)?;
        self.server.auth.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples/fenghuo.yml")
    }

    /// The example file documents every option with its default value; if a
    /// default changes, the example must change with it.
    #[test]
    fn example_file_loads_and_states_the_defaults() {
        let loaded = Config::load(&example()).unwrap();
        assert_eq!(format!("{loaded:?}"), format!("{:?}", Config::default()));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yml");
        for (text, needle) in [
            ("storage:\n  retension: 1d\n", "retension"),
            ("query:\n  lookback_delta: 5 minutes\n", "5 minutes"),
            ("log:\n  format: xml\n", "log.format"),
            ("server:\n  listen: nowhere\n", "listen"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", Config::load(&path).unwrap_err());
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
