//! The Raft type configuration of a shard group, and what travels in it.
//!
//! A [`Proposal`] is one Raft entry: a batch of shard log entries (their
//! `fenghuo_storage` encodings, length-prefixed) that concurrent proposers
//! coalesced, so each Raft entry carries many writes. On the node that
//! proposed it, it also carries the decoded entries, so the leader applies
//! without decoding again; that part never leaves the process. A [`Reply`]
//! is what applying each entry did; it too only exists where the entries
//! were applied, and is never sent.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use fenghuo_storage::StorageError as ShardError;
use fenghuo_storage::codec::{Reader, put_uvarint};
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

/// A batch of shard log entries proposed to a group as one Raft entry.
/// In the log (and on the wire) it is `[count uvarint]([length uvarint]
/// [entry encoding])*`.
#[derive(Clone, Serialize, Deserialize)]
pub struct Proposal {
    /// The entries' encodings (shared, not copied, by clones).
    pub entries: Arc<Vec<Vec<u8>>>,
    /// The decoded entries, on the proposing node only (taken by apply).
    #[serde(skip)]
    pub decoded: Option<Arc<Mutex<Option<Vec<LogEntry>>>>>,
}

impl Proposal {
    /// A batch of `(encoding, decoded entry)` pairs.
    pub fn batch(items: Vec<(Vec<u8>, LogEntry)>) -> Self {
        let (entries, decoded): (Vec<Vec<u8>>, Vec<LogEntry>) = items.into_iter().unzip();
        Self {
            entries: Arc::new(entries),
            decoded: Some(Arc::new(Mutex::new(Some(decoded)))),
        }
    }

    /// Pushes the pieces of the batch's encoding onto `pieces`: the length
    /// fields go into `buf` (whatever `buf` already holds leads the
    /// encoding, e.g. a header), the entries are referenced, not copied.
    pub fn encode_into<'a>(&'a self, buf: &'a mut Vec<u8>, pieces: &mut Vec<&'a [u8]>) {
        let lengths = buf;
        // Offsets first, slices after: `lengths` must not move while borrowed.
        let mut bounds = Vec::with_capacity(self.entries.len() + 1);
        put_uvarint(lengths, self.entries.len() as u64);
        bounds.push((0, lengths.len()));
        for e in self.entries.iter() {
            let at = lengths.len();
            put_uvarint(lengths, e.len() as u64);
            bounds.push((at, lengths.len()));
        }
        let lengths: &'a [u8] = lengths;
        pieces.push(&lengths[bounds[0].0..bounds[0].1]);
        for (e, (a, b)) in self.entries.iter().zip(&bounds[1..]) {
            pieces.push(&lengths[*a..*b]);
            pieces.push(e);
        }
    }

    /// Decodes the framing written by [`Self::encode_into`] (a proposal read
    /// back from the log or received from a leader).
    pub fn decode(bytes: &[u8]) -> Result<Self, ShardError> {
        let mut r = Reader::new(bytes, "Raft proposal");
        let n = r.uvarint()?;
        if n > bytes.len() as u64 {
            return Err(r.corrupt(format!("{n} entries in {} bytes", bytes.len())));
        }
        let mut entries = Vec::with_capacity(n as usize);
        for _ in 0..n {
            entries.push(r.bytes()?.to_vec());
        }
        if !r.is_empty() {
            return Err(r.corrupt("bytes after the last entry"));
        }
        Ok(Self {
            entries: Arc::new(entries),
            decoded: None,
        })
    }

    /// Bytes of the entries' encodings.
    pub fn size(&self) -> usize {
        self.entries.iter().map(Vec::len).sum()
    }

    /// The entries: the proposer's decoded copies if still there, else
    /// decoded from their encodings.
    pub fn take_entries(&self) -> Result<Vec<LogEntry>, ShardError> {
        if let Some(e) = self.decoded.as_ref().and_then(|d| d.lock().take()) {
            return Ok(e);
        }
        self.entries.iter().map(|b| LogEntry::decode(b)).collect()
    }
}

impl fmt::Debug for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Proposal({} entries, {} bytes)",
            self.entries.len(),
            self.size()
        )
    }
}

/// What applying each entry of a proposal did, for its proposers. Local:
/// serialises as nothing and deserialises as empty.
#[derive(Default)]
pub struct Reply(pub Vec<Applied>);

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply({} applied)", self.0.len())
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
        Ok(Reply(Vec::new()))
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
