//! Assembling the matchmaker app from its plugins.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bevy::prelude::*;
use bevy_tokio_tasks::{TokioTasksPlugin, TokioTasksRuntime};
use bevygap_shared::LightyearKeys;
use bevygap_shared::kv::{KvError, KvStores};
use bevygap_shared::nats::{InitialConnect, NatsConfig, NatsConnection, NatsError};

use crate::config::MatchmakerConfig;
use crate::endpoints::{EndpointsPlugin, Listeners};
use crate::nats_bridge::{Nats, NatsBridgePlugin};
use crate::providers::{ProviderPlugin, ServerProvider};
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
        app.add_plugins(bevy::log::LogPlugin::default());
    }
    app.add_plugins(TokioTasksPlugin::default());
    let waker = AppWaker::default();
    app.insert_resource(waker.clone());

    let runtime = app.world().resource::<TokioTasksRuntime>().runtime();
    let names = config.namespace.names();
    let (conn, kv) = runtime.block_on(async {
        let conn = NatsConnection::connect(nats_config, InitialConnect::FailFast).await?;
        let kv = KvStores::provision(&conn.jetstream(), &names).await?;
        Ok::<_, StartError>((conn, kv))
    })?;
    let listeners = Listeners::bind(&config).map_err(|(addr, source)| StartError::Bind { addr, source })?;

    let flag = ShutdownFlag::default();
    app.insert_resource(config)
        .insert_resource(Nats { conn, kv, names })
        .insert_resource(MatchmakerKeys(keys))
        .insert_resource(flag.clone())
        .add_plugins((NatsBridgePlugin, ProviderPlugin::new(provider), EndpointsPlugin::new(listeners)))
        .add_systems(First, exit_when_flagged)
        .set_runner(wakeable_runner);
    Ok((app, ShutdownHandle { flag, waker }))
}
