//! Each shard's writes are entries of an ordered log; the shard's data is
//! the deterministic result of applying those entries in order.
//!
//! ```text
//!   append(batch) ──encode──▶ ShardLog::append ──durable index──▶ apply(index, entry) ──▶ AppendOutcome
//!                                                   │
//!   open ──▶ load persisted state (applied index I) ─┴─▶ replay entries > I
//!   checkpoint ──▶ persist state up to I ──▶ ShardLog::truncate_prefix(I)
//! ```
//!
//! The shard sees two seams ([`replica`]): a [`StateMachine`] that the log
//! drives (apply in index order, on every replica) and a [`Replicator`]
//! that turns a proposal into a committed, applied entry. Single node:
//! [`LocalReplica`] over [`local::LocalLog`], fsync'd segment files with
//! group commit. A Raft group per shard implements the same seams without
//! touching ingest or query.

pub mod conformance;
pub mod entry;
pub mod local;
pub mod replica;
pub mod segment;
pub mod suite;

pub use entry::LogEntry;
pub use local::{LocalLog, LocalLogOptions};
pub use replica::{LocalReplica, Replicator, StateMachine, replay};
pub use segment::{Damage, RepairReport, repair};

use crate::error::StorageError;

/// Receives `(index, entry bytes)` from [`ShardLog::read_from`].
pub type LogVisitor<'a> = dyn FnMut(u64, &[u8]) -> Result<(), StorageError> + 'a;

/// An ordered, durable log of one shard's write entries.
///
/// To ensure correctness, every implementation must guarantee:
/// - **Consecutive indexes.** Entries get consecutive indexes in append
///   order, never reused, starting after the last index ever assigned (also
///   across restarts and prefix truncations).
/// - **Durable on return.** When `append` returns `Ok(i)`, entry `i` and
///   every entry before it survive `kill -9` and power loss (fsync, or a
///   quorum of replicas for a replicated log). On `Err` the entry may or may
///   not be in the log; callers treat the write as failed (retryable), and
///   replay may still apply it, which is harmless because applying is
///   idempotent for retried data.
/// - **Immutable entries.** `read_from(i)` yields exactly the bytes appended
///   at each index `>= i` that is still retained, in index order.
/// - **Prefix truncation only.** `truncate_prefix(i)` may drop entries
///   `<= i` (their effects are persisted by the state machine); it never
///   drops later entries. It may take effect lazily: after a crash, some
///   truncated entries can reappear, so replay skips indexes the state
///   machine has already persisted.
/// - **Concurrency.** `append` may be called from many threads; concurrent
///   appends share syncs (group commit) rather than serialising one fsync
///   per caller.
pub trait ShardLog: Send + Sync {
    /// Appends an entry; returns its index once it is durable.
    fn append(&self, entry: &[u8]) -> Result<u64, StorageError>;

    /// Calls `visit` for every retained entry with index `>= from`, in order.
    fn read_from(&self, from: u64, visit: &mut LogVisitor<'_>) -> Result<(), StorageError>;

    /// Allows the log to drop entries with index `<= upto`.
    fn truncate_prefix(&self, upto: u64) -> Result<(), StorageError>;

    /// Index of the last appended entry (0 when none ever was).
    fn last_index(&self) -> u64;

    /// Bytes the log occupies on disk.
    fn size_bytes(&self) -> u64;
}
