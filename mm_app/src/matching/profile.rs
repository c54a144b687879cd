//! A profile: one mode of a game version (`duel`, `ranked_2v2`…), what a match of it looks like
//! and the rules its tickets must satisfy, read from the profiles file and checked before the
//! matchmaker starts.

use serde::{Deserialize, Serialize};

/// How players of a profile are seated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileKind {
    /// A seat on any server of the game, as soon as one is free (long-running servers).
    DropIn,
    /// A match formed by the rules, on a server of its own.
    Match,
}

/// One step of a relaxation: after `after_secs` of waiting, the limit becomes `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub after_secs: f64,
    pub limit: f64,
}

/// How many teams a match has and how big each may be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Teams {
    /// Teams per match (1 for a free-for-all or co-op).
    pub count: u32,
    /// The smallest a team of a formed match ever is.
    pub min_size: u32,
    /// A match forms at once when every team is this big.
    pub max_size: u32,
    /// Steps lowering the team size a match may form with before `max_wait_secs` (never below
    /// `min_size`), judged on the oldest ticket's wait.
    #[serde(default)]
    pub expansions: Vec<Step>,
}

/// What a rule compares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleKind {
    /// Number attribute `attribute` (for example `elo`) within `max_difference` of every other
    /// player's; expansions widen the difference.
    NumberDifference { attribute: String, max_difference: f64 },
    /// String attribute `attribute` (for example `platform`) the same for everyone.
    StringEquality { attribute: String },
    /// List attribute `attribute` (for example `maps`) sharing at least `min_shared` values
    /// with everyone; the shared values go to the server. Expansions lower the count.
    Intersection { attribute: String, min_shared: u32 },
    /// Measured round trips (ms per location): a location counts for a player when it is at
    /// most `max_latency`; the match is played at one location that counts for everyone and
    /// where their latencies are within `max_difference` of each other. Expansions raise
    /// `max_latency`.
    Latencies { max_latency: f64, max_difference: f64 },
}

/// A named rule and its relaxation. (Unknown fields are refused by its [`RuleKind`], which
/// sees every field the rule itself does not take.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    #[serde(flatten)]
    pub kind: RuleKind,
    #[serde(default)]
    pub expansions: Vec<Step>,
}

/// One mode of a game version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub kind: ProfileKind,
    pub teams: Teams,
    /// Once the oldest ticket has waited this long, a match forms at `teams.min_size`.
    pub max_wait_secs: f64,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// A profile that cannot be used; `field` names where, as a path into the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ProfileError {
    pub field: String,
    pub reason: String,
}

/// The stage of a wait of `wait` seconds, given a profile's [`Profile::expansion_times`].
pub fn stage_in(expansion_times: &[f64], wait: f64) -> u32 {
    expansion_times.partition_point(|&after| after <= wait) as u32
}

/// Most teams, and most players in a team, a profile may ask for.
pub const MAX_TEAMS: u32 = 64;
/// See [`MAX_TEAMS`].
pub const MAX_TEAM_SIZE: u32 = 256;

impl Profile {
    /// The profile that keeps today's behaviour: a seat on any server of the game.
    pub fn drop_in() -> Self {
        Self {
            name: "drop_in".into(),
            kind: ProfileKind::DropIn,
            teams: Teams { count: 1, min_size: 1, max_size: 1, expansions: Vec::new() },
            max_wait_secs: 0.0,
            rules: Vec::new(),
        }
    }

    /// Players in a full match.
    pub fn full_size(&self) -> u32 {
        self.teams.count * self.teams.max_size
    }

    /// How many relaxation steps (of any rule or of the team size) have been passed after
    /// `wait` seconds: what the `searching` message shows.
    pub fn stage_at(&self, wait: f64) -> u32 {
        stage_in(&self.expansion_times(), wait)
    }

    /// The distinct times (seconds of waiting) at which some limit relaxes, in order: computed
    /// once for many [`stage_in`] lookups.
    pub fn expansion_times(&self) -> Vec<f64> {
        let mut times: Vec<f64> =
            self.rules.iter().flat_map(|r| &r.expansions).chain(&self.teams.expansions).map(|s| s.after_secs).collect();
        times.sort_by(f64::total_cmp);
        times.dedup();
        times
    }

    /// Checks everything the engine relies on; `at` is this profile's path in the file.
    pub fn validate(&self, at: &str) -> Result<(), ProfileError> {
        let bad = |field: &str, reason: String| Err(ProfileError { field: format!("{at}.{field}"), reason });
        // A profile is what a join names as its mode, so its name follows the mode's rule.
        if let Err(reason) = bevygap_shared::protocol::check_mode(&self.name) {
            return bad("name", reason);
        }
        let t = &self.teams;
        if !(1..=MAX_TEAMS).contains(&t.count) {
            return bad("teams.count", format!("must be 1 to {MAX_TEAMS}, not {}", t.count));
        }
        if t.min_size == 0 || t.min_size > t.max_size || t.max_size > MAX_TEAM_SIZE {
            let reason =
                format!("need 1 <= min_size <= max_size <= {MAX_TEAM_SIZE}, not {} and {}", t.min_size, t.max_size);
            return bad("teams", reason);
        }
        if !(self.max_wait_secs.is_finite() && self.max_wait_secs >= 0.0) {
            return bad("max_wait_secs", "must be a number of seconds, 0 or more".into());
        }
        check_steps(&t.expansions, &format!("{at}.teams.expansions"), |limit| {
            (f64::from(t.min_size)..=f64::from(t.max_size)).contains(&limit) && limit.fract() == 0.0
        })?;
        let mut names = std::collections::HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let here = format!("{at}.rules[{i}]");
            if rule.name.is_empty() || !names.insert(rule.name.as_str()) {
                return Err(ProfileError { field: format!("{here}.name"), reason: "must be set and unique".into() });
            }
            rule.validate(&here)?;
        }
        Ok(())
    }
}

impl Rule {
    /// The limit after `wait` seconds: the base limit, or the last step passed.
    pub fn limit_at(&self, wait: f64) -> f64 {
        let base = match &self.kind {
            RuleKind::NumberDifference { max_difference, .. } => *max_difference,
            RuleKind::StringEquality { .. } => 0.0,
            RuleKind::Intersection { min_shared, .. } => f64::from(*min_shared),
            RuleKind::Latencies { max_latency, .. } => *max_latency,
        };
        self.expansions.iter().take_while(|s| s.after_secs <= wait).last().map_or(base, |s| s.limit)
    }

    fn validate(&self, at: &str) -> Result<(), ProfileError> {
        let bad =
            |field: &str, reason: &str| Err(ProfileError { field: format!("{at}.{field}"), reason: reason.into() });
        let finite = |v: f64| v.is_finite() && v >= 0.0;
        match &self.kind {
            RuleKind::NumberDifference { attribute, max_difference } => {
                if attribute.is_empty() {
                    return bad("attribute", "must name a number attribute");
                }
                if !finite(*max_difference) {
                    return bad("max_difference", "must be a number, 0 or more");
                }
                check_steps(&self.expansions, &format!("{at}.expansions"), |l| finite(l) && l >= *max_difference)
            }
            RuleKind::StringEquality { attribute } => {
                if attribute.is_empty() {
                    return bad("attribute", "must name a string attribute");
                }
                if !self.expansions.is_empty() {
                    return bad("expansions", "a string equality has no limit to relax");
                }
                Ok(())
            }
            RuleKind::Intersection { attribute, min_shared } => {
                if attribute.is_empty() {
                    return bad("attribute", "must name a list attribute");
                }
                let whole = |l: f64| finite(l) && l.fract() == 0.0 && l <= f64::from(*min_shared);
                check_steps(&self.expansions, &format!("{at}.expansions"), whole)
            }
            RuleKind::Latencies { max_latency, max_difference } => {
                if !finite(*max_latency) || !finite(*max_difference) {
                    return bad("max_latency", "max_latency and max_difference must be milliseconds, 0 or more");
                }
                check_steps(&self.expansions, &format!("{at}.expansions"), |l| finite(l) && l >= *max_latency)
            }
        }
    }
}

/// Steps come in increasing `after_secs`, each limit accepted by `ok` (which also says which
/// way a relaxation may go).
fn check_steps(steps: &[Step], at: &str, ok: impl Fn(f64) -> bool) -> Result<(), ProfileError> {
    let mut last = 0.0;
    for (i, step) in steps.iter().enumerate() {
        let field = format!("{at}[{i}]");
        if !(step.after_secs.is_finite() && step.after_secs > last) {
            return Err(ProfileError { field, reason: "after_secs must be positive and increase step by step".into() });
        }
        if !ok(step.limit) {
            return Err(ProfileError { field, reason: format!("limit {} does not relax the rule", step.limit) });
        }
        last = step.after_secs;
    }
    Ok(())
}
