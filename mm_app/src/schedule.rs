//! The order of the matchmaker's work within one tick, and how plugins declare what they need.

use bevy::prelude::*;

/// The matchmaker's system sets in `Update`, run in this order; with several replicas, only
/// while this replica owns the namespace (the ownership plugin gates them on
/// [`crate::fence::acting`]).
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchmakerSystems {
    /// Bring in what async tasks delivered (NATS updates, provider outcomes).
    Ingest,
    /// Server records, provider outcomes, server timers.
    Servers,
    /// Player connects and leaves.
    Players,
    /// Form matches from the pools and place each as one unit.
    Matches,
    /// Place joins, issue tokens, turn stored grants into answers.
    Joins,
    /// Timers: token expiry, empty servers.
    Housekeeping,
    /// Apply failures and ended tokens.
    Finish,
    /// Remove what is gone.
    Cleanup,
    /// Hand this tick's NATS writes to the bridge.
    Flush,
}

/// Orders [`MatchmakerSystems`]; every matchmaker plugin adds it if it is missing.
pub struct MatchmakerSchedulePlugin;

impl MatchmakerSystems {
    /// Every set, in the order they run.
    pub const ALL: [MatchmakerSystems; 9] = [
        MatchmakerSystems::Ingest,
        MatchmakerSystems::Servers,
        MatchmakerSystems::Players,
        MatchmakerSystems::Matches,
        MatchmakerSystems::Joins,
        MatchmakerSystems::Housekeeping,
        MatchmakerSystems::Finish,
        MatchmakerSystems::Cleanup,
        MatchmakerSystems::Flush,
    ];
}

impl Plugin for MatchmakerSchedulePlugin {
    fn build(&self, app: &mut App) {
        // In the order of `ALL`, each set after the one before it.
        for pair in MatchmakerSystems::ALL.windows(2) {
            app.configure_sets(Update, pair[0].before(pair[1]));
        }
    }
}

/// Adds `plugin` unless a plugin of its type is already there: how a plugin declares another
/// it depends on.
pub(crate) fn require<P: Plugin>(app: &mut App, plugin: impl FnOnce() -> P) {
    if !app.is_plugin_added::<P>() {
        app.add_plugins(plugin());
    }
}

/// Stops the app at build time with a message naming what is missing: for seams a plugin
/// cannot choose on its own (which provider, which NATS bridge).
pub(crate) fn expect_resource<R: Resource>(app: &App, plugin: &str, hint: &str) {
    assert!(app.world().contains_resource::<R>(), "{plugin} needs {}: {hint}", std::any::type_name::<R>());
}
