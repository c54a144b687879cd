use std::collections::HashMap;

use bevy::prelude::*;
use bevygap_shared::protocol::{JoinError, JoinProgress, ReadyPayload, Transport, ValidJoinRequest};

use crate::config::GameKey;

/// A player's join request: what they asked for and by when it must be answered.
#[derive(Component, Debug, Clone, Reflect)]
#[reflect(Component)]
pub struct JoinTicket {
    pub request_id: String,
    pub game: String,
    pub version: String,
    pub transport: Transport,
    pub client_ip: Option<String>,
    pub region: Option<String>,
    pub created_at: f64,
    pub deadline: f64,
}

/// The validated request, typed, for the systems that place it.
#[derive(Component, Debug, Clone)]
pub struct JoinSpec {
    pub request: ValidJoinRequest,
    pub game: GameKey,
}

/// Where the request is.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq, Reflect)]
#[reflect(Component)]
pub enum JoinPhase {
    /// Waiting for a seat.
    Queued,
    /// Has a seat on a server that is still starting.
    WaitingForServer,
    /// Token minted; waiting for NATS to acknowledge the client grant.
    IssuingToken,
    /// Terminal: the player has a token.
    Ready,
    /// Terminal: failed or cancelled.
    Failed,
}

impl JoinPhase {
    pub fn is_terminal(self) -> bool {
        matches!(self, JoinPhase::Ready | JoinPhase::Failed)
    }
}

/// The seat a request holds.
#[derive(Component, Debug, Clone, Reflect)]
#[reflect(Component)]
pub struct Placement {
    pub server: Entity,
    pub client_id: u64,
}

/// The latest progress message and a sequence number streams compare against. Not
/// reflected: a ready message carries the player's ConnectToken.
#[derive(Component, Debug, Clone)]
pub struct JoinUpdates {
    pub seq: u32,
    pub latest: JoinProgress,
}

impl JoinUpdates {
    pub fn new(latest: JoinProgress) -> Self {
        Self { seq: 1, latest }
    }

    /// Publishes a new message to every stream following this request.
    pub fn push(&mut self, next: JoinProgress) {
        self.seq += 1;
        self.latest = next;
    }
}

/// The ready payload waiting for its grant to be stored.
#[derive(Component, Debug, Clone)]
pub struct PendingReady(pub ReadyPayload);

/// When the request reached a terminal phase; it is kept a while so a retry with the same
/// request id gets the same answer.
#[derive(Component, Debug, Clone, Copy, Reflect)]
#[reflect(Component)]
pub struct FinishedAt(pub f64);

/// Request id → entity, for idempotent retries, streams and cancel.
#[derive(Resource, Debug, Default)]
pub struct RequestIndex(pub HashMap<String, Entity>);

/// Ask to end a request with an error (deadline, cancel, server failure).
#[derive(Message, Debug, Clone)]
pub struct FailJoin {
    pub request: Entity,
    pub error: JoinError,
}
