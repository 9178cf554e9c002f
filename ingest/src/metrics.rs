//! Metrics of the write path, registered in the process-wide registry.

use std::sync::LazyLock;

use prometheus::{
    HistogramVec, IntCounter, IntCounterVec, register_histogram_vec, register_int_counter,
    register_int_counter_vec,
};

pub static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "fenghuo_ingest_requests_total",
        "Remote-write requests by protocol version and HTTP status code.",
        &["protocol", "code"]
    )
    .expect("metric registers once")
});

pub static WRITTEN: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "fenghuo_ingest_written_total",
        "Items stored through the write path (remote write and rule results), by tenant and kind (sample, histogram, exemplar).",
        &["tenant", "kind"]
    )
    .expect("metric registers once")
});

pub static REJECTED_SAMPLES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "fenghuo_ingest_rejected_samples_total",
        "Samples and histograms of accepted requests that storage refused, by reason.",
        &["reason"]
    )
    .expect("metric registers once")
});

/// Whole requests refused before storage (undecodable, invalid, over a limit): their samples
/// cannot always be counted (a garbage body has none), so they are counted as requests.
pub static REJECTED_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "fenghuo_ingest_rejected_requests_total",
        "Remote-write requests refused as a whole, by reason.",
        &["reason"]
    )
    .expect("metric registers once")
});

pub static RECEIVED_BYTES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "fenghuo_ingest_received_bytes_total",
        "Compressed remote-write body bytes received."
    )
    .expect("metric registers once")
});

pub static REQUEST_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "fenghuo_ingest_request_duration_seconds",
        "Time to decode, validate and durably store a remote-write request.",
        &["protocol"],
        vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
        ]
    )
    .expect("metric registers once")
});

/// Counts what storage wrote and refused for one write (remote write or rule output).
/// Tenants with a series of their own in `fenghuo_ingest_written_total`; the
/// rest are counted under `__other__`.
pub const MAX_TENANT_LABELS: usize = 1000;

static TENANT_LABELS: LazyLock<fenghuo_storage_api::metric_labels::LabelValueCap> =
    LazyLock::new(|| fenghuo_storage_api::metric_labels::LabelValueCap::new(MAX_TENANT_LABELS));

pub fn record_outcome(tenant: &str, outcome: &fenghuo_storage_api::api::AppendOutcome) {
    let tenant = TENANT_LABELS.label(tenant);
    for (kind, n) in [
        ("sample", outcome.samples_written),
        ("histogram", outcome.histograms_written),
        ("exemplar", outcome.exemplars_written),
    ] {
        WRITTEN.with_label_values(&[tenant, kind]).inc_by(n);
    }
    for r in &outcome.rejected {
        REJECTED_SAMPLES
            .with_label_values(&[r.reason.metric_label()])
            .inc();
    }
}

/// Registers the write path's metrics now, so `/metrics` shows them before
/// the first request.
pub fn register() {
    LazyLock::force(&REQUESTS);
    LazyLock::force(&WRITTEN);
    LazyLock::force(&REJECTED_SAMPLES);
    LazyLock::force(&REJECTED_REQUESTS);
    LazyLock::force(&RECEIVED_BYTES);
    // Histograms with a label are only exported once a child exists; the
    // protocol values are known, so create them at zero.
    for protocol in ["1.0", "2.0"] {
        REQUEST_DURATION.with_label_values(&[protocol]);
    }
}
