//! Raft metrics, registered in `prometheus::default_registry()`.

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, Opts};

fn add_to_registry<C: prometheus::core::Collector + Clone + 'static>(c: C) -> C {
    if let Err(e) = prometheus::default_registry().register(Box::new(c.clone())) {
        tracing::warn!(error = %e, "Could not register a Raft metric.");
    }
    c
}

/// Leader changes seen by this node, per shard group.
pub static LEADER_CHANGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    add_to_registry(
        IntCounterVec::new(
            Opts::new(
                "fenghuo_raft_leader_changes_total",
                "Leader changes of each shard's Raft group seen by this node.",
            ),
            &["shard"],
        )
        .unwrap_or_else(|e| panic!("metric definition: {e}")),
    )
});

/// Raft entries proposed by this node (each a batch of proposals).
pub static ENTRIES_PROPOSED: LazyLock<IntCounter> = LazyLock::new(|| {
    add_to_registry(
        IntCounter::new(
            "fenghuo_raft_entries_proposed_total",
            "Raft entries this node proposed; each carries one or more coalesced proposals.",
        )
        .unwrap_or_else(|e| panic!("metric definition: {e}")),
    )
});

/// Proposals (store writes) carried by those entries.
pub static PROPOSALS: LazyLock<IntCounter> = LazyLock::new(|| {
    add_to_registry(
        IntCounter::new(
            "fenghuo_raft_proposals_total",
            "Store writes proposed to Raft groups by this node (coalesced into entries).",
        )
        .unwrap_or_else(|e| panic!("metric definition: {e}")),
    )
});

/// Registers every Raft metric, so /metrics lists them before first use.
pub fn register() {
    LazyLock::force(&LEADER_CHANGES);
    LazyLock::force(&ENTRIES_PROPOSED);
    LazyLock::force(&PROPOSALS);
}
