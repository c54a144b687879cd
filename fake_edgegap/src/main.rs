//! `fake-edgegap`: runs the fake Edgegap API until SIGINT/SIGTERM.

use std::io::Write;
use std::process::ExitCode;

use fake_edgegap::FakeEdgegap;
use fake_edgegap::cli::{self, CliAction};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match cli::parse(&args, std::env::var("FAKE_EDGEGAP_API_TOKEN").ok()) {
        Ok(CliAction::Run(config)) => config,
        Ok(CliAction::Help) => {
            print!("{}", cli::HELP);
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("fake-edgegap: {err}");
            return ExitCode::from(2);
        }
    };
    // Block SIGINT/SIGTERM before any thread starts (threads inherit the mask),
    // so that only the sigwait below receives them and shutdown is orderly.
    let signals = match block_shutdown_signals() {
        Ok(set) => set,
        Err(err) => {
            eprintln!("fake-edgegap: cannot set up signal handling: {err}");
            return ExitCode::FAILURE;
        }
    };
    let fake = match FakeEdgegap::start(*config) {
        Ok(fake) => fake,
        Err(err) => {
            eprintln!("fake-edgegap: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{}", fake.addr()).and_then(|()| stdout.flush()).is_err() {
        eprintln!("fake-edgegap: cannot write the address to stdout");
    }
    eprintln!("fake-edgegap: serving {} (token from --api-token)", fake.base_url());
    let signal = wait_for(&signals);
    eprintln!("fake-edgegap: signal {signal}, stopping deployments");
    fake.shutdown();
    ExitCode::SUCCESS
}

fn block_shutdown_signals() -> std::io::Result<libc::sigset_t> {
    // SAFETY: initialising and installing a locally owned signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        Ok(set)
    }
}

fn wait_for(set: &libc::sigset_t) -> libc::c_int {
    let mut signal: libc::c_int = 0;
    // SAFETY: `set` was initialised above; `signal` is a valid out pointer.
    while unsafe { libc::sigwait(set, &mut signal) } != 0 {}
    signal
}
