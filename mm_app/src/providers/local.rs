use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bevygap_shared::naming::{Namespace, ServerId};
use bevygap_shared::server_env::{Endpoint, ServerEnv};

use super::{ProviderError, ProviderEvent, ServerProvider, ServerSpec};
use bevygap_shared::inbox::InboxSender;

/// Settings of the `local` provider.
#[derive(Debug, Clone)]
pub struct LocalProviderConfig {
    /// Program and arguments of the game server.
    pub command: Vec<String>,
    pub namespace: Namespace,
    /// Address put in tokens; servers bind the same IP.
    pub public_ip: IpAddr,
    /// Extra env for the child (NATS_URL of an embedded server, say). The child otherwise gets
    /// only `PATH`, `HOME`, `RUST_LOG` and the `NATS_*` / `LIGHTYEAR_*` of this process, never
    /// the matchmaker's other secrets.
    pub extra_env: Vec<(String, String)>,
    /// How long a server gets to exit after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
}

struct Running {
    pid: i32,
    stopping_since: Option<Instant>,
}

/// Runs game servers as child processes of the matchmaker: scale from zero on one machine.
/// Children die with the matchmaker (SIGTERM on shutdown, and the kernel's parent-death
/// signal if the matchmaker is killed outright).
pub struct LocalProvider {
    config: LocalProviderConfig,
    children: Arc<Mutex<HashMap<ServerId, Running>>>,
}

impl LocalProvider {
    pub fn new(config: LocalProviderConfig) -> Self {
        Self { config, children: Arc::default() }
    }

    fn spawn(&self, spec: &ServerSpec) -> Result<std::process::Child, ProviderError> {
        let (udp, webtransport) = free_udp_pair(self.config.public_ip)?;
        let env = ServerEnv {
            namespace: self.config.namespace.clone(),
            server_id: spec.server_id.clone(),
            provider: "local".into(),
            game: spec.game.clone(),
            version: spec.version.clone(),
            capacity: spec.capacity,
            udp: Some(Endpoint { bind: udp, public: udp }),
            webtransport: Some(Endpoint { bind: webtransport, public: webtransport }),
        };
        let (program, args) = self.config.command.split_first().ok_or(ProviderError::EmptyCommand)?;
        let mut cmd = Command::new(program);
        cmd.args(args).env_clear().stdin(Stdio::null());
        for (key, value) in std::env::vars() {
            let passed = matches!(key.as_str(), "PATH" | "HOME" | "RUST_LOG" | "RUST_BACKTRACE")
                || key.starts_with("NATS_")
                || key.starts_with("LIGHTYEAR_");
            if passed {
                cmd.env(key, value);
            }
        }
        cmd.envs(self.config.extra_env.iter().map(|(k, v)| (k, v)));
        cmd.envs(env.to_vars());
        // SAFETY: only async-signal-safe calls between fork and exec. PDEATHSIG kills the
        // child if the spawning thread (a long-lived provider thread) dies with the matchmaker.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        cmd.spawn().map_err(|e| ProviderError::Spawn { command: self.config.command.join(" "), source: Arc::new(e) })
    }
}

impl ServerProvider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    fn launch(&self, spec: ServerSpec, events: InboxSender<ProviderEvent>) {
        let server_id = spec.server_id.clone();
        let mut child = match self.spawn(&spec) {
            Ok(child) => child,
            Err(e) => {
                tracing::warn!(%server_id, "launch failed: {e}");
                events.send(ProviderEvent::LaunchFailed { server_id, error: e });
                return;
            }
        };
        let pid = child.id() as i32;
        tracing::info!(%server_id, pid, "launched local game server");
        if let Ok(mut children) = self.children.lock() {
            children.insert(server_id.clone(), Running { pid, stopping_since: None });
        }
        events.send(ProviderEvent::Launched { server_id: server_id.clone() });
        let children = self.children.clone();
        std::thread::Builder::new()
            .name(format!("wait-{server_id}"))
            .spawn(move || {
                let detail = match child.wait() {
                    Ok(status) => format!("process exited: {status}"),
                    Err(e) => format!("process lost: {e}"),
                };
                if let Ok(mut children) = children.lock() {
                    children.remove(&server_id);
                }
                tracing::info!(%server_id, "{detail}");
                events.send(ProviderEvent::Exited { server_id, detail });
            })
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!("cannot start a waiter thread: {e}"));
    }

    fn stop(&self, server_id: &ServerId) {
        let Ok(mut children) = self.children.lock() else { return };
        let Some(running) = children.get_mut(server_id) else { return };
        if running.stopping_since.is_some() {
            return;
        }
        running.stopping_since = Some(Instant::now());
        let pid = running.pid;
        // SAFETY: plain kill(2) on a pid we spawned and have not yet reaped (it is in the map).
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let children = self.children.clone();
        let grace = self.config.stop_grace;
        let server_id = server_id.clone();
        let _ = std::thread::Builder::new().name(format!("stop-{server_id}")).spawn(move || {
            std::thread::sleep(grace);
            if let Ok(children) = children.lock()
                && let Some(running) = children.get(&server_id)
            {
                tracing::warn!(%server_id, "did not exit within {grace:?} of SIGTERM; killing");
                // SAFETY: still in the map, so not reaped yet: the pid is still our child.
                unsafe { libc::kill(running.pid, libc::SIGKILL) };
            }
        });
    }

    fn shutdown_all(&self) {
        let ids = self.running();
        for id in &ids {
            self.stop(id);
        }
        let deadline = Instant::now() + self.config.stop_grace + Duration::from_secs(2);
        while Instant::now() < deadline && !self.running().is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn running(&self) -> Vec<ServerId> {
        self.children.lock().map(|c| c.keys().cloned().collect()).unwrap_or_default()
    }
}

impl Drop for LocalProvider {
    fn drop(&mut self) {
        self.shutdown_all();
    }
}

/// Two distinct currently free UDP ports on `ip`, for plain netcode and WebTransport/QUIC.
/// Both probe sockets are held until both are chosen, so the two can never be the same port.
fn free_udp_pair(ip: IpAddr) -> Result<(SocketAddr, SocketAddr), ProviderError> {
    let bind = || {
        UdpSocket::bind(SocketAddr::new(ip, 0))
            .and_then(|s| s.local_addr().map(|a| (s, a)))
            .map_err(|e| ProviderError::Ports { ip, source: Arc::new(e) })
    };
    let (_first, a) = bind()?;
    let (_second, b) = bind()?;
    Ok((a, b))
}
