//! Blocking client for the parts of the Edgegap API that Bevygap uses.
//!
//! * [`EdgegapClient`]: account endpoints, authenticated with
//!   `authorization: token <key>`: app/version lookup, the legacy Sessions
//!   API, v2 deploy, v1 status, list and stop. Used by the matchmaker.
//! * [`ContextClient`] + [`ArbitriumEnv`]: what a game server running on
//!   Edgegap uses about itself: the injected `ARBITRIUM_*` environment, the
//!   context endpoint and self-stop, authenticated with raw per-deployment tokens.
//!
//! Calls block (ureq), so run them off the Bevy main thread. Every call has a
//! timeout; idempotent calls retry transient failures with backoff; creating
//! calls retry only on 429; a 429's `Retry-After` is waited out; Edgegap's
//! documented rate limits (40 deploys/s, 20 status reads/s, 10 lists/s) are
//! respected locally. Secrets are redacted in `Debug`.
//!
//! Tests run this client against `fake_edgegap`, a local stand-in for the
//! service.
//!
//! ```no_run
//! use std::time::Duration;
//! use bevygap_edgegap::{ApiKey, EdgegapClient, EdgegapConfig, SessionCreate};
//!
//! # fn main() -> Result<(), bevygap_edgegap::EdgegapError> {
//! let key = ApiKey::parse("token 00000000-0000-0000-0000-000000000000")?;
//! let mut config = EdgegapConfig::new(key);
//! config.timeout = Duration::from_secs(5);
//! let client = EdgegapClient::new(config)?;
//!
//! let created = client.create_session(&SessionCreate {
//!     app_name: "my-game".into(),
//!     ip_list: Some(vec!["81.128.1.2".into()]),
//!     ..Default::default()
//! })?;
//! let session = client.get_session(&created.session_id)?;
//! if let Some(deployment) = session.deployment.filter(|_| session.ready) {
//!     println!("play at {}", deployment.public_ip);
//! }
//! # Ok(()) }
//! ```

mod arbitrium;
mod auth;
mod client;
mod context_client;
mod error;
pub mod models;
mod rate_limit;
mod retry;
mod transport;

pub use arbitrium::{ArbitriumEnv, ArbitriumError, ArbitriumPort, REQUIRED_VARS};
pub use auth::{ApiKey, RawToken};
pub use client::{EdgegapClient, EdgegapConfig};
pub use context_client::ContextClient;
pub use error::EdgegapError;
pub use models::*;
pub use rate_limit::{DEPLOYS_PER_SECOND, LIST_DEPLOYMENTS_PER_SECOND, RateLimiter, STATUS_PER_SECOND};
pub use retry::ApiRetryConfig;
