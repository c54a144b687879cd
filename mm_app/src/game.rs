use std::collections::HashSet;

use bevygap_shared::protocol::{GameName, GameVersion};

/// A game and version the matchmaker serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, bevy::prelude::Reflect)]
#[type_path = "bevygap"]
pub struct GameKey {
    pub game: GameName,
    pub version: GameVersion,
}

impl GameKey {
    /// `game:version`, the form used in `--games`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.game, self.version)
    }
}

/// The games this matchmaker places players for; joins for anything else fail with
/// `unknown_game` instead of starting servers nobody configured.
#[derive(Debug, Clone, Default, bevy::prelude::Resource)]
pub struct GameCatalog(HashSet<GameKey>);

impl GameCatalog {
    /// Parses `game:version[,game:version…]`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut set = HashSet::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (game, version) = item.split_once(':').ok_or_else(|| format!("{item:?} is not game:version"))?;
            let game = GameName::new(game).map_err(|e| e.to_string())?;
            let version = GameVersion::new(version).map_err(|e| e.to_string())?;
            set.insert(GameKey { game, version });
        }
        if set.is_empty() {
            return Err("lists no game".into());
        }
        Ok(Self(set))
    }

    /// The `game:version` labels served, sorted.
    pub fn labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = self.0.iter().map(GameKey::label).collect();
        labels.sort();
        labels
    }

    /// Whether the game version labelled `game:version` is served.
    pub fn serves_label(&self, label: &str) -> bool {
        self.0.iter().any(|key| key.label() == label)
    }

    /// Whether `game` at `version` is served.
    pub fn serves(&self, game: &GameName, version: &GameVersion) -> bool {
        self.0.contains(&GameKey { game: game.clone(), version: version.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        let c = GameCatalog::parse("demo:1.0, other:2").unwrap();
        assert!(c.serves(&GameName::new("demo").unwrap(), &GameVersion::new("1.0").unwrap()));
        assert!(!c.serves(&GameName::new("demo").unwrap(), &GameVersion::new("1.1").unwrap()));
        assert!(GameCatalog::parse("demo").unwrap_err().contains("game:version"));
        assert!(GameCatalog::parse("de mo:1").is_err());
        assert!(GameCatalog::parse(" , ").is_err());
    }
}
