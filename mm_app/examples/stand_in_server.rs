//! A stand-in game server for the matchmaker's tests: it speaks the NATS side of the contract
//! (server record, heartbeats, control subject, clean exit) without running Lightyear, and
//! can misbehave on purpose. Players are simulated by the tests writing player records.
//!
//! Flags: `--ready-after-ms N` (report ready late), `--never-ready`, `--exit-after-ms N`
//! (die abruptly, leaving its record behind, like a crash), `--crash-once FILE` (the first
//! server to find FILE missing creates it, never gets ready and crashes after 800 ms),
//! `--mute-after-ms N` (stop heartbeating but keep running, like a hung process).

use std::time::Duration;

use bevygap_shared::env::ProcessEnv;
use bevygap_shared::kv::KvStores;
use bevygap_shared::nats::{InitialConnect, NatsConfig, NatsConnection};
use bevygap_shared::protocol::ServerAddresses;
use bevygap_shared::records::{ServerCommand, ServerRecord, ServerStatus, now_ms};
use bevygap_shared::server_env::ServerEnv;
use futures::StreamExt;

fn flag(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).and_then(|v| v.parse().ok())
}

#[tokio::main]
async fn main() {
    let env = ServerEnv::from_source(&ProcessEnv).expect("the provider sets the server env");
    let nats = NatsConnection::connect(&NatsConfig::from_env("stand-in").expect("nats env"), InitialConnect::FailFast)
        .await
        .expect("nats reachable");
    let kv = KvStores::open(&nats.jetstream(), &env.namespace.names()).await.expect("buckets provisioned");
    let args: Vec<String> = std::env::args().collect();
    let crash_once = args
        .iter()
        .position(|a| a == "--crash-once")
        .and_then(|i| args.get(i + 1))
        .is_some_and(|file| std::fs::OpenOptions::new().write(true).create_new(true).open(file).is_ok());
    let never_ready = crash_once || args.iter().any(|a| a == "--never-ready");
    let ready_after = Duration::from_millis(flag("--ready-after-ms").unwrap_or(0));
    let started = now_ms();
    let record = |status| ServerRecord {
        server_id: env.server_id.clone(),
        game: env.game.clone(),
        version: env.version.clone(),
        provider: env.provider.clone(),
        addresses: ServerAddresses { udp: env.udp.map(|e| e.public), webtransport: env.webtransport.map(|e| e.public) },
        cert_digest: None,
        cert_not_after: None,
        capacity: env.capacity,
        status,
        started_at_ms: started,
        heartbeat_at_ms: now_ms(),
    };
    let put = |status| {
        let kv = kv.clone();
        let bytes = serde_json::to_vec(&record(status)).expect("serialisable");
        let key = env.server_id.to_string();
        // A failed write (NATS failing over) is only logged: the next heartbeat writes again,
        // as a real server's would.
        async move {
            if let Err(e) = kv.servers.put(key, bytes.into()).await {
                eprintln!("stand-in server: cannot write its record, trying at the next beat: {e}");
            }
        }
    };
    put(ServerStatus::Starting).await;
    let mut control =
        nats.client().subscribe(env.namespace.names().server_control_subject(&env.server_id)).await.expect("subscribe");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
    let crash = async {
        match flag("--exit-after-ms").or(crash_once.then_some(800)) {
            Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(crash);
    let mut beat = tokio::time::interval(Duration::from_secs(2));
    let ready_at = tokio::time::Instant::now() + ready_after;
    let mute_at = flag("--mute-after-ms").map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
    loop {
        tokio::select! {
            _ = beat.tick() => {}
            _ = tokio::time::sleep_until(ready_at), if !never_ready && tokio::time::Instant::now() < ready_at => {}
            _ = &mut crash => std::process::exit(3),
            _ = term.recv() => break,
            Some(msg) = control.next() => {
                if serde_json::from_slice::<ServerCommand>(&msg.payload).ok() == Some(ServerCommand::Shutdown) {
                    break;
                }
            }
        }
        if mute_at.is_some_and(|at| tokio::time::Instant::now() >= at) {
            continue;
        }
        let ready = !never_ready && tokio::time::Instant::now() >= ready_at;
        put(if ready { ServerStatus::Ready } else { ServerStatus::Starting }).await;
    }
    let _ = kv.servers.delete(env.server_id.as_str()).await;
}
