//! The match this server runs, when a `match` profile formed it: the matchmaker writes it
//! under `<server_id>.match` in the `clients` bucket before any of its players gets a token,
//! and the grant watch brings it here. The game reads [`BevygapMatch`] (a resource, present
//! while the server has a match) to set up teams before the first player arrives, and hears
//! [`MatchAssigned`] when it arrives.
//!
//! ```
//! use bevy::prelude::*;
//! use bevygap_server_plugin::matched::{BevygapMatch, MatchAssigned};
//!
//! fn set_up_teams(mut assigned: MessageReader<MatchAssigned>) {
//!     for MatchAssigned(game_match) in assigned.read() {
//!         for (team, players) in game_match.teams.iter().enumerate() {
//!             info!("team {team}: {} players", players.len());
//!         }
//!     }
//! }
//!
//! fn team_of_new_player(game_match: Option<Res<BevygapMatch>>, client_id: u64) -> Option<usize> {
//!     game_match?.team_of(client_id)
//! }
//! # let _ = (set_up_teams, team_of_new_player);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use async_nats::jetstream::kv;
use bevy::prelude::*;
use bevygap_shared::naming::{MATCH_KEY_SUFFIX, ServerId};
use bevygap_shared::records::{MatchPlayer, MatchRecord};

/// The match this server runs: its id, the profile that formed it, and its teams of
/// players (client id, public id, party, claimed attributes).
#[derive(Resource, Debug, Clone, PartialEq)]
pub struct BevygapMatch {
    pub match_id: String,
    /// The profile (mode) that formed it.
    pub profile: String,
    /// Each team's players, team 0 first.
    pub teams: Vec<Vec<MatchPlayer>>,
    /// Where the latency rule chose to play, if the profile has one.
    pub location: Option<String>,
    /// Per intersection rule, the values every player shares (the maps all accept…).
    pub shared: BTreeMap<String, BTreeSet<String>>,
}

impl BevygapMatch {
    /// The team of the player connecting with `client_id`.
    pub fn team_of(&self, client_id: u64) -> Option<usize> {
        self.teams.iter().position(|team| team.iter().any(|p| p.client_id == client_id))
    }

    /// The player connecting with `client_id`.
    pub fn player(&self, client_id: u64) -> Option<&MatchPlayer> {
        self.teams.iter().flatten().find(|p| p.client_id == client_id)
    }

    fn of(record: MatchRecord) -> Self {
        let MatchRecord { match_id, profile, teams, location, shared, .. } = record;
        Self { match_id, profile, teams, location, shared }
    }
}

/// The server was given a match (written each time the record arrives or changes).
#[derive(Message, Debug, Clone, PartialEq)]
pub struct MatchAssigned(pub BevygapMatch);

/// What one `clients` watch entry says about this server's match.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MatchUpdate {
    Assigned(Box<BevygapMatch>),
    Ended,
}

/// Whether `key` is this server's match key (and not a grant's).
pub(crate) fn is_match_key(server_id: &ServerId, key: &str) -> bool {
    key.strip_prefix(server_id.as_str()).and_then(|rest| rest.strip_prefix('.')) == Some(MATCH_KEY_SUFFIX)
}

/// Reads a watch entry under this server's match key; a record that does not decode, or
/// names another server, is ignored with a warning.
pub(crate) fn read_update(server_id: &ServerId, operation: kv::Operation, value: &[u8]) -> Option<MatchUpdate> {
    match operation {
        kv::Operation::Delete | kv::Operation::Purge => Some(MatchUpdate::Ended),
        kv::Operation::Put => match serde_json::from_slice::<MatchRecord>(value) {
            Ok(record) if &record.server_id == server_id => {
                Some(MatchUpdate::Assigned(Box::new(BevygapMatch::of(record))))
            }
            Ok(_) => {
                warn!("ignoring a match record that names another server");
                None
            }
            Err(e) => {
                warn!("ignoring a malformed match record: {e}");
                None
            }
        },
    }
}

/// Applies one update: the resource is inserted (and the game told) or removed.
pub(crate) fn apply_update(commands: &mut Commands, assigned: &mut MessageWriter<MatchAssigned>, update: MatchUpdate) {
    match update {
        MatchUpdate::Assigned(game_match) => {
            info!(match_id = game_match.match_id, profile = game_match.profile, "match assigned");
            assigned.write(MatchAssigned((*game_match).clone()));
            commands.insert_resource(*game_match);
        }
        MatchUpdate::Ended => commands.remove_resource::<BevygapMatch>(),
    }
}

#[cfg(test)]
mod tests {
    use bevygap_shared::protocol::{GameName, GameVersion};

    use super::*;

    fn record(server: &str) -> MatchRecord {
        let player = |client_id, public_id: &str| MatchPlayer {
            client_id,
            public_id: public_id.into(),
            party: None,
            attributes: Default::default(),
        };
        MatchRecord {
            match_id: "m-1".into(),
            server_id: ServerId::new(server).expect("id"),
            game: GameName::new("demo").expect("name"),
            version: GameVersion::new("1.0").expect("version"),
            profile: "duel".into(),
            teams: vec![vec![player(11, "a")], vec![player(22, "b")]],
            location: Some("eu".into()),
            shared: BTreeMap::new(),
            formed_at_ms: 0,
        }
    }

    #[test]
    fn only_this_servers_match_key_and_record_count() {
        let id = ServerId::new("local-1").expect("id");
        assert!(is_match_key(&id, "local-1.match"));
        for other in ["local-1.42", "local-10.match", "local-1.match.x", "local-2.match"] {
            assert!(!is_match_key(&id, other), "{other}");
        }
        let bytes = serde_json::to_vec(&record("local-1")).expect("encodes");
        let Some(MatchUpdate::Assigned(game_match)) = read_update(&id, kv::Operation::Put, &bytes) else {
            panic!("a match")
        };
        assert_eq!((game_match.team_of(22), game_match.team_of(33)), (Some(1), None));
        assert_eq!(game_match.player(11).map(|p| p.public_id.as_str()), Some("a"));
        let elsewhere = serde_json::to_vec(&record("local-2")).expect("encodes");
        assert_eq!(read_update(&id, kv::Operation::Put, &elsewhere), None, "another server's record");
        assert_eq!(read_update(&id, kv::Operation::Put, b"{not json"), None);
        assert_eq!(read_update(&id, kv::Operation::Delete, &[]), Some(MatchUpdate::Ended));
    }
}
