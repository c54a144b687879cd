//! `--public-addr`, `--admin-addr` and the limits of both endpoints, validated into
//! [`FrontSettings`].

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

use clap::Args;

use super::{ConfigError, bad, nonzero_secs, nonzero_u32, nonzero_usize};
use crate::endpoints::FrontSettings;
use crate::endpoints::limits::ProxyRange;

/// The players' and the operators' endpoints.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Endpoints")]
pub struct EndpointArgs {
    /// Public JSON-RPC endpoint for players (matchmaking methods only).
    #[arg(long, env = "BEVYGAP_PUBLIC_ADDR", default_value_t = FrontSettings::default().public_addr)]
    pub public_addr: SocketAddr,
    /// Admin endpoint (full Bevy Remote Protocol plus admin methods).
    #[arg(long, env = "BEVYGAP_ADMIN_ADDR", default_value_t = FrontSettings::default().admin_addr)]
    pub admin_addr: SocketAddr,
    /// Bearer token for the admin endpoint (at least 16 characters); required when it binds a
    /// non-loopback address.
    #[arg(long, env = "BEVYGAP_ADMIN_TOKEN", hide_env_values = true, value_parser = super::secret)]
    pub admin_token: Option<bevygap_shared::Secret>,
    /// Proxies whose X-Forwarded-For is trusted: comma-separated IPs or CIDR ranges
    /// (10.0.0.0/8, 2001:db8::/32).
    #[arg(long, env = "BEVYGAP_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ProxyRange>,
    /// Value of Access-Control-Allow-Origin on public responses (unset: no CORS headers).
    #[arg(long, env = "BEVYGAP_CORS_ORIGIN")]
    pub cors_origin: Option<String>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "BEVYGAP_MAX_BODY_BYTES", default_value_t = nonzero_usize(FrontSettings::default().max_body_bytes))]
    pub max_body_bytes: NonZeroUsize,
    /// Requests per minute allowed from one IP on the public endpoint.
    #[arg(long, env = "BEVYGAP_RATE_PER_MINUTE", default_value_t = nonzero_u32(FrontSettings::default().rate_per_minute))]
    pub rate_per_minute: NonZeroU32,
    /// Burst of requests allowed from one IP before the rate applies.
    #[arg(long, env = "BEVYGAP_RATE_BURST", default_value_t = nonzero_u32(FrontSettings::default().rate_burst))]
    pub rate_burst: NonZeroU32,
    /// Open connections one client address may hold on the public endpoint (IPv6 per /64;
    /// trusted proxies are not limited).
    #[arg(
        long,
        env = "BEVYGAP_MAX_CONNECTIONS_PER_IP",
        default_value_t = nonzero_usize(FrontSettings::default().max_connections_per_ip)
    )]
    pub max_connections_per_ip: NonZeroUsize,
    /// Open connections on the public endpoint in total (each waiting player holds one); never
    /// more than the file-descriptor limit allows, keeping descriptors aside for NATS, game
    /// servers and the admin endpoint.
    #[arg(long, env = "BEVYGAP_MAX_CONNECTIONS", default_value_t = nonzero_usize(FrontSettings::default().max_connections))]
    pub max_connections: NonZeroUsize,
    /// Seconds a connection may stay silent (before a request, or between requests) before it
    /// is closed.
    #[arg(long, env = "BEVYGAP_IDLE_TIMEOUT_SECS", default_value_t = nonzero_secs(FrontSettings::default().idle_timeout))]
    pub idle_timeout_secs: NonZeroU64,
    /// Seconds between keep-alive comments on a streamed join.
    #[arg(long, env = "BEVYGAP_KEEPALIVE_SECS", default_value_t = nonzero_secs(FrontSettings::default().keepalive))]
    pub keepalive_secs: NonZeroU64,
}

impl EndpointArgs {
    /// Checks what clap cannot (the admin token's presence and length, distinct addresses).
    pub fn validate(self) -> Result<FrontSettings, ConfigError> {
        const TOKEN: &str = "--admin-token / BEVYGAP_ADMIN_TOKEN";
        let admin_token = self.admin_token.filter(|t| !t.expose().is_empty());
        if !self.admin_addr.ip().is_loopback() && admin_token.is_none() {
            let reason =
                format!("is required because the admin endpoint binds {}, which is not loopback", self.admin_addr);
            return Err(bad(TOKEN, reason));
        }
        if admin_token.as_ref().is_some_and(|t| t.expose().len() < 16) {
            return Err(bad(TOKEN, "must be at least 16 characters"));
        }
        if self.public_addr == self.admin_addr && self.public_addr.port() != 0 {
            return Err(bad("--admin-addr / BEVYGAP_ADMIN_ADDR", "must differ from the public address"));
        }
        Ok(FrontSettings {
            public_addr: self.public_addr,
            admin_addr: self.admin_addr,
            admin_token,
            trusted_proxies: self.trusted_proxies,
            cors_origin: self.cors_origin.filter(|o| !o.is_empty()),
            max_body_bytes: self.max_body_bytes.get(),
            rate_per_minute: self.rate_per_minute.get(),
            rate_burst: self.rate_burst.get(),
            max_connections_per_ip: self.max_connections_per_ip.get(),
            max_connections: self.max_connections.get(),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs.get()),
            keepalive: Duration::from_secs(self.keepalive_secs.get()),
        })
    }
}
