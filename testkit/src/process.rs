//! Child processes of a test: killed when dropped, or stopped the way an operator would (SIGTERM,
//! then SIGKILL for one that does not exit in time).

use std::process::{Child, ExitStatus};
use std::time::Duration;

use crate::wait::try_wait_for;

/// A child process killed (and reaped) when dropped, so a failing test leaves nothing running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `signal` (`libc::SIGTERM`, `libc::SIGKILL`, …) to `child`, which must not have been
/// reaped yet (its pid could belong to another process by then).
pub fn send_signal(child: &Child, signal: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(child.id()).map_err(std::io::Error::other)?;
    // SAFETY: kill(2) takes plain integers; the pid is our own child's.
    if unsafe { libc::kill(pid, signal) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Stops `child` as an operator would: SIGTERM, then up to `within` for it to exit, then
/// SIGKILL. It is reaped either way. Returns its exit status when it exited by itself (before
/// the SIGTERM or after it), `None` when it had to be killed.
pub fn stop_gracefully(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    let _ = send_signal(child, libc::SIGTERM);
    let exited = try_wait_for(within, "the process to exit on SIGTERM", || child.try_wait().ok().flatten()).ok();
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    exited
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::time::Instant;

    use super::*;

    fn sh(script: &str) -> Child {
        Command::new("sh").args(["-c", script]).stdin(Stdio::null()).spawn().expect("sh runs")
    }

    #[test]
    fn a_process_that_exits_on_sigterm_gives_its_status() {
        let mut child = sh("sleep 60");
        let status = stop_gracefully(&mut child, Duration::from_secs(10)).expect("exits on SIGTERM");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
    }

    #[test]
    fn a_process_that_ignores_sigterm_is_killed_after_the_grace() {
        // The shell ignores SIGTERM (and so do the `sleep`s it starts); it says so once it does.
        let mut child = Command::new("sh")
            .args(["-c", "trap '' TERM; echo ignoring; while :; do sleep 0.05; done"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh runs");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("piped")), &mut line)
            .expect("sh says it ignores SIGTERM");
        let start = Instant::now();
        assert_eq!(stop_gracefully(&mut child, Duration::from_millis(200)), None);
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert!(child.try_wait().expect("reaped").is_some(), "it was killed and reaped");
    }

    #[test]
    fn a_process_that_already_exited_gives_its_status_at_once() {
        let mut child = sh("exit 3");
        let _ = child.wait();
        assert_eq!(stop_gracefully(&mut child, Duration::from_secs(10)).and_then(|s| s.code()), Some(3));
    }
}
