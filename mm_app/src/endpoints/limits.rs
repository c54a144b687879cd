//! Per-IP rate limiting and client-IP resolution for the public endpoint: plain Rust.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// A token bucket per client IP: `burst` requests at once, refilled at `per_minute`.
#[derive(Debug)]
pub struct IpRateLimiter {
    burst: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Buckets kept before full (idle) ones are dropped, bounding memory under many IPs.
const MAX_TRACKED: usize = 100_000;

impl IpRateLimiter {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self { burst: f64::from(burst.max(1)), per_sec: f64::from(per_minute) / 60.0, buckets: Mutex::default() }
    }

    /// Takes one request from `ip`'s bucket; false when it is empty.
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, Instant::now())
    }

    fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        let ip = rate_key(ip);
        let Ok(mut buckets) = self.buckets.lock() else { return true };
        if buckets.len() >= MAX_TRACKED {
            let (burst, per_sec) = (self.burst, self.per_sec);
            buckets.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * per_sec < burst);
        }
        let (tokens, at) = buckets.entry(ip).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The bucket an address counts against: IPv4 addresses one by one, IPv6 by /64, since one
/// subscriber usually holds a whole /64 and could otherwise rotate through it.
fn rate_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::from(segments)
        }
    }
}

/// The player's IP: the TCP peer, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy. Anything
/// malformed falls back to the peer, so a client cannot choose its IP by sending the header.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    for part in header.rsplit(',') {
        match part.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return ip,
            Err(_) => return peer,
        }
    }
    peer
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn allows_a_burst_then_refills() {
        let limiter = IpRateLimiter::new(60, 3);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.allow_at(ip, t0)));
        assert!(!limiter.allow_at(ip, t0));
        assert!(limiter.allow_at(other, t0), "limits are per IP");
        assert!(limiter.allow_at(ip, t0 + Duration::from_millis(1100)), "one token per second refills");
        assert!(!limiter.allow_at(ip, t0 + Duration::from_millis(1200)));
    }

    #[test]
    fn an_ipv6_slash_64_shares_one_bucket() {
        let limiter = IpRateLimiter::new(60, 1);
        let t0 = Instant::now();
        assert!(limiter.allow_at("2001:db8:1:2::1".parse().unwrap(), t0));
        assert!(!limiter.allow_at("2001:db8:1:2:ffff::9".parse().unwrap(), t0), "same /64");
        assert!(limiter.allow_at("2001:db8:1:3::1".parse().unwrap(), t0), "another /64");
    }

    #[test]
    fn forwarded_for_is_honoured_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.9".parse().unwrap();
        let player: IpAddr = "203.0.113.7".parse().unwrap();
        let trusted = [proxy];
        assert_eq!(client_ip(player, Some("1.2.3.4"), &trusted), player, "untrusted peer cannot spoof");
        assert_eq!(client_ip(proxy, Some("1.2.3.4, 203.0.113.7"), &trusted), player);
        assert_eq!(client_ip(proxy, Some("203.0.113.7, 10.0.0.9"), &trusted), player);
        assert_eq!(client_ip(proxy, Some("garbage"), &trusted), proxy);
        assert_eq!(client_ip(proxy, None, &trusted), proxy);
    }
}
