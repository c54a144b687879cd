//! The last fifteen minutes of the metrics, for the dashboard's charts. Every few seconds the
//! replica reads its own Prometheus page (the very numbers operators scrape, so the charts and
//! a Prometheus server never disagree) and keeps one [`HistoryPoint`]: join rates by outcome
//! and wait-time percentiles over the interval, and the gauges as they stood.
//!
//! Reading the page is kept apart from the Bevy glue: [`Reading::parse`] and
//! [`HistoryPoint::between`] are pure, the system at the bottom only schedules them.

use std::collections::{BTreeMap, VecDeque};

use bevy::prelude::*;
use serde::Serialize;

use super::MetricsHandle;

/// How often a point is taken.
pub const HISTORY_INTERVAL_SECS: f64 = 5.0;
/// How far back the charts reach.
pub const HISTORY_SPAN_SECS: f64 = 15.0 * 60.0;

/// The joined outcomes the charts show, as the `outcome` label of `bevygap_joins_total`.
const OUTCOMES: [&str; 3] = ["ready", "failed", "refused"];

/// What one Prometheus page says about the series the dashboard charts. Counters and
/// histogram buckets are cumulative; a point is the difference of two readings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// `bevygap_joins_total` summed over codes, by outcome.
    joins: BTreeMap<String, f64>,
    /// `bevygap_join_duration_seconds_bucket{outcome="ready"}`: (upper bound, cumulative count),
    /// ascending, `+Inf` last.
    wait_buckets: Vec<(f64, f64)>,
    servers_starting: f64,
    servers_ready: f64,
    seats_taken: f64,
    seats_capacity: f64,
    players_connected: f64,
}

impl Reading {
    /// Reads the series the charts use from a page in the Prometheus text format; every other
    /// line (Lightyear's series, comments, anything malformed) is skipped.
    pub fn parse(page: &str) -> Self {
        let mut reading = Reading::default();
        for line in page.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else { continue };
            let Ok(value) = value.trim().parse::<f64>() else { continue };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let label = |wanted: &str| label_value(labels, wanted);
            match name {
                "bevygap_joins_total" => {
                    if let Some(outcome) = label("outcome") {
                        *reading.joins.entry(outcome.to_string()).or_default() += value;
                    }
                }
                "bevygap_join_duration_seconds_bucket" if label("outcome") == Some("ready") => {
                    let bound = match label("le") {
                        Some("+Inf") => f64::INFINITY,
                        Some(le) => match le.parse() {
                            Ok(bound) => bound,
                            Err(_) => continue,
                        },
                        None => continue,
                    };
                    reading.wait_buckets.push((bound, value));
                }
                "bevygap_servers" => match label("phase") {
                    Some("starting") => reading.servers_starting = value,
                    Some("ready") => reading.servers_ready = value,
                    _ => {}
                },
                "bevygap_seats_taken" => reading.seats_taken = value,
                "bevygap_seats_capacity" => reading.seats_capacity = value,
                "bevygap_players_connected" => reading.players_connected = value,
                _ => {}
            }
        }
        reading.wait_buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        reading
    }
}

/// The value of `name` in a label set such as `outcome="ready",code="none"` (values written
/// by this crate: no escaped quotes).
fn label_value<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    })
}

/// One point on the dashboard's charts. Rates are per second over the interval before `at_ms`;
/// wait percentiles are `None` when no join was answered in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// Unix milliseconds when the point was taken.
    pub at_ms: u64,
    pub joins_ready_per_sec: f64,
    pub joins_failed_per_sec: f64,
    pub joins_refused_per_sec: f64,
    pub wait_p50_secs: Option<f64>,
    pub wait_p90_secs: Option<f64>,
    pub wait_p99_secs: Option<f64>,
    pub servers_starting: f64,
    pub servers_ready: f64,
    pub seats_taken: f64,
    pub seats_capacity: f64,
    pub players_connected: f64,
}

impl HistoryPoint {
    /// The point for the `secs` between two readings.
    pub fn between(before: &Reading, after: &Reading, secs: f64, at_ms: u64) -> Self {
        let secs = secs.max(f64::EPSILON);
        let rate = |outcome: &str| {
            let count = |r: &Reading| r.joins.get(outcome).copied().unwrap_or(0.0);
            // A counter only grows; a smaller one means the recorder was reset: count from zero.
            let delta = count(after) - count(before);
            (if delta < 0.0 { count(after) } else { delta }) / secs
        };
        let waits = bucket_delta(&before.wait_buckets, &after.wait_buckets);
        let [ready, failed, refused] = OUTCOMES.map(rate);
        HistoryPoint {
            at_ms,
            joins_ready_per_sec: ready,
            joins_failed_per_sec: failed,
            joins_refused_per_sec: refused,
            wait_p50_secs: quantile(0.5, &waits),
            wait_p90_secs: quantile(0.9, &waits),
            wait_p99_secs: quantile(0.99, &waits),
            servers_starting: after.servers_starting,
            servers_ready: after.servers_ready,
            seats_taken: after.seats_taken,
            seats_capacity: after.seats_capacity,
            players_connected: after.players_connected,
        }
    }
}

/// The cumulative buckets of the observations made between two readings.
fn bucket_delta(before: &[(f64, f64)], after: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|&(bound, count)| {
            let earlier = before.iter().find(|(b, _)| *b == bound).map_or(0.0, |(_, c)| *c);
            (bound, (count - earlier).max(0.0))
        })
        .collect()
}

/// The `q` quantile of cumulative buckets, interpolated linearly within the bucket it falls
/// in, as Prometheus' `histogram_quantile` does; in the `+Inf` bucket, the highest finite bound.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower);
            }
            let inside = count - below;
            let share = if inside > 0.0 { (rank - below) / inside } else { 1.0 };
            return Some(lower + (bound - lower) * share);
        }
        (lower, below) = (bound, count);
    }
    Some(lower)
}

/// The points of the last [`HISTORY_SPAN_SECS`], oldest first; `admin.history` returns them.
#[derive(Resource, Debug, Default)]
pub struct MetricsHistory {
    points: VecDeque<HistoryPoint>,
    last: Option<(f64, Reading)>,
}

impl MetricsHistory {
    /// Takes a reading at `now` (seconds on the app clock): the first one only sets the base.
    pub fn record(&mut self, now: f64, reading: Reading, at_ms: u64) {
        if let Some((then, before)) = &self.last {
            self.points.push_back(HistoryPoint::between(before, &reading, now - then, at_ms));
        }
        let keep = (HISTORY_SPAN_SECS / HISTORY_INTERVAL_SECS) as usize;
        while self.points.len() > keep {
            self.points.pop_front();
        }
        self.last = Some((now, reading));
    }

    pub fn points(&self) -> impl Iterator<Item = &HistoryPoint> {
        self.points.iter()
    }
}

/// Every [`HISTORY_INTERVAL_SECS`], reads the page and keeps a point.
pub(super) fn record_history(
    handle: Res<MetricsHandle>,
    mut history: ResMut<MetricsHistory>,
    time: Res<Time<Real>>,
    mut next: Local<f64>,
) {
    let now = crate::clock::now(&time);
    if now < *next {
        return;
    }
    *next = now + HISTORY_INTERVAL_SECS;
    history.record(now, Reading::parse(&handle.0.render()), bevygap_shared::records::now_ms());
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# TYPE bevygap_joins_total counter
bevygap_joins_total{outcome="ready",code="none"} 12
bevygap_joins_total{outcome="failed",code="no_capacity"} 2
bevygap_joins_total{outcome="failed",code="server_failed"} 1
bevygap_joins_total{outcome="refused",code="rate_limited"} 4
# TYPE bevygap_join_duration_seconds histogram
bevygap_join_duration_seconds_bucket{outcome="ready",le="0.1"} 4
bevygap_join_duration_seconds_bucket{outcome="ready",le="1"} 10
bevygap_join_duration_seconds_bucket{outcome="ready",le="+Inf"} 12
bevygap_join_duration_seconds_bucket{outcome="failed",le="+Inf"} 3
bevygap_servers{phase="starting"} 1
bevygap_servers{phase="ready"} 2
bevygap_seats_taken 7
bevygap_seats_capacity 8
bevygap_players_connected 5
lightyear_something{le="x"} not-a-number
"#;

    #[test]
    fn a_page_is_read_into_outcomes_ready_wait_buckets_and_gauges() {
        let r = Reading::parse(PAGE);
        assert_eq!(r.joins.get("failed"), Some(&3.0), "summed over codes");
        assert_eq!(r.joins.get("refused"), Some(&4.0));
        assert_eq!(r.wait_buckets, vec![(0.1, 4.0), (1.0, 10.0), (f64::INFINITY, 12.0)], "ready joins only");
        assert_eq!((r.servers_starting, r.servers_ready, r.seats_taken, r.seats_capacity), (1.0, 2.0, 7.0, 8.0));
        assert_eq!(r.players_connected, 5.0);
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket_like_prometheus() {
        let buckets = [(0.1, 4.0), (1.0, 10.0), (f64::INFINITY, 12.0)];
        // Rank 6 of 12 is 2 of the 6 observations in (0.1, 1]: a third of the way.
        let p50 = quantile(0.5, &buckets).expect("observations");
        assert!((p50 - 0.4).abs() < 1e-9, "{p50}");
        let p20 = quantile(0.2, &buckets).expect("observations");
        assert!((p20 - 0.06).abs() < 1e-9, "{p20}");
        assert_eq!(quantile(0.99, &buckets), Some(1.0), "in +Inf: the highest finite bound");
        assert_eq!(quantile(0.5, &[(0.1, 0.0), (f64::INFINITY, 0.0)]), None, "nothing observed");
        assert_eq!(quantile(0.5, &[]), None);
    }

    #[test]
    fn a_point_is_the_rate_and_waits_of_its_interval_with_the_gauges_at_its_end() {
        let before = Reading::parse(PAGE);
        let after = Reading::parse(
            &PAGE
                .replace(r#"code="none"} 12"#, r#"code="none"} 22"#)
                .replace(r#"le="1"} 10"#, r#"le="1"} 20"#)
                .replace(r#"le="+Inf"} 12"#, r#"le="+Inf"} 22"#)
                .replace("bevygap_seats_taken 7", "bevygap_seats_taken 3"),
        );
        let point = HistoryPoint::between(&before, &after, 5.0, 42);
        assert_eq!(point.joins_ready_per_sec, 2.0);
        assert_eq!((point.joins_failed_per_sec, point.joins_refused_per_sec), (0.0, 0.0));
        // The ten new ready joins all took between 0.1 s and 1 s.
        assert_eq!(point.wait_p50_secs, Some(0.55));
        assert_eq!(point.seats_taken, 3.0, "gauges as they stand");
        let idle = HistoryPoint::between(&after, &after, 5.0, 43);
        assert_eq!((idle.joins_ready_per_sec, idle.wait_p50_secs), (0.0, None));
    }

    #[test]
    fn the_history_keeps_fifteen_minutes_of_points_oldest_first() {
        let mut history = MetricsHistory::default();
        let steps = (HISTORY_SPAN_SECS / HISTORY_INTERVAL_SECS) as u64 + 10;
        for step in 0..=steps {
            history.record(step as f64 * HISTORY_INTERVAL_SECS, Reading::parse(PAGE), step);
        }
        let kept: Vec<u64> = history.points().map(|p| p.at_ms).collect();
        assert_eq!(kept.len(), 180);
        assert_eq!((kept[0], kept[179]), (steps - 179, steps));
    }
}
