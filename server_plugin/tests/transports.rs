//! UDP and WebTransport served by one game server at the same time, in a networking topology
//! Lightyear supports (one started server, every client linked to it): no "invalid Lightyear
//! networking topology" error, and both kinds of client play at once.

mod common;

use std::sync::Mutex;

use bevy::prelude::*;
use bevygap_server_plugin::prelude::*;
use bevygap_shared::protocol::Transport;
use bevygap_testkit::lightyear_client::{ClientConnection, Dial, client_connection, connecting_client};
use bevygap_testkit::{DEADLINE, expect_step_until, step_for};
use common::*;
use lightyear::prelude::server::Started;
use lightyear::prelude::{NetworkTopology, NetworkingMetadata, Server};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Every ERROR event of the process, as text (message and fields).
static ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A minimal global subscriber keeping ERROR events: Lightyear logs from Bevy's worker threads,
/// so a thread-local test subscriber would miss them.
struct ErrorRecorder;

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl Subscriber for ErrorRecorder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() == Level::ERROR
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut text = Text(event.metadata().target().to_string());
        event.record(&mut text);
        ERRORS.lock().unwrap().push(text.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn a_udp_and_a_webtransport_client_play_at_once_in_a_supported_topology() {
    tracing::subscriber::set_global_default(ErrorRecorder).expect("the only subscriber of this test binary");
    let (buckets, mut server, id, record) = start_ready_server("both-transports", "local-both", true);
    let udp_addr = record.addresses.udp.expect("UDP address");
    let wt_addr = record.addresses.webtransport.expect("WebTransport address");
    let digest = record.cert_digest.clone().expect("digest");

    buckets.grant(&id, 7101, "session-udp");
    buckets.grant(&id, 7102, "session-wt");
    let (mut udp, udp_e) = udp_client(udp_addr, 7101);
    let (mut wt, wt_e) =
        connecting_client(token(wt_addr, 7102), Dial::WebTransport { cert_digest: digest.to_string() });
    let mut seen = Vec::new();
    let mut watch_topology = |server: &App| {
        let mode = server.world().resource::<NetworkingMetadata>().mode.clone();
        if !seen.contains(&mode) {
            seen.push(mode);
        }
    };
    expect_step_until(
        &mut [&mut server, &mut udp, &mut wt],
        DEADLINE,
        "both clients to be connected at once",
        |apps| {
            watch_topology(apps[0]);
            let players = &apps[0].world().resource::<BevygapStatus>().players;
            client_connection(apps[1], udp_e) == ClientConnection::Connected
                && client_connection(apps[2], wt_e) == ClientConnection::Connected
                && players.contains_key(&7101)
                && players.contains_key(&7102)
        },
    );
    // Keep both sessions going for a while: both transports keep serving side by side.
    step_for(&mut [&mut server, &mut udp, &mut wt], std::time::Duration::from_secs(2));
    watch_topology(&server);
    assert_eq!(client_connection(&udp, udp_e), ClientConnection::Connected);
    assert_eq!(client_connection(&wt, wt_e), ClientConnection::Connected);
    let players = server.world().resource::<BevygapStatus>().players.clone();
    assert_eq!(players.len(), 2);
    assert_eq!((players[&7101].transport, players[&7101].session_id.as_str()), (Transport::Udp, "session-udp"));
    assert_eq!((players[&7102].transport, players[&7102].session_id.as_str()), (Transport::WebTransport, "session-wt"));
    wait_for_player_record(&mut [&mut server, &mut udp, &mut wt], &buckets, &id, 7101);
    wait_for_player_record(&mut [&mut server, &mut udp, &mut wt], &buckets, &id, 7102);

    // One started Lightyear server, whatever the number of transports.
    let world = server.world_mut();
    let started = world.query_filtered::<Entity, (With<Server>, With<Started>)>().iter(world).count();
    assert_eq!(started, 1, "one started Lightyear server serves both transports");
    let mode = &world.resource::<NetworkingMetadata>().mode;
    assert!(matches!(mode, NetworkTopology::Server(_)), "topology: {mode:?}");
    assert!(seen.iter().all(|m| !matches!(m, NetworkTopology::Invalid(_))), "an invalid topology was seen: {seen:?}");
    let errors = ERRORS.lock().unwrap().clone();
    assert!(errors.iter().all(|e| !e.contains("topology")), "Lightyear complained: {errors:?}");
}

/// WebTransport alone: the one server entity has no socket of its own, only the listener.
#[test]
fn a_webtransport_only_server_serves_webtransport_clients() {
    let buckets = GrantBuckets::start("wt-only");
    let id = bevygap_shared::naming::ServerId::new("local-wt-only").unwrap();
    let mut server = server_app(server_config(&buckets, id.as_str(), false, true));
    let record = wait_ready(&mut server, &buckets, &id);
    assert!(record.addresses.udp.is_none());
    let wt_addr = record.addresses.webtransport.expect("WebTransport address");
    assert_ne!(wt_addr.port(), 0);
    buckets.grant(&id, 7201, "session-wt-only");
    let dial = Dial::WebTransport { cert_digest: record.cert_digest.expect("digest").to_string() };
    let (mut client, entity) = connecting_client(token(wt_addr, 7201), dial);
    expect_step_until(&mut [&mut server, &mut client], DEADLINE, "the WebTransport client to play", |apps| {
        client_connection(apps[1], entity) == ClientConnection::Connected
            && apps[0].world().resource::<BevygapStatus>().players.contains_key(&7201)
    });
    let mode = &server.world().resource::<NetworkingMetadata>().mode;
    assert!(matches!(mode, NetworkTopology::Server(_)), "topology: {mode:?}");
}
