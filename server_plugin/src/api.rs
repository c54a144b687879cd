//! What a game sees: the server's lifecycle state, its status, player join/leave messages,
//! control requests and run conditions.

use std::collections::BTreeMap;

use bevy::prelude::*;
use bevygap_shared::nats::LinkStatus;
use bevygap_shared::protocol::{ServerAddresses, Transport};
use bevygap_shared::records::ServerStatus;

/// The server's lifecycle, the game-server counterpart of the client plugin's
/// `BevygapClientState`. Use it with `in_state`/`OnEnter` like any Bevy state.
#[derive(States, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Reflect)]
pub enum BevygapServerState {
    /// Booting: sockets opening, registering with the matchmaker.
    #[default]
    Starting,
    /// Listening and registered: accepting the players the matchmaker sends.
    Ready,
    /// Admitting no one new; exits once the last player leaves.
    Draining,
    /// Disconnecting everyone, removing records, then exiting the app.
    ShuttingDown,
}

impl BevygapServerState {
    /// The status the matchmaker sees for this phase.
    pub fn record_status(self) -> ServerStatus {
        match self {
            BevygapServerState::Starting => ServerStatus::Starting,
            BevygapServerState::Ready => ServerStatus::Ready,
            BevygapServerState::Draining | BevygapServerState::ShuttingDown => ServerStatus::Draining,
        }
    }

    /// Whether new players may join in this phase.
    pub fn admits_players(self) -> bool {
        matches!(self, BevygapServerState::Starting | BevygapServerState::Ready)
    }
}

/// Asks the server to drain or shut down. Written by the plugin itself (NATS control subject,
/// SIGTERM, idle timeout, certificate expiry), and by games that want to end a server.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub enum ServerControl {
    /// Stop admitting; exit once the last player has left.
    Drain {
        /// Why, for the logs and [`BevygapStatus::stop_reason`].
        reason: String,
    },
    /// Disconnect everyone cleanly, remove the records and exit now.
    Shutdown {
        /// Why, for the logs and [`BevygapStatus::stop_reason`].
        reason: String,
    },
}

/// A player finished connecting (written once per connection).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct PlayerJoined {
    /// The client's `ClientOf` entity.
    pub entity: Entity,
    /// The netcode client id the matchmaker issued.
    pub client_id: u64,
    /// The matchmaker session the client was placed in (empty if admitted without a grant).
    pub session_id: String,
    /// The transport it came over.
    pub transport: Transport,
}

/// A player is gone, however it left (disconnect, timeout, kick, shutdown).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct PlayerLeft {
    /// The netcode client id.
    pub client_id: u64,
    /// The matchmaker session it was in.
    pub session_id: String,
}

/// Marks a connected, admitted player's `ClientOf` entity.
#[derive(Component, Debug, Clone, PartialEq, Eq, Reflect)]
pub struct ConnectedPlayer {
    /// The netcode client id.
    pub client_id: u64,
    /// The matchmaker session.
    pub session_id: String,
    /// Unix milliseconds of the connection.
    pub connected_at_ms: u64,
}

/// One connected player, as listed in [`BevygapStatus::players`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerEntry {
    /// The client's `ClientOf` entity.
    pub entity: Entity,
    /// The matchmaker session it was placed in.
    pub session_id: String,
    /// The transport it came over.
    pub transport: Transport,
    /// Unix milliseconds of the connection.
    pub connected_at_ms: u64,
}

/// The server's live status: how it is doing with NATS, its sockets and players.
#[derive(Resource, Debug, Clone, Default)]
pub struct BevygapStatus {
    /// The NATS link as last reported.
    pub nats: Option<LinkStatus>,
    /// Whether NATS has acknowledged a server record at least once.
    pub registered: bool,
    /// The status in the last server record NATS acknowledged: what the matchmaker sees.
    pub reported: Option<ServerStatus>,
    /// Whether the Lightyear server is listening on every transport.
    pub listening: bool,
    /// The public addresses clients dial, with any port-0 bind resolved.
    pub addresses: ServerAddresses,
    /// Connected players by client id.
    pub players: BTreeMap<u64, PlayerEntry>,
    /// Why the server is draining or shutting down, once it is.
    pub stop_reason: Option<String>,
}

impl BevygapStatus {
    /// Number of connected players.
    pub fn player_count(&self) -> usize {
        self.players.len()
    }
}

/// System sets, for ordering game systems around the plugin's.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub enum BevygapSystems {
    /// Applies what arrived from NATS and the OS (link changes, control commands, signals).
    Receive,
    /// Lifecycle decisions (ready, draining, exit).
    Lifecycle,
    /// Sends records and status to NATS.
    Report,
}

/// Run condition: the server is admitting players.
pub fn admitting_players(phase: Option<Res<State<BevygapServerState>>>) -> bool {
    phase.is_some_and(|p| p.admits_players())
}

/// Run condition: at least one player is connected.
pub fn has_players(status: Option<Res<BevygapStatus>>) -> bool {
    status.is_some_and(|s| !s.players.is_empty())
}

/// Run condition: the NATS link is up.
pub fn nats_connected(status: Option<Res<BevygapStatus>>) -> bool {
    status.is_some_and(|s| s.nats == Some(LinkStatus::Connected))
}
