//! What to join and how patiently: set from code, overridable from the environment so a
//! tester can point a release build at another matchmaker without rebuilding.

use std::time::Duration;

use bevy::prelude::*;
use bevygap_shared::env::{EnvError, EnvSource, ProcessEnv};
use std::collections::BTreeMap;

use bevygap_shared::protocol::{JoinRequest, TicketAttributes, Transport};

use crate::retry::RetryConfig;

/// The plugin's configuration, kept as a resource: change it between joins (another region,
/// another matchmaker) and the next join uses it.
///
/// # Environment overrides
///
/// [`BevygapClientConfig::with_env_overrides`] reads (empty values count as unset):
///
/// | variable | field |
/// |---|---|
/// | `BEVYGAP_MATCHMAKER_URL` | `matchmaker_url` |
/// | `BEVYGAP_GAME`, `BEVYGAP_VERSION` | `game`, `version` |
/// | `BEVYGAP_TRANSPORT` | `transport`: `udp` or `webtransport` |
/// | `BEVYGAP_REGION`, `BEVYGAP_PARTY`, `BEVYGAP_PARTY_SIZE` | `region`, `party`, `party_size` |
/// | `BEVYGAP_MODE` | `mode` |
/// | `BEVYGAP_ATTRIBUTES` | `attributes`, as JSON: `{"numbers":{"elo":1200}}` |
/// | `BEVYGAP_LATENCIES` | `latencies`, as JSON: `{"eu":21.5,"us":98}` |
/// | `BEVYGAP_JOIN_TIMEOUT_SECS` | `timeouts.join` |
/// | `BEVYGAP_CONNECT_TIMEOUT_SECS` | `timeouts.server_connect` |
/// | `BEVYGAP_MAX_ATTEMPTS` | `retry.max_attempts` |
#[derive(Resource, Debug, Clone, PartialEq)]
pub struct BevygapClientConfig {
    /// The matchmaker's public endpoint, e.g. `https://mm.example.com` (any path works).
    pub matchmaker_url: String,
    pub game: String,
    pub version: String,
    /// The transport to connect with. UDP suits native clients; browsers need WebTransport.
    pub transport: Transport,
    /// Placement hint, e.g. `eu`; providers that cannot place by region ignore it.
    pub region: Option<String>,
    /// Players sending the same party id are placed together when seats allow (and, in a
    /// match mode, kept in one team).
    pub party: Option<String>,
    /// How many players the party has; a match mode needs it to keep the party whole.
    pub party_size: Option<u32>,
    /// The mode: a profile of the game (`None`: `drop_in`, a seat on any server).
    pub mode: Option<String>,
    /// What the mode's rules compare (elo, platform, maps…). These are the player's claims:
    /// a game with a backend should fill them from it.
    pub attributes: TicketAttributes,
    /// Measured round trips in milliseconds, by location, for a latency rule.
    pub latencies: BTreeMap<String, f64>,
    pub timeouts: Timeouts,
    pub retry: RetryConfig,
}

/// How long each step may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing one HTTP connection to the matchmaker.
    pub http_connect: Duration,
    /// A silent stream (the matchmaker sends keep-alives every 10 s by default).
    pub stream_idle: Duration,
    /// The whole join, retries included, until a token arrives.
    pub join: Duration,
    /// From the token to a connected Lightyear client.
    pub server_connect: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            http_connect: Duration::from_secs(5),
            stream_idle: Duration::from_secs(30),
            // The matchmaker's own join deadline is 60 s by default; it answers `timeout` first.
            join: Duration::from_secs(90),
            server_connect: Duration::from_secs(15),
        }
    }
}

impl BevygapClientConfig {
    /// A configuration for `game` at `version` behind `matchmaker_url`, with default timeouts
    /// and retries and the transport this target supports (UDP natively, WebTransport in
    /// browsers).
    pub fn new(matchmaker_url: impl Into<String>, game: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            matchmaker_url: matchmaker_url.into(),
            game: game.into(),
            version: version.into(),
            transport: if cfg!(target_arch = "wasm32") { Transport::WebTransport } else { Transport::Udp },
            region: None,
            party: None,
            party_size: None,
            mode: None,
            attributes: TicketAttributes::default(),
            latencies: BTreeMap::new(),
            timeouts: Timeouts::default(),
            retry: RetryConfig::default(),
        }
    }

    /// This configuration with the `BEVYGAP_*` variables of the process applied.
    pub fn with_env_overrides(self) -> Result<Self, EnvError> {
        self.with_overrides_from(&ProcessEnv)
    }

    /// This configuration with the `BEVYGAP_*` variables of `env` applied.
    pub fn with_overrides_from(mut self, env: &dyn EnvSource) -> Result<Self, EnvError> {
        if let Some(url) = env.var("BEVYGAP_MATCHMAKER_URL") {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(EnvError::new("BEVYGAP_MATCHMAKER_URL", format!("{url:?} is not an http(s) URL")));
            }
            self.matchmaker_url = url;
        }
        if let Some(game) = env.var("BEVYGAP_GAME") {
            self.game = game;
        }
        if let Some(version) = env.var("BEVYGAP_VERSION") {
            self.version = version;
        }
        if let Some(text) = env.var("BEVYGAP_TRANSPORT") {
            self.transport = match text.trim().to_ascii_lowercase().as_str() {
                "udp" => Transport::Udp,
                "webtransport" => Transport::WebTransport,
                _ => {
                    return Err(EnvError::new(
                        "BEVYGAP_TRANSPORT",
                        format!("expected udp or webtransport, got {text:?}"),
                    ));
                }
            };
        }
        if let Some(region) = env.var("BEVYGAP_REGION") {
            self.region = Some(region);
        }
        if let Some(party) = env.var("BEVYGAP_PARTY") {
            self.party = Some(party);
        }
        if let Some(text) = env.var("BEVYGAP_PARTY_SIZE") {
            let size = text.trim().parse::<u32>().ok().filter(|n| *n >= 1);
            let size = size.ok_or_else(|| {
                EnvError::new("BEVYGAP_PARTY_SIZE", format!("expected a whole number ≥ 1, got {text:?}"))
            })?;
            self.party_size = Some(size);
        }
        if let Some(mode) = env.var("BEVYGAP_MODE") {
            self.mode = Some(mode);
        }
        if let Some(text) = env.var("BEVYGAP_ATTRIBUTES") {
            self.attributes = serde_json::from_str(&text)
                .map_err(|e| EnvError::new("BEVYGAP_ATTRIBUTES", format!("expected attributes as JSON: {e}")))?;
        }
        if let Some(text) = env.var("BEVYGAP_LATENCIES") {
            self.latencies = serde_json::from_str(&text).map_err(|e| {
                EnvError::new("BEVYGAP_LATENCIES", format!("expected {{\"location\": ms, …}} as JSON: {e}"))
            })?;
        }
        if let Some(secs) = secs(env, "BEVYGAP_JOIN_TIMEOUT_SECS")? {
            self.timeouts.join = secs;
        }
        if let Some(secs) = secs(env, "BEVYGAP_CONNECT_TIMEOUT_SECS")? {
            self.timeouts.server_connect = secs;
        }
        if let Some(text) = env.var("BEVYGAP_MAX_ATTEMPTS") {
            self.retry.max_attempts = text.trim().parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                EnvError::new("BEVYGAP_MAX_ATTEMPTS", format!("expected a whole number ≥ 1, got {text:?}"))
            })?;
        }
        Ok(self)
    }

    /// The join request for one connect, identified by `request_id` on every attempt.
    pub(crate) fn join_request(&self, request_id: &str) -> JoinRequest {
        JoinRequest {
            request_id: Some(request_id.to_string()),
            region: self.region.clone(),
            party: self.party.clone(),
            party_size: self.party_size,
            transport: Some(self.transport),
            mode: self.mode.clone(),
            attributes: self.attributes.clone(),
            latencies: self.latencies.clone(),
            ..JoinRequest::new(self.game.as_str(), self.version.as_str())
        }
    }
}

fn secs(env: &dyn EnvSource, var: &'static str) -> Result<Option<Duration>, EnvError> {
    let Some(text) = env.var(var) else { return Ok(None) };
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        _ => Err(EnvError::new(var, format!("expected a positive number of seconds, got {text:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn base() -> BevygapClientConfig {
        BevygapClientConfig::new("http://127.0.0.1:7800", "demo", "1.0")
    }

    #[test]
    fn env_overrides_every_documented_field() {
        let env: HashMap<&str, &str> = HashMap::from([
            ("BEVYGAP_MATCHMAKER_URL", "https://mm.example.com"),
            ("BEVYGAP_GAME", "other"),
            ("BEVYGAP_VERSION", "2.0"),
            ("BEVYGAP_TRANSPORT", "WebTransport"),
            ("BEVYGAP_REGION", "eu"),
            ("BEVYGAP_PARTY", "friends"),
            ("BEVYGAP_PARTY_SIZE", "2"),
            ("BEVYGAP_MODE", "duel"),
            ("BEVYGAP_ATTRIBUTES", r#"{"numbers":{"elo":1250},"lists":{"maps":["dust"]}}"#),
            ("BEVYGAP_LATENCIES", r#"{"eu":21.5}"#),
            ("BEVYGAP_JOIN_TIMEOUT_SECS", "12.5"),
            ("BEVYGAP_CONNECT_TIMEOUT_SECS", "3"),
            ("BEVYGAP_MAX_ATTEMPTS", "2"),
        ]);
        let c = base().with_overrides_from(&env).unwrap();
        assert_eq!(c.matchmaker_url, "https://mm.example.com");
        assert_eq!((c.game.as_str(), c.version.as_str()), ("other", "2.0"));
        assert_eq!(c.transport, Transport::WebTransport);
        assert_eq!((c.region.as_deref(), c.party.as_deref()), (Some("eu"), Some("friends")));
        assert_eq!((c.party_size, c.mode.as_deref()), (Some(2), Some("duel")));
        assert_eq!(c.attributes.numbers["elo"], 1250.0);
        assert!(c.attributes.lists["maps"].contains("dust"));
        assert_eq!(c.latencies["eu"], 21.5);
        assert_eq!(c.timeouts.join, Duration::from_millis(12_500));
        assert_eq!(c.timeouts.server_connect, Duration::from_secs(3));
        assert_eq!(c.retry.max_attempts, 2);
    }

    #[test]
    fn unset_and_empty_variables_change_nothing() {
        let env: HashMap<&str, &str> = HashMap::from([("BEVYGAP_GAME", "  ")]);
        assert_eq!(base().with_overrides_from(&env).unwrap(), base());
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("BEVYGAP_MATCHMAKER_URL", "mm.example.com"),
            ("BEVYGAP_TRANSPORT", "carrier-pigeon"),
            ("BEVYGAP_JOIN_TIMEOUT_SECS", "-1"),
            ("BEVYGAP_MAX_ATTEMPTS", "0"),
            ("BEVYGAP_PARTY_SIZE", "none"),
            ("BEVYGAP_ATTRIBUTES", "{elo: 1}"),
            ("BEVYGAP_LATENCIES", r#"{"eu": "fast"}"#),
        ] {
            let env: HashMap<&str, &str> = HashMap::from([(var, value)]);
            assert_eq!(base().with_overrides_from(&env).unwrap_err().var, var);
        }
    }

    #[test]
    fn the_join_request_carries_every_setting() {
        let mut c = base();
        c.region = Some("eu".into());
        c.party = Some("friends".into());
        c.party_size = Some(2);
        c.mode = Some("ranked_2v2".into());
        c.attributes.strings.insert("platform".into(), "pc".into());
        c.latencies.insert("eu".into(), 30.0);
        let request = c.join_request("req-00000001");
        assert_eq!((request.mode.as_deref(), request.party_size), (Some("ranked_2v2"), Some(2)));
        assert_eq!(request.attributes.strings["platform"], "pc");
        assert_eq!(request.latencies["eu"], 30.0);
        assert_eq!(request.request_id.as_deref(), Some("req-00000001"));
        assert_eq!(request.transport, Some(Transport::Udp));
        assert_eq!(request.region.as_deref(), Some("eu"));
        assert!(request.validate().is_ok());
    }
}
