//! The local log's replicator passes the replicator conformance suite (the
//! one-member Raft groups run the same suite in `fenghuo-raft`).

use fenghuo_storage::replicate::suite;
use fenghuo_storage::tsdb::LocalReplicas;

#[test]
fn local_replicas_conform() {
    suite::run_all(&LocalReplicas);
}
