//! One HTTP exchange with Edgegap: send, time-limit, classify the answer.
//!
//! Shared by the account client and the in-container context client so that
//! both map failures to the same [`EdgegapError`] kinds.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::auth::{ApiKey, RawToken};
use crate::error::EdgegapError;

/// Bodies longer than this are cut when quoted in an error message.
const MAX_QUOTED_BODY: usize = 512;

/// HTTP method of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }
}

/// Which `authorization` header to send.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// `token <key>` for account endpoints.
    Account(&'a ApiKey),
    /// The raw per-deployment token for in-container endpoints.
    Raw(&'a RawToken),
}

/// A 2xx answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// Deserialises the body, reporting a mismatch as `MalformedBody`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, EdgegapError> {
        serde_json::from_str(&self.body)
            .map_err(|e| EdgegapError::MalformedBody { status: self.status, detail: e.to_string() })
    }
}

/// A blocking HTTP agent with a global per-call timeout.
#[derive(Debug)]
pub(crate) struct Transport {
    agent: ureq::Agent,
    timeout: Duration,
}

impl Transport {
    pub fn new(timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("bevygap_edgegap/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self { agent, timeout }
    }

    /// Performs one request; any non-2xx answer becomes an error.
    pub fn send(
        &self,
        method: Method,
        url: &str,
        auth: Auth<'_>,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, EdgegapError> {
        let auth_value = match auth {
            Auth::Account(key) => key.header_value(),
            Auth::Raw(token) => token.header_value().to_owned(),
        };
        let result = match (method, body) {
            (Method::Get, _) => self.agent.get(url).header("authorization", &auth_value).call(),
            (Method::Delete, _) => self.agent.delete(url).header("authorization", &auth_value).call(),
            (Method::Post, Some(json)) => self.agent.post(url).header("authorization", &auth_value).send_json(json),
            (Method::Post, None) => self.agent.post(url).header("authorization", &auth_value).send_empty(),
        };
        let mut response = match result {
            Ok(response) => response,
            Err(e) => {
                let error = self.map_ureq(e);
                let class = if matches!(error, EdgegapError::Timeout(_)) { "timeout" } else { "transport" };
                count_call(method, class);
                return Err(error);
            }
        };
        let status = response.status().as_u16();
        count_call(method, status_class(status));
        let retry_after =
            response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let body = response.body_mut().read_to_string().map_err(|e| self.map_ureq(e))?;
        tracing::debug!(method = method.as_str(), url, status, "Edgegap call");
        classify(status, body, retry_after)
    }

    fn map_ureq(&self, err: ureq::Error) -> EdgegapError {
        match err {
            ureq::Error::Timeout(_) => EdgegapError::Timeout(self.timeout),
            ureq::Error::Io(io)
                if matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) =>
            {
                EdgegapError::Timeout(self.timeout)
            }
            ureq::Error::BadUri(uri) => EdgegapError::InvalidConfig(format!("bad URL: {uri}")),
            other => EdgegapError::Transport(other.to_string()),
        }
    }
}

/// Counts one API call in `bevygap_edgegap_requests_total{method, status}` (a status class,
/// with 429 apart: rate limits are what an operator tunes against).
fn count_call(method: Method, status: &'static str) {
    metrics::counter!("bevygap_edgegap_requests_total", "method" => method.as_str(), "status" => status).increment(1);
}

fn status_class(status: u16) -> &'static str {
    match status {
        429 => "429",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// `Retry-After` in its delay-seconds form; the HTTP-date form (which Edgegap is not known to
/// send) is ignored, leaving the usual backoff.
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Maps a status and body to success or the matching error kind.
fn classify(status: u16, body: String, retry_after: Option<Duration>) -> Result<Answer, EdgegapError> {
    if (200..300).contains(&status) {
        return Ok(Answer { status, body });
    }
    let parsed: Option<serde_json::Value> = serde_json::from_str(&body).ok();
    let field = |name: &str| parsed.as_ref().and_then(|v| v.get(name)).and_then(|m| m.as_str()).map(str::to_owned);
    let message = field("message").unwrap_or_else(|| quote(&body));
    match status {
        429 => Err(EdgegapError::RateLimited { message, retry_after }),
        500..=599 => Err(EdgegapError::Server { status, message }),
        _ => Err(EdgegapError::Api { status, message, request_id: field("request_id") }),
    }
}

fn quote(body: &str) -> String {
    if body.len() <= MAX_QUOTED_BODY {
        return body.to_owned();
    }
    let mut end = MAX_QUOTED_BODY;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end])
}

/// Percent-encodes one path segment (ids and app names go into URLs).
pub(crate) fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_status_codes() {
        assert!(classify(202, "{}".into(), None).is_ok());
        assert!(
            matches!(classify(429, r#"{"message":"slow down"}"#.into(), parse_retry_after("2")), Err(EdgegapError::RateLimited { message, retry_after: Some(wait) }) if message == "slow down" && wait == Duration::from_secs(2))
        );
        assert!(
            matches!(classify(503, "upstream".into(), None), Err(EdgegapError::Server { status: 503, message }) if message == "upstream")
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT"), None);
        match classify(422, r#"{"request_id":"abc","message":"Could not allocate"}"#.into(), None) {
            Err(EdgegapError::Api { status: 422, message, request_id }) => {
                assert_eq!(message, "Could not allocate");
                assert_eq!(request_id.as_deref(), Some("abc"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn encodes_segments() {
        assert_eq!(segment("a1cb46bc7f15-S"), "a1cb46bc7f15-S");
        assert_eq!(segment("my app/v1"), "my%20app%2Fv1");
    }
}
