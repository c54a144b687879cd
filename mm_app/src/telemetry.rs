//! Prometheus metrics: what operators scrape from `GET /metrics` on the admin endpoint (same
//! token as every admin request). Recorded through the `metrics` facade, so Lightyear's own
//! series land on the same page; every name and label set is defined here, and systems call
//! the small functions below. Labels never carry ids (unbounded): outcomes, error codes,
//! providers and phases only.
//!
//! Every replica serves its own page: counters and histograms come from the replica that did
//! the work (the owner), gauges say what each replica sees (standbys report zeros and
//! `bevygap_replica_owner 0`), so sum across replicas in queries.

use std::sync::OnceLock;

use bevy::prelude::*;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::joins::{Join, JoinPhase};
use crate::servers::{SeatBook, ServerPhase};

/// Histogram buckets in seconds: from a millisecond (placement) to a minute (cold starts).
const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0];

/// The process's Prometheus recorder, installed on first use (one per process: the `metrics`
/// facade has one global recorder). `None` if another recorder was installed first.
pub fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(&BUCKETS).ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!("metrics are not recorded: {e}");
                    None
                }
            }
        })
        .clone()
}

/// The handle the admin endpoint renders `/metrics` from.
#[derive(Resource, Clone)]
pub struct MetricsHandle(pub PrometheusHandle);

/// Installs the recorder, counts answered joins and samples the gauges every second.
pub struct TelemetryPlugin;

impl Plugin for TelemetryPlugin {
    fn build(&self, app: &mut App) {
        if let Some(handle) = prometheus() {
            app.insert_resource(MetricsHandle(handle));
        }
        app.add_systems(Update, count_answered_joins.in_set(crate::schedule::MatchmakerSystems::Cleanup))
            .add_systems(Last, sample_gauges);
    }
}

/// Counts each join that got its answer this tick, with how long it took.
fn count_answered_joins(joins: Query<&Join, Changed<Join>>, time: Res<Time<Real>>) {
    let now = crate::clock::now(&time);
    for join in &joins {
        match join.phase() {
            JoinPhase::Ready { .. } => join_answered("ready", "none", now - join.queued_at),
            JoinPhase::Failed { code, .. } => join_answered("failed", code.as_str(), now - join.queued_at),
            _ => {}
        }
    }
}

/// A join got its answer (`outcome` ready or failed, with the error code if failed) after
/// `seconds` in the matchmaker.
pub fn join_answered(outcome: &'static str, code: &'static str, seconds: f64) {
    metrics::counter!("bevygap_joins_total", "outcome" => outcome, "code" => code).increment(1);
    metrics::histogram!("bevygap_join_duration_seconds", "outcome" => outcome).record(seconds);
}

/// A join was refused at the door (admission) with `code`.
pub fn join_refused(code: &'static str) {
    metrics::counter!("bevygap_joins_total", "outcome" => "refused", "code" => code).increment(1);
}

/// A join was given a seat after waiting `seconds` in the queue.
pub fn join_placed(seconds: f64) {
    metrics::histogram!("bevygap_join_queue_seconds").record(seconds);
}

/// The provider was asked to start a server.
pub fn server_launched(provider: &str) {
    metrics::counter!("bevygap_servers_launched_total", "provider" => provider.to_string()).increment(1);
}

/// A server this matchmaker launched reported ready `seconds` after the launch.
pub fn server_started(provider: &str, seconds: f64) {
    metrics::histogram!("bevygap_server_start_seconds", "provider" => provider.to_string()).record(seconds);
}

/// A server was lost (failed to start, crashed, went silent).
pub fn server_lost(provider: &str) {
    metrics::counter!("bevygap_servers_lost_total", "provider" => provider.to_string()).increment(1);
}

/// An empty server was stopped.
pub fn server_stopped(provider: &str) {
    metrics::counter!("bevygap_servers_stopped_total", "provider" => provider.to_string()).increment(1);
}

/// A token expired before its player connected (its seat was freed).
pub fn token_expired_unclaimed() {
    metrics::counter!("bevygap_tokens_expired_unclaimed_total").increment(1);
}

/// The NATS link came back after being down.
pub fn nats_reconnected() {
    metrics::counter!("bevygap_nats_reconnects_total").increment(1);
}

/// Once a second: joins waiting, servers by phase, seats and players, ownership.
fn sample_gauges(
    joins: Query<&Join>,
    servers: Query<(&ServerPhase, &SeatBook)>,
    ownership: Option<Res<crate::ownership::Ownership>>,
    time: Res<Time<Real>>,
    mut next: Local<f64>,
) {
    let now = crate::clock::now(&time);
    if now < *next {
        return;
    }
    *next = now + 1.0;
    let waiting = joins.iter().filter(|j| !j.phase().is_terminal()).count();
    metrics::gauge!("bevygap_joins_waiting").set(waiting as f64);
    let mut by_phase = std::collections::BTreeMap::from([("starting", 0u32), ("ready", 0), ("other", 0)]);
    let (mut taken, mut capacity, mut players) = (0u32, 0u32, 0u32);
    for (phase, seats) in &servers {
        let label = match phase {
            ServerPhase::Starting { .. } => "starting",
            ServerPhase::Ready => "ready",
            _ => "other",
        };
        *by_phase.entry(label).or_default() += 1;
        taken += seats.taken();
        capacity += seats.capacity;
        players += seats.occupied();
    }
    for (phase, count) in by_phase {
        metrics::gauge!("bevygap_servers", "phase" => phase).set(f64::from(count));
    }
    metrics::gauge!("bevygap_seats_taken").set(f64::from(taken));
    metrics::gauge!("bevygap_seats_capacity").set(f64::from(capacity));
    metrics::gauge!("bevygap_players_connected").set(f64::from(players));
    let owner = ownership.is_none_or(|o| o.acting());
    metrics::gauge!("bevygap_replica_owner").set(if owner { 1.0 } else { 0.0 });
}
