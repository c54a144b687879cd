//! The matchmaking BRP methods, as thin translators: typed params in, the pure admission check
//! and the join's progress log out. `matchmaker.join+watch` and `matchmaker.join` share one
//! watching handler: the HTTP front streams every message of the first and only the terminal
//! one of the second.

use std::collections::HashMap;

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevy_remote::{BrpError, BrpResult};
use bevygap_shared::inbox::AppWaker;
use bevygap_shared::protocol::{ErrorCode, JoinError, JoinProgress, RequestId};
use serde_json::{Value, json};

use super::envelope::join_error;
use super::params::{CancelCall, JoinCall, parse};
use crate::clock::now;
use crate::config::MatchmakerConfig;
use crate::joins::admission::{Admission, Waiting, admit};
use crate::joins::{FailJoin, Join, JoinUpdates, RequestIndex};

/// Per HTTP stream: the join it follows and how many of its messages it was sent.
#[derive(Resource, Debug, Default)]
pub struct StreamCursors(pub HashMap<u64, (Entity, usize)>);

fn as_result(progress: &JoinProgress) -> BrpResult<Option<Value>> {
    match progress {
        JoinProgress::Failed(error) => Err(join_error(error)),
        other => serde_json::to_value(other).map(Some).map_err(BrpError::internal),
    }
}

/// The joins as the join methods see them: by request id, and by the stream following them.
#[derive(SystemParam)]
pub struct JoinBook<'w, 's> {
    joins: Query<'w, 's, (&'static Join, &'static JoinUpdates)>,
    index: ResMut<'w, RequestIndex>,
    cursors: ResMut<'w, StreamCursors>,
}

/// Starts or resumes a join and returns each new progress message for the calling stream.
pub fn join_watch(
    In(params): In<Option<Value>>,
    mut commands: Commands,
    book: JoinBook,
    config: Res<MatchmakerConfig>,
    waker: Res<AppWaker>,
    time: Res<Time<Real>>,
) -> BrpResult<Option<Value>> {
    let JoinCall { caller, request } = parse(params)?;
    let JoinBook { joins, mut index, mut cursors } = book;
    if let Some(&(entity, sent)) = cursors.0.get(&caller.stream) {
        let Ok((_, updates)) = joins.get(entity) else {
            cursors.0.remove(&caller.stream);
            return Err(join_error(&ErrorCode::Internal.into()));
        };
        let Some(next) = updates.get(sent) else { return Ok(None) };
        cursors.0.insert(caller.stream, (entity, sent + 1));
        if sent + 1 < updates.len() {
            waker.wake(); // one message per tick: come back at once for the rest
        }
        return as_result(next);
    }
    let valid = request.validate().map_err(|e| join_error(&e))?;
    let request_id = valid
        .request_id
        .clone()
        .or_else(|| RequestId::new(format!("{:032x}", rand::random::<u128>())).ok())
        .ok_or_else(|| join_error(&ErrorCode::Internal.into()))?;
    let requester = caller.ip.to_string();
    let existing = index.0.get(request_id.as_str()).and_then(|e| joins.get(*e).ok().map(|(join, _)| (*e, join)));
    let mut waiting = Waiting::default();
    for (join, _) in joins.iter().filter(|(join, _)| !join.phase().is_terminal()) {
        waiting.total += 1;
        waiting.from_requester += usize::from(join.requester == requester);
    }
    let served = config.games.serves(&valid.game, &valid.version);
    match admit(&valid, &requester, existing.map(|(_, join)| join), served, waiting, &config.admission_limits()) {
        Admission::Refuse(error) => Err(join_error(&error)),
        Admission::Resume => {
            let Some((entity, _)) = existing else { return Err(join_error(&ErrorCode::Internal.into())) };
            let Ok((_, updates)) = joins.get(entity) else { return Err(join_error(&ErrorCode::Internal.into())) };
            cursors.0.insert(caller.stream, (entity, updates.len()));
            as_result(updates.latest())
        }
        Admission::Admit => {
            let client_ip = match valid.client_ip {
                Some(ip) if config.dev_mode => ip.to_string(),
                _ => requester.clone(),
            };
            let now = now(&time);
            let deadline = now + config.join_deadline.as_secs_f64();
            let (join, first) = Join::new(&valid, request_id.clone(), requester, client_ip, now, deadline);
            let entity =
                commands.spawn((Name::new(format!("join {request_id}")), join, JoinUpdates::new(first.clone()))).id();
            index.0.insert(request_id.to_string(), entity);
            cursors.0.insert(caller.stream, (entity, 1));
            waker.wake();
            as_result(&first)
        }
    }
}

/// Withdraws a pending join by its request id; only from the address that made it.
pub fn cancel(
    In(params): In<Option<Value>>,
    index: Res<RequestIndex>,
    joins: Query<&Join>,
    mut failures: MessageWriter<FailJoin>,
    waker: Res<AppWaker>,
) -> BrpResult {
    let CancelCall { caller, request } = parse(params)?;
    let requester = caller.ip.to_string();
    let pending = index
        .0
        .get(&request.request_id)
        .copied()
        .filter(|e| joins.get(*e).is_ok_and(|join| !join.phase().is_terminal() && join.requester == requester));
    if let Some(join) = pending {
        failures.write(FailJoin { join, error: JoinError::from(ErrorCode::Cancelled) });
        waker.wake();
    }
    Ok(json!({ "cancelled": pending.is_some() }))
}

/// Drops cursors of streams whose join is gone.
pub fn prune_stream_cursors(mut cursors: ResMut<StreamCursors>, joins: Query<(), With<Join>>) {
    cursors.0.retain(|_, (entity, _)| joins.contains(*entity));
}
