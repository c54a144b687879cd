//! The load generator against a real matchmaker (its own nats-server, the local provider with
//! the real demo server), on a tiny load in both modes: every join is answered and counted,
//! and the matchmaker's CPU and memory are read. No timing is asserted.

use std::process::{Command, Stdio};
use std::time::Duration;

use bevygap_testkit::{KillOnDrop, wait_for_listener};
use serde_json::Value;

fn loadgen(args: &[&str]) -> (bool, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_bevygap-loadgen")).args(args).arg("--json").output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    (out.status.success(), serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("a JSON report ({e}): {text}")))
}

#[test]
fn closed_and_open_loop_loads_are_answered_and_measured() {
    let public = format!("127.0.0.1:{}", bevygap_testkit::free_tcp_port());
    let admin = format!("127.0.0.1:{}", bevygap_testkit::free_tcp_port());
    let child = Command::new(bevygap_testkit::workspace_binary("bevygap_matchmaker", "bevygap-matchmaker"))
        .env_remove("NATS_URL")
        .env("BEVYGAP_PUBLIC_ADDR", &public)
        .env("BEVYGAP_ADMIN_ADDR", &admin)
        .env("BEVYGAP_GAME_SERVER_CMD", bevygap_testkit::workspace_binary("bevygap_demo", "bevygap-demo-server"))
        .env("BEVYGAP_SERVER_CAPACITY", "64")
        .env("BEVYGAP_RATE_PER_MINUTE", "100000")
        .env("BEVYGAP_RATE_BURST", "1000")
        .env("BEVYGAP_MAX_JOINS_PER_IP", "1000")
        .env("BEVYGAP_MAX_CONNECTIONS_PER_IP", "1000")
        .envs(bevygap_testkit::test_keys().to_env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the matchmaker starts");
    let mm = KillOnDrop(child);
    wait_for_listener(&public, Duration::from_secs(60));
    let pid = mm.0.id().to_string();

    let (ok, closed) = loadgen(&["--target", &public, "--joins", "24", "--concurrency", "6", "--pid", &pid]);
    assert!(ok, "{closed}");
    assert_eq!((closed["joins_sent"].as_u64(), closed["joins_ready"].as_u64()), (Some(24), Some(24)), "{closed}");
    assert_eq!(closed["errors"], serde_json::json!({}), "{closed}");
    let latency = &closed["latency_ms"];
    let (p50, max) = (latency["p50"].as_f64().unwrap_or(0.0), latency["max"].as_f64().unwrap_or(0.0));
    assert!(p50 > 0.0 && p50 <= max, "{closed}");
    assert!(closed["ready_per_sec"].as_f64().is_some_and(|r| r > 0.0), "{closed}");
    assert!(closed["matchmaker_cpu_secs"].as_f64().is_some_and(|c| c > 0.0), "{closed}");
    assert!(closed["matchmaker_rss_mib"].as_f64().is_some_and(|m| m > 1.0), "{closed}");

    let (ok, open) = loadgen(&["--target", &public, "--rate", "20", "--duration", "0.5"]);
    assert!(ok, "{open}");
    assert_eq!(open["joins_ready"].as_u64(), Some(10), "{open}");

    // A game the matchmaker does not serve: every join fails, counted by its code.
    let (ok, refused) = loadgen(&["--target", &public, "--game", "nope", "--joins", "3", "--concurrency", "3"]);
    assert!(!ok, "failures make a non-zero exit");
    assert_eq!(refused["errors"]["unknown_game"].as_u64(), Some(3), "{refused}");
}
