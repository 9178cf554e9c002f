//! What guards the HTTP port when it is exposed: TLS (optionally with
//! client certificates) and HTTP basic authentication with bcrypt-hashed
//! passwords, as Prometheus's `--web.config.file` does, plus a per-user
//! list of tenants so that a user can only read and write the tenants it
//! is allowed (`X-Scope-OrgID` is checked, or filled in).
//!
//! `/-/healthy` and `/-/ready` stay open so orchestrators can probe.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use fenghuo_storage::model::TenantId;
use parking_lot::Mutex;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::server::TlsStream;

/// Paths reachable without credentials.
const OPEN_PATHS: [&str; 2] = ["/-/healthy", "/-/ready"];

/// How many verified credentials are remembered, so that a busy remote-write
/// sender does not pay for a bcrypt check on every request.
const VERIFIED_CACHE_SIZE: usize = 1024;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain and key of the server.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// PEM CA bundle; when set, clients must present a certificate it signed.
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Users allowed in with HTTP basic auth. Empty: no authentication.
    pub users: Vec<UserConfig>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub username: String,
    /// bcrypt hash of the password (`htpasswd -nbBC 10 "" PASSWORD | tr -d ':'`).
    pub password_hash: String,
    /// Tenants the user may read and write; empty means any tenant. A
    /// request without `X-Scope-OrgID` gets the first one.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// May change what the server runs: reload its configuration
    /// (`/-/reload`) and send test notifications through configured
    /// receivers (`/api/v1/alerting/receivers/<name>/test`).
    #[serde(default)]
    pub admin: bool,
}

impl std::fmt::Debug for UserConfig {
    /// Never print the hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field("username", &self.username)
            .field("password_hash", &"<secret>")
            .field("tenants", &self.tenants)
            .field("admin", &self.admin)
            .finish()
    }
}

impl AuthConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut seen = std::collections::HashSet::new();
        for u in &self.users {
            if u.username.is_empty() || u.username.contains(':') {
                bail!("server.auth.users: invalid username {:?}", u.username);
            }
            if !seen.insert(&u.username) {
                bail!("server.auth.users: duplicate username {:?}", u.username);
            }
            <bcrypt::HashParts as std::str::FromStr>::from_str(&u.password_hash).with_context(|| {
                format!(
                    "server.auth.users: password_hash of {:?} is not a bcrypt hash",
                    u.username
                )
            })?;
            for t in &u.tenants {
                TenantId::new(t.clone())
                    .map_err(|e| anyhow::anyhow!("server.auth.users: tenant of {:?}: {e}", u.username))?;
            }
        }
        Ok(())
    }
}

/// Checks credentials and tenants.
pub struct Authenticator {
    users: HashMap<String, UserConfig>,
    /// sha256(username ":" password) of credentials bcrypt already accepted.
    verified: Mutex<HashMap<[u8; 32], String>>,
    /// A hash with the users' cost that unknown usernames are checked
    /// against, so they take as long as a wrong password of a real user.
    decoy_hash: String,
    /// bcrypt checks running at once: each costs tens of milliseconds of
    /// CPU, and a flood of wrong passwords must not take every core.
    checks: tokio::sync::Semaphore,
}

/// bcrypt checks that may run at once.
const MAX_CONCURRENT_CHECKS: usize = 2;

/// Whether a path changes what the server runs (see [`UserConfig::admin`]).
fn is_admin_path(path: &str) -> bool {
    path == "/-/reload"
        || path
            .strip_prefix("/api/v1/alerting/receivers/")
            .is_some_and(|rest| rest.ends_with("/test"))
}

impl Authenticator {
    pub fn new(config: &AuthConfig) -> Option<Arc<Self>> {
        if config.users.is_empty() {
            return None;
        }
        // The decoy costs what the users' hashes cost (they share one cost
        // in practice; the highest one is the safe choice).
        let cost = config
            .users
            .iter()
            .filter_map(|u| <bcrypt::HashParts as std::str::FromStr>::from_str(&u.password_hash).ok())
            .map(|p| p.get_cost())
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        let decoy_hash = bcrypt::hash(random_password(), cost).unwrap_or_default();
        Some(Arc::new(Self {
            users: config
                .users
                .iter()
                .map(|u| (u.username.clone(), u.clone()))
                .collect(),
            verified: Mutex::new(HashMap::new()),
            decoy_hash,
            checks: tokio::sync::Semaphore::new(MAX_CONCURRENT_CHECKS),
        }))
    }

    /// The user behind an `Authorization: Basic` header, if the password is
    /// right. bcrypt runs on a blocking thread; an unknown username is
    /// checked against the decoy hash, so it answers no faster than a known
    /// one with a wrong password.
    async fn authenticate(self: &Arc<Self>, authorization: Option<&HeaderValue>) -> Option<UserConfig> {
        let encoded = authorization?.to_str().ok()?.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (username, _) = text.split_once(':')?;
        let key: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if let Some(user) = self.users.get(username)
            && self.verified.lock().get(&key).is_some_and(|u| u == username)
        {
            return Some(user.clone());
        }
        let _check = self.checks.acquire().await.ok()?;
        let me = Arc::clone(self);
        let user = tokio::task::spawn_blocking(move || me.check_password(&text))
            .await
            .ok()??;
        let mut verified = self.verified.lock();
        if verified.len() >= VERIFIED_CACHE_SIZE {
            verified.clear();
        }
        verified.insert(key, user.username.clone());
        Some(user)
    }

    /// `username:password` against the user's hash, or the decoy's.
    fn check_password(&self, text: &str) -> Option<UserConfig> {
        let (username, password) = text.split_once(':')?;
        let user = self.users.get(username);
        let hash = user.map_or(self.decoy_hash.as_str(), |u| u.password_hash.as_str());
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        user.filter(|_| ok).cloned()
    }
}

/// A random password for the decoy hash (nobody knows it, so nothing
/// verifies against it).
fn random_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for _ in 0..4 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id().into());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

fn deny(status: StatusCode, message: &str) -> Response {
    let mut r = (status, format!("{message}\n")).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"fenghuo\""),
        );
    }
    r
}

/// Middleware: authenticate, then make sure the request's tenant is one the
/// user may use.
pub async fn require_auth(
    State(auth): State<Arc<Authenticator>>,
    mut req: Request<Body>,
    next: Next,
) -> Response {
    if OPEN_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let Some(user) = auth.authenticate(req.headers().get(header::AUTHORIZATION)).await else {
        tracing::debug!(
            path = req.uri().path(),
            "Rejected request without valid credentials."
        );
        return deny(StatusCode::UNAUTHORIZED, "Unauthorized");
    };
    if is_admin_path(req.uri().path()) && !user.admin {
        tracing::info!(user = %user.username, path = req.uri().path(), "Refused an admin request.");
        return deny(
            StatusCode::FORBIDDEN,
            &format!(
                "user {:?} is not an admin (server.auth.users[].admin)",
                user.username
            ),
        );
    }
    if !user.tenants.is_empty() {
        let header = req.headers().get(TenantId::HEADER).map(|v| v.as_bytes());
        match header.map(|v| TenantId::from_header(Some(v))) {
            None => {
                if let Ok(v) = HeaderValue::from_str(&user.tenants[0]) {
                    req.headers_mut().insert(TenantId::HEADER, v);
                }
            }
            Some(Ok(t)) if user.tenants.iter().any(|allowed| allowed == t.as_str()) => {}
            Some(Ok(t)) => {
                tracing::info!(user = %user.username, tenant = %t, "Refused access to a tenant.");
                return deny(
                    StatusCode::FORBIDDEN,
                    &format!("user {:?} may not access tenant {:?}", user.username, t.as_str()),
                );
            }
            Some(Err(e)) => return deny(StatusCode::BAD_REQUEST, &format!("invalid X-Scope-OrgID: {e}")),
        }
    }
    next.run(req).await
}

/// Builds the TLS acceptor from PEM files.
pub fn tls_acceptor(config: &TlsConfig) -> anyhow::Result<TlsAcceptor> {
    let certs = read_certs(&config.cert_file)?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&config.key_file)
        .with_context(|| format!("reading TLS key {}", config.key_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &config.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs(ca)? {
                roots.add(c).context("adding a client CA certificate")?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .context("client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server = builder
        .with_single_cert(certs, key)
        .context("TLS certificate and key")?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading certificates {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificates {}", path.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", path.display());
    }
    Ok(certs)
}

/// A listener that hands axum TLS connections. Handshakes run in their own
/// tasks so a slow or broken client never holds up the others.
pub struct TlsListener {
    local: std::net::SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, std::net::SocketAddr)>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "Accepting a connection failed.");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed."),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out."),
                    }
                });
            }
        });
        Ok(Self { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept loop only ends when this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
