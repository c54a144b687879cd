//! The `fleet` provider with real parts: two demo game servers started by the test (as
//! systemd or compose would) register themselves in a real nats-server; the matchmaker spreads
//! players over them, stops placing players on one that was SIGKILLed and cleans its records,
//! places no one on a draining one, and calls for capacity when the fleet is full.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use support::*;

/// A fleet game server process, killed when dropped.
struct FleetServer(Child);

impl FleetServer {
    fn start(mm: &Matchmaker, id: &str, capacity: u32) -> Self {
        let child = Command::new(demo_server())
            .env_clear()
            .envs(mm.fleet_server_env(id, capacity))
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("the demo server starts");
        Self(child)
    }
}

impl Drop for FleetServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server<'a>(servers: &'a [Value], id: &str) -> Option<&'a Value> {
    servers.iter().find(|s| s["server_id"] == id)
}

fn placed_on(mm: &Matchmaker) -> String {
    let body = mm.join(json!({"game": GAME, "version": VERSION}));
    let session_id = body["result"]["session_id"].as_str().unwrap_or_else(|| panic!("not ready: {body}"));
    mm.session(session_id).expect("session record").server_id.to_string()
}

#[test]
fn a_fleet_is_used_as_it_is_spread_over_and_a_dead_or_draining_server_gets_no_one() {
    let mm = Matchmaker::start_fleet(|c| {
        c.heartbeat_timeout = Duration::from_secs(7);
        c.silence_grace = Duration::from_secs(1);
        c.capacity_wait = Duration::from_secs(2);
    });
    let mut a = FleetServer::start(&mm, "fleet-a", 4);
    let _b = FleetServer::start(&mm, "fleet-b", 4);
    mm.wait_for(30, "both fleet servers to register ready", |mm| {
        let servers = mm.servers();
        ["fleet-a", "fleet-b"]
            .iter()
            .all(|id| server(&servers, id).is_some_and(|s| s["phase"] == "Ready"))
            .then_some(())
    });

    let first = placed_on(&mm);
    let second = placed_on(&mm);
    assert_ne!(first, second, "two players on two equally free servers are spread");
    assert_eq!(mm.provider.running().len(), 0, "the fleet provider started nothing");

    a.0.kill().expect("SIGKILL");
    let _ = a.0.wait();
    mm.wait_for(20, "the killed server to be held", |mm| {
        let servers = mm.servers();
        server(&servers, "fleet-a").is_none_or(|s| s["phase"] != "Ready").then_some(())
    });
    assert_eq!(placed_on(&mm), "fleet-b", "no new player goes to the dead server");
    mm.wait_for(20, "the dead server to be forgotten", |mm| server(&mm.servers(), "fleet-a").is_none().then_some(()));
    mm.wait_for(10, "its server record and grants to be cleaned", |mm| {
        let gone = !mm.keys(&mm.kv.servers).contains(&"fleet-a".to_string())
            && mm.keys(&mm.kv.clients).iter().all(|k| !k.starts_with("fleet-a."));
        gone.then_some(())
    });

    let drained = mm.admin("admin.drain_server", json!({"server_id": "fleet-b"}));
    assert_eq!(drained["draining"], true);
    let subject = format!("bevygap.{}.fleet.need_capacity.{GAME}", mm.namespace);
    let mut calls = mm.rt.block_on(async {
        let client = async_nats::connect(mm.nats_url()).await.expect("observer connects");
        client.subscribe(subject).await.expect("subscribes")
    });
    let body = mm.join(json!({"game": GAME, "version": VERSION}));
    assert_eq!(body["error"]["data"]["code"], "no_capacity", "the draining server takes no one: {body}");
    let call = mm.rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), calls.next()).await });
    let call: Value = serde_json::from_slice(&call.expect("a scale-hook call").expect("a message").payload).unwrap();
    assert_eq!((call["game"].as_str(), call["waiting"].as_u64()), (Some(GAME), Some(1)), "{call}");
}
