//! What Edgegap's answers mean for the provider and for players. Pure decisions; the worker
//! (`worker.rs`) acts on them.
//!
//! A failed create becomes [`ProviderEvent::LaunchFailed`](crate::providers::ProviderEvent)
//! at once, so the matchmaker can re-place the waiting players while the provider cleans up
//! whatever Edgegap may have left behind ([`after_create_error`]). How each failure reaches the
//! player is in the policy table of the [module docs](super).

use bevygap_edgegap::{DeploymentState, DeploymentStatus, EdgegapError, StopOutcome};
use bevygap_shared::protocol::ErrorCode;

use crate::providers::ProviderError;

/// What may exist on Edgegap after a create call failed, and so what cleaning up takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateCleanup {
    /// Edgegap processed nothing (a 4xx such as 400, 401, 404, or a 429 that outlasted the
    /// client's retries).
    Nothing,
    /// Edgegap created a deployment in ERROR and named it (v2 422 "could not allocate"): stop it.
    StopKnown(String),
    /// The answer was lost (timeout, broken connection, 5xx, an unreadable 2xx): a deployment
    /// may exist that nobody knows the id of. Find it by its server tag and stop it.
    Search,
}

/// What cleaning up after a failed create takes.
pub fn after_create_error(error: &EdgegapError) -> CreateCleanup {
    match error {
        EdgegapError::Api { request_id: Some(id), .. } => CreateCleanup::StopKnown(id.clone()),
        EdgegapError::Timeout(_)
        | EdgegapError::Transport(_)
        | EdgegapError::Server { .. }
        | EdgegapError::MalformedBody { .. } => CreateCleanup::Search,
        _ => CreateCleanup::Nothing,
    }
}

/// Where a deployment stands, from its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusVerdict {
    /// Still on its way (INITIALIZING … DEPLOYING): keep reading, backing off.
    Starting,
    /// READY: the container runs; the game server reports itself in NATS when it is.
    Ready,
    /// ERROR: it will never run; it still exists on Edgegap until stopped.
    Failed(String),
    /// TERMINATED: gone.
    Ended(String),
}

/// Judges one status answer.
pub fn judge_status(status: &DeploymentStatus) -> StatusVerdict {
    match status.state() {
        DeploymentState::Ready => StatusVerdict::Ready,
        DeploymentState::Error => {
            let detail = status.error_detail.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| "no detail".into());
            StatusVerdict::Failed(format!("Edgegap deployment {} failed: {detail}", status.request_id))
        }
        DeploymentState::Terminated => {
            StatusVerdict::Ended(format!("Edgegap deployment {} terminated", status.request_id))
        }
        _ if status.error => StatusVerdict::Failed(format!(
            "Edgegap deployment {} reports an error in {}",
            status.request_id, status.current_status
        )),
        _ => StatusVerdict::Starting,
    }
}

/// Whether a failed status read means Edgegap no longer knows the deployment (Edgegap
/// answers 400 for an unknown request id; 404 and 410 are taken the same way). Anything else
/// (5xx, 429, timeouts) is read again later.
pub fn status_error_means_gone(error: &EdgegapError) -> bool {
    matches!(error.status(), Some(400 | 404 | 410))
}

/// What a stop answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopVerdict {
    /// 200 (stopping now) or 202 (stopped once READY or ERROR): Edgegap will end it.
    Accepted,
    /// 410 (already terminated), or 400/404 (unknown id): nothing left to stop.
    AlreadyGone,
    /// Anything else (5xx, 429, timeouts, 401…): retry with backoff, then park.
    Retry(String),
}

/// Judges one stop answer.
pub fn judge_stop(answer: &Result<StopOutcome, EdgegapError>) -> StopVerdict {
    match answer {
        Ok(_) => StopVerdict::Accepted,
        Err(e) if matches!(e.status(), Some(400 | 404 | 410)) => StopVerdict::AlreadyGone,
        Err(e) => StopVerdict::Retry(e.to_string()),
    }
}

/// The kinds of launch failure, for operators and for the player-facing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaunchFailure {
    /// Edgegap refused the request (400 bad request or inactive app/version, 401 bad token,
    /// 403, 404 unknown app or version): a configuration problem; retrying will not help.
    Refused,
    /// Edgegap could not allocate a deployment (422).
    NoCapacity,
    /// Still over Edgegap's rate limit after the client's retries (429).
    RateLimited,
    /// Edgegap did not answer usefully (5xx, timeout, connection trouble, unreadable body).
    Unreachable,
    /// The matchmaker's own configuration (an env value over 255 bytes, no location).
    Misconfigured,
}

impl LaunchFailure {
    /// Sorts a launch error.
    pub fn of(error: &ProviderError) -> Self {
        match error {
            ProviderError::Edgegap(e) => match e.as_ref() {
                EdgegapError::RateLimited { .. } => Self::RateLimited,
                EdgegapError::Api { status: 422, .. } => Self::NoCapacity,
                EdgegapError::Api { .. } | EdgegapError::InvalidConfig(_) => Self::Refused,
                _ => Self::Unreachable,
            },
            _ => Self::Misconfigured,
        }
    }

    /// Whether trying again soon may succeed.
    pub fn retry_may_help(self) -> bool {
        matches!(self, Self::NoCapacity | Self::RateLimited | Self::Unreachable)
    }

    /// What a player waiting for this server ends up seeing. The matchmaker re-places a join
    /// whose server was lost (up to three times) before it gives up, so every kind ends in
    /// `server_failed` unless the join's own deadline passes first (`timeout`).
    pub fn player_code(self) -> ErrorCode {
        ErrorCode::ServerFailed
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn status(current: &str, error: bool) -> DeploymentStatus {
        serde_json::from_value(serde_json::json!({
            "request_id": "a1b2c3d4e5f6", "fqdn": "a1b2c3d4e5f6.pr.edgegap.net", "app_name": "demo",
            "app_version": "1.0", "current_status": current, "running": current == "Status.READY",
            "whitelisting_active": false, "start_time": "2026-01-01 00:00:00.000000", "elapsed_time": 1,
            "error": error, "public_ip": "127.0.0.1", "error_detail": if error { "Pull image timeout" } else { "" },
        }))
        .expect("status body")
    }

    fn api(status: u16, request_id: Option<&str>) -> EdgegapError {
        EdgegapError::Api { status, message: "m".into(), request_id: request_id.map(str::to_string) }
    }

    #[test]
    fn lost_answers_are_searched_for_refusals_leave_nothing_and_422_names_its_deployment() {
        assert_eq!(after_create_error(&EdgegapError::Timeout(Duration::from_secs(1))), CreateCleanup::Search);
        assert_eq!(after_create_error(&EdgegapError::Transport("reset".into())), CreateCleanup::Search);
        assert_eq!(
            after_create_error(&EdgegapError::Server { status: 500, message: "x".into() }),
            CreateCleanup::Search
        );
        assert_eq!(after_create_error(&api(422, Some("abc"))), CreateCleanup::StopKnown("abc".into()));
        for refused in [api(400, None), api(401, None), api(404, None), api(422, None)] {
            assert_eq!(after_create_error(&refused), CreateCleanup::Nothing, "{refused}");
        }
        assert_eq!(
            after_create_error(&EdgegapError::RateLimited { message: String::new(), retry_after: None }),
            CreateCleanup::Nothing
        );
    }

    #[test]
    fn statuses_are_judged_by_state_and_error_flag() {
        assert_eq!(judge_status(&status("Status.DEPLOYING", false)), StatusVerdict::Starting);
        assert_eq!(judge_status(&status("Status.READY", false)), StatusVerdict::Ready);
        assert!(
            matches!(judge_status(&status("Status.ERROR", true)), StatusVerdict::Failed(d) if d.contains("Pull image timeout"))
        );
        assert!(matches!(judge_status(&status("Status.TERMINATED", false)), StatusVerdict::Ended(_)));
        assert!(matches!(judge_status(&status("Status.SOMETHING_NEW", true)), StatusVerdict::Failed(_)));
        assert!(status_error_means_gone(&api(400, None)));
        assert!(!status_error_means_gone(&EdgegapError::Server { status: 503, message: String::new() }));
    }

    #[test]
    fn stops_succeed_on_2xx_and_gone_and_retry_otherwise() {
        let accepted = Ok(StopOutcome::Accepted { message: "soon".into() });
        assert_eq!(judge_stop(&accepted), StopVerdict::Accepted);
        assert_eq!(judge_stop(&Err(api(410, None))), StopVerdict::AlreadyGone);
        assert!(matches!(judge_stop(&Err(api(401, None))), StopVerdict::Retry(_)));
        assert!(matches!(judge_stop(&Err(EdgegapError::Timeout(Duration::from_secs(1)))), StopVerdict::Retry(_)));
    }

    #[test]
    fn every_launch_failure_reaches_the_player_as_server_failed() {
        let edgegap = |e| ProviderError::Edgegap(Arc::new(e));
        let cases = [
            (edgegap(api(401, None)), LaunchFailure::Refused, false),
            (edgegap(api(422, Some("x"))), LaunchFailure::NoCapacity, true),
            (
                edgegap(EdgegapError::RateLimited { message: String::new(), retry_after: None }),
                LaunchFailure::RateLimited,
                true,
            ),
            (edgegap(EdgegapError::Timeout(Duration::from_secs(1))), LaunchFailure::Unreachable, true),
            (ProviderError::NoLocation, LaunchFailure::Misconfigured, false),
        ];
        for (error, kind, retry) in cases {
            assert_eq!(LaunchFailure::of(&error), kind, "{error}");
            assert_eq!(kind.retry_may_help(), retry, "{kind:?}");
            assert_eq!(kind.player_code(), ErrorCode::ServerFailed);
        }
    }
}
