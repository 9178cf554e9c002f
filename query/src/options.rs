//! Engine options (Prometheus's `--query.*` flags and evaluation defaults).

use std::time::Duration;

/// How the engine evaluates queries. Every field has Prometheus's default.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (`--query.lookback-delta`).
    pub lookback_delta_ms: i64,
    /// Most samples a query may hold in memory at once (`--query.max-samples`).
    pub max_samples: usize,
    /// Longest a query may run (`--query.timeout`).
    #[serde(with = "duration_secs")]
    pub timeout: Duration,
    /// Step of subqueries written without one (the evaluation interval).
    pub default_subquery_step_ms: i64,
    /// Whether experimental functions (`limitk`, `info`, `mad_over_time`...) parse.
    pub enable_experimental_functions: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta_ms: 300_000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step_ms: 60_000,
            enable_experimental_functions: true,
        }
    }
}

/// `timeout` is written as seconds (a float) in configuration files.
mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
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
}
