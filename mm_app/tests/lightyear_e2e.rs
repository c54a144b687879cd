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

/// A 2v2 with no rules, beside drop-in.
const TWO_V_TWO: &str = r#"{ "demo:1.0": [ { "name": "two_v_two", "kind": "match",
    "teams": { "count": 2, "min_size": 2, "max_size": 2 }, "max_wait_secs": 30 } ] }"#;

/// The result of the stream's message with `status`.
fn message<'a>(stream: &'a [Value], status: &str) -> Option<&'a Value> {
    stream.iter().map(|m| &m["result"]).find(|r| r["status"] == status)
}

#[test]
fn four_real_clients_are_matched_into_one_2v2_whose_server_knows_both_teams_and_drop_in_still_fills() {
    let mm = Matchmaker::start(|c| {
        c.local.command = vec![demo_server().display().to_string()];
        c.profiles = bevygap_matchmaker::matching::ProfileSet::from_json(TWO_V_TWO).expect("valid profiles");
        c.servers.capacity = 4;
    });
    let url = mm.public_url();
    let params = json!({"game": GAME, "version": VERSION, "mode": "two_v_two"});
    let streams: Vec<Vec<Value>> = std::thread::scope(|s| {
        let joins: Vec<_> = (0..4).map(|_| s.spawn(|| stream_join(&url, params.clone()))).collect();
        joins.into_iter().map(|j| j.join().expect("a join thread")).collect()
    });
    let found: Vec<&Value> = streams.iter().map(|s| message(s, "match_found").expect("matched")).collect();
    let match_id = found[0]["match_id"].as_str().expect("a match id").to_string();
    assert!(found.iter().all(|f| f["match_id"] == match_id.as_str()), "one match: {found:?}");
    let readies: Vec<&Value> = streams.iter().map(|s| message(s, "ready").expect("ready")).collect();
    let session_server = |ready: &Value| {
        let session = mm.session(ready["session_id"].as_str().expect("a session")).expect("its session record");
        session.server_id.to_string()
    };
    let server_id = session_server(readies[0]);
    assert!(readies.iter().all(|r| session_server(r) == server_id), "one server hosts the match");

    // The four connect as real Lightyear clients; the server reports each with the team its
    // match record gives them.
    let mut clients: Vec<(App, Entity)> = readies.iter().map(|r| client_for(r)).collect();
    let entities: Vec<Entity> = clients.iter().map(|(_, e)| *e).collect();
    let mut apps: Vec<&mut App> = clients.iter_mut().map(|(app, _)| app).collect();
    expect_step_until(&mut apps, DEADLINE, "four Lightyear clients to connect", |apps| {
        apps.iter().zip(&entities).all(|(app, e)| app.world().get::<Connected>(*e).is_some())
    });
    let mut teams: Vec<(u64, u32)> = Vec::new();
    expect_step_until(
        &mut apps,
        Duration::from_secs(20),
        "the game server to report four players with their teams",
        every(Duration::from_millis(200), || {
            teams = mm
                .keys(&mm.kv.players)
                .iter()
                .filter_map(|key| mm.rt.block_on(mm.kv.players.get(key)).ok().flatten())
                .filter_map(|bytes| serde_json::from_slice::<bevygap_shared::records::PlayerRecord>(&bytes).ok())
                .filter_map(|p| p.team.filter(|t| t.match_id == match_id).map(|t| (p.client_id, t.team)))
                .collect();
            teams.len() == 4
        }),
    );
    for (found, ready) in found.iter().zip(&readies) {
        let session = mm.session(ready["session_id"].as_str().expect("a session")).expect("its session record");
        let client_id = session.client_ids[0];
        let reported = teams.iter().find(|(id, _)| *id == client_id).map(|(_, team)| *team);
        assert_eq!(reported, found["team"].as_u64().map(|t| t as u32), "the server's team is the player's");
    }
    assert_eq!(teams.iter().filter(|(_, team)| *team == 0).count(), 2, "two on each team: {teams:?}");

    // Drop-in joins still fill servers as before, never the match's.
    let drop_in = mm.join(json!({"game": GAME, "version": VERSION}));
    assert_eq!(drop_in["result"]["status"], "ready", "{drop_in}");
    let drop_in_server = session_server(&drop_in["result"]);
    assert_ne!(drop_in_server, server_id, "the match's server takes no one else");
    let second = mm.join(json!({"game": GAME, "version": VERSION}));
    assert_eq!(session_server(&second["result"]), drop_in_server, "drop-in fills the open server first");
    for (app, entity) in clients.iter_mut() {
        disconnect(app, *entity);
    }
}
