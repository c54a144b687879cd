//! # bevygap_loadgen
//!
//! Simulated players for the matchmaker's public endpoint. Each player opens its own HTTP
//! connection, sends `matchmaker.join+watch` and reads the progress stream until `ready` or an
//! error, so many joins are in flight at once the way real players' are.
//!
//! - [`Load::Closed`]: `concurrency` players at a time, each starting its next join when the
//!   last one is answered, until `joins` are done (how fast can it go).
//! - [`Load::Open`]: a new join every `1/rate` seconds for `duration`, whatever the answers
//!   (how it behaves at a given arrival rate; latency is not hidden by back-pressure).
//!
//! [`run`] returns a [`Report`]: answered joins per second, latency percentiles from request to
//! `ready`, errors by code, and (given its pid) the matchmaker's CPU time and RSS from `/proc`.
//! The pure parts ([`percentile`], [`stream::Outcome`] parsing, [`proc`] readings) are unit
//! tested; `tests/smoke.rs` runs a tiny load against a real matchmaker.

pub mod bench;
pub mod proc;
pub mod stream;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stream::Outcome;

/// How joins arrive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// `concurrency` players in a loop until `joins` are answered.
    Closed { joins: u64, concurrency: u64 },
    /// `rate` new joins per second for `duration`.
    Open { rate: f64, duration: Duration },
}

/// What to load and how.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The matchmakers' public addresses; joins go to each in turn (one for a single
    /// matchmaker, every replica's to spread players over replicas).
    pub targets: Vec<SocketAddr>,
    pub game: String,
    pub version: String,
    /// A match mode to join (each player with an elo), or `None` for drop-in.
    pub mode: Option<String>,
    pub load: Load,
    /// The matchmaker's pid, for CPU time and RSS.
    pub matchmaker_pid: Option<u32>,
    /// Giving up on one join (the stream stays open past this).
    pub join_timeout: Duration,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub joins_sent: u64,
    pub joins_ready: u64,
    /// Answered `ready` per second of wall time.
    pub ready_per_sec: f64,
    pub wall_secs: f64,
    /// From sending the request to the `ready` event, in milliseconds.
    pub latency_ms: Latency,
    /// Failed joins by error code (`timeout`, `no_capacity`…; `transport` when the connection
    /// failed, `stream_ended` when it closed without an answer).
    pub errors: BTreeMap<String, u64>,
    /// The matchmaker's CPU time (user + system) during the run, when its pid was given.
    pub matchmaker_cpu_secs: Option<f64>,
    /// The matchmaker's resident memory at the end, in MiB.
    pub matchmaker_rss_mib: Option<f64>,
    /// The load generator's own CPU time during the run: near `wall_secs` means it was the
    /// limit, not the matchmaker.
    pub loadgen_cpu_secs: Option<f64>,
    /// How busy the whole machine was during the run (0 to 1, every core): near 1 means the
    /// machine, not one process, was the limit.
    pub machine_busy: Option<f64>,
}

/// Latency percentiles of the ready joins.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Default)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// The `q` quantile (0..=1) of sorted values, nearest rank; 0 when there are none.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Latency {
    fn of(mut millis: Vec<f64>) -> Self {
        millis.sort_by(f64::total_cmp);
        Self {
            p50: percentile(&millis, 0.50),
            p90: percentile(&millis, 0.90),
            p99: percentile(&millis, 0.99),
            max: millis.last().copied().unwrap_or(0.0),
        }
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("nothing to do: {0}")]
    EmptyPlan(&'static str),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// Runs `plan` to its end.
pub fn run(plan: &Plan) -> Result<Report, LoadError> {
    match plan.load {
        Load::Closed { joins: 0, .. } | Load::Closed { concurrency: 0, .. } => {
            return Err(LoadError::EmptyPlan("closed loop needs joins and concurrency above 0"));
        }
        Load::Open { rate, duration } if !(rate.is_finite() && rate > 0.0) || duration.is_zero() => {
            return Err(LoadError::EmptyPlan("open loop needs a positive rate and duration"));
        }
        _ if plan.targets.is_empty() => return Err(LoadError::EmptyPlan("no target")),
        _ => {}
    }
    proc::raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let own_before = proc::cpu_secs(std::process::id());
    let machine_before = proc::machine_ticks();
    let cpu_before = plan.matchmaker_pid.and_then(proc::cpu_secs);
    let started = Instant::now();
    let outcomes = runtime.block_on(drive(plan));
    let wall = started.elapsed().as_secs_f64();
    let cpu_after = plan.matchmaker_pid.and_then(proc::cpu_secs);
    let own_after = proc::cpu_secs(std::process::id());
    let machine_after = proc::machine_ticks();
    let mut errors = BTreeMap::new();
    let mut ready = Vec::new();
    for outcome in &outcomes {
        match outcome {
            (Outcome::Ready, elapsed) => ready.push(elapsed.as_secs_f64() * 1000.0),
            (Outcome::Failed(code), _) => *errors.entry(code.clone()).or_insert(0) += 1,
        }
    }
    Ok(Report {
        joins_sent: outcomes.len() as u64,
        joins_ready: ready.len() as u64,
        ready_per_sec: ready.len() as f64 / wall.max(f64::EPSILON),
        wall_secs: wall,
        latency_ms: Latency::of(ready),
        errors,
        matchmaker_cpu_secs: cpu_before.zip(cpu_after).map(|(before, after)| after - before),
        matchmaker_rss_mib: plan.matchmaker_pid.and_then(proc::rss_mib),
        loadgen_cpu_secs: own_before.zip(own_after).map(|(before, after)| after - before),
        machine_busy: machine_before.zip(machine_after).map(|(before, after)| proc::busy_share(before, after)),
    })
}

/// Runs in this process so far: request ids stay unique when one process runs several loads.
static RUNS: AtomicU64 = AtomicU64::new(0);

async fn drive(plan: &Plan) -> Vec<(Outcome, Duration)> {
    let run_id = format!("{}-{}", std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed));
    let next = Arc::new(AtomicU64::new(0));
    let (game, version): (Arc<str>, Arc<str>) = (plan.game.as_str().into(), plan.version.as_str().into());
    let mode: Option<Arc<str>> = plan.mode.as_deref().map(Into::into);
    let (targets, timeout): (Arc<[SocketAddr]>, _) = (plan.targets.as_slice().into(), plan.join_timeout);
    let join = move |n: u64| {
        let request = stream::join_request(&game, &version, &format!("lg-{run_id}-{n}"), mode.as_deref());
        let target = targets[(n % targets.len() as u64) as usize];
        async move {
            let started = Instant::now();
            let outcome = match tokio::time::timeout(timeout, stream::join(target, &request)).await {
                Ok(outcome) => outcome,
                Err(_) => Outcome::Failed("client_timeout".into()),
            };
            (outcome, started.elapsed())
        }
    };
    match plan.load {
        Load::Closed { joins, concurrency } => {
            let mut workers = Vec::new();
            for _ in 0..concurrency.min(joins) {
                let (next, join) = (next.clone(), join.clone());
                workers.push(tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= joins {
                            return mine;
                        }
                        mine.push(join(n).await);
                    }
                }));
            }
            let mut all = Vec::new();
            for worker in workers {
                all.extend(worker.await.unwrap_or_default());
            }
            all
        }
        Load::Open { rate, duration } => {
            let total = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
            let every = Duration::from_secs_f64(1.0 / rate);
            let start = tokio::time::Instant::now();
            let mut tasks = Vec::with_capacity(total as usize);
            for n in 0..total {
                tokio::time::sleep_until(start + every.mul_f64(n as f64)).await;
                tasks.push(tokio::spawn(join.clone()(n)));
            }
            let mut all = Vec::with_capacity(tasks.len());
            for task in tasks {
                if let Ok(outcome) = task.await {
                    all.push(outcome);
                }
            }
            all
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_and_empty_is_zero() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&values, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.5), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        let latency = Latency::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((latency.p50, latency.max), (2.0, 3.0));
    }

    #[test]
    fn an_empty_plan_is_refused() {
        let plan = |load| Plan {
            targets: vec!["127.0.0.1:9".parse().expect("an address")],
            game: "demo".into(),
            version: "1.0".into(),
            mode: None,
            load,
            matchmaker_pid: None,
            join_timeout: Duration::from_secs(1),
        };
        assert!(run(&plan(Load::Closed { joins: 0, concurrency: 4 })).is_err());
        assert!(run(&plan(Load::Open { rate: 0.0, duration: Duration::from_secs(1) })).is_err());
        assert!(run(&plan(Load::Open { rate: f64::NAN, duration: Duration::from_secs(1) })).is_err());
        let nowhere = Plan { targets: Vec::new(), ..plan(Load::Closed { joins: 1, concurrency: 1 }) };
        assert!(run(&nowhere).is_err());
    }
}
