//! Connecting to NATS from configuration, with automatic reconnects and an observable link.

mod config;
mod connect;
#[cfg(feature = "embedded-nats")]
mod embedded;
pub mod server_credentials;

pub use config::{CaSource, NatsAuth, NatsConfig, redact_url};
pub use connect::{InitialConnect, LinkStatus, NatsConnection, NatsError};
#[cfg(feature = "embedded-nats")]
pub use embedded::{MIN_NATS_SERVER_VERSION, NatsServer, NatsServerError, STORE_DIR_PREFIX, remove_stale_store_dirs};
