//! A local fake of the Edgegap API for tests, benchmarks and demos.
//!
//! Edgegap cannot be reached from CI, so Bevygap's tests run the real
//! `bevygap_edgegap` client against this server. It serves the same paths,
//! auth rules, status codes and JSON shapes, and a deployment really runs a
//! configured command as a child process with the `ARBITRIUM_*` environment
//! Edgegap injects, whose context and self-stop URLs point back at the fake.
//!
//! # Starting it in-process
//!
//! ```no_run
//! use fake_edgegap::{FakeConfig, FakeEdgegap, GameServerCommand};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = FakeConfig::for_tests().with_game_server(GameServerCommand::new("/path/to/game-server"));
//! let fake = FakeEdgegap::start(config)?;
//! // Point the client at it: base URL + `token <api_token>`.
//! println!("{} {}", fake.base_url(), fake.api_token());
//! // ... create sessions or deployments through the client ...
//! assert!(fake.inventory().is_idle(), "something leaked");
//! fake.shutdown(); // also on drop: SIGTERM, then SIGKILL, every process
//! # Ok(()) }
//! ```
//!
//! Or run the `fake-edgegap` binary (`--help` lists every setting); it prints
//! its bound address as the first line of stdout.
//!
//! # What is modelled faithfully
//! - Paths (duplicate slashes tolerated, as Edgegap does), methods, the
//!   `authorization: token <key>` rule (bare key and `token token` → 401),
//!   raw per-deployment tokens on context/self-stop.
//! - Success codes: 200, 202 for v2 deploy, 200/202 for stop by state, 410
//!   once terminated; errors always `{"message": ...}`; v2 400s add `details`,
//!   v2 422 carries `request_id`.
//! - Required fields and JSON types of every response per Edgegap's swagger
//!   (`app_version` integer in sessions, string in status); ids, fqdn, links
//!   and timestamps in the formats observed on the live API.
//! - Deployment lifecycle INITIALIZING → SEEKING → SEEKED → SCANNING →
//!   DEPLOYING → READY → TERMINATED, or ERROR; the process starts at
//!   DEPLOYING and can call the context endpoint before READY, as observed.
//! - Stop: SIGTERM to the process group, SIGKILL after the grace; a process
//!   that exits by itself after READY is TERMINATED.
//! - Seat sessions fill deployments with free sockets or autodeploy one;
//!   deleting a session frees its seats and keeps the deployment.
//! - Documented rate limits (40 deploys/s, 20 status/s) answered with 429.
//! - Webhooks: v2 on_ready/on_error/on_terminated with the status body;
//!   session webhooks with the `SessionContext` body when Ready/Unprocessable/Error.
//!
//! # Where it guesses (see the notes' "Uncertainties")
//! - Session status words beyond `Seeking`/`Ready`: `Linked`, `Unprocessable`,
//!   `Error` are taken from spec prose; a session whose deployment ended
//!   reads `Error`, and deleting it answers 410.
//! - Unknown ids: 400 for session get, status, stop, context (the codes the
//!   spec lists; live status answers 400); 404 for session delete.
//! - A Seat session needs at least one user; error message texts are ours.
//! - 429 bodies (`{"message": "Too Many Requests"}`; no Retry-After).
//! - v2 webhook bodies are assumed to be the `/v1/status` shape.
//! - No NAT: a port's `internal` equals its `external` (a free local port),
//!   not the app version's declared port.
//! - A second stop while a deployment is shutting down answers 200 again.
//! - Only Unix; processes are only reaped, not resource-limited.

mod config;
mod env;
mod faults;
mod format;
mod inventory;
mod lifecycle;
mod ports;
mod process;
mod routes;
mod server;
mod state;
mod views;
mod webhook;

pub mod cli;

pub use config::{
    ChildOutput, FakeApp, FakeConfig, FakeLocation, FakePort, FakeVersion, GameServerCommand, LifecycleDelays,
};
pub use faults::{Endpoint, EndpointFaults, FaultConfig, apply_cli_fault};
pub use inventory::{Inventory, LiveDeployment, LiveProcess, LiveSession};
pub use server::{FakeEdgegap, FakeError};
