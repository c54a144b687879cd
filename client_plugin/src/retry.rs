//! Which failures are retried automatically, and how long to wait in between.
//!
//! A retry reuses the join's request id, so the matchmaker resumes the same request instead
//! of placing the player twice. That also means a retry only helps when the matchmaker never
//! recorded a *result* for the id: a join that ended with, say, `no_capacity` answers every
//! resumed stream with that same failure for a while. So the plugin retries on its own only
//! for failures that happen before or outside the join (network errors, HTTP 429/5xx, a
//! dropped stream, `rate_limited`, `too_many_waiting`, `unavailable`) and surfaces the rest at
//! once; [`FailureCode::is_retryable`] then tells the game whether a *new* join (a new id,
//! e.g. from a retry button) may succeed.

use std::time::Duration;

use bevygap_shared::protocol::ErrorCode;

use crate::FailureCode;
use crate::rpc::{AttemptError, RpcError};

/// Exponential backoff with jitter, bounded in attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// HTTP attempts per join, the first one included (1 = never retry).
    pub max_attempts: u32,
    /// Wait before the first retry; doubles per retry.
    pub initial_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self { max_attempts: 6, initial_backoff: Duration::from_millis(500), max_backoff: Duration::from_secs(8) }
    }
}

impl RetryConfig {
    /// The wait after `attempts_made` failed attempts, or `None` when no attempt is left.
    /// `jitter` in `0.0..=1.0` spreads the wait over its upper half so many clients that failed
    /// together do not come back together.
    pub fn backoff(&self, attempts_made: u32, jitter: f64) -> Option<Duration> {
        if attempts_made >= self.max_attempts {
            return None;
        }
        let doublings = attempts_made.saturating_sub(1).min(31);
        let full = self.initial_backoff.saturating_mul(1 << doublings).min(self.max_backoff);
        Some(full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0)))
    }
}

/// What to do about one failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Whether to try again (with the same request id) if attempts remain.
    pub retry: bool,
    /// The code to report if the join fails here (now, or when attempts run out).
    pub code: FailureCode,
}

/// Matchmaker codes raised before a join is recorded, so a same-id retry can succeed.
fn transient(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::RateLimited | ErrorCode::TooManyWaiting | ErrorCode::Unavailable)
}

fn rpc_verdict(error: &RpcError) -> Verdict {
    match error.error_code {
        Some(code) => Verdict { retry: transient(code), code: FailureCode::Matchmaker(code) },
        // A JSON-RPC protocol error (unknown method, bad params): not our protocol.
        None => Verdict { retry: false, code: FailureCode::Protocol },
    }
}

/// Classifies one failed attempt.
pub fn classify(error: &AttemptError) -> Verdict {
    match error {
        AttemptError::Network(_) | AttemptError::StreamEnded => Verdict { retry: true, code: FailureCode::Unreachable },
        AttemptError::Rpc(e) => rpc_verdict(e),
        AttemptError::HttpStatus { status, error } => match (status, error) {
            (429, _) => Verdict { retry: true, code: FailureCode::Matchmaker(ErrorCode::RateLimited) },
            (500..=599, Some(RpcError { error_code: Some(code), .. })) => {
                Verdict { retry: true, code: FailureCode::Matchmaker(*code) }
            }
            (500..=599, _) => Verdict { retry: true, code: FailureCode::Unreachable },
            // 413 and other client errors: the same request will be refused again.
            (400 | 413, _) => Verdict { retry: false, code: FailureCode::Matchmaker(ErrorCode::InvalidRequest) },
            (_, Some(e)) => Verdict { retry: false, ..rpc_verdict(e) },
            (_, None) => Verdict { retry: false, code: FailureCode::Protocol },
        },
        AttemptError::Malformed(_) => Verdict { retry: false, code: FailureCode::Protocol },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(code: ErrorCode) -> AttemptError {
        AttemptError::Rpc(RpcError { code: code.rpc_code().into(), message: "m".into(), error_code: Some(code) })
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stops_after_the_last_attempt() {
        let config = RetryConfig {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
        };
        assert_eq!(config.backoff(1, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(config.backoff(2, 1.0), Some(Duration::from_millis(200)));
        assert_eq!(config.backoff(3, 1.0), Some(Duration::from_millis(300)));
        assert_eq!(config.backoff(4, 0.0), Some(Duration::from_millis(150)), "jitter halves at most");
        assert_eq!(config.backoff(5, 1.0), None);
        assert_eq!(RetryConfig { max_attempts: 1, ..config }.backoff(1, 0.5), None);
        assert!(RetryConfig::default().backoff(200, 1.0).is_none(), "no overflow on silly counts");
    }

    #[test]
    fn transport_failures_retry() {
        for error in [
            AttemptError::Network("refused".into()),
            AttemptError::StreamEnded,
            AttemptError::HttpStatus { status: 503, error: None },
            AttemptError::HttpStatus { status: 429, error: None },
        ] {
            assert!(classify(&error).retry, "{error}");
        }
        assert_eq!(
            classify(&AttemptError::HttpStatus { status: 429, error: None }).code,
            FailureCode::Matchmaker(ErrorCode::RateLimited)
        );
        assert_eq!(classify(&AttemptError::StreamEnded).code, FailureCode::Unreachable);
    }

    #[test]
    fn only_codes_raised_before_the_join_is_recorded_retry() {
        for code in ErrorCode::ALL {
            let verdict = classify(&rpc(code));
            assert_eq!(verdict.code, FailureCode::Matchmaker(code));
            assert_eq!(verdict.retry, transient(code), "{code:?}");
            assert!(!verdict.retry || code.is_retryable(), "never retry a permanent code");
        }
        assert!(!classify(&rpc(ErrorCode::UnknownGame)).retry);
        assert!(classify(&rpc(ErrorCode::TooManyWaiting)).retry);
    }

    #[test]
    fn refusals_and_foreign_protocols_fail_at_once() {
        let too_large = classify(&AttemptError::HttpStatus { status: 413, error: None });
        assert_eq!(too_large, Verdict { retry: false, code: FailureCode::Matchmaker(ErrorCode::InvalidRequest) });
        let not_found = classify(&AttemptError::HttpStatus { status: 404, error: None });
        assert_eq!(not_found, Verdict { retry: false, code: FailureCode::Protocol });
        let unknown_method = AttemptError::Rpc(RpcError { code: -32601, message: "nope".into(), error_code: None });
        assert_eq!(classify(&unknown_method), Verdict { retry: false, code: FailureCode::Protocol });
        assert!(!classify(&AttemptError::Malformed("x".into())).retry);
    }
}
