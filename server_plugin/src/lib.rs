//! # bevygap_server_plugin
//!
//! Everything a Lightyear game server needs to live under the Bevygap matchmaker, in one
//! plugin configured from the environment:
//!
//! - **Context**: works out where it runs: Edgegap (`ARBITRIUM_*`), a Bevygap provider
//!   (`local`/`fleet`, via [`bevygap_shared::server_env::ServerEnv`]) or standalone for
//!   development ([`context`]).
//! - **Certificate**: generates a ≤14-day ECDSA P-256 WebTransport certificate at boot and
//!   publishes its digest; drains and stops before it ends ([`certificate`]).
//! - **Netcode**: starts one Lightyear netcode server, serving every transport (UDP,
//!   WebTransport) at once, with the shared protocol id and key, accepting tokens addressed to
//!   the public addresses ([`netcode`]).
//! - **Admission**: admits only client ids the matchmaker granted for this server
//!   ([`admission`]).
//! - **Reporting**: registers the server in NATS, heartbeats, and keeps one record per
//!   connected player, reconciling after NATS outages ([`reporting`], [`nats_link`]).
//! - **Shutdown**: drains on command, stops cleanly on SIGTERM, optionally stops when idle
//!   (with Edgegap self-stop) ([`shutdown`]).
//! - **Matches**: when a `match` profile formed this server's match, its teams arrive before
//!   the first player as the [`BevygapMatch`] resource and a [`MatchAssigned`] message
//!   ([`matched`]); player records then carry each player's team.
//!
//! Games see [`ServerContext`], [`BevygapStatus`], the [`BevygapServerState`] state, the
//! [`PlayerJoined`]/[`PlayerLeft`] messages, [`ServerControl`] to request a drain or shutdown,
//! and run conditions in [`api`].
//!
//! # Environment
//!
//! | variable | meaning |
//! |---|---|
//! | `BEVYGAP_*` of [`ServerEnv`](bevygap_shared::server_env::ServerEnv) | namespace, server id, game, version, capacity, transports (set by the provider) |
//! | `ARBITRIUM_*`, `BEVYGAP_UDP_PORT_NAME`, `BEVYGAP_WT_PORT_NAME` | Edgegap deployments ([`context::edgegap`]) |
//! | `NATS_*` | NATS connection ([`bevygap_shared::nats::NatsConfig`]) |
//! | `LIGHTYEAR_PROTOCOL_ID`, `LIGHTYEAR_PRIVATE_KEY`(`_FILE`) | netcode keys ([`bevygap_shared::LightyearKeys`]) |
//! | `BEVYGAP_ADMISSION` | `grants` (default) or `open` (development without a matchmaker) |
//! | `BEVYGAP_IDLE_SHUTDOWN_SECS` | stop after this long without players (default: never) |
//! | `BEVYGAP_EDGEGAP_SELF_STOP` | call Edgegap's self-stop when stopping by itself (default `true`) |
//! | `BEVYGAP_METRICS_ADDR` | serve Prometheus metrics on `GET /metrics` at this address (default: off; [`metrics`]) |
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use bevy::prelude::*;
//! use bevy::state::app::StatesPlugin;
//! use bevygap_server_plugin::prelude::*;
//! use lightyear::prelude::server::ServerPlugins;
//!
//! fn main() -> AppExit {
//!     bevygap_shared::install_crypto_provider();
//!     let bevygap = match BevygapServerPlugin::from_env() {
//!         Ok(plugin) => plugin,
//!         Err(e) => {
//!             eprintln!("cannot start: {e}");
//!             return AppExit::from_code(2);
//!         }
//!     };
//!     App::new()
//!         .add_plugins((MinimalPlugins, StatesPlugin))
//!         .add_plugins(ServerPlugins { tick_duration: Duration::from_secs_f64(1.0 / 60.0) })
//!         // your protocol here, then:
//!         .add_plugins(bevygap)
//!         .add_systems(Update, greet.run_if(in_state(BevygapServerState::Ready)))
//!         .run()
//! }
//!
//! fn greet(mut joined: MessageReader<PlayerJoined>) {
//!     for player in joined.read() {
//!         info!("client {} joined for session {}", player.client_id, player.session_id);
//!     }
//! }
//! ```

pub mod admission;
pub mod api;
pub mod certificate;
pub mod context;
pub mod matched;
pub mod metrics;
pub mod nats_link;
pub mod netcode;
pub mod reporting;
pub mod shutdown;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use bevy_tokio_tasks::{TokioTasksPlugin, TokioTasksRuntime};
use bevygap_shared::LightyearKeys;
use bevygap_shared::env::{EnvError, EnvSource, parse_bool};
use bevygap_shared::nats::NatsConfig;
use bevygap_shared::records::now_ms;

pub use admission::{AdmissionConfig, AdmissionMode};
pub use api::{
    BevygapServerState, BevygapStatus, BevygapSystems, ConnectedPlayer, PlayerJoined, PlayerLeft, ServerControl,
    admitting_players, has_players, nats_connected,
};
pub use certificate::{CertificateConfig, ServerCertificate, WebTransportCertificate};
pub use context::{ServerContext, ServerOrigin};
pub use matched::{BevygapMatch, MatchAssigned};
pub use metrics::{MetricsConfig, MetricsEndpoint};
pub use reporting::ReportingConfig;
pub use shutdown::ShutdownConfig;

/// The usual imports for a game server.
pub mod prelude {
    pub use crate::api::{
        BevygapServerState, BevygapStatus, BevygapSystems, ConnectedPlayer, PlayerJoined, PlayerLeft, ServerControl,
        admitting_players, has_players, nats_connected,
    };
    pub use crate::context::ServerContext;
    pub use crate::matched::{BevygapMatch, MatchAssigned};
    pub use crate::{BevygapServerPlugin, ServerConfig, SetupError};
}

/// The server could not be set up; every variant names what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// Where the server runs could not be worked out.
    #[error(transparent)]
    Context(#[from] context::ContextError),
    /// A variable of the plugin's own configuration is malformed.
    #[error("bad configuration: {0}")]
    Env(#[from] EnvError),
    /// The WebTransport certificate could not be made.
    #[error(transparent)]
    Certificate(#[from] certificate::CertificateError),
    /// The `/metrics` page was asked for but cannot be served.
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
}

/// Everything the plugin needs; [`ServerConfig::from_env`] reads it all from the
/// environment, tests build it by hand.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Who and where the server is.
    pub context: ServerContext,
    /// How to reach NATS, where the records go.
    pub nats: NatsConfig,
    /// The netcode protocol id and key, shared with the matchmaker that mints tokens.
    pub keys: LightyearKeys,
    /// Who may connect.
    pub admission: AdmissionConfig,
    /// How often records are written.
    pub reporting: ReportingConfig,
    /// When and how the server stops.
    pub shutdown: ShutdownConfig,
    /// The WebTransport certificate's lifetime.
    pub certificate: CertificateConfig,
    /// Where to serve the optional `/metrics` page (off by default).
    pub metrics: MetricsConfig,
}

impl ServerConfig {
    /// Reads the process environment (see the crate docs for the variables).
    pub fn from_env() -> Result<Self, SetupError> {
        Self::from_source(&bevygap_shared::env::ProcessEnv)
    }

    /// Reads the configuration from any [`EnvSource`].
    pub fn from_source(env: &dyn EnvSource) -> Result<Self, SetupError> {
        let context = ServerContext::from_source(env)?;
        let nats = NatsConfig::from_source(env, &format!("bevygap-server-{}", context.server_id))?;
        let keys = LightyearKeys::from_source(env)?;
        let mode = match env.var("BEVYGAP_ADMISSION").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("grants") => AdmissionMode::Grants,
            Some("open") => AdmissionMode::Open,
            Some(other) => {
                return Err(
                    EnvError::new("BEVYGAP_ADMISSION", format!("expected grants or open, got {other:?}")).into()
                );
            }
        };
        let idle_timeout = match env.var("BEVYGAP_IDLE_SHUTDOWN_SECS") {
            None => None,
            Some(text) => {
                Some(Duration::from_secs(text.trim().parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(|| {
                    EnvError::new("BEVYGAP_IDLE_SHUTDOWN_SECS", format!("{text:?} is not a positive number of seconds"))
                })?))
            }
        };
        let edgegap_self_stop = parse_bool(env, "BEVYGAP_EDGEGAP_SELF_STOP")?.unwrap_or(true);
        let metrics_listen = match env.var("BEVYGAP_METRICS_ADDR") {
            None => None,
            Some(text) if text.trim().is_empty() => None,
            Some(text) => Some(text.trim().parse::<std::net::SocketAddr>().map_err(|_| {
                EnvError::new("BEVYGAP_METRICS_ADDR", format!("{text:?} is not an address such as 0.0.0.0:9100"))
            })?),
        };
        Ok(Self {
            context,
            nats,
            keys,
            admission: AdmissionConfig { mode, ..Default::default() },
            reporting: ReportingConfig::default(),
            shutdown: ShutdownConfig { idle_timeout, edgegap_self_stop, ..Default::default() },
            certificate: CertificateConfig::default(),
            metrics: MetricsConfig { listen: metrics_listen },
        })
    }
}

/// The plugin: add it after Lightyear's `ServerPlugins` (and your protocol). It adds
/// `StatesPlugin` and bevy-tokio-tasks' `TokioTasksPlugin` if the app has not (add your own
/// `TokioTasksPlugin` *before* this plugin to share its runtime).
pub struct BevygapServerPlugin {
    config: ServerConfig,
    certificate: Option<ServerCertificate>,
    metrics: Option<metrics::MetricsPage>,
}

impl BevygapServerPlugin {
    /// Configures the plugin from the environment; errors name the variable to fix.
    pub fn from_env() -> Result<Self, SetupError> {
        Self::new(ServerConfig::from_env()?)
    }

    /// Configures the plugin from an explicit configuration, generating the WebTransport
    /// certificate when WebTransport is served and binding the `/metrics` listener when asked.
    pub fn new(config: ServerConfig) -> Result<Self, SetupError> {
        let certificate = match config.context.webtransport {
            Some(_) => Some(ServerCertificate::generate(&config.context.certificate_names(), &config.certificate)?),
            None => None,
        };
        let metrics = metrics::MetricsPage::bind(&config.metrics)?;
        Ok(Self { config, certificate, metrics })
    }

    /// The configuration in force.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The WebTransport certificate, when WebTransport is served.
    pub fn certificate(&self) -> Option<&ServerCertificate> {
        self.certificate.as_ref()
    }
}

impl Plugin for BevygapServerPlugin {
    fn build(&self, app: &mut App) {
        if !app.is_plugin_added::<StatesPlugin>() {
            app.add_plugins(StatesPlugin);
        }
        if !app.is_plugin_added::<TokioTasksPlugin>() {
            app.add_plugins(TokioTasksPlugin::default());
        }
        let ctx = self.config.context.clone();
        info!(
            "bevygap server {} ({} {} via {}) in namespace {}",
            ctx.server_id,
            ctx.game,
            ctx.version,
            ctx.origin.name(),
            ctx.namespace
        );
        if self.config.keys.is_development() {
            warn!("using the all-zero development netcode key");
        }

        let grants = admission::GrantCache::default();
        let clients_store = Arc::new(RwLock::new(None));
        let lookup = app.world().get_resource::<TokioTasksRuntime>().map(|rt| admission::GrantLookup {
            handle: rt.runtime().handle().clone(),
            store: clients_store.clone(),
            timeout: self.config.admission.lookup_timeout,
        });
        let admission = admission::Admission::new(
            ctx.server_id.clone(),
            self.config.admission.mode,
            ctx.capacity as usize,
            grants.clone(),
            lookup,
        );

        app.init_state::<BevygapServerState>()
            .add_message::<PlayerJoined>()
            .add_message::<PlayerLeft>()
            .add_message::<ServerControl>()
            .insert_resource(ctx.clone())
            .insert_resource(BevygapStatus { addresses: ctx.public_addresses(), ..Default::default() })
            .insert_resource(reporting::server_record::StartedAt(now_ms()))
            .insert_resource(netcode::NetcodeKeys(self.config.keys.clone()))
            .insert_resource(admission::AdmissionHandle(Arc::new(admission)))
            .configure_sets(
                Update,
                (BevygapSystems::Receive, BevygapSystems::Lifecycle, BevygapSystems::Report).chain(),
            )
            .add_plugins((
                certificate::CertificatePlugin {
                    certificate: self.certificate.clone(),
                    config: self.config.certificate,
                },
                nats_link::NatsLinkPlugin {
                    config: nats_link::NatsLinkConfig {
                        nats: self.config.nats.clone(),
                        names: ctx.namespace.names(),
                        server_id: ctx.server_id.clone(),
                        reporting: self.config.reporting,
                        grants,
                        clients: clients_store,
                    },
                },
                admission::AdmissionPlugin,
                context::edgegap::EdgegapContextPlugin,
                netcode::NetcodePlugin,
                reporting::ReportingPlugin,
                shutdown::ShutdownPlugin { config: self.config.shutdown },
                metrics::ServerMetricsPlugin { page: self.metrics.clone() },
            ));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(extra: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        let base = [
            ("BEVYGAP_NAMESPACE", "spaceships"),
            ("BEVYGAP_SERVER_ID", "local-env"),
            ("BEVYGAP_PROVIDER", "local"),
            ("BEVYGAP_GAME", "demo"),
            ("BEVYGAP_VERSION", "1"),
            ("BEVYGAP_UDP_BIND", "127.0.0.1:0"),
            ("BEVYGAP_UDP_PUBLIC", "127.0.0.1:0"),
        ];
        base.iter().chain(extra).copied().collect()
    }

    #[test]
    fn the_metrics_page_is_off_unless_an_address_is_given_and_a_bad_one_names_its_variable() {
        let config = ServerConfig::from_source(&env(&[])).expect("a configuration");
        assert_eq!(config.metrics, MetricsConfig::default(), "off by default");
        let config = ServerConfig::from_source(&env(&[("BEVYGAP_METRICS_ADDR", "0.0.0.0:9100")])).expect("configured");
        assert_eq!(config.metrics.listen, Some(std::net::SocketAddr::from(([0, 0, 0, 0], 9100))));
        let error = ServerConfig::from_source(&env(&[("BEVYGAP_METRICS_ADDR", "nine-one-hundred")]))
            .expect_err("a bad address is refused");
        assert!(error.to_string().contains("BEVYGAP_METRICS_ADDR"), "{error}");
    }
}
