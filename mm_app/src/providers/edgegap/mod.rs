//! The `edgegap` provider: each game server is an Edgegap deployment (v2 deployments API),
//! started near its players when a join needs a seat and stopped when it stays empty.
//!
//! # How a server's deployment lives
//!
//! 1. **Launch** (`launch` returns at once; a worker thread per server does the HTTP):
//!    `POST /v2/deployments` with the app and version, the players' IPs as `users` (Edgegap
//!    picks a location near them), tags naming the namespace and the server, and the server
//!    contract as environment ([`request`] has the exact mapping). A 202 reports
//!    [`ProviderEvent::Launched`].
//! 2. **Follow**: `GET /v1/status/{request_id}` with exponential backoff ([`backoff`]) until
//!    READY, then at a slow watch interval. The game server itself reports readiness (and its
//!    public address, from the port mapping) in NATS, as for every provider.
//! 3. **Stop** (`stop`, an empty server past its grace, shutdown): `DELETE /v1/stop/{id}`,
//!    retried with backoff; a stop that keeps failing is *parked* ([`ParkedStop`], listed by
//!    `admin.servers` as `parked_stops`) and retried slowly until Edgegap accepts it. Once
//!    accepted, the deployment is followed to TERMINATED and reported
//!    [`ProviderEvent::Exited`].
//! 4. **Ends by itself** (ERROR, TERMINATED, unknown to Edgegap): [`ProviderEvent::Exited`];
//!    an ERROR deployment is then stopped, since it still exists on Edgegap.
//! 5. **Started by an earlier matchmaker process** (a restart; the server was adopted from its
//!    NATS record): `stop` finds its deployment by the server tag (`GET /v1/deployments`) and
//!    stops it the same way.
//!
//! The game server's id is the matchmaker's: the deployment gets it both as
//! `BEVYGAP_SERVER_ID` and as a tag, and the server plugin takes the id from the environment
//! when the deployment's tags (`ARBITRIUM_DEPLOYMENT_TAGS`) carry it.
//!
//! # Nothing leaks across a matchmaker kill
//!
//! A matchmaker killed outright (SIGKILL, OOM, a lost host) runs no shutdown, so its
//! deployments keep running. The next matchmaker process (or a live replica) finds them all:
//!
//! - **The record is on Edgegap.** Every deployment carries the tags `bevygap`,
//!   `ns-<namespace>` and its server id from the moment Edgegap answers the create (they are
//!   part of the create itself), so `GET /v1/deployments` lists exactly this namespace's
//!   deployments and names each one's server, request id and `start_time`. No second write
//!   to NATS is needed, and none can be lost between "Edgegap answered" and "written".
//! - **Registered servers are adopted.** A game server that registered has a record in the
//!   `servers` bucket; the new matchmaker adopts it from there, places players on it, and
//!   stops it when empty ([`stop`](ServerProvider::stop) finds its deployment by tag).
//! - **The rest are swept.** At startup and then every grace, the matchmaker reads the server
//!   ids in the `servers` bucket and calls [`ServerProvider::reconcile`]. The sweep lists this
//!   namespace's deployments ([`sweep`] judges each one) and stops those whose server is
//!   neither in NATS nor handled by this process *and* that are older than the grace.
//!   - **The grace** is twice the matchmaker's server start timeout (45 s by default, so
//!     90 s). A live matchmaker (a replica, or this one) gives up a server that has not
//!     registered within the start timeout and stops it itself, so an unknown deployment
//!     older than the grace belongs to nobody. A younger one may still be booting for a live
//!     replica, or be the killed matchmaker's server about to register (then it is adopted
//!     as above): it is judged again at the next sweep.
//!   - A sweep whose NATS read or Edgegap listing fails does nothing (never stops on an
//!     incomplete picture) and the next one tries again.
//!
//! # Failure policy
//!
//! | Edgegap answers | provider reports | left on Edgegap | the waiting player |
//! |---|---|---|---|
//! | 400 (bad body, inactive app or version), 401 (bad token), 403, 404 (unknown app or version) | `LaunchFailed(Edgegap(Api{status, message}))`, Edgegap's message included | nothing | re-placed up to 3 times, then `server_failed` |
//! | 422 could not allocate | `LaunchFailed(Edgegap(Api{422}))` | the ERROR deployment it names: stopped | same |
//! | 429 (after the client's retries, which back off) | `LaunchFailed(Edgegap(RateLimited))` | nothing | same |
//! | 5xx, timeout, broken connection, unreadable 2xx | `LaunchFailed(Edgegap(…))` | a deployment the lost answer may have created: searched by its server tag (`GET /v1/deployments`) for a while and stopped | same |
//! | deployment ends in ERROR | `Exited("… failed: <error_detail>")` | the ERROR deployment: stopped | same |
//! | stop keeps failing | nothing new (the server was already let go) | the deployment, until a parked retry succeeds: `admin.servers` → `parked_stops` | not affected |
//! | env value over 255 bytes, no player IP and no location hint | `LaunchFailed(EnvValueTooLong / NoLocation)`, no call made | nothing | same as 400 |
//!
//! "Re-placed up to 3 times, then `server_failed`" is the matchmaker's rule for lost servers
//! ([`ErrorCode::ServerFailed`](bevygap_shared::protocol::ErrorCode)); a join whose deadline
//! passes first fails with `timeout`. [`policy::LaunchFailure`] sorts the errors and says
//! which are worth retrying.
//!
//! # Known gaps
//!
//! - A create whose answer was lost and that Edgegap processes after the search window
//!   ([`EdgegapTiming::orphan_search`]) is not stopped by that search; the orphan sweep stops
//!   it once it is older than the grace (its server has no NATS record).
//! - The orphan sweep (above) stops an orphan only once it is older than the grace, so a
//!   deployment whose server never registers runs (and is billed) for up to twice the grace
//!   after its matchmaker was killed. It trusts Edgegap's `start_time` (UTC) against the local
//!   clock, floored by how long this process has seen it; a clock running ahead stops orphans
//!   early only by the skew.
//! - A server whose NATS record expired (heartbeats lost for the record's TTL) while its
//!   deployment still runs looks like an orphan to the sweep and is stopped once past the
//!   grace; the matchmaker gives such a server up anyway.
//! - Sessions mode: a session whose deployment ended while no matchmaker ran (a SIGKILL, then
//!   the deployment stopped by someone else before a restart) stays on Edgegap, which reads it
//!   as `Error`; nothing in a listed session names its namespace, so the matchmaker cannot
//!   tell it from another app's. Sessions on deployments that are still running are deleted
//!   when the deployment stops.
//! - Sessions mode: a `POST /v1/session` whose answer was lost (timeout, 5xx) may still have
//!   created a session on the deployment; it takes one of Edgegap's sockets until the
//!   deployment stops (no listed field tells it from a live player's), and the join fails
//!   with `server_failed` instead of being retried.
//!
//! # Webhooks
//!
//! With [`EdgegapWebhook`] configured, every deployment is created with
//! `webhook_on_ready|error|terminated` and every session with `webhook_url` pointing at it,
//! and a call reads that deployment's (session's) status at once ([`webhook`]). Polling with
//! backoff goes on regardless, so a lost webhook only costs time.
//!
//! # Sessions mode
//!
//! [`EdgegapMode::Sessions`] adds one Edgegap session per seated player, linked to the
//! server's deployment: see [`sessions`].

pub mod backoff;
pub mod policy;
pub mod request;
pub mod sessions;
pub mod sweep;
mod table;
pub mod webhook;
mod worker;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bevygap_edgegap::{EdgegapClient, EdgegapConfig, EdgegapError};
use bevygap_shared::Secret;
use bevygap_shared::inbox::InboxSender;
use bevygap_shared::naming::{Namespace, ServerId};

pub use backoff::Backoff;
pub use request::{GeoPoint, MAX_ENV_VALUE_BYTES};
pub use webhook::EdgegapWebhook;

use super::{ParkedStop, ProviderError, ProviderEvent, SeatSpec, ServerProvider, ServerSpec};
use table::Table;
use worker::Shared;

/// How patiently the provider polls, retries and waits. The defaults suit Edgegap (deploys
/// take seconds, sometimes 20 s or more; documented limits of 20 status reads and 10 lists a
/// second); [`EdgegapTiming::quick`] suits a local fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgegapTiming {
    /// Status reads while a deployment starts.
    pub status: Backoff,
    /// Status reads once it is READY (to notice it ending on its own).
    pub watch_interval: Duration,
    /// Stop retries before parking.
    pub stop_retry: Backoff,
    /// Stop attempts before the stop is parked.
    pub stop_attempts: u32,
    /// Retry interval of a parked stop.
    pub parked_retry: Duration,
    /// Searches for a deployment whose create answer was lost (the window it may still land in).
    pub orphan_search: Backoff,
    /// How many searches.
    pub orphan_search_attempts: u32,
    /// How long a stopped deployment is followed to TERMINATED before it is reported exited
    /// anyway.
    pub stop_confirm: Duration,
    /// How long `shutdown_all` waits for Edgegap to accept every stop.
    pub shutdown_wait: Duration,
}

impl Default for EdgegapTiming {
    fn default() -> Self {
        Self {
            status: Backoff::new(Duration::from_millis(500), Duration::from_secs(5)),
            watch_interval: Duration::from_secs(10),
            stop_retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(16)),
            stop_attempts: 6,
            parked_retry: Duration::from_secs(60),
            orphan_search: Backoff::new(Duration::from_secs(2), Duration::from_secs(30)),
            orphan_search_attempts: 5,
            stop_confirm: Duration::from_secs(60),
            shutdown_wait: Duration::from_secs(15),
        }
    }
}

impl EdgegapTiming {
    /// Short waits for a local fake Edgegap (tests).
    pub fn quick() -> Self {
        Self {
            status: Backoff::new(Duration::from_millis(50), Duration::from_millis(500)),
            watch_interval: Duration::from_millis(500),
            stop_retry: Backoff::new(Duration::from_millis(50), Duration::from_millis(200)),
            stop_attempts: 3,
            parked_retry: Duration::from_millis(500),
            orphan_search: Backoff::new(Duration::from_millis(250), Duration::from_secs(1)),
            orphan_search_attempts: 5,
            stop_confirm: Duration::from_secs(15),
            shutdown_wait: Duration::from_secs(15),
        }
    }
}

/// How players are put on deployments (`BEVYGAP_EDGEGAP_MODE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EdgegapMode {
    /// v2 deployments only; the matchmaker's seat book alone accounts for players (current
    /// Edgegap).
    #[default]
    Deployments,
    /// v2 deployments, and an Edgegap session per seated player (the legacy Sessions API, for
    /// accounts that still use it): see [`sessions`].
    Sessions,
}

impl EdgegapMode {
    /// Parses `deployments` or `sessions`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "deployments" => Ok(Self::Deployments),
            "sessions" => Ok(Self::Sessions),
            other => Err(format!("{other:?} is not an Edgegap mode (deployments | sessions)")),
        }
    }
}

/// Settings of the `edgegap` provider.
#[derive(Debug, Clone)]
pub struct EdgegapProviderConfig {
    /// The API client's settings: base URL, API key (redacted in `Debug`), timeout, retries.
    pub client: EdgegapConfig,
    /// Edgegap application name (`BEVYGAP_EDGEGAP_APP`).
    pub app: String,
    /// Edgegap version name for every game version (`BEVYGAP_EDGEGAP_VERSION`); `None`: the
    /// game version of the join is the version name.
    pub version: Option<String>,
    /// NATS namespace, passed to the server and tagged on its deployment.
    pub namespace: Namespace,
    /// Where to start a server when no player IP is known (`BEVYGAP_EDGEGAP_LOCATION`).
    pub location: Option<GeoPoint>,
    /// More environment for every deployment, sent hidden (NATS credentials, say). Values are
    /// secrets: never logged. Usually better set once in the app version on Edgegap.
    pub extra_env: Vec<(String, Secret)>,
    /// Polling, retry and wait schedule.
    pub timing: EdgegapTiming,
    /// Deployments only, or a session per player too.
    pub mode: EdgegapMode,
    /// Where Edgegap's webhooks reach the matchmaker, if configured.
    pub webhook: Option<EdgegapWebhook>,
    /// App-version port name serving UDP, passed as `BEVYGAP_UDP_PORT_NAME` if set.
    pub udp_port_name: Option<String>,
    /// App-version port name serving WebTransport, passed as `BEVYGAP_WT_PORT_NAME` if set.
    pub wt_port_name: Option<String>,
}

impl EdgegapProviderConfig {
    /// Deployments of `app` for `namespace`, through `client`, with default timing.
    pub fn new(client: EdgegapConfig, app: impl Into<String>, namespace: Namespace) -> Self {
        Self {
            client,
            app: app.into(),
            version: None,
            namespace,
            location: None,
            extra_env: Vec::new(),
            timing: EdgegapTiming::default(),
            mode: EdgegapMode::default(),
            webhook: None,
            udp_port_name: None,
            wt_port_name: None,
        }
    }
}

/// Starts game servers as Edgegap deployments (see the [module docs](self)).
pub struct EdgegapProvider {
    shared: Arc<Shared>,
    /// Set when another matchmaker replica takes the deployments over: dropping the provider
    /// then stops nothing.
    handed_over: std::sync::atomic::AtomicBool,
}

impl EdgegapProvider {
    /// Builds the provider; fails if the client settings are unusable (a base URL that is not
    /// http(s)). Makes no call yet.
    pub fn new(config: EdgegapProviderConfig) -> Result<Self, EdgegapError> {
        let client = EdgegapClient::new(config.client.clone())?;
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                config,
                table: Table::default(),
                shutting_down: Default::default(),
                sweeping: Default::default(),
                first_seen: Default::default(),
                seats: Default::default(),
            }),
            handed_over: Default::default(),
        })
    }

    /// Starts listening for Edgegap's webhooks, if configured; returns the bound address.
    pub fn listen_for_webhooks(&self) -> std::io::Result<Option<std::net::SocketAddr>> {
        match &self.shared.config.webhook {
            Some(webhook) => webhook::listen(&self.shared, webhook).map(Some),
            None => Ok(None),
        }
    }

    /// Sessions mode: players' sessions created and not yet deleted.
    pub fn sessions_held(&self) -> usize {
        self.shared.seats.held()
    }

    /// Checks on a background thread that the app (and the configured version) exists and is
    /// active, logging what is wrong, so a bad token or app name shows at startup rather than
    /// as failed joins. Never blocks; launches do not wait for it.
    pub fn check_app_in_background(&self) {
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new().name("edgegap-check".into()).spawn(move || {
            let (client, app) = (&shared.client, &shared.config.app);
            match client.get_app(app) {
                Ok(found) if !found.is_active => tracing::warn!("Edgegap app {app} is not active: launches will fail"),
                Ok(_) => tracing::info!("Edgegap app {app} is ready to deploy"),
                Err(e) => tracing::error!("cannot use Edgegap app {app} ({e}): launches will fail until this is fixed"),
            }
            let Some(version) = &shared.config.version else { return };
            match client.get_app_version(app, version) {
                Ok(found) if found.is_active == Some(false) => {
                    tracing::warn!("Edgegap version {app}/{version} is not active: launches will fail")
                }
                Ok(_) => {}
                Err(e) => tracing::error!("cannot use Edgegap version {app}/{version} ({e}): launches will fail"),
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot check the Edgegap app in the background: {e}");
        }
    }

    /// The Edgegap request id of a server's deployment, once Edgegap has named it.
    pub fn request_id(&self, server_id: &ServerId) -> Option<String> {
        self.shared.table.request_id(server_id)
    }
}

impl ServerProvider for EdgegapProvider {
    fn name(&self) -> &'static str {
        "edgegap"
    }

    fn launch(&self, spec: ServerSpec, events: InboxSender<ProviderEvent>) {
        let server_id = spec.server_id.clone();
        if let Err(e) = worker::spawn(self.shared.clone(), spec, events.clone()) {
            tracing::error!(%server_id, "cannot start an Edgegap worker thread: {e}");
            let error = ProviderError::Spawn { command: "edgegap worker thread".into(), source: Arc::new(e) };
            events.send(ProviderEvent::LaunchFailed { server_id, error });
        }
    }

    /// Stops a server's deployment. A server this provider never launched (adopted from its
    /// NATS record after a matchmaker restart) is found by its tag first.
    fn stop(&self, server_id: &ServerId) {
        let table = &self.shared.table;
        if table.request_stop(server_id) || table.handled(server_id) {
            return;
        }
        if !server_id.as_str().starts_with("edgegap-") {
            tracing::debug!(%server_id, "not an Edgegap deployment");
            return;
        }
        if let Err(e) = worker::spawn_stop_by_tag(self.shared.clone(), server_id.clone()) {
            tracing::error!(%server_id, "cannot start an Edgegap worker thread to stop it: {e}");
        }
    }

    /// Asks every deployment to stop and waits (at most [`EdgegapTiming::shutdown_wait`])
    /// until Edgegap accepted each stop.
    fn shutdown_all(&self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        self.shared.table.request_stop_all();
        self.shared.seats.free_all();
        let deadline = Instant::now() + self.shared.config.timing.shutdown_wait;
        while Instant::now() < deadline && (!self.running().is_empty() || self.shared.seats.held() > 0) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = self.running();
        if !left.is_empty() {
            tracing::error!(
                "Edgegap deployments still running at shutdown (find them by their tags): {}",
                left.iter().map(ServerId::as_str).collect::<Vec<_>>().join(", ")
            );
        }
    }

    fn running(&self) -> Vec<ServerId> {
        self.shared.table.running()
    }

    fn hand_over(&self) {
        self.handed_over.store(true, Ordering::SeqCst);
    }

    fn parked_stops(&self) -> Vec<ParkedStop> {
        self.shared.table.parked()
    }

    /// The orphan sweep (see the [module docs](self#nothing-leaks-across-a-matchmaker-kill)):
    /// on a background thread, stops this namespace's deployments whose server is not in
    /// `known`, not handled by this process and older than `grace`.
    fn reconcile(&self, known: &[ServerId], grace: Duration) {
        let known = known.iter().cloned().collect();
        if let Err(e) = worker::spawn_sweep(self.shared.clone(), known, grace) {
            tracing::error!("cannot start the Edgegap orphan sweep thread: {e}");
        }
    }

    fn confirms_seats(&self) -> bool {
        self.shared.sessions_mode()
    }

    /// Sessions mode: creates the player's session on the server's deployment.
    fn take_seat(&self, seat: SeatSpec, events: InboxSender<ProviderEvent>) {
        if self.shared.sessions_mode() {
            sessions::spawn_seat(self.shared.clone(), seat, events);
        }
    }

    /// Sessions mode: deletes the player's session (one an earlier process created by its id).
    fn free_seat(&self, server_id: &ServerId, client_id: u64, external_id: Option<&str>) {
        if !self.shared.seats.free(server_id, client_id)
            && let Some(session_id) = external_id
            && self.shared.sessions_mode()
        {
            sessions::spawn_delete(self.shared.clone(), session_id.to_string());
        }
    }
}

impl Drop for EdgegapProvider {
    fn drop(&mut self) {
        if !self.handed_over.load(Ordering::SeqCst) && !self.running().is_empty() {
            self.shutdown_all();
        }
    }
}
