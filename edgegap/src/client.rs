//! The account-level Edgegap client used by the matchmaker.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::ApiKey;
use crate::error::EdgegapError;
use crate::models::deployment::{DeleteBody, DeleteRequestReceivedBody};
use crate::models::{
    AppVersion, Application, DeploymentCreate, DeploymentCreated, DeploymentList, DeploymentStatus, SessionCreate,
    SessionCreated, SessionDeleted, SessionGet, SessionList, StopOutcome,
};
use crate::rate_limit::{DEPLOYS_PER_SECOND, LIST_DEPLOYMENTS_PER_SECOND, RateLimiter, STATUS_PER_SECOND};
use crate::retry::{ApiRetryConfig, Idempotency, with_retries};
use crate::transport::{Answer, Auth, Method, Transport, segment};

/// Configuration of an [`EdgegapClient`].
#[derive(Clone, Debug)]
pub struct EdgegapConfig {
    /// `https://api.edgegap.com` in production; the fake's URL in tests.
    /// A trailing slash is tolerated.
    pub base_url: String,
    /// Account API key (redacted in `Debug`).
    pub api_key: ApiKey,
    /// Limit for one HTTP exchange (connect, send, receive the whole body).
    pub timeout: Duration,
    /// Retries of transient failures.
    pub retry: ApiRetryConfig,
    /// Wait locally to stay under Edgegap's documented limits
    /// (40 deploys/s, 20 status reads/s). On by default.
    pub rate_limit: bool,
}

impl EdgegapConfig {
    /// Production API address.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.edgegap.com";

    /// Production URL, 10 s timeout, default retries, rate limiting on.
    pub fn new(api_key: ApiKey) -> Self {
        Self {
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            api_key,
            timeout: Duration::from_secs(10),
            retry: ApiRetryConfig::default(),
            rate_limit: true,
        }
    }

    /// Same, pointed at another server (the fake, a proxy).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }
}

/// Blocking client for Edgegap's account endpoints.
///
/// Cheap to clone (shared connection pool and rate limiters). Every call
/// blocks for up to `timeout × (retries + 1)` plus backoff, so call it off the
/// Bevy main thread (e.g. `spawn_blocking`).
#[derive(Clone)]
pub struct EdgegapClient {
    inner: Arc<Inner>,
}

struct Inner {
    base_url: String,
    api_key: ApiKey,
    retry: ApiRetryConfig,
    transport: Transport,
    deploy_limiter: Option<RateLimiter>,
    status_limiter: Option<RateLimiter>,
    list_limiter: Option<RateLimiter>,
}

impl fmt::Debug for EdgegapClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdgegapClient")
            .field("base_url", &self.inner.base_url)
            .field("api_key", &self.inner.api_key)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl EdgegapClient {
    /// Builds a client; fails if the base URL is not http(s).
    pub fn new(config: EdgegapConfig) -> Result<Self, EdgegapError> {
        let base_url = normalise_base_url(&config.base_url)?;
        let limiter = |per_second| config.rate_limit.then(|| RateLimiter::per_second(per_second));
        let (deploy_limiter, status_limiter, list_limiter) =
            (limiter(DEPLOYS_PER_SECOND), limiter(STATUS_PER_SECOND), limiter(LIST_DEPLOYMENTS_PER_SECOND));
        Ok(Self {
            inner: Arc::new(Inner {
                base_url,
                api_key: config.api_key,
                retry: config.retry,
                transport: Transport::new(config.timeout),
                deploy_limiter,
                status_limiter,
                list_limiter,
            }),
        })
    }

    /// The normalised base URL (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// `GET /v1/app/{app_name}`.
    pub fn get_app(&self, app_name: &str) -> Result<Application, EdgegapError> {
        self.get(&format!("/v1/app/{}", segment(app_name)), None)
    }

    /// `GET /v1/app/{app_name}/version/{version_name}`.
    pub fn get_app_version(&self, app_name: &str, version_name: &str) -> Result<AppVersion, EdgegapError> {
        self.get(&format!("/v1/app/{}/version/{}", segment(app_name), segment(version_name)), None)
    }

    /// `POST /v1/session` (legacy Sessions API). Not retried except on 429,
    /// since a retry after a lost answer would create a second session.
    pub fn create_session(&self, request: &SessionCreate) -> Result<SessionCreated, EdgegapError> {
        self.post("/v1/session", request, None)?.json()
    }

    /// `GET /v1/session/{session_id}`.
    pub fn get_session(&self, session_id: &str) -> Result<SessionGet, EdgegapError> {
        self.get(&format!("/v1/session/{}", segment(session_id)), None)
    }

    /// `DELETE /v1/session/{session_id}`. Frees the session's seat; the
    /// deployment keeps running. A retried delete whose first attempt went
    /// through answers 404, so callers should treat [`EdgegapError::is_gone`]
    /// as success.
    pub fn delete_session(&self, session_id: &str) -> Result<SessionDeleted, EdgegapError> {
        self.delete(&format!("/v1/session/{}", segment(session_id)))?.json()
    }

    /// `GET /v1/sessions?page=&limit=`.
    pub fn list_sessions(&self, page: Option<u32>, limit: Option<u32>) -> Result<SessionList, EdgegapError> {
        self.get(&paged("/v1/sessions", page, limit), None)
    }

    /// `POST /v2/deployments` (202 with the request id only; poll
    /// [`Self::deployment_status`]). Rate limited to 40/s locally. On a 422
    /// the error's `request_id` names a deployment left in ERROR that the
    /// caller should stop.
    pub fn create_deployment(&self, request: &DeploymentCreate) -> Result<DeploymentCreated, EdgegapError> {
        self.post("/v2/deployments", request, self.inner.deploy_limiter.as_ref())?.json()
    }

    /// `GET /v1/status/{request_id}`. Rate limited to 20/s locally.
    pub fn deployment_status(&self, request_id: &str) -> Result<DeploymentStatus, EdgegapError> {
        self.get(&format!("/v1/status/{}", segment(request_id)), self.inner.status_limiter.as_ref())
    }

    /// `GET /v1/deployments?page=&limit=`: the account's live deployments,
    /// one page. Rate limited to 10/s locally. A caller whose create timed
    /// out finds the deployment it may have started here, by its tags.
    pub fn list_deployments(&self, page: Option<u32>, limit: Option<u32>) -> Result<DeploymentList, EdgegapError> {
        self.get(&paged("/v1/deployments", page, limit), self.inner.list_limiter.as_ref())
    }

    /// `DELETE /v1/stop/{request_id}`: 200 (stopping now) or 202 (will stop
    /// once READY/ERROR); 410 once terminated.
    pub fn stop_deployment(&self, request_id: &str) -> Result<StopOutcome, EdgegapError> {
        parse_stop(&self.delete(&format!("/v1/stop/{}", segment(request_id)))?)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.base_url)
    }

    fn get<T: DeserializeOwned>(&self, path: &str, limiter: Option<&RateLimiter>) -> Result<T, EdgegapError> {
        let url = self.url(path);
        let auth = Auth::Account(&self.inner.api_key);
        with_retries(&self.inner.retry, Idempotency::Idempotent, || {
            if let Some(limiter) = limiter {
                limiter.acquire();
            }
            self.inner.transport.send(Method::Get, &url, auth, None)?.json()
        })
    }

    fn delete(&self, path: &str) -> Result<Answer, EdgegapError> {
        let url = self.url(path);
        let auth = Auth::Account(&self.inner.api_key);
        with_retries(&self.inner.retry, Idempotency::Idempotent, || {
            self.inner.transport.send(Method::Delete, &url, auth, None)
        })
    }

    fn post<B: Serialize>(&self, path: &str, body: &B, limiter: Option<&RateLimiter>) -> Result<Answer, EdgegapError> {
        let url = self.url(path);
        let json = serde_json::to_value(body)
            .map_err(|e| EdgegapError::InvalidConfig(format!("request body does not serialise: {e}")))?;
        let auth = Auth::Account(&self.inner.api_key);
        with_retries(&self.inner.retry, Idempotency::Creating, || {
            if let Some(limiter) = limiter {
                limiter.acquire();
            }
            self.inner.transport.send(Method::Post, &url, auth, Some(&json))
        })
    }
}

/// Interprets a stop answer: 202 is `DeleteRequestReceived`, any other 2xx is `Delete`.
pub(crate) fn parse_stop(answer: &Answer) -> Result<StopOutcome, EdgegapError> {
    if answer.status == 202 {
        let body: DeleteRequestReceivedBody = answer.json()?;
        return Ok(StopOutcome::Accepted { message: body.message });
    }
    let body: DeleteBody = answer.json()?;
    Ok(StopOutcome::Stopping { message: body.message, deployment_summary: body.deployment_summary.map(Box::new) })
}

/// `path?page=&limit=` with only the parameters given.
fn paged(path: &str, page: Option<u32>, limit: Option<u32>) -> String {
    let query: Vec<String> =
        [("page", page), ("limit", limit)].into_iter().filter_map(|(k, v)| v.map(|v| format!("{k}={v}"))).collect();
    if query.is_empty() { path.to_owned() } else { format!("{path}?{}", query.join("&")) }
}

/// Checks the scheme and strips trailing slashes, so paths join with one `/`.
pub(crate) fn normalise_base_url(raw: &str) -> Result<String, EdgegapError> {
    let trimmed = raw.trim().trim_end_matches('/');
    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
        return Err(EdgegapError::InvalidConfig(format!(
            "base URL must start with http:// or https://, got {trimmed:?}"
        )));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_trailing_slash_is_tolerated() {
        assert_eq!(normalise_base_url("https://api.edgegap.com/").expect("ok"), "https://api.edgegap.com");
        assert_eq!(normalise_base_url("http://127.0.0.1:80//").expect("ok"), "http://127.0.0.1:80");
        assert!(normalise_base_url("api.edgegap.com").is_err());
    }

    #[test]
    fn client_debug_redacts_key() {
        let key = ApiKey::parse("token 0123-secret").expect("key");
        let client = EdgegapClient::new(EdgegapConfig::new(key)).expect("client");
        let shown = format!("{client:?}");
        assert!(!shown.contains("0123-secret"), "{shown}");
        assert!(shown.contains("api.edgegap.com"));
    }
}
