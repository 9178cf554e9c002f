//! Engine options (Prometheus's `--query.*` flags and evaluation defaults).

use std::time::Duration;

use fenghuo_storage_api::model::PromDuration;

/// How the engine evaluates queries. Every field has Prometheus's default.
/// In configuration files durations are written the Prometheus way
/// (`lookback_delta: 5m`, `timeout: 2m`).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (`--query.lookback-delta`).
    #[serde(rename = "lookback_delta", deserialize_with = "PromDuration::deserialize_ms")]
    pub lookback_delta_ms: i64,
    /// Most samples a query may hold in memory at once (`--query.max-samples`).
    pub max_samples: usize,
    /// Longest a query may run (`--query.timeout`).
    #[serde(deserialize_with = "PromDuration::deserialize_std")]
    pub timeout: Duration,
    /// Step of subqueries written without one (the evaluation interval).
    #[serde(
        rename = "default_subquery_step",
        deserialize_with = "PromDuration::deserialize_ms"
    )]
    pub default_subquery_step_ms: i64,
    /// Whether experimental functions (`limitk`, `info`, `mad_over_time`...) parse.
    pub enable_experimental_functions: bool,
    /// Queries the HTTP API evaluates at once (`--query.max-concurrency`);
    /// later ones wait in a queue, their wait counting against their timeout.
    pub max_concurrency: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta_ms: 300_000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step_ms: 60_000,
            enable_experimental_functions: true,
            max_concurrency: 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_prometheus_defaults() {
        let o = EngineOptions::default();
        assert_eq!(o.lookback_delta_ms, 5 * 60 * 1000);
        assert_eq!(o.max_samples, 50_000_000);
        assert_eq!(o.timeout, Duration::from_secs(120));
    }

    #[test]
    fn durations_read_the_prometheus_way() {
        let o: EngineOptions = serde_yaml::from_str("lookback_delta: 1m30s\ntimeout: 10s\n").unwrap();
        assert_eq!(o.lookback_delta_ms, 90_000);
        assert_eq!(o.timeout, Duration::from_secs(10));
        assert!(serde_yaml::from_str::<EngineOptions>("lookback_delta_ms: 5\n").is_err());
    }
}
