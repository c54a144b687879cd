//! Matches as entities: the glue between the pure engine ([`crate::matching`]) and the join
//! flow. A join of a `match` mode waits in its pool (its game version and mode) instead of
//! taking the next free seat:
//!
//! 1. **Pass.** Every [`MatchSettings::pass_interval`] each pool is gathered into tickets (a
//!    party is one ticket once every member has joined) and the engine forms what matches the
//!    rules allow (`forming.rs`). Players still waiting hear `searching`; those past their
//!    deadline fail with `no_match`.
//! 2. **Formed.** Each match is a [`GameMatch`] entity; its joins get [`InMatch`] and hear
//!    `match_found` with their team and teammates' public ids.
//! 3. **Hosted.** [`crate::placement::plan_matches`] (pure) gives the match one server that
//!    hosts nothing else ([`crate::servers::HostsMatch`]), empty or launched for it, and a
//!    seat there for every player or none (`hosting.rs`).
//! 4. **Recorded.** The match record is written for the game server (`<server_id>.match` in
//!    the `clients` bucket; the server plugin's `BevygapMatch`), and only once NATS has it do
//!    the players' tokens go out, so the game knows the teams before the first one arrives.
//! 5. **Ends.** A player leaving before anyone has a token breaks the match up: the others
//!    search again with the age they had (`breakup.rs`). After that the match stands, and ends
//!    with its server, whose record goes with it.

mod breakup;
mod components;
mod forming;
mod hosting;
pub mod tickets;

use std::time::Duration;

use bevy::prelude::*;

pub use breakup::{INHERITED_MATCH_WAIT_SECS, InheritedMatches};
pub use components::{GameMatch, InMatch, LastSearching, POOL_UPDATE_SECS};

use crate::joins::JoinsPlugin;
use crate::schedule::{MatchmakerSystems, require};

/// How often pools are matched.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchSettings {
    /// Time between two passes of the engine over every pool (`--match-interval-ms`): shorter
    /// answers sooner, longer gives the engine more players to choose from per pass.
    pub pass_interval: Duration,
}

impl Default for MatchSettings {
    fn default() -> Self {
        Self { pass_interval: Duration::from_millis(100) }
    }
}

/// Forms matches from the pools and places each as one unit. Declares the join plugin it
/// builds on.
pub struct MatchesPlugin;

impl Plugin for MatchesPlugin {
    fn build(&self, app: &mut App) {
        require(app, || JoinsPlugin);
        app.init_resource::<MatchSettings>()
            .init_resource::<InheritedMatches>()
            .register_type::<GameMatch>()
            .register_type::<InMatch>()
            .add_systems(
                Update,
                (
                    breakup::adopt_inherited_matches,
                    breakup::break_up_matches,
                    forming::form_matches_in_pools,
                    hosting::host_formed_matches,
                    hosting::confirm_stored_matches,
                    breakup::end_finished_matches,
                )
                    .chain()
                    .in_set(MatchmakerSystems::Matches),
            );
    }
}
