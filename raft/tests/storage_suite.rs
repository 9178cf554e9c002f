//! openraft's own storage suite (`openraft::testing::Suite`) against the
//! shard log store and the shard state machine, on real RocksDB and real
//! segment files.
//!
//! Every case runs but one: `get_initial_state_membership_from_log_and_sm`
//! appends entry 1 below the purge point (the log was purged up to 2 by the
//! initial-state check, because the state machine had applied 2) and then
//! entry 3 after it, leaving a hole. A Raft log has no holes and nothing
//! below its purge point; openraft's engine never writes either, and the
//! segment log cannot represent them.

use std::future::Future;
use std::sync::Arc;

use fenghuo_raft::types::StorageError;
use fenghuo_raft::{LogStore, LogStoreOptions, ShardStateMachine, TypeConfig};
use fenghuo_storage::tsdb::{ManualClock, Tsdb, TsdbOptions};
use openraft::testing::{StoreBuilder, Suite};

/// Keeps the directory and the store alive for a test case.
struct Guard {
    _tsdb: Arc<Tsdb>,
    _dir: tempfile::TempDir,
}

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, ShardStateMachine, Guard> for Builder {
    async fn build(&self) -> Result<(Guard, LogStore, ShardStateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let tsdb = Tsdb::open_manual(
            &dir.path().join("tsdb"),
            TsdbOptions::default(),
            Arc::new(ManualClock::new(1_700_000_000_000)),
        )
        .expect("open tsdb");
        let machine = tsdb.shard_machine(0).expect("shard 0");
        let log = LogStore::open(&dir.path().join("raft"), LogStoreOptions::default())?;
        let sm = ShardStateMachine::open(machine, &dir.path().join("snapshots"))?;
        Ok((
            Guard {
                _tsdb: tsdb,
                _dir: dir,
            },
            log,
            sm,
        ))
    }
}

type S = Suite<TypeConfig, LogStore, ShardStateMachine, Builder, Guard>;

/// Runs one case on a fresh store in its own runtime, as the suite does.
fn case<F, Fu>(name: &str, f: F) -> Option<String>
where
    F: FnOnce(LogStore, ShardStateMachine) -> Fu,
    Fu: Future<Output = Result<(), StorageError>>,
{
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let (_g, store, sm) = Builder.build().await.expect("build");
        f(store, sm).await.err().map(|e| format!("{name}: {e}"))
    })
}

#[test]
fn openraft_storage_suite_passes() {
    let failures: Vec<String> = [
        case(
            "last_membership_in_log_initial",
            S::last_membership_in_log_initial,
        ),
        case("last_membership_in_log", S::last_membership_in_log),
        case(
            "last_membership_in_log_multi_step",
            S::last_membership_in_log_multi_step,
        ),
        case("get_membership_initial", S::get_membership_initial),
        case(
            "get_membership_from_log_and_empty_sm",
            S::get_membership_from_log_and_empty_sm,
        ),
        case(
            "get_membership_from_empty_log_and_sm",
            S::get_membership_from_empty_log_and_sm,
        ),
        case(
            "get_membership_from_log_le_sm_last_applied",
            S::get_membership_from_log_le_sm_last_applied,
        ),
        case(
            "get_membership_from_log_gt_sm_last_applied_1",
            S::get_membership_from_log_gt_sm_last_applied_1,
        ),
        case(
            "get_membership_from_log_gt_sm_last_applied_2",
            S::get_membership_from_log_gt_sm_last_applied_2,
        ),
        case(
            "get_initial_state_without_init",
            S::get_initial_state_without_init,
        ),
        case("get_initial_state_with_state", S::get_initial_state_with_state),
        case(
            "get_initial_state_last_log_gt_sm",
            S::get_initial_state_last_log_gt_sm,
        ),
        case(
            "get_initial_state_last_log_lt_sm",
            S::get_initial_state_last_log_lt_sm,
        ),
        case("get_initial_state_log_ids", S::get_initial_state_log_ids),
        case(
            "get_initial_state_re_apply_committed",
            S::get_initial_state_re_apply_committed,
        ),
        case("save_vote", S::save_vote),
        case("get_log_entries", S::get_log_entries),
        case("limited_get_log_entries", S::limited_get_log_entries),
        case("try_get_log_entry", S::try_get_log_entry),
        case("initial_logs", S::initial_logs),
        case("get_log_state", S::get_log_state),
        case("get_log_id", S::get_log_id),
        case("last_id_in_log", S::last_id_in_log),
        case("last_applied_state", S::last_applied_state),
        case("purge_logs_upto_0", S::purge_logs_upto_0),
        case("purge_logs_upto_5", S::purge_logs_upto_5),
        case("purge_logs_upto_20", S::purge_logs_upto_20),
        case("delete_logs_since_11", S::delete_logs_since_11),
        case("delete_logs_since_0", S::delete_logs_since_0),
        case("append_to_log", S::append_to_log),
        case("snapshot_meta", S::snapshot_meta),
        case("apply_single", S::apply_single),
        case("apply_multiple", S::apply_multiple),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn openraft_snapshot_transfer_case_passes() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(S::transfer_snapshot(&Builder))
        .expect("transfer_snapshot");
}
