//! The Bevygap matchmaker: a headless Bevy app in which join requests, game sessions, game
//! servers and issued ConnectTokens are entities. Systems move them through their lifecycles;
//! async tasks do the NATS and provider I/O and report back through inboxes; players reach it
//! over JSON-RPC on a public endpoint, operators over the full Bevy Remote Protocol on an
//! admin endpoint.
//!
//! Each concern is its own plugin, so tests build an App with exactly the parts they need:
//! [`nats_bridge::NatsBridgePlugin`], [`servers::ServersPlugin`], [`requests::RequestsPlugin`],
//! [`tokens::TokensPlugin`], [`sessions::SessionsPlugin`], [`providers::ProviderPlugin`] and
//! [`endpoints::EndpointsPlugin`], ordered by [`MatchmakerSet`].

pub mod app;
pub mod clock;
pub mod config;
pub mod endpoints;
pub mod harness;
pub mod nats_bridge;
pub mod providers;
pub mod requests;
pub mod servers;
pub mod sessions;
pub mod tokens;
pub mod wake;

use bevy::prelude::*;

/// The order of the matchmaker's work within one tick.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchmakerSet {
    /// Bring in what async tasks delivered.
    Ingest,
    /// Server records and provider outcomes.
    Servers,
    /// Player connects and leaves.
    Players,
    /// Place joins and issue tokens.
    Requests,
    /// Timers: token expiry, empty servers.
    Housekeeping,
    /// Apply failures and ended tokens.
    Finish,
    /// Remove what is gone.
    Cleanup,
}

/// Orders the sets in `Update`.
pub struct MatchmakerSetsPlugin;

impl Plugin for MatchmakerSetsPlugin {
    fn build(&self, app: &mut App) {
        app.configure_sets(
            Update,
            (
                MatchmakerSet::Ingest,
                MatchmakerSet::Servers,
                MatchmakerSet::Players,
                MatchmakerSet::Requests,
                MatchmakerSet::Housekeeping,
                MatchmakerSet::Finish,
                MatchmakerSet::Cleanup,
            )
                .chain(),
        );
    }
}
