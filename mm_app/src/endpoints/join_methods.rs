//! The matchmaking BRP methods. `matchmaker.join+watch` and `matchmaker.join` share one
//! watching handler: the HTTP front streams every message of the first and only the terminal
//! one of the second.

use std::collections::HashMap;

use bevy::prelude::*;
use bevy_remote::{BrpError, BrpResult, error_codes};
use bevygap_shared::protocol::{ErrorCode, JoinError, JoinProgress, JoinRequest};
use serde_json::{Value, json};

use super::rpc::{code_error, join_error, protocol_error};
use crate::clock::now;
use crate::config::{GameKey, MatchmakerConfig};
use crate::requests::{FailJoin, JoinPhase, JoinSpec, JoinTicket, JoinUpdates, RequestIndex};
use bevygap_shared::inbox::AppWaker;

/// Param the front sets to the player's resolved IP (clients cannot set it: the front strips
/// every `$` key it receives).
pub const PEER_PARAM: &str = "$peer";
/// Param the front sets to a unique id per HTTP stream.
pub const STREAM_PARAM: &str = "$stream";

/// Per HTTP stream: the join it follows and how many of its messages it was sent.
#[derive(Resource, Debug, Default)]
pub struct StreamCursors(pub HashMap<u64, (Entity, usize)>);

fn as_result(progress: &JoinProgress) -> BrpResult<Option<Value>> {
    match progress {
        JoinProgress::Failed(error) => Err(join_error(error)),
        other => serde_json::to_value(other).map(Some).map_err(BrpError::internal),
    }
}

/// Starts or resumes a join and returns each new progress message for the calling stream.
#[allow(clippy::too_many_arguments)]
pub fn join_watch(
    In(params): In<Option<Value>>,
    mut commands: Commands,
    mut index: ResMut<RequestIndex>,
    mut cursors: ResMut<StreamCursors>,
    joins: Query<(&JoinUpdates, &JoinPhase, &JoinTicket)>,
    config: Res<MatchmakerConfig>,
    waker: Res<AppWaker>,
    time: Res<Time<Real>>,
) -> BrpResult<Option<Value>> {
    let params = params.unwrap_or(Value::Null);
    let stream = params
        .get(STREAM_PARAM)
        .and_then(Value::as_u64)
        .ok_or_else(|| protocol_error(error_codes::INVALID_PARAMS, "missing stream id"))?;
    if let Some(&(entity, sent)) = cursors.0.get(&stream) {
        let Ok((updates, ..)) = joins.get(entity) else {
            cursors.0.remove(&stream);
            return Err(code_error(ErrorCode::Internal));
        };
        let Some(next) = updates.get(sent) else { return Ok(None) };
        cursors.0.insert(stream, (entity, sent + 1));
        if sent + 1 < updates.len() {
            waker.wake(); // one message per tick: come back at once for the rest
        }
        return as_result(next);
    }
    let request: JoinRequest = serde_json::from_value(params.clone())
        .map_err(|e| join_error(&JoinError::new(ErrorCode::InvalidRequest, format!("invalid join params: {e}"))))?;
    let valid = request.validate().map_err(|e| join_error(&e))?;
    let game = GameKey { game: valid.game.clone(), version: valid.version.clone() };
    if !config.games.serves(&game.game, &game.version) {
        return Err(join_error(&JoinError::new(
            ErrorCode::UnknownGame,
            format!("{} is not served here", game.label()),
        )));
    }
    let request_id = valid
        .request_id
        .as_ref()
        .map(|r| r.to_string())
        .ok_or_else(|| protocol_error(error_codes::INVALID_PARAMS, "missing request id"))?;
    let peer = params.get(PEER_PARAM).and_then(Value::as_str).map(str::to_string);
    if let Some(&entity) = index.0.get(&request_id)
        && let Ok((updates, _, ticket)) = joins.get(entity)
    {
        let same = ticket.peer_ip == peer
            && ticket.game == game.game.as_str()
            && ticket.version == game.version.as_str()
            && ticket.transport == valid.transport;
        if !same {
            return Err(join_error(&JoinError::new(
                ErrorCode::InvalidRequest,
                "request_id is already used by a different request; choose a new one",
            )));
        }
        cursors.0.insert(stream, (entity, updates.len()));
        return as_result(updates.latest());
    }
    let waiting = joins.iter().filter(|(_, phase, _)| !phase.is_terminal()).count();
    if waiting >= config.max_waiting {
        return Err(code_error(ErrorCode::TooManyWaiting));
    }
    let from_peer = joins.iter().filter(|(_, phase, t)| !phase.is_terminal() && t.peer_ip == peer).count();
    if from_peer >= config.max_joins_per_ip {
        return Err(join_error(&JoinError::new(ErrorCode::RateLimited, "too many joins waiting from this address")));
    }
    let client_ip = match valid.client_ip {
        Some(ip) if config.dev_mode => Some(ip.to_string()),
        _ => peer.clone(),
    };
    let now = now(&time);
    let first = JoinProgress::Queued { request_id: request_id.clone() };
    let entity = commands
        .spawn((
            Name::new(format!("join {request_id}")),
            JoinTicket {
                request_id: request_id.clone(),
                game: game.game.to_string(),
                version: game.version.to_string(),
                transport: valid.transport,
                client_ip,
                peer_ip: peer,
                region: valid.region.as_ref().map(|r| r.to_string()),
                created_at: now,
                deadline: now + config.join_deadline.as_secs_f64(),
                lost_servers: 0,
            },
            JoinSpec { request: valid, game },
            JoinPhase::Queued,
            JoinUpdates::new(first.clone()),
        ))
        .id();
    index.0.insert(request_id, entity);
    cursors.0.insert(stream, (entity, 1));
    waker.wake();
    as_result(&first)
}

/// Withdraws a pending join by its request id; only from the address that made it.
pub fn cancel(
    In(params): In<Option<Value>>,
    index: Res<RequestIndex>,
    joins: Query<(&JoinPhase, &JoinTicket)>,
    mut failures: MessageWriter<FailJoin>,
    waker: Res<AppWaker>,
) -> BrpResult {
    let request_id = params
        .as_ref()
        .and_then(|p| p.get("request_id"))
        .and_then(Value::as_str)
        .ok_or_else(|| join_error(&JoinError::new(ErrorCode::InvalidRequest, "request_id is required")))?;
    let peer = params.as_ref().and_then(|p| p.get(PEER_PARAM)).and_then(Value::as_str);
    let pending = index.0.get(request_id).filter(|e| {
        joins.get(**e).is_ok_and(|(phase, ticket)| !phase.is_terminal() && ticket.peer_ip.as_deref() == peer)
    });
    if let Some(&request) = pending {
        failures.write(FailJoin { request, error: ErrorCode::Cancelled.into() });
        waker.wake();
    }
    Ok(json!({ "cancelled": pending.is_some() }))
}

/// Drops cursors of streams whose join is gone.
pub fn prune_stream_cursors(mut cursors: ResMut<StreamCursors>, joins: Query<(), With<JoinTicket>>) {
    cursors.0.retain(|_, (entity, _)| joins.contains(*entity));
}
