//! What each endpoint lets through, apart from HTTP and JSON-RPC mechanics: the admin bearer
//! token and same-origin rule, the public method allow-list, per-address rate limits, body
//! size, the caller's address behind trusted proxies, and CORS headers.

use std::net::IpAddr;

use bevy_remote::BrpError;
use bevygap_shared::Secret;
use bevygap_shared::protocol::ErrorCode;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderValue};
use hyper::{HeaderMap, StatusCode};

use super::limits::{IpRateLimiter, ProxyRange, client_ip};
use super::settings::FrontSettings;
use crate::calls::PUBLIC_METHODS;
use crate::calls::envelope::{UNAUTHORIZED, code_error, method_not_available, protocol_error};

/// Which listener a policy guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontKind {
    Public,
    Admin,
}

/// A refusal: the HTTP status and the JSON-RPC error to answer with.
pub type Refusal = (StatusCode, BrpError);

/// Decides what one endpoint lets through.
pub struct Gatekeeper {
    kind: FrontKind,
    admin_token: Option<Secret>,
    cors_origin: Option<HeaderValue>,
    max_body: usize,
    limiter: Option<IpRateLimiter>,
    trusted_proxies: Vec<ProxyRange>,
}

impl Gatekeeper {
    /// The rules of the `kind` endpoint under `settings`.
    pub fn new(kind: FrontKind, settings: &FrontSettings) -> Self {
        let public = kind == FrontKind::Public;
        Self {
            kind,
            admin_token: if public { None } else { settings.admin_token.clone() },
            cors_origin: settings.cors_origin.as_deref().filter(|_| public).and_then(|o| HeaderValue::from_str(o).ok()),
            max_body: settings.max_body_bytes,
            limiter: public.then(|| IpRateLimiter::new(settings.rate_per_minute, settings.rate_burst)),
            trusted_proxies: settings.trusted_proxies.clone(),
        }
    }

    /// The largest body accepted.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// Who may talk to this endpoint at all: on the admin endpoint without a token only a
    /// same-origin loopback caller (never a web page), with a token only its bearer.
    pub fn check_caller(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.kind != FrontKind::Admin {
            return Ok(());
        }
        match &self.admin_token {
            None if !loopback_same_origin(headers) => Err((
                StatusCode::FORBIDDEN,
                protocol_error(UNAUTHORIZED, "cross-origin requests to the admin endpoint are refused"),
            )),
            Some(token) if !bearer_matches(headers.get(AUTHORIZATION), token) => {
                Err((StatusCode::UNAUTHORIZED, protocol_error(UNAUTHORIZED, "a valid bearer token is required")))
            }
            _ => Ok(()),
        }
    }

    /// Whether `GET /` serves the dashboard here (admin only; its own calls pass
    /// [`check_caller`](Self::check_caller) like any other).
    pub fn serves_dashboard(&self) -> bool {
        self.kind == FrontKind::Admin
    }

    /// The caller's address: the TCP peer, or what a trusted proxy says it forwarded.
    pub fn caller_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        client_ip(peer, forwarded, &self.trusted_proxies)
    }

    /// Whether `ip` is a trusted proxy (its connections carry many players, so they are not
    /// counted against one address).
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|range| range.contains(ip))
    }

    /// Takes one request from `ip`'s rate budget (public endpoint only).
    pub fn check_rate(&self, ip: IpAddr) -> Result<(), Refusal> {
        match &self.limiter {
            Some(limiter) if !limiter.allow(ip) => {
                Err((StatusCode::TOO_MANY_REQUESTS, code_error(ErrorCode::RateLimited)))
            }
            _ => Ok(()),
        }
    }

    /// Refuses a body declared larger than the limit before reading it.
    pub fn check_declared_length(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|len| len > self.max_body) { Err(self.too_large()) } else { Ok(()) }
    }

    /// The refusal for a body over the limit.
    pub fn too_large(&self) -> Refusal {
        let error = protocol_error(
            bevy_remote::error_codes::INVALID_REQUEST,
            format!("request body exceeds {} bytes", self.max_body),
        );
        (StatusCode::PAYLOAD_TOO_LARGE, error)
    }

    /// Whether `method` may be called here: players reach only the matchmaking methods.
    pub fn check_method(&self, method: &str) -> Result<(), BrpError> {
        if self.kind == FrontKind::Public && !PUBLIC_METHODS.contains(&method) {
            return Err(method_not_available(method));
        }
        Ok(())
    }

    /// Adds the CORS headers browser games need (public endpoint, when configured): the one
    /// allowed origin, JSON POSTs, Chrome's private-network access (a page on a public origin
    /// calling a matchmaker on a private or loopback address; Chrome asks in the preflight with
    /// `Access-Control-Request-Private-Network`), and ten minutes of preflight caching so a
    /// player's retries do not each pay a preflight.
    pub fn add_cors_headers(&self, headers: &mut HeaderMap) {
        if let Some(origin) = &self.cors_origin {
            headers.insert("access-control-allow-origin", origin.clone());
            headers.insert("access-control-allow-methods", HeaderValue::from_static("POST, OPTIONS"));
            headers.insert("access-control-allow-headers", HeaderValue::from_static("content-type"));
            headers.insert("access-control-allow-private-network", HeaderValue::from_static("true"));
            headers.insert("access-control-max-age", HeaderValue::from_static("600"));
        }
    }
}

/// Without a token the admin endpoint trusts loopback, so it must not be reachable from a web
/// page: the `Host` must be a loopback name (defeating DNS rebinding) and an `Origin`, which
/// browsers send on cross-site requests, must be that same host (the dashboard itself).
fn loopback_same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(hyper::header::HOST).and_then(|h| h.to_str().ok());
    if let Some(host) = host {
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(name, _)| name),
        };
        let loopback =
            name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return false;
        }
    }
    match headers.get(hyper::header::ORIGIN).map(|o| o.to_str()) {
        None => true,
        Some(Ok(origin)) => host.is_some_and(|host| origin == format!("http://{host}")),
        Some(Err(_)) => false,
    }
}

/// Compares `Authorization: Bearer <token>` in constant time.
fn bearer_matches(header: Option<&HeaderValue>, token: &Secret) -> bool {
    let Some(given) = header.and_then(|h| h.to_str().ok()).and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let (a, b) = (given.as_bytes(), token.expose().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn config() -> FrontSettings {
        FrontSettings::loopback()
    }

    #[test]
    fn the_loopback_admin_endpoint_refuses_web_pages_and_rebound_hosts() {
        let admin = Gatekeeper::new(FrontKind::Admin, &config());
        assert!(admin.check_caller(&headers(&[("host", "127.0.0.1:15702")])).is_ok());
        assert!(admin.check_caller(&headers(&[("host", "localhost:1"), ("origin", "http://localhost:1")])).is_ok());
        let refused = |h| admin.check_caller(&headers(h)).unwrap_err().0;
        assert_eq!(refused(&[("host", "evil.example:15702")]), StatusCode::FORBIDDEN);
        assert_eq!(refused(&[("host", "127.0.0.1:15702"), ("origin", "http://evil.example")]), StatusCode::FORBIDDEN);
    }

    #[test]
    fn a_token_admin_endpoint_wants_the_exact_bearer() {
        let mut config = config();
        config.admin_token = Some(Secret::new("0123456789abcdef"));
        let admin = Gatekeeper::new(FrontKind::Admin, &config);
        assert!(admin.check_caller(&headers(&[("authorization", "Bearer 0123456789abcdef")])).is_ok());
        let status = admin.check_caller(&headers(&[("authorization", "Bearer 0123456789abcdeX")])).unwrap_err().0;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(admin.check_caller(&HeaderMap::new()).is_err());
    }

    #[test]
    fn players_reach_only_the_matchmaking_methods() {
        let public = Gatekeeper::new(FrontKind::Public, &config());
        assert!(public.check_method("matchmaker.join+watch").is_ok());
        assert!(public.check_method("world.query").is_err());
        assert!(public.check_method("admin.servers").is_err());
        assert!(Gatekeeper::new(FrontKind::Admin, &config()).check_method("world.query").is_ok());
    }

    #[test]
    fn declared_bodies_over_the_limit_are_refused_before_reading() {
        let public = Gatekeeper::new(FrontKind::Public, &config());
        let too_big = (public.max_body() + 1).to_string();
        assert_eq!(
            public.check_declared_length(&headers(&[("content-length", &too_big)])).unwrap_err().0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert!(public.check_declared_length(&headers(&[("content-length", "10")])).is_ok());
    }
}
