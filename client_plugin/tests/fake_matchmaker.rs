//! The plugin in a real Bevy app against a scripted matchmaker speaking the public protocol:
//! success to a connected Lightyear client, every failure code, retries with the same request
//! id, cancel, and the client-side timeouts.

mod support;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bevy::prelude::*;
use bevygap_client_plugin::prelude::*;
use bevygap_shared::protocol::{ErrorCode, RequestId};
use bevygap_testkit::lightyear_client::TICK;
use bevygap_testkit::{DEADLINE, expect_step_until};
use lightyear::prelude::client::NetcodeClient;
use lightyear::prelude::server::{ClientOf, NetcodeConfig, NetcodeServer, ServerPlugins, ServerUdpIo, Start};
use lightyear::prelude::{Connected, LocalAddr, PeerAddr, UdpIo};
use serde_json::json;
use support::fake::{FakeMatchmaker, Reply, Step, error, progress, ready};
use support::*;

const JOIN: &str = "matchmaker.join+watch";

/// A real Lightyear netcode server on loopback UDP with the fake matchmaker's key.
fn lightyear_server() -> (App, SocketAddr) {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins).add_plugins(ServerPlugins { tick_duration: TICK });
    app.finish();
    app.cleanup();
    let config = NetcodeConfig::default().with_protocol_id(support::fake::PROTOCOL_ID).with_key(support::fake::KEY);
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = app.world_mut().spawn((NetcodeServer::new(config), LocalAddr(bind), ServerUdpIo::default())).id();
    app.world_mut().trigger(Start { entity: server });
    let mut addr = bind;
    expect_step_until(&mut [&mut app], DEADLINE, "the server to bind", |apps| {
        addr = apps[0].world().get::<LocalAddr>(server).map(|a| a.0).unwrap_or(bind);
        addr.port() != 0
    });
    (app, addr)
}

/// A UDP address where nothing answers.
fn silent_udp_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[test]
fn success_configures_the_games_client_entity_and_connects() {
    let (mut server, server_addr) = lightyear_server();
    let mm = FakeMatchmaker::start(move |_, params| {
        Reply::Stream(vec![
            progress("queued", params),
            progress("finding_server", params),
            Step::Wait(Duration::from_millis(300)),
            progress("server_starting", params),
            ready(server_addr, params, 77),
        ])
    });
    let mut app = bevygap_client_app(fast_config(&mm.url()));
    #[derive(Component)]
    struct MyPlayer;
    let mine = app.world_mut().spawn((BevygapClient, MyPlayer)).id();
    assert_eq!(state(&app), BevygapClientState::Idle);
    connect(&mut app);

    expect_step_until(&mut [&mut app, &mut server], DEADLINE, "the client to connect", |apps| {
        state(apps[0]) == BevygapClientState::Connected
    });

    // What was asked for.
    let joins = mm.calls_of(JOIN);
    assert_eq!(joins.len(), 1);
    let params = &joins[0].params;
    assert_eq!((params["game"].as_str(), params["version"].as_str()), (Some("demo"), Some("1.0")));
    assert_eq!(params["transport"], "udp");
    let request_id = params["request_id"].as_str().unwrap();
    assert!(RequestId::new(request_id).is_ok(), "{request_id} is a valid request id");

    // What the game saw, in order.
    let seen = seen(&app);
    let states: Vec<_> = seen.progress.iter().map(|p| p.state).collect();
    use BevygapClientState as S;
    let waiting = S::WaitingForServer;
    assert_eq!(states, [S::Requesting, waiting, waiting, waiting, S::Connecting, S::Connected]);
    let texts: Vec<_> = seen.progress.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(texts[1..4], ["Queued", "Finding a server", "Starting a server"]);
    assert!(seen.progress.iter().all(|p| p.request_id == request_id && p.attempt == 1));
    assert!(seen.failed.is_empty(), "{:?}", seen.failed);
    let connected = &seen.connected[..];
    assert_eq!(connected.len(), 1);
    assert_eq!((connected[0].client, connected[0].server), (mine, server_addr));
    assert_eq!(connected[0].session_id, "session-1");

    // The game's own entity became the Lightyear client, over UDP, and is connected.
    let world = app.world();
    assert!(world.get::<Connected>(mine).is_some());
    assert!(world.get::<NetcodeClient>(mine).is_some() && world.get::<UdpIo>(mine).is_some());
    assert_eq!(world.get::<PeerAddr>(mine).map(|p| p.0), Some(server_addr));
    assert_eq!(app.world_mut().query_filtered::<(), With<BevygapClient>>().iter(app.world()).count(), 1);
    let server_world = server.world_mut();
    let clients = server_world.query_filtered::<(), (With<ClientOf>, With<Connected>)>().iter(server_world).count();
    assert_eq!(clients, 1, "the game server sees the client");

    // The game server goes away: the lost connection is a failure the game can retry.
    drop(server);
    let failure = wait_failed(&mut app);
    assert_eq!(failure.code, FailureCode::ConnectionFailed);
    assert!(failure.message.contains("lost"), "{}", failure.message);
    assert_eq!(failure.request_id, request_id);
}

#[test]
fn every_matchmaker_error_is_surfaced_with_its_code_and_only_transient_ones_retry() {
    let current = Arc::new(Mutex::new(ErrorCode::Internal));
    let scripted = current.clone();
    let mm = FakeMatchmaker::start(move |_, params| {
        Reply::Stream(vec![progress("queued", params), Step::Error(*scripted.lock().unwrap())])
    });
    let mut app = bevygap_client_app(fast_config(&mm.url()));
    for code in ErrorCode::ALL {
        *current.lock().unwrap() = code;
        clear_seen(&mut app);
        let before = mm.calls_of(JOIN).len();
        connect(&mut app);
        let failure = wait_failed(&mut app);
        assert_eq!(failure.code, FailureCode::Matchmaker(code));
        assert_eq!(failure.message, code.message(), "the matchmaker's own message");
        assert_eq!(failure.is_retryable(), code.is_retryable(), "{code:?}");
        let ids = &mm.join_request_ids()[before..];
        let transient = matches!(code, ErrorCode::RateLimited | ErrorCode::TooManyWaiting | ErrorCode::Unavailable);
        assert_eq!(ids.len(), if transient { 3 } else { 1 }, "{code:?}: calls {ids:?}");
        assert!(ids.iter().all(|id| *id == failure.request_id), "{code:?}: every retry reused the request id");
        if transient {
            assert!(seen(&app).progress.iter().any(|p| p.text.contains("retrying") && p.attempt == 2));
        }
    }
    let ids = mm.join_request_ids();
    assert_ne!(ids.first(), ids.last(), "a new join after a failure gets a new request id");
}

#[test]
fn transient_failures_retry_with_the_same_request_id_until_ready() {
    let server = silent_udp_addr();
    let mm = FakeMatchmaker::start(move |n, params| match n {
        0 => Reply::Json(503, json!({"jsonrpc": "2.0", "id": 1, "error": error(ErrorCode::Unavailable)})),
        1 => Reply::Hangup,
        2 => Reply::Stream(vec![progress("queued", params)]), // dropped before the end
        3 => Reply::Json(500, json!("oops")),
        4 => Reply::Json(429, json!({"jsonrpc": "2.0", "id": null, "error": error(ErrorCode::RateLimited)})),
        _ => Reply::Stream(vec![progress("queued", params), ready(server, params, 5)]),
    });
    let mut config = fast_config(&mm.url());
    config.retry.max_attempts = 6;
    let mut app = bevygap_client_app(config);
    connect(&mut app);
    expect_step_until(&mut [&mut app], DEADLINE, "a token", |apps| state(apps[0]) == BevygapClientState::Connecting);

    let ids = mm.join_request_ids();
    assert_eq!(ids.len(), 6, "{ids:?}");
    assert!(ids.iter().all(|id| *id == ids[0]), "same request id on every retry: {ids:?}");
    let attempts: Vec<u32> =
        seen(&app).progress.iter().filter(|p| p.text.contains("retrying")).map(|p| p.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 4, 5]);
    assert!(seen(&app).failed.is_empty(), "{:?}", seen(&app).failed);

    // The plugin spawned a client entity, since the game had none, and configured it.
    let client = app.world_mut().query_filtered::<Entity, With<BevygapClient>>().single(app.world()).unwrap();
    assert_eq!(app.world().get::<PeerAddr>(client).map(|p| p.0), Some(server));

    // Cancelling after the token disconnects; the finished join is not withdrawn.
    cancel(&mut app);
    app.update();
    assert_eq!(state(&app), BevygapClientState::Idle);
    assert!(mm.calls_of("matchmaker.cancel").is_empty());
}

#[test]
fn a_refused_connection_is_retried_until_the_matchmaker_listens() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config = fast_config(&format!("http://127.0.0.1:{port}"));
    config.retry.max_attempts = 50;
    config.retry.initial_backoff = Duration::from_millis(200);
    config.retry.max_backoff = Duration::from_millis(200);
    let mut app = bevygap_client_app(config);
    connect(&mut app);
    expect_step_until(&mut [&mut app], DEADLINE, "a first refused attempt", |apps| {
        seen(apps[0]).progress.iter().any(|p| p.text.contains("retrying"))
    });
    assert_eq!(state(&app), BevygapClientState::Requesting);
    let server = silent_udp_addr();
    let mm =
        FakeMatchmaker::serve(TcpListener::bind(("127.0.0.1", port)).expect("port still free"), move |_, params| {
            Reply::Stream(vec![ready(server, params, 6)])
        });
    expect_step_until(&mut [&mut app], DEADLINE, "a token", |apps| state(apps[0]) == BevygapClientState::Connecting);
    assert_eq!(mm.join_request_ids(), [seen(&app).progress[0].request_id.clone()]);
}

#[test]
fn cancel_withdraws_a_waiting_join_from_the_matchmaker() {
    let mm = FakeMatchmaker::start(|_, params| {
        Reply::Stream(vec![progress("queued", params), Step::Wait(Duration::from_secs(60))])
    });
    let mut app = bevygap_client_app(fast_config(&mm.url()));
    connect(&mut app);
    expect_step_until(&mut [&mut app], DEADLINE, "the join to be queued", |apps| {
        state(apps[0]) == BevygapClientState::WaitingForServer
    });
    cancel(&mut app);
    mm.wait_for_calls("matchmaker.cancel", 1);
    let cancel_call = &mm.calls_of("matchmaker.cancel")[0];
    assert_eq!(cancel_call.params["request_id"].as_str(), Some(mm.join_request_ids()[0].as_str()));
    // Cancelling drops the join's stream, so its HTTP call hangs up on the matchmaker: once it
    // has, nothing of that join (a late result, a failure, a retry) can reach the app any more.
    let request_id = mm.join_request_ids()[0].clone();
    expect_step_until(&mut [&mut app], DEADLINE, "the client to hang up the cancelled join's stream", |apps| {
        state(apps[0]) == BevygapClientState::Idle && mm.hung_up_joins().contains(&request_id)
    });
    assert_eq!(state(&app), BevygapClientState::Idle);
    assert_eq!(seen(&app).progress.last().map(|p| p.text.as_str()), Some("Cancelled"));
    assert!(seen(&app).failed.is_empty(), "a cancel is not a failure: {:?}", seen(&app).failed);
    assert_eq!(mm.calls_of(JOIN).len(), 1, "no retry after a cancel");
}

#[test]
fn refusals_fail_at_once_and_bad_settings_never_reach_the_network() {
    let mm = FakeMatchmaker::start(|n, params| match n {
        0 => Reply::Json(413, json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "too large"}})),
        1 => Reply::Stream(vec![Step::Result(json!({"status": "ready", "connect_token": "AAAA", "transport": "udp",
            "addresses": {"udp": "127.0.0.1:9"}, "request_id": params["request_id"], "session_id": "s",
            "token_expires_in_secs": 30}))]),
        _ => Reply::Json(
            200,
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "Method not found"}}),
        ),
    });
    let mut app = bevygap_client_app(fast_config(&mm.url()));
    let expected = [
        FailureCode::Matchmaker(ErrorCode::InvalidRequest),
        FailureCode::Protocol, // a token that is not a Lightyear token
        FailureCode::Protocol, // not our protocol
    ];
    for (n, code) in expected.into_iter().enumerate() {
        clear_seen(&mut app);
        connect(&mut app);
        assert_eq!(wait_failed(&mut app).code, code);
        assert_eq!(mm.calls_of(JOIN).len(), n + 1, "no retry");
    }
    app.world_mut().resource_mut::<BevygapClientConfig>().game = "bad game".into();
    clear_seen(&mut app);
    connect(&mut app);
    let failure = wait_failed(&mut app);
    assert_eq!(failure.code, FailureCode::Matchmaker(ErrorCode::InvalidRequest));
    assert!(failure.message.contains("game"), "{}", failure.message);
    assert_eq!(mm.calls_of(JOIN).len(), 3, "refused locally");
}

#[test]
fn client_side_timeouts_fail_with_their_own_codes() {
    // The join outlives its deadline: fail, and withdraw it from the matchmaker.
    let mm = FakeMatchmaker::start(|_, params| {
        Reply::Stream(vec![progress("queued", params), Step::Wait(Duration::from_secs(60))])
    });
    let mut config = fast_config(&mm.url());
    config.timeouts.join = Duration::from_secs(1);
    let mut app = bevygap_client_app(config);
    connect(&mut app);
    assert_eq!(wait_failed(&mut app).code, FailureCode::TimedOut);
    mm.wait_for_calls("matchmaker.cancel", 1);

    // The game server never answers: the Lightyear connection attempt is abandoned.
    let server = silent_udp_addr();
    let mm = FakeMatchmaker::start(move |_, params| Reply::Stream(vec![ready(server, params, 8)]));
    let mut config = fast_config(&mm.url());
    config.timeouts.server_connect = Duration::from_secs(1);
    let mut app = bevygap_client_app(config);
    connect(&mut app);
    let failure = wait_failed(&mut app);
    assert_eq!(failure.code, FailureCode::ConnectionFailed, "{}", failure.message);
    assert!(seen(&app).progress.iter().any(|p| p.state == BevygapClientState::Connecting));
}
