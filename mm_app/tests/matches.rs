//! Matches formed by profiles, as stepped Apps with manual time (no nats-server, no
//! processes): a pool is passed to the engine, each match is hosted as one unit on a server
//! of its own, and its record is written before any of its players gets a token.

use bevy::prelude::Entity;
use bevygap_matchmaker::harness::SteppedMatchmaker;
use bevygap_matchmaker::joins::{FailJoin, JoinPhase};
use bevygap_matchmaker::matching::ProfileSet;
use bevygap_matchmaker::nats_bridge::MemoryNats;
use bevygap_shared::ServerId;
use bevygap_shared::protocol::{ErrorCode, JoinProgress, JoinRequest, MatchFound};
use bevygap_shared::records::{MatchRecord, ServerStatus};

/// The profiles these tests play: a 2v2 with no rules, a duel ruled by elo, a 1v1-or-2v2 that
/// forms at its minimum after 20 s, and a duel ruled by latency.
const PROFILES: &str = r#"{
  "demo:1.0": [
    { "name": "two_v_two", "kind": "match", "teams": { "count": 2, "min_size": 2, "max_size": 2 },
      "max_wait_secs": 50 },
    { "name": "duel", "kind": "match", "teams": { "count": 2, "min_size": 1, "max_size": 1 },
      "max_wait_secs": 50,
      "rules": [ { "name": "skill", "type": "number_difference", "attribute": "elo", "max_difference": 100,
                   "expansions": [ { "after_secs": 10, "limit": 300 } ] } ] },
    { "name": "strict_duel", "kind": "match", "teams": { "count": 2, "min_size": 1, "max_size": 1 },
      "max_wait_secs": 50,
      "rules": [ { "name": "skill", "type": "number_difference", "attribute": "elo", "max_difference": 100 } ] },
    { "name": "small_ok", "kind": "match", "teams": { "count": 2, "min_size": 1, "max_size": 2 },
      "max_wait_secs": 20 },
    { "name": "ping_duel", "kind": "match", "teams": { "count": 2, "min_size": 1, "max_size": 1 },
      "max_wait_secs": 50,
      "rules": [ { "name": "ping", "type": "latencies", "max_latency": 80, "max_difference": 50 } ] }
  ]
}"#;

fn matchmaker() -> SteppedMatchmaker {
    SteppedMatchmaker::new(|config| {
        config.profiles = ProfileSet::from_json(PROFILES).expect("valid profiles");
        config.servers.capacity = 8;
    })
}

fn ticket(mode: &str) -> JoinRequest {
    JoinRequest { mode: Some(mode.into()), ..JoinRequest::new("demo", "1.0") }
}

fn with_elo(mode: &str, elo: f64) -> JoinRequest {
    let mut request = ticket(mode);
    request.attributes.numbers.insert("elo".into(), elo);
    request
}

fn in_party(mut request: JoinRequest, party: &str, size: u32) -> JoinRequest {
    request.party = Some(party.into());
    request.party_size = Some(size);
    request
}

/// The `match_found` message a join was sent, if any.
fn match_found(mm: &SteppedMatchmaker, join: Entity) -> Option<MatchFound> {
    mm.updates(join).into_iter().find_map(|p| match p {
        JoinProgress::MatchFound(found) => Some(found),
        _ => None,
    })
}

fn last_searching(mm: &SteppedMatchmaker, join: Entity) -> Option<(u32, u32)> {
    mm.updates(join).into_iter().rev().find_map(|p| match p {
        JoinProgress::Searching { stage, pool, .. } => Some((stage, pool)),
        _ => None,
    })
}

fn records(mm: &SteppedMatchmaker) -> Vec<MatchRecord> {
    mm.app.world().resource::<MemoryNats>().matches.values().cloned().collect()
}

fn failed_code(mm: &SteppedMatchmaker, join: Entity) -> Option<ErrorCode> {
    match mm.phase(join)? {
        JoinPhase::Failed { code, .. } => Some(code),
        _ => None,
    }
}

/// The server a join holds a seat on.
fn server_of(mm: &SteppedMatchmaker, join: Entity) -> Option<ServerId> {
    let (server, _) = mm.seat_of(join)?;
    Some(server)
}

#[test]
fn four_tickets_form_a_2v2_hosted_on_one_server_of_its_own_with_its_record_before_any_token() {
    let mut mm = matchmaker();
    let players: Vec<Entity> = (0..4).map(|_| mm.join_with(ticket("two_v_two"))).collect();
    let early = mm.join_with(ticket("two_v_two"));
    mm.advance(0.1);
    let found: Vec<MatchFound> = players.iter().map(|p| match_found(&mm, *p).expect("matched")).collect();
    assert!(found.iter().all(|f| f.match_id == found[0].match_id), "one match");
    assert_eq!(found.iter().filter(|f| f.team == 0).count(), 2, "two per team");
    for f in &found {
        assert_eq!(f.teammates.len(), 1);
        let mate = found.iter().find(|o| o.public_id == f.teammates[0]).expect("the teammate is in the match");
        assert_eq!(mate.team, f.team);
    }
    // Five waited; the fifth (as old as the others) stays in the pool, told so.
    let fifth = [players.clone(), vec![early]].concat().into_iter().find(|p| match_found(&mm, *p).is_none());
    let fifth = fifth.expect("one of five is left");
    assert!(last_searching(&mm, fifth).is_some(), "{:?}", mm.updates(fifth));
    let matched: Vec<Entity> = [players, vec![early]].concat().into_iter().filter(|p| *p != fifth).collect();

    let servers = mm.server_ids();
    assert_eq!(servers.len(), 1, "one server launched for the match");
    assert!(matched.iter().all(|p| server_of(&mm, *p).as_ref() == Some(&servers[0])));
    let record = records(&mm).pop().expect("the match record is written");
    assert_eq!(record.server_id, servers[0]);
    assert_eq!((record.profile.as_str(), record.teams.len()), ("two_v_two", 2));
    assert!(record.teams.iter().all(|team| team.len() == 2));
    let (_, client) = mm.seat_of(matched[0]).expect("a seat");
    assert!(record.teams.iter().flatten().any(|p| p.client_id == client), "players are named by client id");
    assert!(mm.app.world().resource::<MemoryNats>().grants.is_empty(), "no token before the server is ready");

    // A drop-in join of the same game never takes a seat on the match's server.
    let drop_in = mm.join("demo", "1.0");
    mm.report_server(&servers[0], ServerStatus::Ready);
    mm.step_n(3);
    for p in &matched {
        assert!(matches!(mm.phase(*p), Some(JoinPhase::Ready { .. })), "{:?}", mm.updates(*p));
    }
    let elsewhere = server_of(&mm, drop_in).expect("the drop-in player is placed");
    assert_ne!(elsewhere, servers[0], "the match server hosts only its match");
}

#[test]
fn players_of_a_match_whose_record_cannot_be_written_fail_without_a_token() {
    // A fleet server, ready and empty: the match is hosted there and could be given tokens
    // in the same tick, but the tokens wait for the record.
    let mut mm = SteppedMatchmaker::fleet(|config| {
        config.profiles = ProfileSet::from_json(PROFILES).expect("valid profiles");
    });
    mm.register_server("fleet-1", 4);
    mm.step();
    mm.app.world_mut().resource_mut::<MemoryNats>().fail_match_writes = true;
    let pair = [mm.join_with(with_elo("duel", 1000.0)), mm.join_with(with_elo("duel", 1000.0))];
    mm.advance(0.1);
    assert!(match_found(&mm, pair[0]).is_some());
    mm.step_n(3);
    for p in pair {
        assert_eq!(failed_code(&mm, p), Some(ErrorCode::Unavailable), "{:?}", mm.updates(p));
        assert!(mm.ready_payload(p).is_none());
    }
    assert!(mm.app.world().resource::<MemoryNats>().grants.is_empty(), "no grant was written");
}

#[test]
fn a_party_of_two_waits_for_its_second_member_and_is_never_split() {
    let mut mm = matchmaker();
    let first = mm.join_with(in_party(ticket("two_v_two"), "friends", 2));
    let solos: Vec<Entity> = (0..2).map(|_| mm.join_with(ticket("two_v_two"))).collect();
    mm.advance(0.1);
    assert!(match_found(&mm, first).is_none(), "three players and a party not yet whole: no 2v2");
    let (_, pool) = last_searching(&mm, solos[0]).expect("searching");
    assert_eq!(pool, 3, "the waiting party member counts in the pool");
    let second = mm.join_with(in_party(ticket("two_v_two"), "friends", 2));
    mm.advance(0.1);
    let (a, b) = (match_found(&mm, first).expect("matched"), match_found(&mm, second).expect("matched"));
    assert_eq!(a.team, b.team, "the party plays on one team");
    assert_eq!(a.teammates, std::slice::from_ref(&b.public_id));
    for solo in &solos {
        assert_ne!(match_found(&mm, *solo).expect("matched").team, a.team);
    }
}

#[test]
fn an_elo_expansion_lets_a_waiting_pair_match_after_its_time() {
    let mut mm = matchmaker();
    let (low, high) = (mm.join_with(with_elo("duel", 1000.0)), mm.join_with(with_elo("duel", 1250.0)));
    mm.advance(5.0);
    assert!(match_found(&mm, low).is_none(), "250 apart, while both are strict");
    assert_eq!(last_searching(&mm, low).map(|(stage, _)| stage), Some(0));
    mm.advance(4.8);
    assert!(match_found(&mm, high).is_none(), "still before the expansion");
    mm.advance(0.4);
    let (a, b) = (match_found(&mm, low).expect("matched after 10 s"), match_found(&mm, high).expect("matched"));
    assert_eq!(a.match_id, b.match_id);
    assert_ne!(a.team, b.team);
}

#[test]
fn a_match_forms_at_its_minimum_size_once_the_oldest_waited_max_wait() {
    let mut mm = matchmaker();
    let pair = [mm.join_with(ticket("small_ok")), mm.join_with(ticket("small_ok"))];
    mm.advance(19.0);
    assert!(match_found(&mm, pair[0]).is_none(), "a 2v2 is wanted until max_wait");
    mm.advance(1.5);
    let found = pair.map(|p| match_found(&mm, p).expect("a 1v1 at max_wait"));
    assert_ne!(found[0].team, found[1].team);
    assert!(found.iter().all(|f| f.teammates.is_empty()));
    assert_eq!(records(&mm)[0].teams.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1]);
}

#[test]
fn tickets_that_match_nothing_fail_with_no_match_at_their_deadline() {
    let mut mm = SteppedMatchmaker::new(|config| {
        config.profiles = ProfileSet::from_json(PROFILES).expect("valid profiles");
        config.joins.deadline = std::time::Duration::from_secs(30);
    });
    let (low, high) = (mm.join_with(with_elo("strict_duel", 1000.0)), mm.join_with(with_elo("strict_duel", 1500.0)));
    mm.advance(29.0);
    assert_eq!(mm.phase(low), Some(JoinPhase::Queued));
    mm.advance(1.5);
    assert_eq!((failed_code(&mm, low), failed_code(&mm, high)), (Some(ErrorCode::NoMatch), Some(ErrorCode::NoMatch)));
    assert!(mm.server_ids().is_empty(), "nothing was launched");
}

#[test]
fn a_latency_rule_picks_the_location_both_players_share() {
    let mut mm = matchmaker();
    let pinged = |latencies: &[(&str, f64)]| {
        let mut request = ticket("ping_duel");
        request.latencies = latencies.iter().map(|(l, ms)| (l.to_string(), *ms)).collect();
        request
    };
    mm.join_with(pinged(&[("eu", 20.0), ("us", 120.0)]));
    mm.join_with(pinged(&[("eu", 45.0), ("asia", 10.0)]));
    mm.advance(0.1);
    let record = records(&mm).pop().expect("matched");
    assert_eq!(record.location.as_deref(), Some("eu"), "the one location both can play at");
}

#[test]
fn a_player_leaving_before_the_match_starts_sends_the_others_back_to_search() {
    let mut mm = matchmaker();
    let (stays, leaves) = (mm.join_with(ticket("small_ok")), mm.join_with(ticket("small_ok")));
    let (third, fourth) = (mm.join_with(ticket("small_ok")), mm.join_with(ticket("small_ok")));
    mm.advance(0.1);
    assert!(match_found(&mm, stays).is_some());
    let server = mm.server_ids().pop().expect("launched");
    mm.app.world_mut().write_message(FailJoin { join: leaves, error: ErrorCode::Cancelled.into() });
    mm.step_n(2);
    for back in [stays, third, fourth] {
        assert_eq!(mm.phase(back), Some(JoinPhase::Queued), "{:?}", mm.updates(back));
        assert!(
            matches!(mm.updates(back).last(), Some(JoinProgress::Searching { pool: 3, .. })),
            "searching again, the three of them in the pool: {:?}",
            mm.updates(back)
        );
    }
    assert!(records(&mm).is_empty(), "the broken match's record is deleted");
    let (_, seats) = mm.server_state(&server).expect("the server stays, empty");
    assert_eq!(seats.taken(), 0, "every seat was given back");
    // Searching again with the age it had: the oldest is matched again once max_wait allows
    // a smaller match, in a new match.
    let first_match = match_found(&mm, stays).expect("matched before").match_id;
    mm.advance(21.0);
    let found: Vec<String> = mm
        .updates(stays)
        .into_iter()
        .filter_map(|p| match p {
            JoinProgress::MatchFound(found) => Some(found.match_id),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 2, "{:?}", mm.updates(stays));
    assert_ne!(found[1], first_match);
}

#[test]
fn a_replica_taking_over_keeps_servers_to_the_matches_it_finds_and_deletes_records_left_over() {
    let mut mm = SteppedMatchmaker::fleet(|config| {
        config.profiles = ProfileSet::from_json(PROFILES).expect("valid profiles");
    });
    let record = |server: &str| MatchRecord {
        match_id: format!("m-{server}"),
        server_id: ServerId::new(server).expect("id"),
        game: bevygap_shared::protocol::GameName::new("demo").expect("name"),
        version: bevygap_shared::protocol::GameVersion::new("1.0").expect("version"),
        profile: "duel".into(),
        teams: vec![Vec::new(), Vec::new()],
        location: None,
        shared: Default::default(),
        formed_at_ms: 0,
    };
    let (running, gone) = (record("fleet-1"), record("fleet-9"));
    {
        let mut store = mm.app.world_mut().resource_mut::<MemoryNats>();
        store.matches.insert(running.server_id.clone(), running.clone());
        store.matches.insert(gone.server_id.clone(), gone.clone());
    }
    let state = bevygap_matchmaker::nats_bridge::InheritedState {
        matches: vec![running.clone(), gone.clone()],
        ..Default::default()
    };
    mm.app.world_mut().write_message(bevygap_matchmaker::nats_bridge::TakenOver(Box::new(state)));
    mm.step();
    mm.register_server("fleet-1", 4);
    mm.step_n(2);
    let drop_in = mm.join("demo", "1.0");
    mm.step_n(2);
    assert_eq!(mm.phase(drop_in), Some(JoinPhase::Queued), "the match's server seats no one else");
    mm.register_server("fleet-2", 4);
    mm.step_n(2);
    assert_eq!(server_of(&mm, drop_in).map(|s| s.to_string()).as_deref(), Some("fleet-2"));
    mm.advance(50.0);
    let left: Vec<ServerId> = mm.app.world().resource::<MemoryNats>().matches.keys().cloned().collect();
    assert_eq!(left, [running.server_id], "the record whose server never came is deleted");
}
