//! End to end with real parts only: a player joins over HTTP, the matchmaker starts the real
//! Lightyear game server (the server plugin's demo binary), and a real Lightyear client
//! connects with the token over UDP and over WebTransport; leaving frees the seat and the
//! empty server stops.

mod support;

use std::time::Duration;

use bevy::prelude::*;
use bevygap_testkit::lightyear_client::{Dial, connecting_client, decode_connect_token, disconnect};
use bevygap_testkit::{DEADLINE, every, expect_step_until, step_for};
use lightyear::prelude::Connected;
use serde_json::{Value, json};
use support::*;

/// A real Lightyear client connecting with the token of a ready payload, over its transport.
fn client_for(ready: &Value) -> (App, Entity) {
    let token = decode_connect_token(ready["connect_token"].as_str().expect("a token"));
    let dial = if ready["transport"] == "webtransport" {
        let digest = ready["cert_digest"].as_str().expect("a WebTransport server publishes its digest");
        Dial::WebTransport { cert_digest: digest.to_string() }
    } else {
        Dial::Udp
    };
    connecting_client(token, dial)
}

fn play(transport: &str) {
    let mm = Matchmaker::start(|c| {
        c.local.command = vec![demo_server().display().to_string()];
        c.servers.empty_grace = Duration::from_secs(1);
    });
    let body = mm.join(json!({"game": GAME, "version": VERSION, "transport": transport}));
    let ready = body["result"].clone();
    assert_eq!(ready["status"], "ready", "{body}");
    if transport == "webtransport" {
        assert_eq!(ready["cert_digest"].as_str().map(str::len), Some(64), "{ready}");
    }

    let (mut client, entity) = client_for(&ready);
    expect_step_until(
        &mut [&mut client],
        DEADLINE,
        "the Lightyear client to connect to the matchmaker's server",
        |apps| apps[0].world().get::<Connected>(entity).is_some(),
    );
    expect_step_until(
        &mut [&mut client],
        Duration::from_secs(20),
        "the server to report the player and the matchmaker to count it connected",
        every(Duration::from_millis(100), || mm.servers().first().is_some_and(|s| s["connected"] == 1)),
    );

    disconnect(&mut client, entity);
    step_for(&mut [&mut client], Duration::from_millis(100));
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
