//! Per-request and per-series limits of the write path.

use fenghuo_storage_api::model::PromDuration;
use serde::Deserialize;

/// Limits enforced before anything is written. Defaults follow Mimir's where
/// Prometheus has none, loosened where real Kubernetes label sets need it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngestLimits {
    /// Largest accepted (compressed) request body.
    pub max_request_bytes: usize,
    /// Largest accepted decompressed protobuf message.
    pub max_decompressed_bytes: usize,
    /// Most series in one request.
    pub max_series_per_request: usize,
    /// Most labels on one series (including `__name__`).
    pub max_labels_per_series: usize,
    pub max_label_name_bytes: usize,
    pub max_label_value_bytes: usize,
    /// How far in the future (relative to the receiver's clock) a sample
    /// may be; later ones are rejected as bad input.
    #[serde(rename = "max_future", deserialize_with = "PromDuration::deserialize_ms")]
    pub max_future_ms: i64,
    /// Most write requests processed at once; more get 503 (retried).
    pub max_inflight_requests: usize,
    /// Most bytes the write requests in flight may hold: each request counts
    /// its compressed body, then twice its decompressed size (the message and
    /// what it decodes into). Past it requests get 503 (retried). Must be at
    /// least `max_request_bytes + 2 * max_decompressed_bytes`, so any single
    /// acceptable request fits.
    pub max_inflight_bytes: usize,
    /// Add a zero sample at a series' created timestamp (remote write 2.0),
    /// as Prometheus's `created-timestamp-zero-ingestion` feature does.
    pub created_timestamp_zero_ingestion: bool,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            max_request_bytes: 64 << 20,
            max_decompressed_bytes: 256 << 20,
            max_series_per_request: 100_000,
            max_labels_per_series: 64,
            max_label_name_bytes: 1024,
            max_label_value_bytes: 4096,
            max_future_ms: 10 * 60 * 1000,
            max_inflight_requests: 256,
            max_inflight_bytes: 1 << 30,
            created_timestamp_zero_ingestion: false,
        }
    }
}

impl IngestLimits {
    /// Checks that the limits fit together.
    pub fn validate(&self) -> Result<(), String> {
        let one_request = self.max_request_bytes + 2 * self.max_decompressed_bytes;
        if self.max_inflight_bytes < one_request {
            return Err(format!(
                "ingest.max_inflight_bytes ({}) is below max_request_bytes + 2 * max_decompressed_bytes ({one_request}): the largest acceptable request could never be processed",
                self.max_inflight_bytes
            ));
        }
        Ok(())
    }
}
