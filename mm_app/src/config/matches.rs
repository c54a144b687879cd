//! `--profiles` (`BEVYGAP_PROFILES`): the modes of each game version, read and checked at
//! start-up into a [`ProfileSet`]; `--check-profiles` only checks them.

use std::path::PathBuf;

use clap::Args;

use super::{ConfigError, bad};
use crate::game::GameCatalog;
use crate::matching::ProfileSet;

/// Where the profiles come from.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Matches")]
pub struct MatchArgs {
    /// The profiles file (JSON, keyed game:version; assets/profiles.example.json shows the
    /// format). Unset: every game has only the drop_in profile, a seat on any server of it.
    #[arg(long, env = "BEVYGAP_PROFILES")]
    pub profiles: Option<PathBuf>,
    /// Checks the settings and the profiles file, prints the profiles of each game and exits.
    #[arg(long)]
    pub check_profiles: bool,
}

const PROFILES: &str = "--profiles / BEVYGAP_PROFILES";

impl MatchArgs {
    /// Reads and checks the profiles file: its errors name the field; every game it gives
    /// profiles for must be one `--games` serves.
    pub fn validate(&self, games: &GameCatalog) -> Result<ProfileSet, ConfigError> {
        let Some(path) = &self.profiles else { return Ok(ProfileSet::default()) };
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(PROFILES, format!("cannot read {}: {e}", path.display())))?;
        let set = ProfileSet::from_json(&text).map_err(|e| bad(PROFILES, format!("{}: {e}", path.display())))?;
        if let Some(unserved) = set.games().find(|label| !games.serves_label(label)) {
            return Err(bad(PROFILES, format!("gives profiles for {unserved}, which --games does not serve")));
        }
        Ok(set)
    }
}
