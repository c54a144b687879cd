use bevy::prelude::*;
use bevygap_shared::protocol::{ErrorCode, JoinError, JoinProgress, ReadyPayload};
use bevygap_shared::records::{ClientGrant, SessionRecord, now_ms};

use super::components::*;
use crate::clock::now;
use crate::config::MatchmakerConfig;
use crate::nats_bridge::NatsWriter;
use crate::providers::{Provider, ProviderEvent};
use crate::servers::seats::{Readiness, choose_server};
use crate::servers::{SeatBook, ServerEndpoints, ServerIndex, ServerKey, ServerPhase, launch_server};
use crate::sessions::{GameSession, SessionIndex};
use crate::tokens::mint::{TokenSpec, mint};
use crate::tokens::{IssuedToken, MatchmakerKeys, TokenIndex, TokenState};
use bevygap_shared::inbox::Inbox;

/// Joins whose server vanished before their token was issued go back to the queue, a few
/// times at most.
pub fn requeue_lost_placements(
    mut commands: Commands,
    mut joins: Query<(Entity, &mut JoinTicket, &mut JoinPhase, &mut JoinUpdates, &Placement)>,
    servers: Query<(), With<ServerKey>>,
    mut failures: MessageWriter<FailJoin>,
) {
    for (entity, mut ticket, mut phase, mut updates, placement) in &mut joins {
        if *phase == JoinPhase::WaitingForServer && !servers.contains(placement.server) {
            ticket.lost_servers += 1;
            if ticket.lost_servers >= JoinTicket::MAX_LOST_SERVERS {
                failures.write(FailJoin { request: entity, error: ErrorCode::ServerFailed.into() });
                continue;
            }
            tracing::info!(request_id = ticket.request_id, "server lost before ready; re-placing");
            *phase = JoinPhase::Queued;
            updates.push(JoinProgress::FindingServer { request_id: ticket.request_id.clone() });
            commands.entity(entity).remove::<Placement>();
        }
    }
}

/// One placement candidate: a server's readiness and seat counts, updated as seats are taken
/// within the frame so several joins never overfill or double-launch.
struct Candidate {
    server: Entity,
    readiness: Readiness,
    taken: u32,
    capacity: u32,
}

/// Gives each queued join a seat: on the fullest ready server with room, else on a starting
/// one, else on a newly launched server while under the server limit.
#[allow(clippy::too_many_arguments)]
pub fn place_queued_joins(
    mut commands: Commands,
    mut joins: Query<(Entity, &JoinSpec, &JoinTicket, &mut JoinPhase, &mut JoinUpdates), Without<Placement>>,
    mut servers: Query<(Entity, &ServerKey, &ServerPhase, &mut SeatBook)>,
    mut index: ResMut<ServerIndex>,
    config: Res<MatchmakerConfig>,
    provider: Res<Provider>,
    provider_events: Res<Inbox<ProviderEvent>>,
    time: Res<Time<Real>>,
) {
    let mut queued: Vec<_> = joins.iter_mut().filter(|(.., phase, _)| **phase == JoinPhase::Queued).collect();
    if queued.is_empty() {
        return;
    }
    queued.sort_by(|a, b| a.2.created_at.total_cmp(&b.2.created_at));
    let mut live = servers.iter().filter(|(_, _, phase, _)| !matches!(phase, ServerPhase::Stopping { .. })).count();
    let mut candidates: Vec<(crate::config::GameKey, Candidate)> = servers
        .iter()
        .filter(|(_, _, phase, _)| phase.accepts_players())
        .map(|(server, key, phase, book)| {
            let readiness = if *phase == ServerPhase::Ready { Readiness::Ready } else { Readiness::Starting };
            (key.game.clone(), Candidate { server, readiness, taken: book.taken(), capacity: book.capacity })
        })
        .collect();
    let mut new_books: Vec<(Entity, SeatBook)> = Vec::new();
    for (entity, spec, ticket, mut phase, mut updates) in queued {
        let pick = choose_server(
            candidates
                .iter()
                .enumerate()
                .filter(|(_, (game, _))| *game == spec.game)
                .map(|(i, (_, c))| (i, c.readiness, c.taken, c.capacity)),
        );
        let slot = match pick {
            Some(i) => i,
            None if live < config.max_servers => {
                let server = launch_server(
                    &mut commands,
                    &mut index,
                    &provider,
                    &provider_events,
                    &spec.game,
                    config.server_capacity,
                    now(&time),
                );
                live += 1;
                new_books.push((server, SeatBook::new(config.server_capacity)));
                candidates.push((
                    spec.game.clone(),
                    Candidate { server, readiness: Readiness::Starting, taken: 0, capacity: config.server_capacity },
                ));
                candidates.len() - 1
            }
            None => continue,
        };
        let candidate = &mut candidates[slot].1;
        let client_id = loop {
            let id = rand::random::<u64>();
            if id != 0 {
                break id;
            }
        };
        let reserved = match servers.get_mut(candidate.server) {
            Ok((.., mut book)) => book.reserve(client_id).is_ok(),
            Err(_) => new_books
                .iter_mut()
                .find(|(e, _)| *e == candidate.server)
                .is_some_and(|(_, book)| book.reserve(client_id).is_ok()),
        };
        if !reserved {
            continue;
        }
        candidate.taken += 1;
        commands.entity(entity).insert(Placement { server: candidate.server, client_id });
        *phase = JoinPhase::WaitingForServer;
        let request_id = ticket.request_id.clone();
        updates.push(match candidate.readiness {
            Readiness::Ready => JoinProgress::FindingServer { request_id },
            Readiness::Starting => JoinProgress::ServerStarting { request_id },
        });
    }
    for (server, book) in new_books {
        commands.entity(server).insert(book);
    }
}

/// Mints tokens for joins whose server is ready, spawns the token and session entities and
/// starts writing the grant; the join turns ready only once NATS acknowledges it.
#[allow(clippy::too_many_arguments)]
pub fn issue_tokens(
    mut commands: Commands,
    mut joins: Query<(Entity, &JoinSpec, &JoinTicket, &mut JoinPhase, &Placement)>,
    servers: Query<(&ServerKey, &ServerPhase, &ServerEndpoints)>,
    keys: Res<MatchmakerKeys>,
    config: Res<MatchmakerConfig>,
    writer: Res<NatsWriter>,
    mut token_index: ResMut<TokenIndex>,
    mut session_index: ResMut<SessionIndex>,
    mut failures: MessageWriter<FailJoin>,
    time: Res<Time<Real>>,
) {
    let now_s = now(&time);
    for (entity, spec, ticket, mut phase, placement) in &mut joins {
        if *phase != JoinPhase::WaitingForServer {
            continue;
        }
        let Ok((key, ServerPhase::Ready, endpoints)) = servers.get(placement.server) else { continue };
        let transport = spec.request.transport;
        let Some(server_addr) = endpoints.address(transport) else {
            failures.write(FailJoin {
                request: entity,
                error: JoinError::new(ErrorCode::ServerFailed, format!("the server offers no {transport:?} address")),
            });
            continue;
        };
        let session_id = format!("s-{:016x}", rand::random::<u64>());
        let token = mint(&TokenSpec {
            server_addr,
            client_id: placement.client_id,
            keys: &keys.0,
            expire_secs: config.token_ttl_secs,
            timeout_secs: config.connection_timeout_secs,
            session_id: &session_id,
        });
        let token = match token {
            Ok(token) => token,
            Err(e) => {
                tracing::error!("cannot mint a token: {e}");
                failures.write(FailJoin { request: entity, error: ErrorCode::Internal.into() });
                continue;
            }
        };
        let session = commands
            .spawn((
                Name::new(format!("session {session_id}")),
                GameSession {
                    session_id: session_id.clone(),
                    server: placement.server,
                    server_id: key.id.to_string(),
                    game: key.game.game.to_string(),
                    version: key.game.version.to_string(),
                    clients: vec![placement.client_id],
                    created_at: now_s,
                },
            ))
            .id();
        session_index.0.insert(session_id.clone(), session);
        let token_entity = commands
            .spawn((
                Name::new(format!("token {}", placement.client_id)),
                IssuedToken {
                    client_id: placement.client_id,
                    server: placement.server,
                    server_id: key.id.to_string(),
                    session,
                    expires_at: now_s + f64::from(config.token_ttl_secs),
                },
                TokenState::Unclaimed,
            ))
            .id();
        token_index.0.insert(placement.client_id, token_entity);
        let issued_ms = now_ms();
        writer.store_grant(
            entity,
            ClientGrant {
                client_id: placement.client_id,
                server_id: key.id.clone(),
                session_id: session_id.clone(),
                game: key.game.game.clone(),
                version: key.game.version.clone(),
                issued_at_ms: issued_ms,
                token_expires_at_ms: issued_ms + u64::from(config.token_ttl_secs) * 1000,
            },
            SessionRecord {
                session_id: session_id.clone(),
                server_id: key.id.clone(),
                game: key.game.game.clone(),
                version: key.game.version.clone(),
                client_ids: vec![placement.client_id],
                created_at_ms: issued_ms,
                provider_session: None,
            },
        );
        *phase = JoinPhase::IssuingToken;
        commands.entity(entity).insert(PendingReady(ReadyPayload {
            connect_token: token,
            transport,
            addresses: endpoints.addresses.clone(),
            cert_digest: endpoints.digest(),
            request_id: ticket.request_id.clone(),
            session_id,
            token_expires_in_secs: config.token_ttl_secs,
        }));
    }
}
