//! Storage metrics, registered in `prometheus::default_registry()`.
//!
//! Gauges are updated with deltas (`add`/`sub`) so several stores in one
//! process (tests) keep them consistent.

use std::sync::LazyLock;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

fn add_to_registry<C: prometheus::core::Collector + Clone + 'static>(c: C) -> C {
    if let Err(e) = prometheus::default_registry().register(Box::new(c.clone())) {
        tracing::warn!(error = %e, "Could not register a storage metric.");
    }
    c
}

fn counter(name: &str, help: &str) -> IntCounter {
    add_to_registry(IntCounter::new(name, help).unwrap_or_else(|_| unreachable_metric(name)))
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    add_to_registry(
        IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| unreachable_metric(name)),
    )
}

fn gauge(name: &str, help: &str) -> IntGauge {
    add_to_registry(IntGauge::new(name, help).unwrap_or_else(|_| unreachable_metric(name)))
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    add_to_registry(
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
            .unwrap_or_else(|_| unreachable_metric(name)),
    )
}

/// Metric construction only fails on invalid names, which are constants here.
#[cold]
fn unreachable_metric(name: &str) -> ! {
    panic!("invalid metric definition {name}")
}

fn exp_buckets(start: f64, factor: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| start * factor.powi(i as i32)).collect()
}

pub static ACTIVE_SERIES: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "fenghuo_storage_active_series",
        "Series held in the in-memory head (active series).",
    )
});

pub static SAMPLES_APPENDED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_storage_samples_appended_total",
        "Samples accepted by storage, by type (float, histogram).",
        &["type"],
    )
});

pub static EXEMPLARS_APPENDED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "fenghuo_storage_exemplars_appended_total",
        "Exemplars accepted by storage.",
    )
});

pub static SAMPLES_REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_storage_samples_rejected_total",
        "Samples and histograms refused by storage, by reason.",
        &["reason"],
    )
});

pub static SERIES_CREATED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "fenghuo_storage_series_created_total",
        "Series created in the head.",
    )
});

pub static SERIES_EVICTED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "fenghuo_storage_series_evicted_total",
        "Idle series evicted from the in-memory head.",
    )
});

pub static DISK_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "fenghuo_storage_disk_bytes",
        "Bytes on disk used by storage (RocksDB files and shard logs).",
    )
});

pub static HEAD_CHUNKS: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "fenghuo_storage_head_chunks",
        "Open and not yet flushed chunks in the head.",
    )
});

pub static CHUNKS_WRITTEN: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "fenghuo_storage_chunks_written_total",
        "Chunks written to disk by checkpoints.",
    )
});

pub static CHUNKS_COMPACTED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "fenghuo_storage_chunks_compacted_total",
        "Chunks merged away by compaction.",
    )
});

pub static CHECKPOINT_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "fenghuo_storage_checkpoint_duration_seconds",
        "Duration of head checkpoints (flush of chunks and head state).",
        exp_buckets(0.001, 2.0, 16),
    )
});

pub static COMPACTION_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "fenghuo_storage_compaction_duration_seconds",
        "Duration of chunk compactions of one time window.",
        exp_buckets(0.001, 2.0, 16),
    )
});

pub static LOG_BYTES: LazyLock<IntGauge> =
    LazyLock::new(|| gauge("fenghuo_storage_log_bytes", "Bytes held by shard logs on disk."));

pub static LOG_SYNC_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "fenghuo_storage_log_sync_duration_seconds",
        "Duration of shard log fsyncs (one sync covers a group of appends).",
        exp_buckets(0.0001, 2.0, 16),
    )
});

pub static PARTITIONS_DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "fenghuo_storage_retention_partitions_dropped_total",
        "Time partitions deleted by retention.",
    )
});

/// Records a rejection.
pub fn rejected(reason: &crate::api::RejectReason) {
    SAMPLES_REJECTED.with_label_values(&[reason.metric_label()]).inc();
}

/// Registers every storage metric now, so a fresh node's `/metrics` lists them (at zero) before
/// the first write, as Prometheus registers its own at start. Label values known in advance are
/// created too: a vector without children is not exported.
pub fn register() {
    for gauge in [&ACTIVE_SERIES, &DISK_BYTES, &HEAD_CHUNKS, &LOG_BYTES] {
        LazyLock::force(gauge);
    }
    for counter in [
        &EXEMPLARS_APPENDED,
        &SERIES_CREATED,
        &SERIES_EVICTED,
        &CHUNKS_WRITTEN,
        &CHUNKS_COMPACTED,
        &PARTITIONS_DROPPED,
    ] {
        LazyLock::force(counter);
    }
    for histogram in [&CHECKPOINT_SECONDS, &COMPACTION_SECONDS, &LOG_SYNC_SECONDS] {
        LazyLock::force(histogram);
    }
    for kind in ["float", "histogram"] {
        SAMPLES_APPENDED.with_label_values(&[kind]);
    }
    LazyLock::force(&SAMPLES_REJECTED);
}
