//! How a store's shards get their replicators: the [`ReplicaFactory`]
//! seam, and [`LocalReplicas`], the single-node local log (the Raft groups
//! are `fenghuo-raft`'s `RaftReplicas`).

use std::path::Path;
use std::sync::Arc;

use super::apply::Applied;
use super::shard::ShardMachine;
use crate::error::StorageError;
use crate::replicate::{LocalLog, LocalLogOptions, LocalReplica, Replicator, StateMachine as _};

/// What a replicator of one shard is opened with.
pub struct ReplicaContext<'a> {
    pub shard: u32,
    /// The shard's directory (its RocksDB directory and log live inside).
    pub dir: &'a Path,
    pub machine: Arc<ShardMachine>,
    pub log: LocalLogOptions,
}

/// Opens each shard's replicator: the seam between the store and how its
/// entries are committed (a local log, or a Raft group).
pub trait ReplicaFactory: Send + Sync {
    /// Opens the replicator of one shard; it has applied everything its
    /// log holds when this returns.
    fn open(&self, cx: ReplicaContext<'_>) -> Result<Box<dyn Replicator<Applied>>, StorageError>;

    /// Whether this node holds a replica of `shard` (in a cluster, a node
    /// holds only the shards placed on it; the store opens just those).
    fn holds(&self, _shard: u32) -> bool {
        true
    }
}

/// The single-node replicator of every shard: a [`LocalLog`] in the shard's
/// `log` directory.
pub struct LocalReplicas;

impl ReplicaFactory for LocalReplicas {
    fn open(&self, cx: ReplicaContext<'_>) -> Result<Box<dyn Replicator<Applied>>, StorageError> {
        // A store that moved to Raft keeps its newest writes in the Raft
        // log: a fresh local log would silently drop them.
        if cx.dir.join("raft").exists() {
            return Err(StorageError::InvalidConfig(format!(
                "shard {} runs on Raft ({}); it cannot go back to the local log (storage.replicator: local)",
                cx.shard,
                cx.dir.join("raft").display()
            )));
        }
        let persisted = cx.machine.applied_index();
        let log = LocalLog::open(&cx.dir.join("log"), cx.log, persisted + 1)?;
        let replica = LocalReplica::open(format!("shard {}", cx.shard), log, cx.machine)?;
        Ok(Box::new(replica))
    }
}
