//! Connecting to NATS from configuration, with automatic reconnects and an observable link.

mod config;
mod connect;
#[cfg(feature = "embedded-nats")]
mod embedded;

pub use config::{redact_url, CaSource, NatsAuth, NatsConfig};
pub use connect::{InitialConnect, LinkStatus, NatsConnection, NatsError};
#[cfg(feature = "embedded-nats")]
pub use embedded::{NatsServer, NatsServerError, MIN_NATS_SERVER_VERSION};
