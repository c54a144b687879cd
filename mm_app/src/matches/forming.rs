//! The pass: every `pass_interval`, each pool (a game version and one of its match modes)
//! is gathered into tickets and handed to the engine ([`crate::matching::form_matches`]);
//! each formed match becomes a [`GameMatch`] entity and its players hear `match_found`. The
//! rest hear `searching`; those past their deadline fail with `no_match`.

use std::collections::{HashMap, HashSet};

use bevy::prelude::*;
use bevygap_shared::protocol::{ErrorCode, JoinError, JoinProgress, MatchFound};

use super::MatchSettings;
use super::components::{GameMatch, InMatch, LastSearching};
use super::tickets::{PoolJoin, gather};
use crate::clock::now;
use crate::game::GameKey;
use crate::joins::{FailJoin, Join, JoinPhase, JoinUpdates, Settled};
use crate::matching::{FormedMatch, ProfileSet, form_matches, stage_in};

/// The joins waiting in a pool: queued, of a match mode, in no match yet.
type PoolJoins<'w, 's> = Query<
    'w,
    's,
    (Entity, &'static Join, &'static mut JoinUpdates, Option<&'static LastSearching>),
    (Without<Settled>, Without<InMatch>),
>;

/// Runs the engine over every pool once per pass interval.
pub fn form_matches_in_pools(
    mut commands: Commands,
    mut joins: PoolJoins,
    profiles: Res<ProfileSet>,
    settings: Res<MatchSettings>,
    mut last_pass: Local<Option<f64>>,
    mut failures: MessageWriter<FailJoin>,
    time: Res<Time<Real>>,
) {
    let now = now(&time);
    if last_pass.is_some_and(|at| now - at < settings.pass_interval.as_secs_f64()) {
        return;
    }
    *last_pass = Some(now);
    let mut pools: HashMap<(&GameKey, &str), Vec<PoolJoin<'_, Entity>>> = HashMap::new();
    for (entity, join, ..) in joins.iter() {
        let Some(claims) = join.claims.as_deref() else { continue };
        if join.phase() != JoinPhase::Queued {
            continue;
        }
        if now > join.deadline {
            failures.write(FailJoin { join: entity, error: ErrorCode::NoMatch.into() });
            continue;
        }
        pools.entry((&join.game, claims.mode.as_str())).or_default().push(PoolJoin {
            join: entity,
            party: join.party.as_ref().map(|p| p.as_str()),
            party_size: claims.party_size,
            queued_at: join.queued_at,
            attributes: &claims.attributes,
            latencies: &claims.latencies,
        });
    }
    let mut formed: Vec<NewMatch> = Vec::new();
    let mut searching: Vec<(Entity, u32, u32)> = Vec::new();
    for ((game, mode), pool) in &pools {
        let Some(profile) = profiles.get(&game.label(), Some(mode)) else { continue };
        let gathered = gather(pool);
        for join in gathered.unmatchable {
            let error = JoinError::new(ErrorCode::InvalidRequest, "the party's members disagree on its party_size");
            failures.write(FailJoin { join, error });
        }
        let matches = form_matches(profile, &gathered.tickets, now);
        let expansions = profile.expansion_times();
        let matched: HashSet<Entity> =
            matches.iter().flat_map(|m| m.teams.iter().flatten().flatten().copied()).collect();
        for member in pool.iter().filter(|m| !matched.contains(&m.join)) {
            searching.push((member.join, stage_in(&expansions, now - member.queued_at), gathered.players));
        }
        formed.extend(matches.into_iter().map(|m| NewMatch { game: (*game).clone(), profile: mode.to_string(), m }));
    }
    drop(pools);
    for (join, stage, pool) in searching {
        tell_searching(&mut commands, &mut joins, join, (stage, pool), now);
    }
    for new in formed {
        spawn_match(&mut commands, &mut joins, new, now);
    }
}

/// A match the pass formed, with where it comes from.
struct NewMatch {
    game: GameKey,
    profile: String,
    m: FormedMatch<Vec<Entity>>,
}

/// Sends `searching` to a join when its stage changed, or its pool did a while ago.
fn tell_searching(commands: &mut Commands, joins: &mut PoolJoins, join: Entity, (stage, pool): (u32, u32), now: f64) {
    let Ok((_, joined, mut updates, last)) = joins.get_mut(join) else { return };
    if !LastSearching::is_stale(last, stage, pool, now) {
        return;
    }
    updates.push(JoinProgress::Searching { request_id: joined.request_id.to_string(), stage, pool });
    commands.entity(join).insert(LastSearching { stage, pool, at: now });
}

/// Spawns the match entity, marks its joins and tells each player its team and teammates.
fn spawn_match(commands: &mut Commands, joins: &mut PoolJoins, new: NewMatch, now: f64) {
    let NewMatch { game, profile, m } = new;
    let teams: Vec<Vec<Entity>> = m.teams.iter().map(|team| team.iter().flatten().copied().collect()).collect();
    let public_id = |join: Entity| {
        joins.get(join).ok().and_then(|(_, j, ..)| j.claims.as_ref().map(|c| c.public_id.clone())).unwrap_or_default()
    };
    let public_ids: Vec<Vec<String>> = teams.iter().map(|team| team.iter().map(|j| public_id(*j)).collect()).collect();
    let deadline = teams
        .iter()
        .flatten()
        .filter_map(|j| joins.get(*j).ok().map(|(_, join, ..)| join.deadline))
        .fold(f64::INFINITY, f64::min);
    let id = format!("m-{:016x}", rand::random::<u64>());
    tracing::info!(match_id = id, game = %game.label(), profile, players = teams.iter().map(Vec::len).sum::<usize>(), "match formed");
    let game_match = commands
        .spawn((
            Name::new(format!("match {id}")),
            GameMatch {
                id: id.clone(),
                game,
                profile,
                teams: teams.clone(),
                location: m.location,
                shared: m.shared,
                formed_at: now,
                deadline,
                server: None,
                record_stored: false,
            },
        ))
        .id();
    for (team, (members, ids)) in teams.iter().zip(&public_ids).enumerate() {
        for (member, own_id) in members.iter().zip(ids) {
            let Ok((_, join, mut updates, _)) = joins.get_mut(*member) else { continue };
            updates.push(JoinProgress::MatchFound(MatchFound {
                request_id: join.request_id.to_string(),
                match_id: id.clone(),
                team: team as u32,
                public_id: own_id.clone(),
                teammates: ids.iter().filter(|other| *other != own_id).cloned().collect(),
            }));
            commands.entity(*member).insert(InMatch { game_match, team: team as u32 }).remove::<LastSearching>();
        }
    }
}
