//! A shard group's state machine: openraft's view of a `ShardMachine`.
//!
//! - Entry at Raft index `i` is the shard's entry `i + 1` (the shard counts
//!   from 1, Raft from 0). Blank and membership entries only advance the
//!   index; normal entries are applied and their outcome goes back to the
//!   proposer in the [`Reply`].
//! - The shard persists, with its applied index, an opaque position: here
//!   the leader id of the last applied entry and the last membership (JSON),
//!   so `applied_state` survives restarts. It is handed over only when it
//!   changes (a new term or a membership entry).
//! - A snapshot is a directory under `snapshots/`: `db/` (the shard's
//!   RocksDB checkpoint, hard links) and `meta.json`. Only the newest is
//!   kept. Installing one hard-links its `db/` into the shard, which
//!   switches to it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fenghuo_storage::durable::write_durably;
use fenghuo_storage::replicate::StateMachine as _;
use fenghuo_storage::tsdb::{ShardMachine, SnapshotInfo};
use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, LeaderId, RaftSnapshotBuilder, Snapshot, StorageIOError,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::types::{
    Entry, LogId, NodeId, Reply, SnapshotDir, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

const META_JSON: &str = "meta.json";

/// The position the shard persists with its applied index.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Position {
    pub(crate) leader: Option<LeaderId<NodeId>>,
    pub(crate) membership: StoredMembership,
}

impl Position {
    fn decode(b: &[u8]) -> Result<Self, StorageError> {
        if b.is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_slice(b).map_err(|e| sm_err(ErrorVerb::Read, format!("shard position: {e}")))
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>, StorageError> {
        serde_json::to_vec(self).map_err(|e| sm_err(ErrorVerb::Write, format!("shard position: {e}")))
    }

    /// The log id of the entry applied at shard index `applied`.
    fn log_id(&self, applied: u64) -> Result<Option<LogId>, StorageError> {
        match (applied, self.leader) {
            (0, _) => Ok(None),
            (i, Some(l)) => Ok(Some(LogId::new(l, i - 1))),
            (i, None) => Err(sm_err(
                ErrorVerb::Read,
                format!("the shard applied {i} entries but records no Raft position"),
            )),
        }
    }
}

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    StorageIOError::new(ErrorSubject::StateMachine, verb, AnyError::error(e.to_string())).into()
}

fn snap_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    StorageIOError::new(ErrorSubject::Snapshot(None), verb, AnyError::error(e.to_string())).into()
}

/// One shard's snapshots: the newest (openraft's current one) and one
/// prepared right after a store checkpoint, waiting for openraft to ask for
/// a snapshot (which then costs no second checkpoint).
pub struct Snapshots {
    machine: Arc<ShardMachine>,
    dir: PathBuf,
    current: Mutex<Option<(SnapshotMeta, PathBuf)>>,
    prepared: Mutex<Option<(SnapshotInfo, PathBuf)>>,
}

impl Snapshots {
    /// Builds a snapshot directory: filled under a `preparing-` name (which
    /// cleanups leave alone), then renamed to `snapshot-`.
    fn fill(&self, fresh: bool) -> Result<(SnapshotInfo, PathBuf), fenghuo_storage::StorageError> {
        let io = |what: &str, p: &Path, e: std::io::Error| {
            fenghuo_storage::StorageError::Io(format!("{what} {}: {e}", p.display()))
        };
        let name = unique("");
        let preparing = self.dir.join(format!("preparing-{name}"));
        std::fs::create_dir_all(&preparing).map_err(|e| io("creating", &preparing, e))?;
        let info = match self.machine.build_snapshot(&preparing.join("db"), fresh) {
            Ok(info) => info,
            Err(e) => {
                remove_dir(&preparing);
                return Err(e);
            }
        };
        let dir = self.dir.join(format!("snapshot-{name}"));
        std::fs::rename(&preparing, &dir).map_err(|e| io("renaming", &preparing, e))?;
        Ok((info, dir))
    }

    /// Takes a snapshot of the state the store last checkpointed, for the
    /// next snapshot openraft asks for.
    pub fn prepare(&self) -> Result<(), fenghuo_storage::StorageError> {
        let prepared = self.fill(false)?;
        if let Some((_, old)) = self.prepared.lock().replace(prepared) {
            remove_dir(&old);
        }
        Ok(())
    }

    /// The snapshot openraft asked for: the prepared one if there is one,
    /// else a fresh one of everything applied.
    fn build(&self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let prepared = self.prepared.lock().take();
        let (info, dir) = match prepared {
            Some(p) => p,
            None => self.fill(true).map_err(|e| snap_err(ErrorVerb::Write, e))?,
        };
        let position = Position::decode(&info.position)?;
        let meta = SnapshotMeta {
            last_log_id: position.log_id(info.applied_index)?,
            last_membership: position.membership,
            snapshot_id: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let meta_bytes = serde_json::to_vec(&meta).map_err(|e| snap_err(ErrorVerb::Write, e))?;
        write_durably(&dir, META_JSON, &meta_bytes).map_err(|e| snap_err(ErrorVerb::Write, e))?;
        self.set_current(meta.clone(), dir.clone());
        Ok(Snapshot {
            meta,
            snapshot: Box::new(SnapshotDir { path: dir }),
        })
    }

    /// Makes `(meta, dir)` the current snapshot, unless the current one is
    /// newer (then `dir` goes), and removes every other finished snapshot
    /// directory but the prepared one.
    fn set_current(&self, meta: SnapshotMeta, dir: PathBuf) {
        let keep = {
            let mut current = self.current.lock();
            let newer = current
                .as_ref()
                .is_some_and(|(m, _)| m.last_log_id.map(|l| l.index) > meta.last_log_id.map(|l| l.index));
            if !newer {
                *current = Some((meta, dir.clone()));
            }
            current.as_ref().map(|(_, p)| p.clone())
        };
        let prepared = self.prepared.lock().as_ref().map(|(_, p)| p.clone());
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.filter_map(Result::ok) {
                let p = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                let busy = name.starts_with("receiving-") || name.starts_with("preparing-");
                if !busy && Some(&p) != keep.as_ref() && Some(&p) != prepared.as_ref() {
                    remove_dir(&p);
                }
            }
        }
    }
}

/// openraft's state machine over one shard.
pub struct ShardStateMachine {
    machine: Arc<ShardMachine>,
    snapshots: Arc<Snapshots>,
    position: Position,
}

impl ShardStateMachine {
    /// Wraps `machine`, keeping snapshots in `snapshots` (on the shard's
    /// filesystem: snapshot files are hard links). Finds the newest
    /// complete snapshot there and removes the rest.
    pub fn open(machine: Arc<ShardMachine>, snapshots: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(snapshots).map_err(|e| snap_err(ErrorVerb::Write, e))?;
        let mut newest: Option<(SnapshotMeta, PathBuf)> = None;
        let mut others = Vec::new();
        for e in std::fs::read_dir(snapshots).map_err(|e| snap_err(ErrorVerb::Read, e))? {
            let path = e.map_err(|e| snap_err(ErrorVerb::Read, e))?.path();
            match std::fs::read(path.join(META_JSON))
                .ok()
                .and_then(|b| serde_json::from_slice::<SnapshotMeta>(&b).ok())
            {
                Some(meta) => {
                    let index = |m: &SnapshotMeta| m.last_log_id.map(|l| l.index);
                    if newest.as_ref().is_none_or(|(m, _)| index(m) < index(&meta)) {
                        others.extend(newest.take().map(|(_, p)| p));
                        newest = Some((meta, path));
                    } else {
                        others.push(path);
                    }
                }
                None => others.push(path),
            }
        }
        for p in others {
            remove_dir(&p);
        }
        let (_, position) = machine.applied_position();
        Ok(Self {
            position: Position::decode(&position)?,
            snapshots: Arc::new(Snapshots {
                machine: machine.clone(),
                dir: snapshots.to_path_buf(),
                current: Mutex::new(newest),
                prepared: Mutex::new(None),
            }),
            machine,
        })
    }

    /// The shard's snapshots (the replicator prepares them after checkpoints).
    pub fn snapshots(&self) -> Arc<Snapshots> {
        self.snapshots.clone()
    }
}

fn remove_dir(p: &Path) {
    if let Err(e) = std::fs::remove_dir_all(p) {
        tracing::warn!(dir = %p.display(), error = %e, "Removing an old snapshot failed.");
    }
}

/// A name unique within the process and across restarts.
fn unique(prefix: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}{nanos}-{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Copies a directory tree as hard links (copies across filesystems).
fn link_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            link_tree(&e.path(), &target)?;
        } else if std::fs::hard_link(e.path(), &target).is_err() {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}

/// Runs blocking work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| sm_err(ErrorVerb::Write, format!("state machine task failed: {e}")))?
}

impl RaftStateMachine<TypeConfig> for ShardStateMachine {
    type SnapshotBuilder = ShardSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = self.machine.applied_index();
        Ok((self.position.log_id(applied)?, self.position.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Reply>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let machine = self.machine.clone();
        let mut pos = self.position.clone();
        let (replies, pos) = blocking(move || {
            let mut replies = Vec::with_capacity(entries.len());
            for e in entries {
                let log_id = e.log_id;
                let seq = log_id.index + 1;
                let expected = machine.applied_index() + 1;
                // Applying twice would count samples twice; skipping a write
                // would lose it. Blank and membership entries carry nothing,
                // and openraft's storage suite applies them at arbitrary
                // indexes, so those may jump ahead.
                let normal = matches!(e.payload, EntryPayload::Normal(_));
                if seq < expected || (seq > expected && normal) {
                    return Err(sm_err(
                        ErrorVerb::Write,
                        format!(
                            "entry {} arrived where {} was expected",
                            log_id.index,
                            expected - 1
                        ),
                    ));
                }
                let mut changed = pos.leader != Some(log_id.leader_id);
                pos.leader = Some(log_id.leader_id);
                let entries = match e.payload {
                    EntryPayload::Blank => Vec::new(),
                    EntryPayload::Normal(p) => p.take_entries().map_err(|err| apply_err(log_id, err))?,
                    EntryPayload::Membership(m) => {
                        pos.membership = StoredMembership::new(Some(log_id), m);
                        changed = true;
                        Vec::new()
                    }
                };
                let blob = if changed { Some(pos.encode()?) } else { None };
                let applied = machine
                    .apply_batch(seq, entries, blob.as_deref())
                    .map_err(|err| apply_err(log_id, err))?;
                replies.push(Reply(applied));
            }
            Ok((replies, pos))
        })
        .await?;
        self.position = pos;
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> ShardSnapshotBuilder {
        ShardSnapshotBuilder {
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotDir>, StorageError> {
        let path = self.snapshots.dir.join(unique("receiving-"));
        std::fs::create_dir_all(&path).map_err(|e| snap_err(ErrorVerb::Write, e))?;
        Ok(Box::new(SnapshotDir { path }))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapshotDir>,
    ) -> Result<(), StorageError> {
        let (machine, snapshots) = (self.machine.clone(), self.snapshots.clone());
        let meta = meta.clone();
        let src = snapshot.path;
        let position = blocking(move || {
            // Keep the snapshot as ours: move it when it was received here,
            // link it otherwise (a local source stays its owner's). It is
            // `preparing-` until it is installed and has its meta.json.
            let name = unique("");
            let preparing = snapshots.dir.join(format!("preparing-{name}"));
            let kept = if src.starts_with(&snapshots.dir) {
                std::fs::rename(&src, &preparing)
            } else {
                link_tree(&src, &preparing)
            };
            kept.map_err(|e| snap_err(ErrorVerb::Write, e))?;
            let installed = (|| {
                let incoming = machine.incoming_dir();
                link_tree(&preparing.join("db"), &incoming).map_err(|e| snap_err(ErrorVerb::Write, e))?;
                // Checked before the shard switches to it: the snapshot
                // must hold exactly what its metadata says.
                let want = meta.last_log_id;
                let check = |info: &fenghuo_storage::tsdb::SnapshotInfo| {
                    let got = Position::decode(&info.position).and_then(|p| p.log_id(info.applied_index));
                    match got {
                        Ok(got) if got == want => Ok(()),
                        Ok(got) => Err(fenghuo_storage::StorageError::Corrupt {
                            what: "snapshot",
                            detail: format!(
                                "snapshot {} holds {got:?} but its metadata says {want:?}",
                                meta.snapshot_id
                            ),
                        }),
                        Err(e) => Err(fenghuo_storage::StorageError::Corrupt {
                            what: "snapshot",
                            detail: e.to_string(),
                        }),
                    }
                };
                let info = machine
                    .install_snapshot(&incoming, &check)
                    .map_err(|e| snap_err(ErrorVerb::Write, e))?;
                Position::decode(&info.position)
            })();
            let position = match installed {
                Ok(p) => p,
                Err(e) => {
                    remove_dir(&preparing);
                    return Err(e);
                }
            };
            // What was prepared from the replaced state is of no use now.
            if let Some((_, old)) = snapshots.prepared.lock().take() {
                remove_dir(&old);
            }
            let meta_bytes = serde_json::to_vec(&meta).map_err(|e| snap_err(ErrorVerb::Write, e))?;
            write_durably(&preparing, META_JSON, &meta_bytes).map_err(|e| snap_err(ErrorVerb::Write, e))?;
            let dir = snapshots.dir.join(format!("snapshot-{name}"));
            std::fs::rename(&preparing, &dir).map_err(|e| snap_err(ErrorVerb::Write, e))?;
            snapshots.set_current(meta, dir);
            Ok(position)
        })
        .await?;
        self.position = position;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self
            .snapshots
            .current
            .lock()
            .clone()
            .map(|(meta, path)| Snapshot {
                meta,
                snapshot: Box::new(SnapshotDir { path }),
            }))
    }
}

fn apply_err(log_id: LogId, e: fenghuo_storage::StorageError) -> StorageError {
    StorageIOError::new(
        ErrorSubject::Apply(log_id),
        ErrorVerb::Write,
        AnyError::error(e.to_string()),
    )
    .into()
}

/// Builds snapshots of one shard (openraft runs it beside apply).
pub struct ShardSnapshotBuilder {
    snapshots: Arc<Snapshots>,
}

impl RaftSnapshotBuilder<TypeConfig> for ShardSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let snapshots = self.snapshots.clone();
        blocking(move || snapshots.build()).await
    }
}
