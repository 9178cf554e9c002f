//! One-member Raft groups pass the replicator conformance suite that the
//! local log passes (`fenghuo_storage::replicate::suite`).

use fenghuo_raft::{LogStoreOptions, RaftReplicas};
use fenghuo_storage::replicate::suite;

#[test]
fn raft_replicas_conform() {
    suite::run_all(&RaftReplicas::single_node(LogStoreOptions::default()).expect("runtime"));
}
