//! The I/O glue: one thread per deployment drives it from create to TERMINATED with the
//! blocking Edgegap client, so the matchmaker's main thread never waits on HTTP. The thread
//! asks `policy` what each answer means and `backoff` how long to wait, records progress in
//! the `table`, and reports [`ProviderEvent`]s through the inbox.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bevygap_edgegap::{EdgegapClient, EdgegapError};
use bevygap_shared::inbox::InboxSender;
use bevygap_shared::naming::ServerId;

use super::EdgegapProviderConfig;
use super::policy::{self, CreateCleanup, StatusVerdict, StopVerdict};
use super::request;
use super::sweep::{self, Verdict};
use super::table::{Stage, Table};
use crate::providers::{ProviderError, ProviderEvent, ServerSpec};

/// Page size when listing deployments to find a lost one.
const LIST_PAGE: u32 = 100;
/// Most pages read per search (10 000 live deployments).
const LIST_MAX_PAGES: u32 = 100;

/// What the provider and its workers share.
pub struct Shared {
    pub client: EdgegapClient,
    pub config: EdgegapProviderConfig,
    pub table: Table,
    /// Set by `shutdown_all`: searches for lost deployments take one last look and end.
    pub shutting_down: AtomicBool,
    /// Set while an orphan sweep runs (one at a time).
    pub sweeping: AtomicBool,
    /// When this process first listed each deployment of its namespace (the orphan sweep's
    /// age floor); entries of deployments no longer listed are dropped.
    pub first_seen: Mutex<HashMap<String, Instant>>,
    /// Sessions mode: the players' sessions.
    pub seats: super::sessions::SeatTable,
}

impl Shared {
    /// Whether each player holds an Edgegap session.
    pub fn sessions_mode(&self) -> bool {
        self.config.mode == super::EdgegapMode::Sessions
    }
}

/// The live deployment carrying `tag`, if any.
pub fn find_tagged(shared: &Shared, tag: &str) -> Result<Option<String>, EdgegapError> {
    for page in 1..=LIST_MAX_PAGES {
        let list = shared.client.list_deployments(Some(page), Some(LIST_PAGE))?;
        if let Some(found) = list.data.iter().find(|d| d.has_tag(tag)) {
            return Ok(Some(found.request_id.clone()));
        }
        if !list.pagination.and_then(|p| p.has_next).unwrap_or(false) {
            break;
        }
    }
    Ok(None)
}

/// How following a deployment ended.
enum DeploymentEnd {
    /// The matchmaker (or shutdown) asked for it to stop.
    StopRequested,
    /// It failed (ERROR) and must still be stopped.
    Failed(String),
    /// It is gone (TERMINATED, or unknown to Edgegap).
    Ended(String),
}

/// Starts the worker thread of one server.
pub fn spawn(shared: Arc<Shared>, spec: ServerSpec, events: InboxSender<ProviderEvent>) -> std::io::Result<()> {
    let (wake_tx, wake) = mpsc::sync_channel(1);
    let server_id = spec.server_id.clone();
    shared.table.insert(server_id.clone(), wake_tx);
    let worker = Worker { shared: shared.clone(), server_id: server_id.clone(), events: Some(events), wake };
    let spawned = std::thread::Builder::new().name(format!("edgegap-{}", short(&server_id))).spawn(move || {
        worker.run(spec);
    });
    if spawned.is_err() {
        shared.table.remove(&server_id);
    }
    spawned.map(|_| ())
}

/// Starts a thread that finds the deployment of a server this provider did not launch (an
/// earlier matchmaker process did, before a restart; the server was adopted from its NATS
/// record) by its tag, and stops it.
pub fn spawn_stop_by_tag(shared: Arc<Shared>, server_id: ServerId) -> std::io::Result<()> {
    let (wake_tx, wake) = mpsc::sync_channel(1);
    shared.table.insert(server_id.clone(), wake_tx);
    shared.table.set_stage(&server_id, Stage::Searching);
    shared.table.request_stop(&server_id);
    let worker = Worker { shared: shared.clone(), server_id: server_id.clone(), events: None, wake };
    let spawned = std::thread::Builder::new()
        .name(format!("edgegap-stop-{}", short(&server_id)))
        .spawn(move || worker.stop_by_tag());
    if spawned.is_err() {
        shared.table.remove(&server_id);
    }
    spawned.map(|_| ())
}

/// Starts the orphan sweep on its own thread, unless one is running or the provider shuts
/// down: lists this namespace's deployments and stops those whose server is neither
/// `known` to NATS nor handled here and that are older than `grace`.
pub fn spawn_sweep(shared: Arc<Shared>, known: HashSet<ServerId>, grace: Duration) -> std::io::Result<()> {
    if shared.shutting_down.load(Ordering::SeqCst) || shared.sweeping.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let sweeper = shared.clone();
    let spawned = std::thread::Builder::new().name("edgegap-sweep".into()).spawn(move || {
        sweep_once(&sweeper, &known, grace);
        sweeper.sweeping.store(false, Ordering::SeqCst);
    });
    if spawned.is_err() {
        shared.sweeping.store(false, Ordering::SeqCst);
    }
    spawned.map(|_| ())
}

fn sweep_once(shared: &Arc<Shared>, known: &HashSet<ServerId>, grace: Duration) {
    let namespace_tag = request::namespace_tag(&shared.config.namespace);
    let mut listed = Vec::new();
    for page in 1..=LIST_MAX_PAGES {
        match shared.client.list_deployments(Some(page), Some(LIST_PAGE)) {
            Ok(list) => {
                let more = list.pagination.as_ref().and_then(|p| p.has_next).unwrap_or(false);
                listed.extend(list.data);
                if !more {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!("orphan sweep: cannot list Edgegap deployments, trying again next round: {e}");
                return;
            }
        }
    }
    let now_unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default();
    let now = Instant::now();
    let mut orphans = Vec::new();
    {
        let mut first_seen = shared.first_seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        first_seen.retain(|request_id, _| listed.iter().any(|d| &d.request_id == request_id));
        for item in &listed {
            if sweep::server_of(item, &namespace_tag).is_none() {
                continue;
            }
            let age = sweep::age(item, now_unix, &mut first_seen, now);
            let ours = |id: &ServerId| shared.table.handled(id);
            match sweep::judge(item, &namespace_tag, known, ours, Some(age), grace) {
                Verdict::Orphan(server_id) => orphans.push((server_id, item.request_id.clone(), age)),
                Verdict::Young => tracing::info!(
                    request_id = item.request_id,
                    "orphan sweep: deployment unknown to NATS but only {age:?} old; judged again later"
                ),
                Verdict::Foreign | Verdict::Known | Verdict::Ours => {}
            }
        }
    }
    for (server_id, request_id, age) in orphans {
        tracing::warn!(
            %server_id,
            request_id,
            "orphan sweep: stopping a deployment whose server never registered ({age:?} old; an earlier matchmaker was killed?)"
        );
        if let Err(e) = spawn_stop_known(shared.clone(), server_id.clone(), request_id) {
            tracing::error!(%server_id, "cannot start an Edgegap worker thread to stop it: {e}");
        }
    }
}

/// Starts a thread that stops a deployment this process did not launch but whose request id
/// it knows (an orphan found by the sweep).
fn spawn_stop_known(shared: Arc<Shared>, server_id: ServerId, request_id: String) -> std::io::Result<()> {
    let (wake_tx, wake) = mpsc::sync_channel(1);
    shared.table.insert(server_id.clone(), wake_tx);
    shared.table.set_request_id(&server_id, &request_id);
    shared.table.request_stop(&server_id);
    let worker = Worker { shared: shared.clone(), server_id: server_id.clone(), events: None, wake };
    let spawned = std::thread::Builder::new().name(format!("edgegap-stop-{}", short(&server_id))).spawn(move || {
        let detail = worker.stop(&request_id);
        tracing::info!(server_id = %worker.server_id, "{detail}");
        worker.table().remove(&worker.server_id);
    });
    if spawned.is_err() {
        shared.table.remove(&server_id);
    }
    spawned.map(|_| ())
}

/// A readable thread-name suffix (thread names are truncated by the OS anyway).
fn short(server_id: &ServerId) -> &str {
    let id = server_id.as_str();
    id.strip_prefix("edgegap-").unwrap_or(id)
}

struct Worker {
    shared: Arc<Shared>,
    server_id: ServerId,
    /// `None` for a server this provider did not launch: the matchmaker learns of its end from
    /// its NATS record.
    events: Option<InboxSender<ProviderEvent>>,
    wake: Receiver<()>,
}

impl Worker {
    fn table(&self) -> &Table {
        &self.shared.table
    }

    fn client(&self) -> &EdgegapClient {
        &self.shared.client
    }

    fn send(&self, event: ProviderEvent) {
        // False only when the matchmaker is gone; the worker still finishes its cleanup.
        if let Some(events) = &self.events {
            events.send(event);
        }
    }

    fn run(self, spec: ServerSpec) {
        let id = self.server_id.clone();
        let body = match request::deployment_request(&self.shared.config, &spec) {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(server_id = %id, "not launched: {error}");
                self.table().remove(&id);
                return self.send(ProviderEvent::LaunchFailed { server_id: id, error });
            }
        };
        let request_id = match self.client().create_deployment(&body) {
            Ok(created) => created.request_id,
            Err(error) => return self.after_failed_create(error),
        };
        tracing::info!(server_id = %id, request_id, app = body.application, version = body.version, "Edgegap accepted the deployment");
        self.table().set_request_id(&id, &request_id);
        self.table().set_stage(&id, Stage::Deploying);
        self.send(ProviderEvent::Launched { server_id: id.clone() });
        match self.follow(&request_id) {
            DeploymentEnd::StopRequested => {
                let detail = self.stop(&request_id);
                self.exited(detail);
            }
            DeploymentEnd::Failed(detail) => {
                // Players are re-placed at once; the failed deployment is cleaned up after.
                tracing::warn!(server_id = %id, "{detail}");
                self.send(ProviderEvent::Exited { server_id: id.clone(), detail });
                self.stop(&request_id);
                self.table().remove(&id);
            }
            DeploymentEnd::Ended(detail) => {
                self.release_sessions(&request_id);
                self.exited(detail);
            }
        }
    }

    /// Forgets the server and reports it gone.
    fn exited(&self, detail: String) {
        tracing::info!(server_id = %self.server_id, "{detail}");
        self.table().remove(&self.server_id);
        self.send(ProviderEvent::Exited { server_id: self.server_id.clone(), detail });
    }

    /// Reports the failure at once, then cleans up whatever Edgegap may hold.
    fn after_failed_create(&self, error: EdgegapError) {
        let id = &self.server_id;
        let cleanup = policy::after_create_error(&error);
        tracing::warn!(server_id = %id, "Edgegap did not start the deployment: {error}");
        let failed =
            ProviderEvent::LaunchFailed { server_id: id.clone(), error: ProviderError::Edgegap(Arc::new(error)) };
        if cleanup == CreateCleanup::Nothing {
            self.table().remove(id);
            return self.send(failed);
        }
        self.table().set_stage(id, Stage::Searching);
        self.send(failed);
        let leftover = match cleanup {
            CreateCleanup::Nothing => None,
            CreateCleanup::StopKnown(request_id) => Some(request_id),
            CreateCleanup::Search => self.search(),
        };
        if let Some(request_id) = leftover {
            tracing::info!(server_id = %id, request_id, "stopping the deployment the failed create left behind");
            self.table().set_request_id(id, &request_id);
            self.stop(&request_id);
        }
        self.table().remove(id);
    }

    /// Waits up to `delay`, less if woken (a stop request, shutdown).
    fn nap(&self, delay: Duration) {
        match self.wake.recv_timeout(delay) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            // The table dropped the sender: the entry is gone; don't spin.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(delay),
        }
    }

    /// Like [`nap`](Self::nap), but returns at once, true, when a stop is requested.
    fn wait_unless_stopped(&self, delay: Duration) -> bool {
        if self.table().stop_requested(&self.server_id) {
            return true;
        }
        self.nap(delay);
        self.table().stop_requested(&self.server_id)
    }

    /// Reads the deployment's status with exponential backoff until it is ready, then at the
    /// watch interval, until it fails, ends or is asked to stop.
    fn follow(&self, request_id: &str) -> DeploymentEnd {
        let timing = &self.shared.config.timing;
        let (mut attempt, mut ready) = (0, false);
        loop {
            let delay = if ready { timing.watch_interval } else { timing.status.delay(attempt) };
            if self.wait_unless_stopped(delay) {
                return DeploymentEnd::StopRequested;
            }
            attempt = attempt.saturating_add(1);
            match self.client().deployment_status(request_id) {
                Ok(status) => match policy::judge_status(&status) {
                    StatusVerdict::Starting => {}
                    StatusVerdict::Ready if !ready => {
                        ready = true;
                        self.table().set_stage(&self.server_id, Stage::Ready);
                        tracing::info!(server_id = %self.server_id, request_id, "Edgegap deployment ready");
                    }
                    StatusVerdict::Ready => {}
                    StatusVerdict::Failed(detail) => return DeploymentEnd::Failed(detail),
                    StatusVerdict::Ended(detail) => return DeploymentEnd::Ended(detail),
                },
                Err(e) if policy::status_error_means_gone(&e) => {
                    return DeploymentEnd::Ended(format!("Edgegap no longer knows deployment {request_id}: {e}"));
                }
                Err(e) => tracing::debug!(server_id = %self.server_id, "status read failed, reading again later: {e}"),
            }
        }
    }

    /// Stops the deployment: retried with backoff, then parked and retried slowly until
    /// Edgegap accepts. Returns the detail for [`ProviderEvent::Exited`] once it is gone (or
    /// stopping past the confirmation time).
    fn stop(&self, request_id: &str) -> String {
        let (id, timing) = (&self.server_id, &self.shared.config.timing);
        self.table().set_stage(id, Stage::Stopping);
        self.shared.seats.free_server(id);
        let mut attempts: u32 = 0;
        loop {
            attempts = attempts.saturating_add(1);
            match policy::judge_stop(&self.client().stop_deployment(request_id)) {
                StopVerdict::Accepted => break,
                StopVerdict::AlreadyGone => {
                    self.release_sessions(request_id);
                    return format!("Edgegap deployment {request_id} was already gone");
                }
                StopVerdict::Retry(error) if attempts < timing.stop_attempts => {
                    tracing::debug!(server_id = %id, request_id, "stop failed, retrying: {error}");
                    self.nap(timing.stop_retry.delay(attempts - 1));
                }
                StopVerdict::Retry(error) => {
                    if attempts == timing.stop_attempts {
                        tracing::error!(
                            server_id = %id,
                            request_id,
                            "stopping the Edgegap deployment failed {attempts} times ({error}); parked, retrying every {:?}",
                            timing.parked_retry
                        );
                    }
                    self.table().set_stage(id, Stage::Parked { error, attempts });
                    self.nap(timing.parked_retry);
                    // It may have ended meanwhile without this stop (the game server stopped
                    // itself, an operator stopped it): then there is nothing left to retry.
                    if let Some(detail) = self.ended(request_id) {
                        self.release_sessions(request_id);
                        return detail;
                    }
                }
            }
        }
        self.table().set_stage(id, Stage::StopAccepted);
        tracing::info!(server_id = %id, request_id, "Edgegap accepted the stop");
        self.release_sessions(request_id);
        self.confirm_end(request_id)
    }

    /// `Some(detail)` when one status read shows the deployment gone.
    fn ended(&self, request_id: &str) -> Option<String> {
        match self.client().deployment_status(request_id) {
            Ok(status) => match policy::judge_status(&status) {
                StatusVerdict::Ended(detail) => Some(detail),
                _ => None,
            },
            Err(e) if policy::status_error_means_gone(&e) => Some(format!("Edgegap deployment {request_id} is gone")),
            Err(_) => None,
        }
    }

    /// Follows a stopped deployment until TERMINATED, for at most the confirmation time.
    fn confirm_end(&self, request_id: &str) -> String {
        let timing = &self.shared.config.timing;
        let deadline = Instant::now() + timing.stop_confirm;
        let mut attempt = 0;
        loop {
            if let Some(detail) = self.ended(request_id) {
                return detail;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return format!("Edgegap deployment {request_id} is stopping");
            }
            self.nap(timing.status.delay(attempt).min(left));
            attempt = attempt.saturating_add(1);
        }
    }

    /// Stops a deployment known only by its server tag; a few tries if listing fails.
    fn stop_by_tag(&self) {
        let (id, timing) = (&self.server_id, &self.shared.config.timing);
        let tag = request::server_tag(id);
        for delay in timing.stop_retry.delays(timing.stop_attempts) {
            match self.find_tagged(&tag) {
                Ok(Some(request_id)) => {
                    tracing::info!(server_id = %id, request_id, "stopping a deployment an earlier matchmaker started");
                    self.table().set_request_id(id, &request_id);
                    let detail = self.stop(&request_id);
                    tracing::info!(server_id = %id, "{detail}");
                    break;
                }
                Ok(None) => {
                    tracing::debug!(server_id = %id, "no Edgegap deployment tagged {tag:?} to stop");
                    // Its players' session workers have nothing left to wait for.
                    self.shared.seats.free_server(id);
                    break;
                }
                Err(e) => {
                    tracing::debug!(server_id = %id, "listing deployments failed: {e}");
                    self.nap(delay);
                }
            }
        }
        self.table().remove(id);
    }

    /// Looks for a deployment tagged with this server's id, giving a lost create time to land.
    fn search(&self) -> Option<String> {
        let (id, timing) = (&self.server_id, &self.shared.config.timing);
        let tag = request::server_tag(id);
        for delay in timing.orphan_search.delays(timing.orphan_search_attempts) {
            if !self.shared.shutting_down.load(Ordering::SeqCst) {
                self.nap(delay);
            }
            match self.find_tagged(&tag) {
                Ok(Some(request_id)) => return Some(request_id),
                Ok(None) => {}
                Err(e) => tracing::debug!(server_id = %id, "listing deployments failed: {e}"),
            }
            if self.shared.shutting_down.load(Ordering::SeqCst) {
                break;
            }
        }
        tracing::warn!(
            server_id = %id,
            "no Edgegap deployment tagged {tag:?} turned up after the create failed; if Edgegap created one \
             later, it is not stopped by this matchmaker (look for the tag in Edgegap's dashboard)"
        );
        None
    }

    /// The live deployment carrying `tag`, if any.
    fn find_tagged(&self, tag: &str) -> Result<Option<String>, EdgegapError> {
        find_tagged(&self.shared, tag)
    }

    /// Sessions mode: deletes the sessions still linked to a deployment that is stopping or
    /// gone (the players' own session workers are told to give theirs back as well).
    fn release_sessions(&self, request_id: &str) {
        if self.shared.sessions_mode() {
            self.shared.seats.free_server(&self.server_id);
            super::sessions::delete_sessions_on(&self.shared, request_id);
        }
    }
}
