//! WebTransport with the generated certificate, against a real nats-server and a real native
//! WebTransport client (which enforces the browser rules: ECDSA P-256, ≤ 14 days, pinned).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bevygap_server_plugin::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::protocol::Transport;
use common::*;

#[test]
fn a_webtransport_client_connects_with_the_published_digest() {
    let mm = Matchmaker::start("wt-admit");
    let id = ServerId::new("local-wt").unwrap();
    let mut server = server_app(settings(&mm, id.as_str(), true, true));
    let record = wait_ready(&mut server, &mm, &id);

    // What the matchmaker hands to browsers: the digest and the end of validity.
    let digest = record.cert_digest.clone().expect("digest published with the server record");
    let not_after = record.cert_not_after.expect("certificate end published");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(not_after > now && not_after <= now + 14 * 24 * 3600, "certificate must end within 14 days");
    let wt_addr = record.addresses.webtransport.expect("WebTransport address in the record");
    let udp_addr = record.addresses.udp.expect("UDP address in the record");
    assert_ne!(wt_addr.port(), 0);

    // A wrong pin is refused by the client itself.
    mm.grant(&id, 4002, "session-pin");
    let (mut pinned_wrong, wrong_e) = client_app(token(wt_addr, 4002), Transport::WebTransport, Some("ab".repeat(32)));
    assert!(step_until(&mut [&mut server, &mut pinned_wrong], DEADLINE, |apps| matches!(
        client_state(apps[1], wrong_e),
        ClientState::Disconnected(_)
    )));
    let state = client_state(&pinned_wrong, wrong_e);
    assert!(matches!(&state, ClientState::Disconnected(r) if r.contains("Link failed")), "{state:?}");
    assert!(!server.world().resource::<BevygapStatus>().players.contains_key(&4002));
    drop(pinned_wrong);

    mm.grant(&id, 4001, "session-wt");
    let (mut client, entity) = client_app(token(wt_addr, 4001), Transport::WebTransport, Some(digest.to_string()));
    let connected = step_until(&mut [&mut server, &mut client], DEADLINE, |apps| {
        client_state(apps[1], entity) == ClientState::Connected
            && apps[0].world().resource::<BevygapStatus>().players.contains_key(&4001)
    });
    assert!(connected, "WebTransport client not admitted: {:?}", client_state(&client, entity));
    let entry = server.world().resource::<BevygapStatus>().players[&4001].clone();
    assert_eq!((entry.transport, entry.session_id.as_str()), (Transport::WebTransport, "session-wt"));
    assert!(step_until_slow(&mut [&mut server, &mut client], DEADLINE, || mm.player_record(&id, 4001).is_some()));

    // The same client id over the other transport is refused while it is connected.
    let (mut twin, twin_e) = client_app(token(udp_addr, 4001), Transport::Udp, None);
    assert!(step_until(&mut [&mut server, &mut client, &mut twin], DEADLINE, |apps| matches!(
        client_state(apps[2], twin_e),
        ClientState::Disconnected(_)
    )));
    let state = client_state(&twin, twin_e);
    assert!(matches!(&state, ClientState::Disconnected(r) if r.contains("ConnectionDenied")), "{state:?}");
    assert_eq!(client_state(&client, entity), ClientState::Connected);
    assert_eq!(server.world().resource::<BevygapStatus>().players.len(), 1);
    drop(twin);

    disconnect(&mut client, entity);
    let gone = step_until_slow(&mut [&mut server, &mut client], DEADLINE, || mm.player_record(&id, 4001).is_none());
    assert!(gone, "player record not removed after the WebTransport client left");
    std::thread::sleep(Duration::from_millis(10));
}
