//! Placing a formed match as one unit: one server that hosts nothing else, and a seat there
//! for every player, or none ([`crate::placement::plan_matches`] decides). The match record
//! is then written for the game server, and its players' tokens wait until NATS has it.

use std::net::IpAddr;

use bevy::prelude::*;
use bevygap_shared::ServerId;
use bevygap_shared::protocol::{ErrorCode, JoinError};
use bevygap_shared::records::{MatchPlayer, MatchRecord, now_ms};

use super::components::GameMatch;
use crate::clock::now;
use crate::joins::systems::{Launched, PlacementServers, live_servers};
use crate::joins::{AwaitingMatchRecord, FailJoin, Join, JoinPhase, JoinUpdates, Settled, reserve_seat};
use crate::nats_bridge::{MatchStored, MatchWrite, NatsCommand};
use crate::placement::{MatchDecision, OpenServer, QueuedMatch, Target, plan_matches};
use crate::servers::{HostsMatch, SeatBook, ServerIndex, ServerLauncher, ServerPhase};
use crate::tokens::restore::EarlierTokens;

/// The joins of matches, as hosting reads and places them.
type MatchJoins<'w, 's> = Query<'w, 's, (&'static mut Join, &'static mut JoinUpdates), Without<Settled>>;

/// Places every formed match that has no server (new, or its server was lost before it was
/// ready) and whose players all wait for one.
#[allow(clippy::too_many_arguments)] // one placement's context
pub fn host_formed_matches(
    mut commands: Commands,
    mut matches: Query<(Entity, &mut GameMatch)>,
    mut joins: MatchJoins,
    mut servers: PlacementServers,
    mut launcher: ServerLauncher,
    (earlier, phases, time): (Res<EarlierTokens>, Query<&ServerPhase>, Res<Time<Real>>),
    mut nats: MessageWriter<NatsCommand>,
    mut failures: MessageWriter<FailJoin>,
) {
    if !earlier.placement_may_start() {
        return;
    }
    let waiting: Vec<QueuedMatch<Entity, crate::game::GameKey>> = matches
        .iter()
        .filter(|(_, m)| m.server.is_none_or(|s| !phases.contains(s)))
        .filter(|(_, m)| m.members().all(|j| joins.get(j).is_ok_and(|(join, _)| join.phase() == JoinPhase::Queued)))
        .map(|(entity, m)| QueuedMatch {
            id: entity,
            game: m.game.clone(),
            players: m.size(),
            formed_at: m.formed_at,
            deadline: m.deadline,
        })
        .collect();
    if waiting.is_empty() {
        return;
    }
    let now = now(&time);
    let empty: Vec<OpenServer<Entity, crate::game::GameKey>> = servers
        .iter()
        .filter(|(.., phase, book)| phase.accepts_players() && book.taken() == 0)
        .map(|(entity, server, phase, book)| OpenServer {
            server: entity,
            game: server.game.clone(),
            readiness: phase.readiness(),
            taken: 0,
            capacity: book.capacity,
            parties: Vec::new(),
        })
        .collect();
    let mut launched: Vec<Launched> = Vec::new();
    for decision in plan_matches(&waiting, &empty, live_servers(&phases), &launcher.rules(), now) {
        match decision {
            MatchDecision::Launch { game, for_match, .. } => {
                let ips: Vec<IpAddr> = matches
                    .get(for_match)
                    .map(|(_, m)| m.members().filter_map(|j| joins.get(j).ok()?.0.client_ip.parse().ok()).collect())
                    .unwrap_or_default();
                let (server, server_id) = launcher.launch(&mut commands, &game, ips, now);
                launched.push(Launched { server, server_id, seats: SeatBook::new(launcher.capacity()) });
            }
            MatchDecision::Host { game_match, on, readiness } => {
                let Ok((_, mut hosted)) = matches.get_mut(game_match) else { continue };
                let place = (&mut servers, launched.as_mut_slice());
                match seat_everyone(&hosted, &mut joins, (on, readiness), place, now) {
                    Some((server, server_id, teams)) => {
                        commands.entity(server).insert(HostsMatch { match_id: hosted.id.clone() });
                        for member in hosted.members() {
                            commands.entity(member).insert(AwaitingMatchRecord);
                        }
                        hosted.server = Some(server);
                        hosted.record_stored = false;
                        let record = record_of(&hosted, server_id, teams);
                        nats.write(NatsCommand::StoreMatch(Box::new(MatchWrite { game_match, record })));
                    }
                    None => {
                        tracing::error!(match_id = hosted.id, "could not seat every player of a match");
                        let error = JoinError::new(ErrorCode::Internal, "the match could not be seated");
                        failures.write_batch(hosted.members().map(|join| FailJoin { join, error: error.clone() }));
                    }
                }
            }
            MatchDecision::Wait { .. } => {}
            MatchDecision::Refuse { game_match, code } => {
                let Ok((_, refused)) = matches.get(game_match) else { continue };
                failures.write_batch(refused.members().map(|join| FailJoin { join, error: code.into() }));
            }
        }
    }
    for Launched { server, seats, .. } in launched {
        commands.entity(server).insert(seats);
    }
}

/// Reserves a seat for every player of `hosted` on `on`; the server, its id and each team's
/// players, or `None` when one seat could not be had (then some players hold seats: the
/// caller fails them all, which gives the seats back).
fn seat_everyone(
    hosted: &GameMatch,
    joins: &mut MatchJoins,
    (on, readiness): (Target<Entity>, crate::placement::Readiness),
    (servers, launched): (&mut PlacementServers, &mut [Launched]),
    now: f64,
) -> Option<(Entity, ServerId, Vec<Vec<MatchPlayer>>)> {
    let (server, server_id) = match on {
        Target::Existing(server) => (server, servers.get(server).ok()?.1.id.clone()),
        Target::New(index) => launched.get(index).map(|l| (l.server, l.server_id.clone()))?,
    };
    let mut teams = Vec::with_capacity(hosted.teams.len());
    for team in &hosted.teams {
        let mut players = Vec::with_capacity(team.len());
        for member in team {
            let (mut join, mut updates) = joins.get_mut(*member).ok()?;
            let seat = reserve_seat(&mut join, &mut updates, (on, readiness), (&mut *servers, &mut *launched), now)?;
            let claims = join.claims.as_deref();
            players.push(MatchPlayer {
                client_id: seat.client_id,
                public_id: claims.map(|c| c.public_id.clone()).unwrap_or_default(),
                party: join.party.as_ref().map(ToString::to_string),
                attributes: claims.map(|c| c.attributes.clone()).unwrap_or_default(),
            });
        }
        teams.push(players);
    }
    Some((server, server_id, teams))
}

/// The record the game server reads.
fn record_of(hosted: &GameMatch, server_id: ServerId, teams: Vec<Vec<MatchPlayer>>) -> MatchRecord {
    MatchRecord {
        match_id: hosted.id.clone(),
        server_id,
        game: hosted.game.game.clone(),
        version: hosted.game.version.clone(),
        profile: hosted.profile.clone(),
        teams,
        location: hosted.location.clone(),
        shared: hosted.shared.clone(),
        formed_at_ms: now_ms(),
    }
}

/// Once NATS has a match's record its players' tokens may be issued; if it could not be
/// written they fail (the game server would not know them). A record stored for a match that
/// broke up or moved meanwhile is deleted again, unless its server hosts a match now.
pub fn confirm_stored_matches(
    mut commands: Commands,
    mut stored: MessageReader<MatchStored>,
    mut matches: Query<&mut GameMatch>,
    hosts: Query<&HostsMatch>,
    index: Res<ServerIndex>,
    mut nats: MessageWriter<NatsCommand>,
    mut failures: MessageWriter<FailJoin>,
) {
    for MatchStored { game_match, server_id, result } in stored.read() {
        let server = index.0.get(server_id).copied();
        // Stale: the match broke up, or moved to another server since this write was asked.
        let current = matches.get_mut(*game_match).ok().filter(|m| m.server.is_some() && m.server == server);
        let Some(mut hosted) = current else {
            let rehosted = server.is_some_and(|server| hosts.contains(server));
            if result.is_ok() && !rehosted {
                nats.write(NatsCommand::DeleteMatch { server_id: server_id.clone() });
            }
            continue;
        };
        match result {
            Ok(()) => {
                hosted.record_stored = true;
                for member in hosted.members() {
                    commands.entity(member).remove::<AwaitingMatchRecord>();
                }
            }
            Err(e) => {
                tracing::warn!(match_id = hosted.id, "cannot store a match record: {e}");
                let error = JoinError::new(ErrorCode::Unavailable, "the matchmaker could not record the match");
                failures.write_batch(hosted.members().map(|join| FailJoin { join, error: error.clone() }));
            }
        }
    }
}
