//! The seam between the matchmaker and whatever starts game servers. Request, session and
//! server logic talk only to [`ServerProvider`]; adding the fleet and Edgegap providers means
//! adding an implementation here, nothing else.

mod local;

use std::sync::Arc;

use bevy::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::protocol::{GameName, GameVersion};

pub use local::{LocalProvider, LocalProviderConfig};

use bevygap_shared::inbox::{InboxSender, add_inbox};

/// What to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub server_id: ServerId,
    pub game: GameName,
    pub version: GameVersion,
    pub capacity: u32,
}

/// What a provider reports back, asynchronously.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderEvent {
    /// The server was launched; it is not ready until it reports itself in NATS.
    Launched { server_id: ServerId },
    /// The server could not be launched at all.
    LaunchFailed { server_id: ServerId, error: String },
    /// The server's process (or deployment) is gone, for whatever reason.
    Exited { server_id: ServerId, detail: String },
}

/// Why a provider could not act.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot start {command:?}: {reason}")]
    Spawn { command: String, reason: String },
    #[error("no free port: {0}")]
    Ports(String),
}

/// Starts and stops game servers. Calls must not block: long work happens on the provider's
/// own threads or tasks and comes back as [`ProviderEvent`]s.
pub trait ServerProvider: Send + Sync + 'static {
    /// Short name recorded on servers (`local`, `edgegap`…).
    fn name(&self) -> &'static str;
    /// Starts a server for `spec`; the outcome arrives on `events`.
    fn launch(&self, spec: ServerSpec, events: InboxSender<ProviderEvent>);
    /// Asks a server to stop (gracefully first); its exit arrives as [`ProviderEvent::Exited`].
    fn stop(&self, server_id: &ServerId);
    /// Stops everything this provider started, waiting for it; used on shutdown.
    fn shutdown_all(&self);
    /// Servers this provider currently runs, for leak checks and operators.
    fn running(&self) -> Vec<ServerId>;
}

/// The provider the app uses.
#[derive(Resource, Clone)]
pub struct Provider(pub Arc<dyn ServerProvider>);

/// Installs a provider and the inbox its events arrive in; stops every server on exit.
pub struct ProviderPlugin {
    provider: Arc<dyn ServerProvider>,
}

impl ProviderPlugin {
    pub fn new(provider: Arc<dyn ServerProvider>) -> Self {
        Self { provider }
    }
}

impl Plugin for ProviderPlugin {
    fn build(&self, app: &mut App) {
        add_inbox::<ProviderEvent>(app);
        app.insert_resource(Provider(self.provider.clone()))
            .add_systems(Last, stop_all_on_exit.run_if(on_message::<AppExit>));
    }
}

fn stop_all_on_exit(provider: Res<Provider>) {
    provider.0.shutdown_all();
}
