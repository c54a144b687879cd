//! `--profiles` (`BEVYGAP_PROFILES`): the modes of each game version, read and checked at
//! start-up into a [`ProfileSet`]; `--check-profiles` only checks them.

use std::num::NonZeroU64;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{ConfigError, bad};
use crate::game::GameCatalog;
use crate::joins::JoinSettings;
use crate::matches::MatchSettings;
use crate::matching::{ProfileKind, ProfileSet};

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
    /// Milliseconds between two passes of the match engine over every pool.
    #[arg(long, env = "BEVYGAP_MATCH_INTERVAL_MS", default_value_t = default_interval_ms())]
    pub match_interval_ms: NonZeroU64,
}

fn default_interval_ms() -> NonZeroU64 {
    let millis = MatchSettings::default().pass_interval.as_millis() as u64;
    NonZeroU64::new(millis).unwrap_or(NonZeroU64::MIN)
}

const PROFILES: &str = "--profiles / BEVYGAP_PROFILES";

impl MatchArgs {
    /// The engine's pass interval.
    pub fn settings(&self) -> MatchSettings {
        MatchSettings { pass_interval: Duration::from_millis(self.match_interval_ms.get()) }
    }

    /// Reads and checks the profiles file: its errors name the field; every game it gives
    /// profiles for must be one `--games` serves, and a match mode's `max_wait_secs` must end
    /// before the join deadline (or no match would ever form at its minimum size).
    pub fn validate(&self, games: &GameCatalog, joins: &JoinSettings) -> Result<ProfileSet, ConfigError> {
        let Some(path) = &self.profiles else { return Ok(ProfileSet::default()) };
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(PROFILES, format!("cannot read {}: {e}", path.display())))?;
        let set = ProfileSet::from_json(&text).map_err(|e| bad(PROFILES, format!("{}: {e}", path.display())))?;
        if let Some(unserved) = set.games().find(|label| !games.serves_label(label)) {
            return Err(bad(PROFILES, format!("gives profiles for {unserved}, which --games does not serve")));
        }
        let deadline = joins.deadline.as_secs_f64();
        let late = set.profiles().find(|(_, p)| p.kind == ProfileKind::Match && p.max_wait_secs >= deadline);
        if let Some((game, profile)) = late {
            return Err(bad(
                PROFILES,
                format!(
                    "{game} {}: max_wait_secs {} is not below --join-deadline-secs {deadline}; raise the deadline",
                    profile.name, profile.max_wait_secs
                ),
            ));
        }
        Ok(set)
    }
}
