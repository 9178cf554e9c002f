//! The alert engine's Prometheus metrics, registered in the default registry. Names follow
//! `fenghuo_alerting_<name>_<unit>[_total]`.

use std::sync::LazyLock;

use prometheus::{
    Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, histogram_opts, opts,
    register_histogram, register_histogram_vec, register_int_counter, register_int_counter_vec,
    register_int_gauge, register_int_gauge_vec,
};

fn counter(name: &str, help: &str) -> IntCounter {
    register_int_counter!(opts!(name, help))
        .unwrap_or_else(|_| IntCounter::new(name, help).unwrap_or_else(|_| unreachable_counter()))
}

fn unreachable_counter() -> IntCounter {
    // Only reached if both registration and construction fail, which a valid name never does.
    IntCounter::new("fenghuo_alerting_invalid_metric_total", "placeholder")
        .unwrap_or_else(|_| std::process::abort())
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register_int_counter_vec!(opts!(name, help), labels).unwrap_or_else(|_| {
        IntCounterVec::new(opts!(name, help), labels).unwrap_or_else(|_| std::process::abort())
    })
}

fn gauge(name: &str, help: &str) -> IntGauge {
    register_int_gauge!(opts!(name, help))
        .unwrap_or_else(|_| IntGauge::new(name, help).unwrap_or_else(|_| std::process::abort()))
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register_int_gauge_vec!(opts!(name, help), labels).unwrap_or_else(|_| {
        IntGaugeVec::new(opts!(name, help), labels).unwrap_or_else(|_| std::process::abort())
    })
}

pub static ALERTS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "fenghuo_alerting_alerts",
        "Firing alerts held, by state: unprocessed (received, not yet through the notification \
         pipeline), active, suppressed (silenced, inhibited or muted) — Alertmanager's alertmanager_alerts.",
        &["state"],
    )
});
pub static LIMIT_REJECTIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_alerting_limit_rejections_total",
        "Alerts, silences and requests refused by a per-tenant limit, by limit.",
        &["limit"],
    )
});
pub static ALERTS_RECEIVED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_alerting_alerts_received_total",
        "Alerts received, by status (firing/resolved).",
        &["status"],
    )
});
pub static ALERTS_INVALID: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "fenghuo_alerting_alerts_invalid_total",
        "Alerts rejected as invalid.",
    )
});
pub static ALERTS_FIRED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_alerting_alerts_fired_total",
        "Alerts that started firing, by alertname (the first 500 names; later ones as __other__).",
        &["alertname"],
    )
});

/// Alert names with a series of their own in `fenghuo_alerting_alerts_fired_total`: alert
/// names come from whoever posts alerts, so they are capped.
pub const MAX_ALERTNAME_LABELS: usize = 500;

static ALERTNAME_LABELS: LazyLock<fenghuo_storage_api::metric_labels::LabelValueCap> =
    LazyLock::new(|| fenghuo_storage_api::metric_labels::LabelValueCap::new(MAX_ALERTNAME_LABELS));

/// Counts an alert that started firing.
pub fn alert_fired(alertname: &str) {
    ALERTS_FIRED
        .with_label_values(&[ALERTNAME_LABELS.label(alertname)])
        .inc();
}
pub static NOTIFICATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_alerting_notifications_total",
        "Notifications delivered, by receiver and integration.",
        &["receiver", "integration"],
    )
});
pub static NOTIFICATIONS_FAILED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_alerting_notifications_failed_total",
        "Failed notification attempts, by receiver, integration and reason.",
        &["receiver", "integration", "reason"],
    )
});
pub static DELIVERY_FAILURES_ESCALATED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_alerting_delivery_failures_escalated_total",
        "Deliveries that kept failing and were escalated.",
        &["receiver", "integration"],
    )
});
pub static DIGESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_alerting_digests_total",
        "Digest messages sent because a channel's rate budget was spent.",
        &["integration"],
    )
});
pub static DEFERRED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_alerting_notifications_deferred_total",
        "Notifications deferred until the channel's rate budget allows them.",
        &["integration"],
    )
});
pub static ESCALATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_alerting_escalation_steps_total",
        "Escalation steps fired, by policy.",
        &["policy"],
    )
});
pub static ACKS: LazyLock<IntCounter> =
    LazyLock::new(|| counter("fenghuo_alerting_acks_total", "Alert group acknowledgements."));
pub static STATE_WRITE_ERRORS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "fenghuo_alerting_state_write_errors_total",
        "Failed writes of alerting state.",
    )
});
pub static STATE_UNPERSISTED_TENANTS: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "fenghuo_alerting_state_unpersisted_tenants",
        "Tenants whose alerting state has changes the store refused and that are not written yet.",
    )
});
pub static CONFIG_RELOADS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_alerting_config_reloads_total",
        "Config reloads by result.",
        &["result"],
    )
});
pub static NOTIFY_LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    let o = histogram_opts!(
        "fenghuo_alerting_notification_latency_seconds",
        "Latency of notification deliveries.",
        vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
    );
    register_histogram_vec!(o.clone(), &["integration"])
        .unwrap_or_else(|_| HistogramVec::new(o, &["integration"]).unwrap_or_else(|_| std::process::abort()))
});
pub static TICK_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    let o = histogram_opts!(
        "fenghuo_alerting_tick_duration_seconds",
        "Duration of engine evaluation steps."
    );
    register_histogram!(o.clone())
        .unwrap_or_else(|_| Histogram::with_opts(o).unwrap_or_else(|_| std::process::abort()))
});

/// Registers the alert engine's and the ruler's metrics now, so a fresh node's `/metrics` lists
/// them before the first alert or rule evaluation, as Alertmanager and Prometheus register theirs
/// at start. `fenghuo_alerting_alerts` starts at zero in each state, as `alertmanager_alerts` does.
pub fn register() {
    for counter in [&ALERTS_INVALID, &ACKS, &STATE_WRITE_ERRORS] {
        LazyLock::force(counter);
    }
    LazyLock::force(&STATE_UNPERSISTED_TENANTS);
    for counter_vec in [
        &LIMIT_REJECTIONS,
        &ALERTS_RECEIVED,
        &ALERTS_FIRED,
        &NOTIFICATIONS,
        &NOTIFICATIONS_FAILED,
        &DELIVERY_FAILURES_ESCALATED,
        &DIGESTS,
        &DEFERRED,
        &ESCALATIONS,
        &CONFIG_RELOADS,
    ] {
        LazyLock::force(counter_vec);
    }
    LazyLock::force(&NOTIFY_LATENCY);
    LazyLock::force(&TICK_DURATION);
    for state in ["unprocessed", "active", "suppressed"] {
        ALERTS.with_label_values(&[state]);
    }
    crate::ruler::metrics::register();
}
