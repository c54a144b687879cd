//! Join throughput and latency through the public endpoint, idle CPU and memory, with real
//! nats-server and stand-in game-server processes; compares the event-driven runner with a
//! fixed 30 Hz loop. `cargo bench -p bevygap_matchmaker --bench joins` (figures in BENCHMARKS.md).

use std::io::Read;
use std::time::{Duration, Instant};

use bevy::app::App;
use bevygap_matchmaker::config::MatchmakerConfig;
use bevygap_matchmaker::harness::LocalMatchmaker;
use bevygap_shared::{LightyearKeys, PrivateKey};
use serde_json::{Value, json};

const JOINS: usize = 2000;
const CLIENTS: usize = 16;

#[derive(Clone, Copy, Debug)]
enum Runner {
    Wakeable,
    Fixed30Hz,
}

fn stand_in() -> String {
    let exe = std::env::current_exe().expect("exe");
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let path = dir.join("examples").join("stand_in_server");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--release", "-p", "bevygap_matchmaker", "--example", "stand_in_server"])
            .status()
            .expect("cargo");
        assert!(status.success(), "cannot build the stand-in server");
    }
    path.display().to_string()
}

fn cpu_seconds() -> f64 {
    let mut stat = String::new();
    std::fs::File::open("/proc/self/stat").and_then(|mut f| f.read_to_string(&mut stat)).expect("procfs");
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
    ticks / 100.0
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn run(runner: Runner) {
    let mut config = MatchmakerConfig::for_tests(&format!("bench{:04x}", rand::random::<u16>()), vec![stand_in()]);
    config.servers.capacity = 4000;
    config.servers.max_servers = 2;
    config.front.rate_per_minute = 10_000_000;
    config.front.rate_burst = 1_000_000;
    config.joins.limits.max_waiting = 100_000;
    config.joins.limits.max_per_requester = 100_000;
    config.tokens.ttl_secs = 600;
    config.servers.stop_grace = Duration::from_secs(2);
    let keys = LightyearKeys { protocol_id: 1, private_key: PrivateKey::from_bytes([3; 32]) };
    let mm = LocalMatchmaker::start_with(config, keys, move |app| {
        if let Runner::Fixed30Hz = runner {
            app.set_runner(fixed_rate_runner);
        }
    })
    .expect("matchmaker starts");
    let url = mm.public_url();
    join(&url, 0); // first join starts the server
    let rss_before = rss_mib();
    let cpu_before = cpu_seconds();
    let start = Instant::now();
    let per_client = JOINS / CLIENTS;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let url = url.clone();
            std::thread::spawn(move || (0..per_client).map(|i| join(&url, c * per_client + i + 1)).collect::<Vec<_>>())
        })
        .collect();
    let mut latencies: Vec<Duration> = workers.into_iter().flat_map(|w| w.join().expect("worker")).collect();
    let elapsed = start.elapsed();
    let busy_cpu = cpu_seconds() - cpu_before;
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    println!(
        "{runner:?}: {} joins by {CLIENTS} clients in {:.2} s = {:.0} joins/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         process CPU {:.2} s; RSS {:.0} -> {:.0} MiB",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        busy_cpu,
        rss_before,
        rss_mib(),
    );
    let idle_from = cpu_seconds();
    std::thread::sleep(Duration::from_secs(10));
    println!(
        "{runner:?}: idle for 10 s with {} live tokens: {:.1}% of one core",
        JOINS,
        (cpu_seconds() - idle_from) * 10.0
    );
    drop(mm);
}

/// What Bevy's ScheduleRunnerPlugin::run_loop(1/30 s) does: tick, then sleep out the frame.
fn fixed_rate_runner(mut app: App) -> bevy::app::AppExit {
    loop {
        let frame = Instant::now();
        app.update();
        if let Some(exit) = app.should_exit() {
            return exit;
        }
        std::thread::sleep(Duration::from_secs_f64(1.0 / 30.0).saturating_sub(frame.elapsed()));
    }
}

fn join(url: &str, n: usize) -> Duration {
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(60))).build().into();
    let body = json!({"jsonrpc": "2.0", "id": n, "method": "matchmaker.join",
        "params": {"game": "demo", "version": "1.0", "request_id": format!("bench-{n:08}")}});
    let start = Instant::now();
    let value: Value = agent.post(url).send_json(&body).expect("post").body_mut().read_json().expect("json");
    assert_eq!(value["result"]["status"], "ready", "{value}");
    start.elapsed()
}

fn main() {
    bevygap_shared::install_crypto_provider();
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    run(Runner::Wakeable);
    run(Runner::Fixed30Hz);
}
