//! Lifecycle: becoming ready, draining, and shutting down cleanly.
//!
//! - **Ready** once the Lightyear server listens on every transport and NATS acknowledged the server record.
//! - **Drain** ([`ServerControl::Drain`]: matchmaker command, certificate expiry, game code):
//!   admit no one new, publish status `draining`, shut down when the last player leaves.
//! - **Shutdown** ([`ServerControl::Shutdown`], SIGTERM/SIGINT, end of a drain, idle timeout):
//!   stop the netcode servers (clients get disconnect packets), remove every record, exit the
//!   app with [`AppExit::Success`]. On Edgegap, a shutdown the server decided itself also calls
//!   the deployment's self-stop URL, so Edgegap tears the deployment down instead of seeing a
//!   crash.

use std::time::{Duration, Instant};

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevy_tokio_tasks::TokioTasksRuntime;
use bevygap_shared::inbox::{Inbox, add_inbox};
use lightyear::prelude::Connected;
use lightyear::prelude::server::{ClientOf, Stop};

use crate::api::{BevygapServerState, BevygapStatus, BevygapSystems, ServerControl};
use crate::context::ServerContext;
use crate::nats_link::{NatsLink, RecordsRetired, ToNats};
use crate::netcode::BevygapNetcodeServer;

/// When and how the server stops; a resource while the plugin runs.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownConfig {
    /// Shut down cleanly on SIGTERM and SIGINT. Turn off when the app handles signals itself
    /// (then write [`ServerControl::Shutdown`]) or in tests sharing one process.
    pub handle_signals: bool,
    /// Stop when no player has been connected for this long (`BEVYGAP_IDLE_SHUTDOWN_SECS`).
    pub idle_timeout: Option<Duration>,
    /// On Edgegap, call the self-stop URL when the server decides to stop by itself
    /// (`BEVYGAP_EDGEGAP_SELF_STOP`, default true).
    pub edgegap_self_stop: bool,
    /// Longest time between starting to shut down and exiting, whatever is still pending.
    pub grace: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { handle_signals: true, idle_timeout: None, edgegap_self_stop: true, grace: Duration::from_secs(8) }
    }
}

/// A termination signal caught by the background listener (`SIGTERM` or `SIGINT`), delivered
/// through an [`Inbox`].
struct TerminationSignal(&'static str);

/// The Edgegap self-stop call returned (whatever its outcome), delivered through an [`Inbox`].
struct SelfStopFinished;

/// Whether the stop came from outside (SIGTERM: the provider is already stopping us).
#[derive(Resource, Debug, Default)]
struct StoppedFromOutside(bool);

/// Progress of an ongoing shutdown.
#[derive(Resource, Debug)]
struct ShutdownProgress {
    began: Instant,
    /// An Edgegap self-stop call is still under way.
    self_stop_pending: bool,
    exited: bool,
}

/// Drives the server phase and the exit.
pub struct ShutdownPlugin {
    /// When and how to stop.
    pub config: ShutdownConfig,
}

impl Plugin for ShutdownPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(self.config).init_resource::<StoppedFromOutside>();
        add_inbox::<SelfStopFinished>(app);
        if self.config.handle_signals {
            add_inbox::<TerminationSignal>(app);
            let signals = app.world().resource::<Inbox<TerminationSignal>>().sender();
            if let Some(runtime) = app.world().get_resource::<TokioTasksRuntime>() {
                runtime.runtime().spawn(async move {
                    signals.send(TerminationSignal(wait_for_termination().await));
                });
            }
            app.add_systems(Update, receive_signals.in_set(BevygapSystems::Receive));
        }
        app.add_systems(
            Update,
            (
                apply_control_requests,
                become_ready.run_if(in_state(BevygapServerState::Starting)),
                finish_draining.run_if(in_state(BevygapServerState::Draining)),
                stop_when_idle.run_if(in_state(BevygapServerState::Ready)),
                finish_shutdown.run_if(in_state(BevygapServerState::ShuttingDown)),
            )
                .chain()
                .in_set(BevygapSystems::Lifecycle),
        )
        .add_systems(OnEnter(BevygapServerState::ShuttingDown), begin_shutdown);
    }
}

async fn wait_for_termination() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        },
        Err(e) => {
            warn!("cannot listen for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

fn receive_signals(
    mut signals: ResMut<Inbox<TerminationSignal>>,
    mut outside: ResMut<StoppedFromOutside>,
    mut control: MessageWriter<ServerControl>,
) {
    for TerminationSignal(name) in signals.drain() {
        info!("{name} received: shutting down");
        outside.0 = true;
        control.write(ServerControl::Shutdown { reason: name.to_string() });
    }
}

fn apply_control_requests(
    mut requests: MessageReader<ServerControl>,
    phase: Res<State<BevygapServerState>>,
    mut next: ResMut<NextState<BevygapServerState>>,
    mut status: ResMut<BevygapStatus>,
) {
    let mut target = *phase.get();
    for request in requests.read() {
        let (wanted, reason) = match request {
            ServerControl::Drain { reason } => (BevygapServerState::Draining, reason),
            ServerControl::Shutdown { reason } => (BevygapServerState::ShuttingDown, reason),
        };
        // Phases only move forward: a drain never undoes a shutdown.
        if wanted > target {
            info!("{wanted:?}: {reason}");
            target = wanted;
            status.stop_reason = Some(reason.clone());
        }
    }
    if target != *phase.get() {
        next.set(target);
    }
}

fn become_ready(status: Res<BevygapStatus>, mut next: ResMut<NextState<BevygapServerState>>) {
    if status.listening && status.registered {
        info!("server ready");
        next.set(BevygapServerState::Ready);
    }
}

fn finish_draining(status: Res<BevygapStatus>, mut control: MessageWriter<ServerControl>) {
    if status.players.is_empty() {
        control.write(ServerControl::Shutdown { reason: "drained: the last player left".into() });
    }
}

fn stop_when_idle(
    config: Res<ShutdownConfig>,
    status: Res<BevygapStatus>,
    admission: Res<crate::admission::AdmissionHandle>,
    mut empty_since: Local<Option<Instant>>,
    mut control: MessageWriter<ServerControl>,
) {
    let Some(timeout) = config.idle_timeout else { return };
    // A granted, unexpired token means a player is on the way: not idle.
    let expected = admission.0.grants().awaiting_players(bevygap_shared::records::now_ms());
    if !status.players.is_empty() || expected {
        *empty_since = None;
        return;
    }
    let since = *empty_since.get_or_insert_with(Instant::now);
    if since.elapsed() >= timeout {
        control.write(ServerControl::Shutdown { reason: format!("no players for {timeout:?}") });
        *empty_since = None;
    }
}

/// What deciding on (and starting) Edgegap's self-stop needs.
#[derive(SystemParam)]
struct SelfStop<'w> {
    ctx: Res<'w, ServerContext>,
    config: Res<'w, ShutdownConfig>,
    outside: Res<'w, StoppedFromOutside>,
    finished: Res<'w, Inbox<SelfStopFinished>>,
    runtime: Option<Res<'w, TokioTasksRuntime>>,
}

impl SelfStop<'_> {
    /// On Edgegap, when the server decided to stop by itself, asks Edgegap to tear the
    /// deployment down (in the background; [`SelfStopFinished`] arrives when the call returns).
    /// Returns whether a call was started.
    fn request(&self) -> bool {
        let (Some(deployment), Some(runtime)) = (self.ctx.edgegap(), self.runtime.as_ref()) else { return false };
        if !self.config.edgegap_self_stop || self.outside.0 {
            return false;
        }
        let finished = self.finished.sender();
        let client = deployment.context_client();
        runtime.runtime().spawn_blocking(move || {
            match client.self_stop() {
                Ok(outcome) => info!("Edgegap self-stop requested: {outcome:?}"),
                Err(e) => error!("Edgegap self-stop failed: {e}"),
            }
            finished.send(SelfStopFinished);
        });
        true
    }
}

fn begin_shutdown(
    mut commands: Commands,
    servers: Query<Entity, With<BevygapNetcodeServer>>,
    link: Res<NatsLink>,
    self_stop: SelfStop,
) {
    info!("shutting down: disconnecting players and removing records");
    for entity in &servers {
        commands.trigger(Stop { entity });
    }
    link.send(ToNats::Retire);
    let self_stop_pending = self_stop.request();
    commands.insert_resource(ShutdownProgress { began: Instant::now(), self_stop_pending, exited: false });
}

fn finish_shutdown(
    progress: Option<ResMut<ShutdownProgress>>,
    mut self_stopped: ResMut<Inbox<SelfStopFinished>>,
    retired: Res<RecordsRetired>,
    config: Res<ShutdownConfig>,
    players: Query<(), (With<ClientOf>, With<Connected>)>,
    mut exit: MessageWriter<AppExit>,
) {
    let Some(mut progress) = progress else { return };
    if self_stopped.drain().count() > 0 {
        progress.self_stop_pending = false;
    }
    if progress.exited {
        return;
    }
    let elapsed = progress.began.elapsed();
    // A few frames at least, so the disconnect packets go out.
    let settled = retired.0.is_some()
        && players.is_empty()
        && !progress.self_stop_pending
        && elapsed >= Duration::from_millis(200);
    if settled || elapsed >= config.grace {
        if !settled {
            warn!("exiting after {elapsed:?} with work still pending");
        }
        info!("server stopped");
        progress.exited = true;
        exit.write(AppExit::Success);
    }
}
