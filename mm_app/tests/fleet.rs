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
        c.servers.heartbeat_timeout = Duration::from_secs(7);
        c.servers.silence_grace = Duration::from_secs(1);
        c.servers.capacity_wait = Duration::from_secs(2);
    });
    let mut a = FleetServer::start(&mm, "fleet-a", 4);
    let _b = FleetServer::start(&mm, "fleet-b", 4);
    mm.wait_for(30, "both fleet servers to register ready", |mm| {
        let servers = mm.servers();
        ["fleet-a", "fleet-b"]
            .iter()
            .all(|id| server(&servers, id).is_some_and(|s| s["phase"] == "ready"))
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
        server(&servers, "fleet-a").is_none_or(|s| s["phase"] != "ready").then_some(())
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

// A matchmaker SIGKILLed and restarted on the same external NATS takes over the tokens the
// killed process issued: their players still get in, unused ones still expire and free their
// seats, and their sessions are known again.

const MM_BIN: &str = env!("CARGO_BIN_EXE_bevygap-matchmaker");

/// A `bevygap-matchmaker --provider fleet` process; SIGKILLed when dropped.
struct FleetMatchmaker {
    child: Child,
    public: String,
    admin: String,
}

impl FleetMatchmaker {
    fn start(nats: &bevygap_shared::nats::NatsServer, namespace: &str) -> Self {
        let keys = test_keys();
        let (public, admin) = (bevygap_testkit::free_tcp_port(), bevygap_testkit::free_tcp_port());
        let child = Command::new(MM_BIN)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NATS_URL", nats.url())
            .env("BEVYGAP_PROVIDER", "fleet")
            .env("BEVYGAP_NAMESPACE", namespace)
            .env("BEVYGAP_GAMES", format!("{GAME}:{VERSION}"))
            .env("BEVYGAP_PUBLIC_ADDR", format!("127.0.0.1:{public}"))
            .env("BEVYGAP_ADMIN_ADDR", format!("127.0.0.1:{admin}"))
            .env("BEVYGAP_TOKEN_TTL_SECS", "8")
            .envs(keys.to_env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the matchmaker starts");
        let mm =
            Self { child, public: format!("http://127.0.0.1:{public}"), admin: format!("http://127.0.0.1:{admin}") };
        wait(30, "the matchmaker to listen", || std::net::TcpStream::connect(("127.0.0.1", public)).ok());
        mm
    }

    fn admin(&self, method: &str) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}});
        let (status, answer) = post(&self.admin, &body.to_string(), None);
        assert_eq!(status, 200, "{answer}");
        answer["result"].clone()
    }

    fn join_ready(&self) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join",
                          "params": {"game": GAME, "version": VERSION, "transport": "udp"}});
        let (status, answer) = post(&self.public, &body.to_string(), None);
        assert_eq!((status, &answer["result"]["status"]), (200, &json!("ready")), "{answer}");
        answer["result"].clone()
    }

    /// The fleet server's row in `admin.servers`.
    fn server(&self, id: &str) -> Option<Value> {
        self.admin("admin.servers")["servers"].as_array().and_then(|s| server(s, id).cloned())
    }
}

impl Drop for FleetMatchmaker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `secs` for `check` (testkit's poll).
fn wait<T>(secs: u64, what: &str, check: impl FnMut() -> Option<T>) -> T {
    bevygap_testkit::wait_for(Duration::from_secs(secs), what, check)
}

#[test]
fn after_a_sigkill_the_restarted_matchmaker_honours_holds_and_expires_the_earlier_tokens() {
    use bevygap_testkit::lightyear_client::{Dial, connecting_client, decode_connect_token};
    use lightyear::prelude::Connected;

    let nats = bevygap_shared::nats::NatsServer::start().expect("nats-server");
    let namespace = format!("t{:08x}", rand::random::<u32>());
    let first = FleetMatchmaker::start(&nats, &namespace);
    let env = fleet_env(&nats.url(), &namespace, "fleet-r", 4);
    let _fleet = FleetServer(
        Command::new(demo_server())
            .env_clear()
            .envs(env)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("the demo server starts"),
    );
    wait(30, "the fleet server to register", || first.server("fleet-r").filter(|s| s["phase"] == "ready"));
    let played = first.join_ready();
    let unused = first.join_ready();
    let mut first = first;
    first.child.kill().expect("SIGKILL");
    let _ = first.child.wait();

    let second = FleetMatchmaker::start(&nats, &namespace);
    let row = wait(20, "the earlier tokens' seats to be held", || second.server("fleet-r").filter(|s| s["taken"] == 2));
    assert_eq!(row["connected"], 0, "{row}");
    let sessions = second.admin("admin.sessions")["sessions"].as_array().cloned().unwrap_or_default();
    for ready in [&played, &unused] {
        assert!(sessions.iter().any(|s| s["session_id"] == ready["session_id"]), "{ready} not in {sessions:?}");
    }
    // The next player gets a seat the earlier tokens do not hold; its own token expires too.
    second.join_ready();
    assert_eq!(second.server("fleet-r").expect("row")["taken"], 3);

    // A token from before the kill still gets its player in.
    let token = decode_connect_token(played["connect_token"].as_str().expect("a token"));
    let (mut client, entity) = connecting_client(token, Dial::Udp);
    bevygap_testkit::expect_step_until(
        &mut [&mut client],
        bevygap_testkit::DEADLINE,
        "the earlier token to connect",
        |apps| apps[0].world().get::<Connected>(entity).is_some(),
    );
    // The unused one expires (8 s TTL + the claim grace): its grant and seat are given back.
    let unused_session = sessions.iter().find(|s| s["session_id"] == unused["session_id"]).expect("its session");
    let grant_key = format!("fleet-r.{}", unused_session["clients"][0].as_str().unwrap_or_default());
    assert!(
        bucket_keys(&nats.url(), &namespace, bevygap_shared::naming::Bucket::Clients).contains(&grant_key),
        "the unused grant is still there"
    );
    bevygap_testkit::expect_step_until(
        &mut [&mut client],
        Duration::from_secs(40),
        "the unused earlier token to expire and its grant to be deleted",
        bevygap_testkit::every(Duration::from_millis(500), || {
            let row = second.server("fleet-r");
            !bucket_keys(&nats.url(), &namespace, bevygap_shared::naming::Bucket::Clients).contains(&grant_key)
                && row.is_some_and(|s| s["taken"] == 1 && s["connected"] == 1)
        }),
    );
}
