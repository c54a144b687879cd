//! The environment a provider gives a game server it starts (the `local` and `fleet`
//! providers; on Edgegap the server reads `ARBITRIUM_*` instead and the rest is set in the app
//! version's env). One struct both sides use, so the contract cannot drift.
//!
//! | variable | meaning |
//! |---|---|
//! | `BEVYGAP_NAMESPACE` | NATS namespace (the app name) |
//! | `BEVYGAP_SERVER_ID` | this server's id, assigned by the provider |
//! | `BEVYGAP_PROVIDER` | `local`, `fleet`, `edgegap` or `standalone` |
//! | `BEVYGAP_GAME`, `BEVYGAP_VERSION` | what this server runs |
//! | `BEVYGAP_CAPACITY` | most players it takes (default 16) |
//! | `BEVYGAP_UDP_BIND`, `BEVYGAP_UDP_PUBLIC` | UDP socket to bind, and the address clients dial |
//! | `BEVYGAP_WT_BIND`, `BEVYGAP_WT_PUBLIC` | same for WebTransport |
//!
//! NATS configuration (`NATS_*`) and Lightyear keys (`LIGHTYEAR_*`) are passed through as well.

use std::net::SocketAddr;

use crate::env::{EnvError, EnvSource};
use crate::naming::{Namespace, ServerId};
use crate::protocol::{GameName, GameVersion};

/// Where one transport listens and where clients reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// The socket the server binds (often `0.0.0.0:<port>` in a container).
    pub bind: SocketAddr,
    /// The address put in ConnectTokens; differs from `bind` behind NAT or port mapping.
    pub public: SocketAddr,
}

/// Everything a provider tells a game server about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEnv {
    pub namespace: Namespace,
    pub server_id: ServerId,
    pub provider: String,
    pub game: GameName,
    pub version: GameVersion,
    pub capacity: u32,
    pub udp: Option<Endpoint>,
    pub webtransport: Option<Endpoint>,
}

impl ServerEnv {
    /// Default capacity when `BEVYGAP_CAPACITY` is unset.
    pub const DEFAULT_CAPACITY: u32 = 16;

    /// The variables to set on the child process (NATS and key variables are added separately).
    pub fn to_vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("BEVYGAP_NAMESPACE", self.namespace.to_string()),
            ("BEVYGAP_SERVER_ID", self.server_id.to_string()),
            ("BEVYGAP_PROVIDER", self.provider.clone()),
            ("BEVYGAP_GAME", self.game.to_string()),
            ("BEVYGAP_VERSION", self.version.to_string()),
            ("BEVYGAP_CAPACITY", self.capacity.to_string()),
        ];
        if let Some(e) = self.udp {
            vars.push(("BEVYGAP_UDP_BIND", e.bind.to_string()));
            vars.push(("BEVYGAP_UDP_PUBLIC", e.public.to_string()));
        }
        if let Some(e) = self.webtransport {
            vars.push(("BEVYGAP_WT_BIND", e.bind.to_string()));
            vars.push(("BEVYGAP_WT_PUBLIC", e.public.to_string()));
        }
        vars
    }

    /// Reads the contract from env; every error names its variable. At least one transport
    /// must be configured.
    pub fn from_source(env: &dyn EnvSource) -> Result<Self, EnvError> {
        let required = |var: &'static str| env.var(var).ok_or_else(|| EnvError::new(var, "is required"));
        let namespace = Namespace::new(required("BEVYGAP_NAMESPACE")?)
            .map_err(|e| EnvError::new("BEVYGAP_NAMESPACE", e.to_string()))?;
        let server_id = ServerId::new(required("BEVYGAP_SERVER_ID")?)
            .map_err(|e| EnvError::new("BEVYGAP_SERVER_ID", e.to_string()))?;
        let game =
            GameName::new(required("BEVYGAP_GAME")?).map_err(|e| EnvError::new("BEVYGAP_GAME", e.to_string()))?;
        let version = GameVersion::new(required("BEVYGAP_VERSION")?)
            .map_err(|e| EnvError::new("BEVYGAP_VERSION", e.to_string()))?;
        let capacity = match env.var("BEVYGAP_CAPACITY") {
            None => Self::DEFAULT_CAPACITY,
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| EnvError::new("BEVYGAP_CAPACITY", format!("{text:?} is not a positive integer")))?,
        };
        let udp = endpoint(env, "BEVYGAP_UDP_BIND", "BEVYGAP_UDP_PUBLIC")?;
        let webtransport = endpoint(env, "BEVYGAP_WT_BIND", "BEVYGAP_WT_PUBLIC")?;
        if udp.is_none() && webtransport.is_none() {
            return Err(EnvError::new("BEVYGAP_UDP_BIND", "set it or BEVYGAP_WT_BIND: the server needs a transport"));
        }
        let provider = env.var("BEVYGAP_PROVIDER").unwrap_or_else(|| "standalone".into());
        Ok(Self { namespace, server_id, provider, game, version, capacity, udp, webtransport })
    }
}

fn endpoint(
    env: &dyn EnvSource,
    bind_var: &'static str,
    public_var: &'static str,
) -> Result<Option<Endpoint>, EnvError> {
    let parse = |var: &'static str, text: String| {
        text.trim()
            .parse::<SocketAddr>()
            .map_err(|_| EnvError::new(var, format!("{text:?} is not an ip:port socket address")))
    };
    let bind = match env.var(bind_var) {
        Some(text) => parse(bind_var, text)?,
        None if env.var(public_var).is_some() => {
            return Err(EnvError::new(bind_var, format!("is required when {public_var} is set")));
        }
        None => return Ok(None),
    };
    let public = match env.var(public_var) {
        Some(text) => parse(public_var, text)?,
        None if bind.ip().is_unspecified() => {
            return Err(EnvError::new(public_var, format!("is required when {bind_var} binds all interfaces")));
        }
        None => bind,
    };
    Ok(Some(Endpoint { bind, public }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn base() -> HashMap<String, String> {
        [
            ("BEVYGAP_NAMESPACE", "ns"),
            ("BEVYGAP_SERVER_ID", "local-1"),
            ("BEVYGAP_GAME", "g"),
            ("BEVYGAP_VERSION", "1.0"),
            ("BEVYGAP_UDP_BIND", "127.0.0.1:5000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn round_trips_through_vars() {
        let env = ServerEnv::from_source(&base()).unwrap();
        assert_eq!(env.udp.unwrap().public, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(env.capacity, ServerEnv::DEFAULT_CAPACITY);
        let vars: HashMap<String, String> = env.to_vars().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(ServerEnv::from_source(&vars).unwrap(), env);
    }

    #[test]
    fn errors_name_the_variable() {
        let mut env = base();
        env.remove("BEVYGAP_SERVER_ID");
        assert_eq!(ServerEnv::from_source(&env).unwrap_err().var, "BEVYGAP_SERVER_ID");
        let mut env = base();
        env.insert("BEVYGAP_UDP_BIND".into(), "0.0.0.0:5000".into());
        assert_eq!(ServerEnv::from_source(&env).unwrap_err().var, "BEVYGAP_UDP_PUBLIC");
        let mut env = base();
        env.insert("BEVYGAP_CAPACITY".into(), "0".into());
        assert_eq!(ServerEnv::from_source(&env).unwrap_err().var, "BEVYGAP_CAPACITY");
        let mut env = base();
        env.remove("BEVYGAP_UDP_BIND");
        assert_eq!(ServerEnv::from_source(&env).unwrap_err().var, "BEVYGAP_UDP_BIND");
        let mut env = base();
        env.insert("BEVYGAP_WT_PUBLIC".into(), "nonsense".into());
        assert_eq!(ServerEnv::from_source(&env).unwrap_err().var, "BEVYGAP_WT_BIND");
    }
}
