//! End to end with real parts only: a player joins over HTTP, the matchmaker starts the real
//! Lightyear game server (the server plugin's demo binary), and a real Lightyear client
//! connects with the token over UDP and over WebTransport; leaving frees the seat and the
//! empty server stops.

mod support;

use std::time::{Duration, Instant};

use base64::Engine;
use bevy::prelude::*;
use bevygap_matchmaker::providers::ServerProvider;
use lightyear::netcode::ConnectToken;
use lightyear::prelude::client::{ClientPlugins, NetcodeClient, NetcodeConfig, WebTransportClientIo};
use lightyear::prelude::{Authentication, Client, Connect, Connected, Disconnect, LocalAddr, UdpIo};
use serde_json::{Value, json};
use support::*;

const TICK: Duration = Duration::from_micros(16_667);

fn client_app(ready: &Value) -> (App, Entity) {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(ready["connect_token"].as_str().expect("token"))
        .expect("base64 token");
    let token = ConnectToken::try_from_bytes(&bytes).expect("a Lightyear token");
    let mut app = App::new();
    app.add_plugins(MinimalPlugins).add_plugins(ClientPlugins { tick_duration: TICK });
    app.finish();
    app.cleanup();
    let netcode = NetcodeClient::new(Authentication::Token(token), NetcodeConfig::default()).expect("netcode client");
    let mut client = app.world_mut().spawn((Client, netcode));
    if ready["transport"] == "webtransport" {
        let digest = ready["cert_digest"].as_str().expect("a WebTransport server publishes its digest").to_string();
        client.insert(WebTransportClientIo { certificate_digest: digest, target: None });
    } else {
        client.insert((UdpIo::default(), LocalAddr("127.0.0.1:0".parse().expect("addr"))));
    }
    let entity = client.id();
    app.world_mut().trigger(Connect { entity });
    (app, entity)
}

fn step_until(app: &mut App, secs: u64, mut done: impl FnMut(&mut App) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        app.update();
        if done(app) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn play(transport: &str) {
    let mm = Matchmaker::start(|c| {
        c.game_server_cmd = vec![demo_server().display().to_string()];
        c.empty_grace = Duration::from_secs(1);
    });
    let body = mm.join(json!({"game": GAME, "version": VERSION, "transport": transport}));
    let ready = body["result"].clone();
    assert_eq!(ready["status"], "ready", "{body}");
    if transport == "webtransport" {
        assert_eq!(ready["cert_digest"].as_str().map(str::len), Some(64), "{ready}");
    }

    let (mut client, entity) = client_app(&ready);
    let connected = step_until(&mut client, 30, |app| app.world().get::<Connected>(entity).is_some());
    assert!(connected, "the Lightyear client connected to the matchmaker's server");
    let mut last_check = Instant::now();
    let seen = step_until(&mut client, 20, |_| {
        if last_check.elapsed() < Duration::from_millis(100) {
            return false;
        }
        last_check = Instant::now();
        mm.servers().first().is_some_and(|s| s["connected"] == 1)
    });
    assert!(seen, "the server reported the player and the matchmaker counts it connected");

    client.world_mut().trigger(Disconnect { entity });
    for _ in 0..20 {
        client.update();
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(client);
    mm.wait_for(40, "the empty server to stop", |mm| mm.servers().is_empty().then_some(()));
    mm.wait_for(20, "the game-server process to exit", |mm| mm.provider.running().is_empty().then_some(()));
    for (name, store) in [
        ("servers", &mm.kv.servers),
        ("clients", &mm.kv.clients),
        ("players", &mm.kv.players),
        ("sessions", &mm.kv.sessions),
    ] {
        assert!(mm.keys(store).is_empty(), "{name} bucket left records behind");
    }
}

#[test]
fn a_real_client_plays_over_udp_and_the_empty_server_stops() {
    play("udp");
}

#[test]
fn a_real_client_plays_over_webtransport() {
    bevygap_shared::install_crypto_provider();
    play("webtransport");
}
