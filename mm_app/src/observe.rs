//! What the domain observes for operators: one small function per Prometheus series, called
//! where the event happens (a join placed, a server lost). Recorded through the `metrics`
//! facade into whatever recorder the app installed (none in unit tests: the calls cost
//! nothing then); the page, the gauges and the dashboard's history are
//! [`crate::telemetry`]'s. Labels never carry ids (unbounded): outcomes, error codes,
//! providers and phases only.

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
