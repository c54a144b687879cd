//! The join systems: each gathers what it needs from the world, asks the pure parts
//! ([`Join`]'s transitions, [`placement::plan`]) and applies the answer.

use std::collections::HashMap;
use std::net::IpAddr;

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevygap_shared::ServerId;
use bevygap_shared::protocol::{ErrorCode, JoinError};

use super::machine::{Join, JoinPhase, Release, SeatClaim, Step};
use super::settled::AnsweredOrder;
use super::{FailJoin, JoinUpdates, PendingReady, RequestIndex, Settled};
use crate::clock::now;
use crate::game::GameKey;
use crate::nats_bridge::{NatsCommand, NatsLinkState};
use crate::placement::{self, Decision, OpenServer, QueuedJoin, Readiness, Target};
use crate::servers::{GameServer, HostsMatch, SeatBook, ServerLauncher, ServerPhase};
use crate::tokens::restore::EarlierTokens;
use crate::tokens::{TokenEnded, TokenIndex};

/// Gives back what a failed or re-queued join held: a reserved seat, or its whole token.
#[derive(SystemParam)]
pub struct Releases<'w, 's> {
    seats: Query<'w, 's, &'static mut SeatBook>,
    tokens: Res<'w, TokenIndex>,
    ended: MessageWriter<'w, TokenEnded>,
}

impl Releases<'_, '_> {
    /// Whether `client_id`'s token is still alive.
    pub fn holds_token(&self, client_id: u64) -> bool {
        self.tokens.0.contains_key(&client_id)
    }

    pub fn apply(&mut self, step: Step, updates: &mut JoinUpdates) {
        updates.push(step.progress);
        match step.release {
            Release::Nothing => {}
            Release::Seat(SeatClaim { server, client_id }) => {
                if let Ok(mut book) = self.seats.get_mut(server) {
                    book.release(client_id);
                }
            }
            Release::Token(SeatClaim { client_id, .. }) => {
                if let Some(&token) = self.tokens.0.get(&client_id) {
                    self.ended.write(TokenEnded { token, reason: "join ended before it was ready" });
                }
            }
        }
    }
}

/// Joins whose server vanished before they were ready go back to the queue, or fail.
pub fn replace_lost_servers(
    mut joins: Query<(&mut Join, &mut JoinUpdates), Without<Settled>>,
    servers: Query<(), With<ServerPhase>>,
    mut releases: Releases,
    time: Res<Time<Real>>,
) {
    let now = now(&time);
    for (mut join, mut updates) in &mut joins {
        let lost = join.phase().seat().is_some_and(|seat| !servers.contains(seat.server));
        if lost && let Some(step) = join.server_lost(now) {
            tracing::info!(request_id = %join.request_id, "its server was lost before the join was ready");
            releases.apply(step, &mut updates);
        }
    }
}

/// Seconds the NATS link may be down before waiting joins fail with `unavailable` (a blip
/// should not fail players).
const LINK_GRACE_SECS: f64 = 3.0;

/// Placed joins past their deadline fail with `timeout` (queued ones are answered by
/// placement); every waiting join fails fast with `unavailable` once NATS has been unreachable
/// for a moment, since no grant can be stored and no server can report ready.
pub fn fail_overdue_joins(
    joins: Query<(Entity, &Join), Without<Settled>>,
    link: Res<NatsLinkState>,
    time: Res<Time<Real>>,
    mut failures: MessageWriter<FailJoin>,
) {
    let now = now(&time);
    let unlinked = link.down_for(LINK_GRACE_SECS, now);
    for (entity, join) in &joins {
        if unlinked && !join.phase().is_terminal() {
            let error = JoinError::new(ErrorCode::Unavailable, "the matchmaker cannot reach NATS");
            failures.write(FailJoin { join: entity, error });
        } else if join.overdue(now) {
            failures.write(FailJoin { join: entity, error: ErrorCode::Timeout.into() });
        }
    }
}

/// The joins not answered yet, as placement reads and changes them.
type WaitingJoins<'w, 's> = Query<'w, 's, (Entity, &'static mut Join, &'static mut JoinUpdates), Without<Settled>>;

/// The servers, as placement reads them and reserves their seats (those hosting a match take
/// no one else).
pub type PlacementServers<'w, 's> =
    Query<'w, 's, (Entity, &'static GameServer, &'static ServerPhase, &'static mut SeatBook), Without<HostsMatch>>;

/// A server launched by this tick's plan: its seat book is inserted once the plan is applied.
pub struct Launched {
    pub server: Entity,
    pub server_id: ServerId,
    pub seats: SeatBook,
}

/// Runs [`placement::plan`] over the queue and the servers that take players, then applies
/// its decisions: launch servers, reserve seats, refuse overdue joins.
pub fn place_queued_joins(
    mut commands: Commands,
    mut joins: WaitingJoins,
    settled: Query<&Join, With<Settled>>,
    mut servers: PlacementServers,
    mut launcher: ServerLauncher,
    (earlier, time, phases): (Res<EarlierTokens>, Res<Time<Real>>, Query<&ServerPhase>),
    mut failures: MessageWriter<FailJoin>,
) {
    if !earlier.placement_may_start() {
        return; // seats of tokens an earlier process issued are not known yet
    }
    let queued = queued_joins(&joins, launcher.capacity_wait());
    if queued.is_empty() {
        return;
    }
    let now = now(&time);
    let open = open_servers(&servers, party_seats(&queued, &joins, &settled));
    let live = live_servers(&phases);
    let mut launched: Vec<Launched> = Vec::new();
    for decision in placement::plan(&queued, &open, live, &launcher.rules(), now) {
        match decision {
            Decision::Launch { game, joins: placed, .. } => {
                let ips: Vec<IpAddr> =
                    placed.iter().filter_map(|j| joins.get(*j).ok()?.1.client_ip.parse().ok()).collect();
                let (server, server_id) = launcher.launch(&mut commands, &game, ips, now);
                launched.push(Launched { server, server_id, seats: SeatBook::new(launcher.capacity()) });
            }
            Decision::Reserve { join, on, readiness } => {
                let Ok((_, mut join, mut updates)) = joins.get_mut(join) else { continue };
                reserve_seat(&mut join, &mut updates, (on, readiness), (&mut servers, &mut launched), now);
            }
            Decision::Wait { .. } => {}
            Decision::Refuse { join, code } => {
                failures.write(FailJoin { join, error: code.into() });
            }
        }
    }
    for Launched { server, seats, .. } in launched {
        commands.entity(server).insert(seats);
    }
}

/// Servers counted against the server limit (every game, hosting a match or not).
pub fn live_servers(phases: &Query<&ServerPhase>) -> usize {
    phases.iter().filter(|phase| phase.counts_against_limit()).count()
}

/// The queued drop-in joins as placement sees them (joins of a match mode are placed with
/// their match); none waits past the capacity wait for a seat no
/// provider will start.
fn queued_joins(joins: &WaitingJoins, capacity_wait: f64) -> Vec<QueuedJoin<Entity, GameKey>> {
    joins
        .iter()
        .filter(|(_, join, _)| join.phase() == JoinPhase::Queued && !join.seeks_match())
        .map(|(entity, join, _)| QueuedJoin {
            join: entity,
            game: join.game.clone(),
            queued_at: join.queued_at,
            deadline: join.deadline.min(join.queued_at + capacity_wait),
            party: join.party.as_ref().map(ToString::to_string),
        })
        .collect()
}

/// Where each party has a seat (joins keep theirs until their resume window ends); only
/// looked up when a queued join belongs to a party.
fn party_seats(
    queued: &[QueuedJoin<Entity, GameKey>],
    joins: &WaitingJoins,
    settled: &Query<&Join, With<Settled>>,
) -> HashMap<Entity, Vec<String>> {
    let mut parties: HashMap<Entity, Vec<String>> = HashMap::new();
    if queued.iter().all(|q| q.party.is_none()) {
        return parties;
    }
    for join in joins.iter().map(|(_, join, _)| join).chain(settled) {
        if let (Some(party), Some(seat)) = (&join.party, join.phase().seat()) {
            let here = parties.entry(seat.server).or_default();
            if !here.iter().any(|p| p == party.as_str()) {
                here.push(party.to_string());
            }
        }
    }
    parties
}

/// The servers that take players, as placement sees them.
fn open_servers(
    servers: &PlacementServers,
    mut parties: HashMap<Entity, Vec<String>>,
) -> Vec<OpenServer<Entity, GameKey>> {
    servers
        .iter()
        .filter(|(.., phase, _)| phase.accepts_players())
        .map(|(entity, server, phase, book)| OpenServer {
            server: entity,
            game: server.game.clone(),
            readiness: phase.readiness(),
            taken: book.taken(),
            capacity: book.capacity,
            parties: parties.remove(&entity).unwrap_or_default(),
        })
        .collect()
}

/// Reserves a seat for `join` on the server placement chose (one already there, or one
/// launched by this plan) under a new client id, and moves the join to wait for it; the seat,
/// or `None` if the server is gone or full.
pub fn reserve_seat(
    join: &mut Join,
    updates: &mut JoinUpdates,
    (on, readiness): (Target<Entity>, Readiness),
    (servers, launched): (&mut PlacementServers, &mut [Launched]),
    now: f64,
) -> Option<SeatClaim> {
    let client_id = new_client_id();
    let (server, server_id, reserved) = match on {
        Target::Existing(server) => {
            let (_, game_server, _, mut book) = servers.get_mut(server).ok()?;
            (server, game_server.id.clone(), book.reserve(client_id).is_ok())
        }
        Target::New(index) => {
            let new = launched.get_mut(index)?;
            (new.server, new.server_id.clone(), new.seats.reserve(client_id).is_ok())
        }
    };
    let seat = SeatClaim { server, client_id };
    if !reserved {
        return None;
    }
    let progress = join.place(seat, readiness).ok()?;
    crate::observe::join_placed(now - join.queued_at);
    join.placed_at = Some(now);
    tracing::debug!(request_id = %join.request_id, %server_id, client_id, "seat reserved");
    updates.push(progress);
    Some(seat)
}

/// Seconds between two scale-hook calls for one game.
const CAPACITY_CALL_EVERY_SECS: f64 = 5.0;

/// The fleet's scale hook: while players of a game wait for a seat that no provider will
/// start, tells an autoscaler (at most every few seconds per game).
pub fn call_for_capacity(
    joins: Query<&Join, Without<Settled>>,
    launcher: ServerLauncher,
    mut last_calls: Local<HashMap<GameKey, f64>>,
    mut nats: MessageWriter<NatsCommand>,
    time: Res<Time<Real>>,
) {
    if launcher.rules().may_launch {
        return;
    }
    let mut waiting: HashMap<&GameKey, usize> = HashMap::new();
    for join in joins.iter().filter(|join| join.phase() == JoinPhase::Queued) {
        *waiting.entry(&join.game).or_default() += 1;
    }
    let now = now(&time);
    last_calls.retain(|game, _| waiting.contains_key(game));
    for (game, waiting) in waiting {
        let due = last_calls.get(game).is_none_or(|at| now - at >= CAPACITY_CALL_EVERY_SECS);
        if due {
            tracing::info!(game = %game.label(), waiting, "every fleet server is full; asking for capacity");
            last_calls.insert(game.clone(), now);
            nats.write(NatsCommand::NeedCapacity { game: game.clone(), waiting });
        }
    }
}

/// A Lightyear client id: random, never 0, and below 2^53 so it survives every JSON surface
/// (BRP, the dashboard, JavaScript clients) exactly; 53 random bits still make a collision
/// among live tokens vanishingly unlikely.
pub fn new_client_id() -> u64 {
    const JSON_SAFE: u64 = (1 << 53) - 1;
    loop {
        let id = rand::random::<u64>() & JSON_SAFE;
        if id != 0 {
            return id;
        }
    }
}

/// Ends joins with an error, giving back whatever seat or token they held.
pub fn apply_failures(
    mut commands: Commands,
    mut failures: MessageReader<FailJoin>,
    mut joins: Query<(&mut Join, &mut JoinUpdates)>,
    servers: Query<&GameServer>,
    mut releases: Releases,
    time: Res<Time<Real>>,
) {
    let now = now(&time);
    for FailJoin { join: entity, error } in failures.read() {
        let Ok((mut join, mut updates)) = joins.get_mut(*entity) else { continue };
        let server_id = join.phase().seat().and_then(|seat| servers.get(seat.server).ok()).map(|s| s.id.to_string());
        let Some(step) = join.fail(error.clone(), now) else { continue };
        tracing::info!(
            request_id = %join.request_id,
            server_id = server_id.as_deref().map(tracing::field::display),
            code = error.code.as_str(),
            "join failed: {}",
            error.message
        );
        releases.apply(step, &mut updates);
        commands.entity(*entity).remove::<PendingReady>();
    }
}

/// Despawns answered joins once their resume window has passed, oldest first (only the ones
/// due are looked at).
pub fn forget_finished_joins(
    mut commands: Commands,
    joins: Query<&Join, With<Settled>>,
    mut order: ResMut<AnsweredOrder>,
    mut index: ResMut<RequestIndex>,
    time: Res<Time<Real>>,
) {
    let now = now(&time);
    while let Some(&entity) = order.0.front() {
        match joins.get(entity) {
            Ok(join) if !join.forgettable(now) => break,
            Ok(join) => {
                index.0.remove(join.request_id.as_str());
                commands.entity(entity).despawn();
            }
            Err(_) => {} // already gone
        }
        order.0.pop_front();
    }
}
