//! Draining, shutting down and exiting: records are removed and the app exits cleanly.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bevygap_server_plugin::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::records::ServerStatus;
use bevygap_shared::server_env::{Endpoint, ServerEnv};
use bevygap_testkit::lightyear_client::{ClientConnection, client_connection, disconnect, is_disconnected};
use bevygap_testkit::records::{test_game, test_version};
use bevygap_testkit::{DEADLINE, KillOnDrop, every, expect_step_until, step_until};
use common::*;

#[test]
fn drain_refuses_newcomers_and_exits_when_the_last_player_leaves() {
    let (mm, mut server, id, record) = start_ready_server("drain", "local-drain", false);
    let addr = record.addresses.udp.unwrap();

    mm.grant(&id, 6001, "s");
    mm.grant(&id, 6002, "s");
    let (mut stayer, stayer_e) = connected_udp_client(&mut [&mut server], addr, 6001);

    mm.command(&id, r#"{"command":"drain"}"#);
    expect_step_until(
        &mut [&mut server, &mut stayer],
        DEADLINE,
        "the record to show draining",
        every(NATS_POLL, || mm.server_record(&id).is_some_and(|r| r.status == ServerStatus::Draining)),
    );
    assert_eq!(phase(&server), BevygapServerState::Draining);

    let (mut late, late_e) = udp_client(addr, 6002);
    expect_step_until(&mut [&mut server, &mut stayer, &mut late], DEADLINE, "the newcomer to be refused", |apps| {
        is_disconnected(apps[2], late_e)
    });
    assert_eq!(
        client_connection(&stayer, stayer_e),
        ClientConnection::Connected,
        "draining must not kick current players"
    );
    assert!(!exited(&server));

    disconnect(&mut stayer, stayer_e);
    expect_step_until(&mut [&mut server, &mut stayer], DEADLINE, "the server to exit after draining", |apps| {
        exited(apps[0])
    });
    assert!(mm.server_record(&id).is_none(), "server record left behind");
    assert!(mm.player_record(&id, 6001).is_none(), "player record left behind");
}

#[test]
fn shutdown_command_disconnects_players_and_removes_records() {
    let (mm, mut server, id, record) = start_ready_server("shutdown", "local-shutdown", false);
    let addr = record.addresses.udp.unwrap();
    mm.grant(&id, 7001, "s");
    let (mut client, entity) = connected_udp_client(&mut [&mut server], addr, 7001);
    wait_for_player_record(&mut [&mut server, &mut client], &mm, &id, 7001);

    mm.command(&id, r#"{"command":"shutdown"}"#);
    expect_step_until(&mut [&mut server, &mut client], DEADLINE, "the server to exit", |apps| exited(apps[0]));
    assert!(mm.server_record(&id).is_none(), "server record left behind");
    assert!(mm.player_record(&id, 7001).is_none(), "player record left behind");
    // The client was told (disconnect packets), not left to time out (3 s).
    let told = step_until(&mut [&mut client], Duration::from_secs(2), |apps| {
        client_connection(apps[0], entity) != ClientConnection::Connected
    });
    assert!(told && is_disconnected(&client, entity), "{:?}", client_connection(&client, entity));
}

#[test]
fn an_idle_server_stops_itself() {
    let mm = Matchmaker::start("idle");
    let id = ServerId::new("local-idle").unwrap();
    let mut config = server_config(&mm, id.as_str(), true, false);
    config.shutdown.idle_timeout = Some(Duration::from_secs(1));
    let mut server = server_app(config);
    wait_ready(&mut server, &mm, &id);
    expect_step_until(&mut [&mut server], DEADLINE, "the idle server to stop", |apps| exited(apps[0]));
    assert!(mm.server_record(&id).is_none());
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
        game: test_game(),
        version: test_version(),
        capacity: 4,
        udp: Some(Endpoint { bind: addr, public: addr }),
        webtransport: None,
    };
    let mut child = KillOnDrop(
        Command::new(bevygap_testkit::workspace_binary("bevygap_demo", "bevygap-demo-server"))
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
    let (mut client, _) = connected_udp_client(&mut [], addr, 8001);
    wait_for_player_record(&mut [&mut client], &mm, &id, 8001);

    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
    let mut status = None;
    step_until(&mut [&mut client], DEADLINE, |_| {
        status = child.0.try_wait().expect("the child can be waited for");
        status.is_some()
    });
    let status = status.expect("demo server ignored SIGTERM");
    assert!(status.success(), "demo server exited with {status}");
    assert!(mm.server_record(&id).is_none(), "server record left behind");
    assert!(mm.player_record(&id, 8001).is_none(), "player record left behind");
}
