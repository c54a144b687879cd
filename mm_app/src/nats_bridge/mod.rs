//! The seam between the matchmaker and NATS. Systems never call NATS: they write
//! [`NatsCommand`] messages, and read what NATS reported as one Message per fact
//! ([`ServerReported`], [`PlayerGone`], [`TakenOver`]…, delivered in order: see [`reports`]).
//! Behind the seam sits either [`NatsBridgePlugin`] (real JetStream KV, watched and written on
//! the tokio runtime) or `MemoryNatsPlugin` (feature `harness`: an in-memory stand-in for tests
//! that step an App with no nats-server).

#[cfg(any(test, feature = "harness"))]
mod memory;
mod real;
pub mod reports;
mod watch;

use bevy::prelude::*;
use std::collections::HashSet;

use bevygap_shared::naming::ServerId;
use bevygap_shared::nats::LinkStatus;
use bevygap_shared::records::{ClientGrant, MatchRecord, RequestRecord, ServerCommand, SessionRecord};

use crate::game::GameKey;

#[cfg(any(test, feature = "harness"))]
pub use memory::{MemoryNats, MemoryNatsPlugin};
pub use real::{Nats, NatsBridgePlugin};
pub use reports::{
    GrantStored, InheritedState, LinkChanged, MatchStored, PlayerGone, PlayerReported, RequestStored, ServerRecordGone,
    ServerReported, SnapshotRead, TakenOver,
};

/// A write the matchmaker asks of NATS; the bridge performs it after this tick's systems.
#[derive(Message, Debug, Clone)]
pub enum NatsCommand {
    /// Write the client grant and its session record; answered by [`GrantStored`]
    /// (the token is returned only after the game server can see the grant).
    StoreGrant(Box<GrantWrite>),
    /// Write the match a server is to run, before its players get tokens; answered by
    /// [`MatchStored`].
    StoreMatch(Box<MatchWrite>),
    /// Remove the match record of a server (it ended, or its match broke up).
    DeleteMatch { server_id: ServerId },
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
    /// Keep a join waiting for its answer in the `requests` bucket, for the next owner;
    /// answered by [`RequestStored`] once written.
    PutRequest(Box<RequestRecord>),
    /// Remove a join that got its answer from the `requests` bucket.
    DeleteRequest { request_id: String },
}

/// A client grant to store for a join, with the session record it belongs to.
#[derive(Debug, Clone)]
pub struct GrantWrite {
    pub join: Entity,
    pub grant: ClientGrant,
    pub session: SessionRecord,
}

/// A match record to store for a match entity.
#[derive(Debug, Clone)]
pub struct MatchWrite {
    pub game_match: Entity,
    pub record: MatchRecord,
}

/// The keys of the buckets the matchmaker follows, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvSnapshot {
    pub servers: HashSet<ServerId>,
    pub players: HashSet<(ServerId, u64)>,
}

/// The link to NATS as the systems see it: while it is down nothing is launched and new joins
/// are refused with `unavailable`; joins still waiting fail once it has been down a moment.
#[derive(Resource, Debug, Clone, Copy, PartialEq)]
pub struct NatsLinkState {
    pub status: LinkStatus,
    /// Since when (matchmaker clock) the link has been down.
    pub down_since: Option<f64>,
}

impl Default for NatsLinkState {
    fn default() -> Self {
        Self { status: LinkStatus::Connected, down_since: None }
    }
}

impl NatsLinkState {
    /// Whether writes and watches work now.
    pub fn is_up(&self) -> bool {
        self.status == LinkStatus::Connected
    }

    /// Whether the link has been down for longer than `grace` seconds at `now`.
    pub fn down_for(&self, grace: f64, now: f64) -> bool {
        self.down_since.is_some_and(|since| now - since > grace)
    }
}

/// Follows [`LinkChanged`] into [`NatsLinkState`].
fn track_link(mut changes: MessageReader<LinkChanged>, mut link: ResMut<NatsLinkState>, time: Res<Time<Real>>) {
    for LinkChanged(status) in changes.read() {
        if *status != link.status {
            tracing::warn!("NATS link: {:?} -> {status:?}", link.status);
            if *status == LinkStatus::Connected {
                crate::observe::nats_reconnected();
            }
        }
        link.status = *status;
        link.down_since = match (*status, link.down_since) {
            (LinkStatus::Connected, _) => None,
            (_, Some(since)) => Some(since),
            (_, None) => Some(crate::clock::now(&time)),
        };
    }
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

/// Adds the Messages of the seam and the link state (idempotent: every side may call it).
pub(crate) fn add_bridge_messages(app: &mut App) {
    app.add_message::<NatsCommand>();
    reports::add_report_messages(app);
    if !app.world().contains_resource::<NatsLinkState>() {
        app.init_resource::<NatsLinkState>()
            .add_systems(Update, track_link.in_set(crate::schedule::MatchmakerSystems::Ingest).after(IngestEvents));
    }
}

/// The systems that turn what async tasks reported into Messages; link tracking runs after
/// them.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IngestEvents;
