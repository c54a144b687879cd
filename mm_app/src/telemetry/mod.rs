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

use crate::observe::{join_answered, join_ready_after_seat};

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

/// Once a second: joins waiting, servers by phase, seats and players, ownership.
fn sample_gauges(
    joins: Query<&Join, Without<crate::joins::Settled>>,
    servers: Query<(&ServerPhase, &SeatBook)>,
    ownership: Option<Res<crate::fence::Ownership>>,
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
