//! The seam between the matchmaker and whatever starts game servers. Request, session and
//! server logic talk only to [`ServerProvider`]: `local` (child processes), `fleet` (servers
//! started elsewhere that register themselves) and the test [`FakeProvider`].

mod fake;
mod fleet;
mod local;

use std::sync::Arc;

use bevy::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::protocol::{GameName, GameVersion};

pub use fake::{FakeProvider, FakeProviderLog};
pub use fleet::FleetProvider;
pub use local::{LocalProvider, LocalProviderConfig};

use bevygap_shared::inbox::InboxSender;

/// What to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub server_id: ServerId,
    pub game: GameName,
    pub version: GameVersion,
    pub capacity: u32,
    /// The players it is launched for, so a provider that picks a location (Edgegap) can
    /// start it near them; empty when unknown.
    pub player_ips: Vec<std::net::IpAddr>,
}

/// What a provider reports back, asynchronously.
#[derive(Debug, Clone)]
pub enum ProviderEvent {
    /// The server was launched; it is not ready until it reports itself in NATS.
    Launched { server_id: ServerId },
    /// The server could not be launched at all.
    LaunchFailed { server_id: ServerId, error: ProviderError },
    /// The server's process (or deployment) is gone, for whatever reason.
    Exited { server_id: ServerId, detail: String },
}

/// Why a provider could not act.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    #[error("the game-server command is empty")]
    EmptyCommand,
    #[error("cannot start {command:?}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("no free UDP port on {ip}: {source}")]
    Ports {
        ip: std::net::IpAddr,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A test's [`FakeProvider`] was told to fail.
    #[error("refused by the fake provider")]
    Refused,
    /// The provider does not start servers (a fleet).
    #[error("this provider does not start servers")]
    Unsupported,
}

/// Starts and stops game servers. Calls must not block: long work happens on the provider's
/// own threads or tasks and comes back as [`ProviderEvent`]s.
pub trait ServerProvider: Send + Sync + 'static {
    /// Short name recorded on servers (`local`, `edgegap`…).
    fn name(&self) -> &'static str;
    /// Whether this provider starts (and so also stops) servers on demand. A fleet does not:
    /// its servers are started by someone else and register themselves, and the matchmaker
    /// only places players on them.
    fn starts_servers(&self) -> bool {
        true
    }
    /// Starts a server for `spec`; the outcome arrives on `events`.
    fn launch(&self, spec: ServerSpec, events: InboxSender<ProviderEvent>);
    /// Asks a server to stop (gracefully first); its exit arrives as [`ProviderEvent::Exited`].
    fn stop(&self, server_id: &ServerId);
    /// Stops everything this provider started, waiting for it; used on shutdown.
    fn shutdown_all(&self);
    /// Servers this provider currently runs, for leak checks and operators.
    fn running(&self) -> Vec<ServerId>;
}

/// The provider the app uses (the ECS's handle on the [`ServerProvider`] seam).
#[derive(Resource, Clone)]
pub struct ProviderHandle(pub Arc<dyn ServerProvider>);

impl ProviderHandle {
    /// A fresh server id: the provider's name and 64 random bits.
    pub fn new_server_id(&self) -> ServerId {
        let id = format!("{}-{:016x}", self.0.name(), rand::random::<u64>());
        // Provider names are short lowercase words, so the id is always valid; fall back to a
        // plain hex id rather than panic if a provider ever picks an odd name.
        ServerId::new(id)
            .unwrap_or_else(|_| ServerId::new(format!("s-{:016x}", rand::random::<u64>())).expect("hex id"))
    }
}

/// Installs the provider; stops every server it started when the app exits.
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
        app.insert_resource(ProviderHandle(self.provider.clone()))
            .add_systems(Last, stop_all_on_exit.run_if(on_message::<AppExit>));
    }
}

fn stop_all_on_exit(provider: Res<ProviderHandle>) {
    provider.0.shutdown_all();
}
