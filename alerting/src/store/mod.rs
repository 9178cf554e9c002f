//! The seam for state that must survive restarts: alerts, silences, the notification log, acks,
//! escalation progress, delivery retries and the failure-notice queue, rate budgets and history. The engine only talks to
//! [`AlertStateStore`], so the RocksDB implementation can later be replaced by replicated Raft
//! state (ARCHITECTURE.md invariant 6): each [`StateOp`] batch is a deterministic log entry.

mod rocks;

use std::collections::BTreeMap;

use parking_lot::Mutex;

pub use rocks::RocksStateStore;

use crate::error::AlertingError;

/// The kinds of state the engine persists; each is its own key space per tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StateKind {
    Alert,
    Silence,
    NotificationLog,
    Ack,
    Escalation,
    History,
    Meta,
    /// Per-group delivery retry state and the failure-notice queue.
    Delivery,
    /// Rate budgets of rate-limited integrations (system tenant).
    RateBudget,
}

impl StateKind {
    pub const ALL: [StateKind; 9] = [
        StateKind::Alert,
        StateKind::Silence,
        StateKind::NotificationLog,
        StateKind::Ack,
        StateKind::Escalation,
        StateKind::History,
        StateKind::Meta,
        StateKind::Delivery,
        StateKind::RateBudget,
    ];

    pub fn tag(self) -> u8 {
        match self {
            StateKind::Alert => b'a',
            StateKind::Silence => b's',
            StateKind::NotificationLog => b'n',
            StateKind::Ack => b'k',
            StateKind::Escalation => b'e',
            StateKind::History => b'h',
            StateKind::Meta => b'm',
            StateKind::Delivery => b'd',
            StateKind::RateBudget => b'r',
        }
    }
}

/// One mutation.
#[derive(Debug, Clone, PartialEq)]
pub enum StateOp {
    Put {
        tenant: String,
        kind: StateKind,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        tenant: String,
        kind: StateKind,
        key: String,
    },
}

/// Durable per-tenant key-value state of the alert engine.
///
/// Correctness contract (every implementation, and the conformance suite
/// [`conformance::run`] checks the observable parts):
/// - `apply` is atomic: after it returns `Ok`, all ops of the batch are durable (survive a crash
///   of the process) and visible; after `Err`, none is. The engine calls `apply` *before* it acts
///   on the new state externally (e.g. it records the notification log only after a confirmed
///   delivery, and the alert before answering the sender), so a crash never loses acknowledged
///   state and never re-sends what the log says was sent.
/// - Ops within a batch apply in order; batches are serialised (a later `apply` observes every
///   earlier one). Applying the same sequence of batches to two empty stores yields the same
///   contents (determinism, so a replicated log can carry the batches).
/// - `scan` returns exactly the live keys of one tenant and kind, ordered by key bytes; tenants
///   and kinds never see each other's keys. `tenants` lists every tenant with any live key.
/// - Keys and tenants are arbitrary UTF-8 except that tenants must not contain `\0`.
pub trait AlertStateStore: Send + Sync {
    fn apply(&self, ops: &[StateOp]) -> Result<(), AlertingError>;
    fn scan(&self, tenant: &str, kind: StateKind) -> Result<Vec<(String, Vec<u8>)>, AlertingError>;
    /// Keys in `[from, to)` of one tenant and kind, ordered.
    fn scan_range(
        &self,
        tenant: &str,
        kind: StateKind,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, AlertingError>;
    fn tenants(&self) -> Result<Vec<String>, AlertingError>;
    /// Makes everything applied so far durable (a no-op when `apply` already syncs).
    fn flush(&self) -> Result<(), AlertingError>;
}

/// An in-memory store for tests and the scenario runner.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    data: Mutex<BTreeMap<(String, StateKind, String), Vec<u8>>>,
}

impl AlertStateStore for MemoryStateStore {
    fn apply(&self, ops: &[StateOp]) -> Result<(), AlertingError> {
        let mut d = self.data.lock();
        for op in ops.iter().cloned() {
            match op {
                StateOp::Put {
                    tenant,
                    kind,
                    key,
                    value,
                } => {
                    if tenant.contains('\0') {
                        return Err(AlertingError::Store("tenant contains NUL".into()));
                    }
                    d.insert((tenant, kind, key), value);
                }
                StateOp::Delete { tenant, kind, key } => {
                    d.remove(&(tenant, kind, key));
                }
            }
        }
        Ok(())
    }

    fn scan(&self, tenant: &str, kind: StateKind) -> Result<Vec<(String, Vec<u8>)>, AlertingError> {
        let d = self.data.lock();
        Ok(d.iter()
            .filter(|((t, k, _), _)| t == tenant && *k == kind)
            .map(|((_, _, key), v)| (key.clone(), v.clone()))
            .collect())
    }

    fn scan_range(
        &self,
        tenant: &str,
        kind: StateKind,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, AlertingError> {
        let d = self.data.lock();
        Ok(d.iter()
            .filter(|((t, k, key), _)| t == tenant && *k == kind && key.as_str() >= from && key.as_str() < to)
            .map(|((_, _, key), v)| (key.clone(), v.clone()))
            .collect())
    }

    fn tenants(&self) -> Result<Vec<String>, AlertingError> {
        let d = self.data.lock();
        let mut t: Vec<String> = d.keys().map(|(t, _, _)| t.clone()).collect();
        t.dedup();
        t.sort();
        t.dedup();
        Ok(t)
    }

    fn flush(&self) -> Result<(), AlertingError> {
        Ok(())
    }
}

/// The conformance suite every [`AlertStateStore`] implementation must pass.
pub mod conformance {
    use super::*;

    fn put(t: &str, kind: StateKind, k: &str, v: &str) -> StateOp {
        StateOp::Put {
            tenant: t.into(),
            kind,
            key: k.into(),
            value: v.as_bytes().to_vec(),
        }
    }

    /// Runs every check against a fresh, empty store; panics (test failure) on a violation.
    pub fn run(store: &dyn AlertStateStore) {
        store
            .apply(&[
                put("t1", StateKind::Silence, "b", "1"),
                put("t1", StateKind::Silence, "a", "2"),
                put("t1", StateKind::Ack, "a", "3"),
                put("t2", StateKind::Silence, "a", "4"),
                put("t1", StateKind::Silence, "c", "5"),
                StateOp::Delete {
                    tenant: "t1".into(),
                    kind: StateKind::Silence,
                    key: "c".into(),
                },
            ])
            .ok();
        let s = store.scan("t1", StateKind::Silence).unwrap_or_default();
        assert_eq!(
            s,
            vec![("a".to_string(), b"2".to_vec()), ("b".to_string(), b"1".to_vec())],
            "ordered, deleted"
        );
        let s = store.scan("t2", StateKind::Silence).unwrap_or_default();
        assert_eq!(s, vec![("a".to_string(), b"4".to_vec())], "tenant isolation");
        let s = store.scan("t1", StateKind::Ack).unwrap_or_default();
        assert_eq!(s.len(), 1, "kind isolation");
        // A tenant that is a prefix of another must not see its keys.
        store.apply(&[put("t", StateKind::Silence, "x", "6")]).ok();
        assert_eq!(store.scan("t", StateKind::Silence).unwrap_or_default().len(), 1);
        // Overwrite.
        store.apply(&[put("t1", StateKind::Silence, "a", "7")]).ok();
        let s = store.scan("t1", StateKind::Silence).unwrap_or_default();
        assert_eq!(s[0].1, b"7".to_vec());
        // Range scans are half-open.
        store
            .apply(&[
                put("t1", StateKind::History, "001", "x"),
                put("t1", StateKind::History, "002", "y"),
                put("t1", StateKind::History, "003", "z"),
            ])
            .ok();
        let r = store
            .scan_range("t1", StateKind::History, "001", "003")
            .unwrap_or_default();
        assert_eq!(
            r.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            vec!["001", "002"]
        );
        let mut tenants = store.tenants().unwrap_or_default();
        tenants.sort();
        assert_eq!(tenants, vec!["t".to_string(), "t1".to_string(), "t2".to_string()]);
        assert!(
            store
                .apply(&[put("bad\0tenant", StateKind::Alert, "k", "v")])
                .is_err()
        );
        assert!(store.flush().is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_conforms() {
        conformance::run(&MemoryStateStore::default());
    }

    #[test]
    fn rocks_store_conforms_and_persists() {
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else { return };
        {
            let s = RocksStateStore::open(dir.path());
            assert!(s.is_ok(), "open: {:?}", s.as_ref().err());
            if let Ok(s) = s {
                conformance::run(&s);
            }
        }
        let s = RocksStateStore::open(dir.path());
        let n = s
            .map(|s| s.scan("t1", StateKind::Silence).unwrap_or_default().len())
            .unwrap_or(0);
        assert_eq!(n, 2, "state survives reopen");
    }
}
