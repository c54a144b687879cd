//! The `fake-edgegap` binary and `bevygap-matchmaker` processes against it, shared by the
//! Edgegap and the replica tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bevygap_edgegap::{ApiKey, ApiRetryConfig, EdgegapClient, EdgegapConfig};
use bevygap_testkit::FakeEdgegapProcess;
use fake_edgegap::Inventory;
use serde_json::{Value, json};

use super::{GAME, VERSION, agent, demo_server, post, test_keys};

pub const TOKEN: &str = "fake-edgegap-test-token";
pub const APP: &str = "demo";
/// Generous for a loaded 2-core machine; every wait returns as soon as its condition holds.
pub const WAIT: Duration = Duration::from_secs(30);

/// The `fake-edgegap` binary on a free port (testkit's process wrapper: stopped with SIGTERM,
/// so it stops its deployments), its log and its deployments' logs in a temp dir.
pub struct FakeEdgegap {
    process: FakeEdgegapProcess,
    pub base_url: String,
    pub dir: PathBuf,
}

impl FakeEdgegap {
    /// Starts the fake serving app `demo` version `1.0` (the game's version) with a fast
    /// lifecycle; deployments run the demo server when `demo` is set, else no process (they
    /// still reach READY, but no game server ever reports).
    pub fn start(demo_nats_url: Option<&str>, extra: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("bevygap-edgegap-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = std::fs::File::create(dir.join("fake-edgegap.log")).expect("log file");
        let mut cmd = FakeEdgegapProcess::command(FakeEdgegapProcess::workspace_binary(), TOKEN, APP, VERSION);
        cmd.args(["--step-delay-ms", "20", "--deploying-delay-ms", "200", "--stop-grace-ms", "3000"])
            .arg("--child-log-dir")
            .arg(&dir)
            .args(extra)
            .stderr(log);
        if let Some(nats_url) = demo_nats_url {
            let keys = test_keys();
            cmd.arg("--game-server-cmd").arg(demo_server()).env("NATS_URL", nats_url).envs(keys.to_env());
        }
        let process = FakeEdgegapProcess::spawn(&mut cmd)
            .unwrap_or_else(|e| panic!("fake-edgegap did not start ({e}); see {}", dir.display()));
        Self { base_url: process.base_url(), process, dir }
    }

    pub fn inventory(&self) -> Inventory {
        let mut response = agent().get(format!("{}/_fake/inventory", self.base_url)).call().expect("inventory");
        response.body_mut().read_json().expect("inventory JSON")
    }

    pub fn set_faults(&self, faults: Value) {
        let response = agent().put(format!("{}/_fake/faults", self.base_url)).send_json(faults).expect("faults");
        assert_eq!(response.status(), 200);
    }

    /// A client of the fake as the provider's, for looking at deployments.
    pub fn client(&self) -> EdgegapClient {
        EdgegapClient::new(client_config(&self.base_url, TOKEN)).expect("client")
    }
}

impl Drop for FakeEdgegap {
    fn drop(&mut self) {
        // SIGTERM: the fake stops every deployment process, then exits.
        self.process.stop();
        if std::thread::panicking() {
            eprintln!("fake-edgegap and deployment logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Short timeouts and quick retries, so fault tests stay fast.
pub fn client_config(base_url: &str, token: &str) -> EdgegapConfig {
    let mut config = EdgegapConfig::new(ApiKey::parse(token).expect("token")).with_base_url(base_url);
    config.timeout = Duration::from_secs(2);
    config.retry =
        ApiRetryConfig { max_retries: 1, base_delay: Duration::from_millis(20), max_delay: Duration::from_millis(50) };
    config
}

/// Waits up to [`WAIT`] for `check` (testkit's poll).
pub fn wait_for<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    bevygap_testkit::wait_for(WAIT, what, check)
}

pub const BIN: &str = env!("CARGO_BIN_EXE_bevygap-matchmaker");

/// The binary with a clean environment plus `vars`.
pub fn matchmaker_binary(vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).envs(vars.iter().copied());
    cmd
}

/// One `bevygap-matchmaker` process with `--provider edgegap` against `fake`, its stderr
/// collected; SIGTERMed (then killed) on drop if still running.
pub struct MatchmakerProcess {
    pub child: Child,
    pub log: Option<std::thread::JoinHandle<String>>,
    pub public_addr: String,
    pub admin_addr: String,
}

/// What every matchmaker process of a test shares: NATS, the fake, the namespace, the keys.
pub struct Setup<'a> {
    /// `NATS_URL` for the matchmakers: one URL, or a cluster's, comma-separated.
    pub nats_url: String,
    pub fake: &'a FakeEdgegap,
    pub namespace: String,
}

impl Setup<'_> {
    /// Starts a matchmaker process and waits for its public endpoint; `vars` override the
    /// defaults (each process gets fresh ports).
    pub fn start(&self, vars: &[(&str, &str)]) -> MatchmakerProcess {
        let keys = test_keys();
        let (public, admin) = (bevygap_testkit::free_tcp_port(), bevygap_testkit::free_tcp_port());
        let (public_addr, admin_addr) = (format!("127.0.0.1:{public}"), format!("127.0.0.1:{admin}"));
        let games = format!("{GAME}:{VERSION}");
        let mut all = vec![
            ("NATS_URL", self.nats_url.clone()),
            ("BEVYGAP_PROVIDER", "edgegap".into()),
            ("BEVYGAP_EDGEGAP_API_TOKEN", TOKEN.into()),
            ("BEVYGAP_EDGEGAP_URL", self.fake.base_url.clone()),
            ("BEVYGAP_EDGEGAP_APP", APP.into()),
            ("BEVYGAP_NAMESPACE", self.namespace.clone()),
            ("BEVYGAP_GAMES", games),
            ("BEVYGAP_PUBLIC_ADDR", public_addr.clone()),
            ("BEVYGAP_ADMIN_ADDR", admin_addr.clone()),
            ("BEVYGAP_EMPTY_GRACE_SECS", "1".into()),
            // A token the killed matchmaker issued holds its seat in the restarted one until it
            // expires: short, so an adopted server empties soon.
            ("BEVYGAP_TOKEN_TTL_SECS", "3".into()),
            // A restarted matchmaker takes over once the killed one's lease lapsed.
            ("BEVYGAP_LEASE_SECS", "3".into()),
            ("RUST_LOG", "info".into()),
        ];
        all.extend(keys.to_env());
        for (name, value) in vars {
            all.retain(|(n, _)| n != name);
            all.push((name, value.to_string()));
        }
        let all: Vec<(&str, &str)> = all.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let mut child =
            matchmaker_binary(&all).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("matchmaker starts");
        let mut stderr = child.stderr.take().expect("piped");
        let log = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        wait_for("the matchmaker's endpoints", || {
            let connects = |addr: &str| std::net::TcpStream::connect(addr).is_ok();
            (connects(&public_addr) && connects(&admin_addr)).then_some(())
        });
        MatchmakerProcess { child, log: Some(log), public_addr, admin_addr }
    }
}

impl MatchmakerProcess {
    /// Sends a join from a background thread (its answer is not awaited: the process may be
    /// killed first).
    pub fn join_in_background(&self) {
        let url = format!("http://{}", self.public_addr);
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join",
                          "params": {"game": GAME, "version": VERSION, "transport": "udp"}});
        std::thread::spawn(move || {
            let _ = agent().post(&url).header("content-type", "application/json").send(body.to_string());
        });
    }

    /// The ids of the servers `admin.servers` lists.
    pub fn server_ids(&self) -> Vec<String> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "admin.servers", "params": {}});
        let (status, answer) = post(&format!("http://{}", self.admin_addr), &body.to_string(), None);
        assert_eq!(status, 200, "{answer}");
        let servers = answer["result"]["servers"].as_array().cloned().unwrap_or_default();
        servers.iter().filter_map(|s| s["server_id"].as_str().map(str::to_string)).collect()
    }

    pub fn signal(&self, signal: libc::c_int) {
        let _ = bevygap_testkit::send_signal(&self.child, signal);
    }

    /// SIGKILL: no shutdown, nothing stopped; returns its log.
    pub fn kill(mut self) -> String {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
        self.log.take().and_then(|log| log.join().ok()).unwrap_or_default()
    }

    /// SIGTERM: expects a clean exit; returns its log.
    pub fn terminate(mut self) -> String {
        self.signal(libc::SIGTERM);
        let exit = wait_for("the matchmaker to exit", || self.child.try_wait().ok().flatten());
        let log = self.log.take().and_then(|log| log.join().ok()).unwrap_or_default();
        assert!(exit.success(), "{exit}: {log}");
        log
    }
}

impl Drop for MatchmakerProcess {
    fn drop(&mut self) {
        bevygap_testkit::stop_gracefully(&mut self.child, Duration::from_secs(20));
        if std::thread::panicking()
            && let Some(log) = self.log.take().and_then(|log| log.join().ok())
        {
            eprintln!("matchmaker log:\n{log}");
        }
    }
}
