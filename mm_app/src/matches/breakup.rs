//! The end of a match. Until its first player has a token a match can break up: when one of
//! its players leaves (cancels, times out, fails), the others go back to their pool with the
//! age they had, their seats are given back and the server hosts nothing. After that the
//! match stands (a player who does not come is the game's no-show), and it ends with its
//! server. A replica taking over finds the match records servers still run and keeps those
//! servers to their matches.

use std::collections::HashMap;

use bevy::prelude::*;
use bevygap_shared::ServerId;
use bevygap_shared::protocol::JoinProgress;

use super::components::{GameMatch, InMatch, LastSearching};
use crate::clock::now;
use crate::joins::machine::Step;
use crate::joins::{AwaitingMatchRecord, Join, JoinPhase, JoinUpdates, Releases};
use crate::matching::ProfileSet;
use crate::nats_bridge::{NatsCommand, TakenOver};
use crate::servers::{GameServer, HostsMatch, ServerIndex};

/// Whether `phase` means the player holds (or is being given) a token.
fn has_token(phase: JoinPhase) -> bool {
    matches!(phase, JoinPhase::IssuingToken { .. } | JoinPhase::Ready { .. })
}

/// Breaks up each match that lost a player before anyone got a token.
pub fn break_up_matches(
    mut commands: Commands,
    matches: Query<(Entity, &GameMatch)>,
    mut joins: Query<(&mut Join, &mut JoinUpdates, Has<InMatch>)>,
    servers: Query<&GameServer>,
    mut releases: Releases,
    mut nats: MessageWriter<NatsCommand>,
    (profiles, time): (Res<ProfileSet>, Res<Time<Real>>),
) {
    let now = now(&time);
    for (entity, game_match) in &matches {
        let phases: Vec<Option<JoinPhase>> =
            game_match.members().map(|j| joins.get(j).ok().map(|(join, ..)| join.phase())).collect();
        let started = phases.iter().flatten().any(|phase| has_token(*phase));
        let lost_one = phases.iter().any(|phase| phase.is_none_or(JoinPhase::is_terminal));
        if started || !lost_one {
            continue;
        }
        tracing::info!(match_id = game_match.id, "a player left before the match started; the others search again");
        let profile = profiles.get(&game_match.game.label(), Some(&game_match.profile));
        let returning = phases.iter().flatten().filter(|phase| !phase.is_terminal()).count();
        let pool = (pool_size(&joins, game_match) + returning) as u32;
        for member in game_match.members() {
            let Ok((mut join, mut updates, _)) = joins.get_mut(member) else { continue };
            if join.phase().is_terminal() {
                continue;
            }
            let release = join.back_to_pool().unwrap_or(crate::joins::Release::Nothing);
            let stage = profile.map_or(0, |p| p.stage_at(now - join.queued_at));
            let progress = JoinProgress::Searching { request_id: join.request_id.to_string(), stage, pool };
            releases.apply(Step { progress, release }, &mut updates);
            commands.entity(member).remove::<(InMatch, AwaitingMatchRecord, LastSearching)>();
        }
        if let Some(server) = game_match.server {
            commands.entity(server).remove::<HostsMatch>();
            if let Ok(server) = servers.get(server) {
                nats.write(NatsCommand::DeleteMatch { server_id: server.id.clone() });
            }
        }
        commands.entity(entity).despawn();
    }
}

/// Players waiting in the pool of `game_match`'s mode, in no match (a break-up is rare: one
/// look over the joins is fine).
fn pool_size(joins: &Query<(&mut Join, &mut JoinUpdates, Has<InMatch>)>, game_match: &GameMatch) -> usize {
    joins
        .iter()
        .filter(|(join, _, in_match)| !in_match && join.phase() == JoinPhase::Queued && join.game == game_match.game)
        .filter(|(join, ..)| join.claims.as_ref().is_some_and(|c| c.mode == game_match.profile))
        .count()
}

/// Despawns each placed match whose server is gone and whose players all have their answer
/// (the record went with the server: see `forget_lost_servers`).
pub fn end_finished_matches(
    mut commands: Commands,
    matches: Query<(Entity, &GameMatch)>,
    joins: Query<&Join>,
    servers: Query<(), With<GameServer>>,
) {
    for (entity, game_match) in &matches {
        let Some(server) = game_match.server else { continue };
        let answered = game_match.members().all(|j| joins.get(j).ok().is_none_or(|join| join.phase().is_terminal()));
        if !servers.contains(server) && answered {
            tracing::debug!(match_id = game_match.id, "match ended with its server");
            commands.entity(entity).despawn();
        }
    }
}

/// Seconds an inherited match record waits for its server to be reported before it is
/// deleted as left over (longer than a server record lives without a heartbeat).
pub const INHERITED_MATCH_WAIT_SECS: f64 = 45.0;

/// Match records found when this replica took over, by server, waiting for the server.
#[derive(Resource, Debug, Default)]
pub struct InheritedMatches(pub HashMap<ServerId, (String, f64)>);

/// Keeps the servers of inherited match records to their matches (nobody else is seated
/// there, and the record goes with the server); records whose server never shows up are
/// deleted.
pub fn adopt_inherited_matches(
    mut commands: Commands,
    mut taken_over: MessageReader<TakenOver>,
    mut inherited: ResMut<InheritedMatches>,
    index: Res<ServerIndex>,
    mut nats: MessageWriter<NatsCommand>,
    time: Res<Time<Real>>,
) {
    let now = now(&time);
    for TakenOver(state) in taken_over.read() {
        for record in &state.matches {
            inherited.0.insert(record.server_id.clone(), (record.match_id.clone(), now));
        }
    }
    if inherited.0.is_empty() {
        return;
    }
    inherited.0.retain(|server_id, (match_id, since)| {
        if let Some(&server) = index.0.get(server_id) {
            tracing::info!(%server_id, match_id, "keeping a server to the match an earlier owner placed there");
            commands.entity(server).insert(HostsMatch { match_id: match_id.clone() });
            return false;
        }
        if now - *since > INHERITED_MATCH_WAIT_SECS {
            nats.write(NatsCommand::DeleteMatch { server_id: server_id.clone() });
            return false;
        }
        true
    });
}
