//! The lifecycle of joins, tokens and servers as stepped Apps with manual time: no
//! nats-server, no processes (the fake provider and the in-memory NATS stand-in), so each case
//! runs in milliseconds however long the timers it crosses.

use bevygap_matchmaker::harness::SteppedMatchmaker;
use bevygap_matchmaker::joins::{Join, JoinPhase, MAX_LOST_SERVERS};
use bevygap_matchmaker::servers::ServerPhase;
use bevygap_shared::ServerId;
use bevygap_shared::protocol::{ErrorCode, JoinProgress};
use bevygap_shared::records::RequestRecord;
use bevygap_shared::records::{ClientGrant, ServerCommand, ServerStatus, SessionRecord, now_ms};

/// A matchmaker with one ready server holding one ready join; returns (server, join).
fn one_ready_player(mm: &mut SteppedMatchmaker) -> (ServerId, bevy::prelude::Entity) {
    let join = mm.join("demo", "1.0");
    mm.step();
    let server = mm.server_ids().pop().expect("a server was launched");
    mm.report_server(&server, ServerStatus::Ready);
    mm.step_n(2);
    assert!(matches!(mm.phase(join), Some(JoinPhase::Ready { .. })), "{:?}", mm.updates(join));
    (server, join)
}

/// The same, with the player connected; returns (server, join, client id).
fn one_connected_player(mm: &mut SteppedMatchmaker) -> (ServerId, bevy::prelude::Entity, u64) {
    let (server, join) = one_ready_player(mm);
    let (_, client) = mm.seat_of(join).expect("a seat");
    mm.player_connects(&server, client);
    mm.step();
    (server, join, client)
}

fn failed_code(mm: &SteppedMatchmaker, join: bevy::prelude::Entity) -> Option<ErrorCode> {
    match mm.phase(join)? {
        JoinPhase::Failed { code, .. } => Some(code),
        _ => None,
    }
}

#[test]
fn a_join_waits_for_its_new_server_and_gets_a_token_once_the_grant_is_stored() {
    let mut mm = SteppedMatchmaker::new(|_| {});
    let join = mm.join("demo", "1.0");
    mm.step();
    assert_eq!(mm.provider.log().launched.len(), 1, "one server launched");
    let localhost: std::net::IpAddr = [127, 0, 0, 1].into();
    assert_eq!(mm.provider.log().launched[0].player_ips, [localhost], "near the player it is for");
    assert!(matches!(mm.phase(join), Some(JoinPhase::WaitingForServer { .. })));
    let server = mm.server_ids()[0].clone();
    mm.report_server(&server, ServerStatus::Ready);
    mm.step();
    assert!(matches!(mm.phase(join), Some(JoinPhase::IssuingToken { .. })), "waits for the grant");
    assert!(mm.ready_payload(join).is_none(), "no token before the grant is stored");
    mm.step();
    let ready = mm.ready_payload(join).expect("ready");
    let seat = mm.phase(join).and_then(|p| p.seat()).expect("seat");
    assert!(mm.nats().grants.contains_key(&(server.clone(), seat.client_id)), "grant stored before the answer");
    assert!(mm.nats().sessions.contains_key(&ready.session_id));
    let statuses: Vec<&str> = mm.updates(join).iter().map(JoinProgress::status).collect();
    assert_eq!(statuses, ["queued", "server_starting", "ready"]);
}

#[test]
fn a_server_is_filled_before_a_second_is_launched() {
    let mut mm = SteppedMatchmaker::new(|c| c.servers.capacity = 2);
    let joins: Vec<_> = (0..3).map(|_| mm.join("demo", "1.0")).collect();
    mm.step();
    let servers = mm.server_ids();
    assert_eq!(servers.len(), 2, "two servers for three players at two seats each");
    let taken: Vec<u32> = servers.iter().map(|s| mm.server_state(s).unwrap().1.taken()).collect();
    assert_eq!(taken, [2, 1]);
    for s in &servers {
        mm.report_server(s, ServerStatus::Ready);
    }
    mm.step_n(2);
    assert!(joins.iter().all(|j| mm.ready_payload(*j).is_some()));
    let fourth = mm.join("demo", "1.0");
    mm.step_n(3);
    assert_eq!(mm.provider.log().launched.len(), 2, "the free seat is used, nothing new launched");
    assert!(mm.ready_payload(fourth).is_some());
}

#[test]
fn an_unclaimed_token_frees_its_seat_after_expiry_and_grace() {
    let mut mm = SteppedMatchmaker::new(|c| c.tokens.ttl_secs = 10);
    let (server, join) = one_ready_player(&mut mm);
    let ready = mm.ready_payload(join).unwrap();
    mm.advance(14.0);
    assert_eq!(mm.server_state(&server).unwrap().1.taken(), 1, "kept through the claim grace");
    mm.advance(2.0);
    assert_eq!(mm.server_state(&server).unwrap().1.taken(), 0, "freed after expiry + grace");
    assert!(mm.nats().grants.is_empty(), "grant deleted");
    assert!(!mm.nats().sessions.contains_key(&ready.session_id), "session deleted");
}

#[test]
fn a_connected_player_keeps_the_seat_until_they_leave_then_the_empty_server_stops() {
    let mut mm = SteppedMatchmaker::new(|c| {
        c.tokens.ttl_secs = 1;
        c.servers.empty_grace = std::time::Duration::from_secs(30);
    });
    let (server, _, client) = one_connected_player(&mut mm);
    assert_eq!(mm.server_state(&server).unwrap().1.occupied(), 1);
    mm.advance(60.0);
    assert_eq!(mm.server_state(&server).unwrap().1.taken(), 1, "a claimed token keeps its seat past expiry");
    assert!(mm.provider.log().stopped.is_empty());

    mm.player_leaves(&server, client);
    mm.step();
    assert_eq!(mm.server_state(&server).unwrap().1.taken(), 0);
    mm.advance(29.0);
    assert_eq!(mm.server_state(&server).unwrap().0, ServerPhase::Ready, "kept through the empty grace");
    mm.advance(2.0);
    assert_eq!(mm.provider.log().stopped, std::slice::from_ref(&server), "stopped once");
    assert!(mm.nats().controls.contains(&(server.clone(), ServerCommand::Shutdown)));
    mm.step_n(2);
    assert!(mm.server(&server).is_none(), "forgotten once its process exited");
    assert!(mm.nats().deleted_servers.contains(&server));
    assert!(mm.nats().grants.is_empty() && mm.nats().sessions.is_empty());
}

#[test]
fn a_server_that_never_reports_ready_is_given_up_and_its_join_placed_again_then_failed() {
    let mut mm = SteppedMatchmaker::new(|c| {
        c.servers.start_timeout = std::time::Duration::from_secs(45);
        c.joins.deadline = std::time::Duration::from_secs(600);
    });
    let join = mm.join("demo", "1.0");
    mm.step();
    for round in 1..MAX_LOST_SERVERS {
        mm.advance(46.0);
        assert_eq!(mm.provider.log().launched.len() as u32, round + 1, "a new server for the re-queued join");
        assert!(matches!(mm.phase(join), Some(JoinPhase::WaitingForServer { .. })));
        assert!(mm.updates(join).iter().any(|p| p.status() == "finding_server"));
    }
    mm.advance(46.0);
    assert_eq!(failed_code(&mm, join), Some(ErrorCode::ServerFailed), "gives up after {MAX_LOST_SERVERS} lost servers");
    mm.step_n(2);
    assert!(mm.provider.log().running.is_empty(), "every timed-out server was stopped");
    assert!(mm.server_ids().is_empty());
}

#[test]
fn a_crashed_server_is_cleaned_up_and_a_join_waiting_on_a_crashed_one_is_placed_again() {
    let mut mm = SteppedMatchmaker::new(|c| c.servers.capacity = 1);
    let (server, _, client) = one_connected_player(&mut mm);
    mm.crash(&server, "process exited: signal 9");
    mm.step_n(2);
    assert!(mm.server(&server).is_none(), "the crashed server is forgotten");
    assert!(mm.nats().deleted_servers.contains(&server), "its record removed");
    assert!(mm.nats().deleted_players.contains(&(server.clone(), client)), "its player records removed");
    assert!(mm.nats().grants.is_empty() && mm.nats().sessions.is_empty(), "grant and session removed");

    let waiting = mm.join("demo", "1.0");
    mm.step();
    let (starting, _) = mm.seat_of(waiting).expect("placed on a new server");
    mm.crash(&starting, "process exited: status 1");
    mm.step_n(2);
    let (replacement, _) = mm.seat_of(waiting).expect("placed again");
    assert_ne!(replacement, starting);
    assert_eq!(mm.provider.log().launched.len(), 3);
    let statuses: Vec<&str> = mm.updates(waiting).iter().map(JoinProgress::status).collect();
    assert_eq!(statuses, ["queued", "server_starting", "finding_server", "server_starting"]);
}

#[test]
fn a_silent_server_takes_no_one_new_and_is_given_up_after_the_grace() {
    let mut mm = SteppedMatchmaker::new(|c| {
        c.servers.capacity = 4;
        c.servers.silence_grace = std::time::Duration::from_secs(60);
    });
    let (server, _) = one_ready_player(&mut mm);
    mm.server_record_gone(&server);
    mm.step();
    let next = mm.join("demo", "1.0");
    mm.step();
    assert_eq!(mm.provider.log().launched.len(), 2, "a held server gets no new player");
    assert_eq!(mm.server_state(&server).unwrap().1.taken(), 1);
    mm.report_server(&server, ServerStatus::Ready);
    mm.step();
    assert_eq!(mm.server_state(&server).unwrap().0, ServerPhase::Ready, "it reported again: back in service");
    mm.server_record_gone(&server);
    mm.step();
    mm.advance(61.0);
    assert!(mm.server(&server).is_none(), "given up past the grace");
    assert!(mm.provider.log().stopped.contains(&server));
    let _ = next;
}

#[test]
fn cancelling_or_failing_a_join_gives_its_seat_back() {
    let mut mm = SteppedMatchmaker::new(|c| c.servers.capacity = 1);
    let join = mm.join("demo", "1.0");
    mm.step();
    let server = mm.server_ids()[0].clone();
    assert_eq!(mm.server_state(&server).unwrap().1.taken(), 1);
    mm.app.world_mut().write_message(bevygap_matchmaker::joins::FailJoin { join, error: ErrorCode::Cancelled.into() });
    mm.step();
    assert_eq!(failed_code(&mm, join), Some(ErrorCode::Cancelled));
    assert_eq!(mm.server_state(&server).unwrap().1.taken(), 0, "the seat is free again");
}

#[test]
fn a_grant_that_cannot_be_stored_fails_the_join_with_unavailable_and_frees_everything() {
    let mut mm = SteppedMatchmaker::new(|_| {});
    let join = mm.join("demo", "1.0");
    mm.step();
    let server = mm.server_ids()[0].clone();
    mm.app.world_mut().resource_mut::<bevygap_matchmaker::nats_bridge::MemoryNats>().fail_grant_writes = true;
    mm.report_server(&server, ServerStatus::Ready);
    mm.step_n(3);
    assert_eq!(failed_code(&mm, join), Some(ErrorCode::Unavailable));
    assert_eq!(mm.server_state(&server).unwrap().1.taken(), 0);
    assert!(mm.nats().grants.is_empty());
}

#[test]
fn at_the_server_limit_a_join_waits_then_fails_with_no_capacity_and_a_placed_one_with_timeout() {
    let mut mm = SteppedMatchmaker::new(|c| {
        c.servers.capacity = 1;
        c.servers.max_servers = 1;
        c.joins.deadline = std::time::Duration::from_secs(60);
        c.servers.start_timeout = std::time::Duration::from_secs(600);
    });
    let placed = mm.join("demo", "1.0");
    let queued = mm.join("demo", "1.0");
    mm.step();
    assert_eq!(mm.provider.log().launched.len(), 1, "never above the limit");
    assert_eq!(mm.phase(queued), Some(JoinPhase::Queued));
    mm.advance(61.0);
    assert_eq!(failed_code(&mm, queued), Some(ErrorCode::NoCapacity));
    assert_eq!(failed_code(&mm, placed), Some(ErrorCode::Timeout), "its server never got ready");
    let server = mm.server_ids()[0].clone();
    assert_eq!(mm.server_state(&server).unwrap().1.taken(), 0);
}

#[test]
fn a_draining_server_gets_no_new_players() {
    let mut mm = SteppedMatchmaker::new(|c| c.servers.capacity = 4);
    let (server, _) = one_ready_player(&mut mm);
    mm.report_server(&server, ServerStatus::Draining);
    mm.step();
    assert_eq!(mm.server_state(&server).unwrap().0, ServerPhase::Draining);
    mm.join("demo", "1.0");
    mm.step();
    assert_eq!(mm.provider.log().launched.len(), 2);
    assert_eq!(mm.server_state(&server).unwrap().1.taken(), 1);
}

#[test]
fn finished_joins_are_forgotten_after_the_resume_window() {
    let mut mm = SteppedMatchmaker::new(|_| {});
    let (_, join) = one_ready_player(&mut mm);
    mm.advance(bevygap_matchmaker::joins::RESUME_WINDOW_SECS - 1.0);
    assert!(mm.phase(join).is_some(), "kept for retries");
    mm.advance(2.0);
    assert!(mm.phase(join).is_none(), "forgotten");
    assert!(mm.app.world().resource::<bevygap_matchmaker::joins::RequestIndex>().0.is_empty());
}

#[test]
fn a_server_that_stops_heartbeating_takes_no_one_new_and_is_given_up() {
    let mut mm = SteppedMatchmaker::new(|c| {
        c.servers.capacity = 4;
        c.servers.heartbeat_timeout = std::time::Duration::from_secs(15);
        c.servers.silence_grace = std::time::Duration::from_secs(60);
    });
    let (server, ..) = one_connected_player(&mut mm);
    mm.advance(60.0);
    assert_eq!(mm.server_state(&server).unwrap().0, ServerPhase::Ready, "heartbeats keep it ready");
    mm.mute(&server);
    mm.advance(16.0);
    assert!(matches!(mm.server_state(&server).unwrap().0, ServerPhase::Unreported { .. }), "held");
    mm.join("demo", "1.0");
    mm.step();
    assert_eq!(mm.provider.log().launched.len(), 2, "the silent server gets no new player");
    mm.advance(61.0);
    assert!(mm.server(&server).is_none(), "given up");
    assert!(mm.provider.log().stopped.contains(&server), "and stopped, since this provider started it");
}

// A fleet: servers started elsewhere register themselves; the matchmaker never starts or stops
// one, spreads players over them, and calls for capacity when they are full.

#[test]
fn a_fleet_spreads_players_by_free_seats_and_never_launches_or_stops() {
    let mut mm = SteppedMatchmaker::fleet(|c| c.servers.empty_grace = std::time::Duration::from_secs(5));
    let a = mm.register_server("fleet-a", 4);
    let b = mm.register_server("fleet-b", 2);
    mm.step();
    let joins: Vec<_> = (0..4).map(|_| mm.join("demo", "1.0")).collect();
    mm.step_n(3);
    assert!(joins.iter().all(|j| mm.ready_payload(*j).is_some()));
    let taken = |mm: &SteppedMatchmaker, id| mm.server_state(id).unwrap().1.taken();
    assert_eq!((taken(&mm, &a), taken(&mm, &b)), (3, 1), "each join went to the server with the most free seats");
    assert!(mm.provider.log().launched.is_empty(), "a fleet provider never launches");
    for join in &joins {
        let (server, client) = mm.seat_of(*join).unwrap();
        mm.player_connects(&server, client);
        mm.step();
        mm.player_leaves(&server, client);
    }
    mm.advance(60.0);
    assert_eq!(mm.server_state(&a).unwrap().0, ServerPhase::Ready, "empty fleet servers keep running");
    assert!(mm.provider.log().stopped.is_empty());
    assert!(mm.nats().controls.is_empty(), "no shutdown sent to a fleet server");
}

#[test]
fn a_record_from_another_kind_of_provider_is_never_adopted_nor_given_players() {
    let mut mm = SteppedMatchmaker::fleet(|_| {});
    let forged_id = bevygap_shared::ServerId::new("local-00000000000000ff").unwrap();
    let mut forged = mm.record(&forged_id, ServerStatus::Ready, 8);
    forged.provider = "local".into();
    mm.app.world_mut().write_message(bevygap_matchmaker::nats_bridge::ServerReported(Box::new(forged)));
    mm.step();
    assert!(mm.server_state(&forged_id).is_none(), "a fleet matchmaker adopts only fleet servers");
    let join = mm.join("demo", "1.0");
    mm.step_n(3);
    assert!(mm.ready_payload(join).is_none(), "nobody is sent to it");
}

#[test]
fn a_full_fleet_calls_for_capacity_then_answers_no_capacity_after_the_wait() {
    let mut mm = SteppedMatchmaker::fleet(|c| c.servers.capacity_wait = std::time::Duration::from_secs(20));
    mm.register_server("fleet-a", 1);
    mm.step();
    let seated = mm.join("demo", "1.0");
    mm.step_n(3);
    assert!(mm.ready_payload(seated).is_some());
    let waiting = mm.join("demo", "1.0");
    mm.step();
    assert_eq!(mm.phase(waiting), Some(JoinPhase::Queued));
    let calls = &mm.nats().capacity_calls;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!((calls[0].0.label(), calls[0].1), ("demo:1.0".to_string(), 1));
    mm.step_n(3);
    assert_eq!(mm.nats().capacity_calls.len(), 1, "not repeated every tick");
    mm.advance(6.0);
    assert_eq!(mm.nats().capacity_calls.len(), 2, "repeated while players still wait");

    let late = mm.register_server("fleet-b", 1);
    mm.step_n(3);
    assert!(mm.ready_payload(waiting).is_some(), "the new server takes the waiting player");
    assert_eq!(mm.seat_of(waiting).unwrap().0, late);

    let unlucky = mm.join("demo", "1.0");
    mm.advance(21.0);
    assert_eq!(failed_code(&mm, unlucky), Some(ErrorCode::NoCapacity));
}

#[test]
fn a_silent_fleet_server_is_forgotten_not_stopped_and_a_draining_one_gets_no_one_new() {
    let mut mm = SteppedMatchmaker::fleet(|c| {
        c.servers.heartbeat_timeout = std::time::Duration::from_secs(15);
        c.servers.silence_grace = std::time::Duration::from_secs(10);
    });
    let dead = mm.register_server("fleet-dead", 4);
    let draining = mm.register_server("fleet-draining", 4);
    let healthy = mm.register_server("fleet-healthy", 1);
    mm.step();
    mm.report_server(&draining, ServerStatus::Draining);
    mm.mute(&dead); // SIGKILLed: no more heartbeats
    mm.advance(16.0);
    let join = mm.join("demo", "1.0");
    mm.step_n(3);
    assert_eq!(mm.seat_of(join).unwrap().0, healthy, "neither the silent nor the draining server");
    mm.advance(11.0);
    assert!(mm.server(&dead).is_none(), "the silent server is forgotten");
    assert!(mm.nats().deleted_servers.contains(&dead), "its record cleaned");
    assert!(mm.provider.log().stopped.is_empty(), "but never stopped: it is not ours");
    assert_eq!(mm.server_state(&draining).unwrap().0, ServerPhase::Draining);
}

#[test]
fn client_ids_fit_in_a_javascript_number() {
    let max_safe = (1u64 << 53) - 1;
    assert!((0..10_000).map(|_| bevygap_matchmaker::joins::new_client_id()).all(|id| id != 0 && id <= max_safe));
    let mut mm = SteppedMatchmaker::new(|_| {});
    let (_, join) = one_ready_player(&mut mm);
    assert!(mm.seat_of(join).unwrap().1 <= max_safe, "the dashboard and browsers read it exactly");
}

#[test]
fn ending_a_connected_players_token_keeps_the_seat_until_the_server_says_the_player_left() {
    let mut mm = SteppedMatchmaker::new(|c| c.servers.capacity = 1);
    let (server, join, client) = one_connected_player(&mut mm);
    let token = mm.app.world().resource::<bevygap_matchmaker::tokens::TokenIndex>().0[&client];
    // What `admin.delete_session` does: the token ends while its player is still playing.
    mm.app
        .world_mut()
        .write_message(bevygap_matchmaker::tokens::TokenEnded { token, reason: "deleted by an operator" });
    mm.step();
    assert_eq!(mm.server_state(&server).unwrap().1.taken(), 1, "the player still sits there");
    let next = mm.join("demo", "1.0");
    mm.step();
    assert_ne!(mm.seat_of(next).unwrap().0, server, "the next player is not sent to a full server");
    mm.player_leaves(&server, client);
    mm.step();
    assert_eq!(mm.server_state(&server).unwrap().1.taken(), 0, "freed once the server says the player left");
    let _ = join;
}

#[test]
fn removals_missed_while_nats_was_unreachable_are_reconciled_after_the_reconnect() {
    use bevygap_shared::nats::LinkStatus;
    let mut mm = SteppedMatchmaker::new(|c| c.servers.capacity = 4);
    let (kept, _, gone_player) = one_connected_player(&mut mm);
    let kept_player = {
        let join = mm.join("demo", "1.0");
        mm.step_n(3);
        let (_, client) = mm.seat_of(join).unwrap();
        mm.player_connects(&kept, client);
        mm.step();
        client
    };
    let other = mm.join("demo", "1.0");
    mm.step_n(3);
    assert_eq!(mm.seat_of(other).unwrap().0, kept);

    mm.nats_link(LinkStatus::Disconnected);
    mm.step();
    mm.nats_link(LinkStatus::Connected);
    // While NATS was down: `gone_player` left (its record's delete marker is lost).
    mm.nats_snapshot(&[&kept], &[(&kept, kept_player)]);
    mm.step_n(2);
    let (phase, seats) = mm.server_state(&kept).unwrap();
    assert_eq!(phase, ServerPhase::Ready, "a server still in the bucket is untouched");
    assert_eq!(seats.seat(gone_player), None, "the player who left meanwhile frees the seat");
    assert!(seats.seat(kept_player).is_some(), "the player still there keeps it");

    // Now its record is missing too (the server died while NATS was down).
    mm.mute(&kept);
    mm.nats_link(LinkStatus::Disconnected);
    mm.step();
    mm.nats_link(LinkStatus::Connected);
    mm.nats_snapshot(&[], &[]);
    mm.step_n(2);
    assert!(matches!(mm.server_state(&kept).unwrap().0, ServerPhase::Unreported { .. }), "held, then given up");
}

#[test]
fn while_nats_is_down_nothing_is_launched_and_waiting_joins_fail_fast() {
    use bevygap_shared::nats::LinkStatus;
    let mut mm = SteppedMatchmaker::new(|_| {});
    mm.nats_link(LinkStatus::Disconnected);
    mm.step();
    let join = mm.join("demo", "1.0");
    mm.step_n(3);
    assert!(mm.provider.log().launched.is_empty(), "no server launched while NATS is down");
    assert_eq!(mm.phase(join), Some(JoinPhase::Queued), "a blip does not fail it at once");
    mm.advance(4.0);
    assert_eq!(failed_code(&mm, join), Some(ErrorCode::Unavailable), "failed fast, not after the deadline");
    mm.nats_link(LinkStatus::Connected);
    let later = mm.join("demo", "1.0");
    mm.step();
    assert_eq!(mm.provider.log().launched.len(), 1, "launching resumes with the link");
    assert!(matches!(mm.phase(later), Some(JoinPhase::WaitingForServer { .. })));
}

// A restart: tokens an earlier matchmaker process issued are taken over.

fn earlier_grant(server: &ServerId, client_id: u64, session_id: &str, expires_in_ms: u64) -> ClientGrant {
    ClientGrant {
        client_id,
        server_id: server.clone(),
        session_id: session_id.into(),
        game: bevygap_shared::protocol::GameName::new("demo").unwrap(),
        version: bevygap_shared::protocol::GameVersion::new("1.0").unwrap(),
        issued_at_ms: now_ms(),
        token_expires_at_ms: now_ms() + expires_in_ms,
    }
}

fn earlier_session(server: &ServerId, session_id: &str, clients: Vec<u64>) -> SessionRecord {
    SessionRecord {
        session_id: session_id.into(),
        server_id: server.clone(),
        game: bevygap_shared::protocol::GameName::new("demo").unwrap(),
        version: bevygap_shared::protocol::GameVersion::new("1.0").unwrap(),
        client_ids: clients,
        created_at_ms: now_ms(),
        provider_session: None,
        request_id: None,
    }
}

#[test]
fn after_a_restart_earlier_tokens_hold_their_seats_until_they_expire_and_orphans_are_deleted() {
    let mut mm = SteppedMatchmaker::new(|c| {
        c.servers.start_timeout = std::time::Duration::from_secs(10);
        c.servers.max_servers = 1;
    });
    let server = mm.register_server("fake-earlier", 4);
    let gone = ServerId::new("fake-gone").unwrap();
    mm.earlier_process_issued(
        vec![
            earlier_grant(&server, 11, "s-kept", 10_000),
            earlier_grant(&server, 12, "s-kept", 10_000),
            earlier_grant(&gone, 13, "s-gone", 10_000),
        ],
        vec![
            earlier_session(&server, "s-kept", vec![11, 12]),
            earlier_session(&gone, "s-gone", vec![13]),
            earlier_session(&server, "s-orphan", vec![]),
        ],
    );
    mm.step_n(2);
    assert_eq!(mm.server_state(&server).unwrap().1.taken(), 2, "both earlier seats are held again");
    // Player 11 connects with its earlier token; 12 never does.
    mm.player_connects(&server, 11);
    mm.step();
    // A new join fills the remaining seats only.
    let joins: Vec<_> = (0..3).map(|_| mm.join("demo", "1.0")).collect();
    mm.step_n(3);
    assert_eq!(joins.iter().filter(|j| mm.ready_payload(**j).is_some()).count(), 2, "two seats were left");

    // Past the start timeout the grant of the server that never came back is deleted, with
    // its session and the orphan session.
    mm.advance(11.0);
    let nats = mm.nats();
    assert!(!nats.grants.contains_key(&(gone.clone(), 13)), "{:?}", nats.grants.keys());
    assert!(!nats.sessions.contains_key("s-gone") && !nats.sessions.contains_key("s-orphan"));
    // The unused earlier token expired (10 s + the claim grace): its grant and seat are given
    // back; the connected player's stays.
    mm.advance(5.0);
    let nats = mm.nats();
    assert!(!nats.grants.contains_key(&(server.clone(), 12)), "the unused earlier grant expired");
    assert!(nats.grants.contains_key(&(server.clone(), 11)), "the connected player's grant stays");
    assert!(nats.sessions.contains_key("s-kept"));
    let book = mm.server_state(&server).unwrap().1;
    assert!(book.clients().any(|c| c == 11) && !book.clients().any(|c| c == 12), "{book:?}");
}

// A provider that holds each seat itself (Edgegap's sessions mode).

#[test]
fn with_a_provider_that_holds_seats_a_token_waits_for_the_seat_and_a_refused_seat_fails_its_join() {
    let mut mm = SteppedMatchmaker::confirming_seats(|_| {});
    let server = mm.register_server("fake-seats", 4);
    mm.step();
    let first = mm.join("demo", "1.0");
    mm.step_n(3);
    let (_, client) = mm.seat_of(first).expect("a seat");
    assert_eq!(mm.provider.log().seats_taken, vec![(server.clone(), client)], "the provider is asked once");
    assert!(mm.ready_payload(first).is_none(), "no token before the provider holds the seat");
    mm.provider.confirm_seat(&server, client, "session-1");
    mm.step_n(3);
    assert!(mm.ready_payload(first).is_some(), "a token once it does");

    let second = mm.join("demo", "1.0");
    mm.step_n(3);
    let (_, refused) = mm.seat_of(second).expect("a seat");
    mm.provider.refuse_seat(&server, refused, "Unprocessable");
    mm.step_n(3);
    assert_eq!(failed_code(&mm, second), Some(ErrorCode::ServerFailed));
    assert!(
        mm.provider.log().seats_freed.contains(&(server.clone(), refused, None)),
        "the refused seat is given back: {:?}",
        mm.provider.log().seats_freed
    );

    // The first player's token expires unclaimed: its seat goes back under the confirmed id.
    mm.advance(60.0);
    assert!(mm.provider.log().seats_freed.contains(&(server.clone(), client, Some("session-1".into()))));
}

// Joins in flight are kept in the `requests` bucket for the next owner.

/// A join recorded while it waited for its server, then answered: its request id and the
/// record it had while waiting.
fn recorded_then_answered(mm: &mut SteppedMatchmaker) -> (String, RequestRecord) {
    let join = mm.join("demo", "1.0");
    mm.step();
    let request_id = mm.app.world().get::<Join>(join).expect("the join").request_id.to_string();
    let record = mm.nats().requests.get(&request_id).cloned().expect("the waiting join is recorded");
    let server = mm.server_ids()[0].clone();
    mm.report_server(&server, ServerStatus::Ready);
    mm.step_n(3);
    assert!(mm.ready_payload(join).is_some());
    (request_id, record)
}

#[test]
fn a_waiting_join_is_recorded_until_answered_and_one_an_earlier_owner_left_is_placed_again_under_its_id() {
    let mut mm = SteppedMatchmaker::new(|_| {});
    let (request_id, record) = recorded_then_answered(&mut mm);
    assert_eq!((record.game.as_str(), record.requester_ip.as_str()), ("demo", "127.0.0.1"));
    assert!(mm.nats().requests.is_empty(), "an answered join's record is removed");

    // Another owner takes over with that record (and one past its deadline) in NATS.
    let mut next = SteppedMatchmaker::new(|_| {});
    let late = RequestRecord { request_id: "late-join-0001".into(), deadline_ms: 1, ..record.clone() };
    next.earlier_owner_left_waiting(vec![record.clone(), late]);
    next.step_n(2);
    let resumed = next.join_by_request(&request_id).expect("the waiting join is queued again under its id");
    assert!(matches!(next.phase(resumed), Some(JoinPhase::WaitingForServer { .. })), "and placed at once");
    assert_eq!(next.provider.log().launched.len(), 1, "on a server launched for it");
    assert!(next.join_by_request("late-join-0001").is_none(), "a join past its deadline is not");
    assert!(!next.nats().requests.contains_key("late-join-0001"), "and its record is removed");
}

#[test]
fn a_join_answered_just_before_its_owner_died_is_not_queued_again_by_the_next_owner() {
    let mut mm = SteppedMatchmaker::new(|_| {});
    let (request_id, record) = recorded_then_answered(&mut mm);
    let session = mm
        .nats()
        .sessions
        .values()
        .find(|s| s.request_id.as_deref() == Some(request_id.as_str()))
        .cloned()
        .expect("the session names the join it answered");

    // The owner died after answering, before the removal of the join's record landed.
    let mut next = SteppedMatchmaker::new(|_| {});
    next.app
        .world_mut()
        .resource_mut::<bevygap_matchmaker::nats_bridge::MemoryNats>()
        .requests
        .insert(request_id.clone(), record.clone());
    let state = bevygap_matchmaker::nats_bridge::InheritedState {
        sessions: vec![session],
        requests: vec![record],
        ..Default::default()
    };
    next.app.world_mut().write_message(bevygap_matchmaker::nats_bridge::TakenOver(Box::new(state)));
    next.step_n(2);
    assert!(next.join_by_request(&request_id).is_none(), "not queued again");
    assert!(next.provider.log().launched.is_empty(), "no server started for it");
    assert!(!next.nats().requests.contains_key(&request_id), "its stale record is removed");
}
