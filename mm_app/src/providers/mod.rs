//! The seam between the matchmaker and whatever starts game servers. Request, session and
//! server logic talk only to [`ServerProvider`]: `local` (child processes), `fleet` (servers
//! started elsewhere that register themselves), `edgegap` (deployments on Edgegap's cloud) and
//! the test `FakeProvider` (feature `harness`).

pub mod edgegap;
#[cfg(any(test, feature = "harness"))]
mod fake;
mod fleet;
mod local;

use std::sync::Arc;

use bevy::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::protocol::{GameName, GameVersion};

pub use edgegap::{EdgegapProvider, EdgegapProviderConfig};
#[cfg(any(test, feature = "harness"))]
pub use fake::{FakeProvider, FakeProviderLog};
pub use fleet::FleetProvider;
pub use local::{LocalProvider, LocalProviderConfig, SERVER_NATS_PREFIX, child_env};

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
    /// The server's own NATS credentials (`NATS_USER`/`NATS_PASSWORD`), when per-server
    /// credentials are on; the provider hands them to the server instead of any shared ones.
    pub nats_credentials: Option<bevygap_shared::nats::server_credentials::ServerCredentials>,
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
    /// A seat asked for with [`ServerProvider::take_seat`] is held at the provider (an Edgegap
    /// session linked to the server's ready deployment); `external_id` is the provider's name
    /// for it.
    SeatConfirmed { server_id: ServerId, client_id: u64, external_id: String },
    /// A seat asked for with [`ServerProvider::take_seat`] cannot be held: the player's join
    /// fails with this error.
    SeatRefused { server_id: ServerId, client_id: u64, error: ProviderError },
}

/// A seat on a server, for providers that account for each player themselves
/// ([`ServerProvider::confirms_seats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatSpec {
    pub server_id: ServerId,
    pub game: GameName,
    pub version: GameVersion,
    /// The Lightyear client id the seat is reserved for.
    pub client_id: u64,
    /// The player's address, which the provider records with the seat.
    pub player_ip: std::net::IpAddr,
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
    #[cfg(any(test, feature = "harness"))]
    #[error("refused by the fake provider")]
    Refused,
    /// The private key file for game servers could not be written.
    #[error("cannot write the game servers' key file: {0}")]
    KeyFile(#[source] Arc<std::io::Error>),
    /// The provider does not start servers (a fleet).
    #[error("this provider does not start servers")]
    Unsupported,
    /// Edgegap refused or failed the call (its status and message are in the source): see
    /// the policy table in [`edgegap`].
    #[error("the Edgegap launch failed: {0}")]
    Edgegap(#[source] Arc<bevygap_edgegap::EdgegapError>),
    /// A value for the server's environment is longer than the provider may pass (Edgegap
    /// takes at most 255 bytes per value), so the launch was not attempted.
    #[error("environment variable {key} is {bytes} bytes long; at most {limit} are allowed")]
    EnvValueTooLong { key: String, bytes: usize, limit: usize },
    /// No player IP is known and no location hint is configured, so there is nothing to tell
    /// the provider where to start the server.
    #[error("no player IP and no location hint (BEVYGAP_EDGEGAP_LOCATION) to place the server by")]
    NoLocation,
    /// Edgegap did not hold the player's seat: the session could not be created, ended
    /// `Unprocessable` or in `Error`, or linked to another deployment.
    #[error("Edgegap did not seat the player: {0}")]
    SessionRefused(String),
}

/// A stop the provider gave up retrying for now: the server may still be running (and
/// billed), so operators see it in `admin.servers` (`parked_stops`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedStop {
    /// The matchmaker's id of the server.
    pub server_id: ServerId,
    /// The provider's own id for it (an Edgegap deployment's request id).
    pub external_id: String,
    /// The last error.
    pub error: String,
    /// Stop attempts so far.
    pub attempts: u32,
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
    /// Another matchmaker replica takes over what this provider started (this one is leaving
    /// or lost the namespace lease): stop nothing from now on, not even when dropped. Servers
    /// that cannot outlive this process (local child processes) still end with it.
    fn hand_over(&self) {}
    /// Servers this provider currently runs, for leak checks and operators.
    fn running(&self) -> Vec<ServerId>;
    /// Stops that kept failing and were parked (still retried, slowly): servers that may be
    /// running although the matchmaker let them go. Empty for providers whose stops cannot
    /// fail.
    fn parked_stops(&self) -> Vec<ParkedStop> {
        Vec::new()
    }
    /// Sweeps for servers an earlier matchmaker process started and lost track of (it was
    /// killed between starting a server and the server registering). `known` is every server
    /// id the `servers` bucket in NATS holds a record of, read just before this call; `grace`
    /// is how old an unknown server must be before it may be stopped: longer than any live
    /// matchmaker waits for a server it started to register (so a server still booting for a
    /// live matchmaker replica is never touched). Called at startup, once the bucket was read,
    /// then every `grace`. Must not block. The default does nothing (providers whose servers
    /// cannot outlive the matchmaker unnoticed).
    fn reconcile(&self, known: &[ServerId], grace: std::time::Duration) {
        let _ = (known, grace);
    }
    /// Whether this provider holds each player's seat itself (Edgegap's sessions mode: one
    /// session per player). Then the matchmaker tells it of every seat taken and freed, and
    /// issues a player's token only once the provider confirmed the seat
    /// ([`ProviderEvent::SeatConfirmed`]).
    fn confirms_seats(&self) -> bool {
        false
    }
    /// A seat was reserved for a player: hold it at the provider and report
    /// [`ProviderEvent::SeatConfirmed`] or [`ProviderEvent::SeatRefused`]. Must not block.
    fn take_seat(&self, seat: SeatSpec, events: InboxSender<ProviderEvent>) {
        let _ = (seat, events);
    }
    /// A seat was freed (the player left, their token expired unclaimed, their join ended, the
    /// server is gone): give it back at the provider. `external_id` is the provider's id for
    /// it when it confirmed one, possibly to an earlier matchmaker process. Must not block.
    fn free_seat(&self, server_id: &ServerId, client_id: u64, external_id: Option<&str>) {
        let _ = (server_id, client_id, external_id);
    }
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

/// Installs the provider; stops every server it started when the app exits (when no other
/// replica takes them over).
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

/// On exit, stops every server this provider started, unless another replica is there to
/// take them over (or this one no longer owns them): see [`crate::ownership`].
pub(crate) fn stop_all_on_exit(provider: Res<ProviderHandle>, ownership: Option<Res<crate::fence::Ownership>>) {
    if ownership.is_some_and(|o| !o.stops_servers_on_exit()) {
        tracing::info!("leaving the running servers to the replica that owns the namespace next");
        provider.0.hand_over();
        return;
    }
    provider.0.shutdown_all();
}
