//! Runs the storage conformance suite against every implementation:
//! `MemStore`, and `Tsdb` read from memory, from disk after each write
//! (checkpoint + compaction), and after a close/reopen following each write.

use std::sync::Arc;

use fenghuo_storage::StorageError;
use fenghuo_storage::api::{AppendOutcome, Appender, Querier, Queryable};
use fenghuo_storage::memory::MemStore;
use fenghuo_storage::model::{TenantId, WriteBatch};
use fenghuo_storage::testing::{self, T0, TestStore};
use fenghuo_storage::tsdb::{ManualClock, Tsdb, TsdbOptions};
use parking_lot::Mutex;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Memory,
    FlushEachWrite,
    ReopenEachWrite,
    EvictEachWrite,
}

struct Harness {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    db: Mutex<Option<Arc<Tsdb>>>,
    mode: Mode,
}

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Arc<Tsdb> {
    Tsdb::open_manual(dir, TsdbOptions::default(), clock.clone()).expect("open tsdb")
}

impl Harness {
    fn new(mode: Mode) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(T0 + 3_600_000));
        let db = open(dir.path(), &clock);
        Self {
            dir,
            clock,
            db: Mutex::new(Some(db)),
            mode,
        }
    }
}

impl Appender for Harness {
    fn append(&self, tenant: &TenantId, batch: WriteBatch) -> Result<AppendOutcome, StorageError> {
        let mut guard = self.db.lock();
        let db = guard.as_ref().ok_or(StorageError::ShuttingDown)?;
        let out = db.append(tenant, batch)?;
        match self.mode {
            Mode::Memory => {}
            Mode::FlushEachWrite => {
                db.checkpoint()?;
                db.compact(true)?;
            }
            Mode::ReopenEachWrite => {
                db.close()?;
                // The old instance must be gone before RocksDB is reopened.
                *guard = None;
                *guard = Some(open(self.dir.path(), &self.clock));
            }
            Mode::EvictEachWrite => {
                // Everything leaves memory: later reads and duplicate checks
                // go to disk, later writes revive series from disk.
                self.clock.advance(2 * 3_600_000);
                db.tick()?;
                db.checkpoint()?;
                db.compact(true)?;
            }
        }
        Ok(out)
    }
}

impl Queryable for Harness {
    fn querier(&self, tenant: &TenantId) -> Result<Arc<dyn Querier>, StorageError> {
        self.db
            .lock()
            .as_ref()
            .ok_or(StorageError::ShuttingDown)?
            .querier(tenant)
    }
}

#[test]
fn memstore_conforms() {
    testing::run_all(&|| Arc::new(MemStore::new()) as Arc<dyn TestStore>);
}

#[test]
fn tsdb_conforms_from_memory() {
    testing::run_all(&|| Arc::new(Harness::new(Mode::Memory)) as Arc<dyn TestStore>);
}

#[test]
fn tsdb_conforms_from_disk() {
    testing::run_all(&|| Arc::new(Harness::new(Mode::FlushEachWrite)) as Arc<dyn TestStore>);
}

#[test]
fn tsdb_conforms_with_eviction_after_each_write() {
    // tsdb_status reports the head, which this harness empties.
    testing::run_except(
        &|| Arc::new(Harness::new(Mode::EvictEachWrite)) as Arc<dyn TestStore>,
        &["tsdb_status_counts"],
    );
}

#[test]
fn tsdb_conforms_across_reopen() {
    testing::run_all(&|| Arc::new(Harness::new(Mode::ReopenEachWrite)) as Arc<dyn TestStore>);
}
