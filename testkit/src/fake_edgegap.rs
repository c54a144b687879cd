//! The `fake-edgegap` binary as a child process, for tests and the benchmark runner that run
//! the matchmaker as a program against it (tests of the fake itself run it in-process).

use std::ffi::OsStr;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::process::stop_gracefully;

/// A running `fake-edgegap` process and the address it serves on.
///
/// It is stopped with SIGTERM when dropped (the fake then stops every deployment process and
/// exits), and killed if it has not exited within [`FakeEdgegapProcess::STOP_WITHIN`].
///
/// ```no_run
/// use bevygap_testkit::FakeEdgegapProcess;
///
/// let mut command = FakeEdgegapProcess::command(FakeEdgegapProcess::workspace_binary(), "token", "demo", "1.0");
/// command.args(["--step-delay-ms", "0"]);
/// let fake = FakeEdgegapProcess::spawn(&mut command).expect("fake-edgegap starts");
/// println!("Edgegap at {}", fake.base_url());
/// ```
pub struct FakeEdgegapProcess {
    child: Child,
    addr: SocketAddr,
}

impl FakeEdgegapProcess {
    /// How long the fake gets to stop its deployments and exit before it is killed.
    pub const STOP_WITHIN: Duration = Duration::from_secs(15);

    /// The workspace's `fake-edgegap` binary, built first if missing (see
    /// [`workspace_binary`](crate::workspace_binary)).
    pub fn workspace_binary() -> PathBuf {
        crate::workspace_binary("fake_edgegap", "fake-edgegap")
    }

    /// `binary --api-token <token> --app <app> --version <version>` with stdin closed: add flags,
    /// environment and where its stderr goes, then [`spawn`](Self::spawn) it.
    pub fn command(binary: impl AsRef<OsStr>, token: &str, app: &str, version: &str) -> Command {
        let mut command = Command::new(binary);
        command.args(["--api-token", token, "--app", app, "--version", version]).stdin(Stdio::null());
        command
    }

    /// Starts `command` (with stdout piped) and reads the address the fake prints as its first
    /// line. An error if it does not start or prints no address (it is killed then).
    pub fn spawn(command: &mut Command) -> std::io::Result<Self> {
        let mut child = command.stdout(Stdio::piped()).spawn()?;
        let mut line = String::new();
        let read = match child.stdout.take() {
            Some(stdout) => std::io::BufReader::new(stdout).read_line(&mut line).map(|_| ()),
            None => Err(std::io::Error::other("its stdout is not piped")),
        };
        let addr = read.and_then(|()| {
            line.trim().parse::<SocketAddr>().map_err(|_| {
                std::io::Error::other(format!("fake-edgegap printed no address (its first line: {:?})", line.trim()))
            })
        });
        match addr {
            Ok(addr) => Ok(Self { child, addr }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// The address its API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, as `BEVYGAP_EDGEGAP_URL` takes it.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Stops it now, as dropping it would (then dropping it does nothing more): its exit status,
    /// or `None` when it had to be killed.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        stop_gracefully(&mut self.child, Self::STOP_WITHIN)
    }
}

impl Drop for FakeEdgegapProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn reads_the_address_from_the_first_line_and_stops_the_process() {
        let mut fake = FakeEdgegapProcess::spawn(&mut sh("echo 127.0.0.1:4567; exec sleep 60")).expect("starts");
        assert_eq!(fake.base_url(), "http://127.0.0.1:4567");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(fake.stop().and_then(|s| s.signal()), Some(libc::SIGTERM), "stopped with SIGTERM");
    }

    #[test]
    fn a_process_that_prints_no_address_is_an_error() {
        let err = FakeEdgegapProcess::spawn(&mut sh("echo listening soon; exec sleep 60")).err().expect("an error");
        assert!(err.to_string().contains("\"listening soon\""), "{err}");
        assert!(FakeEdgegapProcess::spawn(&mut Command::new("/nonexistent/fake-edgegap")).is_err());
    }
}
