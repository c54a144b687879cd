//! # bevygap_client_plugin
//!
//! One call from "play" to a connected Lightyear client: the plugin asks the Bevygap
//! matchmaker for a game server, follows its progress, and connects the Lightyear client with
//! the token it gets back. The game never blocks and never calls Lightyear's `Connect` itself.
//!
//! - Start with [`commands.bevygap_connect_client()`](BevygapCommandsExt) (or trigger
//!   [`BevygapConnect`]); stop with `commands.bevygap_cancel()` ([`BevygapCancel`]).
//! - Watch the [`BevygapClientState`] state (`Idle`, `Requesting`, `WaitingForServer`,
//!   `Connecting`, `Connected`, `Failed`) and read the [`BevygapProgress`], [`BevygapFailed`]
//!   (with a [`FailureCode`] carrying the matchmaker's `ErrorCode`) and [`BevygapConnected`]
//!   messages.
//! - Configure with [`BevygapClientConfig`]: from code, with `BEVYGAP_*` env overrides.
//! - Mark your own client entity with [`BevygapClient`], or let the plugin spawn one. The
//!   plugin inserts the `NetcodeClient` and the transport's IO (`UdpIo` with an ephemeral
//!   `LocalAddr`, or `WebTransportClientIo` with the server's certificate digest) on it.
//!
//! Transient failures (connection refused, HTTP 429/5xx, a dropped stream, the matchmaker
//! being busy) are retried with exponential backoff and the *same* request id, so the
//! matchmaker resumes the join rather than placing the player twice; permanent ones (an
//! unknown game or version, an invalid request) fail at once. See [`retry`] for the exact rule.
//!
//! # What works where
//!
//! | | native | browser (wasm32) |
//! |---|---|---|
//! | HTTP to the matchmaker | built in (`http::NativeHttp`, ureq on a thread); tested | built in (`http::WebHttp`, `fetch` with a streaming body reader, same timeouts and retries); tested in Chromium, cross-origin with the CORS preflight |
//! | UDP | yes; tested | no (browsers have no UDP): a ready payload for UDP fails with `connection_failed` |
//! | WebTransport | yes, with the certificate digest the matchmaker sends; tested | yes, the digest goes to the browser's `serverCertificateHashes` (no verification bypass); tested in Chromium, and a wrong digest is refused |
//! | env overrides | yes | no environment: configure from code |
//! | request ids | `rand` | `rand` through getrandom's `wasm_js` backend: build with `--cfg getrandom_backend="wasm_js"` (this workspace's `.cargo/config.toml`; copy it into your game's) |
//!
//! Both builds are compiled in the test command; the browser build runs in headless Chromium
//! as `demo/web` (`demo/tests/browser.rs`). Any other HTTP client can still be plugged in
//! through [`http::MatchmakerHttp`] and [`BevygapClientPlugin::with_http`].
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use bevy::prelude::*;
//! use bevygap_client_plugin::prelude::*;
//! use lightyear::prelude::client::ClientPlugins;
//!
//! fn main() {
//!     let config = BevygapClientConfig::new("http://127.0.0.1:7800", "spaceships", "1.0")
//!         .with_env_overrides()
//!         .expect("valid BEVYGAP_* variables");
//!     App::new()
//!         .add_plugins(MinimalPlugins)
//!         .add_plugins(ClientPlugins { tick_duration: Duration::from_secs_f64(1.0 / 60.0) })
//!         // your protocol here, then:
//!         .add_plugins(BevygapClientPlugin::new(config))
//!         .add_systems(Startup, |mut commands: Commands| commands.bevygap_connect_client())
//!         .add_systems(Update, show_progress)
//!         .run();
//! }
//!
//! fn show_progress(mut progress: MessageReader<BevygapProgress>, mut failed: MessageReader<BevygapFailed>) {
//!     for step in progress.read() {
//!         info!("{:?}: {}", step.state, step.text);
//!     }
//!     for failure in failed.read() {
//!         warn!("{} ({}){}", failure.message, failure.code, if failure.is_retryable() { ", retry?" } else { "" });
//!     }
//! }
//! ```

mod commands;
pub mod config;
pub mod connect;
pub mod http;
mod join;
mod messages;
pub mod retry;
pub mod rpc;
pub mod sse;
mod state;

use std::sync::Arc;

use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use lightyear::prelude::client::NetcodeClientPlugin;

pub use commands::{BevygapCancel, BevygapCommandsExt, BevygapConnect};
pub use config::{BevygapClientConfig, Timeouts};
pub use connect::BevygapClient;
pub use messages::{BevygapConnected, BevygapFailed, BevygapMatchFound, BevygapProgress, FailureCode};
pub use retry::RetryConfig;
pub use state::BevygapClientState;

/// The usual imports for a game client.
pub mod prelude {
    pub use crate::{
        BevygapCancel, BevygapClient, BevygapClientConfig, BevygapClientPlugin, BevygapClientState,
        BevygapClientSystems, BevygapCommandsExt, BevygapConnect, BevygapConnected, BevygapFailed, BevygapMatchFound,
        BevygapProgress, FailureCode,
    };
}

/// The plugin's systems, in `Update`, for ordering yours against them.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub struct BevygapClientSystems;

/// Joins through the Bevygap matchmaker and connects the Lightyear client.
///
/// Add it after Lightyear's `ClientPlugins`. It adds Bevy's `StatesPlugin` if the app has
/// not (`DefaultPlugins` has it; add those first).
pub struct BevygapClientPlugin {
    config: BevygapClientConfig,
    http: Option<Arc<dyn http::MatchmakerHttp>>,
}

impl BevygapClientPlugin {
    /// The plugin with this configuration and the built-in HTTP backend for the target.
    pub fn new(config: BevygapClientConfig) -> Self {
        Self { config, http: None }
    }

    /// Uses `backend` for every call to the matchmaker (a browser `fetch` backend, a test
    /// double).
    pub fn with_http(mut self, backend: impl http::MatchmakerHttp) -> Self {
        self.http = Some(Arc::new(backend));
        self
    }
}

impl Plugin for BevygapClientPlugin {
    fn build(&self, app: &mut App) {
        if !app.is_plugin_added::<StatesPlugin>() {
            app.add_plugins(StatesPlugin);
        }
        let backend = self.http.clone().unwrap_or_else(|| match http::default_backend() {
            Some(backend) => Arc::from(backend),
            None => Arc::new(MissingHttp),
        });
        app.init_state::<BevygapClientState>()
            .register_type::<BevygapClient>()
            .add_message::<BevygapProgress>()
            .add_message::<BevygapFailed>()
            .add_message::<BevygapConnected>()
            .add_message::<BevygapMatchFound>()
            .insert_resource(self.config.clone())
            .insert_resource(join::Http(backend))
            .add_observer(join::start_join)
            .add_observer(join::cancel_join)
            // Connection first: a client entity spawned by this frame's token exists next frame.
            .add_systems(
                Update,
                (join::watch_connection, join::follow_matchmaker).chain().in_set(BevygapClientSystems),
            );
    }

    fn finish(&self, app: &mut App) {
        if !app.is_plugin_added::<NetcodeClientPlugin>() {
            warn!("BevygapClientPlugin: Lightyear's ClientPlugins are missing; joins will never connect");
        }
    }
}

/// Stands in when the target has no built-in HTTP backend and none was given: every call
/// fails at once with a message saying what to do.
struct MissingHttp;

impl http::MatchmakerHttp for MissingHttp {
    fn post(&self, _: http::HttpRequest, sink: http::HttpSink) {
        sink.send(http::HttpEvent::Failed(
            "no HTTP backend for this target: add one with BevygapClientPlugin::with_http".into(),
        ));
    }
}
