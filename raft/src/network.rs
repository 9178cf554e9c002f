//! How a group reaches its peers. [`NoPeers`]: a one-member group (a
//! single node) never sends a Raft message, so every attempt is refused as
//! unreachable. [`HttpNetwork`]: groups with peers send Raft messages over
//! the nodes' internal RPC (see [`crate::rpc`] for the wire format).

use std::future::Future;

use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{RaftNetwork, RaftNetworkFactory, Snapshot};

use crate::types::{Node, NodeId, TypeConfig, Vote};

#[derive(Clone, Copy, Debug, Default)]
pub struct NoPeers;

fn unreachable(target: &str) -> Unreachable {
    Unreachable::new(&std::io::Error::other(format!(
        "node {target} is not reachable: this group has no peers"
    )))
}

impl RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = NoPeers;

    async fn new_client(&mut self, _target: NodeId, _node: &Node) -> NoPeers {
        NoPeers
    }
}

impl RaftNetwork<TypeConfig> for NoPeers {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        Err(RPCError::Unreachable(unreachable("peer")))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        Err(RPCError::Unreachable(unreachable("peer")))
    }

    async fn full_snapshot(
        &mut self,
        _vote: Vote,
        _snapshot: Snapshot<TypeConfig>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        Err(StreamingError::Network(NetworkError::new(
            &std::io::Error::other("this group has no peers to send a snapshot to"),
        )))
    }
}

/// The network of groups with peers: Raft messages over the nodes'
/// internal RPC ([`crate::rpc`]), one HTTP client (and its pooled
/// connections) shared by every group of the node.
#[derive(Clone)]
pub struct HttpNetwork {
    pub client: reqwest::Client,
    pub cluster: String,
    pub from: NodeId,
    pub shard: u32,
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = HttpPeer;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> HttpPeer {
        HttpPeer {
            net: self.clone(),
            target,
            base: format!("http://{}{}/{}", node.rpc_addr, crate::rpc::PREFIX, self.shard),
        }
    }
}

/// One peer of one group.
pub struct HttpPeer {
    net: HttpNetwork,
    target: NodeId,
    base: String,
}

/// Why a call did not get an answer.
enum CallError {
    Unreachable(String),
    Network(String),
}

impl CallError {
    fn rpc<E: std::error::Error>(self) -> RPCError<NodeId, Node, E> {
        match self {
            CallError::Unreachable(m) => RPCError::Unreachable(Unreachable::new(&std::io::Error::other(m))),
            CallError::Network(m) => RPCError::Network(NetworkError::new(&std::io::Error::other(m))),
        }
    }

    fn streaming(self) -> StreamingError<TypeConfig, Fatal<NodeId>> {
        match self {
            CallError::Unreachable(m) => {
                StreamingError::Unreachable(Unreachable::new(&std::io::Error::other(m)))
            }
            CallError::Network(m) => StreamingError::Network(NetworkError::new(&std::io::Error::other(m))),
        }
    }
}

impl HttpPeer {
    /// POSTs `body` to `path` under the group's prefix and decodes the JSON
    /// answer.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
        timeout: std::time::Duration,
    ) -> Result<T, CallError> {
        let url = format!("{}/{path}", self.base);
        let resp = self
            .net
            .client
            .post(&url)
            .header(crate::rpc::CLUSTER_HEADER, &self.net.cluster)
            .header(crate::rpc::FROM_HEADER, self.net.from.to_string())
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    CallError::Unreachable(format!("node {}: {e}", self.target))
                } else {
                    CallError::Network(format!("node {}: {e}", self.target))
                }
            })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| CallError::Network(format!("node {}: {e}", self.target)))?;
        if !status.is_success() {
            return Err(CallError::Network(format!(
                "node {} refused {path}: {status} {}",
                self.target,
                String::from_utf8_lossy(&bytes)
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            CallError::Network(format!("node {}: undecodable answer to {path}: {e}", self.target))
        })
    }
}

impl RaftNetwork<TypeConfig> for HttpPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let body = crate::rpc::encode_append(&rpc).map_err(|e| CallError::Network(e).rpc())?;
        let answer: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> = self
            .call("append", body, option.hard_ttl())
            .await
            .map_err(CallError::rpc)?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let body = serde_json::to_vec(&rpc).map_err(|e| CallError::Network(e.to_string()).rpc())?;
        let answer: Result<VoteResponse<NodeId>, RaftError<NodeId>> = self
            .call("vote", body, option.hard_ttl())
            .await
            .map_err(CallError::rpc)?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    /// Sends every file of the snapshot directory in chunks, then asks the
    /// peer to install it. Stops when openraft cancels the transfer.
    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let send = async {
            let root = snapshot.snapshot.path.clone();
            let files = tokio::task::spawn_blocking(move || list_files(&root))
                .await
                .map_err(|e| CallError::Network(e.to_string()).streaming())?
                .map_err(|e| CallError::Network(format!("listing the snapshot: {e}")).streaming())?;
            let chunk = option.snapshot_chunk_size().unwrap_or(4 << 20).max(64 << 10);
            let id = &snapshot.meta.snapshot_id;
            for (name, path) in files {
                let mut offset = 0u64;
                let mut file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| CallError::Network(format!("{}: {e}", path.display())).streaming())?;
                loop {
                    use tokio::io::AsyncReadExt;
                    let mut buf = Vec::with_capacity(chunk);
                    let n = (&mut file)
                        .take(chunk as u64)
                        .read_to_end(&mut buf)
                        .await
                        .map_err(|e| CallError::Network(format!("{}: {e}", path.display())).streaming())?;
                    // Empty files are sent too (one empty chunk creates them).
                    if n == 0 && offset > 0 {
                        break;
                    }
                    let query = format!("snapshot/{id}/file?name={}&offset={offset}", url_escape(&name));
                    let answer: Result<(), String> = self
                        .call(&query, buf, option.hard_ttl())
                        .await
                        .map_err(CallError::streaming)?;
                    answer.map_err(|e| CallError::Network(e).streaming())?;
                    offset += n as u64;
                    if n < chunk {
                        break;
                    }
                }
            }
            let install = crate::rpc::InstallRequest {
                vote,
                meta: snapshot.meta.clone(),
            };
            let body =
                serde_json::to_vec(&install).map_err(|e| CallError::Network(e.to_string()).streaming())?;
            let answer: Result<SnapshotResponse<NodeId>, String> = self
                .call(&format!("snapshot/{id}/install"), body, option.hard_ttl())
                .await
                .map_err(CallError::streaming)?;
            answer.map_err(|e| CallError::Network(e).streaming())
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            done = send => done,
        }
    }
}

/// Files under `root` as (relative name with `/`, path), sorted.
fn list_files(root: &std::path::Path) -> std::io::Result<Vec<(String, std::path::PathBuf)>> {
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut Vec<(String, std::path::PathBuf)>,
    ) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                walk(root, &p, out)?;
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push((rel.to_string_lossy().replace('\\', "/"), p.clone()));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort();
    Ok(out)
}

/// Percent-escapes a file name for a query string.
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
