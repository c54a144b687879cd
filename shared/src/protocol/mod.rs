//! The public matchmaker wire protocol: what a game client sends and what it gets back.
//!
//! Everything here is plain serde data so the matchmaker, the client plugin and third-party
//! clients (a browser game, a launcher) agree on one versioned JSON shape. Raw requests are
//! validated into typed tokens ([`GameName`], [`GameVersion`], [`RequestId`]) before anything
//! else sees them, so no request can inject into a NATS subject or KV key.

mod digest;
mod error;
mod join;
mod progress;
mod ticket;
mod tokens;

pub use digest::CertDigest;
pub use error::{ErrorCode, JoinError};
pub use join::{JoinRequest, MAX_PARTY_SIZE, ValidJoinRequest};
pub use progress::{JoinProgress, MatchFound, ReadyPayload, ServerAddresses, Transport};
pub use ticket::{
    MAX_ATTRIBUTES, MAX_LATENCY_MS, MAX_LIST_VALUES, MAX_LOCATIONS, MAX_NAME_BYTES, TicketAttributes, check_latencies,
    check_mode,
};
pub use tokens::{GameName, GameVersion, PartyId, Region, RequestId, TokenError};

/// Version of the wire protocol; bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// JSON-RPC method that joins and streams progress (server-sent events) until ready or failed.
pub const METHOD_JOIN_WATCH: &str = "matchmaker.join+watch";
/// JSON-RPC method that joins and answers once, when ready or failed.
pub const METHOD_JOIN: &str = "matchmaker.join";
/// JSON-RPC method that withdraws a pending join by its request id.
pub const METHOD_CANCEL: &str = "matchmaker.cancel";
