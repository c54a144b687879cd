//! The join systems: each gathers what it needs from the world, asks the pure parts
//! ([`Join`]'s transitions, [`placement::plan`]) and applies the answer.

use std::collections::HashMap;
use std::net::IpAddr;

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevygap_shared::ServerId;
use bevygap_shared::protocol::{ErrorCode, JoinError, ReadyPayload};
use bevygap_shared::records::{ClientGrant, SessionRecord, now_ms};

use super::machine::{GrantOutcome, Join, JoinPhase, Release, SeatClaim, Step};
use super::settled::AnsweredOrder;
use super::{FailJoin, JoinUpdates, PendingReady, RequestIndex, Settled};
use crate::clock::now;
use crate::game::GameKey;
use crate::nats_bridge::{GrantStored, GrantWrite, NatsCommand, NatsLinkState};
use crate::placement::{self, Decision, OpenServer, QueuedJoin, Target};
use crate::providers::ProviderHandle;
use crate::servers::{GameServer, ProviderSeats, SeatBook, ServerEndpoints, ServerLauncher, ServerPhase};
use crate::tokens::mint::{TokenSpec, mint};
use crate::tokens::restore::EarlierTokens;
use crate::tokens::{GameSession, SessionIndex};
use crate::tokens::{IssuedToken, MatchmakerKeys, TokenEnded, TokenIndex, TokenSettings, TokenState};

/// Gives back what a failed or re-queued join held: a reserved seat, or its whole token.
#[derive(SystemParam)]
pub struct Releases<'w, 's> {
    seats: Query<'w, 's, &'static mut SeatBook>,
    tokens: Res<'w, TokenIndex>,
    ended: MessageWriter<'w, TokenEnded>,
}

impl Releases<'_, '_> {
    fn apply(&mut self, step: Step, updates: &mut JoinUpdates) {
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

/// Runs [`placement::plan`] over the queue and the servers that take players, then applies
/// its decisions: launch servers, reserve seats, refuse overdue joins.
pub fn place_queued_joins(
    mut commands: Commands,
    mut joins: Query<(Entity, &mut Join, &mut JoinUpdates), Without<Settled>>,
    settled: Query<&Join, With<Settled>>,
    mut servers: Query<(Entity, &GameServer, &ServerPhase, &mut SeatBook)>,
    mut launcher: ServerLauncher,
    (earlier, time): (Res<EarlierTokens>, Res<Time<Real>>),
    mut failures: MessageWriter<FailJoin>,
) {
    if !earlier.placement_may_start() {
        return; // seats of tokens an earlier process issued are not known yet
    }
    let capacity_wait = launcher.capacity_wait();
    let queued: Vec<QueuedJoin<Entity, GameKey>> = joins
        .iter()
        .filter(|(_, join, _)| join.phase() == JoinPhase::Queued)
        .map(|(entity, join, _)| QueuedJoin {
            join: entity,
            game: join.game.clone(),
            queued_at: join.queued_at,
            deadline: join.deadline.min(join.queued_at + capacity_wait),
            party: join.party.as_ref().map(ToString::to_string),
        })
        .collect();
    if queued.is_empty() {
        return;
    }
    let now = now(&time);
    // Where each party has a seat (joins keep theirs until their resume window ends); only
    // looked up when a queued join belongs to a party.
    let mut parties: HashMap<Entity, Vec<String>> = HashMap::new();
    if queued.iter().any(|q| q.party.is_some()) {
        for join in joins.iter().map(|(_, join, _)| join).chain(&settled) {
            if let (Some(party), Some(seat)) = (&join.party, join.phase().seat()) {
                let here = parties.entry(seat.server).or_default();
                if !here.iter().any(|p| p == party.as_str()) {
                    here.push(party.to_string());
                }
            }
        }
    }
    let open: Vec<OpenServer<Entity, GameKey>> = servers
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
        .collect();
    let live = servers.iter().filter(|(.., phase, _)| phase.counts_against_limit()).count();
    let decisions = placement::plan(&queued, &open, live, &launcher.rules(), now);
    // A launch goes out with the addresses of the players placed on it (providers that choose
    // a location, like Edgegap, start the server near them).
    let mut player_ips: HashMap<usize, Vec<IpAddr>> = HashMap::new();
    for decision in &decisions {
        if let Decision::Reserve { join, on: Target::New(index), .. } = decision
            && let Ok((_, join, _)) = joins.get(*join)
            && let Ok(ip) = join.client_ip.parse()
        {
            player_ips.entry(*index).or_default().push(ip);
        }
    }
    let mut launched: Vec<(Entity, ServerId, SeatBook)> = Vec::new();
    for decision in decisions {
        match decision {
            Decision::Launch { game, index } => {
                let ips = player_ips.remove(&index).unwrap_or_default();
                let (server, server_id) = launcher.launch(&mut commands, &game, ips, now);
                launched.push((server, server_id, SeatBook::new(launcher.capacity())));
            }
            Decision::Reserve { join, on, readiness } => {
                let Ok((_, mut join, mut updates)) = joins.get_mut(join) else { continue };
                let client_id = new_client_id();
                let (server, server_id, reserved) = match on {
                    Target::Existing(server) => match servers.get_mut(server) {
                        Ok((_, game_server, _, mut book)) => {
                            (server, game_server.id.clone(), book.reserve(client_id).is_ok())
                        }
                        Err(_) => continue,
                    },
                    Target::New(index) => match launched.get_mut(index) {
                        Some((server, server_id, book)) => {
                            (*server, server_id.clone(), book.reserve(client_id).is_ok())
                        }
                        None => continue,
                    },
                };
                if reserved && let Ok(progress) = join.place(SeatClaim { server, client_id }, readiness) {
                    crate::observe::join_placed(now - join.queued_at);
                    join.placed_at = Some(now);
                    tracing::debug!(request_id = %join.request_id, %server_id, client_id, "seat reserved");
                    updates.push(progress);
                }
            }
            Decision::Wait { .. } => {}
            Decision::Refuse { join, code } => {
                failures.write(FailJoin { join, error: code.into() });
            }
        }
    }
    for (server, _, book) in launched {
        commands.entity(server).insert(book);
    }
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

/// Where issued tokens and sessions are kept, what they are signed with, and whose seats
/// need the provider's confirmation first.
#[derive(SystemParam)]
pub struct TokenDesk<'w> {
    provider: Res<'w, ProviderHandle>,
    keys: Res<'w, MatchmakerKeys>,
    settings: Res<'w, TokenSettings>,
    tokens: ResMut<'w, TokenIndex>,
    sessions: ResMut<'w, SessionIndex>,
}

/// Mints tokens for joins whose server is ready, spawns their token and session entities and
/// asks the bridge to store the grant; the join turns ready only once NATS acknowledges it.
pub fn issue_tokens(
    mut commands: Commands,
    mut joins: Query<(Entity, &mut Join), Without<Settled>>,
    servers: Query<(&GameServer, &ServerPhase, &ServerEndpoints, Option<&ProviderSeats>)>,
    mut desk: TokenDesk,
    mut nats: MessageWriter<NatsCommand>,
    mut failures: MessageWriter<FailJoin>,
    time: Res<Time<Real>>,
) {
    let now_s = now(&time);
    for (entity, mut join) in &mut joins {
        let JoinPhase::WaitingForServer { seat } = join.phase() else { continue };
        let Ok((server, ServerPhase::Ready, endpoints, provider_seats)) = servers.get(seat.server) else { continue };
        // A provider that holds each seat itself must have confirmed this one.
        if desk.provider.0.confirms_seats() && !provider_seats.is_some_and(|seats| seats.may_issue(seat.client_id)) {
            continue;
        }
        let provider_session = provider_seats.and_then(|seats| seats.external_id(seat.client_id)).map(String::from);
        let Some(server_addr) = endpoints.address(join.transport) else {
            let message = format!("the server offers no {:?} address", join.transport);
            failures.write(FailJoin { join: entity, error: JoinError::new(ErrorCode::ServerFailed, message) });
            continue;
        };
        let session_id = format!("s-{:016x}", rand::random::<u64>());
        let ttl = desk.settings.ttl_secs;
        let token = mint(&TokenSpec {
            server_addr,
            client_id: seat.client_id,
            keys: &desk.keys.0,
            expire_secs: ttl,
            timeout_secs: desk.settings.connection_timeout_secs,
            session_id: &session_id,
        });
        let token = match token {
            Ok(token) => token,
            Err(e) => {
                tracing::error!(request_id = %join.request_id, server_id = %server.id, "cannot mint a token: {e}");
                failures.write(FailJoin { join: entity, error: ErrorCode::Internal.into() });
                continue;
            }
        };
        if join.issue_token().is_err() {
            continue;
        }
        let session = commands
            .spawn((
                Name::new(format!("session {session_id}")),
                GameSession {
                    session_id: session_id.clone(),
                    server: seat.server,
                    server_id: server.id.clone(),
                    game: server.game.clone(),
                    clients: vec![seat.client_id],
                    created_at: now_s,
                },
            ))
            .id();
        desk.sessions.0.insert(session_id.clone(), session);
        let token_entity = commands
            .spawn((
                Name::new(format!("token {}", seat.client_id)),
                IssuedToken {
                    client_id: seat.client_id,
                    server: seat.server,
                    server_id: server.id.clone(),
                    session,
                    request_id: Some(join.request_id.to_string()),
                    issued_at: now_s,
                    expires_at: now_s + f64::from(ttl),
                },
                TokenState::Unclaimed,
            ))
            .id();
        desk.tokens.0.insert(seat.client_id, token_entity);
        tracing::debug!(
            request_id = %join.request_id,
            server_id = %server.id,
            client_id = seat.client_id,
            %session_id,
            "token issued"
        );
        let issued_ms = now_ms();
        nats.write(NatsCommand::StoreGrant(Box::new(GrantWrite {
            join: entity,
            grant: ClientGrant {
                client_id: seat.client_id,
                server_id: server.id.clone(),
                session_id: session_id.clone(),
                game: server.game.game.clone(),
                version: server.game.version.clone(),
                issued_at_ms: issued_ms,
                token_expires_at_ms: issued_ms + u64::from(ttl) * 1000,
            },
            session: SessionRecord {
                session_id: session_id.clone(),
                server_id: server.id.clone(),
                game: server.game.game.clone(),
                version: server.game.version.clone(),
                client_ids: vec![seat.client_id],
                created_at_ms: issued_ms,
                provider_session,
                request_id: Some(join.request_id.to_string()),
            },
        })));
        commands.entity(entity).insert(PendingReady(ReadyPayload {
            connect_token: token,
            transport: join.transport,
            addresses: endpoints.addresses.clone(),
            cert_digest: endpoints.digest(),
            request_id: join.request_id.to_string(),
            session_id,
            token_expires_in_secs: ttl,
        }));
    }
}

/// A stored grant turns the join ready; a failed one fails it. A grant that lands after its
/// join ended is deleted again, so no orphan grant stays in NATS.
pub fn complete_grants(
    mut commands: Commands,
    mut stored: MessageReader<GrantStored>,
    mut joins: Query<(&mut Join, &mut JoinUpdates, Option<&PendingReady>)>,
    mut releases: Releases,
    mut nats: MessageWriter<NatsCommand>,
    time: Res<Time<Real>>,
) {
    let now = now(&time);
    for GrantStored { join: entity, server_id, client_id, result } in stored.read() {
        if let Err(e) = result {
            tracing::warn!(%server_id, "cannot store a client grant: {e}");
        }
        let token_alive = releases.tokens.0.contains_key(client_id);
        let outcome = match joins.get_mut(*entity) {
            Ok((mut join, _, Some(ready))) => join.grant_stored(result.is_ok(), token_alive, ready.0.clone(), now),
            _ => GrantOutcome::Orphan,
        };
        match outcome {
            GrantOutcome::Ready(progress) => {
                if let Ok((join, mut updates, _)) = joins.get_mut(*entity) {
                    tracing::info!(request_id = %join.request_id, %server_id, client_id, "join ready");
                    updates.push(progress);
                }
                commands.entity(*entity).remove::<PendingReady>();
            }
            GrantOutcome::Failed(step) => {
                if let Ok((_, mut updates, _)) = joins.get_mut(*entity) {
                    releases.apply(step, &mut updates);
                }
                commands.entity(*entity).remove::<PendingReady>();
                if result.is_ok() {
                    nats.write(NatsCommand::DeleteGrant { server_id: server_id.clone(), client_id: *client_id });
                }
            }
            GrantOutcome::Orphan => {
                // The join or its token ended while the write was in flight: any delete issued
                // then may have landed first, so delete again now that the put is done.
                if result.is_ok() {
                    nats.write(NatsCommand::DeleteGrant { server_id: server_id.clone(), client_id: *client_id });
                }
            }
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
