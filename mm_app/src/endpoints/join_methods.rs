//! The matchmaking BRP methods, as thin translators: typed params in, the pure admission check
//! and the join's progress log out. `matchmaker.join+watch` and `matchmaker.join` share one
//! watching handler: the HTTP front streams every message of the first and only the terminal
//! one of the second.

use std::collections::HashMap;

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevy_remote::{BrpError, BrpResult};
use bevygap_shared::inbox::AppWaker;
use bevygap_shared::protocol::{ErrorCode, JoinError, JoinProgress, JoinRequest, RequestId};
use serde_json::{Value, json};

use super::envelope::join_error;
use super::limits::address_key;
use super::params::{Caller, CancelCall, JoinCall, parse};
use crate::clock::now;
use crate::config::MatchmakerConfig;
use crate::joins::admission::{Admission, Waiting, admit};
use crate::joins::{FailJoin, Join, JoinPhase, JoinUpdates, RequestIndex, Requester};
use crate::nats_bridge::NatsLinkState;
use crate::tokens::{TokenIndex, TokenState};

/// Per HTTP stream: the join it follows and how many of its messages it was sent, or when it
/// was answered with an error. bevy_remote runs a watching handler again every tick until the
/// front has dropped the stream, so a refused stream must stay refused: asked again a tick
/// later (when a slot may have freed), it must not create a join nobody listens to.
#[derive(Resource, Debug, Default)]
pub struct StreamCursors {
    following: HashMap<u64, (Entity, usize)>,
    refused: HashMap<u64, f64>,
}

/// How long a refused stream is remembered; bevy_remote drops the watcher within a tick or two
/// of the front closing the stream, and stream ids are never reused.
const REFUSED_MEMORY_SECS: f64 = 60.0;

fn as_result(progress: &JoinProgress) -> BrpResult<Option<Value>> {
    match progress {
        JoinProgress::Failed(error) => Err(join_error(error)),
        other => serde_json::to_value(other).map(Some).map_err(BrpError::internal),
    }
}

/// The joins as the join methods see them: by request id, by the stream following them, and
/// with the state of the tokens they were given.
#[derive(SystemParam)]
pub struct JoinBook<'w, 's> {
    joins: Query<'w, 's, (&'static Join, &'static JoinUpdates)>,
    index: ResMut<'w, RequestIndex>,
    cursors: ResMut<'w, StreamCursors>,
    tokens: Res<'w, TokenIndex>,
    token_states: Query<'w, 's, &'static TokenState>,
    link: Res<'w, NatsLinkState>,
}

impl JoinBook<'_, '_> {
    /// Joins waiting, and seats `requester` holds: its waiting joins plus its ready joins
    /// whose player has not connected yet.
    fn waiting(&self, requester: &Requester) -> Waiting {
        let mut waiting = Waiting::default();
        for (join, _) in &self.joins {
            let pending = !join.phase().is_terminal();
            waiting.total += usize::from(pending);
            let unclaimed = match join.phase() {
                JoinPhase::Ready { seat, .. } => self
                    .tokens
                    .0
                    .get(&seat.client_id)
                    .and_then(|token| self.token_states.get(*token).ok())
                    .is_some_and(|state| *state == TokenState::Unclaimed),
                _ => false,
            };
            waiting.from_requester += usize::from((pending || unclaimed) && join.requester.key == requester.key);
        }
        waiting
    }
}

/// Starts or resumes a join and returns each new progress message for the calling stream.
pub fn join_watch(
    In(params): In<Option<Value>>,
    mut commands: Commands,
    mut book: JoinBook,
    config: Res<MatchmakerConfig>,
    waker: Res<AppWaker>,
    time: Res<Time<Real>>,
) -> BrpResult<Option<Value>> {
    let JoinCall { caller, request } = parse(params)?;
    if book.cursors.refused.contains_key(&caller.stream) {
        return Ok(None); // answered already; the front is closing this stream
    }
    if let Some(&(entity, sent)) = book.cursors.following.get(&caller.stream) {
        let Ok((_, updates)) = book.joins.get(entity) else {
            book.cursors.following.remove(&caller.stream);
            return Err(join_error(&ErrorCode::Internal.into()));
        };
        let Some(next) = updates.get(sent) else { return Ok(None) };
        book.cursors.following.insert(caller.stream, (entity, sent + 1));
        if sent + 1 < updates.len() {
            waker.wake(); // one message per tick: come back at once for the rest
        }
        return as_result(next);
    }
    let now = now(&time);
    let answer = start_or_resume(caller, request, &mut commands, &mut book, &config, now);
    match &answer {
        Ok(_) => waker.wake(),
        Err(_) => {
            book.cursors.refused.insert(caller.stream, now);
        }
    }
    answer
}

/// Admits a new join or resumes the one holding the request id, for a stream seen for the
/// first time.
fn start_or_resume(
    caller: Caller,
    request: JoinRequest,
    commands: &mut Commands,
    book: &mut JoinBook,
    config: &MatchmakerConfig,
    now: f64,
) -> BrpResult<Option<Value>> {
    let valid = request.validate().map_err(|e| {
        crate::telemetry::join_refused(e.code.as_str());
        join_error(&e)
    })?;
    let request_id = valid
        .request_id
        .clone()
        .or_else(|| RequestId::new(format!("{:032x}", rand::random::<u128>())).ok())
        .ok_or_else(|| join_error(&ErrorCode::Internal.into()))?;
    let requester = Requester { ip: caller.ip.to_string(), key: address_key(caller.ip).to_string() };
    let existing = book.index.0.get(request_id.as_str()).copied();
    let existing_join = existing.and_then(|e| book.joins.get(e).ok()).map(|(join, _)| join);
    let served = config.games.serves(&valid.game, &valid.version);
    let waiting = book.waiting(&requester);
    let limits = config.admission_limits();
    match admit(&valid, &requester, existing_join, served, waiting, &limits, book.link.is_up()) {
        Admission::Refuse(error) => {
            crate::telemetry::join_refused(error.code.as_str());
            Err(join_error(&error))
        }
        Admission::Resume => {
            let resumed = existing.and_then(|e| book.joins.get(e).ok().map(|(_, updates)| (e, updates)));
            let Some((entity, updates)) = resumed else { return Err(join_error(&ErrorCode::Internal.into())) };
            let latest = as_result(updates.latest());
            book.cursors.following.insert(caller.stream, (entity, updates.len()));
            latest
        }
        Admission::Admit => {
            let client_ip = match valid.client_ip {
                Some(ip) if config.dev_mode => ip.to_string(),
                _ => requester.ip.clone(),
            };
            let deadline = now + config.join_deadline.as_secs_f64();
            let (join, first) = Join::new(&valid, request_id.clone(), requester, client_ip, now, deadline);
            tracing::info!(request_id = %request_id, game = %join.game.label(), "join queued");
            let entity =
                commands.spawn((Name::new(format!("join {request_id}")), join, JoinUpdates::new(first.clone()))).id();
            book.index.0.insert(request_id.to_string(), entity);
            book.cursors.following.insert(caller.stream, (entity, 1));
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
        .filter(|e| joins.get(*e).is_ok_and(|join| !join.phase().is_terminal() && join.requester.ip == requester));
    if let Some(join) = pending {
        failures.write(FailJoin { join, error: JoinError::from(ErrorCode::Cancelled) });
        waker.wake();
    }
    Ok(json!({ "cancelled": pending.is_some() }))
}

/// Drops cursors of streams whose join is gone, and refusals old enough to be forgotten.
pub fn prune_stream_cursors(mut cursors: ResMut<StreamCursors>, joins: Query<(), With<Join>>, time: Res<Time<Real>>) {
    let now = now(&time);
    cursors.following.retain(|_, (entity, _)| joins.contains(*entity));
    cursors.refused.retain(|_, at| now - *at < REFUSED_MEMORY_SECS);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bevygap_shared::LightyearKeys;

    use super::*;
    use crate::joins::JoinsPlugin;
    use crate::nats_bridge::MemoryNatsPlugin;
    use crate::providers::{FakeProvider, ProviderPlugin};
    use crate::tokens::MatchmakerKeys;

    fn app(configure: impl FnOnce(&mut MatchmakerConfig)) -> App {
        let mut config = MatchmakerConfig::for_tests("join-methods", Vec::new());
        configure(&mut config);
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(config)
            .insert_resource(MatchmakerKeys(LightyearKeys::development()))
            .init_resource::<AppWaker>()
            .init_resource::<StreamCursors>()
            .add_plugins((MemoryNatsPlugin, ProviderPlugin::new(Arc::new(FakeProvider::new())), JoinsPlugin));
        app.finish();
        app.cleanup();
        app.update();
        app
    }

    fn call(app: &mut App, stream: u64, request_id: &str) -> BrpResult<Option<Value>> {
        let request = JoinRequest { request_id: Some(request_id.into()), ..JoinRequest::new("demo", "1.0") };
        let caller = Caller { ip: "203.0.113.1".parse().expect("literal"), stream };
        let params = serde_json::to_value(JoinCall { caller, request }).ok();
        app.world_mut().run_system_cached_with(join_watch, params).expect("the handler runs")
    }

    #[test]
    fn a_refused_stream_stays_refused_when_bevy_remote_asks_again() {
        let mut app = app(|c| c.max_waiting = 1);
        assert!(call(&mut app, 1, "first-join-0001").is_ok(), "the first join is admitted");
        let refused = call(&mut app, 2, "second-join-0002").expect_err("the cap refuses the second");
        assert_eq!(refused.data.as_ref().and_then(|d| d["code"].as_str()), Some("too_many_waiting"));

        let first = app.world().resource::<RequestIndex>().0["first-join-0001"];
        app.world_mut().write_message(FailJoin { join: first, error: ErrorCode::Cancelled.into() });
        app.update();
        // A slot is free now; bevy_remote runs the watcher of the refused stream once more
        // before it notices the front closed it. That must not start a join.
        assert_eq!(call(&mut app, 2, "second-join-0002").ok(), Some(None));
        assert!(!app.world().resource::<RequestIndex>().0.contains_key("second-join-0002"), "no join nobody follows");
        assert!(call(&mut app, 3, "second-join-0002").is_ok(), "a new call is admitted");
    }
}
