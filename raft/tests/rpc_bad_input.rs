//! The internal Raft RPC refuses what is not a well-formed message from a
//! member of its cluster, with a 4xx naming the problem, and the node goes
//! on working: messages from another cluster or an unknown node, unknown
//! shards, truncated and oversized frames, garbage, and snapshot file names
//! that leave the snapshot directory.

use std::collections::BTreeSet;
use std::sync::Arc;

use fenghuo_raft::rpc::{CLUSTER_HEADER, FROM_HEADER, Identity, MAX_RPC_BYTES, PREFIX, router};
use fenghuo_raft::{LogStoreOptions, RaftReplicas};
use fenghuo_storage::api::Appender;
use fenghuo_storage::testing::{T0, batch, series, tenant};
use fenghuo_storage::tsdb::{ManualClock, Tsdb, TsdbOptions};

#[test]
fn bad_messages_get_a_4xx_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let replicas = RaftReplicas::single_node(LogStoreOptions::default()).unwrap();
    let db = Tsdb::open_with_replicas(
        dir.path(),
        TsdbOptions::default(),
        Arc::new(ManualClock::new(T0)),
        false,
        &replicas,
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let app = router(
        replicas.groups.clone(),
        Identity {
            cluster: "test".into(),
            members: BTreeSet::from([1]),
        },
    );
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::blocking::Client::new();
    let send = |path: &str, cluster: &str, from: &str, body: Vec<u8>| {
        let resp = client
            .post(format!("http://{addr}{PREFIX}/{path}"))
            .header(CLUSTER_HEADER, cluster)
            .header(FROM_HEADER, from)
            .body(body)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap_or_default())
    };
    /// Path, cluster, sender, body, expected status, what the answer names.
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Vec<u8>,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        ("0/append", "other", "1", vec![0; 8], 403, "another cluster"),
        ("0/append", "test", "9", vec![0; 8], 403, "unknown node"),
        ("0/append", "test", "x", vec![0; 8], 403, "unknown node"),
        ("7/append", "test", "1", vec![0; 8], 404, "shard 7"),
        ("0/append", "test", "1", vec![1, 2, 3], 400, "truncated"),
        (
            "0/append",
            "test",
            "1",
            u32::MAX.to_le_bytes().to_vec(),
            400,
            "truncated",
        ),
        (
            "0/append",
            "test",
            "1",
            b"\x02\x00\x00\x00{}".to_vec(),
            400,
            "append header",
        ),
        ("0/vote", "test", "1", b"not json".to_vec(), 400, "vote request"),
        (
            "0/snapshot/s1/file?name=../escape&offset=0",
            "test",
            "1",
            b"x".to_vec(),
            400,
            "file name",
        ),
        (
            "0/snapshot/s1/file?name=/abs&offset=0",
            "test",
            "1",
            b"x".to_vec(),
            400,
            "file name",
        ),
        (
            "0/snapshot/s2/install",
            "test",
            "1",
            b"{}".to_vec(),
            400,
            "install request",
        ),
    ];
    for (path, cluster, from, body, want, says) in cases {
        let (status, text) = send(path, cluster, from, body);
        assert_eq!(status, want, "{path} from {from}@{cluster}: {text}");
        assert!(text.contains(says), "{path}: {text:?} should name {says:?}");
    }
    // A well-formed entry header with a damaged entry inside.
    let mut frame = Vec::new();
    let header = br#"{"vote":{"leader_id":{"term":1,"node_id":1},"committed":true},"prev_log_id":null,"leader_commit":null}"#;
    frame.extend_from_slice(&(header.len() as u32).to_le_bytes());
    frame.extend_from_slice(header);
    frame.extend_from_slice(&5u64.to_le_bytes());
    frame.extend_from_slice(&3u32.to_le_bytes());
    frame.extend_from_slice(&[9, 9, 9]);
    let (status, text) = send("0/append", "test", "1", frame);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Raft log entry 5"), "{text}");
    // Over the size limit.
    let (status, _) = send("0/append", "test", "1", vec![0; MAX_RPC_BYTES + 1]);
    assert_eq!(status, 413);
    // Nothing of it reached the group: it still takes writes.
    let out = db
        .append(
            &tenant("a"),
            batch(vec![series(&[("__name__", "after")], &[(T0, 1.0)])]),
        )
        .unwrap();
    assert_eq!(out.samples_written, 1);
}
