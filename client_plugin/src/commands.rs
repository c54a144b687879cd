//! How a game starts and stops a join: two events, and `Commands` sugar for them.

use bevy::prelude::*;

/// Ask the matchmaker for a game server and connect to it. Ignored (with a warning) while a
/// join or connection is under way; after a failure it starts a new join with a new request id.
#[derive(Event, Debug, Clone, Copy, Default)]
pub struct BevygapConnect;

/// Stop the join in progress: withdraws the request from the matchmaker, or disconnects the
/// Lightyear client once it has a token. The state returns to `Idle`.
#[derive(Event, Debug, Clone, Copy, Default)]
pub struct BevygapCancel;

/// `commands.bevygap_connect_client()` and `commands.bevygap_cancel()`.
pub trait BevygapCommandsExt {
    /// Triggers [`BevygapConnect`].
    fn bevygap_connect_client(&mut self);
    /// Triggers [`BevygapCancel`].
    fn bevygap_cancel(&mut self);
}

impl BevygapCommandsExt for Commands<'_, '_> {
    fn bevygap_connect_client(&mut self) {
        self.trigger(BevygapConnect);
    }

    fn bevygap_cancel(&mut self) {
        self.trigger(BevygapCancel);
    }
}
