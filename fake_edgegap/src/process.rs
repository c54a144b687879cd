//! Deployment processes: the local stand-in for Edgegap's containers.
//!
//! Each process gets its own process group so that stopping a deployment
//! signals everything it spawned (e.g. a `sh -c` wrapper and its child).
//! On Linux each child also gets `PR_SET_PDEATHSIG = SIGKILL`, so it dies even
//! if the fake is SIGKILLed. That signal fires when the *thread* that forked
//! exits, which is why processes are only spawned from the long-lived
//! lifecycle thread, never from a request thread.

use std::fs::File;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Instant;

use crate::config::{ChildOutput, GameServerCommand};

/// A running deployment process.
#[derive(Debug)]
pub struct GameProcess {
    child: Child,
    /// When SIGTERM was sent.
    pub term_sent: Option<Instant>,
    /// Whether SIGKILL was sent.
    pub kill_sent: bool,
}

impl GameProcess {
    /// Starts `command` with `env` added to the fake's environment (minus any
    /// inherited `ARBITRIUM_*`, so only the deployment's own values are seen).
    pub fn spawn(
        command: &GameServerCommand,
        env: &[(String, String)],
        output: &ChildOutput,
        request_id: &str,
    ) -> io::Result<Self> {
        let mut cmd = Command::new(&command.program);
        cmd.args(&command.args);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ARBITRIUM_") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(command.env.iter().map(|(k, v)| (k, v)));
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null());
        let (stdout, stderr) = output_streams(output, request_id)?;
        cmd.stdout(stdout).stderr(stderr);
        cmd.process_group(0);
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and only
        // calls async-signal-safe functions (sigemptyset, sigprocmask, prctl,
        // getppid); it allocates nothing.
        unsafe {
            cmd.pre_exec(move || prepare_child(parent));
        }
        let child = cmd.spawn()?;
        Ok(Self { child, term_sent: None, kill_sent: false })
    }

    /// OS process id (also the process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM to the process group (Edgegap's graceful stop).
    pub fn terminate(&mut self) {
        self.signal(libc::SIGTERM);
        self.term_sent.get_or_insert_with(Instant::now);
    }

    /// Sends SIGKILL to the process group (grace expired, or shutdown).
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        self.kill_sent = true;
    }

    /// Reaps the process if it has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Blocks until the process exits.
    pub fn wait(&mut self) -> Option<ExitStatus> {
        self.child.wait().ok()
    }

    fn signal(&self, signal: libc::c_int) {
        let Ok(pgid) = libc::pid_t::try_from(self.child.id()) else {
            return;
        };
        // SAFETY: plain syscall; a negative pid addresses the process group we created.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

impl Drop for GameProcess {
    /// Last line of defence against leaks: a process still owned when its
    /// record is dropped is killed and reaped.
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            self.kill();
            let _ = self.child.wait();
        }
    }
}

/// Describes how a process ended, for status and inventory.
pub fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "exited".to_owned(),
    }
}

fn output_streams(output: &ChildOutput, request_id: &str) -> io::Result<(Stdio, Stdio)> {
    match output {
        ChildOutput::Null => Ok((Stdio::null(), Stdio::null())),
        ChildOutput::Inherit => {
            use std::os::fd::AsFd;
            let out = io::stderr().as_fd().try_clone_to_owned()?;
            let err = io::stderr().as_fd().try_clone_to_owned()?;
            Ok((Stdio::from(out), Stdio::from(err)))
        }
        ChildOutput::Dir(dir) => {
            std::fs::create_dir_all(dir)?;
            let file = File::create(dir.join(format!("{request_id}.log")))?;
            let copy = file.try_clone()?;
            Ok((Stdio::from(file), Stdio::from(copy)))
        }
    }
}

/// Runs in the child between fork and exec.
fn prepare_child(parent: u32) -> io::Result<()> {
    // SAFETY: async-signal-safe libc calls on a zeroed, locally owned sigset.
    unsafe {
        // The CLI blocks SIGTERM/SIGINT in all its threads to sigwait() for
        // them; a blocked mask is inherited across exec, so clear it.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        #[cfg(target_os = "linux")]
        {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // The fake may have died between fork and prctl: then nobody would kill us.
        if u32::try_from(libc::getppid()).ok() != Some(parent) {
            // (from_raw_os_error does not allocate, which matters after fork)
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}
