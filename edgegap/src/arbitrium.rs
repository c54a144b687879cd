//! Parser for the `ARBITRIUM_*` environment Edgegap injects into a deployment.
//!
//! Takes any iterator of `(name, value)` pairs rather than reading
//! `std::env` directly, so game-server boot code can be tested with a map.
//! Every missing variable is reported at once, because a misconfigured local
//! run usually lacks several.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;

use crate::auth::RawToken;
use crate::models::DeploymentLocation;

const REQUEST_ID: &str = "ARBITRIUM_REQUEST_ID";
const PUBLIC_IP: &str = "ARBITRIUM_PUBLIC_IP";
const CONTEXT_URL: &str = "ARBITRIUM_CONTEXT_URL";
const CONTEXT_TOKEN: &str = "ARBITRIUM_CONTEXT_TOKEN";
const DELETE_URL: &str = "ARBITRIUM_DELETE_URL";
const DELETE_TOKEN: &str = "ARBITRIUM_DELETE_TOKEN";
const LOCATION: &str = "ARBITRIUM_DEPLOYMENT_LOCATION";
const PORTS_MAPPING: &str = "ARBITRIUM_PORTS_MAPPING";
const HOST_ID: &str = "ARBITRIUM_HOST_ID";
const TAGS: &str = "ARBITRIUM_DEPLOYMENT_TAGS";

/// The variables bevygap's game server cannot run without.
pub const REQUIRED_VARS: [&str; 8] =
    [REQUEST_ID, PUBLIC_IP, CONTEXT_URL, CONTEXT_TOKEN, DELETE_URL, DELETE_TOKEN, LOCATION, PORTS_MAPPING];

/// What is wrong with the environment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArbitriumError {
    /// Variables absent or empty (not running on Edgegap, or a partial local setup).
    #[error("missing ARBITRIUM environment variables: {}", .0.join(", "))]
    Missing(Vec<&'static str>),
    /// A variable is present but cannot be parsed.
    #[error("{var} is malformed: {reason}")]
    Malformed {
        /// Variable name.
        var: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// One entry of `ARBITRIUM_PORTS_MAPPING`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArbitriumPort {
    /// Port name from the app version (the map key).
    pub name: String,
    /// Port the server must listen on inside the container.
    pub internal: u16,
    /// Port players reach at the public IP.
    pub external: u16,
    /// `UDP`, `TCP`, `HTTP`, `WS`.
    pub protocol: String,
}

/// The parsed deployment environment.
#[derive(Clone, Debug, PartialEq)]
pub struct ArbitriumEnv {
    /// Deployment id.
    pub request_id: String,
    /// Host public IP (what players connect to).
    pub public_ip: IpAddr,
    /// Full context endpoint URL.
    pub context_url: String,
    /// Raw token for the context endpoint (redacted in `Debug`).
    pub context_token: RawToken,
    /// Full self-stop endpoint URL.
    pub delete_url: String,
    /// Raw token for self-stop (redacted in `Debug`).
    pub delete_token: RawToken,
    /// Where the deployment runs.
    pub location: DeploymentLocation,
    /// Ports by name.
    pub ports: BTreeMap<String, ArbitriumPort>,
    /// Host id, when injected.
    pub host_id: Option<String>,
    /// Deployment tags (comma-separated in the env).
    pub tags: Vec<String>,
}

#[derive(Deserialize)]
struct PortsMappingJson {
    ports: BTreeMap<String, PortJson>,
}

#[derive(Deserialize)]
struct PortJson {
    name: Option<String>,
    internal: u16,
    external: u16,
    protocol: String,
}

impl ArbitriumEnv {
    /// Parses from `(name, value)` pairs, e.g. `std::env::vars()` or a test map.
    /// Unrelated variables are ignored.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ArbitriumError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut found: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in vars {
            let key = key.as_ref();
            if key.starts_with("ARBITRIUM_") {
                found.insert(key.to_owned(), value.into());
            }
        }
        let missing: Vec<&'static str> =
            REQUIRED_VARS.iter().copied().filter(|name| found.get(*name).is_none_or(|v| v.trim().is_empty())).collect();
        if !missing.is_empty() {
            return Err(ArbitriumError::Missing(missing));
        }
        let get = |name: &'static str| found.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();

        let public_ip = get(PUBLIC_IP)
            .parse::<IpAddr>()
            .map_err(|e| ArbitriumError::Malformed { var: PUBLIC_IP, reason: e.to_string() })?;
        let context_url = url_var(CONTEXT_URL, get(CONTEXT_URL))?;
        let delete_url = url_var(DELETE_URL, get(DELETE_URL))?;
        let location: DeploymentLocation = serde_json::from_str(&get(LOCATION))
            .map_err(|e| ArbitriumError::Malformed { var: LOCATION, reason: e.to_string() })?;
        let ports = parse_ports(&get(PORTS_MAPPING))?;
        let tags = found
            .get(TAGS)
            .map(|t| t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();

        Ok(Self {
            request_id: get(REQUEST_ID),
            public_ip,
            context_url,
            context_token: RawToken::new(get(CONTEXT_TOKEN)),
            delete_url,
            delete_token: RawToken::new(get(DELETE_TOKEN)),
            location,
            ports,
            host_id: found.get(HOST_ID).cloned().filter(|h| !h.is_empty()),
            tags,
        })
    }

    /// Parses the current process environment.
    pub fn from_process_env() -> Result<Self, ArbitriumError> {
        Self::from_vars(std::env::vars())
    }

    /// The port with this name (app-version port name, e.g. `"server port"`).
    pub fn port(&self, name: &str) -> Option<&ArbitriumPort> {
        self.ports.get(name)
    }
}

fn url_var(var: &'static str, value: String) -> Result<String, ArbitriumError> {
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(value)
    } else {
        Err(ArbitriumError::Malformed { var, reason: format!("expected an http(s) URL, got {value:?}") })
    }
}

fn parse_ports(raw: &str) -> Result<BTreeMap<String, ArbitriumPort>, ArbitriumError> {
    let parsed: PortsMappingJson = serde_json::from_str(raw)
        .map_err(|e| ArbitriumError::Malformed { var: PORTS_MAPPING, reason: e.to_string() })?;
    if parsed.ports.is_empty() {
        return Err(ArbitriumError::Malformed { var: PORTS_MAPPING, reason: "no ports in the mapping".into() });
    }
    Ok(parsed
        .ports
        .into_iter()
        .map(|(key, p)| {
            let port = ArbitriumPort {
                name: p.name.unwrap_or_else(|| key.clone()),
                internal: p.internal,
                external: p.external,
                protocol: p.protocol,
            };
            (key, port)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<(&'static str, String)> {
        vec![
            ("ARBITRIUM_REQUEST_ID", "835d0d69f2fc".into()),
            ("ARBITRIUM_PUBLIC_IP", "172.235.165.125".into()),
            ("ARBITRIUM_CONTEXT_URL", "https://api.edgegap.com/v1/context/835d0d69f2fc/17".into()),
            ("ARBITRIUM_CONTEXT_TOKEN", "dfaf50b9333b9ee07b22ed247e4a17e6".into()),
            ("ARBITRIUM_DELETE_URL", "https://api.edgegap.com/v1/self/stop/835d0d69f2fc/9".into()),
            ("ARBITRIUM_DELETE_TOKEN", "0f1e2d3c4b5a69788796a5b4c3d2e1f0".into()),
            (
                "ARBITRIUM_DEPLOYMENT_LOCATION",
                r#"{"city":"Amsterdam","country":"Netherlands","continent":"Europe","administrative_division":"North Holland","timezone":"Central European Time","latitude":51.9688,"longitude":4.7688}"#.into(),
            ),
            (
                "ARBITRIUM_PORTS_MAPPING",
                r#"{"ports":{"server port":{"name":"server port","internal":5420,"external":30898,"protocol":"UDP"}}}"#.into(),
            ),
            ("ARBITRIUM_DEPLOYMENT_TAGS", "tag1, tag2".into()),
            ("PATH", "/usr/bin".into()),
        ]
    }

    #[test]
    fn parses_a_full_environment() {
        let env = ArbitriumEnv::from_vars(sample()).expect("valid env");
        assert_eq!(env.request_id, "835d0d69f2fc");
        assert_eq!(env.public_ip.to_string(), "172.235.165.125");
        assert_eq!(env.location.city, "Amsterdam");
        let port = env.port("server port").expect("named port");
        assert_eq!((port.internal, port.external, port.protocol.as_str()), (5420, 30898, "UDP"));
        assert_eq!(env.tags, vec!["tag1", "tag2"]);
        assert!(!format!("{env:?}").contains("dfaf50b9333b9ee07b22ed247e4a17e6"));
    }

    #[test]
    fn reports_every_missing_variable() {
        let vars: Vec<_> = sample().into_iter().filter(|(k, _)| !k.contains("TOKEN")).collect();
        assert_eq!(
            ArbitriumEnv::from_vars(vars),
            Err(ArbitriumError::Missing(vec!["ARBITRIUM_CONTEXT_TOKEN", "ARBITRIUM_DELETE_TOKEN"]))
        );
        let err = ArbitriumEnv::from_vars(Vec::<(String, String)>::new()).expect_err("empty env");
        assert!(err.to_string().contains("ARBITRIUM_PORTS_MAPPING"), "{err}");
    }

    #[test]
    fn reports_malformed_values() {
        let with = |key: &str, value: &str| {
            sample().into_iter().map(|(k, v)| if k == key { (k, value.to_owned()) } else { (k, v) }).collect::<Vec<_>>()
        };
        let malformed = |key: &str, value: &str| match ArbitriumEnv::from_vars(with(key, value)) {
            Err(ArbitriumError::Malformed { var, .. }) => var,
            other => panic!("expected malformed {key}, got {other:?}"),
        };
        assert_eq!(malformed("ARBITRIUM_PUBLIC_IP", "not-an-ip"), "ARBITRIUM_PUBLIC_IP");
        assert_eq!(malformed("ARBITRIUM_PORTS_MAPPING", r#"{"ports":{}}"#), "ARBITRIUM_PORTS_MAPPING");
        assert_eq!(
            malformed("ARBITRIUM_PORTS_MAPPING", r#"{"ports":{"a":{"internal":"x"}}}"#),
            "ARBITRIUM_PORTS_MAPPING"
        );
        assert_eq!(malformed("ARBITRIUM_DEPLOYMENT_LOCATION", r#"{"city":"x"}"#), "ARBITRIUM_DEPLOYMENT_LOCATION");
        assert_eq!(malformed("ARBITRIUM_CONTEXT_URL", "api.edgegap.com/v1/context/x/1"), "ARBITRIUM_CONTEXT_URL");
    }
}
