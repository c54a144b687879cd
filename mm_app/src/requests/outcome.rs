use bevy::prelude::*;
use bevygap_shared::protocol::{ErrorCode, JoinError, JoinProgress};

use super::components::*;
use crate::clock::now;
use crate::config::MatchmakerConfig;
use crate::nats_bridge::{NatsEvent, NatsWriter};
use crate::servers::{SeatBook, ServerPhase};
use crate::tokens::{TokenEnded, TokenIndex};

/// Seconds a finished request is kept so a retry with its id gets the same answer.
pub const RESUME_WINDOW_SECS: f64 = 120.0;

/// Joins past their deadline fail: `no_capacity` when every allowed server is full, else
/// `timeout`.
pub fn fail_overdue_joins(
    joins: Query<(Entity, &JoinTicket, &JoinPhase)>,
    servers: Query<&ServerPhase>,
    config: Res<MatchmakerConfig>,
    time: Res<Time<Real>>,
    mut failures: MessageWriter<FailJoin>,
) {
    let now = now(&time);
    let mut overdue =
        joins.iter().filter(|(_, ticket, phase)| !phase.is_terminal() && now > ticket.deadline).peekable();
    if overdue.peek().is_none() {
        return;
    }
    let at_limit = servers.iter().filter(|p| !matches!(p, ServerPhase::Stopping { .. })).count() >= config.max_servers;
    for (request, _, phase) in overdue {
        let code = if *phase == JoinPhase::Queued && at_limit { ErrorCode::NoCapacity } else { ErrorCode::Timeout };
        failures.write(FailJoin { request, error: code.into() });
    }
}

/// A stored grant turns the join ready; a failed one fails it. A grant that lands after its
/// join was cancelled or failed is deleted again, so no orphan grant stays in NATS.
pub fn complete_grants(
    mut commands: Commands,
    mut events: MessageReader<NatsEvent>,
    mut joins: Query<(&mut JoinPhase, &mut JoinUpdates, Option<&PendingReady>)>,
    tokens: Res<TokenIndex>,
    writer: Res<NatsWriter>,
    time: Res<Time<Real>>,
    mut failures: MessageWriter<FailJoin>,
) {
    for event in events.read() {
        let NatsEvent::GrantStored { request, server_id, client_id, result } = event else { continue };
        let issuing = joins.get(*request).is_ok_and(|(phase, ..)| *phase == JoinPhase::IssuingToken);
        let token_alive = tokens.0.contains_key(client_id);
        if !issuing || !token_alive {
            // The join or its token ended while the write was in flight: any delete issued
            // then may have landed first, so delete again now that the put is done.
            if result.is_ok() {
                writer.delete_grant(server_id, *client_id);
            }
            if issuing {
                failures.write(FailJoin { request: *request, error: ErrorCode::ServerFailed.into() });
            }
            continue;
        }
        match result {
            Ok(()) => {
                let Ok((mut phase, mut updates, Some(ready))) = joins.get_mut(*request) else { continue };
                *phase = JoinPhase::Ready;
                updates.push(JoinProgress::Ready(ready.0.clone()));
                commands.entity(*request).remove::<PendingReady>().insert(FinishedAt(now(&time)));
            }
            Err(e) => {
                tracing::warn!("cannot store a client grant: {e}");
                failures.write(FailJoin {
                    request: *request,
                    error: JoinError::new(ErrorCode::Unavailable, "the matchmaker could not record the grant"),
                });
            }
        }
    }
}

/// Ends joins with an error, giving back whatever seat or token they held.
#[allow(clippy::too_many_arguments)]
pub fn apply_failures(
    mut commands: Commands,
    mut failures: MessageReader<FailJoin>,
    mut joins: Query<(&JoinTicket, &mut JoinPhase, &mut JoinUpdates, Option<&Placement>)>,
    mut seats: Query<&mut SeatBook>,
    tokens: Res<TokenIndex>,
    mut ended: MessageWriter<TokenEnded>,
    time: Res<Time<Real>>,
) {
    for FailJoin { request, error } in failures.read() {
        let Ok((ticket, mut phase, mut updates, placement)) = joins.get_mut(*request) else { continue };
        if phase.is_terminal() {
            continue;
        }
        if let Some(placement) = placement {
            match *phase {
                JoinPhase::WaitingForServer => {
                    if let Ok(mut book) = seats.get_mut(placement.server) {
                        book.release(placement.client_id);
                    }
                }
                JoinPhase::IssuingToken => {
                    if let Some(&token) = tokens.0.get(&placement.client_id) {
                        ended.write(TokenEnded { token, reason: "join failed before it was ready" });
                    }
                }
                _ => {}
            }
        }
        tracing::info!(request_id = ticket.request_id, "join failed: {}", error.message);
        *phase = JoinPhase::Failed;
        updates.push(JoinProgress::Failed(error.clone()));
        commands.entity(*request).remove::<PendingReady>().insert(FinishedAt(now(&time)));
    }
}

/// Despawns finished joins once their resume window has passed.
pub fn forget_finished_joins(
    mut commands: Commands,
    joins: Query<(Entity, &JoinTicket, &FinishedAt)>,
    mut index: ResMut<RequestIndex>,
    time: Res<Time<Real>>,
) {
    let now = now(&time);
    for (entity, ticket, finished) in &joins {
        if now - finished.0 > RESUME_WINDOW_SECS {
            index.0.remove(&ticket.request_id);
            commands.entity(entity).despawn();
        }
    }
}
