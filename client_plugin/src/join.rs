//! The join in progress as one resource, driven by small systems: start on
//! [`BevygapConnect`], follow the matchmaker's stream, back off and retry, hand the token to
//! Lightyear, watch the connection, and stop on [`BevygapCancel`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevygap_shared::protocol::{JoinProgress, Transport};
use lightyear::prelude::{Connected, Disconnect, Disconnected, DisconnectedReason};

use crate::commands::{BevygapCancel, BevygapConnect};
use crate::connect::{BevygapClient, ServerTarget, connect_client};
use crate::http::{HttpEvent, HttpRequest, HttpSink, MatchmakerHttp};
use crate::retry::classify;
use crate::rpc::{AttemptDecoder, AttemptError, AttemptUpdate, cancel_body, join_body};
use crate::{
    BevygapClientConfig, BevygapClientState, BevygapConnected, BevygapFailed, BevygapMatchFound, BevygapProgress,
    FailureCode,
};

/// The HTTP backend the plugin uses.
#[derive(Resource, Clone)]
pub(crate) struct Http(pub Arc<dyn MatchmakerHttp>);

/// The join (and then the connection) in progress; absent when idle or failed.
#[derive(Resource)]
pub(crate) struct ActiveJoin {
    request_id: String,
    /// The JSON-RPC body, identical on every attempt (same request id).
    body: String,
    /// HTTP attempts started so far.
    attempt: u32,
    started: Duration,
    stage: Stage,
}

enum Stage {
    Streaming { events: async_channel::Receiver<HttpEvent>, decoder: AttemptDecoder },
    Backoff { until: Duration },
    Connecting { client: Entity, since: Duration, server: SocketAddr, transport: Transport, session_id: String },
    Connected { client: Entity },
}

impl Stage {
    fn is_matchmaking(&self) -> bool {
        matches!(self, Stage::Streaming { .. } | Stage::Backoff { .. })
    }
}

/// Posts one attempt of the join.
fn post(http: &Http, config: &BevygapClientConfig, body: &str) -> Stage {
    let (sink, events) = HttpSink::channel();
    http.0.post(request(config, body), sink);
    Stage::Streaming { events, decoder: AttemptDecoder::default() }
}

fn request(config: &BevygapClientConfig, body: &str) -> HttpRequest {
    let t = &config.timeouts;
    HttpRequest {
        url: config.matchmaker_url.clone(),
        body: body.to_string(),
        connect_timeout: t.http_connect,
        idle_timeout: t.stream_idle,
        total_timeout: t.join + Duration::from_secs(5),
    }
}

/// Tells the matchmaker to withdraw `request_id`; nobody waits for the answer.
fn post_cancel(http: &Http, config: &BevygapClientConfig, request_id: &str) {
    let (sink, _ignored) = HttpSink::channel();
    let mut request = request(config, &cancel_body(request_id));
    request.total_timeout = config.timeouts.http_connect + Duration::from_secs(5);
    http.0.post(request, sink);
}

/// A fresh client-chosen request id: 35 characters of `[a-z0-9-]`, valid for the protocol.
fn new_request_id() -> String {
    format!("bg-{:032x}", rand::random::<u128>())
}

/// State changes and messages, always together.
#[derive(SystemParam)]
pub(crate) struct Report<'w> {
    next: ResMut<'w, NextState<BevygapClientState>>,
    progress: MessageWriter<'w, BevygapProgress>,
    failed: MessageWriter<'w, BevygapFailed>,
    connected: MessageWriter<'w, BevygapConnected>,
    matched: MessageWriter<'w, BevygapMatchFound>,
}

impl Report<'_> {
    fn step(&mut self, state: BevygapClientState, text: impl Into<String>, request_id: &str, attempt: u32) {
        self.next.set(state);
        self.progress.write(BevygapProgress { state, text: text.into(), request_id: request_id.into(), attempt });
    }

    fn fail(&mut self, code: FailureCode, message: impl Into<String>, request_id: &str) {
        let message = message.into();
        warn!("bevygap join {request_id} failed ({code}): {message}");
        self.next.set(BevygapClientState::Failed);
        self.failed.write(BevygapFailed { code, message, request_id: request_id.into() });
    }
}

/// Starts a join unless one is already under way.
pub(crate) fn start_join(
    _: On<BevygapConnect>,
    mut commands: Commands,
    active: Option<Res<ActiveJoin>>,
    config: Res<BevygapClientConfig>,
    http: Res<Http>,
    time: Res<Time<Real>>,
    mut report: Report,
) {
    if let Some(active) = active {
        warn!("bevygap: a join ({}) is already under way; cancel it first", active.request_id);
        return;
    }
    let request_id = new_request_id();
    let request = config.join_request(&request_id);
    if let Err(e) = request.validate() {
        report.fail(FailureCode::Matchmaker(e.code), e.message, &request_id);
        return;
    }
    let body = join_body(&request);
    let stage = post(&http, &config, &body);
    info!("bevygap: joining {}@{} via {} (request {request_id})", config.game, config.version, config.matchmaker_url);
    report.step(BevygapClientState::Requesting, "Contacting the matchmaker", &request_id, 1);
    commands.insert_resource(ActiveJoin { request_id, body, attempt: 1, started: time.elapsed(), stage });
}

/// Withdraws the join (telling the matchmaker) or disconnects the client.
pub(crate) fn cancel_join(
    _: On<BevygapCancel>,
    mut commands: Commands,
    active: Option<Res<ActiveJoin>>,
    config: Res<BevygapClientConfig>,
    http: Res<Http>,
    mut report: Report,
) {
    let Some(active) = active else { return };
    match &active.stage {
        Stage::Streaming { .. } | Stage::Backoff { .. } => post_cancel(&http, &config, &active.request_id),
        Stage::Connecting { client, .. } | Stage::Connected { client } => {
            commands.trigger(Disconnect { entity: *client });
        }
    }
    // Dropping the join drops the stream's receiver, which stops the HTTP call.
    commands.remove_resource::<ActiveJoin>();
    report.step(BevygapClientState::Idle, "Cancelled", &active.request_id, active.attempt);
}

/// Follows the matchmaker: progress, retries with backoff, the token, the join deadline.
pub(crate) fn follow_matchmaker(
    mut commands: Commands,
    active: Option<ResMut<ActiveJoin>>,
    config: Res<BevygapClientConfig>,
    http: Res<Http>,
    time: Res<Time<Real>>,
    clients: Query<Entity, With<BevygapClient>>,
    mut report: Report,
) {
    let Some(mut join) = active else { return };
    if !join.stage.is_matchmaking() {
        return;
    }
    let now = time.elapsed();
    let join = &mut *join;
    if now.saturating_sub(join.started) > config.timeouts.join {
        post_cancel(&http, &config, &join.request_id);
        let message = format!("no game server within {:?}", config.timeouts.join);
        report.fail(FailureCode::TimedOut, message, &join.request_id);
        commands.remove_resource::<ActiveJoin>();
        return;
    }
    let updates = match &mut join.stage {
        Stage::Backoff { until } => {
            if now >= *until {
                join.attempt += 1;
                join.stage = post(&http, &config, &join.body);
            }
            return;
        }
        Stage::Streaming { events, decoder } => {
            let mut updates = Vec::new();
            while let Ok(event) = events.try_recv() {
                updates.extend(decoder.feed(event));
            }
            if !decoder.is_finished() && events.is_closed() && events.is_empty() {
                updates.extend(decoder.feed(HttpEvent::Failed("the HTTP call stopped without a result".into())));
            }
            updates
        }
        Stage::Connecting { .. } | Stage::Connected { .. } => return,
    };
    for update in updates {
        match update {
            AttemptUpdate::Progress(progress) => {
                if let JoinProgress::MatchFound(found) = &progress {
                    report.matched.write(BevygapMatchFound {
                        match_id: found.match_id.clone(),
                        team: found.team,
                        public_id: found.public_id.clone(),
                        teammates: found.teammates.clone(),
                        request_id: join.request_id.clone(),
                    });
                }
                report.step(BevygapClientState::WaitingForServer, progress.describe(), &join.request_id, join.attempt);
            }
            AttemptUpdate::Failed(error) => {
                let verdict = classify(&error);
                let wait = verdict.retry.then(|| config.retry.backoff(join.attempt, rand::random::<f64>())).flatten();
                match wait {
                    Some(wait) if now + wait < join.started + config.timeouts.join => {
                        let text = format!("{error}; retrying in {:.1} s", wait.as_secs_f32());
                        report.step(BevygapClientState::Requesting, text, &join.request_id, join.attempt);
                        join.stage = Stage::Backoff { until: now + wait };
                    }
                    _ => {
                        report.fail(verdict.code, failure_message(&error), &join.request_id);
                        commands.remove_resource::<ActiveJoin>();
                    }
                }
            }
            AttemptUpdate::Ready(ready) => {
                let target = match ServerTarget::from_ready(&ready) {
                    Ok(t) => t,
                    Err(e) => {
                        report.fail(FailureCode::Protocol, e.to_string(), &join.request_id);
                        commands.remove_resource::<ActiveJoin>();
                        return;
                    }
                };
                let client = clients
                    .iter()
                    .next()
                    .unwrap_or_else(|| commands.spawn((BevygapClient, Name::new("Bevygap client"))).id());
                let transport = target.transport;
                match connect_client(&mut commands, client, target) {
                    Ok(server) => {
                        let text = format!("Connecting to the game server at {server}");
                        report.step(BevygapClientState::Connecting, text, &join.request_id, join.attempt);
                        join.stage = Stage::Connecting {
                            client,
                            since: now,
                            server,
                            transport,
                            session_id: ready.session_id.clone(),
                        };
                    }
                    Err(e) => {
                        report.fail(FailureCode::Protocol, e.to_string(), &join.request_id);
                        commands.remove_resource::<ActiveJoin>();
                    }
                }
            }
        }
    }
}

/// The message shown for a failure: the matchmaker's own words when it sent some.
fn failure_message(error: &AttemptError) -> String {
    match error {
        AttemptError::Rpc(e) | AttemptError::HttpStatus { error: Some(e), .. } if !e.message.is_empty() => {
            e.message.clone()
        }
        other => other.to_string(),
    }
}

/// Follows the Lightyear client once it has a token: connected, refused, timed out, lost.
pub(crate) fn watch_connection(
    mut commands: Commands,
    active: Option<ResMut<ActiveJoin>>,
    config: Res<BevygapClientConfig>,
    time: Res<Time<Real>>,
    clients: Query<(Has<Connected>, Option<&Disconnected>)>,
    mut report: Report,
) {
    let Some(mut join) = active else { return };
    let join = &mut *join;
    let (client, connecting) = match &join.stage {
        Stage::Connecting { client, .. } => (*client, true),
        Stage::Connected { client } => (*client, false),
        _ => return,
    };
    let Ok((connected, disconnected)) = clients.get(client) else {
        report.fail(FailureCode::ConnectionFailed, "the client entity was despawned", &join.request_id);
        commands.remove_resource::<ActiveJoin>();
        return;
    };
    let reason = disconnected.map(|d| &d.reason).filter(|r| !matches!(r, DisconnectedReason::Unknown));
    if let Some(DisconnectedReason::UserRequested(_)) = reason {
        report.step(BevygapClientState::Idle, "Disconnected", &join.request_id, join.attempt);
        commands.remove_resource::<ActiveJoin>();
        return;
    }
    if let Some(reason) = reason {
        let message = if connecting {
            format!("the game server did not accept the connection: {reason}")
        } else {
            format!("the connection to the game server was lost: {reason}")
        };
        report.fail(FailureCode::ConnectionFailed, message, &join.request_id);
        commands.remove_resource::<ActiveJoin>();
        return;
    }
    let Stage::Connecting { since, server, transport, session_id, .. } = &join.stage else { return };
    if connected {
        report.step(BevygapClientState::Connected, "Connected", &join.request_id, join.attempt);
        report.connected.write(BevygapConnected {
            client,
            server: *server,
            transport: *transport,
            session_id: session_id.clone(),
            request_id: join.request_id.clone(),
        });
        join.stage = Stage::Connected { client };
    } else if time.elapsed().saturating_sub(*since) > config.timeouts.server_connect {
        commands.trigger(Disconnect { entity: client });
        let message = format!("the game server did not answer within {:?}", config.timeouts.server_connect);
        report.fail(FailureCode::ConnectionFailed, message, &join.request_id);
        commands.remove_resource::<ActiveJoin>();
    }
}
