//! The query engine's own metrics, registered in the default registry.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts};

use crate::error::QueryError;

struct Metrics {
    duration: prometheus::HistogramVec,
    errors: IntCounterVec,
    samples_loaded: IntCounter,
    queue_timeouts: IntCounter,
}

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let duration = prometheus::HistogramVec::new(
            HistogramOpts::new(
                "fenghuo_query_duration_seconds",
                "Time spent evaluating PromQL queries.",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 120.0,
            ]),
            &["kind"],
        )
        .expect("static metric definition is valid");
        let errors = IntCounterVec::new(
            Opts::new(
                "fenghuo_query_errors_total",
                "PromQL queries that failed, by error type.",
            ),
            &["type"],
        )
        .expect("static metric definition is valid");
        let samples_loaded = IntCounter::new(
            "fenghuo_query_samples_loaded_total",
            "Samples read from storage by PromQL queries.",
        )
        .expect("static metric definition is valid");
        let queue_timeouts = IntCounter::new(
            "fenghuo_query_queue_timeouts_total",
            "Queries that timed out waiting for one of the query.max_concurrency slots.",
        )
        .expect("static metric definition is valid");
        let r = prometheus::default_registry();
        // Registration fails only if another component registered the same
        // names; the metrics then still work, they are just not exported twice.
        let _ = r.register(Box::new(duration.clone()));
        let _ = r.register(Box::new(errors.clone()));
        let _ = r.register(Box::new(samples_loaded.clone()));
        let _ = r.register(Box::new(queue_timeouts.clone()));
        Metrics {
            duration,
            errors,
            samples_loaded,
            queue_timeouts,
        }
    })
}

/// Records one finished query.
pub(crate) fn observe_query(elapsed: Duration, instant: bool, err: Option<&QueryError>) {
    let m = metrics();
    let h: Histogram = m
        .duration
        .with_label_values(&[if instant { "instant" } else { "range" }]);
    h.observe(elapsed.as_secs_f64());
    if let Some(e) = err {
        m.errors.with_label_values(&[e.error_type()]).inc();
    }
}

pub(crate) fn add_samples_loaded(n: u64) {
    metrics().samples_loaded.inc_by(n);
}

/// A query gave up waiting for an evaluation slot.
pub(crate) fn queue_timeout() {
    metrics().queue_timeouts.inc();
}

/// Registers the engine's metrics now, so `/metrics` shows them (at zero)
/// before the first query.
pub fn register() {
    // A labelled histogram is only exported once a child exists; the kinds
    // are known, so create both at zero.
    for kind in ["instant", "range"] {
        metrics().duration.with_label_values(&[kind]);
    }
}
