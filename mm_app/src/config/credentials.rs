//! `--server-credential-key` and the auth callout's flags, validated into a
//! [`ServerCredentialConfig`] when per-server credentials are on.

use std::num::NonZeroU64;
use std::time::Duration;

use bevygap_shared::Secret;
use bevygap_shared::naming::Namespace;
use bevygap_shared::nats::server_credentials::ServerCredentialKey;
use clap::Args;

use super::{ConfigError, bad};
use crate::servers::{AuthCalloutConfig, ServerCredentialConfig};

/// Per-server NATS credentials, and the auth callout service that checks them.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server credentials")]
pub struct CredentialArgs {
    /// Secret (32 bytes as 64 hex characters) for per-server NATS credentials: every server
    /// the matchmaker launches gets its own NATS_USER/NATS_PASSWORD, and a nats-server set up
    /// as in assets/nats/bevygap-per-server.conf confines it to its own records. Every replica
    /// needs the same key. Never logged.
    #[arg(long, env = "BEVYGAP_SERVER_CREDENTIAL_KEY", hide_env_values = true, value_parser = super::secret)]
    pub server_credential_key: Option<Secret>,
    /// How long issued server credentials stay valid, in hours (longer than any server lives).
    #[arg(long, env = "BEVYGAP_SERVER_CREDENTIAL_HOURS", default_value_t = NonZeroU64::new(336).unwrap_or(NonZeroU64::MIN))]
    pub server_credential_hours: NonZeroU64,
    /// Account nkey seed (SA…) of the auth callout issuer: set it to have this matchmaker
    /// answer nats-server's authorization requests for game servers. Never logged.
    #[arg(long, env = "BEVYGAP_AUTH_CALLOUT_ISSUER_SEED", hide_env_values = true, value_parser = super::secret)]
    pub auth_callout_issuer_seed: Option<Secret>,
    /// The callout account's user the service connects as.
    #[arg(long, env = "BEVYGAP_AUTH_CALLOUT_USER", default_value = "auth")]
    pub auth_callout_user: String,
    /// Its password. Never logged.
    #[arg(long, env = "BEVYGAP_AUTH_CALLOUT_PASSWORD", hide_env_values = true, value_parser = super::secret)]
    pub auth_callout_password: Option<Secret>,
    /// NATS account game servers are placed in. Default: bevygap_<namespace>.
    #[arg(long, env = "BEVYGAP_AUTH_CALLOUT_ACCOUNT")]
    pub auth_callout_account: Option<String>,
}

impl CredentialArgs {
    /// `None` unless a key is set; every error names its variable and none quotes a secret.
    pub fn validate(self, namespace: &Namespace) -> Result<Option<ServerCredentialConfig>, ConfigError> {
        const KEY: &str = "--server-credential-key / BEVYGAP_SERVER_CREDENTIAL_KEY";
        const SEED: &str = "--auth-callout-issuer-seed / BEVYGAP_AUTH_CALLOUT_ISSUER_SEED";
        let key = self.server_credential_key.filter(|k| !k.expose().trim().is_empty());
        let seed = self.auth_callout_issuer_seed.filter(|s| !s.expose().trim().is_empty());
        let Some(key) = key else {
            return match seed {
                Some(_) => Err(bad(KEY, "is required with an auth callout issuer seed")),
                None => Ok(None),
            };
        };
        // The parse error never quotes the key.
        let key = ServerCredentialKey::from_hex(key.expose().trim()).map_err(|e| bad(KEY, e.to_string()))?;
        let callout = match seed {
            Some(issuer_seed) => {
                let password = self
                    .auth_callout_password
                    .filter(|p| !p.expose().is_empty())
                    .ok_or_else(|| bad("--auth-callout-password / BEVYGAP_AUTH_CALLOUT_PASSWORD", "is required"))?;
                let account = self
                    .auth_callout_account
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .unwrap_or_else(|| format!("bevygap_{}", namespace.as_str()));
                Some(AuthCalloutConfig { issuer_seed, user: self.auth_callout_user, password, account })
            }
            None => None,
        };
        let lifetime = Duration::from_secs(self.server_credential_hours.get().saturating_mul(3600));
        let config = ServerCredentialConfig { namespace: namespace.clone(), key, lifetime, callout };
        config.callout_service().map_err(|e| bad(SEED, e.to_string()))?;
        Ok(Some(config))
    }
}
