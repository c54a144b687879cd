//! Every NATS bucket, stream and subject name, derived from one namespace.
//!
//! Two games (or a staging and a production deployment) can share one NATS server: each
//! namespace gets its own buckets and subjects and never sees another's data. NATS credentials
//! can then be scoped per namespace with subject permissions on `bevygap.<ns>.>` and
//! `$KV.bevygap_<ns>_*.>`.

use std::fmt;

use crate::protocol::GameName;
#[cfg(feature = "bevy")]
use bevy::reflect::{ReflectDeserialize, ReflectSerialize};

/// A namespace that was not a valid NATS bucket/subject token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid namespace {value:?}: {reason} (use 1-32 of A-Z a-z 0-9 _ -, e.g. the game's app name)")]
pub struct NamespaceError {
    pub value: String,
    pub reason: &'static str,
}

/// The validated namespace all names derive from; usually the game's app name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace(String);

impl Namespace {
    /// Longest namespace, so every derived bucket name stays well inside NATS limits.
    pub const MAX_LEN: usize = 32;

    /// Validates a namespace: it must be usable inside bucket names (`[A-Za-z0-9_-]`) and as
    /// one subject token.
    pub fn new(value: impl Into<String>) -> Result<Self, NamespaceError> {
        let value = value.into();
        let err = |reason| Err(NamespaceError { value: value.clone(), reason });
        if value.is_empty() {
            return err("it is empty");
        }
        if value.len() > Self::MAX_LEN {
            return err("it is longer than 32 characters");
        }
        if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return err("it contains a character NATS does not allow in bucket names");
        }
        Ok(Self(value))
    }

    /// The namespace text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Names of every NATS asset in this namespace.
    pub fn names(&self) -> NatsNames {
        NatsNames { ns: self.clone() }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The KV buckets Bevygap uses; see the crate docs for each bucket's key → value schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Game servers: `<server_id>` → `ServerRecord`.
    Servers,
    /// What a server admits: `<server_id>.<client_id>` → `ClientGrant`, and
    /// `<server_id>.match` → `MatchRecord` for a server running a formed match.
    Clients,
    /// Connected players: `<server_id>.<client_id>` → `PlayerRecord`.
    Players,
    /// Game sessions: `<session_id>` → `SessionRecord`.
    Sessions,
    /// Join requests by id, for idempotent retries across replicas: `<request_id>` → `RequestRecord`.
    Requests,
}

impl Bucket {
    /// Every bucket, in provisioning order.
    pub const ALL: [Bucket; 5] =
        [Bucket::Servers, Bucket::Clients, Bucket::Players, Bucket::Sessions, Bucket::Requests];

    fn suffix(self) -> &'static str {
        match self {
            Bucket::Servers => "servers",
            Bucket::Clients => "clients",
            Bucket::Players => "players",
            Bucket::Sessions => "sessions",
            Bucket::Requests => "requests",
        }
    }
}

/// Who a NATS connection acts for: each role gets its own credentials and its own inbox
/// prefix ([`NatsNames::inbox_prefix`]), so permissions can let a connection read only its
/// own replies (see `assets/nats/bevygap.conf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatsRole {
    /// The matchmaker: provisions the buckets, writes grants, commands servers.
    Matchmaker,
    /// A game server: its records, grant reads, control commands.
    GameServer,
}

impl NatsRole {
    /// The role's name in subjects and user names: `matchmaker`, `gameserver`.
    pub fn as_str(self) -> &'static str {
        match self {
            NatsRole::Matchmaker => "matchmaker",
            NatsRole::GameServer => "gameserver",
        }
    }
}

/// The last token of [`NatsNames::match_key`].
pub const MATCH_KEY_SUFFIX: &str = "match";

/// Names derived from one [`Namespace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsNames {
    ns: Namespace,
}

impl NatsNames {
    /// The namespace these names derive from.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// The KV bucket name, e.g. `bevygap_spaceships_servers`.
    pub fn bucket(&self, bucket: Bucket) -> String {
        format!("bevygap_{}_{}", self.ns, bucket.suffix())
    }

    /// The inbox prefix of a role's connections, `_INBOX_bevygap_<ns>_<role>` (one subject
    /// token): replies to its requests and its KV watches arrive under `<prefix>.>`, which
    /// NATS permissions can grant to that role alone, instead of the shared `_INBOX.>`.
    pub fn inbox_prefix(&self, role: NatsRole) -> String {
        format!("_INBOX_bevygap_{}_{}", self.ns, role.as_str())
    }

    /// The inbox prefix of one game server, `_INBOX_bevygap_<ns>_gameserver.<server_id>`:
    /// inside its role's prefix (so the shared game-server user may read it), and narrow
    /// enough for per-server credentials to grant it to that server alone
    /// ([`crate::nats::server_credentials`]).
    pub fn game_server_inbox_prefix(&self, server_id: &ServerId) -> String {
        format!("{}.{server_id}", self.inbox_prefix(NatsRole::GameServer))
    }

    /// Root of every core subject in this namespace: `bevygap.<ns>`.
    pub fn subject_root(&self) -> String {
        format!("bevygap.{}", self.ns)
    }

    /// Commands from the matchmaker to one game server (drain, stop): `bevygap.<ns>.server.<id>.control`.
    pub fn server_control_subject(&self, server_id: &ServerId) -> String {
        format!("bevygap.{}.server.{}.control", self.ns, server_id)
    }

    /// A fleet's scale hook: the matchmaker publishes here when every fleet server of `game` is
    /// full and players wait (`bevygap.<ns>.fleet.need_capacity.<game>`), for an autoscaler.
    pub fn need_capacity_subject(&self, game: &GameName) -> String {
        format!("bevygap.{}.fleet.need_capacity.{}", self.ns, game)
    }

    /// Calls a matchmaker replica that does not own the namespace forwards to the one that
    /// does: `bevygap.<ns>.matchmaker.calls` (matchmakers only may publish or subscribe here).
    pub fn matchmaker_calls_subject(&self) -> String {
        format!("bevygap.{}.matchmaker.calls", self.ns)
    }

    /// The matchmakers' own bucket of leases (who owns the namespace) and replica presence,
    /// `bevygap_<ns>_leases`; game servers never open it.
    pub fn lease_bucket(&self) -> String {
        format!("bevygap_{}_leases", self.ns)
    }

    /// The key of a player record, `<server_id>.<client_id>`; a watch on `<server_id>.>` sees
    /// one server's players.
    pub fn player_key(server_id: &ServerId, client_id: u64) -> String {
        format!("{server_id}.{client_id}")
    }

    /// The server and client id of a player (or grant) key; `None` for a key of another shape.
    pub fn parse_player_key(key: &str) -> Option<(ServerId, u64)> {
        let (server, client) = key.split_once('.')?;
        Some((ServerId::new(server).ok()?, client.parse().ok()?))
    }

    /// The key of a client grant, `<server_id>.<client_id>`: a game server watches only
    /// `<its id>.>`, and a token minted for another server finds no grant under its prefix.
    pub fn client_key(server_id: &ServerId, client_id: u64) -> String {
        format!("{server_id}.{client_id}")
    }

    /// The `clients` bucket key of the match a server runs, `<server_id>.match` (never a
    /// client key: client ids are digits).
    pub fn match_key(server_id: &ServerId) -> String {
        format!("{server_id}.{MATCH_KEY_SUFFIX}")
    }

    /// A KV key for a game and version together, `<game>.<version-token>`.
    pub fn game_key(game: &GameName, version: &crate::protocol::GameVersion) -> String {
        format!("{}.{}", game, version.key_token())
    }
}

/// A game server's identity, unique across providers: e.g. `local-3f9a…`, `edgegap-835d0d69f2fc`.
///
/// Built only from `[A-Za-z0-9_-]`, so it is safe as a key and as one subject token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(
    feature = "bevy",
    derive(bevy::reflect::Reflect),
    reflect(opaque, Debug, PartialEq, Hash, Serialize, Deserialize),
    type_path = "bevygap"
)]
pub struct ServerId(String);

/// A server id with characters outside `[A-Za-z0-9_-]` or a bad length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid server id {0:?}: use 1-64 of A-Z a-z 0-9 _ -")]
pub struct ServerIdError(pub String);

impl ServerId {
    /// Validates a server id.
    pub fn new(value: impl Into<String>) -> Result<Self, ServerIdError> {
        let value = value.into();
        let ok = !value.is_empty()
            && value.len() <= 64
            && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if ok { Ok(Self(value)) } else { Err(ServerIdError(value.chars().take(80).collect())) }
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ServerId {
    type Error = ServerIdError;
    fn try_from(value: String) -> Result<Self, ServerIdError> {
        Self::new(value)
    }
}

impl From<ServerId> for String {
    fn from(value: ServerId) -> String {
        value.0
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn player_keys_parse_back_and_other_shapes_do_not() {
        let id = ServerId::new("local-1").unwrap();
        assert_eq!(NatsNames::parse_player_key(&NatsNames::player_key(&id, 42)), Some((id, 42)));
        for bad in ["local-1", "local-1.x", "bad id.1", ".1"] {
            assert_eq!(NatsNames::parse_player_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_derive_from_the_namespace() {
        let names = Namespace::new("space-ships").unwrap().names();
        assert_eq!(names.bucket(Bucket::Servers), "bevygap_space-ships_servers");
        let id = ServerId::new("local-1").unwrap();
        assert_eq!(names.server_control_subject(&id), "bevygap.space-ships.server.local-1.control");
        assert_eq!(names.inbox_prefix(NatsRole::GameServer), "_INBOX_bevygap_space-ships_gameserver");
        assert_eq!(names.inbox_prefix(NatsRole::Matchmaker), "_INBOX_bevygap_space-ships_matchmaker");
        let other = Namespace::new("other").unwrap().names();
        for b in Bucket::ALL {
            assert_ne!(names.bucket(b), other.bucket(b));
        }
    }

    #[test]
    fn refuses_names_nats_would_reject() {
        for bad in ["", "a.b", "a b", "a>", "a*", "ünï", &"x".repeat(33)] {
            let err = Namespace::new(bad).unwrap_err();
            assert!(err.to_string().contains("invalid namespace"), "{err}");
        }
        assert!(ServerId::new("a.b").is_err());
        assert!(serde_json::from_str::<ServerId>("\"x>y\"").is_err());
    }
}
