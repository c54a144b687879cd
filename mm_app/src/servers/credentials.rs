//! Per-server NATS credentials as the matchmaker hands them out
//! ([`bevygap_shared::nats::server_credentials`] has the scheme): with
//! `BEVYGAP_SERVER_CREDENTIAL_KEY` set, every server the matchmaker launches gets its own
//! `NATS_USER` (its server id) and `NATS_PASSWORD`, and nats-server (configured as in
//! `assets/nats/bevygap-per-server.conf`) lets it touch only its own records. With
//! `BEVYGAP_AUTH_CALLOUT_ISSUER_SEED` set too, the matchmaker also runs the auth callout
//! service that checks those passwords (any replica may; they share the requests).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bevygap_shared::Secret;
use bevygap_shared::naming::{Namespace, ServerId};
use bevygap_shared::nats::server_credentials::{AuthCallout, ServerCredentialKey, ServerCredentials, issue};

/// How the matchmaker issues game servers' NATS credentials; a resource when enabled, read by
/// the [`ServerLauncher`](super::ServerLauncher).
#[derive(bevy::prelude::Resource, Debug, Clone)]
pub struct ServerCredentialConfig {
    /// The namespace the credentials are confined to.
    pub namespace: Namespace,
    /// The secret passwords are minted with (`Debug` hides it).
    pub key: ServerCredentialKey,
    /// How long issued credentials stay valid: longer than any server lives.
    pub lifetime: Duration,
    /// The auth callout service, if this matchmaker runs it.
    pub callout: Option<AuthCalloutConfig>,
}

/// The auth callout service's settings.
#[derive(Debug, Clone)]
pub struct AuthCalloutConfig {
    /// Account nkey seed (`SA…`) the service signs user JWTs with.
    pub issuer_seed: Secret,
    /// The callout account's user the service connects as.
    pub user: String,
    pub password: Secret,
    /// The NATS account game servers are placed in.
    pub account: String,
}

impl ServerCredentialConfig {
    /// The credentials of a server this matchmaker launches (or an operator registers in a
    /// fleet), valid from now for [`lifetime`](Self::lifetime).
    pub fn issue(&self, server_id: &ServerId) -> ServerCredentials {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        issue(&self.key, &self.namespace.names(), server_id, now.saturating_add(self.lifetime.as_secs()))
    }

    /// The callout service for the namespace, if configured; fails on a seed that is not an
    /// account seed.
    pub fn callout_service(
        &self,
    ) -> Result<Option<(AuthCallout, &AuthCalloutConfig)>, bevygap_shared::nats::server_credentials::CredentialError>
    {
        let Some(callout) = &self.callout else { return Ok(None) };
        let service =
            AuthCallout::new(&callout.issuer_seed, self.key.clone(), self.namespace.names(), callout.account.clone())?;
        Ok(Some((service, callout)))
    }
}

#[cfg(test)]
mod tests {
    use bevygap_shared::nats::server_credentials::verify;

    use super::*;

    #[test]
    fn issued_credentials_name_the_server_and_verify_for_the_lifetime() {
        let namespace = Namespace::new("spaceships").expect("namespace");
        let config = ServerCredentialConfig {
            namespace: namespace.clone(),
            key: ServerCredentialKey::from_bytes([3; 32]),
            lifetime: Duration::from_secs(3600),
            callout: None,
        };
        let id = ServerId::new("local-00000000000000aa").expect("id");
        let credentials = config.issue(&id);
        assert_eq!(credentials.user, id.to_string());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
        let (verified, until) =
            verify(&config.key, &namespace.names(), &credentials.user, credentials.password.expose(), now)
                .expect("valid");
        assert_eq!(verified, id);
        assert!((now + 3599..=now + 3601).contains(&until), "{until}");
        assert!(config.callout_service().expect("no callout").is_none());
    }
}
