use std::path::PathBuf;
use std::str::FromStr;

use crate::Secret;
use crate::env::{EnvError, EnvSource, parse_bool};

/// How to authenticate to NATS; at most one mode may be configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NatsAuth {
    #[default]
    None,
    UserPassword {
        user: String,
        password: Secret,
    },
    Token(Secret),
    /// An nkey seed (`SU…`), for servers configured with `nkey` users.
    NKey(Secret),
    /// A `.creds` file (user JWT plus nkey seed), for decentralised auth.
    CredsFile(PathBuf),
}

/// A custom CA to trust for the server's TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaSource {
    File(PathBuf),
    /// PEM text, for platforms such as Edgegap that pass files only as env contents.
    Pem(String),
}

/// Everything needed to connect to NATS; built from env with [`NatsConfig::from_env`].
///
/// | variable | meaning |
/// |---|---|
/// | `NATS_URL` | server URL, or several comma-separated for a cluster (default `nats://127.0.0.1:4222`) |
/// | `NATS_USER`, `NATS_PASSWORD` | user/password auth (both required together) |
/// | `NATS_TOKEN` | token auth |
/// | `NATS_NKEY_SEED` | nkey seed auth |
/// | `NATS_CREDS_FILE` | path of a `.creds` file |
/// | `NATS_CA_FILE` | path of a PEM CA bundle to trust |
/// | `NATS_CA_PEM` | the PEM CA bundle itself |
/// | `NATS_REQUIRE_TLS` | `true` to refuse plaintext connections |
///
/// `Debug` shows URLs through [`redact_url`], so credentials written into a URL never reach logs.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsConfig {
    pub urls: Vec<String>,
    pub auth: NatsAuth,
    pub ca: Option<CaSource>,
    pub require_tls: bool,
    /// Shown in the server's connection list (`nats server report connections`).
    pub client_name: String,
}

impl NatsConfig {
    /// The default URL when `NATS_URL` is unset.
    pub const DEFAULT_URL: &'static str = "nats://127.0.0.1:4222";

    /// A config for one URL with no auth and no TLS.
    pub fn new(url: impl Into<String>, client_name: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            auth: NatsAuth::None,
            ca: None,
            require_tls: false,
            client_name: client_name.into(),
        }
    }

    /// Reads the process environment; see the table on [`NatsConfig`].
    pub fn from_env(client_name: &str) -> Result<Self, EnvError> {
        Self::from_source(&crate::env::ProcessEnv, client_name)
    }

    /// Reads the configuration from any [`EnvSource`]; errors name the offending variable.
    pub fn from_source(env: &dyn EnvSource, client_name: &str) -> Result<Self, EnvError> {
        let urls = match env.var("NATS_URL") {
            None => vec![Self::DEFAULT_URL.to_string()],
            Some(list) => parse_urls(&list)?,
        };
        let mut modes: Vec<(&'static str, NatsAuth)> = Vec::new();
        match (env.var("NATS_USER"), env.var("NATS_PASSWORD")) {
            (Some(user), Some(password)) => {
                modes.push(("NATS_USER", NatsAuth::UserPassword { user, password: Secret::new(password) }))
            }
            (Some(_), None) => return Err(EnvError::new("NATS_PASSWORD", "is required when NATS_USER is set")),
            (None, Some(_)) => return Err(EnvError::new("NATS_USER", "is required when NATS_PASSWORD is set")),
            (None, None) => {}
        }
        if let Some(token) = env.var("NATS_TOKEN") {
            modes.push(("NATS_TOKEN", NatsAuth::Token(Secret::new(token))));
        }
        if let Some(seed) = env.var("NATS_NKEY_SEED") {
            let seed = seed.trim().to_string();
            if !seed.starts_with('S') || seed.len() < 32 {
                return Err(EnvError::new(
                    "NATS_NKEY_SEED",
                    "is not an nkey seed (it should start with 'S', e.g. SUA…)",
                ));
            }
            modes.push(("NATS_NKEY_SEED", NatsAuth::NKey(Secret::new(seed))));
        }
        if let Some(path) = env.var("NATS_CREDS_FILE") {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(EnvError::new("NATS_CREDS_FILE", format!("{} is not a readable file", path.display())));
            }
            modes.push(("NATS_CREDS_FILE", NatsAuth::CredsFile(path)));
        }
        if modes.len() > 1 {
            let names: Vec<_> = modes.iter().map(|(n, _)| *n).collect();
            return Err(EnvError::new(
                modes[1].0,
                format!("only one NATS auth mode may be set, found {}", names.join(", ")),
            ));
        }
        let auth = modes.pop().map(|(_, a)| a).unwrap_or_default();
        let ca = match (env.var("NATS_CA_FILE"), env.var("NATS_CA_PEM")) {
            (Some(_), Some(_)) => {
                return Err(EnvError::new("NATS_CA_PEM", "set NATS_CA_FILE or NATS_CA_PEM, not both"));
            }
            (Some(path), None) => {
                let path = PathBuf::from(path);
                if !path.is_file() {
                    return Err(EnvError::new("NATS_CA_FILE", format!("{} is not a readable file", path.display())));
                }
                Some(CaSource::File(path))
            }
            (None, Some(pem)) => {
                if !pem.contains("-----BEGIN CERTIFICATE-----") {
                    return Err(EnvError::new("NATS_CA_PEM", "does not contain a PEM certificate"));
                }
                Some(CaSource::Pem(pem))
            }
            (None, None) => None,
        };
        let require_tls = parse_bool(env, "NATS_REQUIRE_TLS")?.unwrap_or(false);
        Ok(Self { urls, auth, ca, require_tls, client_name: client_name.to_string() })
    }
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("urls", &self.urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>())
            .field("auth", &self.auth)
            .field("ca", &self.ca)
            .field("require_tls", &self.require_tls)
            .field("client_name", &self.client_name)
            .finish()
    }
}

/// A URL with any `user:password@` or `token@` part replaced by `***@`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if scheme.is_empty() => format!("***@{}", &rest[at + 1..]),
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

fn parse_urls(list: &str) -> Result<Vec<String>, EnvError> {
    let urls: Vec<String> = list.split(',').map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect();
    if urls.is_empty() {
        return Err(EnvError::new("NATS_URL", "contains no URL"));
    }
    for url in &urls {
        async_nats::ServerAddr::from_str(url)
            .map_err(|e| EnvError::new("NATS_URL", format!("{:?} is not a NATS URL: {e}", redact_url(url))))?;
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<NatsConfig, EnvError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        NatsConfig::from_source(&map, "test")
    }

    #[test]
    fn defaults_to_local_plaintext() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.urls, vec![NatsConfig::DEFAULT_URL]);
        assert_eq!(c.auth, NatsAuth::None);
        assert!(!c.require_tls);
    }

    #[test]
    fn parses_a_cluster_and_user_password() {
        let c =
            cfg(&[("NATS_URL", "nats://a:4222, tls://b:4223"), ("NATS_USER", "mm"), ("NATS_PASSWORD", "pw")]).unwrap();
        assert_eq!(c.urls, vec!["nats://a:4222", "tls://b:4223"]);
        assert!(matches!(c.auth, NatsAuth::UserPassword { ref user, .. } if user == "mm"));
        assert!(!format!("{c:?}").contains("pw\""), "password leaked into Debug: {c:?}");
    }

    #[test]
    fn credentials_in_urls_never_show() {
        assert_eq!(redact_url("nats://mm:pw@host:4222"), "nats://***@host:4222");
        assert_eq!(redact_url("tok@host:4222"), "***@host:4222");
        assert_eq!(redact_url("tls://host:4222"), "tls://host:4222");
        let c = cfg(&[("NATS_URL", "nats://mm:s3cret@host:4222")]).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
        let err = cfg(&[("NATS_URL", "nats://mm:s3cret@host:notaport")]).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn misconfiguration_names_the_variable() {
        assert_eq!(cfg(&[("NATS_USER", "mm")]).unwrap_err().var, "NATS_PASSWORD");
        assert_eq!(cfg(&[("NATS_URL", "http://x:1:2:3")]).unwrap_err().var, "NATS_URL");
        assert_eq!(cfg(&[("NATS_REQUIRE_TLS", "maybe")]).unwrap_err().var, "NATS_REQUIRE_TLS");
        assert_eq!(cfg(&[("NATS_CA_FILE", "/nonexistent/ca.pem")]).unwrap_err().var, "NATS_CA_FILE");
        assert_eq!(cfg(&[("NATS_CA_PEM", "garbage")]).unwrap_err().var, "NATS_CA_PEM");
        assert_eq!(cfg(&[("NATS_NKEY_SEED", "UABC")]).unwrap_err().var, "NATS_NKEY_SEED");
        let both = cfg(&[("NATS_USER", "u"), ("NATS_PASSWORD", "p"), ("NATS_TOKEN", "t")]).unwrap_err();
        assert_eq!(both.var, "NATS_TOKEN");
        assert!(both.reason.contains("only one"), "{both}");
        assert_eq!(cfg(&[("NATS_CREDS_FILE", "/nonexistent.creds")]).unwrap_err().var, "NATS_CREDS_FILE");
    }
}
