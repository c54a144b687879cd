//! Admission and player records over real UDP, against a real nats-server.

mod common;

use bevy::prelude::*;
use bevygap_server_plugin::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::records::ServerStatus;
use bevygap_testkit::lightyear_client::{
    ClientConnection, Dial, client_connection, connecting_client, disconnect, is_disconnected,
};
use bevygap_testkit::{DEADLINE, TEST_PRIVATE_KEY, TEST_PROTOCOL_ID, expect_step_until, step_until};
use common::*;
use lightyear::netcode::ConnectToken;

/// What the server told the game.
#[derive(Resource, Default)]
struct Seen(Vec<String>);

fn record_messages(
    mut seen: ResMut<Seen>,
    mut joined: MessageReader<PlayerJoined>,
    mut left: MessageReader<PlayerLeft>,
) {
    for j in joined.read() {
        seen.0.push(format!("joined {} {} {:?}", j.client_id, j.session_id, j.transport));
    }
    for l in left.read() {
        seen.0.push(format!("left {} {}", l.client_id, l.session_id));
    }
}

#[test]
fn an_issued_client_is_admitted_and_its_record_comes_and_goes() {
    let (buckets, mut server, id, record) = start_ready_server("udp-admit", "local-admit", false);
    server.init_resource::<Seen>().add_systems(Update, record_messages);
    let addr = record.addresses.udp.expect("UDP address in the server record");
    assert_ne!(addr.port(), 0, "the record must carry the bound port");
    assert_eq!((record.capacity, record.provider.as_str(), record.status), (8, "local", ServerStatus::Ready));
    assert!(record.cert_digest.is_none() && record.addresses.webtransport.is_none());

    buckets.grant(&id, 1001, "session-a");
    let (mut client, entity) = udp_client(addr, 1001);
    let connected = step_until(&mut [&mut server, &mut client], DEADLINE, |apps| {
        client_connection(apps[1], entity) == ClientConnection::Connected
            && apps[0].world().resource::<BevygapStatus>().players.contains_key(&1001)
    });
    assert!(connected, "issued client not admitted: {:?}", client_connection(&client, entity));

    let world = server.world_mut();
    let players: Vec<ConnectedPlayer> = world.query::<&ConnectedPlayer>().iter(world).cloned().collect();
    assert_eq!(players.len(), 1);
    assert_eq!((players[0].client_id, players[0].session_id.as_str()), (1001, "session-a"));

    let player = wait_for_player_record(&mut [&mut server, &mut client], &buckets, &id, 1001);
    assert_eq!((player.session_id.as_str(), &player.server_id), ("session-a", &id));

    disconnect(&mut client, entity);
    wait_for_no_player_record(&mut [&mut server, &mut client], &buckets, &id, 1001);
    assert!(server.world().resource::<BevygapStatus>().players.is_empty());
    assert_eq!(
        server.world().resource::<Seen>().0,
        vec!["joined 1001 session-a Udp".to_string(), "left 1001 session-a".to_string()]
    );
}

#[test]
fn unknown_and_foreign_clients_are_refused() {
    let (buckets, mut server, id, record) = start_ready_server("udp-refuse", "local-refuse", false);
    let addr = record.addresses.udp.unwrap();
    let other = ServerId::new("local-other").unwrap();

    // 2001: never granted. 2002: granted, but for another server.
    buckets.grant(&other, 2002, "elsewhere");
    let (mut unknown, unknown_e) = udp_client(addr, 2001);
    let (mut foreign, foreign_e) = udp_client(addr, 2002);
    // 2003: granted here, but its token was minted for another server's socket.
    buckets.grant(&id, 2003, "misaddressed");
    let wrong_server: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let misaddressed = ConnectToken::build(addr, TEST_PROTOCOL_ID, 2003, TEST_PRIVATE_KEY)
        .timeout_seconds(3)
        .internal_addresses(wrong_server)
        .unwrap()
        .generate()
        .unwrap();
    let (mut stray, stray_e) = connecting_client(misaddressed, Dial::Udp);

    expect_step_until(
        &mut [&mut server, &mut unknown, &mut foreign, &mut stray],
        DEADLINE,
        "every refused client to end disconnected",
        |apps| [(1, unknown_e), (2, foreign_e), (3, stray_e)].iter().all(|(i, e)| is_disconnected(apps[*i], *e)),
    );
    for (app, e) in [(&unknown, unknown_e), (&foreign, foreign_e)] {
        let state = client_connection(app, e);
        assert!(matches!(&state, ClientConnection::Disconnected(r) if r.contains("ConnectionDenied")), "{state:?}");
    }
    assert!(server.world().resource::<BevygapStatus>().players.is_empty());
    for client_id in [2001, 2002, 2003] {
        assert!(buckets.player_record(&id, client_id).is_none(), "refused client {client_id} has a record");
    }
    assert_eq!(phase(&server), BevygapServerState::Ready);
}

#[test]
fn a_token_replayed_while_its_client_is_connected_is_refused() {
    let (buckets, mut server, id, record) = start_ready_server("udp-replay", "local-replay", false);
    let addr = record.addresses.udp.unwrap();

    buckets.grant(&id, 3001, "session-r");
    let original = token(addr, 3001);
    let (mut first, first_e) = connecting_client(original.clone(), Dial::Udp);
    expect_step_until(&mut [&mut server, &mut first], DEADLINE, "the first client to connect", |apps| {
        client_connection(apps[1], first_e) == ClientConnection::Connected
    });

    let (mut replay, replay_e) = connecting_client(original, Dial::Udp);
    let settled =
        step_until(&mut [&mut server, &mut first, &mut replay], DEADLINE, |apps| is_disconnected(apps[2], replay_e));
    assert!(settled, "the replayed token should never connect: {:?}", client_connection(&replay, replay_e));
    assert_eq!(client_connection(&first, first_e), ClientConnection::Connected, "the original connection must survive");
    assert_eq!(server.world().resource::<BevygapStatus>().players.len(), 1);
}

/// Lightyear's own replay check does nothing, so admission makes each grant single-use: once a
/// client id has been connected, its token (still within its life) cannot connect again, even
/// when NATS is down and only the server's own memory can tell.
#[test]
fn a_token_replayed_after_its_client_left_is_refused_even_without_nats() {
    let (mut buckets, mut server, id, record) = start_ready_server("udp-replay-after", "local-replay-after", false);
    let addr = record.addresses.udp.unwrap();

    buckets.grant(&id, 3101, "session-once");
    let original = token(addr, 3101);
    let (mut first, first_e) = connecting_client(original.clone(), Dial::Udp);
    expect_step_until(&mut [&mut server, &mut first], DEADLINE, "the first client to connect", |apps| {
        client_connection(apps[1], first_e) == ClientConnection::Connected
    });
    wait_for_player_record(&mut [&mut server, &mut first], &buckets, &id, 3101);
    disconnect(&mut first, first_e);
    wait_for_no_player_record(&mut [&mut server, &mut first], &buckets, &id, 3101);
    drop(first);

    let refused = |server: &mut App, what: &str| {
        let (mut replay, replay_e) = connecting_client(original.clone(), Dial::Udp);
        expect_step_until(&mut [server, &mut replay], DEADLINE, what, |apps| {
            client_connection(apps[1], replay_e) != ClientConnection::Pending
        });
        let state = client_connection(&replay, replay_e);
        assert!(matches!(&state, ClientConnection::Disconnected(r) if r.contains("ConnectionDenied")), "{state:?}");
        assert!(server.world().resource::<BevygapStatus>().players.is_empty(), "the replay got a seat");
    };
    refused(&mut server, "the replay (NATS up) to be refused");

    buckets.nats.stop();
    refused(&mut server, "the replay (NATS down) to be refused");
}
