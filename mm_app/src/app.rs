//! Assembling the matchmaker app from its plugins.

use crate::config::LogFormat;
use crate::ownership::{Forwarding, LeaseHold, LeaseStore, LeaseTerms, Ownership, OwnershipPlugin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bevy::prelude::*;
use bevy_tokio_tasks::{TokioTasksPlugin, TokioTasksRuntime};
use bevygap_shared::LightyearKeys;
use bevygap_shared::kv::{KvError, KvStores};
use bevygap_shared::naming::NatsRole;
use bevygap_shared::naming::ServerId;
use bevygap_shared::nats::{InitialConnect, NatsAuth, NatsConfig, NatsConnection, NatsError};

use crate::calls::CallForwarder;
use crate::config::MatchmakerConfig;
use crate::endpoints::{HttpFrontPlugin, Listeners};
use crate::nats_bridge::{Nats, NatsBridgePlugin};
use crate::providers::{ProviderHandle, ProviderPlugin, ServerProvider};
use crate::tokens::MatchmakerKeys;
use crate::wake::wakeable_runner;
use bevygap_shared::inbox::AppWaker;

/// Why the matchmaker could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Nats(#[from] NatsError),
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The auth callout service cannot start (its seed, or its NATS connection).
    #[error("the auth callout service cannot start: {0}")]
    Callout(String),
}

/// Set from outside (signal handler, test) to stop the app at the next tick.
#[derive(Resource, Clone, Default)]
pub struct ShutdownFlag(Arc<AtomicBool>);

/// Stops a running matchmaker from another thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    flag: ShutdownFlag,
    waker: AppWaker,
}

impl ShutdownHandle {
    /// Asks the app to exit; it stops every game server it started on the way out.
    pub fn shutdown(&self) {
        self.flag.0.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
}

fn exit_when_flagged(flag: Res<ShutdownFlag>, mut exit: MessageWriter<AppExit>) {
    if flag.0.load(Ordering::SeqCst) {
        exit.write(AppExit::Success);
    }
}

/// Hands the provider the server ids NATS knows, at the first tick and then every orphan
/// grace (twice the server start timeout), so it can stop servers an earlier, killed
/// matchmaker process started and lost (see [`ServerProvider::reconcile`]). The `servers`
/// bucket is read directly (not the watch, which may not have caught up at startup); a failed
/// read skips that round, since stopping on an incomplete picture could kill a live server.
fn reconcile_provider(
    provider: Res<ProviderHandle>,
    nats: Res<Nats>,
    settings: Res<crate::servers::ServerSettings>,
    runtime: Res<TokioTasksRuntime>,
    time: Res<Time<Real>>,
    mut next: Local<Option<Duration>>,
) {
    let now = time.elapsed();
    if next.is_some_and(|at| now < at) || !provider.0.starts_servers() {
        return;
    }
    let grace = settings.start_timeout.saturating_mul(2);
    *next = Some(now + grace);
    let (provider, servers) = (provider.0.clone(), nats.kv.servers.clone());
    runtime.spawn_background_task(move |_| async move {
        use futures::TryStreamExt;
        let keys: Result<Vec<String>, _> = match servers.keys().await {
            Ok(keys) => keys.try_collect().await,
            Err(e) => {
                tracing::warn!("cannot list the servers bucket, no provider sweep this round: {e}");
                return;
            }
        };
        match keys {
            Ok(keys) => {
                let known: Vec<ServerId> = keys.into_iter().filter_map(|k| ServerId::new(k).ok()).collect();
                provider.reconcile(&known, grace);
            }
            Err(e) => tracing::warn!("cannot list the servers bucket, no provider sweep this round: {e}"),
        }
    });
}

/// One JSON object per log line on stderr (`BEVYGAP_LOG_FORMAT=json`), fields as keys.
fn json_log_layer(_: &mut App) -> Option<bevy::log::BoxedFmtLayer> {
    Some(Box::new(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr)))
}

/// Builds the full matchmaker: connects to NATS (failing fast), provisions the KV buckets,
/// binds both endpoints and adds every plugin. `log` adds Bevy's LogPlugin (off in tests
/// that run several apps in one process).
pub fn build_app(
    config: MatchmakerConfig,
    nats_config: &NatsConfig,
    keys: LightyearKeys,
    provider: Arc<dyn ServerProvider>,
    log: bool,
) -> Result<(App, ShutdownHandle), StartError> {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins);
    if log {
        let fmt_layer = match config.log_format {
            LogFormat::Text => |_: &mut App| None,
            LogFormat::Json => json_log_layer,
        };
        app.add_plugins(bevy::log::LogPlugin { fmt_layer, ..Default::default() });
    }
    app.add_plugins(TokioTasksPlugin::default());
    let waker = AppWaker::default();
    app.insert_resource(waker.clone());

    let runtime = app.world().resource::<TokioTasksRuntime>().runtime();
    let names = config.namespace.names();
    let (conn, kv, leases) = runtime.block_on(async {
        // The matchmaker's own inbox prefix: the shipped role config lets only it read there.
        let nats_config = nats_config.clone().for_role(&names, NatsRole::Matchmaker);
        let conn = NatsConnection::connect(&nats_config, InitialConnect::FailFast).await?;
        let kv = KvStores::provision_replicated(&conn.jetstream(), &names, config.replicas.nats_replicas).await?;
        let leases =
            bevygap_shared::kv::provision_leases(&conn.jetstream(), &names, config.replicas.nats_replicas).await?;
        Ok::<_, StartError>((conn, kv, leases))
    })?;
    start_auth_callout(&config, nats_config, runtime)?;
    let listeners = Listeners::bind(&config.front).map_err(|(addr, source)| StartError::Bind { addr, source })?;

    let flag = ShutdownFlag::default();
    let ownership = Ownership::new(config.replicas.replica_name.clone(), Arc::new(LeaseHold::new()));
    let forwarding = Forwarding {
        client: conn.client().clone(),
        subject: names.matchmaker_calls_subject(),
        hold: ownership.hold().clone(),
    };
    let terms = LeaseTerms::new(config.replicas.lease_ttl);
    app.insert_resource(ownership)
        .insert_resource(CallForwarder(Arc::new(forwarding.clone())))
        .insert_resource(forwarding)
        .insert_resource(LeaseStore(leases))
        .add_plugins(OwnershipPlugin { terms });
    config.insert_into(&mut app);
    app.insert_resource(Nats { conn, kv, names })
        .insert_resource(MatchmakerKeys(keys))
        .insert_resource(flag.clone())
        .add_plugins((
            NatsBridgePlugin,
            ProviderPlugin::new(provider),
            HttpFrontPlugin::new(listeners),
            crate::telemetry::TelemetryPlugin,
        ))
        .add_systems(First, exit_when_flagged)
        .add_systems(Update, reconcile_provider.run_if(crate::fence::acting))
        .set_runner(wakeable_runner);
    run_schedules_on_one_thread(&mut app);
    Ok((app, ShutdownHandle { flag, waker }))
}

/// The matchmaker's systems are many, small and mostly chained, and the app ticks on every
/// wake-up: Bevy's multi-threaded executor would hand each one to a worker thread and back,
/// which cost more than the systems themselves (BENCHMARKS.md, "Reading the figures"). I/O runs
/// on the tokio runtime either way.
fn run_schedules_on_one_thread(app: &mut App) {
    use bevy::ecs::schedule::{ScheduleLabel, SingleThreadedExecutor};
    for label in [First.intern(), PreUpdate.intern(), Update.intern(), PostUpdate.intern(), Last.intern()] {
        app.edit_schedule(label, |schedule| {
            schedule.set_executor(SingleThreadedExecutor::new());
        });
    }
}

/// Runs the auth callout service (per-server NATS credentials) on its own connection, as the
/// callout account's user, when configured. It answers for as long as the process runs; NATS
/// reconnects it after an outage.
fn start_auth_callout(
    config: &MatchmakerConfig,
    nats_config: &NatsConfig,
    runtime: &tokio::runtime::Runtime,
) -> Result<(), StartError> {
    let Some(credentials) = &config.server_credentials else { return Ok(()) };
    let Some((service, callout)) = credentials.callout_service().map_err(|e| StartError::Callout(e.to_string()))?
    else {
        return Ok(());
    };
    let mut auth_config = nats_config.clone();
    auth_config.auth = NatsAuth::UserPassword { user: callout.user.clone(), password: callout.password.clone() };
    auth_config.client_name = "bevygap-auth-callout".into();
    auth_config.inbox_prefix = None;
    let conn = runtime
        .block_on(NatsConnection::connect(&auth_config, InitialConnect::FailFast))
        .map_err(|e| StartError::Callout(e.to_string()))?;
    tracing::info!("answering nats-server's authorization requests for game servers (auth callout)");
    runtime.spawn(async move {
        let client = conn.client().clone();
        if let Err(e) = service.serve(client).await {
            tracing::error!("the auth callout service stopped: {e}");
        }
        drop(conn);
    });
    Ok(())
}
