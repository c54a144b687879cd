//! Draining, shutting down and exiting: records are removed and the app exits cleanly.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bevygap_server_plugin::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::protocol::{GameName, GameVersion, Transport};
use bevygap_shared::records::ServerStatus;
use bevygap_shared::server_env::{Endpoint, ServerEnv};
use common::*;

#[test]
fn drain_refuses_newcomers_and_exits_when_the_last_player_leaves() {
    let mm = Matchmaker::start("drain");
    let id = ServerId::new("local-drain").unwrap();
    let mut server = server_app(settings(&mm, id.as_str(), true, false));
    let addr = wait_ready(&mut server, &mm, &id).addresses.udp.unwrap();

    mm.grant(&id, 6001, "s");
    mm.grant(&id, 6002, "s");
    let (mut stayer, stayer_e) = client_app(token(addr, 6001), Transport::Udp, None);
    assert!(step_until(&mut [&mut server, &mut stayer], DEADLINE, |apps| client_state(apps[1], stayer_e)
        == ClientState::Connected));

    mm.command(&id, r#"{"command":"drain"}"#);
    let draining = step_until_slow(&mut [&mut server, &mut stayer], DEADLINE, || {
        mm.server_record(&id).is_some_and(|r| r.status == ServerStatus::Draining)
    });
    assert!(draining, "the record never showed draining");
    assert_eq!(*server.world().resource::<bevy::prelude::State<ServerPhase>>().get(), ServerPhase::Draining);

    let (mut late, late_e) = client_app(token(addr, 6002), Transport::Udp, None);
    assert!(step_until(&mut [&mut server, &mut stayer, &mut late], DEADLINE, |apps| matches!(
        client_state(apps[2], late_e),
        ClientState::Disconnected(_)
    )));
    assert_eq!(client_state(&stayer, stayer_e), ClientState::Connected, "draining must not kick current players");
    assert!(!exited(&server));

    disconnect(&mut stayer, stayer_e);
    assert!(
        step_until(&mut [&mut server, &mut stayer], DEADLINE, |apps| exited(apps[0])),
        "server did not exit after draining"
    );
    assert!(mm.server_record(&id).is_none(), "server record left behind");
    assert!(mm.player_record(&id, 6001).is_none(), "player record left behind");
}

#[test]
fn shutdown_command_disconnects_players_and_removes_records() {
    let mm = Matchmaker::start("shutdown");
    let id = ServerId::new("local-shutdown").unwrap();
    let mut server = server_app(settings(&mm, id.as_str(), true, false));
    let addr = wait_ready(&mut server, &mm, &id).addresses.udp.unwrap();
    mm.grant(&id, 7001, "s");
    let (mut client, entity) = client_app(token(addr, 7001), Transport::Udp, None);
    assert!(step_until(&mut [&mut server, &mut client], DEADLINE, |apps| client_state(apps[1], entity)
        == ClientState::Connected));
    assert!(step_until_slow(&mut [&mut server, &mut client], DEADLINE, || mm.player_record(&id, 7001).is_some()));

    mm.command(&id, r#"{"command":"shutdown"}"#);
    assert!(step_until(&mut [&mut server, &mut client], DEADLINE, |apps| exited(apps[0])), "server did not exit");
    assert!(mm.server_record(&id).is_none(), "server record left behind");
    assert!(mm.player_record(&id, 7001).is_none(), "player record left behind");
    // The client was told (disconnect packets), not left to time out.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) && client_state(&client, entity) == ClientState::Connected {
        client.update();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        matches!(client_state(&client, entity), ClientState::Disconnected(_)),
        "{:?}",
        client_state(&client, entity)
    );
}

#[test]
fn an_idle_server_stops_itself() {
    let mm = Matchmaker::start("idle");
    let id = ServerId::new("local-idle").unwrap();
    let mut config = settings(&mm, id.as_str(), true, false);
    config.shutdown.idle_timeout = Some(Duration::from_secs(1));
    let mut server = server_app(config);
    wait_ready(&mut server, &mm, &id);
    assert!(step_until(&mut [&mut server], DEADLINE, |apps| exited(apps[0])), "idle server did not stop");
    assert!(mm.server_record(&id).is_none());
}

/// Never leaves a child behind, even when an assertion fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The demo binary, as the matchmaker's local provider runs it: SIGTERM means a clean exit.
#[test]
fn demo_server_exits_cleanly_on_sigterm() {
    let mm = Matchmaker::start("demo");
    let id = ServerId::new("local-demo").unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let env = ServerEnv {
        namespace: mm.names.namespace().clone(),
        server_id: id.clone(),
        provider: "local".into(),
        game: GameName::new("testgame").unwrap(),
        version: GameVersion::new("1.0").unwrap(),
        capacity: 4,
        udp: Some(Endpoint { bind: addr, public: addr }),
        webtransport: None,
    };
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_bevygap-demo-server"))
            .env_clear()
            .envs(env.to_vars())
            .env("NATS_URL", mm.nats.url())
            .env("LIGHTYEAR_PROTOCOL_ID", PROTOCOL_ID.to_string())
            .env("LIGHTYEAR_PRIVATE_KEY", KEY.iter().map(|b| format!("{b:02x}")).collect::<String>())
            .stdin(Stdio::null())
            .spawn()
            .expect("demo server starts"),
    );

    let deadline = Instant::now() + DEADLINE;
    let mut record = None;
    while Instant::now() < deadline && record.is_none() {
        record = mm.server_record(&id).filter(|r| r.status == ServerStatus::Ready);
        std::thread::sleep(Duration::from_millis(100));
    }
    let record = record.expect("demo server never registered as ready");
    assert_eq!(record.addresses.udp, Some(addr));

    mm.grant(&id, 8001, "s");
    let (mut client, entity) = client_app(token(addr, 8001), Transport::Udp, None);
    assert!(step_until(&mut [&mut client], DEADLINE, |apps| client_state(apps[0], entity) == ClientState::Connected));
    assert!(step_until_slow(&mut [&mut client], DEADLINE, || mm.player_record(&id, 8001).is_some()));

    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
    let mut status = None;
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline && status.is_none() {
        client.update();
        status = child.0.try_wait().unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = status.expect("demo server ignored SIGTERM");
    assert!(status.success(), "demo server exited with {status}");
    assert!(mm.server_record(&id).is_none(), "server record left behind");
    assert!(mm.player_record(&id, 8001).is_none(), "player record left behind");
}
