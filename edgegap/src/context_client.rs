//! Client for the in-container endpoints a game server calls about itself.
//!
//! These use the URLs and raw tokens from the `ARBITRIUM_*` environment, not
//! the account API key, which never ships inside a game-server image.

use std::time::Duration;

use crate::arbitrium::ArbitriumEnv;
use crate::auth::RawToken;
use crate::client::parse_stop;
use crate::error::EdgegapError;
use crate::models::{Deployment, StopOutcome};
use crate::retry::{ApiRetryConfig, Idempotency, with_retries};
use crate::transport::{Auth, Method, Transport};

/// Calls `ARBITRIUM_CONTEXT_URL` and `ARBITRIUM_DELETE_URL`.
#[derive(Debug)]
pub struct ContextClient {
    context_url: String,
    context_token: RawToken,
    delete_url: String,
    delete_token: RawToken,
    retry: ApiRetryConfig,
    transport: Transport,
}

impl ContextClient {
    /// Default timeout for one in-container call.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Builds a client from a parsed environment with default timeout and retries.
    pub fn from_arbitrium(env: &ArbitriumEnv) -> Self {
        Self::with_timeout_and_retry(env, Self::DEFAULT_TIMEOUT, ApiRetryConfig::default())
    }

    /// Same with an explicit timeout and retry configuration.
    pub fn with_timeout_and_retry(env: &ArbitriumEnv, timeout: Duration, retry: ApiRetryConfig) -> Self {
        Self {
            context_url: env.context_url.clone(),
            context_token: env.context_token.clone(),
            delete_url: env.delete_url.clone(),
            delete_token: env.delete_token.clone(),
            retry,
            transport: Transport::new(timeout),
        }
    }

    /// `GET /v1/context/{request_id}/{security_number}`: this deployment's
    /// public IP, ports, location and socket counts. Callable while the
    /// deployment is still `Status.DEPLOYING`.
    pub fn context(&self) -> Result<Deployment, EdgegapError> {
        with_retries(&self.retry, Idempotency::Idempotent, || {
            self.transport.send(Method::Get, &self.context_url, Auth::Raw(&self.context_token), None)?.json()
        })
    }

    /// `DELETE /v1/self/stop/{request_id}/{access_point_id}`: ask Edgegap to
    /// stop this deployment (it will SIGTERM this process). 202 while not
    /// yet READY: the stop happens once it is.
    pub fn self_stop(&self) -> Result<StopOutcome, EdgegapError> {
        let answer = with_retries(&self.retry, Idempotency::Idempotent, || {
            self.transport.send(Method::Delete, &self.delete_url, Auth::Raw(&self.delete_token), None)
        })?;
        parse_stop(&answer)
    }
}
