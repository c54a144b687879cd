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
    /// The address the request came from (after trusted-proxy resolution); only it may resume
    /// or cancel this join, so knowing a request id is not enough to take someone's token.
    pub peer_ip: Option<String>,
    pub region: Option<String>,
    pub created_at: f64,
    pub deadline: f64,
    /// Servers this join was placed on that were lost before it got a token.
    pub lost_servers: u32,
}

impl JoinTicket {
    /// Placements lost before a join fails with `server_failed` instead of trying again, so a
    /// game server that cannot start does not make the matchmaker launch servers in a loop.
    pub const MAX_LOST_SERVERS: u32 = 3;
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

/// Every progress message of the join, in order; streams send each one they have not yet
/// sent. Not reflected: a ready message carries the player's ConnectToken.
#[derive(Component, Debug, Clone)]
pub struct JoinUpdates(Vec<JoinProgress>);

impl JoinUpdates {
    pub fn new(first: JoinProgress) -> Self {
        Self(vec![first])
    }

    /// Publishes a new message to every stream following this request.
    pub fn push(&mut self, next: JoinProgress) {
        self.0.push(next);
    }

    /// How many messages there are; a stream that has sent this many is up to date.
    #[allow(clippy::len_without_is_empty)] // never empty: created with a first message
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The message at `index`, if published.
    pub fn get(&self, index: usize) -> Option<&JoinProgress> {
        self.0.get(index)
    }

    /// The most recent message.
    pub fn latest(&self) -> &JoinProgress {
        self.0.last().expect("created with a first message")
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
