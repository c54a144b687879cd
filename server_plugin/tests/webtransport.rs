//! WebTransport with the generated certificate, against a real nats-server and a real native
//! WebTransport client (which enforces the browser rules: ECDSA P-256, ≤ 14 days, pinned).

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use bevygap_server_plugin::prelude::*;
use bevygap_shared::protocol::Transport;
use bevygap_testkit::lightyear_client::{
    ClientConnection, Dial, client_connection, connecting_client, disconnect, is_disconnected,
};
use bevygap_testkit::{DEADLINE, expect_step_until, step_until};
use common::*;

#[test]
fn a_webtransport_client_connects_with_the_published_digest() {
    let (buckets, mut server, id, record) = start_ready_server("wt-admit", "local-wt", true);

    // What the matchmaker hands to browsers: the digest and the end of validity.
    let digest = record.cert_digest.clone().expect("digest published with the server record");
    let not_after = record.cert_not_after.expect("certificate end published");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(not_after > now && not_after <= now + 14 * 24 * 3600, "certificate must end within 14 days");
    let wt_addr = record.addresses.webtransport.expect("WebTransport address in the record");
    let udp_addr = record.addresses.udp.expect("UDP address in the record");
    assert_ne!(wt_addr.port(), 0);

    // A wrong pin is refused by the client itself.
    buckets.grant(&id, 4002, "session-pin");
    let wrong_pin = Dial::WebTransport { cert_digest: "ab".repeat(32) };
    let (mut pinned_wrong, wrong_e) = connecting_client(token(wt_addr, 4002), wrong_pin);
    expect_step_until(&mut [&mut server, &mut pinned_wrong], DEADLINE, "the wrong pin to be refused", |apps| {
        is_disconnected(apps[1], wrong_e)
    });
    let state = client_connection(&pinned_wrong, wrong_e);
    assert!(matches!(&state, ClientConnection::Disconnected(r) if r.contains("Link failed")), "{state:?}");
    assert!(!server.world().resource::<BevygapStatus>().players.contains_key(&4002));
    drop(pinned_wrong);

    buckets.grant(&id, 4001, "session-wt");
    let pinned = Dial::WebTransport { cert_digest: digest.to_string() };
    let (mut client, entity) = connecting_client(token(wt_addr, 4001), pinned);
    let connected = step_until(&mut [&mut server, &mut client], DEADLINE, |apps| {
        client_connection(apps[1], entity) == ClientConnection::Connected
            && apps[0].world().resource::<BevygapStatus>().players.contains_key(&4001)
    });
    assert!(connected, "WebTransport client not admitted: {:?}", client_connection(&client, entity));
    let entry = server.world().resource::<BevygapStatus>().players[&4001].clone();
    assert_eq!((entry.transport, entry.session_id.as_str()), (Transport::WebTransport, "session-wt"));
    wait_for_player_record(&mut [&mut server, &mut client], &buckets, &id, 4001);

    // The same client id over the other transport is refused while it is connected. One netcode
    // server serves both transports, so netcode itself drops the request (the id is in use)
    // and the twin gives up, unanswered; admission would deny it too.
    let (mut twin, twin_e) = udp_client(udp_addr, 4001);
    expect_step_until(&mut [&mut server, &mut client, &mut twin], DEADLINE, "the twin to be refused", |apps| {
        is_disconnected(apps[2], twin_e)
    });
    let state = client_connection(&twin, twin_e);
    let refused = |r: &str| r.contains("ConnectionDenied") || r.contains("ConnectionRequestTimedOut");
    assert!(matches!(&state, ClientConnection::Disconnected(r) if refused(r)), "{state:?}");
    assert_eq!(client_connection(&client, entity), ClientConnection::Connected);
    assert_eq!(server.world().resource::<BevygapStatus>().players.len(), 1);
    drop(twin);

    disconnect(&mut client, entity);
    wait_for_no_player_record(&mut [&mut server, &mut client], &buckets, &id, 4001);
}
