//! NATS restarted under a running server: the game keeps going and records end up right.

mod common;

use std::time::Duration;

use bevygap_server_plugin::prelude::*;
use bevygap_shared::nats::LinkStatus;
use bevygap_shared::records::ServerStatus;
use bevygap_testkit::lightyear_client::{ClientConnection, client_connection, disconnect};
use bevygap_testkit::{DEADLINE, every, step_for, step_until};
use common::*;

#[test]
fn records_are_reconciled_after_nats_restarts() {
    let (mut buckets, mut server, id, record) = start_ready_server("outage", "local-outage", false);
    let addr = record.addresses.udp.unwrap();

    buckets.grant(&id, 5001, "leaver");
    buckets.grant(&id, 5002, "joiner");
    let (mut leaver, leaver_e) = connected_udp_client(&mut [&mut server], addr, 5001);
    wait_for_player_record(&mut [&mut server, &mut leaver], &buckets, &id, 5001);
    // Both grants are cached by now (the watch delivered them), so admission works offline.
    step_until(&mut [&mut server], DEADLINE, |_| true);

    buckets.nats.stop();
    let noticed = step_until(&mut [&mut server, &mut leaver], DEADLINE, |apps| {
        apps[0].world().resource::<BevygapStatus>().nats != Some(LinkStatus::Connected)
    });
    assert!(noticed, "the server did not notice the outage");

    // During the outage: one player leaves, another joins. The game carries on.
    disconnect(&mut leaver, leaver_e);
    let (mut joiner, joiner_e) = udp_client(addr, 5002);
    let moved = step_until(&mut [&mut server, &mut leaver, &mut joiner], DEADLINE, |apps| {
        let players = &apps[0].world().resource::<BevygapStatus>().players;
        client_connection(apps[2], joiner_e) == ClientConnection::Connected
            && players.contains_key(&5002)
            && !players.contains_key(&5001)
    });
    assert!(moved, "admission or leave tracking failed during the outage: {:?}", client_connection(&joiner, joiner_e));
    // Keep the outage going for a few heartbeats' worth of frames.
    step_for(&mut [&mut server, &mut joiner], Duration::from_secs(2));
    assert_eq!(phase(&server), BevygapServerState::Ready);

    buckets.nats.restart().expect("nats restarts");
    let consistent = step_until(
        &mut [&mut server, &mut joiner],
        Duration::from_secs(30),
        every(NATS_POLL, || {
            buckets.player_record(&id, 5001).is_none()
                && buckets.player_record(&id, 5002).is_some_and(|p| p.session_id == "joiner")
                && buckets.server_record(&id).is_some_and(|r| r.status == ServerStatus::Ready)
        }),
    );
    assert!(
        consistent,
        "records not reconciled: leaver={:?} joiner={:?} server={:?}",
        buckets.player_record(&id, 5001),
        buckets.player_record(&id, 5002),
        buckets.server_record(&id).map(|r| r.status)
    );
    let relinked = step_until(&mut [&mut server, &mut joiner], DEADLINE, |apps| {
        apps[0].world().resource::<BevygapStatus>().nats == Some(LinkStatus::Connected)
    });
    assert!(relinked, "the status resource never showed the link back up");
    assert_eq!(client_connection(&joiner, joiner_e), ClientConnection::Connected);

    // Grants issued after the restart still admit (re-established watch or direct read).
    buckets.grant(&id, 5003, "after");
    let (mut late, late_e) = udp_client(addr, 5003);
    let admitted = step_until(&mut [&mut server, &mut joiner, &mut late], DEADLINE, |apps| {
        client_connection(apps[2], late_e) == ClientConnection::Connected
    });
    assert!(admitted, "a grant written after the restart was not honoured: {:?}", client_connection(&late, late_e));
    wait_for_player_record(&mut [&mut server, &mut joiner, &mut late], &buckets, &id, 5003);
}
