//! Test helpers shared by every Bevygap crate's tests, in the spirit of Lightyear's own test
//! crate: one version of each piece of setup, so tests read as what they check. The benchmark
//! runner (`bevygap_loadgen`'s `bevygap-bench`) depends on it too, as a normal dependency: it
//! starts the same nats-servers, processes and Lightyear clients; nothing that ships does.
//!
//! Tests run against real parts:
//!
//! - [`NatsServer`] starts a private `nats-server -js` on a free loopback port with a
//!   throw-away store, so tests are isolated from each other and can stop and restart the
//!   server to exercise outages.
//! - [`stepping`]: driving one or more Bevy apps by hand until something holds
//!   ([`step_until`], [`expect_step_until`], [`every`], [`step_for`]).
//! - [`lightyear_client`]: headless Lightyear client apps, bare or with the plugin under test,
//!   and clients connecting with a real `ConnectToken` over UDP or WebTransport.
//! - [`records`]: the KV records ([`ClientGrant`](bevygap_shared::records::ClientGrant),
//!   [`PlayerRecord`](bevygap_shared::records::PlayerRecord),
//!   [`ServerRecord`](bevygap_shared::records::ServerRecord)) with test defaults, to adjust
//!   with struct-update syntax.
//! - [`wait_for`] (and [`try_wait_for`], which returns [`TimedOut`] instead of panicking) for
//!   anything outside an app: poll a check until it gives a value or a deadline passes.
//! - [`workspace_binary`], [`free_tcp_port`], [`wait_for_listener`], [`KillOnDrop`],
//!   [`stop_gracefully`] (SIGTERM, then SIGKILL) and [`FakeEdgegapProcess`] (the `fake-edgegap`
//!   binary) for tests that run other workspace programs.
//! - [`test_keys`]: the one set of Lightyear keys of every test; a child process gets them from
//!   [`LightyearKeys::to_env`](bevygap_shared::LightyearKeys::to_env).
//! - [`browser`]: headless Chromium driven by the playwright-core scripts in `testkit/browser/`.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use bevygap_testkit::lightyear_client::{ClientConnection, Dial, client_connection, connecting_client};
//! use bevygap_testkit::{DEADLINE, expect_step_until};
//! # let token: lightyear::netcode::ConnectToken = todo!();
//!
//! let (mut client, entity) = connecting_client(token, Dial::Udp);
//! expect_step_until(&mut [&mut client], DEADLINE, "the client to connect", |apps| {
//!     client_connection(apps[0], entity) == ClientConnection::Connected
//! });
//! ```

mod binaries;
pub mod browser;
pub mod cluster;
mod fake_edgegap;
mod keys;
pub mod lightyear_client;
mod ports;
mod process;
pub mod records;
pub mod stepping;
mod wait;

pub use bevygap_shared::nats::{MIN_NATS_SERVER_VERSION, NatsServer, NatsServerError};
pub use binaries::{wait_for_listener, workspace_binary};
pub use cluster::NatsCluster;
pub use fake_edgegap::FakeEdgegapProcess;
pub use keys::{TEST_PRIVATE_KEY, TEST_PROTOCOL_ID, test_keys};
pub use ports::free_tcp_port;
pub use process::{KillOnDrop, send_signal, stop_gracefully};
pub use stepping::{DEADLINE, every, expect_step_until, step_for, step_until};
pub use wait::{POLL, TimedOut, try_wait_for, wait_for};
