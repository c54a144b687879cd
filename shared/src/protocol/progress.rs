use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{CertDigest, JoinError};

/// The network transport a game client connects with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "bevy", derive(bevy::reflect::Reflect), type_path = "bevygap")]
pub enum Transport {
    /// Native clients: plain UDP.
    #[default]
    Udp,
    /// Browser (and native) clients: WebTransport over QUIC with a pinned certificate digest.
    #[serde(rename = "webtransport")]
    WebTransport,
}

/// Where a game server can be reached, per transport. A server may offer one or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "bevy", derive(bevy::reflect::Reflect), type_path = "bevygap")]
pub struct ServerAddresses {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webtransport: Option<SocketAddr>,
}

impl ServerAddresses {
    /// The address for `transport`, if the server offers it.
    pub fn get(&self, transport: Transport) -> Option<SocketAddr> {
        match transport {
            Transport::Udp => self.udp,
            Transport::WebTransport => self.webtransport,
        }
    }
}

/// What a client needs to connect: sent once, when its server is ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyPayload {
    /// The Lightyear `ConnectToken`, 2048 bytes, standard base64.
    pub connect_token: String,
    /// The transport the token was issued for.
    pub transport: Transport,
    /// Every address the server offers; the token lists the one for `transport`.
    pub addresses: ServerAddresses,
    /// SHA-256 of the server's WebTransport certificate, when it offers WebTransport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_digest: Option<CertDigest>,
    /// The request this answers (client-chosen or assigned), for support and logs.
    pub request_id: String,
    /// The game session the player was placed in.
    pub session_id: String,
    /// Seconds until the token can no longer be used to connect.
    pub token_expires_in_secs: u32,
}

/// The `match_found` message: who the player plays with. Ids are public ids, never request
/// ids (a request id lets its holder's address resume the join).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchFound {
    pub request_id: String,
    /// The match, as the game server's `BevygapMatch` names it.
    pub match_id: String,
    /// The player's team, counting from 0.
    pub team: u32,
    /// The player's own public id (what teammates and the game server see).
    pub public_id: String,
    /// The public ids of the others on the player's team.
    pub teammates: Vec<String>,
}

/// One message of a streamed join: zero or more progress steps, then exactly one of
/// `Ready` or `Failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum JoinProgress {
    /// Waiting for the matchmaker to take the request.
    Queued { request_id: String },
    /// In a match mode's pool, looking for players to match with: `stage` is how many
    /// relaxation steps the player's wait has passed, `pool` how many players wait in the
    /// mode. Sent when the stage changes, and at most every second when only the pool does.
    Searching { request_id: String, stage: u32, pool: u32 },
    /// Matched: the player's team and teammates are known; a server is found or started next.
    MatchFound(MatchFound),
    /// Looking for a running server with a free seat.
    FindingServer { request_id: String },
    /// A new server is starting for this player.
    ServerStarting { request_id: String },
    /// Terminal: connect with this.
    Ready(ReadyPayload),
    /// Terminal: the join failed.
    Failed(JoinError),
}

impl JoinProgress {
    /// Whether this is the last message of the stream.
    pub fn is_terminal(&self) -> bool {
        matches!(self, JoinProgress::Ready(_) | JoinProgress::Failed(_))
    }

    /// The `status` field of the message on the wire (`queued`, `ready`, `failed`…).
    pub fn status(&self) -> &'static str {
        match self {
            JoinProgress::Queued { .. } => "queued",
            JoinProgress::Searching { .. } => "searching",
            JoinProgress::MatchFound(_) => "match_found",
            JoinProgress::FindingServer { .. } => "finding_server",
            JoinProgress::ServerStarting { .. } => "server_starting",
            JoinProgress::Ready(_) => "ready",
            JoinProgress::Failed(_) => "failed",
        }
    }

    /// A short human description, for a progress label.
    pub fn describe(&self) -> &str {
        match self {
            JoinProgress::Queued { .. } => "Queued",
            JoinProgress::Searching { .. } => "Searching for players",
            JoinProgress::MatchFound(_) => "Match found",
            JoinProgress::FindingServer { .. } => "Finding a server",
            JoinProgress::ServerStarting { .. } => "Starting a server",
            JoinProgress::Ready(_) => "Ready",
            JoinProgress::Failed(e) => &e.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    #[test]
    fn wire_shapes_are_stable() {
        let ready = JoinProgress::Ready(ReadyPayload {
            connect_token: "AAAA".into(),
            transport: Transport::WebTransport,
            addresses: ServerAddresses { udp: None, webtransport: Some("127.0.0.1:5000".parse().unwrap()) },
            cert_digest: Some(CertDigest::from_bytes(&[1; 32])),
            request_id: "r".into(),
            session_id: "s".into(),
            token_expires_in_secs: 30,
        });
        let v = serde_json::to_value(&ready).unwrap();
        assert_eq!(v["status"], "ready");
        assert_eq!(v["transport"], "webtransport");
        assert_eq!(v["addresses"]["webtransport"], "127.0.0.1:5000");
        assert_eq!(v["cert_digest"].as_str().unwrap().len(), 64);
        assert_eq!(serde_json::from_value::<JoinProgress>(v).unwrap(), ready);

        let failed = JoinProgress::Failed(ErrorCode::Timeout.into());
        let v = serde_json::to_value(&failed).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status":"failed","code":"timeout","message":"No game server was ready in time."})
        );
        assert!(failed.is_terminal());
        assert_eq!(failed.status(), "failed");
        let queued = JoinProgress::Queued { request_id: "r".into() };
        assert_eq!(serde_json::to_value(&queued).unwrap()["status"], queued.status());
        assert!(!JoinProgress::Queued { request_id: "r".into() }.is_terminal());

        let searching = JoinProgress::Searching { request_id: "r".into(), stage: 1, pool: 9 };
        assert_eq!(
            serde_json::to_value(&searching).unwrap(),
            serde_json::json!({"status": "searching", "request_id": "r", "stage": 1, "pool": 9})
        );
        let found = JoinProgress::MatchFound(MatchFound {
            request_id: "r".into(),
            match_id: "m1".into(),
            team: 1,
            public_id: "p-ann".into(),
            teammates: vec!["p-bob".into()],
        });
        let v = serde_json::to_value(&found).unwrap();
        assert_eq!(v["status"], "match_found");
        assert_eq!(v["teammates"], serde_json::json!(["p-bob"]));
        assert_eq!(serde_json::from_value::<JoinProgress>(v).unwrap(), found);
        assert!(!found.is_terminal());
    }
}
