//! What a formed match is in the world: its own entity ([`GameMatch`]), and on each of its
//! joins which match and team it is in ([`InMatch`]).

use std::collections::{BTreeMap, BTreeSet};

use bevy::prelude::*;

use crate::game::GameKey;

/// A match the engine formed: its teams of joins, and the server hosting it once placed.
/// Lives as long as that server does (or until it breaks up before any player got a token).
#[derive(Component, Debug, Clone, Reflect)]
#[reflect(Component)]
#[type_path = "bevygap"]
pub struct GameMatch {
    /// The id players (`match_found`) and the game server (`BevygapMatch`) know it by.
    pub id: String,
    pub game: GameKey,
    /// The profile (mode) that formed it.
    pub profile: String,
    /// The joins of each team, team 0 first.
    pub teams: Vec<Vec<Entity>>,
    /// The location the latency rule chose.
    pub location: Option<String>,
    /// Per intersection rule, the values everyone shares.
    #[reflect(ignore)]
    pub shared: BTreeMap<String, BTreeSet<String>>,
    pub formed_at: f64,
    /// When its earliest player must be answered.
    pub deadline: f64,
    /// The server hosting it, once placed.
    pub server: Option<Entity>,
    /// Whether the game server can read its record (its players may get tokens).
    pub record_stored: bool,
}

impl GameMatch {
    /// Every join of the match, team by team.
    pub fn members(&self) -> impl Iterator<Item = Entity> + '_ {
        self.teams.iter().flatten().copied()
    }

    /// Players in the match.
    pub fn size(&self) -> u32 {
        self.teams.iter().map(Vec::len).sum::<usize>() as u32
    }
}

/// On a join: the match it is in, and its team there.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq, Reflect)]
#[reflect(Component)]
#[type_path = "bevygap"]
pub struct InMatch {
    pub game_match: Entity,
    pub team: u32,
}

/// On a join waiting in its pool: the last `searching` message it was sent, so the stream
/// hears of a new stage at once and of a changing pool at most every second.
#[derive(Component, Debug, Clone, Copy, PartialEq)]
pub struct LastSearching {
    pub stage: u32,
    pub pool: u32,
    pub at: f64,
}

/// Seconds between two `searching` messages that only update the pool size.
pub const POOL_UPDATE_SECS: f64 = 1.0;

impl LastSearching {
    /// Whether a join last told `self` should now be told `stage` and `pool`.
    pub fn is_stale(this: Option<&Self>, stage: u32, pool: u32, now: f64) -> bool {
        match this {
            None => true,
            Some(last) => last.stage != stage || (last.pool != pool && now - last.at >= POOL_UPDATE_SECS),
        }
    }
}
