//! The HTTP transport: two endpoints speaking JSON-RPC 2.0 into the calls layer
//! ([`crate::calls`]): the public one (players: matchmaking methods only, limits, streamed
//! progress) and the admin one (operators: full BRP plus admin methods, bearer token off
//! loopback). What is let through is decided by the [`gatekeeper`].

pub mod connections;
mod front;
pub mod gatekeeper;
pub mod limits;
pub mod settings;

use std::net::SocketAddr;
use std::sync::Arc;

use bevy::prelude::*;
use bevy_remote::BrpSender;
use bevy_tokio_tasks::TokioTasksRuntime;

pub use front::Front;
pub use gatekeeper::FrontKind;
pub use settings::FrontSettings;

use crate::calls::{CallForwarder, CallRouter, CallsPlugin, JoinDesk};
use crate::joins::JoinSettings;
use crate::schedule::require;
use bevygap_shared::inbox::AppWaker;

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
    pub fn bind(settings: &FrontSettings) -> Result<Self, (SocketAddr, std::io::Error)> {
        let bind = |addr: SocketAddr| {
            std::net::TcpListener::bind(addr).and_then(|l| l.set_nonblocking(true).map(|_| l)).map_err(|e| (addr, e))
        };
        Ok(Self { public: bind(settings.public_addr)?, admin: bind(settings.admin_addr)? })
    }
}

/// Serves both HTTP endpoints on bound listeners; builds on the calls plugin, which holds
/// the methods they reach.
pub struct HttpFrontPlugin {
    listeners: std::sync::Mutex<Option<Listeners>>,
}

impl HttpFrontPlugin {
    pub fn new(listeners: Listeners) -> Self {
        Self { listeners: std::sync::Mutex::new(Some(listeners)) }
    }
}

impl Plugin for HttpFrontPlugin {
    fn build(&self, app: &mut App) {
        require(app, || CallsPlugin);
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
    (settings, joins): (Res<FrontSettings>, Res<JoinSettings>),
    waker: Res<AppWaker>,
    forwarder: Option<Res<CallForwarder>>,
    metrics: Option<Res<crate::telemetry::MetricsHandle>>,
) {
    let Some(listeners) = pending.0.take() else { return };
    let sender: async_channel::Sender<bevy_remote::BrpMessage> = (*brp).clone();
    // With a namespace lease, calls go to whichever replica owns it.
    let calls = CallRouter::new(sender, desk.clone(), waker.clone(), forwarder.map(|f| f.0.clone()));
    let handle = rt.runtime().handle().clone();
    for (kind, listener) in [(FrontKind::Public, listeners.public), (FrontKind::Admin, listeners.admin)] {
        let metrics = metrics.as_ref().map(|m| m.0.clone());
        let front = Arc::new(Front::new(kind, &settings, joins.call_deadline(), calls.clone(), metrics));
        let _guard = handle.enter();
        match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                handle.spawn(front::serve(listener, front));
            }
            Err(e) => tracing::error!("cannot serve the {kind:?} endpoint: {e}"),
        }
    }
}
