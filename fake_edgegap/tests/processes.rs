//! Deployments as real child processes: the fake-game-server binary reads its
//! ARBITRIUM_* env with the client's parser, calls context and self-stop with
//! the client, and is stopped with signals. Also the fake-edgegap binary.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bevygap_edgegap::{DeploymentCreate, DeploymentState, EdgegapClient, EnvironmentVariable};
use common::{client, game_server_bin, pid_alive, start, wait_for};
use fake_edgegap::{ChildOutput, FakeConfig, FakeEdgegap, GameServerCommand};
use serde_json::Value;

fn fake_with_game_server(grace: Duration) -> FakeEdgegap {
    let mut config = FakeConfig::for_tests().with_game_server(GameServerCommand::new(game_server_bin()));
    config.stop_grace = grace;
    config.child_output = ChildOutput::Inherit;
    start(config)
}

/// Deploys with `FAKE_GS_MODE=mode` and a report file; returns the id.
fn deploy_mode(client: &EdgegapClient, mode: &str, report: &Path) -> String {
    let mut request = DeploymentCreate::for_ip("demo", "v1", "1.2.3.4");
    let var = |k: &str, v: &str| EnvironmentVariable { key: k.into(), value: v.into(), is_hidden: false };
    request.environment_variables = Some(vec![
        var("FAKE_GS_MODE", mode),
        var("FAKE_GS_REPORT", &report.display().to_string()),
        var("FAKE_GS_USER_VAR", "hello"),
    ]);
    request.tags = Some(vec!["t1".into(), "t2".into()]);
    client.create_deployment(&request).expect("deploy").request_id
}

fn read_report(path: &Path) -> Value {
    wait_for("game server report", || {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    })
}

fn wait_state(client: &EdgegapClient, id: &str, state: DeploymentState) -> bevygap_edgegap::DeploymentStatus {
    wait_for(&format!("{state:?}"), || client.deployment_status(id).ok().filter(|s| s.state() == state))
}

fn pid_of(fake: &FakeEdgegap, id: &str) -> u32 {
    wait_for("process listed", || fake.inventory().processes.iter().find(|p| p.request_id == id).map(|p| p.pid))
}

#[test]
fn game_server_reads_its_env_calls_context_and_stops_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report_path = dir.path().join("report.json");
    let fake = fake_with_game_server(Duration::from_secs(5));
    let client = client(&fake);
    let id = deploy_mode(&client, "self-stop", &report_path);
    let pid = pid_of(&fake, &id);

    let report = read_report(&report_path);
    assert_eq!(report["request_id"], Value::from(id.clone()));
    assert_eq!(report["context_request_id"], Value::from(id.clone()));
    assert_eq!(report["public_ip"], Value::from("127.0.0.1"));
    assert_eq!(report["location_city"], Value::from("Montreal"));
    assert_eq!(report["context_sockets"], Value::from(10));
    assert_eq!(report["user_env"], Value::from("hello"));
    let status_seen = report["context_status"].as_str().expect("status");
    assert!(matches!(status_seen, "Status.DEPLOYING" | "Status.READY"), "{status_seen}");
    assert!(matches!(report["self_stop"].as_str(), Some("200" | "202")), "{report}");

    // The ports the process saw are the ones Edgegap reports.
    let ended = wait_state(&client, &id, DeploymentState::Terminated);
    let port = ended.ports.as_ref().and_then(|p| p.get("server port")).expect("port");
    assert_eq!(report["ports"][0]["external"], Value::from(port.external.expect("external")));
    assert_eq!(report["ports"][0]["internal"], report["ports"][0]["external"]);
    assert!(ended.removal_time.is_some());

    wait_for("process reaped", || (!pid_alive(pid)).then_some(()));
    assert!(fake.inventory().is_idle(), "{:?}", fake.inventory());
}

#[test]
fn a_serving_process_is_stopped_with_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report_path = dir.path().join("report.json");
    let fake = fake_with_game_server(Duration::from_secs(10));
    let client = client(&fake);
    let id = deploy_mode(&client, "serve", &report_path);
    let report = read_report(&report_path);
    assert_eq!(report["bound"], Value::from(true), "the server binds its reported port");
    wait_state(&client, &id, DeploymentState::Ready);
    let pid = pid_of(&fake, &id);
    assert!(pid_alive(pid));

    client.stop_deployment(&id).expect("stop");
    wait_state(&client, &id, DeploymentState::Terminated);
    assert!(!pid_alive(pid));
    assert!(fake.inventory().processes.is_empty());
}

#[test]
fn a_process_ignoring_sigterm_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report_path = dir.path().join("report.json");
    let fake = fake_with_game_server(Duration::from_millis(500));
    let client = client(&fake);
    let id = deploy_mode(&client, "ignore-sigterm", &report_path);
    read_report(&report_path);
    wait_state(&client, &id, DeploymentState::Ready);
    let pid = pid_of(&fake, &id);
    client.stop_deployment(&id).expect("stop");
    // Still running during the grace is expected; it must end anyway.
    wait_state(&client, &id, DeploymentState::Terminated);
    assert!(!pid_alive(pid));
}

#[test]
fn a_process_that_exits_on_its_own_is_terminated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report_path = dir.path().join("report.json");
    let fake = fake_with_game_server(Duration::from_secs(5));
    let client = client(&fake);
    let id = deploy_mode(&client, "exit", &report_path);
    read_report(&report_path);
    let ended = wait_state(&client, &id, DeploymentState::Terminated);
    assert!(!ended.error);
    assert!(fake.inventory().is_idle());
}

/// Deploys once on a fake started with `config`; returns the ERROR status's detail.
fn error_detail_of_a_deployment(config: FakeConfig) -> Option<String> {
    let fake = start(config);
    let client = client(&fake);
    let id = client.create_deployment(&DeploymentCreate::for_ip("demo", "v1", "1.2.3.4")).expect("deploy").request_id;
    wait_state(&client, &id, DeploymentState::Error).error_detail
}

#[test]
fn a_crashing_process_puts_the_deployment_in_error() {
    let mut config = FakeConfig::for_tests().with_game_server(GameServerCommand::new("/bin/false"));
    config.delays.deploying = Duration::from_secs(30); // crash happens while DEPLOYING
    let detail = error_detail_of_a_deployment(config);
    assert!(detail.as_deref().is_some_and(|d| d.contains("code 1")), "{detail:?}");
}

#[test]
fn a_missing_program_puts_the_deployment_in_error() {
    let config = FakeConfig::for_tests().with_game_server(GameServerCommand::new("/nonexistent/game-server"));
    let detail = error_detail_of_a_deployment(config);
    assert!(detail.as_deref().is_some_and(|d| d.contains("Could not start")), "{detail:?}");
}

#[test]
fn dropping_the_fake_kills_its_processes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = fake_with_game_server(Duration::from_millis(500));
    let client = client(&fake);
    let a = deploy_mode(&client, "serve", &dir.path().join("a.json"));
    let b = deploy_mode(&client, "ignore-sigterm", &dir.path().join("b.json"));
    read_report(&dir.path().join("a.json"));
    read_report(&dir.path().join("b.json"));
    let pids = [pid_of(&fake, &a), pid_of(&fake, &b)];
    drop(fake);
    for pid in pids {
        assert!(!pid_alive(pid), "pid {pid} outlived the fake");
    }
}

/// Starts the binary with `args`, returns it and its printed address.
fn spawn_binary(args: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-edgegap"))
        .args(args)
        .env("FAKE_GS_MODE", "serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fake-edgegap");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("first line");
    (child, line.trim().to_owned())
}

fn binary_client(addr: &str) -> EdgegapClient {
    let mut config = bevygap_edgegap::EdgegapConfig::new(bevygap_edgegap::ApiKey::parse("T").expect("key"));
    config.base_url = format!("http://{addr}");
    EdgegapClient::new(config).expect("client")
}

fn binary_process_pid(addr: &str, id: &str) -> u32 {
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build().into();
    wait_for("process in inventory", || {
        let mut response = agent.get(format!("http://{addr}/_fake/inventory")).call().ok()?;
        let inventory: fake_edgegap::Inventory = response.body_mut().read_json().ok()?;
        inventory.processes.iter().find(|p| p.request_id == id).map(|p| p.pid)
    })
}

/// Starts the `fake-edgegap` binary and one READY deployment on it; returns the fake's
/// process, its address and the game server's pid.
fn binary_with_a_ready_deployment() -> (std::process::Child, String, u32) {
    let gs = game_server_bin().display().to_string();
    let args = ["--api-token", "T", "--game-server-cmd", &gs, "--step-delay-ms", "5", "--deploying-delay-ms", "50"];
    let (child, addr) = spawn_binary(&args);
    let client = binary_client(&addr);
    let id = client.create_deployment(&DeploymentCreate::for_ip("demo", "v1", "1.2.3.4")).expect("deploy").request_id;
    wait_state(&client, &id, DeploymentState::Ready);
    let game_pid = binary_process_pid(&addr, &id);
    (child, addr, game_pid)
}

#[test]
fn the_binary_prints_its_address_and_stops_children_on_sigterm() {
    let (mut child, addr, game_pid) = binary_with_a_ready_deployment();
    assert!(addr.parse::<std::net::SocketAddr>().is_ok(), "first line is the address: {addr:?}");
    let fake_pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(fake_pid, libc::SIGTERM) };
    let status = child.wait().expect("fake exits");
    assert!(status.success(), "{status:?}");
    wait_for("game server gone", || (!pid_alive(game_pid)).then_some(()));
}

#[test]
fn children_die_even_if_the_binary_is_sigkilled() {
    let (mut child, _addr, game_pid) = binary_with_a_ready_deployment();
    child.kill().expect("SIGKILL the fake");
    child.wait().expect("reap fake");
    // PR_SET_DEATHSIG kills the orphan; init reaps it.
    wait_for("orphan killed", || (!pid_alive(game_pid)).then_some(()));
}

#[test]
fn the_binary_documents_its_settings() {
    let output = Command::new(env!("CARGO_BIN_EXE_fake-edgegap")).arg("--help").output().expect("run --help");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for flag in ["--listen", "--api-token", "--game-server-cmd", "--fault", "--stop-grace-ms", "--no-rate-limits"] {
        assert!(text.contains(flag), "--help lacks {flag}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_fake-edgegap")).arg("--bogus").output().expect("run");
    assert_eq!(bad.status.code(), Some(2));
}
