//! What the Raft log store promises across a restart, beyond openraft's
//! suite (which never reopens a store): entries, vote, purge point and the
//! committed hint come back as they were; a truncated tail stays gone; an
//! empty log that started ahead reopens without a hole; a committed hint
//! beyond the log is not believed.

use std::collections::BTreeSet;

use fenghuo_raft::types::{Entry, LogId};
use fenghuo_raft::{LogStore, LogStoreOptions, TypeConfig};
use openraft::storage::{LogState, RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, EntryPayload, Membership, RaftLogReader, Vote};

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn blank(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Blank,
    }
}

fn membership(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1, 2, 3])], None)),
    }
}

fn open(dir: &std::path::Path) -> LogStore {
    LogStore::open(dir, LogStoreOptions::default()).expect("open")
}

async fn ids(store: &mut LogStore) -> Vec<u64> {
    store
        .try_get_log_entries(0..)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.index)
        .collect()
}

async fn state(store: &mut LogStore) -> LogState<TypeConfig> {
    store.get_log_state().await.unwrap()
}

#[test]
fn the_log_comes_back_as_it_was() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        store
            .blocking_append([
                membership(1, 0),
                blank(1, 1),
                blank(1, 2),
                blank(2, 3),
                blank(2, 4),
            ])
            .await
            .unwrap();
        store.save_vote(&Vote::new(2, 1)).await.unwrap();
        store.save_committed(Some(log_id(2, 3))).await.unwrap();
        // The tail from 4 is replaced by a new leader's entry.
        store.truncate(log_id(2, 4)).await.unwrap();
        store.blocking_append([blank(3, 4)]).await.unwrap();
        store.purge(log_id(1, 1)).await.unwrap();
        drop(store);

        let mut store = open(dir.path());
        assert_eq!(ids(&mut store).await, vec![2, 3, 4]);
        let st = state(&mut store).await;
        assert_eq!(st.last_purged_log_id, Some(log_id(1, 1)));
        assert_eq!(st.last_log_id, Some(log_id(3, 4)));
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(2, 1)));
        assert_eq!(store.read_committed().await.unwrap(), Some(log_id(2, 3)));
        let e = store.try_get_log_entries(4..5).await.unwrap();
        assert_eq!(e[0].log_id, log_id(3, 4), "the replaced entry stays replaced");
    });
}

#[test]
fn an_empty_log_that_starts_ahead_reopens_without_a_hole() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        store.blocking_append([blank(4, 10), blank(4, 11)]).await.unwrap();
        drop(store);
        let mut store = open(dir.path());
        let st = state(&mut store).await;
        assert_eq!(st.last_purged_log_id.map(|l| l.index), Some(9));
        assert_eq!(st.last_log_id, Some(log_id(4, 11)));
        assert_eq!(ids(&mut store).await, vec![10, 11]);
        // And it continues where it ends, not elsewhere.
        store.blocking_append([blank(4, 12)]).await.unwrap();
        assert!(store.blocking_append([blank(4, 20)]).await.is_err());
        assert_eq!(ids(&mut store).await, vec![10, 11, 12]);
    });
}

#[test]
fn a_committed_hint_beyond_the_log_is_not_believed() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        store.blocking_append([blank(1, 0), blank(1, 1)]).await.unwrap();
        store.save_committed(Some(log_id(1, 5))).await.unwrap();
        drop(store);
        let mut store = open(dir.path());
        assert_eq!(store.read_committed().await.unwrap(), None);
        store.save_committed(Some(log_id(1, 1))).await.unwrap();
        assert_eq!(store.read_committed().await.unwrap(), Some(log_id(1, 1)));
    });
}
