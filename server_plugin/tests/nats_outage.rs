//! NATS restarted under a running server: the game keeps going and records end up right.

mod common;

use std::time::{Duration, Instant};

use bevygap_server_plugin::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::nats::LinkStatus;
use bevygap_shared::protocol::Transport;
use bevygap_shared::records::ServerStatus;
use common::*;

#[test]
fn records_are_reconciled_after_nats_restarts() {
    let mut mm = Matchmaker::start("outage");
    let id = ServerId::new("local-outage").unwrap();
    let mut server = server_app(settings(&mm, id.as_str(), true, false));
    let addr = wait_ready(&mut server, &mm, &id).addresses.udp.unwrap();

    mm.grant(&id, 5001, "leaver");
    mm.grant(&id, 5002, "joiner");
    let (mut leaver, leaver_e) = client_app(token(addr, 5001), Transport::Udp, None);
    assert!(step_until(&mut [&mut server, &mut leaver], DEADLINE, |apps| client_state(apps[1], leaver_e)
        == ClientState::Connected));
    assert!(step_until_slow(&mut [&mut server, &mut leaver], DEADLINE, || mm.player_record(&id, 5001).is_some()));
    // Both grants are cached by now (the watch delivered them), so admission works offline.
    assert!(step_until(&mut [&mut server], DEADLINE, |_| true));

    mm.nats.stop();
    let noticed = step_until(&mut [&mut server, &mut leaver], DEADLINE, |apps| {
        apps[0].world().resource::<BevygapStatus>().nats != Some(LinkStatus::Connected)
    });
    assert!(noticed, "the server did not notice the outage");

    // During the outage: one player leaves, another joins. The game carries on.
    disconnect(&mut leaver, leaver_e);
    let (mut joiner, joiner_e) = client_app(token(addr, 5002), Transport::Udp, None);
    let moved = step_until(&mut [&mut server, &mut leaver, &mut joiner], DEADLINE, |apps| {
        let players = &apps[0].world().resource::<BevygapStatus>().players;
        client_state(apps[2], joiner_e) == ClientState::Connected
            && players.contains_key(&5002)
            && !players.contains_key(&5001)
    });
    assert!(moved, "admission or leave tracking failed during the outage: {:?}", client_state(&joiner, joiner_e));
    // Keep the outage going for a few heartbeats' worth of frames.
    let until = Instant::now() + Duration::from_secs(2);
    step_until(&mut [&mut server, &mut joiner], DEADLINE, |_| Instant::now() > until);
    assert_eq!(*server.world().resource::<bevy::prelude::State<ServerPhase>>().get(), ServerPhase::Ready);

    mm.nats.restart().expect("nats restarts");
    let consistent = step_until_slow(&mut [&mut server, &mut joiner], Duration::from_secs(30), || {
        mm.player_record(&id, 5001).is_none()
            && mm.player_record(&id, 5002).is_some_and(|p| p.session_id == "joiner")
            && mm.server_record(&id).is_some_and(|r| r.status == ServerStatus::Ready)
    });
    assert!(
        consistent,
        "records not reconciled: leaver={:?} joiner={:?} server={:?}",
        mm.player_record(&id, 5001),
        mm.player_record(&id, 5002),
        mm.server_record(&id).map(|r| r.status)
    );
    let relinked = step_until(&mut [&mut server, &mut joiner], DEADLINE, |apps| {
        apps[0].world().resource::<BevygapStatus>().nats == Some(LinkStatus::Connected)
    });
    assert!(relinked, "the status resource never showed the link back up");
    assert_eq!(client_state(&joiner, joiner_e), ClientState::Connected);

    // Grants issued after the restart still admit (re-established watch or direct read).
    mm.grant(&id, 5003, "after");
    let (mut late, late_e) = client_app(token(addr, 5003), Transport::Udp, None);
    let admitted = step_until(&mut [&mut server, &mut joiner, &mut late], DEADLINE, |apps| {
        client_state(apps[2], late_e) == ClientState::Connected
    });
    assert!(admitted, "a grant written after the restart was not honoured: {:?}", client_state(&late, late_e));
    assert!(step_until_slow(&mut [&mut server, &mut joiner, &mut late], DEADLINE, || mm
        .player_record(&id, 5003)
        .is_some()));
}
