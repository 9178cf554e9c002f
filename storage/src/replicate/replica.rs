//! The seam between a shard's log and its state machine.
//!
//! A [`StateMachine`] is what the log drives: entries applied in index
//! order, on every replica, whoever proposed them. A [`Replicator`] is how
//! an entry becomes committed and applied: a proposer hands it an entry and
//! gets back the state machine's output for that entry once the entry is
//! durable and applied. The shard knows only these two traits, so the local
//! log ([`LocalReplica`]) and a Raft group are interchangeable under it.
//!
//! [`LocalReplica`] is the single-node replicator: append to a [`ShardLog`]
//! (durable on return, group commit), then apply in index order. Proposers
//! whose entries became durable out of order wait for their turn; the
//! proposer of index `i` applies entry `i` itself, which avoids a hand-off
//! to another thread per entry.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::{LogEntry, ShardLog};
use crate::error::StorageError;

/// A deterministic state driven by a log: the same entries applied in the
/// same order give the same state on every replica.
pub trait StateMachine: Send + Sync {
    /// What applying one entry tells its proposer.
    type Output: Send;

    /// Index of the last applied entry (0 before any).
    fn applied_index(&self) -> u64;

    /// Applies the entry at `index`, which must be `applied_index() + 1`.
    /// `None` is an entry without a write (a Raft leader's blank entry, a
    /// membership change): it only advances the index. `position`, when
    /// given, is the replicator's opaque position at `index` (a Raft
    /// group's applied log id and membership); the state machine persists
    /// the latest one together with its applied index.
    ///
    /// An error means the state can no longer be trusted: the replicator
    /// stops applying until the shard is reopened and replays its log.
    fn apply(
        &self,
        index: u64,
        entry: Option<LogEntry>,
        position: Option<&[u8]>,
    ) -> Result<Self::Output, StorageError>;
}

/// How a shard's entries get committed and applied.
pub trait Replicator<O>: Send + Sync {
    /// Commits `entry` (whose encoding is `bytes`) and returns the state
    /// machine's output once it is applied. On `Err` the entry may still be
    /// committed and applied later (the proposer treats the write as failed
    /// and retryable; applying retried data again is harmless).
    fn propose(&self, bytes: Vec<u8>, entry: LogEntry) -> Result<O, StorageError>;

    /// The state machine has persisted everything up to `index`: the log
    /// may drop those entries.
    fn persisted_upto(&self, index: u64) -> Result<(), StorageError>;

    /// Bytes the log occupies on disk.
    fn log_bytes(&self) -> u64;

    /// Why the replicator stopped applying, if it did.
    fn failure(&self) -> Option<String>;

    /// Whether proposals made here can commit now: a local log always, a
    /// Raft group only on its leader.
    fn leads(&self) -> bool {
        true
    }

    /// Stops the replicator (the store is closing, after its last
    /// checkpoint); proposals fail afterwards.
    fn close(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// Applies every entry of `log` after the state machine's applied index:
/// recovery on open. The log must continue exactly where the state stops.
pub fn replay<S: StateMachine + ?Sized>(log: &dyn ShardLog, sm: &S) -> Result<u64, StorageError> {
    let mut replayed = 0u64;
    let from = sm.applied_index() + 1;
    log.read_from(from, &mut |index, bytes| {
        let applied = sm.applied_index();
        if index <= applied {
            return Ok(());
        }
        if index != applied + 1 {
            return Err(StorageError::Corrupt {
                what: "shard log",
                detail: format!("entry {index} follows applied index {applied}: entries are missing"),
            });
        }
        sm.apply(index, Some(LogEntry::decode(bytes)?), None)?;
        replayed += 1;
        Ok(())
    })?;
    if sm.applied_index() != log.last_index() {
        return Err(StorageError::Corrupt {
            what: "shard log",
            detail: format!(
                "log ends at {} but the state was applied up to {}",
                log.last_index(),
                sm.applied_index()
            ),
        });
    }
    Ok(replayed)
}

/// The single-node replicator: a durable local log, applied in order.
pub struct LocalReplica<S: StateMachine, L: ShardLog> {
    log: L,
    sm: Arc<S>,
    /// Next log index allowed to apply; appliers wait for their turn.
    turn: Mutex<u64>,
    turn_cv: Condvar,
    /// Set when applying failed half-way: the state can no longer be
    /// trusted, so no further entry is accepted until the shard is reopened
    /// (replay rebuilds the state from the log).
    failed: Mutex<Option<String>>,
    /// Names the shard in logs and errors.
    name: String,
}

impl<S: StateMachine, L: ShardLog> LocalReplica<S, L> {
    /// Replays `log` into `sm` and starts accepting proposals after it.
    pub fn open(name: String, log: L, sm: Arc<S>) -> Result<Self, StorageError> {
        replay(&log, sm.as_ref())?;
        let next = sm.applied_index() + 1;
        Ok(Self {
            log,
            sm,
            turn: Mutex::new(next),
            turn_cv: Condvar::new(),
            failed: Mutex::new(None),
            name,
        })
    }

    fn check_failed(&self) -> Result<(), StorageError> {
        match &*self.failed.lock() {
            Some(why) => Err(StorageError::Io(format!("{} is failed: {why}", self.name))),
            None => Ok(()),
        }
    }
}

impl<S: StateMachine, L: ShardLog> Replicator<S::Output> for LocalReplica<S, L> {
    fn propose(&self, bytes: Vec<u8>, entry: LogEntry) -> Result<S::Output, StorageError> {
        self.check_failed()?;
        let index = self.log.append(&bytes)?;
        let mut turn = self.turn.lock();
        while *turn != index {
            if *turn > index {
                return Err(StorageError::Io(format!("log index {index} was already applied")));
            }
            self.check_failed()?;
            self.turn_cv.wait(&mut turn);
        }
        // Should applying panic, waiters for later indexes must not hang.
        let guard = PanicGuard {
            failed: &self.failed,
            turn_cv: &self.turn_cv,
        };
        let result = self.sm.apply(index, Some(entry), None);
        std::mem::forget(guard);
        if let Err(e) = &result {
            tracing::error!(shard = %self.name, index, error = %e,
                "Applying a log entry failed; the shard stops accepting writes.");
            *self.failed.lock() = Some(e.to_string());
        }
        *turn = index + 1;
        self.turn_cv.notify_all();
        result
    }

    fn persisted_upto(&self, index: u64) -> Result<(), StorageError> {
        self.log.truncate_prefix(index)
    }

    fn log_bytes(&self) -> u64 {
        self.log.size_bytes()
    }

    fn failure(&self) -> Option<String> {
        self.failed.lock().clone()
    }
}

/// Marks the replica failed and wakes waiting appliers if dropped, which
/// only happens when applying panics (it is forgotten otherwise).
struct PanicGuard<'a> {
    failed: &'a Mutex<Option<String>>,
    turn_cv: &'a Condvar,
}

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        *self.failed.lock() = Some("applying a log entry panicked".into());
        self.turn_cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::replicate::{LocalLog, LocalLogOptions};

    /// Records applied ticks; fails or panics on request.
    #[derive(Default)]
    struct Recorder {
        applied: Mutex<Vec<(u64, i64)>>,
        fail_next: AtomicBool,
        panic_next: AtomicBool,
    }

    impl StateMachine for Recorder {
        type Output = u64;

        fn applied_index(&self) -> u64 {
            self.applied.lock().last().map_or(0, |a| a.0)
        }

        fn apply(&self, index: u64, entry: Option<LogEntry>, _: Option<&[u8]>) -> Result<u64, StorageError> {
            if self.fail_next.swap(false, Ordering::SeqCst) {
                return Err(StorageError::Io("injected".into()));
            }
            if self.panic_next.swap(false, Ordering::SeqCst) {
                panic!("injected panic");
            }
            let Some(LogEntry::Tick { now_ms }) = entry else {
                return Err(StorageError::Io("unexpected entry".into()));
            };
            let mut a = self.applied.lock();
            assert_eq!(a.last().map_or(0, |x| x.0) + 1, index, "applied out of order");
            a.push((index, now_ms));
            Ok(index)
        }
    }

    fn tick(now_ms: i64) -> (Vec<u8>, LogEntry) {
        let e = LogEntry::Tick { now_ms };
        (e.encode(), e)
    }

    fn open(dir: &std::path::Path, sm: Arc<Recorder>) -> LocalReplica<Recorder, LocalLog> {
        let log = LocalLog::open(dir, LocalLogOptions::default(), sm.applied_index() + 1).unwrap();
        LocalReplica::open("test shard".into(), log, sm).unwrap()
    }

    #[test]
    fn concurrent_proposers_get_their_own_entry_applied_in_index_order() {
        let dir = tempfile::tempdir().unwrap();
        let sm = Arc::new(Recorder::default());
        let r = open(dir.path(), sm.clone());
        std::thread::scope(|s| {
            for t in 0..8i64 {
                let r = &r;
                let sm = &sm;
                s.spawn(move || {
                    for k in 0..50i64 {
                        let v = t * 1000 + k;
                        let (b, e) = tick(v);
                        let index = r.propose(b, e).unwrap();
                        // The output names this proposer's entry, not a neighbour's.
                        assert!(sm.applied.lock().contains(&(index, v)));
                    }
                });
            }
        });
        let applied = sm.applied.lock();
        assert_eq!(applied.len(), 400);
        assert!(applied.iter().enumerate().all(|(i, a)| a.0 == i as u64 + 1));
    }

    #[test]
    fn reopening_replays_what_the_state_machine_had_not_applied() {
        let dir = tempfile::tempdir().unwrap();
        {
            let r = open(dir.path(), Arc::new(Recorder::default()));
            for v in 1..=5 {
                let (b, e) = tick(v);
                r.propose(b, e).unwrap();
            }
        }
        // A state machine that persisted nothing gets all five again.
        let fresh = Arc::new(Recorder::default());
        let _r = open(dir.path(), fresh.clone());
        assert_eq!(
            *fresh.applied.lock(),
            (1..=5).map(|v| (v as u64, v)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_failed_or_panicking_apply_stops_further_proposals() {
        for panic in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let sm = Arc::new(Recorder::default());
            let r = open(dir.path(), sm.clone());
            let (b, e) = tick(1);
            r.propose(b, e).unwrap();
            if panic {
                sm.panic_next.store(true, Ordering::SeqCst);
                let r = &r;
                let joined = std::thread::scope(|s| {
                    s.spawn(|| {
                        let (b, e) = tick(2);
                        r.propose(b, e)
                    })
                    .join()
                });
                assert!(joined.is_err(), "the panic reaches the proposer");
            } else {
                sm.fail_next.store(true, Ordering::SeqCst);
                let (b, e) = tick(2);
                assert!(r.propose(b, e).is_err());
            }
            assert!(r.failure().is_some());
            let (b, e) = tick(3);
            let err = r.propose(b, e).unwrap_err().to_string();
            assert!(err.contains("test shard is failed"), "{err}");
        }
    }
}
