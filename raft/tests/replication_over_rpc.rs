//! Three nodes in one process, each with its own store, Raft groups and
//! internal RPC server on 127.0.0.1, every shard replicated on all three:
//! writes through each shard's leader reach every replica; when a leader's
//! node goes away the others elect a new leader and take writes; the node
//! that was away comes back after its peers purged their logs, so it
//! catches up by snapshot; afterwards every acknowledged sample is
//! readable on every replica and the replicas' digests are equal. With
//! more nodes than replicas, each node holds only the shards placed on it.
//!
//! (The cluster tests with real processes, `kill -9` and cut links come
//! with the cluster itself; this is the Raft transport on its own.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fenghuo_raft::rpc::{Groups, Identity, router};
use fenghuo_raft::{GroupRuntime, LogStoreOptions, Node, NodeId, RaftReplicas};
use fenghuo_storage::api::Appender;
use fenghuo_storage::model::{BorrowedBatch, WriteBatch};
use fenghuo_storage::placement;
use fenghuo_storage::testing::{T0, batch, series, tenant};
use fenghuo_storage::tsdb::{ManualClock, StateDigest, Tsdb, TsdbOptions};
use openraft::Config;

fn opts(shards: u32) -> TsdbOptions {
    TsdbOptions {
        shards,
        ..TsdbOptions::default()
    }
}

fn fast_config() -> Arc<Config> {
    let c = Config {
        cluster_name: "test".into(),
        heartbeat_interval: 100,
        election_timeout_min: 600,
        election_timeout_max: 1200,
        install_snapshot_timeout: 10_000,
        snapshot_policy: openraft::SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        max_payload_entries: 16,
        ..Config::default()
    };
    Arc::new(c.validate().unwrap())
}

struct TestNode {
    id: NodeId,
    addr: String,
    dir: PathBuf,
    shards: u32,
    replication_factor: usize,
    server: Option<tokio::runtime::Runtime>,
    tsdb: Option<Arc<Tsdb>>,
}

fn nodes_map(addrs: &BTreeMap<NodeId, String>) -> BTreeMap<NodeId, Node> {
    addrs
        .iter()
        .map(|(id, a)| (*id, Node { rpc_addr: a.clone() }))
        .collect()
}

impl TestNode {
    /// Starts the node's RPC server on its address, then opens its store.
    fn start(&mut self, addrs: &BTreeMap<NodeId, String>) {
        let groups = Groups::default();
        let server = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let app = router(
            groups.clone(),
            Identity {
                cluster: "test".into(),
                members: addrs.keys().copied().collect::<BTreeSet<_>>(),
            },
        );
        let addr = self.addr.clone();
        let listener = server.block_on(async move { tokio::net::TcpListener::bind(&addr).await.unwrap() });
        server.spawn(async move { axum::serve(listener, app).await });
        self.server = Some(server);
        let replicas = RaftReplicas {
            node_id: self.id,
            node: Node {
                rpc_addr: self.addr.clone(),
            },
            nodes: nodes_map(addrs),
            replication_factor: self.replication_factor,
            cluster: "test".into(),
            client: Some(reqwest::Client::new()),
            groups,
            log: LogStoreOptions::default(),
            rt: Arc::new(GroupRuntime::new(2).unwrap()),
            config: fast_config(),
            ready_timeout: Duration::from_secs(30),
        };
        let tsdb = Tsdb::open_with_replicas(
            &self.dir,
            opts(self.shards),
            Arc::new(ManualClock::new(T0)),
            false,
            &replicas,
        )
        .unwrap_or_else(|e| panic!("node {} opens: {e}", self.id));
        self.tsdb = Some(tsdb);
    }

    /// Takes the node off the network, then closes its store.
    fn stop(&mut self) {
        if let Some(rt) = self.server.take() {
            rt.shutdown_background();
        }
        self.tsdb = None;
    }

    fn db(&self) -> &Arc<Tsdb> {
        self.tsdb.as_ref().expect("node running")
    }
}

/// The shard of a one-series write.
fn shard_of(w: &WriteBatch, shards: u32) -> u32 {
    let mut w = w.clone();
    let b = BorrowedBatch::from_write_batch(&mut w);
    placement::split("a", &b.pairs, b.series, b.metadata, shards)[0].shard
}

/// The node leading `shard`, once the running nodes agree on one.
fn leader_of(nodes: &[TestNode], shard: u32, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        for (k, n) in nodes.iter().enumerate() {
            let Some(db) = &n.tsdb else { continue };
            if db.shard_leads(shard) == Some(true) {
                return k;
            }
        }
        assert!(Instant::now() < deadline, "no leader for shard {shard}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `rounds` rounds of 20 series through each shard's leader;
/// returns how many samples were acknowledged.
fn write(nodes: &[TestNode], from_round: i64, rounds: i64) -> u64 {
    let mut acked = 0;
    for r in from_round..from_round + rounds {
        let mut by_shard: BTreeMap<u32, Vec<_>> = BTreeMap::new();
        for i in 0..20 {
            let inst = format!("i{i}");
            let one = batch(vec![series(
                &[("__name__", "rep"), ("instance", inst.as_str())],
                &[(T0 + r * 1000, (r * 100 + i) as f64)],
            )]);
            by_shard
                .entry(shard_of(&one, nodes[0].shards))
                .or_default()
                .extend(one.series);
        }
        for (shard, s) in by_shard {
            let n = s.len();
            let leader = leader_of(nodes, shard, Duration::from_secs(20));
            let out = nodes[leader]
                .db()
                .append(&tenant("a"), batch(s))
                .unwrap_or_else(|e| panic!("round {r}, shard {shard}: {e}"));
            assert_eq!(out.samples_written as usize, n);
            acked += n as u64;
        }
    }
    acked
}

/// Waits until, for every shard, the running nodes holding it agree on
/// its digest, and the shards together hold `want` samples.
fn converged(nodes: &[TestNode], want: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let shards = nodes[0].shards;
    loop {
        let mut total = 0u64;
        let mut agree = true;
        let mut seen = Vec::new();
        for shard in 0..shards {
            let ds: Vec<(NodeId, StateDigest)> = nodes
                .iter()
                .filter_map(|n| {
                    let m = n.tsdb.as_ref()?.shard_machine(shard)?;
                    Some((n.id, m.digest().unwrap()))
                })
                .collect();
            let key = |d: &StateDigest| (d.series, d.samples, d.hash);
            agree &= !ds.is_empty() && ds.windows(2).all(|w| key(&w[0].1) == key(&w[1].1));
            total += ds.first().map_or(0, |d| d.1.samples);
            seen.push((shard, ds.iter().map(|(id, d)| (*id, key(d))).collect::<Vec<_>>()));
        }
        if agree && total == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replicas did not converge: {total} samples of {want}; per shard {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn node(id: NodeId, base: &Path, addrs: &BTreeMap<NodeId, String>, shards: u32, rf: usize) -> TestNode {
    TestNode {
        id,
        addr: addrs[&id].clone(),
        dir: base.join(format!("node{id}")),
        shards,
        replication_factor: rf,
        server: None,
        tsdb: None,
    }
}

#[test]
fn writes_replicate_survive_a_lost_leader_and_a_returning_node_catches_up_by_snapshot() {
    let base = tempfile::tempdir().unwrap();
    let addrs: BTreeMap<NodeId, String> = (1..=3).map(|id| (id, free_addr())).collect();
    let mut nodes: Vec<TestNode> = (1..=3).map(|id| node(id, base.path(), &addrs, 2, 3)).collect();
    // Opening blocks until each group is set up; the servers answer meanwhile.
    std::thread::scope(|s| {
        for n in nodes.iter_mut() {
            let addrs = &addrs;
            s.spawn(move || n.start(addrs));
        }
    });
    let mut acked = write(&nodes, 0, 10);
    converged(&nodes, acked);

    // The node leading shard 0 goes away; the other two elect a leader and
    // keep taking writes.
    let gone = leader_of(&nodes, 0, Duration::from_secs(20));
    nodes[gone].stop();
    acked += write(&nodes, 10, 10);
    converged(&nodes, acked);

    // The others checkpoint: their logs are purged, so the returning node
    // can only catch up from a snapshot.
    for n in nodes.iter().filter(|n| n.tsdb.is_some()) {
        n.db().checkpoint().unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    acked += write(&nodes, 20, 5);
    nodes[gone].start(&addrs);
    converged(&nodes, acked);
    // It caught up by installing snapshots (a store that switched to an
    // installed database names it in CURRENT_DB).
    for shard in 0..2 {
        let pointer = nodes[gone].dir.join(format!("shard-{shard:04}/CURRENT_DB"));
        assert!(
            pointer.exists(),
            "shard {shard} of node {} installed no snapshot",
            nodes[gone].id
        );
    }
    acked += write(&nodes, 25, 5);
    converged(&nodes, acked);
    assert_eq!(acked, 30 * 20);
}

/// Four nodes, four shards, three replicas each: every node holds (opens,
/// stores) only the three shards placed on it, and each shard's three
/// holders agree.
#[test]
fn each_node_holds_only_the_shards_placed_on_it() {
    let base = tempfile::tempdir().unwrap();
    let addrs: BTreeMap<NodeId, String> = (1..=4).map(|id| (id, free_addr())).collect();
    let mut nodes: Vec<TestNode> = (1..=4).map(|id| node(id, base.path(), &addrs, 4, 3)).collect();
    std::thread::scope(|s| {
        for n in nodes.iter_mut() {
            let addrs = &addrs;
            s.spawn(move || n.start(addrs));
        }
    });
    for n in &nodes {
        let held: Vec<u32> = (0..4).filter(|&s| n.db().shard_machine(s).is_some()).collect();
        assert_eq!(held.len(), 3, "node {} holds {held:?}", n.id);
        for shard in 0..4u32 {
            let dir = n.dir.join(format!("shard-{shard:04}"));
            assert_eq!(dir.exists(), held.contains(&shard), "{}", dir.display());
        }
    }
    let acked = write(&nodes, 0, 10);
    converged(&nodes, acked);
    assert_eq!(acked, 10 * 20);
}
