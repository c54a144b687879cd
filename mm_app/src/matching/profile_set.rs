//! The profiles file (`BEVYGAP_PROFILES`): the modes of each game version, keyed
//! `game:version` as `--games` names them.
//!
//! ```json
//! {
//!   "demo:1.0": [
//!     { "name": "duel", "kind": "match",
//!       "teams": { "count": 2, "min_size": 1, "max_size": 1 },
//!       "max_wait_secs": 30,
//!       "rules": [ { "name": "elo", "type": "number_difference", "attribute": "elo",
//!                    "max_difference": 100, "expansions": [ { "after_secs": 10, "limit": 250 } ] } ] }
//!   ]
//! }
//! ```
//!
//! Every game version also has the profile `drop_in` (a seat on any server of the game, as
//! before profiles existed) unless the file gives its own.

use std::collections::BTreeMap;

use super::profile::{Profile, ProfileError};

/// The profile a join without a `mode` asks for.
pub const DEFAULT_PROFILE: &str = "drop_in";

/// Every profile of every game version, checked; a resource of the matchmaker.
#[derive(Debug, Clone, Default, PartialEq, bevy::prelude::Resource)]
pub struct ProfileSet {
    by_game: BTreeMap<String, Vec<Profile>>,
}

impl ProfileSet {
    /// Reads and checks a profiles file; the error names the field, as a path into the file.
    pub fn from_json(text: &str) -> Result<Self, ProfileError> {
        let by_game: BTreeMap<String, Vec<Profile>> = serde_json::from_str(text).map_err(|e| ProfileError {
            field: format!("line {} column {}", e.line(), e.column()),
            reason: e.to_string(),
        })?;
        for (game, profiles) in &by_game {
            if game.split_once(':').is_none_or(|(g, v)| g.is_empty() || v.is_empty()) {
                return Err(ProfileError { field: game.clone(), reason: "is not game:version".into() });
            }
            let mut names = std::collections::HashSet::new();
            for (i, profile) in profiles.iter().enumerate() {
                let at = format!("{game}[{i}]");
                profile.validate(&at)?;
                if !names.insert(profile.name.as_str()) {
                    return Err(ProfileError { field: format!("{at}.name"), reason: "is used twice".into() });
                }
            }
        }
        Ok(Self { by_game })
    }

    /// The profile `mode` (default [`DEFAULT_PROFILE`]) of the game version labelled
    /// `game:version`: one the file gives, or the built-in `drop_in`.
    pub fn get(&self, game_label: &str, mode: Option<&str>) -> Option<&Profile> {
        static DROP_IN: std::sync::LazyLock<Profile> = std::sync::LazyLock::new(Profile::drop_in);
        let mode = mode.unwrap_or(DEFAULT_PROFILE);
        let given = self.by_game.get(game_label).and_then(|profiles| profiles.iter().find(|p| p.name == mode));
        match given {
            Some(profile) => Some(profile),
            None if mode == DEFAULT_PROFILE => Some(&DROP_IN),
            None => None,
        }
    }

    /// Whether the file gave no profile at all (every game has only `drop_in`).
    pub fn is_empty(&self) -> bool {
        self.by_game.is_empty()
    }

    /// Every profile the file gives, with the label of its game version.
    pub fn profiles(&self) -> impl Iterator<Item = (&str, &Profile)> {
        self.by_game.iter().flat_map(|(game, profiles)| profiles.iter().map(move |p| (game.as_str(), p)))
    }

    /// The game versions the file names.
    pub fn games(&self) -> impl Iterator<Item = &str> {
        self.by_game.keys().map(String::as_str)
    }

    /// The profile names of the game version labelled `game:version`, `drop_in` included.
    pub fn names(&self, game_label: &str) -> Vec<&str> {
        let given = self.by_game.get(game_label).into_iter().flatten().map(|p| p.name.as_str());
        let mut names: Vec<&str> = given.collect();
        if !names.contains(&DEFAULT_PROFILE) {
            names.insert(0, DEFAULT_PROFILE);
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::ProfileKind;

    const DUEL: &str = r#"{ "demo:1.0": [ { "name": "duel", "kind": "match",
        "teams": { "count": 2, "min_size": 1, "max_size": 1 }, "max_wait_secs": 30,
        "rules": [ { "name": "elo", "type": "number_difference", "attribute": "elo", "max_difference": 100,
                     "expansions": [ { "after_secs": 10, "limit": 250 } ] } ] } ] }"#;

    #[test]
    fn a_file_gives_its_profiles_and_every_game_keeps_drop_in() {
        let set = ProfileSet::from_json(DUEL).expect("valid");
        let duel = set.get("demo:1.0", Some("duel")).expect("duel");
        assert_eq!((duel.kind, duel.full_size()), (ProfileKind::Match, 2));
        assert_eq!(set.get("demo:1.0", None).map(|p| p.kind), Some(ProfileKind::DropIn));
        assert_eq!(set.get("other:2", None).map(|p| p.name.as_str()), Some("drop_in"));
        assert!(set.get("demo:1.0", Some("ranked")).is_none(), "an unknown mode");
        assert_eq!(set.games().collect::<Vec<_>>(), ["demo:1.0"]);
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let text = include_str!("../../../assets/profiles.example.json");
        let set = ProfileSet::from_json(text).expect("assets/profiles.example.json is valid");
        assert_eq!(set.get("demo:1.0", Some("ranked_2v2")).map(|p| p.full_size()), Some(4));
    }

    #[test]
    fn errors_name_the_field() {
        let err = ProfileSet::from_json(&DUEL.replace(r#""max_size": 1"#, r#""max_size": 0"#)).unwrap_err();
        assert_eq!(err.field, "demo:1.0[0].teams", "{err}");
        let err = ProfileSet::from_json(&DUEL.replace(r#""limit": 250"#, r#""limit": 50"#)).unwrap_err();
        assert_eq!(err.field, "demo:1.0[0].rules[0].expansions[0]", "{err}");
        let err = ProfileSet::from_json(&DUEL.replace("number_difference", "closeness")).unwrap_err();
        assert!(err.field.starts_with("line "), "a parse error says where: {err}");
        let err = ProfileSet::from_json(&DUEL.replace(r#""attribute": "elo""#, r#""attribute": "elo", "colour": 1"#));
        assert!(err.is_err_and(|e| e.reason.contains("colour")), "an unknown rule field is refused");
        let err = ProfileSet::from_json(&DUEL.replace("demo:1.0", "demo")).unwrap_err();
        assert_eq!(err.field, "demo");
    }
}
