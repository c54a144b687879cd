use std::collections::HashMap;

use bevy::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::protocol::{CertDigest, ServerAddresses, Transport};

use crate::config::GameKey;

/// A game server the matchmaker started or adopted from NATS.
#[derive(Component, Debug, Clone, Reflect)]
#[reflect(Component)]
pub struct GameServer {
    pub server_id: String,
    pub game: String,
    pub version: String,
    pub provider: String,
}

/// Typed identity of a server, for lookups (not shown over BRP; `GameServer` mirrors it).
#[derive(Component, Debug, Clone)]
pub struct ServerKey {
    pub id: ServerId,
    pub game: GameKey,
}

/// Where a server is in its life, as the matchmaker sees it.
#[derive(Component, Debug, Clone, Copy, PartialEq, Reflect)]
#[reflect(Component)]
pub enum ServerPhase {
    /// Launched; waiting for it to report itself ready in NATS.
    Starting { since: f64 },
    /// Reporting ready: takes players.
    Ready,
    /// Its NATS record expired or was deleted while it was not being stopped: perhaps a crash,
    /// perhaps only a NATS outage. No new players go there; it is given up only if it stays
    /// silent past a grace period, so a NATS hiccup never kills a healthy server.
    Unreported { since: f64 },
    /// Finishing its players; takes no one new.
    Draining,
    /// Asked to stop; waiting for it to go.
    Stopping { since: f64 },
}

impl ServerPhase {
    /// Whether new players may be placed on it.
    pub fn accepts_players(self) -> bool {
        matches!(self, ServerPhase::Starting { .. } | ServerPhase::Ready)
    }
}

/// What clients need to reach the server, from its record.
#[derive(Component, Debug, Clone, Default, Reflect)]
#[reflect(Component)]
pub struct ServerEndpoints {
    pub addresses: ServerAddresses,
    pub cert_digest: Option<String>,
}

impl ServerEndpoints {
    /// The address for `transport`, if offered.
    pub fn address(&self, transport: Transport) -> Option<std::net::SocketAddr> {
        self.addresses.get(transport)
    }

    /// The certificate digest, typed.
    pub fn digest(&self) -> Option<CertDigest> {
        self.cert_digest.as_deref().and_then(|d| CertDigest::parse(d).ok())
    }
}

/// Since when the server has had no players and no promised seats.
#[derive(Component, Debug, Clone, Copy, Default, Reflect)]
#[reflect(Component)]
pub struct EmptySince(pub Option<f64>);

/// Server id → entity.
#[derive(Resource, Debug, Default)]
pub struct ServerIndex(pub HashMap<ServerId, Entity>);

/// A server is gone (process exited, heartbeat stopped, never started): its records are
/// cleaned up and its waiting joins re-placed.
#[derive(Message, Debug, Clone)]
pub struct ServerLost {
    pub server: Entity,
    pub reason: String,
}
