//! A tiny stand-in game server for tests and demos of the fake Edgegap.
//!
//! It does what a Bevygap game server does at boot, with the real client:
//! parse `ARBITRIUM_*` ([`ArbitriumEnv`]) and fetch the context
//! ([`ContextClient::context`]). Then, by `FAKE_GS_MODE`:
//! - `self-stop` (default): call self-stop, then wait for SIGTERM;
//! - `serve`: bind the first UDP/TCP port and wait for SIGTERM;
//! - `exit`: exit 0 at once (a server that ends on its own);
//! - `ignore-sigterm`: ignore SIGTERM and wait (needs SIGKILL).
//!
//! If `FAKE_GS_REPORT` names a file, a JSON report of what it saw is written
//! there (atomically) before it waits, so tests can check it.

use std::process::ExitCode;
use std::time::Duration;

use bevygap_edgegap::{ArbitriumEnv, ContextClient, StopOutcome};
use serde_json::json;

fn main() -> ExitCode {
    let mode = std::env::var("FAKE_GS_MODE").unwrap_or_else(|_| "self-stop".to_owned());
    let env = match ArbitriumEnv::from_process_env() {
        Ok(env) => env,
        Err(err) => {
            eprintln!("fake-game-server: {err}");
            return ExitCode::from(3);
        }
    };
    let client = ContextClient::from_arbitrium(&env);
    let context = match client.context() {
        Ok(context) => context,
        Err(err) => {
            eprintln!("fake-game-server: context failed: {err}");
            return ExitCode::from(4);
        }
    };
    let mut report = json!({
        "mode": mode,
        "request_id": env.request_id,
        "public_ip": env.public_ip.to_string(),
        "ports": env.ports.values().map(|p| json!({"name": p.name, "internal": p.internal, "external": p.external, "protocol": p.protocol})).collect::<Vec<_>>(),
        "location_city": env.location.city,
        "context_request_id": context.request_id,
        "context_status": context.status,
        "context_sockets": context.sockets,
        "user_env": std::env::var("FAKE_GS_USER_VAR").ok(),
    });
    let mut _bound = None;
    match mode.as_str() {
        "self-stop" => {
            let outcome = match client.self_stop() {
                Ok(StopOutcome::Stopping { .. }) => "200",
                Ok(StopOutcome::Accepted { .. }) => "202",
                Err(err) => {
                    eprintln!("fake-game-server: self-stop failed: {err}");
                    return ExitCode::from(5);
                }
            };
            report["self_stop"] = json!(outcome);
        }
        "serve" => {
            if let Some(port) = env.ports.values().next() {
                _bound = bind(&port.protocol, port.internal);
                report["bound"] = json!(_bound.is_some());
            }
        }
        "exit" => {
            write_report(&report);
            return ExitCode::SUCCESS;
        }
        "ignore-sigterm" => {
            // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
            unsafe {
                libc::signal(libc::SIGTERM, libc::SIG_IGN);
            }
        }
        other => {
            eprintln!("fake-game-server: unknown FAKE_GS_MODE {other:?}");
            return ExitCode::from(2);
        }
    }
    write_report(&report);
    // Wait for Edgegap (the fake) to stop us with SIGTERM (default action: exit).
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Keeps a socket on the server port open, as a real server would.
fn bind(protocol: &str, port: u16) -> Option<Box<dyn std::any::Any>> {
    if protocol.eq_ignore_ascii_case("UDP") {
        std::net::UdpSocket::bind(("127.0.0.1", port)).ok().map(|s| Box::new(s) as Box<dyn std::any::Any>)
    } else {
        std::net::TcpListener::bind(("127.0.0.1", port)).ok().map(|s| Box::new(s) as Box<dyn std::any::Any>)
    }
}

fn write_report(report: &serde_json::Value) {
    let Ok(path) = std::env::var("FAKE_GS_REPORT") else {
        return;
    };
    let tmp = format!("{path}.tmp");
    let written = std::fs::write(&tmp, report.to_string()).and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(err) = written {
        eprintln!("fake-game-server: cannot write report {path}: {err}");
    }
}
