//! The values stored in the KV buckets (JSON). See the crate docs for the layout.

use serde::{Deserialize, Serialize};

use crate::naming::ServerId;
use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::{CertDigest, GameName, GameVersion, ServerAddresses, TicketAttributes, Transport};

/// A game server's lifecycle as it reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "bevy", derive(bevy::reflect::Reflect))]
pub enum ServerStatus {
    /// Booting: not yet accepting players.
    Starting,
    /// Accepting players.
    Ready,
    /// Finishing current players; admits no one new.
    Draining,
}

/// `servers` bucket, key `<server_id>`: written by the game server on boot and on every
/// heartbeat; expires (with a purge marker the matchmaker sees) when heartbeats stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    pub server_id: ServerId,
    pub game: GameName,
    pub version: GameVersion,
    /// Which provider started it (`local`, `fleet`, `edgegap`, `standalone`).
    pub provider: String,
    /// Public addresses clients dial, per transport.
    pub addresses: ServerAddresses,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_digest: Option<CertDigest>,
    /// Unix seconds after which the WebTransport certificate is no longer valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_not_after: Option<u64>,
    /// Most players this server takes.
    pub capacity: u32,
    pub status: ServerStatus,
    pub started_at_ms: u64,
    pub heartbeat_at_ms: u64,
}

/// `clients` bucket, key `<client_id>`: written by the matchmaker *before* it returns a
/// ConnectToken, read by the game server to admit exactly the clients it was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientGrant {
    pub client_id: u64,
    pub server_id: ServerId,
    pub session_id: String,
    pub game: GameName,
    pub version: GameVersion,
    pub issued_at_ms: u64,
    /// Unix milliseconds after which the token can no longer start a connection.
    pub token_expires_at_ms: u64,
}

/// `clients` bucket, key `<server_id>.match` ([`NatsNames::match_key`](crate::NatsNames::match_key)):
/// the match a `match`-mode profile formed for this server, written by the matchmaker before
/// any of its players gets a token (so the game can set up teams before the first one
/// arrives), deleted when the server ends. It sits beside the server's grants because it is
/// the same kind of record: what the matchmaker tells one server about the players it sends,
/// readable by that server alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchRecord {
    pub match_id: String,
    pub server_id: ServerId,
    pub game: GameName,
    pub version: GameVersion,
    /// The profile (mode) that formed it.
    pub profile: String,
    /// The players of each team, team 0 first.
    pub teams: Vec<Vec<MatchPlayer>>,
    /// The location the latency rule chose, if the profile has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Per intersection rule, the values every player shares (the maps they all accept…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shared: BTreeMap<String, BTreeSet<String>>,
    pub formed_at_ms: u64,
}

/// One player of a [`MatchRecord`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchPlayer {
    /// The Lightyear client id the player will connect with.
    pub client_id: u64,
    /// The id teammates and the game see for this player (never the request id).
    pub public_id: String,
    /// The party the player came with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<String>,
    /// The attributes the player claimed (see `TicketAttributes`).
    #[serde(default, skip_serializing_if = "TicketAttributes::is_empty")]
    pub attributes: TicketAttributes,
}

/// `players` bucket, key `<server_id>.<client_id>`: written by the game server while the
/// player is connected, deleted when they leave however they leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerRecord {
    pub client_id: u64,
    pub server_id: ServerId,
    pub session_id: String,
    pub connected_at_ms: u64,
    /// The player's match and team there, as the server's match record says (only for a
    /// server running a formed match): what operators and backfill read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<MatchTeam>,
}

/// A connected player's place in its server's match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchTeam {
    pub match_id: String,
    pub team: u32,
}

/// `sessions` bucket, key `<session_id>`: the matchmaker's record of a placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub session_id: String,
    pub server_id: ServerId,
    pub game: GameName,
    pub version: GameVersion,
    pub client_ids: Vec<u64>,
    pub created_at_ms: u64,
    /// The provider's own id for it (an Edgegap session id), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_session: Option<String>,
    /// The join it answered (the matchmaker's request id): a replica taking over does not queue
    /// again a join whose answer it finds here, even if its `requests` record outlived it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// `requests` bucket, key `<request_id>`: a join waiting for its answer, written by the
/// owning matchmaker when it admits the join and deleted once the join is answered, so a
/// replica taking over (after a SIGKILL, a restart, a lease lapsing) queues it again under its
/// request id and the player's retry resumes it instead of placing the player twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub request_id: String,
    pub game: String,
    pub version: String,
    pub transport: Transport,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub party: Option<String>,
    pub requester_ip: String,
    pub requester_key: String,
    pub client_ip: String,
    /// When (Unix milliseconds) the join fails if it has no seat by then.
    pub deadline_ms: u64,
    /// The match mode and what its rules compare (absent for drop-in joins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party_size: Option<u32>,
    #[serde(default, skip_serializing_if = "TicketAttributes::is_empty")]
    pub attributes: TicketAttributes,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latencies: BTreeMap<String, f64>,
}

/// Milliseconds since the Unix epoch, the timestamp unit of every record.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A command from the matchmaker to one game server, on its control subject
/// ([`crate::NatsNames::server_control_subject`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum ServerCommand {
    /// Stop admitting players; exit once the last one leaves.
    Drain,
    /// Disconnect everyone cleanly, remove records and exit now.
    Shutdown,
}
