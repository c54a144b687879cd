//! Typed errors for every way an Edgegap call can fail.
//!
//! Callers (the matchmaker's session worker, the server plugin) branch on the
//! kind of failure: retry later on rate limits and server errors, treat 404/410
//! on deletes as done, report Edgegap's own `message` to players on 4xx.

use std::time::Duration;

/// Errors returned by [`crate::EdgegapClient`] and [`crate::ContextClient`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgegapError {
    /// Edgegap answered a 4xx (other than 429) with its `{"message": ...}` body.
    #[error("Edgegap answered {status}: {message}")]
    Api {
        /// HTTP status code.
        status: u16,
        /// Edgegap's `message`, or the raw body when it was not the documented shape.
        message: String,
        /// Present on v2 deploy 422s: the deployment that was created in error state
        /// and must be stopped by the caller.
        request_id: Option<String>,
    },
    /// 429: over Edgegap's rate limit (status code documented by no spec; observed).
    #[error("Edgegap rate limit hit (429): {message}")]
    RateLimited {
        /// Edgegap's `message`, if any.
        message: String,
        /// How long Edgegap asked callers to wait (`Retry-After` in seconds), when it said;
        /// retries wait at least this long (up to [`crate::ApiRetryConfig::MAX_RETRY_AFTER`]).
        retry_after: Option<Duration>,
    },
    /// 5xx from Edgegap.
    #[error("Edgegap server error {status}: {message}")]
    Server {
        /// HTTP status code.
        status: u16,
        /// Edgegap's `message`, or the raw body.
        message: String,
    },
    /// No complete answer within the configured timeout.
    #[error("Edgegap call timed out after {0:?}")]
    Timeout(Duration),
    /// The connection could not be made or broke (DNS, refused, reset).
    #[error("could not reach Edgegap: {0}")]
    Transport(String),
    /// A 2xx answer whose body does not match the documented shape.
    #[error("malformed Edgegap response (status {status}): {detail}")]
    MalformedBody {
        /// HTTP status code of the answer.
        status: u16,
        /// What did not parse.
        detail: String,
    },
    /// The client was configured with something unusable (empty key, bad URL).
    #[error("invalid Edgegap client configuration: {0}")]
    InvalidConfig(String),
}

impl EdgegapError {
    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Server { status, .. } | Self::MalformedBody { status, .. } => {
                Some(*status)
            }
            Self::RateLimited { .. } => Some(429),
            Self::Timeout(_) | Self::Transport(_) | Self::InvalidConfig(_) => None,
        }
    }

    /// The wait Edgegap asked for on a 429 (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// True for 404 and 410: the thing is already gone. Deleting callers treat
    /// this as success (bevygap's delete worker acks on both).
    pub fn is_gone(&self) -> bool {
        matches!(self.status(), Some(404 | 410))
    }

    /// True when trying again later may succeed (rate limit, 5xx, timeout,
    /// connection trouble). 4xx answers and malformed bodies are not retryable.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Server { .. } | Self::Timeout(_) | Self::Transport(_))
    }
}
