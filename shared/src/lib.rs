//! Shared code for the Bevygap matchmaker, game-server plugin and game-client plugin.
//!
//! - [`protocol`]: the public wire protocol (join request, streamed progress, ready payload,
//!   error codes), validated into typed tokens before use.
//! - [`naming`]: every NATS bucket and subject derived from one [`Namespace`], so several games
//!   share one NATS server without seeing each other's data.
//! - [`nats`]: connecting from env (URL list, user/password, token, nkey, creds file, custom CA
//!   as file or PEM contents, require-TLS) with automatic reconnects and an observable link.
//! - [`kv`] and [`records`]: the JetStream KV layout.
//! - [`keys`]: the Lightyear protocol id and private key, never printed.
//! - `inbox` (feature `bevy`): the one async → ECS idiom, an inbox drained by systems plus a
//!   waker for event-driven apps.
//!
//! Bevy is optional: enable the `bevy` feature for `Resource`/`Reflect` derives.
//!
//! # KV layout
//!
//! All buckets are named `bevygap_<namespace>_<bucket>`, history 1, JSON values. Keys are built
//! only from validated tokens (`[A-Za-z0-9_-]`, versions with `.` escaped as `=2E`).
//!
//! | bucket | key | value | written by → read by | expiry |
//! |---|---|---|---|---|
//! | `servers` | `<server_id>` | [`records::ServerRecord`] | game server (boot, heartbeat) → matchmaker | 30 s without heartbeat; a purge marker tells watchers |
//! | `clients` | `<server_id>.<client_id>` | [`records::ClientGrant`] | matchmaker, before returning the token → game server admission | 24 h; deleted when the player's session ends |
//! | `clients` | `<server_id>.match` | [`records::MatchRecord`] | matchmaker, before any player of the match gets a token → the game server (`BevygapMatch`) | 24 h; deleted when the server ends |
//! | `players` | `<server_id>.<client_id>` | [`records::PlayerRecord`] | game server on connect/leave → matchmaker seat tracking | 120 s without refresh; purge marker |
//! | `sessions` | `<session_id>` | [`records::SessionRecord`] | matchmaker → matchmaker replicas, operators | 24 h |
//! | `requests` | `<request_id>` | [`records::RequestRecord`] | joins waiting for their answer, so the next owner queues them again | 10 min |
//!
//! Core subjects live under `bevygap.<namespace>.>`: `server.<server_id>.control` carries drain
//! and stop commands from the matchmaker to one game server.
//!
//! # Example
//!
//! ```
//! use bevygap_shared::naming::{Bucket, Namespace};
//! use bevygap_shared::protocol::{ErrorCode, JoinRequest};
//!
//! let names = Namespace::new("spaceships").unwrap().names();
//! assert_eq!(names.bucket(Bucket::Clients), "bevygap_spaceships_clients");
//!
//! let ok = JoinRequest::new("spaceships", "1.2.0").validate().unwrap();
//! assert_eq!(ok.version.key_token(), "1=2E2=2E0");
//! let err = JoinRequest::new("space ships", "1").validate().unwrap_err();
//! assert_eq!(err.code, ErrorCode::InvalidRequest);
//! ```

pub mod env;
#[cfg(all(feature = "bevy", feature = "nats"))]
pub mod inbox;
pub mod keys;
#[cfg(feature = "nats")]
pub mod kv;
#[cfg(feature = "prometheus")]
pub mod metrics;
pub mod naming;
#[cfg(feature = "nats")]
pub mod nats;
pub mod protocol;
pub mod records;
mod secret;
pub mod server_env;

pub use keys::{LightyearKeys, PrivateKey};
pub use naming::{Namespace, NatsNames, NatsRole, ServerId};
pub use secret::Secret;

/// Installs the ring rustls crypto provider as the process default, once. Call it first in
/// every binary's `main`: when several crates compile in both ring and aws-lc-rs, rustls
/// otherwise panics on the first TLS config built without an explicit provider.
#[cfg(feature = "nats")]
pub fn install_crypto_provider() {
    let _ = async_nats::rustls::crypto::ring::default_provider().install_default();
}
