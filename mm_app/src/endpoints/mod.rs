//! The two HTTP endpoints, both speaking JSON-RPC 2.0 into bevy_remote's request channel:
//! the public one (players: matchmaking methods only, limits, streamed progress) and the admin
//! one (operators: full BRP plus admin methods, bearer token off loopback).

mod admin_methods;
pub mod connections;
pub mod envelope;
mod front;
pub mod join_desk;
mod join_methods;
pub mod limits;
pub mod pacing;
pub mod params;
pub mod policy;

use std::net::SocketAddr;
use std::sync::Arc;

use bevy::prelude::*;
use bevy_remote::{BrpSender, RemotePlugin};
use bevy_tokio_tasks::TokioTasksRuntime;
use bevygap_shared::protocol::{METHOD_CANCEL, METHOD_JOIN, METHOD_JOIN_WATCH};

pub use front::Front;
pub use join_desk::JoinDesk;
pub use join_methods::JoinWatchers;
pub use policy::FrontKind;

use crate::config::MatchmakerConfig;
use crate::joins::JoinsPlugin;
use crate::ownership::{CallRouter, Forwarding};
use crate::schedule::{MatchmakerSystems, require};
use bevygap_shared::inbox::AppWaker;

/// Methods a player may call; everything else is refused on the public listener.
pub const PUBLIC_METHODS: [&str; 3] = [METHOD_JOIN, METHOD_JOIN_WATCH, METHOD_CANCEL];

/// The addresses the endpoints actually bound (useful with port 0).
#[derive(Resource, Debug, Clone, Copy)]
pub struct EndpointAddrs {
    pub public: SocketAddr,
    pub admin: SocketAddr,
}

/// Bound listeners handed to the plugin; binding happens before the app is built so a busy
/// port is a clear start-up error.
pub struct Listeners {
    pub public: std::net::TcpListener,
    pub admin: std::net::TcpListener,
}

impl Listeners {
    /// Binds both endpoints; the error names the address that failed.
    pub fn bind(config: &MatchmakerConfig) -> Result<Self, (SocketAddr, std::io::Error)> {
        let bind = |addr: SocketAddr| {
            std::net::TcpListener::bind(addr).and_then(|l| l.set_nonblocking(true).map(|_| l)).map_err(|e| (addr, e))
        };
        Ok(Self { public: bind(config.public_addr)?, admin: bind(config.admin_addr)? })
    }
}

/// Registers the matchmaking and admin BRP methods and serves both endpoints; builds on the
/// join plugin (and through it on tokens, servers and sessions).
pub struct EndpointsPlugin {
    listeners: std::sync::Mutex<Option<Listeners>>,
}

impl EndpointsPlugin {
    pub fn new(listeners: Listeners) -> Self {
        Self { listeners: std::sync::Mutex::new(Some(listeners)) }
    }
}

impl Plugin for EndpointsPlugin {
    fn build(&self, app: &mut App) {
        require(app, || JoinsPlugin);
        // Joins come in through the join desk, not bevy_remote (see `join_desk`).
        let remote = RemotePlugin::default()
            .with_method_main(METHOD_CANCEL, join_methods::cancel)
            .with_method_main(admin_methods::SERVERS, admin_methods::servers)
            .with_method_main(admin_methods::SESSIONS, admin_methods::sessions)
            .with_method_main(admin_methods::STATS, admin_methods::stats)
            .with_method_main(admin_methods::DELETE_SESSION, admin_methods::delete_session)
            .with_method_main(admin_methods::DRAIN_SERVER, admin_methods::drain_server)
            .with_method_main(admin_methods::HISTORY, admin_methods::history);
        app.add_plugins(remote)
            .init_resource::<JoinDesk>()
            .register_required_components::<crate::joins::Join, JoinWatchers>()
            .add_systems(
                Update,
                (
                    join_methods::take_join_calls.in_set(MatchmakerSystems::Ingest),
                    join_desk::refuse_join_calls_while_standby.run_if(not(crate::ownership::acting)),
                    join_methods::publish_join_progress.in_set(MatchmakerSystems::Cleanup),
                ),
            );
        let listeners = self.listeners.lock().ok().and_then(|mut l| l.take());
        if let Some(listeners) = listeners {
            let addrs = EndpointAddrs {
                public: listeners.public.local_addr().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
                admin: listeners.admin.local_addr().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            };
            app.insert_resource(addrs).insert_resource(PendingListeners(Some(listeners)));
            app.add_systems(Startup, start_serving);
        }
    }
}

/// The bound listeners until the Startup system hands them to the tokio runtime.
#[derive(Resource)]
struct PendingListeners(Option<Listeners>);

fn start_serving(
    mut pending: ResMut<PendingListeners>,
    (brp, desk): (Res<BrpSender>, Res<JoinDesk>),
    rt: Res<TokioTasksRuntime>,
    config: Res<MatchmakerConfig>,
    waker: Res<AppWaker>,
    forwarding: Option<Res<Forwarding>>,
    metrics: Option<Res<crate::telemetry::MetricsHandle>>,
) {
    let Some(listeners) = pending.0.take() else { return };
    let sender: async_channel::Sender<bevy_remote::BrpMessage> = (*brp).clone();
    // With a namespace lease, calls go to whichever replica owns it.
    let calls = CallRouter::new(sender, desk.clone(), waker.clone(), forwarding.map(|f| f.clone()));
    let handle = rt.runtime().handle().clone();
    for (kind, listener) in [(FrontKind::Public, listeners.public), (FrontKind::Admin, listeners.admin)] {
        let front = Arc::new(Front::new(kind, &config, calls.clone(), metrics.as_ref().map(|m| m.0.clone())));
        let _guard = handle.enter();
        match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                handle.spawn(front::serve(listener, front));
            }
            Err(e) => tracing::error!("cannot serve the {kind:?} endpoint: {e}"),
        }
    }
}
