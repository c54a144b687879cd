//! A complete matchmaker in-process, for integration tests (Bevygap's own, and a game's):
//! a private nats-server, the `local` provider running the given game-server command, and both
//! endpoints on ephemeral loopback ports, the app running on a background thread.

use std::sync::Arc;
use std::time::Duration;

use bevy::app::App;
use bevygap_shared::LightyearKeys;
use bevygap_shared::nats::{NatsConfig, NatsServer, NatsServerError};

use crate::app::{ShutdownHandle, StartError, build_app};
use crate::config::MatchmakerConfig;
use crate::endpoints::EndpointAddrs;
use crate::providers::{LocalProvider, LocalProviderConfig, ServerProvider};

/// Why the in-process matchmaker did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    #[error(transparent)]
    Nats(#[from] NatsServerError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Provider(#[from] crate::providers::ProviderError),
    #[error("the matchmaker thread stopped before it was ready")]
    ThreadDied,
}

/// A running matchmaker; dropping it stops the app, every game server it started and its
/// nats-server.
///
/// ```no_run
/// use bevygap_matchmaker::config::MatchmakerConfig;
/// use bevygap_matchmaker::harness::LocalMatchmaker;
///
/// let config = MatchmakerConfig::for_tests("mygame", vec!["target/debug/my-game-server".into()]);
/// let mm = LocalMatchmaker::start(config, bevygap_shared::LightyearKeys::development()).unwrap();
/// println!("players join at {}", mm.public_url());
/// ```
pub struct LocalMatchmaker {
    /// The nats-server this harness started and owns, if any (none on an outside cluster).
    nats: Option<NatsServer>,
    pub addrs: EndpointAddrs,
    pub provider: Arc<dyn ServerProvider>,
    shutdown: ShutdownHandle,
    /// The admin endpoint's bearer token (the configured one, or the one generated when the
    /// configuration requires one).
    admin_token: Option<bevygap_shared::Secret>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LocalMatchmaker {
    /// Starts a matchmaker with `config`, signing tokens with `keys`; game servers get the same
    /// keys and the NATS URL through their environment.
    pub fn start(config: MatchmakerConfig, keys: LightyearKeys) -> Result<Self, HarnessError> {
        Self::start_with(config, keys, |_| {})
    }

    /// Like [`start`](Self::start), with a last look at the App before it runs (a benchmark
    /// swapping the runner, say).
    pub fn start_with(
        config: MatchmakerConfig,
        keys: LightyearKeys,
        customize: impl FnOnce(&mut App) + Send + 'static,
    ) -> Result<Self, HarnessError> {
        let nats = NatsServer::start()?;
        let provider = Arc::new(LocalProvider::new(LocalProviderConfig {
            command: config.local.command.clone(),
            namespace: config.namespace.clone(),
            public_ip: config.local.public_ip,
            keys: keys.clone(),
            parent_env: std::env::vars().collect(),
            extra_env: vec![("NATS_URL".into(), nats.url())],
            stop_grace: config.servers.stop_grace,
        })?);
        Self::start_on(nats, provider, config, keys, customize)
    }

    /// Starts a matchmaker on an already running `nats` server with any `provider` (a fleet,
    /// Edgegap against a fake, a test double), with a last look at the App before it runs.
    pub fn start_on(
        nats: NatsServer,
        provider: Arc<dyn ServerProvider>,
        config: MatchmakerConfig,
        keys: LightyearKeys,
        customize: impl FnOnce(&mut App) + Send + 'static,
    ) -> Result<Self, HarnessError> {
        let nats_config = NatsConfig::new(nats.url(), "bevygap-matchmaker");
        Self::start_with_nats_config(Some(nats), nats_config, provider, config, keys, customize)
    }

    /// Like [`start_on`](Self::start_on), connecting with `nats_config` (credentials, several
    /// cluster URLs…); `nats` is a server to keep running as long as the matchmaker, if any.
    pub fn start_with_nats_config(
        nats: Option<NatsServer>,
        nats_config: NatsConfig,
        provider: Arc<dyn ServerProvider>,
        mut config: MatchmakerConfig,
        keys: LightyearKeys,
        customize: impl FnOnce(&mut App) + Send + 'static,
    ) -> Result<Self, HarnessError> {
        config.ensure_admin_token();
        let admin_token = config.front.admin_token.clone();
        let app_provider = provider.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let (mut app, shutdown) = match build_app(config, &nats_config, keys, app_provider, false) {
                Ok(built) => built,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            customize(&mut app);
            app.finish();
            app.cleanup();
            app.update();
            let addrs = *app.world().resource::<EndpointAddrs>();
            if tx.send(Ok((addrs, shutdown))).is_ok() {
                app.run();
            }
        });
        let (addrs, shutdown) = rx.recv_timeout(Duration::from_secs(60)).map_err(|_| HarnessError::ThreadDied)??;
        Ok(Self { nats, addrs, provider, shutdown, admin_token, thread: Some(thread) })
    }

    /// The players' endpoint, `http://127.0.0.1:<port>`.
    pub fn public_url(&self) -> String {
        format!("http://{}", self.addrs.public)
    }

    /// The operators' endpoint, `http://127.0.0.1:<port>`.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addrs.admin.port())
    }

    /// The URL of the nats-server this harness owns, if it owns one.
    pub fn nats_url(&self) -> Option<String> {
        self.nats.as_ref().map(NatsServer::url)
    }

    /// The admin endpoint's bearer token, if it demands one.
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_ref().map(|t| t.expose())
    }

    /// Game servers still running.
    pub fn running_servers(&self) -> usize {
        self.provider.running().len()
    }
}

impl Drop for LocalMatchmaker {
    fn drop(&mut self) {
        self.shutdown.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
