//! Prometheus metrics: what operators scrape from `GET /metrics` on the admin endpoint (same
//! token as every admin request). Recorded through the `metrics` facade, so Lightyear's own
//! series land on the same page; every name and label set is defined here, and systems call
//! the small functions below. Labels never carry ids (unbounded): outcomes, error codes,
//! providers and phases only.
//!
//! Every replica serves its own page: counters and histograms come from the replica that did
//! the work (the owner), gauges say what each replica sees (standbys report zeros and
//! `bevygap_replica_owner 0`), so sum across replicas in queries.

mod history;

use bevy::prelude::*;
use bevygap_shared::metrics::prometheus;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::joins::{Join, JoinPhase};
use crate::servers::{SeatBook, ServerPhase};
pub use history::{HISTORY_INTERVAL_SECS, HistoryPoint, MetricsHistory};

/// The handle the admin endpoint renders `/metrics` from.
#[derive(Resource, Clone)]
pub struct MetricsHandle(pub PrometheusHandle);

/// Installs the recorder, counts answered joins, samples the gauges every second and keeps
/// the dashboard's [`MetricsHistory`]; builds on the join plugin (it counts its joins).
pub struct TelemetryPlugin;

impl Plugin for TelemetryPlugin {
    fn build(&self, app: &mut App) {
        if let Some(handle) = prometheus() {
            app.insert_resource(MetricsHandle(handle));
        }
        crate::schedule::require(app, || crate::joins::JoinsPlugin);
        app.init_resource::<MetricsHistory>()
            .add_systems(Update, count_answered_joins.in_set(crate::schedule::MatchmakerSystems::Cleanup))
            .add_systems(
                Last,
                (sample_gauges, history::record_history.run_if(resource_exists::<MetricsHandle>)).chain(),
            );
    }
}

/// Counts each join that got its answer this tick, with how long it took.
fn count_answered_joins(
    mut answered: MessageReader<crate::joins::JoinAnswered>,
    joins: Query<&Join>,
    time: Res<Time<Real>>,
) {
    let now = crate::clock::now(&time);
    for join in answered.read().filter_map(|answered| joins.get(answered.0).ok()) {
        match join.phase() {
            JoinPhase::Ready { .. } => {
                join_answered("ready", "none", now - join.queued_at);
                if let Some(placed_at) = join.placed_at {
                    join_ready_after_seat(now - placed_at);
                }
            }
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

/// A seated join turned ready `seconds` after it got its seat: the placement stage (its server
/// becoming ready, the token minted and its grant stored).
pub fn join_ready_after_seat(seconds: f64) {
    metrics::histogram!("bevygap_join_placement_seconds").record(seconds);
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

/// A player connected to its server `seconds` after its token was issued (as the matchmaker
/// saw it: the server's player record arriving over NATS).
pub fn token_claimed(seconds: f64) {
    metrics::histogram!("bevygap_token_to_connect_seconds").record(seconds.max(0.0));
}

/// The NATS link came back after being down.
pub fn nats_reconnected() {
    metrics::counter!("bevygap_nats_reconnects_total").increment(1);
}

/// Once a second: joins waiting, servers by phase, seats and players, ownership.
fn sample_gauges(
    joins: Query<&Join, Without<crate::joins::Settled>>,
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
