use std::path::PathBuf;
use std::str::FromStr;

use crate::Secret;
use crate::env::{EnvError, EnvSource, parse_bool};
use crate::naming::{NatsNames, NatsRole, ServerId};

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
/// | `NATS_URL` | server URL, or several comma-separated for a cluster (default `nats://127.0.0.1:4222`); may carry `user:password@` or `token@` (see below) |
/// | `NATS_USER`, `NATS_PASSWORD` | user/password auth (both required together) |
/// | `NATS_TOKEN` | token auth |
/// | `NATS_NKEY_SEED` | nkey seed auth |
/// | `NATS_CREDS_FILE` | path of a `.creds` file |
/// | `NATS_CA_FILE` | path of a PEM CA bundle to trust |
/// | `NATS_CA_PEM` | the PEM CA bundle itself |
/// | `NATS_REQUIRE_TLS` | `true` to refuse plaintext connections |
/// | `NATS_INBOX_PREFIX` | the connection's inbox prefix (default: the role's, see [`NatsConfig::for_role`]) |
///
/// Credentials written into `NATS_URL` (`nats://user:password@host:4222`, `nats://token@host`)
/// are taken out of the URLs while parsing and kept in [`NatsConfig::auth`]: async-nats 0.51
/// ignores URL credentials and logs server URLs at debug level, so URLs handed to it must not
/// carry any. Everything up to the last `@` is the userinfo, so a password may contain `/`,
/// `@`, `:`, `#` or `?` as they are; `%XX` sequences are decoded (write a literal `%` as
/// `%25`, and a `,`, which separates URLs, as `%2C`). A URL's credentials count as one auth
/// mode, exclusive with `NATS_USER`/`NATS_TOKEN`/…, and every URL that has some must have the
/// same.
///
/// `Debug` shows URLs through [`redact_url`], and errors never show a URL's credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsConfig {
    pub urls: Vec<String>,
    pub auth: NatsAuth,
    pub ca: Option<CaSource>,
    pub require_tls: bool,
    /// Shown in the server's connection list (`nats server report connections`).
    pub client_name: String,
    /// Where replies and KV watch deliveries arrive (`<prefix>.>`); `None` is async-nats'
    /// `_INBOX`, which every user of the account may be allowed to read. Set from the role by
    /// [`NatsConfig::for_role`] unless `NATS_INBOX_PREFIX` chose one.
    pub inbox_prefix: Option<String>,
}

impl NatsConfig {
    /// The default URL when `NATS_URL` is unset.
    pub const DEFAULT_URL: &'static str = "nats://127.0.0.1:4222";

    /// A config for one URL with no TLS; credentials in the URL (`user:password@`, `token@`)
    /// become its auth, the URL keeps none.
    pub fn new(url: impl Into<String>, client_name: impl Into<String>) -> Self {
        let (url, auth) = split_credentials(&url.into());
        Self {
            urls: vec![url],
            auth: auth.unwrap_or_default(),
            ca: None,
            require_tls: false,
            client_name: client_name.into(),
            inbox_prefix: None,
        }
    }

    /// This configuration for a connection acting as `role` in `names`' namespace: its inbox
    /// prefix becomes the role's ([`NatsNames::inbox_prefix`]), unless one was set already
    /// (`NATS_INBOX_PREFIX`). The shipped NATS permissions let each role subscribe only to its
    /// own prefix, so a game server cannot read the matchmaker's replies, nor the reverse.
    pub fn for_role(mut self, names: &NatsNames, role: NatsRole) -> Self {
        self.inbox_prefix.get_or_insert_with(|| names.inbox_prefix(role));
        self
    }

    /// This configuration for game server `server_id`: like [`Self::for_role`] with
    /// [`NatsRole::GameServer`], with the server's own inbox inside the role's
    /// ([`NatsNames::game_server_inbox_prefix`]), which per-server credentials may read alone.
    pub fn for_game_server(mut self, names: &NatsNames, server_id: &ServerId) -> Self {
        self.inbox_prefix.get_or_insert_with(|| names.game_server_inbox_prefix(server_id));
        self
    }

    /// The URLs to hand to async-nats (without credentials) and the auth to use. Credentials
    /// still inside [`Self::urls`] (set directly rather than parsed) are moved out here; they
    /// must not contradict [`Self::auth`].
    pub fn server_urls_and_auth(&self) -> Result<(Vec<String>, NatsAuth), &'static str> {
        let mut auth = self.auth.clone();
        let mut urls = Vec::with_capacity(self.urls.len());
        for url in &self.urls {
            let (bare, found) = split_credentials(url);
            if let Some(found) = found {
                match &auth {
                    NatsAuth::None => auth = found,
                    same if *same == found => {}
                    _ => return Err("a NATS URL carries credentials that differ from the configured auth"),
                }
            }
            urls.push(bare);
        }
        Ok((urls, auth))
    }

    /// Reads the process environment; see the table on [`NatsConfig`].
    pub fn from_env(client_name: &str) -> Result<Self, EnvError> {
        Self::from_source(&crate::env::ProcessEnv, client_name)
    }

    /// Reads the configuration from any [`EnvSource`]; errors name the offending variable.
    pub fn from_source(env: &dyn EnvSource, client_name: &str) -> Result<Self, EnvError> {
        let (urls, url_auth) = match env.var("NATS_URL") {
            None => (vec![Self::DEFAULT_URL.to_string()], None),
            Some(list) => parse_urls(&list)?,
        };
        let mut modes: Vec<(&'static str, NatsAuth)> = Vec::new();
        if let Some(auth) = url_auth {
            modes.push(("NATS_URL", auth));
        }
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
        let inbox_prefix = match env.var("NATS_INBOX_PREFIX").map(|p| p.trim().to_string()) {
            None => None,
            Some(prefix) => {
                let valid = !prefix.is_empty()
                    && !prefix.starts_with('.')
                    && !prefix.ends_with('.')
                    && !prefix.contains("..")
                    && prefix.chars().all(|c| c.is_ascii_graphic() && c != '*' && c != '>');
                if !valid {
                    return Err(EnvError::new(
                        "NATS_INBOX_PREFIX",
                        "must be a subject without wildcards or spaces, e.g. _INBOX_bevygap_<namespace>_<role>",
                    ));
                }
                Some(prefix)
            }
        };
        Ok(Self { urls, auth, ca, require_tls, client_name: client_name.to_string(), inbox_prefix })
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
            .field("inbox_prefix", &self.inbox_prefix)
            .finish()
    }
}

/// A URL, or a comma-separated list of them, with every `user:password@` or `token@` part
/// replaced by `***@`, for logs and errors. The userinfo is everything up to the *last* `@` of
/// each URL, so passwords containing `/`, `@`, `:`, `#` or `?` are hidden whole.
pub fn redact_url(url: &str) -> String {
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
    let Some(at) = url.rfind('@') else { return url.to_string() };
    let host = &url[at + 1..];
    match scheme(url) {
        Some(scheme) => format!("{scheme}://***@{host}"),
        None => format!("***@{host}"),
    }
}

/// The scheme of `url` (`nats` of `nats://…`), if it starts with one.
fn scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.trim_start().split_once("://")?;
    let valid = !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    valid.then_some(scheme)
}

/// Splits the credentials out of one URL: the URL without them, and the auth they stand for
/// (`user:password` -> user and password, `token` -> token; `%XX` decoded).
fn split_credentials(url: &str) -> (String, Option<NatsAuth>) {
    let url = url.trim();
    let Some(at) = url.rfind('@') else { return (url.to_string(), None) };
    let (prefix, rest) = match scheme(url) {
        Some(scheme) => (format!("{scheme}://"), &url[scheme.len() + 3..at]),
        None => (String::new(), &url[..at]),
    };
    let bare = format!("{prefix}{}", &url[at + 1..]);
    let auth = match rest.split_once(':') {
        Some((user, password)) if !user.is_empty() => {
            NatsAuth::UserPassword { user: percent_decode(user), password: Secret::new(percent_decode(password)) }
        }
        Some((_, token)) => NatsAuth::Token(Secret::new(percent_decode(token))),
        None => NatsAuth::Token(Secret::new(percent_decode(rest))),
    };
    (bare, Some(auth))
}

/// Decodes `%XX` sequences; anything else (a lone `%`, invalid UTF-8) is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

/// Parses `NATS_URL`: the URLs without credentials, and the credentials they carried. Errors
/// never quote a URL when the list holds credentials (a malformed entry may be cut anywhere
/// inside a password).
fn parse_urls(list: &str) -> Result<(Vec<String>, Option<NatsAuth>), EnvError> {
    let has_credentials = list.contains('@');
    let entries: Vec<&str> = list.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
    if entries.is_empty() {
        return Err(EnvError::new("NATS_URL", "contains no URL"));
    }
    let mut urls = Vec::with_capacity(entries.len());
    let mut auth: Option<NatsAuth> = None;
    for (index, entry) in entries.iter().enumerate() {
        let (bare, found) = split_credentials(entry);
        let parsed = async_nats::ServerAddr::from_str(&bare).and_then(|addr| match addr.host() {
            "" => Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "it names no host")),
            _ => Ok(addr),
        });
        if let Err(e) = parsed {
            let which = if has_credentials {
                format!("entry {} (not shown: the list holds credentials)", index + 1)
            } else {
                format!("{bare:?}")
            };
            return Err(EnvError::new("NATS_URL", format!("{which} is not a NATS URL: {e}")));
        }
        match (&auth, found) {
            (_, None) => {}
            (None, Some(found)) => auth = Some(found),
            (Some(known), Some(found)) if *known == found => {}
            (Some(_), Some(_)) => {
                return Err(EnvError::new(
                    "NATS_URL",
                    "its URLs carry different credentials; use one set (or NATS_USER/NATS_PASSWORD)",
                ));
            }
        }
        urls.push(bare);
    }
    Ok((urls, auth))
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
    fn redaction_hides_passwords_with_special_characters() {
        for (url, redacted) in [
            ("nats://mm:pa/ss@host:4222", "nats://***@host:4222"),
            ("nats://mm:p@ss@host:4222", "nats://***@host:4222"),
            ("nats://mm:pa:ss@host:4222", "nats://***@host:4222"),
            ("nats://mm:pa#ss@host:4222", "nats://***@host:4222"),
            ("nats://mm:pa?ss@host:4222", "nats://***@host:4222"),
            ("tls://mm:a/b@c:d#e?f@[::1]:4222", "tls://***@[::1]:4222"),
            ("mm:pa/ss@host:4222", "***@host:4222"),
            ("t/o@k#en@host", "***@host"),
            ("nats://a:1,nats://mm:p/w@b:2, tls://t@k@c:3", "nats://a:1,nats://***@b:2,tls://***@c:3"),
        ] {
            assert_eq!(redact_url(url), redacted, "{url}");
        }
    }

    #[test]
    fn credentials_leave_the_urls_for_the_auth() {
        let c = cfg(&[("NATS_URL", "nats://mm:p/w@d:#x?@a:4222, nats://mm:p/w@d:#x?@b:4222")]).unwrap();
        assert_eq!(c.urls, vec!["nats://a:4222", "nats://b:4222"]);
        assert_eq!(c.auth, NatsAuth::UserPassword { user: "mm".into(), password: Secret::new("p/w@d:#x?") });
        let c = cfg(&[("NATS_URL", "tls://s%2Fcr%40t@host:4222,tls://other:4222")]).unwrap();
        assert_eq!(c.urls, vec!["tls://host:4222", "tls://other:4222"]);
        assert_eq!(c.auth, NatsAuth::Token(Secret::new("s/cr@t")), "a lone userinfo is a token, %XX decoded");
        assert_eq!(percent_decode("50%off%25%zz%"), "50%off%%zz%");
        let c = NatsConfig::new("nats://u:p@h:1", "x");
        assert_eq!(
            (c.urls.clone(), c.auth.clone()),
            (vec!["nats://h:1".to_string()], NatsAuth::UserPassword { user: "u".into(), password: Secret::new("p") })
        );

        let twice = cfg(&[("NATS_URL", "nats://u:p@h:1"), ("NATS_TOKEN", "t")]).unwrap_err();
        assert_eq!(twice.var, "NATS_TOKEN");
        assert!(twice.reason.contains("NATS_URL") && !twice.reason.contains("u:p"), "{twice}");
        let differ = cfg(&[("NATS_URL", "nats://u:p1@h:1,nats://u:p2@h:2")]).unwrap_err();
        assert!(differ.reason.contains("different credentials") && !differ.reason.contains("p1"), "{differ}");

        // Credentials put into `urls` by hand are moved out before connecting.
        let mut c = NatsConfig::new("nats://h:1", "x");
        c.urls = vec!["nats://tok@h:1".into()];
        assert_eq!(c.server_urls_and_auth(), Ok((vec!["nats://h:1".to_string()], NatsAuth::Token(Secret::new("tok")))));
        c.auth = NatsAuth::Token(Secret::new("other"));
        assert!(c.server_urls_and_auth().is_err());
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
        for bad in ["a.>", "a *", "_INBOX.", ".x"] {
            assert_eq!(cfg(&[("NATS_INBOX_PREFIX", bad)]).unwrap_err().var, "NATS_INBOX_PREFIX", "{bad:?}");
        }
    }

    #[test]
    fn each_role_gets_its_own_inbox_unless_one_is_configured() {
        let names = crate::Namespace::new("ns").unwrap().names();
        let c = cfg(&[]).unwrap().for_role(&names, NatsRole::GameServer);
        assert_eq!(c.inbox_prefix.as_deref(), Some("_INBOX_bevygap_ns_gameserver"));
        let c = cfg(&[("NATS_INBOX_PREFIX", "_INBOX_custom")]).unwrap().for_role(&names, NatsRole::Matchmaker);
        assert_eq!(c.inbox_prefix.as_deref(), Some("_INBOX_custom"));
    }
}
