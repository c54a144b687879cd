//! What the provider asks Edgegap for: the `POST /v2/deployments` body for one server. Pure,
//! so the mapping (app and version, users, tags, environment and its size limit) is tested as
//! plain Rust.
//!
//! | body field | value |
//! |---|---|
//! | `application` | `BEVYGAP_EDGEGAP_APP` |
//! | `version` | `BEVYGAP_EDGEGAP_VERSION`, else the game version of the join (`1.0` → version `1.0`) |
//! | `users` | one `ip_address` user per player the server is launched for; with none known, the `BEVYGAP_EDGEGAP_LOCATION` hint as `geo_coordinates` |
//! | `tags` | `bevygap`, `ns-<namespace>`, and the server id: how a deployment whose create answer was lost is found again, and how the game server knows the id is its own |
//! | `environment_variables` | the provider→server contract of [`ServerEnv`] (`BEVYGAP_NAMESPACE`, `BEVYGAP_SERVER_ID`, `BEVYGAP_PROVIDER`, `BEVYGAP_GAME`, `BEVYGAP_VERSION`, `BEVYGAP_CAPACITY`), then the configured extra variables, hidden |
//!
//! Edgegap takes at most [`MAX_ENV_VALUE_BYTES`] per value; a longer one fails the launch
//! before any call, naming the variable.

use bevygap_edgegap::{DeploymentCreate, DeploymentUser, EnvironmentVariable, Webhook};
use bevygap_shared::naming::{Namespace, ServerId};
use bevygap_shared::server_env::ServerEnv;

use super::EdgegapProviderConfig;
use crate::providers::{ProviderError, ServerSpec};

/// Edgegap's limit on one environment variable's value, in bytes.
pub const MAX_ENV_VALUE_BYTES: usize = 255;

/// The tag every deployment this provider starts carries.
pub const BEVYGAP_TAG: &str = "bevygap";

/// A point on the map: where to start servers when no player IP is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    /// Degrees north (negative: south), -90 to 90.
    pub latitude: f64,
    /// Degrees east (negative: west), -180 to 180.
    pub longitude: f64,
}

impl GeoPoint {
    /// Parses `latitude,longitude` in degrees (`45.5,-73.6`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (lat, lon) = text.split_once(',').ok_or_else(|| format!("{text:?} is not latitude,longitude"))?;
        let number = |s: &str| s.trim().parse::<f64>().map_err(|e| format!("{s:?}: {e}"));
        let (latitude, longitude) = (number(lat)?, number(lon)?);
        if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
            return Err(format!("{text:?} is off the map (latitude ±90, longitude ±180)"));
        }
        Ok(Self { latitude, longitude })
    }
}

/// The tags of a server's deployment.
pub fn tags(namespace: &Namespace, server_id: &ServerId) -> Vec<String> {
    vec![BEVYGAP_TAG.to_string(), namespace_tag(namespace), server_tag(server_id)]
}

/// The tag of every deployment of `namespace`.
pub fn namespace_tag(namespace: &Namespace) -> String {
    format!("ns-{namespace}")
}

/// The tag that names one server's deployment (the server id itself).
pub fn server_tag(server_id: &ServerId) -> String {
    server_id.to_string()
}

/// The Edgegap version a server of `spec` runs: the configured one, else the game version.
pub fn version_name(config: &EdgegapProviderConfig, spec: &ServerSpec) -> String {
    config.version.clone().unwrap_or_else(|| spec.version.to_string())
}

/// The users Edgegap places the deployment near.
pub fn users(spec: &ServerSpec, hint: Option<GeoPoint>) -> Result<Vec<DeploymentUser>, ProviderError> {
    if !spec.player_ips.is_empty() {
        return Ok(spec.player_ips.iter().map(|ip| DeploymentUser::ip(ip.to_string())).collect());
    }
    hint.map(|p| vec![DeploymentUser::geo(p.latitude, p.longitude)]).ok_or(ProviderError::NoLocation)
}

/// The server's environment, every value checked against [`MAX_ENV_VALUE_BYTES`].
pub fn environment(
    config: &EdgegapProviderConfig,
    spec: &ServerSpec,
) -> Result<Vec<EnvironmentVariable>, ProviderError> {
    let contract = ServerEnv {
        namespace: config.namespace.clone(),
        server_id: spec.server_id.clone(),
        provider: "edgegap".into(),
        game: spec.game.clone(),
        version: spec.version.clone(),
        capacity: spec.capacity,
        udp: None,
        webtransport: None,
    };
    let port_names = [("BEVYGAP_UDP_PORT_NAME", &config.udp_port_name), ("BEVYGAP_WT_PORT_NAME", &config.wt_port_name)];
    let plain = contract
        .to_vars()
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .chain(port_names.into_iter().filter_map(|(key, name)| Some((key.to_string(), name.clone()?))))
        .map(|(key, value)| (key, value, false));
    // The server's own NATS credentials, hidden like every secret.
    let credentials = spec.nats_credentials.iter().flat_map(|c| c.env()).map(|(key, value)| (key.to_string(), value));
    let hidden = config
        .extra_env
        .iter()
        .map(|(key, value)| (key.clone(), value.expose().to_string()))
        .chain(credentials)
        .map(|(key, value)| (key, value, true));
    plain
        .chain(hidden)
        .map(|(key, value, is_hidden)| {
            if value.len() > MAX_ENV_VALUE_BYTES {
                return Err(ProviderError::EnvValueTooLong { key, bytes: value.len(), limit: MAX_ENV_VALUE_BYTES });
            }
            Ok(EnvironmentVariable { key, value, is_hidden })
        })
        .collect()
}

/// The whole `POST /v2/deployments` body for `spec`.
pub fn deployment_request(
    config: &EdgegapProviderConfig,
    spec: &ServerSpec,
) -> Result<DeploymentCreate, ProviderError> {
    Ok(DeploymentCreate {
        application: config.app.clone(),
        version: version_name(config, spec),
        users: users(spec, config.location)?,
        require_cached_locations: None,
        environment_variables: Some(environment(config, spec)?),
        tags: Some(tags(&config.namespace, &spec.server_id)),
        // Edgegap's calls only wake the status polling early (see `webhook`).
        webhook_on_ready: config.webhook.as_ref().map(|w| Webhook { url: w.public_url.clone() }),
        webhook_on_error: config.webhook.as_ref().map(|w| Webhook { url: w.public_url.clone() }),
        webhook_on_terminated: config.webhook.as_ref().map(|w| Webhook { url: w.public_url.clone() }),
    })
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use bevygap_edgegap::{ApiKey, EdgegapConfig};
    use bevygap_shared::Secret;
    use bevygap_shared::protocol::{GameName, GameVersion};

    use super::*;

    fn config() -> EdgegapProviderConfig {
        let key = ApiKey::parse("token 0000-test").expect("key");
        EdgegapProviderConfig::new(EdgegapConfig::new(key), "spaceships", Namespace::new("prod").expect("ns"))
    }

    fn spec(ips: &[&str]) -> ServerSpec {
        ServerSpec {
            server_id: ServerId::new("edgegap-00000000000000aa").expect("id"),
            game: GameName::new("spaceships").expect("game"),
            version: GameVersion::new("1.2").expect("version"),
            capacity: 8,
            player_ips: ips.iter().map(|ip| ip.parse::<IpAddr>().expect("ip")).collect(),
            nats_credentials: None,
        }
    }

    #[test]
    fn the_body_names_app_version_users_tags_and_the_server_contract() {
        let body = deployment_request(&config(), &spec(&["81.128.1.2", "2001:db8::1"])).expect("body");
        assert_eq!((body.application.as_str(), body.version.as_str()), ("spaceships", "1.2"));
        assert_eq!(body.users, vec![DeploymentUser::ip("81.128.1.2"), DeploymentUser::ip("2001:db8::1")]);
        assert_eq!(body.tags, Some(vec!["bevygap".into(), "ns-prod".into(), "edgegap-00000000000000aa".into()]));
        let env: Vec<(String, String)> =
            body.environment_variables.expect("env").into_iter().map(|v| (v.key, v.value)).collect();
        let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("BEVYGAP_SERVER_ID"), Some("edgegap-00000000000000aa"));
        assert_eq!(get("BEVYGAP_NAMESPACE"), Some("prod"));
        assert_eq!(get("BEVYGAP_CAPACITY"), Some("8"));
        assert_eq!(get("BEVYGAP_PROVIDER"), Some("edgegap"));
        assert_eq!(get("BEVYGAP_UDP_BIND"), None, "Edgegap's port mapping decides the sockets");
        assert_eq!(get("BEVYGAP_UDP_PORT_NAME"), None, "the app version's own setting stands unless one is given");

        let mut named = config();
        named.udp_port_name = Some("game-udp".into());
        let env = environment(&named, &spec(&[])).expect("env");
        assert!(env.iter().any(|v| v.key == "BEVYGAP_UDP_PORT_NAME" && v.value == "game-udp"));
    }

    #[test]
    fn a_configured_version_overrides_the_game_version() {
        let mut config = config();
        config.version = Some("v7".into());
        assert_eq!(version_name(&config, &spec(&[])), "v7");
    }

    #[test]
    fn with_no_player_ip_the_location_hint_places_the_server() {
        assert!(matches!(users(&spec(&[]), None), Err(ProviderError::NoLocation)));
        let hint = GeoPoint::parse(" 45.5 , -73.6").expect("hint");
        assert_eq!(users(&spec(&[]), Some(hint)).expect("users"), vec![DeploymentUser::geo(45.5, -73.6)]);
        assert!(GeoPoint::parse("91,0").is_err());
        assert!(GeoPoint::parse("north").is_err());
    }

    #[test]
    fn extra_variables_are_hidden_and_values_over_255_bytes_are_refused_by_name() {
        let mut config = config();
        config.extra_env = vec![("NATS_URL".into(), Secret::new("tls://nats.example.com:4222"))];
        let env = environment(&config, &spec(&[])).expect("env");
        let nats = env.iter().find(|v| v.key == "NATS_URL").expect("extra variable");
        assert!(nats.is_hidden);
        assert!(env.iter().filter(|v| v.key.starts_with("BEVYGAP_")).all(|v| !v.is_hidden));

        config.extra_env.push(("NATS_CREDS".into(), Secret::new("x".repeat(MAX_ENV_VALUE_BYTES))));
        assert!(environment(&config, &spec(&[])).is_ok(), "exactly 255 bytes is allowed");
        config.extra_env.push(("TOO_LONG".into(), Secret::new("é".repeat(128))));
        match environment(&config, &spec(&[])) {
            Err(ProviderError::EnvValueTooLong { key, bytes: 256, limit: 255 }) => assert_eq!(key, "TOO_LONG"),
            other => panic!("expected a refusal naming TOO_LONG, got {other:?}"),
        }
    }
}
