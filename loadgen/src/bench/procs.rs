//! The processes a scenario runs: the matchmaker, fleet demo servers and the fake Edgegap, from
//! a directory of built binaries, each killed when dropped (the fake Edgegap is stopped with
//! SIGTERM first, so it stops its deployments); and the few admin calls a scenario makes
//! (metrics, stats).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use bevygap_shared::server_env::{Endpoint, ServerEnv};
use bevygap_testkit::{FakeEdgegapProcess, KillOnDrop, free_tcp_port, test_keys, try_wait_for};
use serde_json::{Value, json};

use super::BenchError;

/// The admin token every benchmark matchmaker is given (loopback only; local providers demand one).
pub const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
/// The game every scenario plays.
pub const GAME: &str = "demo";
pub const VERSION: &str = "1.0";

/// Where the built binaries are (`target/release`).
#[derive(Debug, Clone)]
pub struct Binaries(pub PathBuf);

impl Binaries {
    /// The binary `name`, which must exist.
    pub fn path(&self, name: &str) -> Result<PathBuf, BenchError> {
        let path = self.0.join(name);
        if path.is_file() { Ok(path) } else { Err(BenchError::MissingBinary(path)) }
    }
}

/// A child process, killed (and reaped) when dropped.
pub type Process = KillOnDrop;

fn spawn(command: &mut Command, what: &str) -> Result<Process, BenchError> {
    command.spawn().map(KillOnDrop).map_err(|e| BenchError::Start(what.to_string(), e.to_string()))
}

fn free_udp() -> Result<SocketAddr, BenchError> {
    std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map_err(|e| BenchError::Io(e.to_string()))
}

/// A `bevygap-matchmaker` process with the per-address limits lifted (one host sends every
/// join) and a known admin token.
pub struct Matchmaker {
    pub process: Process,
    pub public: SocketAddr,
    pub admin: SocketAddr,
}

impl Matchmaker {
    /// Starts one on `nats_url` (`None`: its own embedded nats-server) in `namespace` with `vars` added (they override the defaults),
    /// optionally under `wrapper` (valgrind), and waits for its public endpoint.
    pub fn start(
        bins: &Binaries,
        nats_url: Option<&str>,
        namespace: &str,
        vars: &[(&str, String)],
        wrapper: &[String],
    ) -> Result<Self, BenchError> {
        let (public, admin) = (free_tcp_port(), free_tcp_port());
        let public_addr = SocketAddr::from(([127, 0, 0, 1], public));
        let mut all: Vec<(&str, String)> = vec![
            ("BEVYGAP_NAMESPACE", namespace.into()),
            ("BEVYGAP_GAMES", format!("{GAME}:{VERSION}")),
            ("BEVYGAP_PUBLIC_ADDR", public_addr.to_string()),
            ("BEVYGAP_ADMIN_ADDR", format!("127.0.0.1:{admin}")),
            ("BEVYGAP_ADMIN_TOKEN", ADMIN_TOKEN.into()),
            ("BEVYGAP_RATE_PER_MINUTE", "100000000".into()),
            ("BEVYGAP_RATE_BURST", "10000000".into()),
            ("BEVYGAP_MAX_JOINS_PER_IP", "10000000".into()),
            ("BEVYGAP_MAX_CONNECTIONS_PER_IP", "100000".into()),
            ("BEVYGAP_MAX_CONNECTIONS", "15000".into()),
            ("BEVYGAP_MAX_WAITING", "100000".into()),
            ("BEVYGAP_TOKEN_TTL_SECS", "600".into()),
        ];
        all.extend(game_server_keys());
        if let Some(url) = nats_url {
            all.push(("NATS_URL", url.into()));
        }
        for (name, value) in vars {
            all.retain(|(n, _)| n != name);
            all.push((name, value.clone()));
        }
        let binary = bins.path("bevygap-matchmaker")?;
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(all)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let process = spawn(&mut command, "bevygap-matchmaker")?;
        let within = if wrapper.is_empty() { Duration::from_secs(30) } else { Duration::from_secs(300) };
        try_wait_for(within, "the matchmaker's public endpoint", || TcpStream::connect(public_addr).ok())?;
        Ok(Self { process, public: public_addr, admin: SocketAddr::from(([127, 0, 0, 1], admin)) })
    }

    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }

    /// The admin endpoint's Prometheus page.
    pub fn metrics(&self) -> Result<String, BenchError> {
        http(self.admin, "GET", "/metrics", None)
    }

    /// One value of the metrics page: the sum of every series named `name` whose labels
    /// contain each of `labels` (`key="value"`).
    pub fn metric(&self, name: &str, labels: &[&str]) -> Result<f64, BenchError> {
        Ok(super::markdown::metric_sum(&self.metrics()?, name, labels))
    }

    /// An admin JSON-RPC call's result.
    pub fn admin_call(&self, method: &str) -> Result<Value, BenchError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method}).to_string();
        let text = http(self.admin, "POST", "/", Some(&body))?;
        let answer: Value = serde_json::from_str(&text).map_err(|e| BenchError::Io(format!("{method}: {e}")))?;
        answer.get("result").cloned().ok_or_else(|| BenchError::Io(format!("{method}: {answer}")))
    }
}

/// A plain HTTP/1.0 exchange with the admin endpoint (bearer token), returning the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Result<String, BenchError> {
    let io = |e: std::io::Error| BenchError::Io(format!("{method} {path}: {e}"));
    let mut stream = TcpStream::connect(addr).map_err(io)?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(io)?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.0\r\nauthorization: Bearer {ADMIN_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut text = String::new();
    stream.read_to_string(&mut text).map_err(io)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(BenchError::Io(format!("{method} {path}: {}", head.lines().next().unwrap_or(""))));
    }
    Ok(body.to_string())
}

/// The Lightyear keys shared by the matchmaker and the demo servers (testkit's test keys), as
/// the environment a process reads them from.
pub fn game_server_keys() -> [(&'static str, String); 2] {
    test_keys().to_env()
}

/// A demo server started as a fleet server (it registers itself through NATS).
pub fn fleet_server(
    bins: &Binaries,
    nats_url: &str,
    namespace: &str,
    id: &str,
    capacity: u32,
) -> Result<Process, BenchError> {
    let invalid = |what: &str| BenchError::Io(format!("invalid {what} for a fleet server"));
    let (udp, wt) = (free_udp()?, free_udp()?);
    let env = ServerEnv {
        namespace: bevygap_shared::Namespace::new(namespace).map_err(|_| invalid("namespace"))?,
        server_id: bevygap_shared::ServerId::new(id).map_err(|_| invalid("server id"))?,
        provider: "fleet".into(),
        game: bevygap_shared::protocol::GameName::new(GAME).map_err(|_| invalid("game"))?,
        version: bevygap_shared::protocol::GameVersion::new(VERSION).map_err(|_| invalid("version"))?,
        capacity,
        udp: Some(Endpoint { bind: udp, public: udp }),
        webtransport: Some(Endpoint { bind: wt, public: wt }),
    };
    let mut command = Command::new(bins.path("bevygap-demo-server")?);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.to_vars())
        .env("NATS_URL", nats_url)
        .envs(game_server_keys())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    spawn(&mut command, "bevygap-demo-server")
}

/// The fake Edgegap with no added latency and no rate limits, deploying the demo server.
pub struct FakeEdgegap {
    pub process: FakeEdgegapProcess,
    pub base_url: String,
}

/// The fake's API token.
pub const EDGEGAP_TOKEN: &str = "bench-fake-edgegap-token";

impl FakeEdgegap {
    /// Requests the fake has answered so far, by Edgegap endpoint (`create_deployment`…).
    pub fn requests(&self) -> Result<std::collections::BTreeMap<String, u64>, BenchError> {
        let text = http(self.process.addr(), "GET", "/_fake/inventory", None)?;
        let inventory: Value = serde_json::from_str(&text).map_err(|e| BenchError::Io(format!("inventory: {e}")))?;
        Ok(inventory["requests"]
            .as_object()
            .map(|counts| counts.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
            .unwrap_or_default())
    }

    pub fn start(bins: &Binaries, nats_url: &str, log_dir: &Path) -> Result<Self, BenchError> {
        let mut command = FakeEdgegapProcess::command(bins.path("fake-edgegap")?, EDGEGAP_TOKEN, GAME, VERSION);
        command
            .args(["--step-delay-ms", "0", "--deploying-delay-ms", "0", "--session-link-delay-ms", "0"])
            .args(["--no-rate-limits", "--stop-grace-ms", "2000"])
            .arg("--game-server-cmd")
            .arg(bins.path("bevygap-demo-server")?)
            .arg("--child-log-dir")
            .arg(log_dir)
            .env("NATS_URL", nats_url)
            .envs(game_server_keys())
            .stderr(Stdio::null());
        let process = FakeEdgegapProcess::spawn(&mut command)
            .map_err(|e| BenchError::Start("fake-edgegap".into(), e.to_string()))?;
        Ok(Self { base_url: process.base_url(), process })
    }
}
