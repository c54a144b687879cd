//! Retries with exponential backoff and jitter.
//!
//! Only idempotent calls (GET, DELETE) are retried on every transient failure.
//! Creating calls (POST) are retried only on 429, because a rate-limited
//! request was not processed, whereas a timed-out or 5xx POST may have created
//! a session or deployment that a retry would duplicate.

use std::time::Duration;

use rand::Rng;

use crate::error::EdgegapError;

/// How often and how patiently to retry a failed call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiRetryConfig {
    /// Retries after the first attempt (0 = no retry).
    pub max_retries: u32,
    /// Delay before the first retry; doubles each time.
    pub base_delay: Duration,
    /// Upper bound for one delay.
    pub max_delay: Duration,
}

impl Default for ApiRetryConfig {
    fn default() -> Self {
        Self { max_retries: 3, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(2) }
    }
}

impl ApiRetryConfig {
    /// The longest `Retry-After` a retry honours: a larger one is cut to this, so a caller's
    /// thread is never parked for minutes by one answer.
    pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

    /// A configuration that never retries (for callers with their own retry loop).
    pub fn none() -> Self {
        Self { max_retries: 0, ..Self::default() }
    }

    /// Backoff before retry number `retry` (0-based): `base * 2^retry`, capped,
    /// with up to 50 % random jitter removed so that many clients rate-limited
    /// together do not retry in lockstep.
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(16));
        let full = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let jitter: f64 = rand::rng().random_range(0.5..=1.0);
        full.mul_f64(jitter)
    }
}

/// Whether a request may be repeated without side effects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// GET / DELETE: repeat on any transient failure.
    Idempotent,
    /// POST that creates something: repeat only when it was rejected unprocessed (429).
    Creating,
}

/// Runs `attempt` until it succeeds, fails permanently or retries run out.
pub(crate) fn with_retries<T>(
    config: &ApiRetryConfig,
    idempotency: Idempotency,
    mut attempt: impl FnMut() -> Result<T, EdgegapError>,
) -> Result<T, EdgegapError> {
    let mut retry = 0;
    loop {
        match attempt() {
            Ok(value) => return Ok(value),
            Err(err) if retry < config.max_retries && may_retry(&err, idempotency) => {
                // A 429 that says how long to wait is waited out (within reason).
                let asked = err.retry_after().map(|d| d.min(ApiRetryConfig::MAX_RETRY_AFTER));
                let delay = config.delay(retry).max(asked.unwrap_or_default());
                tracing::debug!(error = %err, retry, ?delay, "retrying Edgegap call");
                std::thread::sleep(delay);
                retry += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

fn may_retry(err: &EdgegapError, idempotency: Idempotency) -> bool {
    match idempotency {
        Idempotency::Idempotent => err.is_retryable(),
        Idempotency::Creating => matches!(err, EdgegapError::RateLimited { .. }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(max_retries: u32) -> ApiRetryConfig {
        ApiRetryConfig { max_retries, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) }
    }

    #[test]
    fn delay_grows_and_is_capped() {
        let p = ApiRetryConfig {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        assert!(p.delay(0) <= Duration::from_millis(100) && p.delay(0) >= Duration::from_millis(50));
        assert!(p.delay(2) >= Duration::from_millis(200));
        assert!(p.delay(30) <= Duration::from_secs(1));
    }

    #[test]
    fn idempotent_calls_retry_transient_errors_until_success() {
        let mut calls = 0;
        let out = with_retries(&fast(3), Idempotency::Idempotent, || {
            calls += 1;
            if calls < 3 { Err(EdgegapError::Server { status: 500, message: "x".into() }) } else { Ok(calls) }
        });
        assert_eq!(out.expect("third attempt succeeds"), 3);
    }

    #[test]
    fn creating_calls_retry_only_rate_limits() {
        let mut calls = 0;
        let out: Result<(), _> = with_retries(&fast(3), Idempotency::Creating, || {
            calls += 1;
            Err(EdgegapError::Timeout(Duration::from_secs(1)))
        });
        assert!(matches!(out, Err(EdgegapError::Timeout(_))));
        assert_eq!(calls, 1);

        let mut calls = 0;
        let out: Result<(), _> = with_retries(&fast(2), Idempotency::Creating, || {
            calls += 1;
            Err(EdgegapError::RateLimited { message: String::new(), retry_after: None })
        });
        assert!(matches!(out, Err(EdgegapError::RateLimited { .. })));
        assert_eq!(calls, 3);
    }

    #[test]
    fn a_retry_after_is_waited_out() {
        let asked = Duration::from_millis(150);
        let start = std::time::Instant::now();
        let mut calls = 0;
        let out = with_retries(&fast(1), Idempotency::Creating, || {
            calls += 1;
            if calls == 1 {
                Err(EdgegapError::RateLimited { message: String::new(), retry_after: Some(asked) })
            } else {
                Ok(())
            }
        });
        assert!(out.is_ok());
        assert!(start.elapsed() >= asked, "retried after {:?}", start.elapsed());
    }

    #[test]
    fn client_errors_are_not_retried() {
        let mut calls = 0;
        let out: Result<(), _> = with_retries(&fast(3), Idempotency::Idempotent, || {
            calls += 1;
            Err(EdgegapError::Api { status: 400, message: "bad".into(), request_id: None })
        });
        assert!(out.is_err());
        assert_eq!(calls, 1);
    }
}
