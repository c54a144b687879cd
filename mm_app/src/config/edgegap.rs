//! The `edgegap` provider's flags, validated into [`EdgegapSettings`] when it is the provider.

use std::net::SocketAddr;

use bevygap_shared::Secret;
use clap::Args;

use super::{ConfigError, bad};
use crate::providers::edgegap::{EdgegapMode, EdgegapWebhook, GeoPoint};

/// Deployments on Edgegap's cloud (provider `edgegap`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Edgegap provider")]
pub struct EdgegapArgs {
    /// Edgegap account API token, with or without the `token ` prefix (provider edgegap).
    /// Held as a [`Secret`] from parsing on, so not even `Cli`'s `Debug` shows it.
    #[arg(long, env = "BEVYGAP_EDGEGAP_API_TOKEN", hide_env_values = true, value_parser = super::secret)]
    pub edgegap_api_token: Option<Secret>,
    /// Edgegap API base URL (a fake's URL in tests).
    #[arg(long, env = "BEVYGAP_EDGEGAP_URL", default_value = "https://api.edgegap.com")]
    pub edgegap_url: String,
    /// Edgegap application whose versions run the game servers (provider edgegap).
    #[arg(long, env = "BEVYGAP_EDGEGAP_APP")]
    pub edgegap_app: Option<String>,
    /// Edgegap version name for every game version. Default: the game version of the join
    /// (game `demo:1.0` runs app version `1.0`).
    #[arg(long, env = "BEVYGAP_EDGEGAP_VERSION")]
    pub edgegap_version: Option<String>,
    /// Where to start an Edgegap server when no player IP is known, as latitude,longitude.
    #[arg(long, env = "BEVYGAP_EDGEGAP_LOCATION")]
    pub edgegap_location: Option<String>,
    /// `deployments` (v2 deployments; our seat book counts players) or `sessions` (also an
    /// Edgegap session per seated player: the legacy Sessions API, for accounts that use it).
    #[arg(long, env = "BEVYGAP_EDGEGAP_MODE", default_value = "deployments")]
    pub edgegap_mode: String,
    /// URL Edgegap's webhooks call (deployment ready/error/terminated, session linked): it
    /// makes the matchmaker read that status at once. Put a secret in its path; never logged.
    /// Unset: status polling with backoff alone.
    #[arg(long, env = "BEVYGAP_EDGEGAP_WEBHOOK_URL", hide_env_values = true, value_parser = super::secret)]
    pub edgegap_webhook_url: Option<Secret>,
    /// Where the matchmaker listens for those webhooks (behind the proxy the URL names).
    #[arg(long, env = "BEVYGAP_EDGEGAP_WEBHOOK_BIND", default_value = "0.0.0.0:8090")]
    pub edgegap_webhook_bind: SocketAddr,
    /// App-version port name that serves UDP, passed to each deployment as
    /// BEVYGAP_UDP_PORT_NAME. Unset: the app version's env (or the server's default, `udp`).
    #[arg(long, env = "BEVYGAP_EDGEGAP_UDP_PORT_NAME")]
    pub edgegap_udp_port_name: Option<String>,
    /// App-version port name that serves WebTransport, passed as BEVYGAP_WT_PORT_NAME.
    #[arg(long, env = "BEVYGAP_EDGEGAP_WT_PORT_NAME")]
    pub edgegap_wt_port_name: Option<String>,
}

/// Validated settings of the `edgegap` provider (present when it is the provider).
#[derive(Debug, Clone)]
pub struct EdgegapSettings {
    /// Account API token (redacted in `Debug`; never logged).
    pub api_key: bevygap_edgegap::ApiKey,
    /// API base URL.
    pub base_url: String,
    /// Edgegap application.
    pub app: String,
    /// Edgegap version for every game version; `None`: the game version.
    pub version: Option<String>,
    /// Where to start servers when no player IP is known.
    pub location: Option<GeoPoint>,
    /// Deployments only, or a session per player too.
    pub mode: EdgegapMode,
    /// Where Edgegap's webhooks reach the matchmaker (its `Debug` hides the URL's path).
    pub webhook: Option<EdgegapWebhook>,
    /// App-version port name serving UDP, passed to each deployment.
    pub udp_port_name: Option<String>,
    /// App-version port name serving WebTransport, passed to each deployment.
    pub wt_port_name: Option<String>,
}

impl EdgegapArgs {
    /// Checks the `edgegap` provider's settings; every error names its variable and none
    /// quotes a secret.
    pub fn validate(self) -> Result<EdgegapSettings, ConfigError> {
        const TOKEN: &str = "--edgegap-api-token / BEVYGAP_EDGEGAP_API_TOKEN";
        let token = self
            .edgegap_api_token
            .filter(|t| !t.expose().trim().is_empty())
            .ok_or_else(|| bad(TOKEN, "is required with provider edgegap"))?;
        // The parse error never quotes the token.
        let api_key = bevygap_edgegap::ApiKey::parse(token.expose()).map_err(|e| bad(TOKEN, e.to_string()))?;
        let base_url = self.edgegap_url.trim().to_string();
        if !is_http_url(&base_url) {
            return Err(bad("--edgegap-url / BEVYGAP_EDGEGAP_URL", format!("{base_url:?} is not an http(s) URL")));
        }
        let app = non_empty(self.edgegap_app)
            .ok_or_else(|| bad("--edgegap-app / BEVYGAP_EDGEGAP_APP", "is required with provider edgegap"))?;
        let location = non_empty(self.edgegap_location)
            .map(|l| GeoPoint::parse(&l))
            .transpose()
            .map_err(|e| bad("--edgegap-location / BEVYGAP_EDGEGAP_LOCATION", e))?;
        let mode =
            EdgegapMode::parse(&self.edgegap_mode).map_err(|e| bad("--edgegap-mode / BEVYGAP_EDGEGAP_MODE", e))?;
        let webhook = match self.edgegap_webhook_url.map(|u| u.expose().trim().to_string()).filter(|u| !u.is_empty()) {
            // Never quote it: its path is a secret.
            Some(url) if !is_http_url(&url) => {
                return Err(bad("--edgegap-webhook-url / BEVYGAP_EDGEGAP_WEBHOOK_URL", "is not an http(s) URL"));
            }
            Some(url) => Some(EdgegapWebhook { public_url: url, bind: self.edgegap_webhook_bind }),
            None => None,
        };
        Ok(EdgegapSettings {
            api_key,
            base_url,
            app,
            version: non_empty(self.edgegap_version),
            location,
            mode,
            webhook,
            udp_port_name: non_empty(self.edgegap_udp_port_name),
            wt_port_name: non_empty(self.edgegap_wt_port_name),
        })
    }
}

/// Whether `url` is an http(s) URL.
fn is_http_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// A trimmed value, `None` when unset or blank.
fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}
