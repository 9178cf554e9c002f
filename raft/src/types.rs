//! The Raft type configuration of a shard group, and what travels in it.
//!
//! A [`Proposal`] is one encoded shard log entry (`fenghuo_storage`'s
//! `LogEntry` encoding). On the node that proposed it, it also carries the
//! decoded entry, so the leader applies without decoding again; that part
//! never leaves the process. A [`Reply`] is what applying the entry did; it
//! too only exists where the entry was applied, and is never sent.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use fenghuo_storage::replicate::LogEntry;
use fenghuo_storage::tsdb::Applied;
use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub type NodeId = u64;

/// Where a node answers internal RPC.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub rpc_addr: String,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rpc_addr)
    }
}

/// One shard log entry proposed to a group.
#[derive(Clone, Serialize, Deserialize)]
pub struct Proposal {
    /// The entry's encoding: what the log stores and followers receive.
    pub bytes: Arc<[u8]>,
    /// The decoded entry, on the proposing node only (taken by apply).
    #[serde(skip)]
    pub decoded: Option<Arc<Mutex<Option<LogEntry>>>>,
}

impl Proposal {
    pub fn new(bytes: &[u8], entry: LogEntry) -> Self {
        Self {
            bytes: Arc::from(bytes),
            decoded: Some(Arc::new(Mutex::new(Some(entry)))),
        }
    }

    /// A proposal read back from the log or received from a leader.
    pub fn from_bytes(bytes: Arc<[u8]>) -> Self {
        Self { bytes, decoded: None }
    }

    /// The entry: the proposer's decoded copy if still there, else decoded
    /// from the bytes.
    pub fn take_entry(&self) -> Result<LogEntry, fenghuo_storage::StorageError> {
        if let Some(e) = self.decoded.as_ref().and_then(|d| d.lock().take()) {
            return Ok(e);
        }
        LogEntry::decode(&self.bytes)
    }
}

impl fmt::Debug for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proposal({} bytes)", self.bytes.len())
    }
}

/// What applying a proposal did, for its proposer. Local: serialises as
/// nothing and deserialises as `None`.
#[derive(Default)]
pub struct Reply(pub Option<Box<Applied>>);

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(a) => write!(f, "Reply({:?})", a.outcome),
            None => f.write_str("Reply(none)"),
        }
    }
}

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for Reply {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d)?;
        Ok(Reply(None))
    }
}

/// A snapshot on disk: a directory holding `db/` (a RocksDB checkpoint of
/// the shard) and `meta.json` (its Raft metadata).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotDir {
    pub path: PathBuf,
}

openraft::declare_raft_types!(
    /// The type configuration of every shard group.
    pub TypeConfig:
        D = Proposal,
        R = Reply,
        NodeId = NodeId,
        Node = Node,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotDir,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub type StorageError = openraft::StorageError<NodeId>;
