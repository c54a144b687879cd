//! Connecting to NATS from configuration, with automatic reconnects and an observable link.

mod config;
mod connect;

pub use config::{CaSource, NatsAuth, NatsConfig};
pub use connect::{InitialConnect, LinkStatus, NatsConnection, NatsError};
