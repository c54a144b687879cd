//! End to end with real parts only: the plugin joins through the real matchmaker (with its
//! real NATS), which starts the real Lightyear game server (the server plugin's demo binary);
//! the plugin connects the Lightyear client and the matchmaker counts the player connected.

mod support;

use std::time::Duration;

use bevy::prelude::*;
use bevygap_client_plugin::prelude::*;
use bevygap_matchmaker::config::MatchmakerConfig;
use bevygap_matchmaker::harness::LocalMatchmaker;
use bevygap_shared::protocol::Transport;
use bevygap_shared::{LightyearKeys, PrivateKey};
use bevygap_testkit::{DEADLINE, every, expect_step_until};
use lightyear::prelude::client::WebTransportClientIo;
use lightyear::prelude::{Connected, Disconnect, UdpIo};
use serde_json::{Value, json};
use support::*;

const KEY: [u8; 32] = [0x2a; 32];
const PROTOCOL_ID: u64 = 0xB3_C1_1E;

/// A real matchmaker whose game servers are the server plugin's demo binary.
struct Matchmaker {
    inner: LocalMatchmaker,
}

impl Matchmaker {
    fn start() -> Self {
        let namespace = format!("c{:08x}", rand::random::<u32>());
        let demo = bevygap_testkit::workspace_binary("bevygap_demo", "bevygap-demo-server");
        let mut config = MatchmakerConfig::for_tests(&namespace, vec![demo.display().to_string()]);
        config.servers.stop_grace = Duration::from_secs(2);
        let keys = LightyearKeys { protocol_id: PROTOCOL_ID, private_key: PrivateKey::from_bytes(KEY) };
        let inner = LocalMatchmaker::start(config, keys).expect("matchmaker starts (is nats-server installed?)");
        Self { inner }
    }

    fn public_url(&self) -> String {
        self.inner.public_url()
    }

    /// `admin.servers` on the admin endpoint.
    fn servers(&self) -> Vec<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "admin.servers", "params": {}}).to_string();
        let url = self.inner.admin_url();
        // The local provider runs game servers on this host, so the admin endpoint wants its token.
        let bearer = format!("Bearer {}", self.inner.admin_token().expect("an admin token"));
        let value: Value = ureq::post(&url)
            .header("content-type", "application/json")
            .header("authorization", bearer.as_str())
            .send(body.as_str())
            .expect("admin endpoint answers")
            .body_mut()
            .read_json()
            .expect("JSON");
        value["result"]["servers"].as_array().cloned().unwrap_or_default()
    }
}

#[test]
fn joins_over_udp_through_the_real_matchmaker_and_game_server() {
    play(Transport::Udp);
}

#[test]
fn joins_over_webtransport_with_the_servers_certificate_digest() {
    play(Transport::WebTransport);
}

fn play(transport: Transport) {
    let mm = Matchmaker::start();
    let mut config = BevygapClientConfig::new(mm.public_url(), "demo", "1.0");
    config.transport = transport;
    config.timeouts.join = Duration::from_secs(60);
    let mut app = bevygap_client_app(config);
    connect(&mut app);

    expect_step_until(&mut [&mut app], DEADLINE, "the plugin to connect", |apps| {
        matches!(state(apps[0]), BevygapClientState::Connected | BevygapClientState::Failed)
    });
    let seen_now = seen(&app);
    assert_eq!(state(&app), BevygapClientState::Connected, "failed: {:?}", seen_now.failed);
    let states: Vec<_> = seen_now.progress.iter().map(|p| p.state).collect();
    assert!(states.contains(&BevygapClientState::WaitingForServer), "{states:?}");
    let connected = seen_now.connected.first().cloned().expect("a BevygapConnected message");
    assert!(app.world().get::<Connected>(connected.client).is_some(), "the Lightyear client entity is Connected");

    // The game server reports the player over NATS; the matchmaker counts it connected.
    let mut last = Vec::new();
    expect_step_until(
        &mut [&mut app],
        DEADLINE,
        "the matchmaker to count the player",
        every(Duration::from_millis(200), || {
            last = mm.servers();
            last.len() == 1 && last[0]["connected"] == 1
        }),
    );
    let key = if transport == Transport::Udp { "udp" } else { "webtransport" };
    let address = last[0]["addresses"][key].as_str().expect("the server's address for the transport");
    assert_eq!(connected.server.to_string(), address, "the client dialled the server the matchmaker chose");
    assert_eq!(connected.transport, transport);
    let world = app.world();
    match transport {
        Transport::Udp => assert!(world.get::<UdpIo>(connected.client).is_some()),
        Transport::WebTransport => {
            let io = world.get::<WebTransportClientIo>(connected.client).expect("WebTransport IO");
            assert_eq!(io.certificate_digest.len(), 64, "pinned to the server's certificate");
        }
    }
    assert_eq!(state(&app), BevygapClientState::Connected);

    // The game disconnects on its own: that is not a failure.
    app.world_mut().trigger(Disconnect { entity: connected.client });
    expect_step_until(&mut [&mut app], DEADLINE, "the state to return to Idle", |apps| {
        state(apps[0]) == BevygapClientState::Idle
    });
    assert!(seen(&app).failed.is_empty(), "{:?}", seen(&app).failed);
}
