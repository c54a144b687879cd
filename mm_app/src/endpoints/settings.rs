//! What the HTTP front is told: where both endpoints listen, and the limits and policy of
//! each.

use std::net::SocketAddr;
use std::time::Duration;

use bevy::prelude::*;
use bevygap_shared::Secret;

use super::limits::ProxyRange;

/// Settings of the [`HttpFrontPlugin`](super::HttpFrontPlugin).
#[derive(Resource, Debug, Clone)]
pub struct FrontSettings {
    /// The players' endpoint (matchmaking methods only).
    pub public_addr: SocketAddr,
    /// The operators' endpoint (full BRP and the admin methods).
    pub admin_addr: SocketAddr,
    /// Bearer token the admin endpoint demands (`Debug` hides it).
    pub admin_token: Option<Secret>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ProxyRange>,
    /// `Access-Control-Allow-Origin` on public answers; `None`: no CORS headers.
    pub cors_origin: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Requests per minute from one address on the public endpoint.
    pub rate_per_minute: u32,
    /// Requests one address may send at once before the rate applies.
    pub rate_burst: u32,
    /// Open connections one client address may hold on the public endpoint.
    pub max_connections_per_ip: usize,
    /// Open connections on the public endpoint in total.
    pub max_connections: usize,
    /// How long a connection may stay silent before it is closed.
    pub idle_timeout: Duration,
    /// Time between keep-alive comments on a streamed join.
    pub keepalive: Duration,
}

impl Default for FrontSettings {
    fn default() -> Self {
        Self {
            public_addr: SocketAddr::from(([0, 0, 0, 0], 7800)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 15702)),
            admin_token: None,
            trusted_proxies: Vec::new(),
            cors_origin: None,
            max_body_bytes: 8192,
            rate_per_minute: 60,
            rate_burst: 10,
            max_connections_per_ip: 32,
            max_connections: 4096,
            idle_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(10),
        }
    }
}

impl FrontSettings {
    /// Both endpoints on ephemeral loopback ports, for tests and embedding.
    pub fn loopback() -> Self {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        Self { public_addr: any_port, admin_addr: any_port, ..Self::default() }
    }
}
