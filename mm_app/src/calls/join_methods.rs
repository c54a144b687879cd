//! The matchmaking methods, as thin translators: typed calls in from the [`JoinDesk`], the
//! pure admission check, and the join's progress log out to the streams following it. The
//! HTTP front streams every message of `matchmaker.join+watch` and only the terminal one of
//! `matchmaker.join`; `matchmaker.cancel` is a plain BRP method.

use std::collections::HashMap;

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevy_remote::{BrpError, BrpResult};
use bevygap_shared::inbox::AppWaker;
use bevygap_shared::protocol::{ErrorCode, JoinError, JoinProgress, JoinRequest, RequestId};
use serde_json::{Value, json};

use super::desk::{JoinDesk, JoinTicket};
use super::envelope::{is_terminal_join_result, join_error};
use super::params::{CancelCall, JoinCall, parse};
use crate::clock::now;
use crate::game::GameCatalog;
use crate::joins::JoinSettings;
use crate::joins::admission::address_key;
use crate::joins::admission::{Admission, WaitingTally, admit, resolve_mode};
use crate::joins::{FailJoin, Join, JoinAnswered, JoinUpdates, RequestIndex, Requester, Settled, UnclaimedSeats};
use crate::matching::ProfileSet;
use crate::nats_bridge::NatsLinkState;

/// The streams following a join: where each sends its answers and how many of the join's
/// messages it has been sent. Dropped with the join, which closes the streams still open.
/// Required by every [`Join`] (registered by the endpoints plugin), so joins restored from
/// NATS can be followed too.
#[derive(Component, Debug, Default)]
pub struct JoinWatchers(Vec<Watcher>);

#[derive(Debug)]
struct Watcher {
    answers: async_channel::Sender<BrpResult>,
    sent: usize,
}

impl Watcher {
    /// Sends the messages of `updates` this stream has not had yet; `false` once the stream is
    /// done with (its last message sent, or nobody listening).
    fn catch_up(&mut self, updates: &JoinUpdates) -> bool {
        while let Some(next) = updates.get(self.sent) {
            self.sent += 1;
            let result = as_result(next);
            let last = is_terminal_join_result(&result);
            if self.answers.try_send(result).is_err() || last {
                return false;
            }
        }
        !self.answers.is_closed()
    }
}

fn as_result(progress: &JoinProgress) -> BrpResult {
    match progress {
        JoinProgress::Failed(error) => Err(join_error(error)),
        other => serde_json::to_value(other).map_err(BrpError::internal),
    }
}

/// The joins as the join methods see them: by request id, and with the state of the tokens
/// they were given.
#[derive(SystemParam)]
pub struct JoinBook<'w, 's> {
    joins: Query<'w, 's, (&'static Join, &'static JoinUpdates, &'static mut JoinWatchers)>,
    index: ResMut<'w, RequestIndex>,
    link: Res<'w, NatsLinkState>,
}

/// Joins waiting, and seats each address key holds: its waiting joins plus its ready joins
/// whose player has not connected yet (one pass over the waiting joins for a whole batch).
fn tally<'a>(waiting: &Query<&Join, Without<Settled>>, unclaimed: &'a UnclaimedSeats) -> WaitingTally<'a> {
    let mut tally = WaitingTally::new(unclaimed.by_key());
    for join in waiting {
        tally.count_waiting(&join.requester.key);
    }
    tally
}

/// A join admitted in this batch: spawned with its watchers once the batch is done.
struct NewJoin {
    join: Join,
    first: JoinProgress,
    watchers: Vec<Watcher>,
}

/// Takes every join call waiting at the desk: admits new joins, lets retries follow the join
/// holding their request id, and answers refusals at once.
pub fn take_join_calls(
    desk: Res<JoinDesk>,
    mut commands: Commands,
    mut book: JoinBook,
    (waiting, unclaimed): (Query<&Join, Without<Settled>>, Res<UnclaimedSeats>),
    (settings, games, profiles): (Res<JoinSettings>, Res<GameCatalog>, Res<ProfileSet>),
    time: Res<Time<Real>>,
) {
    if desk.is_empty() {
        return;
    }
    let now = now(&time);
    let mut tally = tally(&waiting, &unclaimed);
    let mut new_joins: HashMap<Entity, NewJoin> = HashMap::new();
    while let Some(JoinTicket { call, answers }) = desk.take() {
        if let Err(error) = take_call(
            call,
            answers,
            &mut commands,
            &mut book,
            &mut tally,
            &mut new_joins,
            (&settings, &games, &profiles),
            now,
        ) {
            tracing::debug!("join call not answered: {error}");
        }
    }
    for (entity, NewJoin { join, first, watchers }) in new_joins {
        let name = Name::new(format!("join {}", join.request_id));
        commands.entity(entity).insert((name, join, JoinUpdates::new(first), JoinWatchers(watchers)));
    }
}

/// One call: its first answer is sent now, later ones by [`publish_join_progress`].
#[allow(clippy::too_many_arguments)] // one call's context, gathered by the system above
fn take_call(
    JoinCall { caller, request }: JoinCall,
    answers: async_channel::Sender<BrpResult>,
    commands: &mut Commands,
    book: &mut JoinBook,
    tally: &mut WaitingTally,
    new_joins: &mut HashMap<Entity, NewJoin>,
    (settings, games, profiles): (&JoinSettings, &GameCatalog, &ProfileSet),
    now: f64,
) -> Result<(), async_channel::TrySendError<BrpResult>> {
    let (request_id, valid) = match validate(request) {
        Ok(checked) => checked,
        Err(error) => return answers.try_send(Err(error)),
    };
    let claims = match resolve_mode(profiles, &valid) {
        Ok(claims) => claims,
        Err(error) => {
            crate::observe::join_refused(error.code.as_str());
            return answers.try_send(Err(join_error(&error)));
        }
    };
    let requester = Requester { ip: caller.ip.to_string(), key: address_key(caller.ip).to_string() };
    let existing = book.index.0.get(request_id.as_str()).copied();
    let existing_join = existing.and_then(|e| {
        new_joins.get(&e).map(|new| &new.join).or_else(|| book.joins.get(e).ok().map(|(join, _, _)| join))
    });
    let served = games.serves(&valid.game, &valid.version);
    let waiting = tally.for_requester(&requester);
    match admit(&valid, &requester, existing_join, served, waiting, &settings.limits, book.link.is_up()) {
        Admission::Refuse(error) => {
            crate::observe::join_refused(error.code.as_str());
            answers.try_send(Err(join_error(&error)))
        }
        Admission::Resume => resume(existing, answers, book, new_joins),
        Admission::Admit => {
            let client_ip = match valid.client_ip {
                Some(ip) if settings.trust_client_ip => ip.to_string(),
                _ => requester.ip.clone(),
            };
            let deadline = now + settings.deadline.as_secs_f64();
            tally.admitted(&requester);
            let (join, first) = Join::new(&valid, request_id.clone(), requester, client_ip, now, deadline);
            let join = join.with_claims(claims);
            tracing::debug!(request_id = %request_id, game = %join.game.label(), "join queued");
            let entity = commands.spawn_empty().id();
            book.index.0.insert(request_id.to_string(), entity);
            let sent = answers.try_send(as_result(&first));
            new_joins.insert(entity, NewJoin { join, first, watchers: vec![Watcher { answers, sent: 1 }] });
            sent
        }
    }
}

/// The request checked, with its request id (the front always sets one; a call from elsewhere
/// gets a fresh one).
fn validate(request: JoinRequest) -> Result<(RequestId, bevygap_shared::protocol::ValidJoinRequest), BrpError> {
    let valid = request.validate().map_err(|e| {
        crate::observe::join_refused(e.code.as_str());
        join_error(&e)
    })?;
    let request_id = valid
        .request_id
        .clone()
        .or_else(|| RequestId::new(format!("{:032x}", rand::random::<u128>())).ok())
        .ok_or_else(|| join_error(&ErrorCode::Internal.into()))?;
    Ok((request_id, valid))
}

/// A retry follows the join holding its request id: it is sent the latest message at once, and
/// what comes after.
fn resume(
    existing: Option<Entity>,
    answers: async_channel::Sender<BrpResult>,
    book: &mut JoinBook,
    new_joins: &mut HashMap<Entity, NewJoin>,
) -> Result<(), async_channel::TrySendError<BrpResult>> {
    let Some(entity) = existing else { return answers.try_send(Err(join_error(&ErrorCode::Internal.into()))) };
    if let Some(new) = new_joins.get_mut(&entity) {
        answers.try_send(as_result(&new.first))?;
        new.watchers.push(Watcher { answers, sent: 1 });
        return Ok(());
    }
    let Ok((_, updates, mut watchers)) = book.joins.get_mut(entity) else {
        return answers.try_send(Err(join_error(&ErrorCode::Internal.into())));
    };
    let latest = as_result(updates.latest());
    let last = is_terminal_join_result(&latest);
    answers.try_send(latest)?;
    if !last {
        let watcher = Watcher { answers, sent: updates.len() };
        watchers.0.push(watcher);
    }
    Ok(())
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

/// The streams of one join, with what it published.
type WatchedJoin = (&'static JoinUpdates, &'static mut JoinWatchers);

/// Sends each stream the messages its join published since it was last sent some, and lets
/// go of streams that are done. Only waiting joins are looked at for changes, and the ones
/// answered this tick (announced by [`JoinAnswered`]); answered joins kept for retries never
/// change again, and there are many of them.
pub fn publish_join_progress(
    mut waiting: Query<WatchedJoin, (Changed<JoinUpdates>, Without<Settled>)>,
    mut answered: MessageReader<JoinAnswered>,
    mut settled: Query<WatchedJoin, With<Settled>>,
) {
    for (updates, mut watchers) in &mut waiting {
        watchers.0.retain_mut(|watcher| watcher.catch_up(updates));
    }
    for JoinAnswered(join) in answered.read() {
        if let Ok((updates, mut watchers)) = settled.get_mut(*join) {
            watchers.0.retain_mut(|watcher| watcher.catch_up(updates));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::calls::params::Caller;
    use crate::config::MatchmakerConfig;
    use crate::harness::SteppedMatchmaker;

    /// A stepped matchmaker with one ready fleet server and the join desk in front of it.
    fn app(configure: impl FnOnce(&mut MatchmakerConfig)) -> App {
        let mut mm = SteppedMatchmaker::fleet(configure); // its app has the calls plugin
        mm.register_server("fleet-1", 8);
        mm.step();
        mm.app
    }

    /// Hands a join call to the desk, as the front does.
    fn call(app: &App, ip: &str, request_id: &str) -> async_channel::Receiver<BrpResult> {
        let request = JoinRequest { request_id: Some(request_id.into()), ..JoinRequest::new("demo", "1.0") };
        let call = JoinCall { caller: Caller { ip: ip.parse().expect("literal") }, request };
        let desk = app.world().resource::<JoinDesk>().clone();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
        runtime.block_on(desk.submit(call, Duration::ZERO)).expect("the desk has room")
    }

    fn answers(rx: &async_channel::Receiver<BrpResult>) -> Vec<BrpResult> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    fn status(result: &BrpResult) -> Option<&str> {
        result.as_ref().ok().and_then(|v| v.get("status")).and_then(Value::as_str)
    }

    fn code(result: &BrpResult) -> Option<String> {
        result.as_ref().err().and_then(|e| e.data.as_ref()).and_then(|d| d["code"].as_str()).map(str::to_owned)
    }

    #[test]
    fn a_stream_is_sent_every_message_of_its_join_and_is_closed_after_the_last() {
        let mut app = app(|_| {});
        let rx = call(&app, "203.0.113.1", "watched-join-0001");
        for _ in 0..20 {
            app.update();
        }
        let got = answers(&rx);
        let statuses: Vec<_> = got.iter().map(status).collect();
        assert!(statuses.len() >= 2, "more than the first message: {statuses:?}");
        assert_eq!(statuses.first(), Some(&Some("queued")));
        assert_eq!(statuses.last(), Some(&Some("ready")), "{statuses:?}");
        assert!(rx.is_closed(), "the stream ends after its last message");
        assert!(
            app.world_mut().query::<&JoinWatchers>().iter(app.world()).all(|w| w.0.is_empty()),
            "no watcher is kept"
        );
    }

    #[test]
    fn a_call_is_admitted_and_placed_in_the_tick_that_takes_it() {
        let mut app = app(|_| {});
        let _rx = call(&app, "203.0.113.1", "same-tick-join-0001");
        app.update();
        let entity = app.world().resource::<RequestIndex>().0["same-tick-join-0001"];
        let phase = app.world().get::<Join>(entity).expect("the join").phase();
        assert!(phase.seat().is_some(), "placed in the same tick, not left for a later wake-up: {phase:?}");
    }

    #[test]
    fn a_retry_in_the_same_batch_follows_the_same_join_and_a_later_one_gets_the_latest_message() {
        let mut app = app(|_| {});
        let first = call(&app, "203.0.113.1", "retried-join-0001");
        let again = call(&app, "203.0.113.1", "retried-join-0001");
        for _ in 0..20 {
            app.update();
        }
        let joins = app.world_mut().query::<&Join>().iter(app.world()).count();
        assert_eq!(joins, 1, "one join for one request id");
        let last = |rx| answers(rx).last().map(|r| status(r).map(str::to_owned));
        assert_eq!(last(&first), Some(Some("ready".into())));
        assert_eq!(last(&again), Some(Some("ready".into())));
        let late = call(&app, "203.0.113.1", "retried-join-0001");
        app.update();
        let late = answers(&late);
        assert_eq!(late.len(), 1, "only the latest message");
        assert_eq!(status(&late[0]), Some("ready"));
    }

    #[test]
    fn calls_in_one_batch_count_against_the_caps_as_they_are_admitted_and_refusals_end_their_stream() {
        let mut app = app(|c| c.joins.limits.max_per_requester = 2);
        let calls: Vec<_> = (0..3).map(|i| call(&app, "203.0.113.7", &format!("capped-join-000{i}"))).collect();
        let other = call(&app, "198.51.100.1", "other-address-0001");
        app.update();
        let refused = answers(&calls[2]);
        assert_eq!(refused.len(), 1);
        assert_eq!(code(&refused[0]).as_deref(), Some("rate_limited"));
        assert!(calls[2].is_closed(), "a refused stream is over");
        assert!(!app.world().resource::<RequestIndex>().0.contains_key("capped-join-0002"));
        assert_eq!(answers(&calls[0]).first().and_then(status), Some("queued"));
        assert_eq!(answers(&other).first().and_then(status), Some("queued"), "another address is not capped");
    }
}
