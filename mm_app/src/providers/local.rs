use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::path::PathBuf;

use bevygap_shared::LightyearKeys;
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
    /// The keys game servers check tokens with. The private key reaches them through a file
    /// only this user can read, never through their environment (readable in
    /// `/proc/<pid>/environ`).
    pub keys: LightyearKeys,
    /// The matchmaker's own environment, filtered by [`child_env`] for each child.
    pub parent_env: Vec<(String, String)>,
    /// Extra env for the child (`NATS_URL` of an embedded server, say).
    pub extra_env: Vec<(String, String)>,
    /// How long a server gets to exit after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
}

/// Game-server NATS credentials are given to the matchmaker under this prefix
/// (`BEVYGAP_SERVER_NATS_USER`, `…_PASSWORD`, `…_TOKEN`, `…_NKEY_SEED`, `…_CREDS_FILE`) and
/// handed to children as the plain `NATS_*` variables; the matchmaker's own NATS credentials
/// never reach a game server.
pub const SERVER_NATS_PREFIX: &str = "BEVYGAP_SERVER_";

/// The environment of a game-server child: the basics (`PATH`, `HOME`, logging), the NATS
/// connection settings that are not credentials (`NATS_URL`, CA, TLS), game-server NATS
/// credentials from `BEVYGAP_SERVER_NATS_*`, the Lightyear protocol id and key *file*, then
/// `extra` (which wins over what came before: a server's own credentials) and the provider →
/// server contract. Never the matchmaker's NATS credentials, never
/// a private key value.
pub fn child_env(
    parent: &[(String, String)],
    extra: &[(String, String)],
    keys: (u64, &std::path::Path),
    server: &ServerEnv,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for (key, value) in parent {
        let basic = matches!(key.as_str(), "PATH" | "HOME" | "RUST_LOG" | "RUST_BACKTRACE");
        let connection = matches!(key.as_str(), "NATS_URL" | "NATS_CA_FILE" | "NATS_CA_PEM" | "NATS_REQUIRE_TLS");
        if basic || connection {
            env.push((key.clone(), value.clone()));
        } else if let Some(nats) = key.strip_prefix(SERVER_NATS_PREFIX).filter(|k| k.starts_with("NATS_")) {
            env.push((nats.to_string(), value.clone()));
        }
    }
    env.extend(extra.iter().cloned());
    env.push(("LIGHTYEAR_PROTOCOL_ID".into(), keys.0.to_string()));
    env.push(("LIGHTYEAR_PRIVATE_KEY_FILE".into(), keys.1.display().to_string()));
    env.extend(server.to_vars().into_iter().map(|(k, v)| (k.to_string(), v)));
    env
}

/// The private key written once for all children: a file readable by this user only, in a
/// directory only this user can enter, removed with the provider.
struct KeyFile {
    dir: PathBuf,
    path: PathBuf,
}

impl KeyFile {
    fn write(keys: &LightyearKeys) -> Result<Self, ProviderError> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let io = |e: std::io::Error| ProviderError::KeyFile(Arc::new(e));
        let dir =
            std::env::temp_dir().join(format!("bevygap-keys-{}-{:016x}", std::process::id(), rand::random::<u64>()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(io)?;
        let path = dir.join("lightyear.key");
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io)?;
        file.write_all(keys.private_key.to_hex().as_bytes()).map_err(io)?;
        Ok(Self { dir, path })
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
    key_file: KeyFile,
    children: Arc<Mutex<HashMap<ServerId, Running>>>,
}

impl LocalProvider {
    /// A provider running `config.command`; writes the key file its children read.
    pub fn new(config: LocalProviderConfig) -> Result<Self, ProviderError> {
        let key_file = KeyFile::write(&config.keys)?;
        Ok(Self { config, key_file, children: Arc::default() })
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
        let keys = (self.config.keys.protocol_id, self.key_file.path.as_path());
        let mut extra = self.config.extra_env.clone();
        // Its own NATS credentials, issued for this server, replace any shared game-server ones.
        extra.extend(spec.nats_credentials.iter().flat_map(|c| c.env()).map(|(key, value)| (key.to_string(), value)));
        cmd.envs(child_env(&self.config.parent_env, &extra, keys, &env));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn server_env() -> ServerEnv {
        ServerEnv {
            namespace: Namespace::new("ns").unwrap(),
            server_id: ServerId::new("local-1").unwrap(),
            provider: "local".into(),
            game: bevygap_shared::protocol::GameName::new("demo").unwrap(),
            version: bevygap_shared::protocol::GameVersion::new("1.0").unwrap(),
            capacity: 4,
            udp: None,
            webtransport: None,
        }
    }

    #[test]
    fn children_get_game_server_credentials_and_a_key_file_never_the_matchmakers_secrets() {
        let parent: Vec<(String, String)> = [
            ("PATH", "/bin"),
            ("NATS_URL", "nats://127.0.0.1:4222"),
            ("NATS_USER", "matchmaker"),
            ("NATS_PASSWORD", "matchmaker-secret"),
            ("NATS_INBOX_PREFIX", "_INBOX_bevygap_ns_matchmaker"),
            ("LIGHTYEAR_PRIVATE_KEY", "ab".repeat(32).as_str()),
            ("BEVYGAP_ADMIN_TOKEN", "admin-secret-0123456789"),
            ("BEVYGAP_EDGEGAP_API_TOKEN", "edgegap-secret"),
            ("BEVYGAP_SERVER_NATS_USER", "gameserver"),
            ("BEVYGAP_SERVER_NATS_PASSWORD", "gameserver-password"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let key_file = std::path::Path::new("/run/keys/lightyear.key");
        let env = child_env(&parent, &[], (7, key_file), &server_env());
        let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(get("NATS_USER"), Some("gameserver"));
        assert_eq!(get("NATS_PASSWORD"), Some("gameserver-password"));
        assert_eq!(get("NATS_URL"), Some("nats://127.0.0.1:4222"));
        assert_eq!(get("LIGHTYEAR_PROTOCOL_ID"), Some("7"));
        assert_eq!(get("LIGHTYEAR_PRIVATE_KEY_FILE"), Some("/run/keys/lightyear.key"));
        assert_eq!(get("LIGHTYEAR_PRIVATE_KEY"), None);
        assert_eq!(get("NATS_INBOX_PREFIX"), None, "the matchmaker's inbox is not the server's");
        assert_eq!(get("BEVYGAP_SERVER_ID"), Some("local-1"));
        let all = format!("{env:?}");
        for secret in ["matchmaker-secret", "abababab", "admin-secret", "edgegap-secret"] {
            assert!(!all.contains(secret), "{secret} leaked into a child's environment");
        }
    }

    #[test]
    fn the_key_file_is_private_and_removed_with_the_provider() {
        use std::os::unix::fs::PermissionsExt;
        let keys = LightyearKeys { protocol_id: 1, private_key: bevygap_shared::PrivateKey::from_bytes([0xab; 32]) };
        let file = KeyFile::write(&keys).unwrap();
        let mode = std::fs::metadata(&file.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(&file.dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let env: std::collections::HashMap<&str, &str> =
            [("LIGHTYEAR_PRIVATE_KEY_FILE", file.path.to_str().unwrap())].into_iter().collect();
        let read = LightyearKeys::from_source(&env).expect("the server plugin reads it back");
        assert_eq!(read.private_key.expose(), &[0xab; 32]);
        let dir = file.dir.clone();
        drop(file);
        assert!(!dir.exists());
    }
}
