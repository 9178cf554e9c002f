//! A shard's replicator on Raft: proposals become Raft entries, and the
//! factory that opens one group per shard.
//!
//! openraft 0.9 takes one entry per `client_write` and waits for each
//! entry's fsync before the next, so proposals are coalesced here: the
//! first proposer to find no batch in flight takes everything queued, sends
//! it as one entry and hands each proposer its own outcome; proposers that
//! arrive meanwhile queue for the next batch (group commit, as the local
//! log does for its fsyncs).
//!
//! The groups run on a runtime of their own, so callers may be plain
//! threads, the server's blocking pool or tests alike.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fenghuo_storage::StorageError as ShardError;
use fenghuo_storage::replicate::{
    LocalLog, LocalReplica, LogEntry, Replicator, ShardLog as _, StateMachine as _,
};
use fenghuo_storage::tsdb::{Applied, ReplicaContext, ReplicaFactory};
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::storage::RaftLogStorage;
use openraft::{Config, LeaderId, Membership, Raft, SnapshotPolicy};
use parking_lot::{Condvar, Mutex};

use crate::log_store::{LogStore, LogStoreOptions};
use crate::network::{HttpNetwork, NoPeers};
use crate::rpc::Groups;
use crate::state_machine::{Position, ShardStateMachine, Snapshots};
use crate::types::{LogId, Node, NodeId, Proposal, StoredMembership, TypeConfig};

/// Bytes of entries one batch may carry (the proposer whose entry does not
/// fit waits for the next batch).
const MAX_BATCH_BYTES: usize = 8 << 20;

/// A runtime owned by the groups; shut down without blocking when dropped
/// (which may happen inside another runtime).
pub struct GroupRuntime(Option<tokio::runtime::Runtime>);

impl GroupRuntime {
    pub fn new(threads: usize) -> Result<Self, ShardError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("fenghuo-raft")
            .enable_all()
            .build()
            .map(|rt| Self(Some(rt)))
            .map_err(|e| ShardError::Io(format!("starting the Raft runtime: {e}")))
    }

    /// Runs `fut` on the groups' runtime in the background.
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if let Some(rt) = &self.0 {
            rt.spawn(fut);
        }
    }

    /// Runs `fut` on the groups' runtime and waits for it from this thread
    /// (which must not be one of that runtime's workers).
    pub fn run<F>(&self, fut: F) -> Result<F::Output, ShardError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let rt = self.0.as_ref().ok_or(ShardError::ShuttingDown)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| ShardError::Io("a Raft task ended without answering".into()))
    }
}

impl Drop for GroupRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Raft timing for shard groups (CLUSTER.md: a slow fsync on a busy 2-core
/// machine must not look like a dead leader).
pub fn group_config() -> Result<Arc<Config>, ShardError> {
    let c = Config {
        cluster_name: "fenghuo".into(),
        heartbeat_interval: 250,
        election_timeout_min: 1500,
        election_timeout_max: 3000,
        install_snapshot_timeout: 60_000,
        // Snapshots follow the store's checkpoints (`persisted_upto`).
        snapshot_policy: SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        // Entries are batches of up to MAX_BATCH_BYTES.
        max_payload_entries: 16,
        ..Config::default()
    };
    c.validate()
        .map(Arc::new)
        .map_err(|e| ShardError::InvalidConfig(format!("Raft configuration: {e}")))
}

struct Waiting {
    bytes: Vec<u8>,
    entry: LogEntry,
    slot: Arc<Mutex<Option<Result<Applied, ShardError>>>>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    in_flight: bool,
}

/// One shard's Raft group as its replicator.
pub struct RaftReplica {
    shard: u32,
    raft: Raft<TypeConfig>,
    /// Whether the group has this node as its only member.
    single: bool,
    groups: Groups,
    log: LogStore,
    snapshots: Arc<Snapshots>,
    rt: Arc<GroupRuntime>,
    queue: Mutex<Queue>,
    done: Condvar,
    failed: Mutex<Option<String>>,
}

impl RaftReplica {
    /// The group (for metrics, membership changes and tests).
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// Sends one batch as one Raft entry; every proposer in it gets its
    /// own outcome.
    fn send(&self, batch: Vec<Waiting>) {
        let mut items = Vec::with_capacity(batch.len());
        let mut slots = Vec::with_capacity(batch.len());
        for w in batch {
            items.push((w.bytes, w.entry));
            slots.push(w.slot);
        }
        crate::metrics::ENTRIES_PROPOSED.inc();
        crate::metrics::PROPOSALS.inc_by(items.len() as u64);
        let raft = self.raft.clone();
        let proposal = Proposal::batch(items);
        let result = self
            .rt
            .run(async move { raft.client_write(proposal).await })
            .and_then(|r| r.map_err(|e| self.write_error(e)));
        match result {
            Ok(resp) => {
                let mut applied = resp.data.0.into_iter();
                for slot in slots {
                    *slot.lock() = Some(applied.next().ok_or_else(|| {
                        ShardError::Io(format!("shard {}: a proposal got no outcome", self.shard))
                    }));
                }
            }
            Err(e) => {
                for slot in slots {
                    *slot.lock() = Some(Err(e.clone()));
                }
            }
        }
    }

    fn write_error(&self, e: RaftError<NodeId, ClientWriteError<NodeId, Node>>) -> ShardError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ShardError::Io(format!(
                "shard {} is led elsewhere (leader {:?}); retry",
                self.shard, f.leader_id
            )),
            RaftError::APIError(other) => ShardError::Io(format!("shard {}: {other}", self.shard)),
            RaftError::Fatal(f) => {
                let why = format!("shard {}'s Raft group stopped: {f}", self.shard);
                tracing::error!(shard = self.shard, error = %f, "A shard's Raft group stopped.");
                *self.failed.lock() = Some(why.clone());
                ShardError::Io(why)
            }
        }
    }
}

impl Replicator<Applied> for RaftReplica {
    fn propose(&self, bytes: Vec<u8>, entry: LogEntry) -> Result<Applied, ShardError> {
        if let Some(why) = self.failed.lock().clone() {
            return Err(ShardError::Io(why));
        }
        let slot = Arc::new(Mutex::new(None));
        let mut q = self.queue.lock();
        q.waiting.push(Waiting {
            bytes,
            entry,
            slot: slot.clone(),
        });
        loop {
            if let Some(result) = slot.lock().take() {
                return result;
            }
            if q.in_flight {
                self.done.wait(&mut q);
                continue;
            }
            // Become the sender: take what fits in one batch, oldest first.
            q.in_flight = true;
            let mut size = 0usize;
            let take = q
                .waiting
                .iter()
                .take_while(|w| {
                    size += w.bytes.len();
                    size <= MAX_BATCH_BYTES
                })
                .count()
                .max(1);
            let batch: Vec<Waiting> = q.waiting.drain(..take).collect();
            drop(q);
            // Should sending panic, the batch's proposers get an error and
            // the queue moves on, rather than every later proposer waiting
            // for a batch that never ends.
            let slots: Vec<_> = batch.iter().map(|w| w.slot.clone()).collect();
            let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.send(batch)));
            if sent.is_err() {
                for slot in &slots {
                    let mut s = slot.lock();
                    if s.is_none() {
                        *s = Some(Err(ShardError::Io(format!(
                            "shard {}: sending a proposal panicked",
                            self.shard
                        ))));
                    }
                }
            }
            q = self.queue.lock();
            q.in_flight = false;
            self.done.notify_all();
        }
    }

    fn persisted_upto(&self, _index: u64) -> Result<(), ShardError> {
        // The store persisted its state: a snapshot at that point lets
        // openraft purge the log up to it.
        self.snapshots.prepare()?;
        let raft = self.raft.clone();
        self.rt
            .run(async move { raft.trigger().snapshot().await })?
            .map_err(|e| ShardError::Io(format!("shard {}: requesting a snapshot: {e}", self.shard)))
    }

    fn log_bytes(&self) -> u64 {
        self.log.size_bytes()
    }

    fn failure(&self) -> Option<String> {
        self.failed.lock().clone()
    }

    fn leads(&self) -> bool {
        let m = self.raft.metrics().borrow().clone();
        m.current_leader == Some(m.id) && m.state == openraft::ServerState::Leader
    }

    fn close(&self) -> Result<(), ShardError> {
        self.groups.remove(self.shard);
        let raft = self.raft.clone();
        let (shard, single) = (self.shard, self.single);
        self.rt.run(async move {
            // The store's last checkpoint covers everything applied: a
            // snapshot there lets the log be purged before the group stops,
            // so a stopped node holds no log it does not need.
            let applied = raft.metrics().borrow().last_applied;
            // Only a one-member group waits: with peers the purge may wait
            // for them, and the next start replays what is left anyway.
            if let Some(applied) = applied.filter(|_| single) {
                let purged = async {
                    raft.trigger().snapshot().await.map_err(|e| e.to_string())?;
                    raft.wait(Some(Duration::from_secs(30)))
                        .metrics(|m| m.purged.is_some_and(|p| p.index >= applied.index), "log purged")
                        .await
                        .map_err(|e| e.to_string())
                };
                if let Err(e) = purged.await {
                    tracing::warn!(shard, error = %e, "The log was not purged before stopping; the next start replays it.");
                }
            }
            raft.shutdown()
                .await
                .map_err(|e| ShardError::Io(format!("shard {shard}: stopping its Raft group: {e}")))
        })?
    }
}

/// Opens each shard's Raft group on this node: one-member groups on a
/// single node, RF-member groups over the internal RPC in a cluster.
pub struct RaftReplicas {
    pub node_id: NodeId,
    pub node: Node,
    /// Every node of the cluster, this one included.
    pub nodes: BTreeMap<NodeId, Node>,
    /// Members of each shard's group.
    pub replication_factor: usize,
    /// Names the cluster in every internal RPC.
    pub cluster: String,
    /// The internal RPC client (`None` on a single node).
    pub client: Option<reqwest::Client>,
    /// Where the RPC server finds this node's groups.
    pub groups: Groups,
    pub log: LogStoreOptions,
    pub rt: Arc<GroupRuntime>,
    pub config: Arc<Config>,
    /// How long opening waits for a one-member group to elect itself and
    /// apply its log.
    pub ready_timeout: Duration,
}

impl RaftReplicas {
    /// A single node's groups: node 1, no peers.
    pub fn single_node(log: LogStoreOptions) -> Result<Self, ShardError> {
        let node = Node::default();
        Ok(Self {
            node_id: 1,
            nodes: BTreeMap::from([(1, node.clone())]),
            node,
            replication_factor: 1,
            cluster: "single-node".into(),
            client: None,
            groups: Groups::default(),
            log,
            rt: Arc::new(GroupRuntime::new(2)?),
            config: group_config()?,
            ready_timeout: Duration::from_secs(60),
        })
    }

    /// The members of `shard`'s group: `replication_factor` consecutive
    /// nodes (by id) starting at `shard mod nodes`. The first one creates
    /// the group and so leads it at first (openraft 0.9 cannot transfer
    /// leadership), which spreads the leaders over the nodes.
    pub fn members_of(&self, shard: u32) -> Vec<NodeId> {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        let n = ids.len().max(1);
        (0..self.replication_factor.min(n))
            .map(|k| ids[(shard as usize + k) % n])
            .collect()
    }

    fn open_group(&self, cx: &ReplicaContext<'_>) -> Result<RaftReplica, ShardError> {
        let members = self.members_of(cx.shard);
        if !members.contains(&self.node_id) {
            return Err(ShardError::InvalidConfig(format!(
                "node {} is not a member of shard {} (members {members:?})",
                self.node_id, cx.shard
            )));
        }
        let raft_dir = cx.dir.join("raft");
        if !raft_dir.exists() {
            migrate_local_log(cx, self.node_id, &self.node)?;
        } else {
            remove_migrated_local_log(cx)?;
        }
        let log = LogStore::open(&raft_dir, self.log.clone()).map_err(raft_err)?;
        let mut group_log = log.clone();
        let sm = ShardStateMachine::open(cx.machine.clone(), &cx.dir.join("snapshots")).map_err(raft_err)?;
        let snapshots = sm.snapshots();
        let (node_id, config) = (self.node_id, self.config.clone());
        let shard = cx.shard;
        let timeout = self.ready_timeout;
        let member_nodes: BTreeMap<NodeId, Node> = members
            .iter()
            .map(|id| (*id, self.nodes.get(id).cloned().unwrap_or_default()))
            .collect();
        let creator = members.first() == Some(&node_id);
        let network = self.client.clone().map(|client| HttpNetwork {
            client,
            cluster: self.cluster.clone(),
            from: node_id,
            shard,
        });
        let single = members.len() == 1;
        let raft = self.rt.run(async move {
            let last = group_log.get_log_state().await.map_err(raft_err)?.last_log_id;
            let started = match network {
                Some(net) => Raft::new(node_id, config, net, group_log, sm).await,
                None => Raft::new(node_id, config, NoPeers, group_log, sm).await,
            };
            let raft = started
                .map_err(|e| ShardError::Io(format!("shard {shard}: starting its Raft group: {e}")))?;
            if creator {
                match raft.initialize(member_nodes).await {
                    Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                    Err(e) => {
                        return Err(ShardError::Io(format!(
                            "shard {shard}: initializing its Raft group: {e}"
                        )));
                    }
                }
            }
            if !single {
                // The group elects a leader and replicates by itself; reads
                // of a replica wait for it to catch up (read index).
                return Ok(raft);
            }
            // A one-member group leads itself; one without a committed vote
            // (a store just moved from the local log) need not wait out an
            // election timeout for that.
            if raft.metrics().borrow().current_leader != Some(node_id) {
                raft.trigger()
                    .elect()
                    .await
                    .map_err(|e| ShardError::Io(format!("shard {shard}: starting an election: {e}")))?;
            }
            raft.wait(Some(timeout))
                .current_leader(node_id, "leading itself")
                .await
                .map_err(|e| ShardError::Io(format!("shard {shard}: electing itself: {e}")))?;
            // Everything the log holds is applied before the store opens, so
            // a read sees every write acknowledged before a restart.
            raft.wait(Some(timeout))
                .applied_index_at_least(last.map(|l| l.index), "log applied")
                .await
                .map_err(|e| ShardError::Io(format!("shard {shard}: applying its log: {e}")))?;
            Ok(raft)
        })??;
        self.groups.insert(shard, raft.clone());
        self.rt.spawn(log_leader_changes(shard, raft.clone()));
        Ok(RaftReplica {
            shard,
            raft,
            single,
            groups: self.groups.clone(),
            log,
            snapshots,
            rt: self.rt.clone(),
            queue: Mutex::new(Queue::default()),
            done: Condvar::new(),
            failed: Mutex::new(None),
        })
    }
}

/// Logs and counts each change of the group's leader, until it stops.
async fn log_leader_changes(shard: u32, raft: Raft<TypeConfig>) {
    let mut rx = raft.metrics();
    let mut leader = rx.borrow().current_leader;
    let label = shard.to_string();
    while rx.changed().await.is_ok() {
        let (now, term) = {
            let m = rx.borrow();
            (m.current_leader, m.current_term)
        };
        if now != leader {
            crate::metrics::LEADER_CHANGES.with_label_values(&[&label]).inc();
            match now {
                Some(id) => {
                    tracing::info!(shard, term, leader = id, "A shard's Raft group has a new leader.")
                }
                None => tracing::warn!(shard, term, "A shard's Raft group lost its leader."),
            }
            leader = now;
        }
    }
}

fn raft_err(e: crate::types::StorageError) -> ShardError {
    ShardError::Io(e.to_string())
}

impl ReplicaFactory for RaftReplicas {
    fn open(&self, cx: ReplicaContext<'_>) -> Result<Box<dyn Replicator<Applied>>, ShardError> {
        Ok(Box::new(self.open_group(&cx)?))
    }

    fn holds(&self, shard: u32) -> bool {
        self.members_of(shard).contains(&self.node_id)
    }
}

/// A local log left beside a Raft log: a move to Raft that crashed after
/// the Raft log was created, when everything in the local log was already
/// in the store, so it goes. Anything else in it is refused, not dropped.
fn remove_migrated_local_log(cx: &ReplicaContext<'_>) -> Result<(), ShardError> {
    let local = cx.dir.join("log");
    if !local.exists() {
        return Ok(());
    }
    let applied = cx.machine.applied_index();
    let last = LocalLog::open(&local, cx.log.clone(), applied + 1)?.last_index();
    if last > applied {
        return Err(ShardError::Corrupt {
            what: "shard",
            detail: format!(
                "shard {} has both a Raft log and a local log holding entries up to {last} beyond \
                 the store's applied index {applied}; refusing to choose",
                cx.shard
            ),
        });
    }
    std::fs::remove_dir_all(&local)
        .map_err(|e| ShardError::Io(format!("removing the migrated log {}: {e}", local.display())))
}

/// Moves a shard that ran on the local log to Raft: replays the local log,
/// checkpoints, and records the state as applied up to Raft index
/// `applied - 1` in term 0 by this node, with this node as the only
/// member; the Raft log then starts purged up to there. The local log is
/// removed last, so a crash part-way repeats the move.
fn migrate_local_log(cx: &ReplicaContext<'_>, node_id: NodeId, node: &Node) -> Result<(), ShardError> {
    let local = cx.dir.join("log");
    if !local.exists() && cx.machine.applied_index() == 0 {
        return Ok(());
    }
    if local.exists() {
        let log = LocalLog::open(&local, cx.log.clone(), cx.machine.applied_index() + 1)?;
        LocalReplica::open(format!("shard {}", cx.shard), log, cx.machine.clone())?;
    }
    let applied = cx.machine.applied_index();
    if applied > 0 {
        let leader = LeaderId::new(0, node_id);
        let log_id = LogId::new(leader, applied - 1);
        let members = Membership::new(
            vec![[node_id].into_iter().collect()],
            BTreeMap::from([(node_id, node.clone())]),
        );
        let position = Position {
            leader: Some(leader),
            membership: StoredMembership::new(Some(log_id), members),
        };
        cx.machine.set_position(&position.encode().map_err(raft_err)?);
        cx.machine.checkpoint()?;
        LogStore::create_purged(&cx.dir.join("raft"), log_id).map_err(raft_err)?;
    }
    if local.exists() {
        std::fs::remove_dir_all(&local)
            .map_err(|e| ShardError::Io(format!("removing the migrated log {}: {e}", local.display())))?;
    }
    tracing::info!(
        shard = cx.shard,
        applied_index = applied,
        "Moved the shard from its local log to Raft."
    );
    Ok(())
}
