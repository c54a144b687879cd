//! Where the client stands, as a Bevy state so games can `run_if(in_state(..))` and react
//! with `OnEnter`.

use bevy::prelude::*;

/// The one state of the Bevygap client.
///
/// `Idle → Requesting → WaitingForServer → Connecting → Connected`, with `Failed` reachable
/// from every step but `Idle`, and `Idle` again after a cancel or a requested disconnect.
/// `Requesting` covers retries with backoff too: the matchmaker has not answered yet.
#[derive(States, Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Reflect)]
pub enum BevygapClientState {
    /// Nothing in progress.
    #[default]
    Idle,
    /// Asking the matchmaker (or waiting to ask again after a transient failure).
    Requesting,
    /// The matchmaker took the request and is finding or starting a server.
    WaitingForServer,
    /// A token arrived; the Lightyear client is connecting to the game server.
    Connecting,
    /// The Lightyear client is connected.
    Connected,
    /// The last attempt failed; a [`BevygapFailed`](crate::BevygapFailed) message says why.
    Failed,
}

impl BevygapClientState {
    /// Whether a join or connection is under way or established (a new connect is refused).
    pub fn is_busy(self) -> bool {
        !matches!(self, Self::Idle | Self::Failed)
    }
}
