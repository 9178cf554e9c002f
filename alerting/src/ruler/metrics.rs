//! The ruler's metrics: Prometheus's `prometheus_rule_*` and `prometheus_notifications_*`
//! translated to `fenghuo_ruler_*`, with a `tenant` label next to `rule_group` (`file;name`).

use std::sync::LazyLock;

use prometheus::{
    Gauge, GaugeVec, Histogram, IntCounterVec, IntGaugeVec, histogram_opts, opts, register_gauge,
    register_gauge_vec, register_histogram, register_int_counter_vec, register_int_gauge_vec,
};

const GROUP: [&str; 2] = ["tenant", "rule_group"];

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register_int_counter_vec!(opts!(name, help), labels).unwrap_or_else(|_| {
        IntCounterVec::new(opts!(name, help), labels).unwrap_or_else(|_| std::process::abort())
    })
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    register_gauge_vec!(opts!(name, help), labels).unwrap_or_else(|_| {
        GaugeVec::new(opts!(name, help), labels).unwrap_or_else(|_| std::process::abort())
    })
}

fn int_gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register_int_gauge_vec!(opts!(name, help), labels).unwrap_or_else(|_| {
        IntGaugeVec::new(opts!(name, help), labels).unwrap_or_else(|_| std::process::abort())
    })
}

pub static EVALUATION_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    let o = histogram_opts!(
        "fenghuo_ruler_evaluation_duration_seconds",
        "Duration of one rule evaluation."
    );
    register_histogram!(o.clone())
        .unwrap_or_else(|_| Histogram::with_opts(o).unwrap_or_else(|_| std::process::abort()))
});

pub static EVALUATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_ruler_evaluations_total",
        "Rule evaluations, per group.",
        &GROUP,
    )
});

pub static EVALUATION_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_ruler_evaluation_failures_total",
        "Rule evaluations that failed (query, template limit or append errors), per group.",
        &GROUP,
    )
});

pub static ITERATIONS_MISSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_ruler_group_iterations_missed_total",
        "Group evaluations skipped because the previous one ran too long.",
        &GROUP,
    )
});

pub static ITERATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_ruler_group_iterations_total",
        "Scheduled group evaluations, missed ones included.",
        &GROUP,
    )
});

pub static GROUP_DURATION: LazyLock<GaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "fenghuo_ruler_group_last_duration_seconds",
        "Duration of the group's last evaluation.",
        &GROUP,
    )
});

pub static GROUP_LAST_EVAL: LazyLock<GaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "fenghuo_ruler_group_last_evaluation_timestamp_seconds",
        "Timestamp of the group's last evaluation.",
        &GROUP,
    )
});

pub static GROUP_INTERVAL: LazyLock<GaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "fenghuo_ruler_group_interval_seconds",
        "The group's evaluation interval.",
        &GROUP,
    )
});

pub static GROUP_RULES: LazyLock<IntGaugeVec> =
    LazyLock::new(|| int_gauge_vec("fenghuo_ruler_group_rules", "Rules in the group.", &GROUP));

pub static GROUP_SAMPLES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    int_gauge_vec(
        "fenghuo_ruler_group_last_evaluation_samples",
        "Samples the group's last evaluation returned.",
        &GROUP,
    )
});

pub static GROUP_RESTORE_DURATION: LazyLock<GaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "fenghuo_ruler_group_last_restore_duration_seconds",
        "Duration of the group's last 'for' state restoration.",
        &GROUP,
    )
});

pub static NOTIFICATIONS_SENT: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_ruler_notifications_sent_total",
        "Alerts sent, per Alertmanager.",
        &["alertmanager"],
    )
});

pub static NOTIFICATIONS_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_ruler_notifications_errors_total",
        "Alerts that could not be sent, per Alertmanager.",
        &["alertmanager"],
    )
});

pub static NOTIFICATIONS_DROPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "fenghuo_ruler_notifications_dropped_total",
        "Alerts dropped because the send queue was full.",
        &["alertmanager"],
    )
});

pub static NOTIFICATIONS_QUEUE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    int_gauge_vec(
        "fenghuo_ruler_notifications_queue_length",
        "Alerts waiting to be sent.",
        &["alertmanager"],
    )
});

pub static CONFIG_LAST_RELOAD_SUCCESS: LazyLock<Gauge> = LazyLock::new(|| {
    let name = "fenghuo_ruler_config_last_reload_successful";
    let help = "Whether the last rule reload succeeded.";
    register_gauge!(name, help)
        .unwrap_or_else(|_| Gauge::new(name, help).unwrap_or_else(|_| std::process::abort()))
});

/// Deletes every series of a removed group, as Prometheus's `Manager.Update` does, so
/// `/metrics` does not keep reporting groups that no longer exist.
pub fn remove_group(tenant: &str, group: &str) {
    let labels = [tenant, group];
    for c in [
        &EVALUATIONS,
        &EVALUATION_FAILURES,
        &ITERATIONS_MISSED,
        &ITERATIONS,
    ] {
        let _ = c.remove_label_values(&labels);
    }
    for g in [
        &GROUP_DURATION,
        &GROUP_LAST_EVAL,
        &GROUP_INTERVAL,
        &GROUP_RESTORE_DURATION,
    ] {
        let _ = g.remove_label_values(&labels);
    }
    for g in [&GROUP_RULES, &GROUP_SAMPLES] {
        let _ = g.remove_label_values(&labels);
    }
}

/// Registers the ruler's metrics now (called by [`crate::metrics::register`]).
pub fn register() {
    LazyLock::force(&EVALUATION_DURATION);
    for counter_vec in [
        &EVALUATIONS,
        &EVALUATION_FAILURES,
        &ITERATIONS_MISSED,
        &ITERATIONS,
        &NOTIFICATIONS_SENT,
        &NOTIFICATIONS_ERRORS,
        &NOTIFICATIONS_DROPPED,
    ] {
        LazyLock::force(counter_vec);
    }
    for gauge_vec in [
        &GROUP_DURATION,
        &GROUP_LAST_EVAL,
        &GROUP_INTERVAL,
        &GROUP_RESTORE_DURATION,
    ] {
        LazyLock::force(gauge_vec);
    }
    for int_gauge_vec in [&GROUP_RULES, &GROUP_SAMPLES, &NOTIFICATIONS_QUEUE] {
        LazyLock::force(int_gauge_vec);
    }
    LazyLock::force(&CONFIG_LAST_RELOAD_SUCCESS);
}
