//! Internal RPC for Raft between the nodes of a cluster: the wire format
//! and the server side (the client is [`crate::network::HttpNetwork`]).
//!
//! HTTP on the node's `cluster.rpc` address, under `/internal/raft/v1/
//! {shard}/`:
//! - `append`: a binary body, `[header length u32 LE][header JSON: vote,
//!   prev_log_id, leader_commit]` then per entry `[index u64 LE][length
//!   u32 LE][the entry's log frame payload]` (the log's own encoding, so a
//!   follower stores what it receives);
//! - `vote`: JSON;
//! - `snapshot/{id}/file?name=..&offset=..`: a chunk of one file of a
//!   snapshot directory; `snapshot/{id}/install`: JSON `{vote, meta}` once
//!   every file is sent.
//!
//! Answers are JSON `Result<response, RaftError>` with status 200; a
//! request that is not a well-formed message from a member of this cluster
//! gets a 4xx naming the problem and is logged, never applied.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use openraft::Raft;
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::log_store::{decode_entry, encode_entry};
use crate::types::{LogId, NodeId, SnapshotDir, SnapshotMeta, TypeConfig, Vote};

/// Path prefix of the Raft RPCs.
pub const PREFIX: &str = "/internal/raft/v1";
/// Largest RPC body accepted (an append carries at most
/// `max_payload_entries` entries of at most `MAX_BATCH_BYTES` each).
pub const MAX_RPC_BYTES: usize = 64 << 20;
/// Header naming the cluster a message belongs to.
pub const CLUSTER_HEADER: &str = "x-fenghuo-cluster";
/// Header naming the sending node.
pub const FROM_HEADER: &str = "x-fenghuo-from";

/// The groups this node runs, by shard: the RPC server hands them their
/// messages.
#[derive(Clone, Default)]
pub struct Groups(Arc<RwLock<HashMap<u32, Raft<TypeConfig>>>>);

impl Groups {
    pub fn insert(&self, shard: u32, raft: Raft<TypeConfig>) {
        self.0.write().insert(shard, raft);
    }

    pub fn get(&self, shard: u32) -> Option<Raft<TypeConfig>> {
        self.0.read().get(&shard).cloned()
    }

    pub fn remove(&self, shard: u32) {
        self.0.write().remove(&shard);
    }
}

/// Who may talk to this node.
#[derive(Clone, Debug)]
pub struct Identity {
    pub cluster: String,
    pub members: BTreeSet<NodeId>,
}

#[derive(Serialize, Deserialize)]
struct AppendHeader {
    vote: Vote,
    prev_log_id: Option<LogId>,
    leader_commit: Option<LogId>,
}

/// Encodes an append request (see the module doc).
pub fn encode_append(req: &AppendEntriesRequest<TypeConfig>) -> Result<Vec<u8>, String> {
    let header = serde_json::to_vec(&AppendHeader {
        vote: req.vote,
        prev_log_id: req.prev_log_id,
        leader_commit: req.leader_commit,
    })
    .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(header.len() + 64);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    for e in &req.entries {
        let payload = encode_entry(e).map_err(|e| e.to_string())?;
        out.extend_from_slice(&e.log_id.index.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
    }
    Ok(out)
}

/// Decodes an append request; an error names what is wrong with it.
pub fn decode_append(b: &[u8]) -> Result<AppendEntriesRequest<TypeConfig>, String> {
    /// Reads the next `n` bytes from `b` at `at`.
    fn take<'a>(b: &'a [u8], at: &mut usize, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = at.checked_add(n).filter(|&e| e <= b.len());
        let Some(end) = end else {
            return Err(format!(
                "truncated append request: {what} needs {n} bytes at offset {at}"
            ));
        };
        let s = &b[*at..end];
        *at = end;
        Ok(s)
    }
    let u32_of = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize;
    let mut at = 0usize;
    let header_len = u32_of(take(b, &mut at, 4, "header length")?);
    let header: AppendHeader = serde_json::from_slice(take(b, &mut at, header_len, "header")?)
        .map_err(|e| format!("append header: {e}"))?;
    let mut entries = Vec::new();
    while at < b.len() {
        let mut i = [0u8; 8];
        i.copy_from_slice(take(b, &mut at, 8, "entry index")?);
        let index = u64::from_le_bytes(i);
        let len = u32_of(take(b, &mut at, 4, "entry length")?);
        let payload = take(b, &mut at, len, "entry")?;
        entries.push(decode_entry(index, payload).map_err(|e| e.to_string())?);
    }
    Ok(AppendEntriesRequest {
        vote: header.vote,
        prev_log_id: header.prev_log_id,
        leader_commit: header.leader_commit,
        entries,
    })
}

/// The install call that ends a snapshot transfer.
#[derive(Serialize, Deserialize)]
pub struct InstallRequest {
    pub vote: Vote,
    pub meta: SnapshotMeta,
}

#[derive(Deserialize)]
struct FileChunk {
    name: String,
    offset: u64,
}

/// The server side's state.
#[derive(Clone)]
struct Server {
    groups: Groups,
    identity: Arc<Identity>,
    /// Snapshots being received: (shard, snapshot id) -> directory.
    receiving: Arc<Mutex<HashMap<(u32, String), PathBuf>>>,
}

/// The Raft RPC routes (merged into the node's internal RPC server).
pub fn router(groups: Groups, identity: Identity) -> Router {
    let state = Server {
        groups,
        identity: Arc::new(identity),
        receiving: Arc::default(),
    };
    Router::new()
        .route(&format!("{PREFIX}/{{shard}}/append"), post(append))
        .route(&format!("{PREFIX}/{{shard}}/vote"), post(vote))
        .route(
            &format!("{PREFIX}/{{shard}}/snapshot/{{id}}/file"),
            post(snapshot_file),
        )
        .route(
            &format!("{PREFIX}/{{shard}}/snapshot/{{id}}/install"),
            post(snapshot_install),
        )
        .layer(DefaultBodyLimit::max(MAX_RPC_BYTES))
        .with_state(state)
}

fn refuse(status: StatusCode, why: String) -> Response {
    tracing::warn!(%status, reason = %why, "Refused an internal RPC.");
    (status, why).into_response()
}

/// Checks the sender and finds the group; the error is the answer.
fn admit(s: &Server, headers: &HeaderMap, shard: u32) -> Result<Raft<TypeConfig>, Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header(CLUSTER_HEADER) != Some(s.identity.cluster.as_str()) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!(
                "message from another cluster ({:?}, this is {:?})",
                header(CLUSTER_HEADER),
                s.identity.cluster
            ),
        ));
    }
    let from = header(FROM_HEADER).and_then(|v| v.parse::<NodeId>().ok());
    if !from.is_some_and(|f| s.identity.members.contains(&f)) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("message from unknown node {:?}", header(FROM_HEADER)),
        ));
    }
    s.groups.get(shard).ok_or_else(|| {
        refuse(
            StatusCode::NOT_FOUND,
            format!("shard {shard} has no group on this node"),
        )
    })
}

fn json<T: Serialize>(v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => (StatusCode::OK, b).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn append(
    State(s): State<Server>,
    UrlPath(shard): UrlPath<u32>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let raft = admit(&s, &headers, shard)?;
    let req = match decode_append(&body) {
        Ok(r) => r,
        Err(why) => return Err(refuse(StatusCode::BAD_REQUEST, why)),
    };
    Ok(json(&raft.append_entries(req).await))
}

async fn vote(
    State(s): State<Server>,
    UrlPath(shard): UrlPath<u32>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let raft = admit(&s, &headers, shard)?;
    let req: VoteRequest<NodeId> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return Err(refuse(StatusCode::BAD_REQUEST, format!("vote request: {e}"))),
    };
    Ok(json(&raft.vote(req).await))
}

/// A relative path of plain components (no `..`, no root).
fn safe_relative(name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    let ok = !name.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| p.to_path_buf())
}

async fn snapshot_file(
    State(s): State<Server>,
    UrlPath((shard, id)): UrlPath<(u32, String)>,
    Query(chunk): Query<FileChunk>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let raft = admit(&s, &headers, shard)?;
    let Some(name) = safe_relative(&chunk.name) else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("bad snapshot file name {:?}", chunk.name),
        ));
    };
    let known = s.receiving.lock().get(&(shard, id.clone())).cloned();
    let dir = match known {
        Some(d) => d,
        None => match raft.begin_receiving_snapshot().await {
            Ok(d) => {
                s.receiving.lock().insert((shard, id.clone()), d.path.clone());
                d.path
            }
            Err(e) => return Ok(json(&Err::<(), _>(e.to_string()))),
        },
    };
    let path = dir.join(name);
    let offset = chunk.offset;
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(&body)?;
        f.sync_data()
    })
    .await;
    let written = match written {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("writing snapshot file: {e}")),
        Err(e) => Err(format!("writing snapshot file: {e}")),
    };
    Ok(json(&written))
}

async fn snapshot_install(
    State(s): State<Server>,
    UrlPath((shard, id)): UrlPath<(u32, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let raft = admit(&s, &headers, shard)?;
    let req: InstallRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                format!("snapshot install request: {e}"),
            ));
        }
    };
    let Some(path) = s.receiving.lock().remove(&(shard, id.clone())) else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("snapshot {id} of shard {shard} has no files here"),
        ));
    };
    let snapshot = openraft::Snapshot {
        meta: req.meta,
        snapshot: Box::new(SnapshotDir { path }),
    };
    let installed = raft.install_full_snapshot(req.vote, snapshot).await;
    Ok(json(&installed.map_err(|e| e.to_string())))
}
