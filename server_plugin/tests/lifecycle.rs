//! Draining, shutting down and exiting: records are removed and the app exits cleanly.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use bevygap_server_plugin::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::records::ServerStatus;
use bevygap_shared::server_env::{Endpoint, ServerEnv};
use bevygap_testkit::lightyear_client::{ClientConnection, client_connection, disconnect, is_disconnected};
use bevygap_testkit::records::{test_game, test_version};
use bevygap_testkit::{DEADLINE, KillOnDrop, every, expect_step_until, send_signal, step_until, test_keys, wait_for};
use common::*;

#[test]
fn drain_refuses_newcomers_and_exits_when_the_last_player_leaves() {
    let (buckets, mut server, id, record) = start_ready_server("drain", "local-drain", false);
    let addr = record.addresses.udp.unwrap();

    buckets.grant(&id, 6001, "s");
    buckets.grant(&id, 6002, "s");
    let (mut stayer, stayer_e) = connected_udp_client(&mut [&mut server], addr, 6001);

    buckets.command(&id, r#"{"command":"drain"}"#);
    expect_step_until(
        &mut [&mut server, &mut stayer],
        DEADLINE,
        "the record to show draining",
        every(NATS_POLL, || buckets.server_record(&id).is_some_and(|r| r.status == ServerStatus::Draining)),
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
    assert!(buckets.server_record(&id).is_none(), "server record left behind");
    assert!(buckets.player_record(&id, 6001).is_none(), "player record left behind");
}

#[test]
fn shutdown_command_disconnects_players_and_removes_records() {
    let (buckets, mut server, id, record) = start_ready_server("shutdown", "local-shutdown", false);
    let addr = record.addresses.udp.unwrap();
    buckets.grant(&id, 7001, "s");
    let (mut client, entity) = connected_udp_client(&mut [&mut server], addr, 7001);
    wait_for_player_record(&mut [&mut server, &mut client], &buckets, &id, 7001);

    buckets.command(&id, r#"{"command":"shutdown"}"#);
    expect_step_until(&mut [&mut server, &mut client], DEADLINE, "the server to exit", |apps| exited(apps[0]));
    assert!(buckets.server_record(&id).is_none(), "server record left behind");
    assert!(buckets.player_record(&id, 7001).is_none(), "player record left behind");
    // The client was told (disconnect packets), not left to time out (3 s).
    let told = step_until(&mut [&mut client], Duration::from_secs(2), |apps| {
        client_connection(apps[0], entity) != ClientConnection::Connected
    });
    assert!(told && is_disconnected(&client, entity), "{:?}", client_connection(&client, entity));
}

#[test]
fn an_idle_server_stops_itself() {
    let buckets = GrantBuckets::start("idle");
    let id = ServerId::new("local-idle").unwrap();
    let mut config = server_config(&buckets, id.as_str(), true, false);
    config.shutdown.idle_timeout = Some(Duration::from_secs(1));
    let mut server = server_app(config);
    wait_ready(&mut server, &buckets, &id);
    expect_step_until(&mut [&mut server], DEADLINE, "the idle server to stop", |apps| exited(apps[0]));
    assert!(buckets.server_record(&id).is_none());
}

/// The demo binary, as the matchmaker's local provider runs it: SIGTERM means a clean exit.
#[test]
fn demo_server_exits_cleanly_on_sigterm() {
    let buckets = GrantBuckets::start("demo");
    let id = ServerId::new("local-demo").unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let env = ServerEnv {
        namespace: buckets.names.namespace().clone(),
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
            .env("NATS_URL", buckets.nats.url())
            .envs(test_keys().to_env())
            .stdin(Stdio::null())
            .spawn()
            .expect("demo server starts"),
    );

    let record = wait_for(DEADLINE, "the demo server to register as ready", || {
        buckets.server_record(&id).filter(|r| r.status == ServerStatus::Ready)
    });
    assert_eq!(record.addresses.udp, Some(addr));

    buckets.grant(&id, 8001, "s");
    let (mut client, _) = connected_udp_client(&mut [], addr, 8001);
    wait_for_player_record(&mut [&mut client], &buckets, &id, 8001);

    send_signal(&child.0, libc::SIGTERM).expect("SIGTERM is sent");
    let mut status = None;
    step_until(&mut [&mut client], DEADLINE, |_| {
        status = child.0.try_wait().expect("the child can be waited for");
        status.is_some()
    });
    let status = status.expect("demo server ignored SIGTERM");
    assert!(status.success(), "demo server exited with {status}");
    assert!(buckets.server_record(&id).is_none(), "server record left behind");
    assert!(buckets.player_record(&id, 8001).is_none(), "player record left behind");
}
