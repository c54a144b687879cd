//! `bevygap-loadgen`: simulated players against a running matchmaker.
//!
//! ```text
//! bevygap-loadgen --target 127.0.0.1:7800[,127.0.0.1:7801…] [--game demo --version 1.0] [--mode duel]
//!                 (--joins 2000 --concurrency 100 | --rate 500 --duration 10)
//!                 [--pid <matchmaker pid>] [--timeout 60] [--json]
//! ```
//!
//! Lift the matchmaker's per-address limits for a load from one host
//! (`BEVYGAP_RATE_PER_MINUTE`, `BEVYGAP_RATE_BURST`, `BEVYGAP_MAX_JOINS_PER_IP`,
//! `BEVYGAP_MAX_CONNECTIONS_PER_IP`). Exits 0 when every join was answered `ready`, 1 when some
//! failed, 2 on bad arguments.

use std::process::ExitCode;
use std::time::Duration;

use bevygap_loadgen::{Load, Plan, Report, run};

fn parse(args: &[String]) -> Result<(Plan, bool), String> {
    let mut targets = Vec::new();
    let (mut game, mut version, mut mode) = ("demo".to_string(), "1.0".to_string(), None);
    let (mut joins, mut concurrency, mut rate, mut duration) = (None, None, None, None);
    let (mut pid, mut timeout, mut json) = (None, Duration::from_secs(60), false);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        fn number<T: std::str::FromStr>(flag: &str, text: String) -> Result<T, String> {
            text.parse().map_err(|_| format!("{flag}: {text:?} is not a number"))
        }
        fn seconds(flag: &str, text: String) -> Result<Duration, String> {
            let secs: f64 = number(flag, text.clone())?;
            Duration::try_from_secs_f64(secs).map_err(|_| format!("{flag}: {text:?} is not a number of seconds"))
        }
        match flag.as_str() {
            "--target" => {
                for text in value()?.split(',') {
                    targets.push(text.parse().map_err(|_| format!("--target: {text:?} is not host:port"))?);
                }
            }
            "--game" => game = value()?,
            "--version" => version = value()?,
            "--mode" => mode = Some(value()?),
            "--joins" => joins = Some(number::<u64>(flag, value()?)?),
            "--concurrency" => concurrency = Some(number::<u64>(flag, value()?)?),
            "--rate" => rate = Some(number::<f64>(flag, value()?)?),
            "--duration" => duration = Some(seconds(flag, value()?)?),
            "--pid" => pid = Some(number::<u32>(flag, value()?)?),
            "--timeout" => timeout = seconds(flag, value()?)?,
            "--json" => json = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let load = match (joins, concurrency, rate, duration) {
        (Some(joins), concurrency, None, None) => Load::Closed { joins, concurrency: concurrency.unwrap_or(16) },
        (None, None, Some(rate), Some(duration)) => Load::Open { rate, duration },
        _ => return Err("give --joins [--concurrency] (closed loop) or --rate with --duration (open loop)".into()),
    };
    if targets.is_empty() {
        return Err("--target is required".into());
    }
    Ok((Plan { targets, game, version, mode, load, matchmaker_pid: pid, join_timeout: timeout }, json))
}

fn print(report: &Report) {
    let l = &report.latency_ms;
    println!(
        "{} of {} joins ready in {:.2} s: {:.0} joins/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        report.joins_ready, report.joins_sent, report.wall_secs, report.ready_per_sec, l.p50, l.p90, l.p99, l.max
    );
    for (code, count) in &report.errors {
        println!("  failed {code}: {count}");
    }
    if let (Some(cpu), Some(rss)) = (report.matchmaker_cpu_secs, report.matchmaker_rss_mib) {
        let per_join = if report.joins_ready > 0 { cpu / report.joins_ready as f64 * 1e6 } else { 0.0 };
        println!("  matchmaker: {cpu:.2} s CPU ({per_join:.0} µs per ready join), RSS {rss:.1} MiB at the end");
    }
    if let Some(own) = report.loadgen_cpu_secs {
        println!("  load generator: {own:.2} s CPU");
    }
    if let Some(busy) = report.machine_busy {
        println!("  machine: {:.0} % busy (every core)", busy * 100.0);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (plan, json) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("bevygap-loadgen: {e} (see the file's docs for usage)");
            return ExitCode::from(2);
        }
    };
    let report = match run(&plan) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("bevygap-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    if json {
        match serde_json::to_string(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("bevygap-loadgen: cannot write the report: {e}"),
        }
    } else {
        print(&report);
    }
    if report.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
