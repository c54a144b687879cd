//! Context for servers started by a Bevygap provider (`local`, `fleet`) and for standalone
//! development runs. Both read [`ServerEnv`]; standalone fills in development defaults.

use std::collections::HashMap;

use bevygap_shared::env::{EnvError, EnvSource};
use bevygap_shared::server_env::ServerEnv;

use super::{Layered, ServerContext, ServerOrigin};

/// Namespace used by standalone servers when `BEVYGAP_NAMESPACE` is unset.
pub const DEV_NAMESPACE: &str = "bevygap-dev";
/// UDP address a standalone server binds when no transport is configured.
pub const DEV_UDP_BIND: &str = "127.0.0.1:5000";
/// Game name of a standalone server when `BEVYGAP_GAME` is unset.
pub const DEV_GAME: &str = "dev-game";
/// Version of a standalone server when `BEVYGAP_VERSION` is unset.
pub const DEV_VERSION: &str = "dev";

/// A server started by a provider: everything comes from [`ServerEnv`].
pub fn resolve(env: &dyn EnvSource) -> Result<ServerContext, EnvError> {
    let server_env = ServerEnv::from_source(env)?;
    let origin = match server_env.provider.as_str() {
        "standalone" => ServerOrigin::Standalone,
        other => ServerOrigin::Bevygap(other.to_string()),
    };
    Ok(ServerContext::from_server_env(server_env, origin))
}

/// A development server: the [`ServerEnv`] variables still apply, with defaults for every
/// required one (`standalone-<random>` id, namespace [`DEV_NAMESPACE`], UDP on
/// [`DEV_UDP_BIND`] unless a transport is configured).
pub fn standalone(env: &dyn EnvSource) -> Result<ServerContext, EnvError> {
    let mut defaults: HashMap<&'static str, String> = HashMap::from([
        ("BEVYGAP_NAMESPACE", DEV_NAMESPACE.to_string()),
        ("BEVYGAP_GAME", DEV_GAME.to_string()),
        ("BEVYGAP_VERSION", DEV_VERSION.to_string()),
    ]);
    if env.var("BEVYGAP_UDP_BIND").is_none() && env.var("BEVYGAP_WT_BIND").is_none() {
        defaults.insert("BEVYGAP_UDP_BIND", DEV_UDP_BIND.to_string());
    }
    let overrides = HashMap::from([
        ("BEVYGAP_SERVER_ID", format!("standalone-{:016x}", rand::random::<u64>())),
        ("BEVYGAP_PROVIDER", "standalone".to_string()),
    ]);
    let server_env = ServerEnv::from_source(&Layered { inner: env, overrides, defaults })?;
    Ok(ServerContext::from_server_env(server_env, ServerOrigin::Standalone))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::context::ServerContext;

    fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn standalone_has_working_development_defaults() {
        let ctx = ServerContext::from_source(&env(&[])).unwrap();
        assert_eq!(ctx.origin, ServerOrigin::Standalone);
        assert!(ctx.server_id.as_str().starts_with("standalone-"));
        assert_eq!(ctx.namespace.as_str(), DEV_NAMESPACE);
        assert_eq!(ctx.udp.unwrap().bind, DEV_UDP_BIND.parse().unwrap());
        assert!(ctx.webtransport.is_none());
        let other = ServerContext::from_source(&env(&[])).unwrap();
        assert_ne!(ctx.server_id, other.server_id, "two standalone servers must not share records");
    }

    #[test]
    fn standalone_honours_configured_transports_and_namespace() {
        let ctx = ServerContext::from_source(&env(&[
            ("BEVYGAP_NAMESPACE", "mygame"),
            ("BEVYGAP_WT_BIND", "0.0.0.0:6000"),
            ("BEVYGAP_WT_PUBLIC", "10.1.2.3:6000"),
        ]))
        .unwrap();
        assert_eq!(ctx.namespace.as_str(), "mygame");
        assert!(ctx.udp.is_none(), "a configured transport replaces the UDP default");
        assert_eq!(ctx.webtransport.unwrap().public, "10.1.2.3:6000".parse().unwrap());
        assert_eq!(ctx.certificate_names(), vec!["localhost", "10.1.2.3"]);
    }

    #[test]
    fn provider_env_is_used_as_given_and_errors_name_the_variable() {
        let ctx = ServerContext::from_source(&env(&[
            ("BEVYGAP_NAMESPACE", "ns"),
            ("BEVYGAP_SERVER_ID", "local-7"),
            ("BEVYGAP_PROVIDER", "local"),
            ("BEVYGAP_GAME", "g"),
            ("BEVYGAP_VERSION", "1.0"),
            ("BEVYGAP_CAPACITY", "4"),
            ("BEVYGAP_UDP_BIND", "127.0.0.1:7000"),
        ]))
        .unwrap();
        assert_eq!(ctx.server_id.as_str(), "local-7");
        assert_eq!(ctx.origin, ServerOrigin::Bevygap("local".into()));
        assert_eq!(ctx.origin.name(), "local");
        assert_eq!(ctx.capacity, 4);

        let err = ServerContext::from_source(&env(&[("BEVYGAP_SERVER_ID", "local-7")])).unwrap_err();
        assert!(err.to_string().contains("BEVYGAP_NAMESPACE"), "{err}");
        let err = ServerContext::from_source(&env(&[("BEVYGAP_UDP_BIND", "not-an-addr")])).unwrap_err();
        assert!(err.to_string().contains("BEVYGAP_UDP_BIND"), "{err}");
    }
}
