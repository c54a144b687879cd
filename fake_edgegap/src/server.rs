//! The running fake: shared state, the HTTP accept loop (one thread per
//! request, so a held "timeout" request never blocks others), the lifecycle
//! thread, and orderly shutdown.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::FakeConfig;
use crate::faults::{FaultConfig, FaultState};
use crate::inventory::Inventory;
use crate::routes::{self, Incoming};
use crate::state::World;

/// Largest request body read (Edgegap bodies are a few KB).
const MAX_BODY: u64 = 1 << 20;

/// Why the fake could not start.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// Requested address.
        addr: SocketAddr,
        /// OS error text.
        reason: String,
    },
    /// A thread could not be started.
    #[error("cannot start fake-edgegap thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// State shared by the HTTP threads and the lifecycle thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: FakeConfig,
    pub base_url: String,
    /// Edgegap-format start time (apps' create/update times).
    pub started_at: String,
    world: Mutex<World>,
    faults: Mutex<FaultState>,
    shutdown: AtomicBool,
}

impl Shared {
    /// The state. A panicked handler leaves consistent data, so poisoning is ignored.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultState> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Sleeps up to `total`, waking early on shutdown. Returns false if interrupted.
    pub fn sleep(&self, total: Duration) -> bool {
        let step = Duration::from_millis(20);
        let deadline = std::time::Instant::now() + total;
        while std::time::Instant::now() < deadline {
            if self.is_shutting_down() {
                return false;
            }
            std::thread::sleep(step.min(deadline.saturating_duration_since(std::time::Instant::now())));
        }
        true
    }
}

/// A running fake Edgegap. Dropping it (or [`FakeEdgegap::shutdown`]) stops
/// the server and terminates every deployment process.
pub struct FakeEdgegap {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
}

impl FakeEdgegap {
    /// Binds `config.listen` and starts serving.
    pub fn start(config: FakeConfig) -> Result<Self, FakeError> {
        let server = tiny_http::Server::http(config.listen)
            .map_err(|e| FakeError::Bind { addr: config.listen, reason: e.to_string() })?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| FakeError::Bind { addr: config.listen, reason: "not an IP listener".into() })?;
        let server = Arc::new(server);
        let faults = FaultState::new(config.faults.clone(), config.rate_limits.clone());
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            started_at: crate::format::timestamp_now(),
            config,
            world: Mutex::new(World::default()),
            faults: Mutex::new(faults),
            shutdown: AtomicBool::new(false),
        });
        let mut fake = Self { shared: shared.clone(), addr, server: server.clone(), threads: Vec::new() };
        let lifecycle_shared = shared.clone();
        fake.threads.push(
            std::thread::Builder::new()
                .name("fake-edgegap-lifecycle".into())
                .spawn(move || crate::lifecycle::run(&lifecycle_shared))?,
        );
        fake.threads.push(
            std::thread::Builder::new()
                .name("fake-edgegap-http".into())
                .spawn(move || accept_loop(&server, &shared))?,
        );
        tracing::info!(%addr, "fake Edgegap listening");
        Ok(fake)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: what to put in `EdgegapConfig::base_url`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The accepted API token (without the `token ` prefix).
    pub fn api_token(&self) -> &str {
        &self.shared.config.api_token
    }

    /// Live deployments, sessions and processes, plus request counters.
    pub fn inventory(&self) -> Inventory {
        Inventory::collect(&self.shared)
    }

    /// Replaces the injected faults (counters of injected faults restart).
    pub fn set_faults(&self, faults: FaultConfig) {
        let mut state = self.shared.faults();
        state.config = faults;
        state.injected.clear();
    }

    /// Stops serving, terminates all processes (SIGTERM, then SIGKILL after
    /// the grace) and waits for them.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.server.unblock();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a fake-edgegap thread panicked");
            }
        }
    }
}

impl std::fmt::Debug for FakeEdgegap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeEdgegap").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for FakeEdgegap {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(server: &tiny_http::Server, shared: &Arc<Shared>) {
    while !shared.is_shutting_down() {
        let request = match server.recv_timeout(Duration::from_millis(50)) {
            Ok(Some(request)) => request,
            Ok(None) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "fake-edgegap accept failed");
                continue;
            }
        };
        let shared_for_request = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("fake-edgegap-request".into())
            .spawn(move || handle(request, &shared_for_request));
        if let Err(err) = spawned {
            tracing::error!(error = %err, "cannot start request thread");
        }
    }
}

fn handle(mut request: tiny_http::Request, shared: &Shared) {
    let mut body = String::new();
    let read = request.as_reader().take(MAX_BODY).read_to_string(&mut body);
    let url = request.url().to_owned();
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (url, String::new()),
    };
    let authorization =
        request.headers().iter().find(|h| h.field.equiv("authorization")).map(|h| h.value.as_str().to_owned());
    let incoming =
        Incoming { method: request.method().as_str().to_ascii_uppercase(), path, query, authorization, body };
    let reply = match read {
        Ok(_) => routes::dispatch(shared, &incoming),
        Err(_) => routes::Reply::error(400, "Request body is not valid UTF-8 JSON"),
    };
    let text = reply.body.to_string();
    let mut response = tiny_http::Response::from_string(text).with_status_code(reply.status);
    if let Ok(header) = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]) {
        response = response.with_header(header);
    }
    if let Err(err) = request.respond(response) {
        tracing::debug!(error = %err, "client went away before the answer");
    }
}
