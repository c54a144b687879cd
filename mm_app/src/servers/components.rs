use std::collections::HashMap;

use bevy::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::protocol::{CertDigest, ServerAddresses, Transport};

use super::phase::LossReason;
use crate::game::GameKey;

/// A game server the matchmaker started or adopted from NATS: who it is and what it runs.
/// Launched and adopted servers alike have endpoints (empty until the record names them),
/// an emptiness clock and a last-heard time (none until the first report).
#[derive(Component, Debug, Clone, Reflect)]
#[require(ServerEndpoints, EmptySince, LastHeard)]
#[reflect(Component)]
#[type_path = "bevygap"]
pub struct GameServer {
    pub id: ServerId,
    pub game: GameKey,
    /// The provider that started it (`local`, `edgegap`…), from its record.
    pub provider: String,
}

/// The server runs one formed match (`match_id`): nobody else is seated on it, and its match
/// record is deleted with it.
#[derive(Component, Debug, Clone, PartialEq, Eq, Reflect)]
#[reflect(Component)]
#[type_path = "bevygap"]
pub struct HostsMatch {
    pub match_id: String,
}

/// What clients need to reach the server, from its record.
#[derive(Component, Debug, Clone, Default, Reflect)]
#[reflect(Component)]
#[type_path = "bevygap"]
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
#[type_path = "bevygap"]
pub struct EmptySince(pub Option<f64>);

/// When the server's record was last written (a registration or a heartbeat), on the
/// matchmaker's clock; `None` until it first reports.
#[derive(Component, Debug, Clone, Copy, Default, Reflect)]
#[reflect(Component)]
#[type_path = "bevygap"]
pub struct LastHeard(pub Option<f64>);

/// Server id → entity.
#[derive(Resource, Debug, Default)]
pub struct ServerIndex(pub HashMap<ServerId, Entity>);

/// A server is gone (process exited, heartbeat stopped, never started): its records are
/// cleaned up and the joins waiting for it are placed again.
#[derive(Message, Debug, Clone)]
pub struct ServerLost {
    pub server: Entity,
    pub reason: LossReason,
}

/// The provider refused a seat it was asked to hold ([`crate::providers::ProviderEvent::SeatRefused`]):
/// the join holding it fails.
#[derive(Message, Debug, Clone)]
pub struct SeatRefused {
    pub server: Entity,
    pub client_id: u64,
    pub reason: String,
}
