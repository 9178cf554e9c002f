//! Snapshots of a shard, and the digest that proves two replicas equal.
//!
//! A snapshot is a RocksDB checkpoint of the shard's database taken right
//! after a state checkpoint, under the maintenance lock: SST files are hard
//! links (cheap to take, whatever the shard's size), and the database holds
//! exactly the state persisted at its applied index, together with the
//! replicator's position there. A replica installs one by opening a new
//! core on it and swapping it in ([`ShardMachine::replace_core`]); the log
//! then continues after the snapshot's index.
//!
//! The digest hashes the shard's logical content (every tenant's series
//! and samples, metric metadata), never its physical layout, so replicas
//! that checkpointed and compacted at different times still agree.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHasher;

use super::keys;
use super::shard::{ShardCore, ShardMachine};
use crate::error::StorageError;
use crate::model::MetricMetadata;

/// What a snapshot holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The last log index whose effects the snapshot contains.
    pub applied_index: u64,
    /// The replicator's position at that index.
    pub position: Vec<u8>,
}

fn db_err(context: &str, e: rocksdb::Error) -> StorageError {
    StorageError::Io(format!("rocksdb {context}: {e}"))
}

impl ShardMachine {
    /// Builds a snapshot into `dest`, which must not exist and must be on
    /// the shard's filesystem (SST files are hard linked). With `fresh` the
    /// state is checkpointed first, so the snapshot holds everything
    /// applied before this call; without, it holds the state as of the last
    /// checkpoint (a replicator calling right after one need not pay for a
    /// second). Returns the index the snapshot holds.
    pub fn build_snapshot(&self, dest: &Path, fresh: bool) -> Result<SnapshotInfo, StorageError> {
        let core = self.core();
        if fresh {
            core.checkpoint()?;
        }
        let _m = core.maintenance.lock();
        core.check_live()?;
        // Read back what the database holds, not the in-memory state: the
        // two differ by whatever was applied since the checkpoint.
        let applied_index = core.disk.get_meta_u64(keys::META_APPLIED)?.unwrap_or(0);
        let position = core
            .disk
            .get(keys::CF_META, keys::META_POSITION)?
            .unwrap_or_default();
        core.disk.flush()?;
        rocksdb::checkpoint::Checkpoint::new(core.disk.db())
            .and_then(|c| c.create_checkpoint(dest))
            .map_err(|e| db_err(&format!("checkpoint into {}", dest.display()), e))?;
        Ok(SnapshotInfo {
            applied_index,
            position,
        })
    }

    /// A fresh directory, inside the shard's, to receive a snapshot into
    /// (leftovers are removed when the shard opens).
    pub fn incoming_dir(&self) -> PathBuf {
        self.dir.join(format!("incoming-{}", unique_suffix()))
    }

    /// Installs the snapshot in `src` (a directory from [`Self::build_snapshot`]
    /// on some replica of this shard, received into [`Self::incoming_dir`]):
    /// it becomes the shard's database and its state replaces the current
    /// one, if `check` accepts what it holds. Returns what the snapshot
    /// holds. On error nothing changed.
    pub fn install_snapshot(
        &self,
        src: &Path,
        check: &dyn Fn(&SnapshotInfo) -> Result<(), StorageError>,
    ) -> Result<SnapshotInfo, StorageError> {
        let db_dir = self.dir.join(format!("db-{}", unique_suffix()));
        std::fs::rename(src, &db_dir).map_err(|e| {
            StorageError::Io(format!(
                "moving snapshot {} to {}: {e}",
                src.display(),
                db_dir.display()
            ))
        })?;
        let core = match self.open_core(&db_dir) {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&db_dir);
                return Err(e);
            }
        };
        let info = {
            let st = core.state.read();
            SnapshotInfo {
                applied_index: st.applied_index,
                position: st.position.clone(),
            }
        };
        if let Err(e) = check(&info) {
            drop(core);
            let _ = std::fs::remove_dir_all(&db_dir);
            return Err(e);
        }
        self.replace_core(&db_dir, core)?;
        tracing::info!(shard = self.id, applied_index = info.applied_index, dir = %db_dir.display(),
            "Installed a snapshot.");
        Ok(info)
    }

    /// The digest of the current state (see [`ShardCore::digest`]).
    pub fn digest(&self) -> Result<StateDigest, StorageError> {
        self.core().digest()
    }
}

/// Unique within the process and across restarts (time plus a counter).
fn unique_suffix() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos}-{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

/// A shard's logical content at its applied index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateDigest {
    pub applied_index: u64,
    pub series: u64,
    pub samples: u64,
    pub hash: u64,
}

impl ShardCore {
    /// Hashes every tenant's series (labels, float and histogram samples)
    /// and metric metadata, in a canonical order. Costs a full read of the
    /// shard: for tests and consistency checks, not hot paths. A digest
    /// belongs to one applied index: it is recomputed if entries were
    /// applied while it ran.
    pub fn digest(&self) -> Result<StateDigest, StorageError> {
        loop {
            let before = self.state.read().applied_index;
            let d = self.digest_once(before)?;
            if self.state.read().applied_index == before {
                return Ok(d);
            }
        }
    }

    fn digest_once(&self, applied_index: u64) -> Result<StateDigest, StorageError> {
        let mut tenants = std::collections::BTreeSet::new();
        self.disk.for_each(keys::CF_SERIES, |_, v| {
            tenants.insert(keys::decode_series_record(v)?.0);
            Ok(())
        })?;
        tenants.extend(
            self.state
                .read()
                .tenants
                .iter()
                .map(|t| t.id.as_str().to_string()),
        );
        let mut h = FxHasher::default();
        let (mut series, mut samples) = (0u64, 0u64);
        for tenant in &tenants {
            h.write(tenant.as_bytes());
            let found = self.select(tenant, &[], i64::MIN, i64::MAX, &mut None, usize::MAX)?;
            for s in found {
                series += 1;
                for l in s.labels.iter() {
                    h.write(l.name.as_bytes());
                    h.write_u8(0);
                    h.write(l.value.as_bytes());
                    h.write_u8(0);
                }
                for p in &s.floats {
                    h.write_i64(p.t);
                    h.write_u64(p.v.to_bits());
                }
                for p in &s.histograms {
                    h.write_i64(p.t);
                    h.write(format!("{:?}", p.h).as_bytes());
                }
                samples += (s.floats.len() + s.histograms.len()) as u64;
            }
            let mut meta: Vec<MetricMetadata> = Vec::new();
            self.metadata(tenant, None, &mut meta);
            meta.sort_by(|a, b| a.metric_family.cmp(&b.metric_family));
            for m in meta {
                h.write(format!("{m:?}").as_bytes());
            }
        }
        Ok(StateDigest {
            applied_index,
            series,
            samples,
            hash: h.finish(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::api::{Appender, Queryable, SelectHints, Series};
    use crate::error::StorageError;
    use crate::model::{MatchOp, Matcher, MetricMetadata, MetricType, WriteBatch};
    use crate::testing::{T0, batch, series, tenant};
    use crate::tsdb::{ManualClock, Tsdb, TsdbOptions};

    fn opts() -> TsdbOptions {
        TsdbOptions {
            shards: 2,
            ..TsdbOptions::default()
        }
    }

    /// Two tenants, several series, samples before and after a checkpoint
    /// (some on disk, some only in the head), and metadata.
    fn fill(db: &Tsdb) {
        for (ti, name) in ["a", "b"].iter().enumerate() {
            let t = tenant(name);
            for round in 0..3i64 {
                let mut b = batch(
                    (0..20)
                        .map(|i| {
                            let inst = format!("i{i}");
                            series(
                                &[("__name__", "up"), ("instance", inst.as_str())],
                                &[(T0 + round * 15_000, (ti * 100 + i) as f64 + round as f64)],
                            )
                        })
                        .collect(),
                );
                if round == 0 {
                    b.metadata.push(MetricMetadata {
                        metric_family: "up".into(),
                        metric_type: MetricType::Gauge,
                        help: "Up.".into(),
                        unit: String::new(),
                    });
                }
                db.append(&t, b).unwrap();
                if round == 1 {
                    db.checkpoint().unwrap();
                }
            }
        }
    }

    fn all(db: &Tsdb, name: &str) -> Vec<Series> {
        db.querier(&tenant(name))
            .unwrap()
            .select(
                &[Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()],
                &SelectHints {
                    start: T0 - 1,
                    end: T0 + 100_000,
                    max_samples: None,
                },
            )
            .unwrap()
    }

    #[test]
    fn an_installed_snapshot_gives_the_same_digest_and_answers() {
        let (da, db_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let clock = Arc::new(ManualClock::new(T0));
        let a = Tsdb::open_manual(da.path(), opts(), clock.clone()).unwrap();
        fill(&a);
        let b = Tsdb::open_manual(db_dir.path(), opts(), clock.clone()).unwrap();
        assert_ne!(a.digests().unwrap(), b.digests().unwrap());
        a.checkpoint().unwrap();
        for shard in 0..2 {
            let (ma, mb) = (a.shard_machine(shard).unwrap(), b.shard_machine(shard).unwrap());
            let incoming = mb.incoming_dir();
            let built = ma.build_snapshot(&incoming, false).unwrap();
            assert_eq!(built.applied_index, ma.digest().unwrap().applied_index);
            let installed = mb.install_snapshot(&incoming, &|_| Ok(())).unwrap();
            assert_eq!(installed, built);
            assert!(!incoming.exists(), "the received directory became the database");
        }
        let digests = a.digests().unwrap();
        assert!(
            digests.iter().map(|d| d.samples).sum::<u64>() == 120,
            "{digests:?}"
        );
        assert_eq!(b.digests().unwrap(), digests);
        for t in ["a", "b"] {
            assert_eq!(all(&b, t), all(&a, t));
        }
        // A restart opens the installed database, and the replaced one is gone.
        drop(b);
        let b = Tsdb::open_manual(db_dir.path(), opts(), clock).unwrap();
        assert_eq!(b.digests().unwrap(), digests);
        let dbs: Vec<String> = std::fs::read_dir(db_dir.path().join("shard-0000"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("db"))
            .collect();
        assert_eq!(dbs.len(), 1, "{dbs:?}");
        assert!(dbs[0].starts_with("db-"), "{dbs:?}");
    }

    #[test]
    fn readers_finish_on_the_replaced_core_and_its_directory_goes_after_them() {
        let (da, db_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let clock = Arc::new(ManualClock::new(T0));
        let a = Tsdb::open_manual(da.path(), opts(), clock.clone()).unwrap();
        fill(&a);
        let b = Tsdb::open_manual(db_dir.path(), opts(), clock).unwrap();
        b.append(
            &tenant("a"),
            WriteBatch {
                series: vec![series(&[("__name__", "old")], &[(T0, 1.0)])],
                metadata: Vec::new(),
            },
        )
        .unwrap();
        let mb = b.shard_machine(0).unwrap();
        let old = mb.core();
        let old_dir = old.disk.db().path().to_path_buf();
        let incoming = mb.incoming_dir();
        a.shard_machine(0)
            .unwrap()
            .build_snapshot(&incoming, true)
            .unwrap();
        mb.install_snapshot(&incoming, &|_| Ok(())).unwrap();
        // The old core still answers, but takes no checkpoint or apply.
        assert!(
            old.select("a", &[], T0 - 1, T0 + 1, &mut None, usize::MAX)
                .is_ok()
        );
        assert!(old.checkpoint().is_err());
        assert!(old_dir.exists());
        drop(old);
        assert!(
            !old_dir.exists(),
            "the replaced database is deleted with its last reader"
        );
    }

    #[test]
    fn a_snapshot_of_another_shard_is_refused_and_changes_nothing() {
        let (da, db_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let clock = Arc::new(ManualClock::new(T0));
        let a = Tsdb::open_manual(da.path(), opts(), clock.clone()).unwrap();
        fill(&a);
        let b = Tsdb::open_manual(db_dir.path(), opts(), clock).unwrap();
        let before = b.digests().unwrap();
        let mb = b.shard_machine(1).unwrap();
        let incoming = mb.incoming_dir();
        a.shard_machine(0)
            .unwrap()
            .build_snapshot(&incoming, true)
            .unwrap();
        let err = mb
            .install_snapshot(&incoming, &|_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("different shard layout"), "{err}");
        assert_eq!(b.digests().unwrap(), before);
        // One the caller's check refuses is not switched to either.
        let mb0 = b.shard_machine(0).unwrap();
        let incoming = mb0.incoming_dir();
        a.shard_machine(0)
            .unwrap()
            .build_snapshot(&incoming, true)
            .unwrap();
        let refuse = |_: &super::SnapshotInfo| Err(StorageError::Io("not the snapshot we asked for".into()));
        let err = mb0.install_snapshot(&incoming, &refuse).unwrap_err().to_string();
        assert!(err.contains("not the snapshot we asked for"), "{err}");
        assert_eq!(b.digests().unwrap(), before);
        let leftovers: Vec<_> = std::fs::read_dir(db_dir.path().join("shard-0000"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("db-") || n == "CURRENT_DB")
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    /// Invariant 2 (determinism): the same entries give the same digest at
    /// the same index, whenever each replica checkpointed, compacted or
    /// restarted. Duplicates and out-of-order samples make apply read what
    /// one replica has on disk and the other only in memory.
    #[test]
    fn the_digest_does_not_depend_on_checkpoint_compaction_or_restart_timing() {
        let (da, db_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let clock = Arc::new(ManualClock::new(T0));
        let a = Tsdb::open_manual(da.path(), opts(), clock.clone()).unwrap();
        let mut b = Tsdb::open_manual(db_dir.path(), opts(), clock.clone()).unwrap();
        let t = tenant("a");
        for round in 0..40i64 {
            // A step forward, a repeat of an old timestamp with a new value
            // (a conflict) and one with the same value (a duplicate).
            let points = [
                (T0 + round * 60_000, round as f64),
                (T0 + (round / 2) * 60_000, -1.0),
                (T0 + (round / 3) * 60_000, (round / 3) as f64),
            ];
            let w = batch(
                (0..5)
                    .map(|i| {
                        let inst = format!("i{i}");
                        series(&[("__name__", "m"), ("instance", inst.as_str())], &points)
                    })
                    .collect(),
            );
            clock.set(T0 + round * 60_000);
            let (ra, rb) = (a.append(&t, w.clone()), b.append(&t, w));
            assert_eq!(
                format!("{ra:?}"),
                format!("{rb:?}"),
                "same outcome on both, round {round}"
            );
            a.checkpoint().unwrap();
            if round % 7 == 0 {
                a.compact(true).unwrap();
            }
            if round % 13 == 0 {
                drop(b);
                b = Tsdb::open_manual(db_dir.path(), opts(), clock.clone()).unwrap();
            }
        }
        let (x, y) = (a.digests().unwrap(), b.digests().unwrap());
        assert!(x.iter().map(|d| d.samples).sum::<u64>() >= 200, "{x:?}");
        assert_eq!(x, y);
    }
}
