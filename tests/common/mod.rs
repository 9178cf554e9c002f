//! Helpers for end-to-end tests with real processes: the `fenghuo` binary,
//! a real Prometheus, and HTTP clients. Every server binds 127.0.0.1 on a
//! free port and keeps its data in a temporary directory.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fenghuo_proto::{Message, rw1};
use serde_json::Value;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `f` until it returns `Some`, failing the test after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// A running `fenghuo serve`.
pub struct Fenghuo {
    pub child: Child,
    pub port: u16,
    pub scheme: &'static str,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    log: PathBuf,
}

impl Fenghuo {
    /// Starts a node with a fresh data directory.
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let mut f = Self::start_in(&data_dir, &[]);
        f._tmp = Some(tmp);
        f
    }

    /// Starts a node on `data_dir` (kept by the caller) with extra flags.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Self {
        let node = Self::spawn(data_dir, extra, "http");
        node.wait_ready_with(&http());
        node
    }

    /// Starts the process without waiting for it; `scheme` is what it
    /// serves (`https` when its config enables TLS).
    pub fn spawn(data_dir: &Path, extra: &[&str], scheme: &'static str) -> Self {
        let port = free_port();
        let log = data_dir.with_extension(format!("{port}.log"));
        std::fs::create_dir_all(data_dir.parent().unwrap_or(Path::new("."))).expect("parent dir");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_fenghuo"))
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("fenghuo starts");
        Self {
            child,
            port,
            scheme,
            data_dir: data_dir.to_path_buf(),
            _tmp: None,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{}", self.scheme, self.port, path)
    }

    pub fn wait_ready_with(&self, client: &reqwest::blocking::Client) {
        wait_for("fenghuo to be ready", Duration::from_secs(60), || {
            client
                .get(self.url("/-/ready"))
                .send()
                .ok()
                .filter(|r| r.status().is_success())
        });
    }

    /// The process's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("fenghuo exits")
    }

    /// Instant query; returns the whole JSON answer.
    pub fn query(&self, q: &str, time: f64) -> Value {
        get_json(
            &self.url("/api/v1/query"),
            &[("query", q), ("time", &time.to_string())],
        )
    }
}

impl Drop for Fenghuo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn get_json(url: &str, params: &[(&str, &str)]) -> Value {
    let resp = http().get(url).query(params).send().expect("GET");
    resp.json().expect("JSON answer")
}

/// A series to write: label pairs and (timestamp ms, value) samples.
pub type TestSeries<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

/// Sends a remote write 1.0 request; returns status and body.
pub fn remote_write_v1(url: &str, tenant: Option<&str>, series: &[TestSeries]) -> (u16, String) {
    remote_write_v1_request(url, tenant, &v1_request(series))
}

/// A remote write 1.0 request holding `series` and nothing else.
pub fn v1_request(series: &[TestSeries]) -> rw1::WriteRequest {
    rw1::WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| rw1::TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| rw1::Label {
                        name: n.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|(t, v)| rw1::Sample {
                        timestamp: *t,
                        value: *v,
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    }
}

/// Sends a remote write 1.0 request as built by the caller (metadata, exemplars, ...).
pub fn remote_write_v1_request(url: &str, tenant: Option<&str>, req: &rw1::WriteRequest) -> (u16, String) {
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("snappy");
    let mut r = http()
        .post(url)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body);
    if let Some(t) = tenant {
        r = r.header("X-Scope-OrgID", t);
    }
    let resp = r.send().expect("remote write");
    (resp.status().as_u16(), resp.text().unwrap_or_default())
}

/// A real Prometheus (Debian package) with a config rendered by the test.
pub struct Prometheus {
    pub child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// `config` may use `{{port}}` for Prometheus's own port.
    pub fn start(config: &str, rule_files: &[(&str, &str)]) -> Self {
        let bin =
            which("prometheus").expect("the `prometheus` binary (apt-get install prometheus) is required");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = config.replace("{{port}}", &port.to_string());
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write config");
        for (name, text) in rule_files {
            std::fs::write(dir.path().join(name), text).expect("write rules");
        }
        let mut child = Command::new(bin)
            .current_dir(dir.path())
            .arg("--config.file=prometheus.yml")
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("prometheus starts");
        // Drain stderr so Prometheus never blocks on a full pipe.
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if std::env::var_os("FENGHUO_TEST_VERBOSE").is_some() {
                        eprintln!("prometheus: {line}");
                    }
                }
            });
        }
        let p = Self {
            child,
            port,
            _dir: dir,
        };
        let client = http();
        wait_for("prometheus to be ready", Duration::from_secs(60), || {
            client
                .get(p.url("/-/ready"))
                .send()
                .ok()
                .filter(|r| r.status().is_success())
        });
        p
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finds an executable on PATH (or the Debian location).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
