//! The seam between the matchmaker and NATS. Systems never call NATS: they write
//! [`NatsCommand`] messages, and read what NATS reported as [`NatsEvent`] messages. Behind the
//! seam sits either [`NatsBridgePlugin`] (real JetStream KV, watched and written on the tokio
//! runtime) or [`MemoryNatsPlugin`] (an in-memory stand-in for tests that step an App with no
//! nats-server).

mod memory;
mod real;
mod watch;

use bevy::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::records::{ClientGrant, PlayerRecord, ServerCommand, ServerRecord, SessionRecord};

use crate::config::GameKey;

pub use memory::{MemoryNats, MemoryNatsPlugin};
pub use real::{Nats, NatsBridgePlugin};

/// A write the matchmaker asks of NATS; the bridge performs it after this tick's systems.
#[derive(Message, Debug, Clone)]
pub enum NatsCommand {
    /// Write the client grant and its session record; answered by [`NatsEvent::GrantStored`]
    /// (the token is returned only after the game server can see the grant).
    StoreGrant(Box<GrantWrite>),
    /// Remove a client's grant, so its token can no longer be admitted.
    DeleteGrant { server_id: ServerId, client_id: u64 },
    /// Remove a session record.
    DeleteSession { session_id: String },
    /// Remove a server record (a server normally does this itself on a clean exit).
    DeleteServer { server_id: ServerId },
    /// Remove a player record left behind by a server that vanished.
    DeletePlayer { server_id: ServerId, client_id: u64 },
    /// Publish a command on a server's control subject.
    Control { server_id: ServerId, command: ServerCommand },
    /// Tell an autoscaler that `waiting` players of `game` wait for a free seat (fleet).
    NeedCapacity { game: GameKey, waiting: usize },
}

/// A client grant to store for a join, with the session record it belongs to.
#[derive(Debug, Clone)]
pub struct GrantWrite {
    pub join: Entity,
    pub grant: ClientGrant,
    pub session: SessionRecord,
}

/// Something changed in NATS that the matchmaker follows.
#[derive(Message, Debug, Clone)]
pub enum NatsEvent {
    /// A game server registered or heartbeated.
    ServerPut(Box<ServerRecord>),
    /// A server record was deleted or expired (heartbeats stopped).
    ServerGone(ServerId),
    /// A game server reports a player connected.
    PlayerJoined(PlayerRecord),
    /// A player record was deleted or expired.
    PlayerLeft { server_id: ServerId, client_id: u64 },
    /// The answer to [`NatsCommand::StoreGrant`].
    GrantStored { join: Entity, server_id: ServerId, client_id: u64, result: Result<(), BridgeError> },
}

/// What the scale hook publishes on `bevygap.<ns>.fleet.need_capacity.<game>`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CapacityCall {
    pub game: String,
    pub version: String,
    /// Players waiting for a seat on this game when the call was made.
    pub waiting: usize,
}

/// A NATS write that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    #[error("cannot write to the {bucket} bucket: {reason}")]
    Write { bucket: &'static str, reason: String },
    #[error("cannot encode a {what} record: {reason}")]
    Encode { what: &'static str, reason: String },
}

/// Adds the two message types of the seam (idempotent: every side may call it).
pub(crate) fn add_bridge_messages(app: &mut App) {
    app.add_message::<NatsCommand>().add_message::<NatsEvent>();
}
