//! Helpers shared by the integration tests: a fake per test on port 0, a
//! client pointed at it, raw HTTP, polling with generous deadlines, and a
//! webhook receiver.
#![allow(dead_code)] // each test binary uses a subset

pub mod schema;

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use bevygap_edgegap::{ApiKey, ApiRetryConfig, EdgegapClient, EdgegapConfig};
use fake_edgegap::{FakeConfig, FakeEdgegap};
use serde_json::Value;

/// Long enough for a loaded 2-core CI machine; polling returns as soon as possible.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn start(config: FakeConfig) -> FakeEdgegap {
    FakeEdgegap::start(config).expect("fake starts on port 0")
}

/// Retries fast so fault tests stay quick; 5 s timeout; local rate limiting on.
pub fn client(fake: &FakeEdgegap) -> EdgegapClient {
    client_with(fake, |_| {})
}

pub fn client_with(fake: &FakeEdgegap, tweak: impl FnOnce(&mut EdgegapConfig)) -> EdgegapClient {
    let key = ApiKey::parse(fake.api_token()).expect("token parses");
    let mut config = EdgegapConfig::new(key).with_base_url(format!("{}/", fake.base_url()));
    config.timeout = Duration::from_secs(5);
    config.retry =
        ApiRetryConfig { max_retries: 3, base_delay: Duration::from_millis(5), max_delay: Duration::from_millis(20) };
    tweak(&mut config);
    EdgegapClient::new(config).expect("client builds")
}

/// One raw HTTP exchange, to see exact status codes and bodies.
pub fn raw(fake: &FakeEdgegap, method: &str, path: &str, auth: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let url = format!("{}{path}", fake.base_url());
    let auth = auth.unwrap_or("");
    let result = match (method, body) {
        ("GET", _) => agent.get(&url).header("authorization", auth).call(),
        ("DELETE", _) => agent.delete(&url).header("authorization", auth).call(),
        ("POST", Some(b)) => agent.post(&url).header("authorization", auth).send_json(b),
        ("POST", None) => agent.post(&url).header("authorization", auth).send_empty(),
        ("PUT", Some(b)) => agent.put(&url).header("authorization", auth).send_json(b),
        _ => panic!("unsupported {method}"),
    };
    let mut response = result.expect("fake answers");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().expect("body readable");
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: non-JSON body {text:?}: {e}"));
    (status, json)
}

/// The account auth header for raw calls.
pub fn account(fake: &FakeEdgegap) -> String {
    format!("token {}", fake.api_token())
}

/// Polls `probe` every 20 ms until it yields a value, panicking after [`DEADLINE`].
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn game_server_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fake-game-server"))
}

/// A local HTTP server collecting POSTed JSON bodies (webhook target).
pub fn webhook_receiver() -> (String, Receiver<(String, Value)>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind webhook receiver");
    let addr = server.server_addr().to_ip().expect("ip listener");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = String::new();
            let _ = request.as_reader().read_to_string(&mut body);
            let value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let _ = tx.send((request.url().to_owned(), value));
            let _ = request.respond(tiny_http::Response::empty(204));
        }
    });
    (format!("http://{addr}"), rx)
}

/// Whether a pid still exists as a running process. A zombie (exited, not
/// yet reaped by whoever inherited it) counts as dead.
pub fn pid_alive(pid: u32) -> bool {
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
        return !matches!(state, Some('Z' | 'X'));
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks existence/permission.
    unsafe { libc::kill(pid, 0) == 0 }
}
