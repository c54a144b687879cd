//! The standard benchmark scenarios. Each starts real processes (nats-server, the matchmaker,
//! demo servers, the fake Edgegap) from a directory of built binaries, drives them with the
//! load generator or real Lightyear clients, and returns a table. `bevygap-bench` runs them
//! and rewrites the generated part of BENCHMARKS.md ([`markdown::splice`]).
//!
//! | id | scenario |
//! |---|---|
//! | a | `fleet` provider, two pre-registered demo servers with plenty of seats: the matchmaker's own cost |
//! | b | `edgegap` provider against the fake Edgegap with no added latency; Edgegap calls per server |
//! | c | end to end: join, then a real Lightyear client connected, warm server and cold start (`local`) |
//! | d | many players waiting while no server can take them; memory per waiting join; all served |
//! | e | idle CPU, with nothing to do and with many live tokens |
//! | f | one, two and three matchmakers on a three-node NATS cluster |
//! | g | instructions per join under callgrind (repeatable on a noisy machine) |
//!
//! Timing is never asserted: `tests/bench.rs` runs the set at [`Scale::Smoke`] to prove the
//! runner works.

pub mod markdown;
pub mod procs;
mod scenarios;

use std::path::PathBuf;

pub use scenarios::run_scenario;

/// How big the loads are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// The published figures.
    Full,
    /// A few joins each: proves every scenario runs (the test command).
    Smoke,
}

impl Scale {
    /// `full` at [`Scale::Full`], else `smoke`.
    pub fn pick<T>(self, full: T, smoke: T) -> T {
        match self {
            Self::Full => full,
            Self::Smoke => smoke,
        }
    }
}

/// Every scenario id, in order.
pub const SCENARIOS: [char; 7] = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];

/// What a scenario needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub bins: procs::Binaries,
    pub scale: Scale,
    /// Scratch space (fake Edgegap logs, callgrind output).
    pub work_dir: PathBuf,
}

/// Where, when and how the figures were taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub date: String,
    pub commit: String,
    pub command: String,
    pub machine: String,
}

/// One scenario's results.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub title: String,
    /// Paragraphs before the table: what was run, what to read from it.
    pub notes: Vec<String>,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Why a scenario could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error("{0} is missing: build it first (scripts/bench builds every binary it needs)")]
    MissingBinary(PathBuf),
    #[error("cannot start {0}: {1}")]
    Start(String, String),
    #[error("{0}")]
    Timeout(#[from] bevygap_testkit::TimedOut),
    #[error("{0}")]
    Io(String),
    #[error("nats-server: {0}")]
    Nats(#[from] bevygap_shared::nats::NatsServerError),
    #[error("load generator: {0}")]
    Load(#[from] crate::LoadError),
    #[error("the load failed: {0}")]
    Failed(String),
    #[error("unknown scenario {0:?} (known: a to g)")]
    UnknownScenario(char),
}
