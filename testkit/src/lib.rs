//! Test helpers shared by every Bevygap crate's integration tests.
//!
//! Tests run against real parts: [`NatsServer`] starts a private `nats-server -js` on a free
//! loopback port with a throw-away store, so tests are isolated from each other and can stop and
//! restart the server to exercise outages.

mod binaries;
mod ports;

pub use bevygap_shared::nats::{MIN_NATS_SERVER_VERSION, NatsServer, NatsServerError};
pub use binaries::workspace_binary;
pub use ports::free_tcp_port;
