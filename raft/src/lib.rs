//! Raft replication of fenghuo's shards, on openraft 0.9.
//!
//! Each shard is one Raft group; its log is the shard's write-ahead log
//! ([`log_store::LogStore`]) and its state machine is the shard itself
//! ([`state_machine::ShardStateMachine`] over `fenghuo_storage`'s
//! `ShardMachine`): entries are applied in order on every replica, and a
//! replica that fell behind the purged log installs a snapshot (a RocksDB
//! checkpoint of the shard).

// openraft's storage traits return its `StorageError` (over 200 bytes);
// the helpers behind them return it too rather than convert at every call.
#![allow(clippy::result_large_err)]

pub mod log_store;
pub mod metrics;
pub mod network;
pub mod replica;
pub mod rpc;
pub mod state_machine;
pub mod types;

pub use log_store::{LogStore, LogStoreOptions};
pub use replica::{GroupRuntime, RaftReplica, RaftReplicas};
pub use state_machine::ShardStateMachine;
pub use types::{Node, NodeId, Proposal, Reply, SnapshotDir, TypeConfig};
