//! Per-address keys and rate limiting, trusted proxies and client-IP resolution for the
//! public endpoint: plain Rust.

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
        let ip = address_key(ip);
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

pub use crate::joins::admission::address_key;

/// A trusted proxy: one address or a CIDR range (`10.0.0.0/8`, `2001:db8::/32`), so a cloud
/// load balancer whose addresses change can be trusted by its subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyRange {
    network: IpAddr,
    prefix: u8,
}

/// A trusted-proxy entry that is neither an address nor a CIDR range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR range (like 10.0.0.0/8)")]
pub struct ProxyRangeError(pub String);

impl std::str::FromStr for ProxyRange {
    type Err = ProxyRangeError;

    fn from_str(text: &str) -> Result<Self, ProxyRangeError> {
        let bad = || ProxyRangeError(text.to_string());
        let (ip, prefix) = match text.trim().split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix.parse::<u8>().map_err(|_| bad())?)),
            None => (text.trim(), None),
        };
        let network = ip.parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { network, prefix })
    }
}

impl ProxyRange {
    /// Whether `ip` (canonicalised) lies in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_match(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_match(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_match(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let (full, rest) = (usize::from(prefix / 8), prefix % 8);
    if net[..full] != ip[..full] {
        return false;
    }
    rest == 0 || (net[full] ^ ip[full]) >> (8 - rest) == 0
}

/// The player's IP, canonical: the TCP peer, unless the peer is a trusted proxy, in which case
/// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy, reading every
/// header line (a proxy may append its own line) from the last to the first. Anything
/// malformed falls back to the peer, so a client cannot choose its IP by sending the header.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[ProxyRange],
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    for line in forwarded_for.rev() {
        for part in line.rsplit(',') {
            match part.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) {
                Ok(ip) if is_trusted(ip) => continue,
                Ok(ip) => return ip,
                Err(_) => return peer,
            }
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

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_honoured_only_from_trusted_proxies() {
        let (proxy, player) = (ip("10.0.0.9"), ip("203.0.113.7"));
        let trusted: [ProxyRange; 1] = ["10.0.0.9".parse().unwrap()];
        assert_eq!(client_ip(player, ["1.2.3.4"].into_iter(), &trusted), player, "untrusted peer cannot spoof");
        assert_eq!(client_ip(proxy, ["1.2.3.4, 203.0.113.7"].into_iter(), &trusted), player);
        assert_eq!(client_ip(proxy, ["203.0.113.7, 10.0.0.9"].into_iter(), &trusted), player);
        assert_eq!(client_ip(proxy, ["garbage"].into_iter(), &trusted), proxy);
        assert_eq!(client_ip(proxy, std::iter::empty(), &trusted), proxy);
    }

    #[test]
    fn every_forwarded_for_line_is_read_from_the_last() {
        // The client sends its own header line; the proxy appends a second one with the real
        // address. Reading only the first line would let the client choose its address.
        let trusted: [ProxyRange; 1] = ["10.0.0.9".parse().unwrap()];
        let lines = ["6.6.6.6", "203.0.113.7"];
        assert_eq!(client_ip(ip("10.0.0.9"), lines.into_iter(), &trusted), ip("203.0.113.7"));
    }

    #[test]
    fn trusted_proxies_can_be_ranges_and_match_mapped_addresses() {
        let trusted: Vec<ProxyRange> = ["10.0.0.0/8", "2001:db8::/32"].iter().map(|r| r.parse().unwrap()).collect();
        assert_eq!(client_ip(ip("10.20.30.40"), ["203.0.113.7"].into_iter(), &trusted), ip("203.0.113.7"));
        assert_eq!(client_ip(ip("2001:db8:ffff::1"), ["203.0.113.7"].into_iter(), &trusted), ip("203.0.113.7"));
        assert_eq!(client_ip(ip("::ffff:10.1.2.3"), ["203.0.113.7"].into_iter(), &trusted), ip("203.0.113.7"));
        assert_eq!(client_ip(ip("11.0.0.1"), ["203.0.113.7"].into_iter(), &trusted), ip("11.0.0.1"));
        assert!("10.0.0.0/33".parse::<ProxyRange>().is_err());
        assert!("not-an-ip".parse::<ProxyRange>().is_err());
        let slash_12: ProxyRange = "172.16.0.0/12".parse().unwrap();
        assert!(slash_12.contains(ip("172.31.255.255")) && !slash_12.contains(ip("172.32.0.0")));
    }

    #[test]
    fn ipv4_clients_of_a_dual_stack_listener_are_keyed_as_ipv4() {
        assert_eq!(address_key(ip("::ffff:203.0.113.7")), ip("203.0.113.7"));
        assert_ne!(address_key(ip("::ffff:203.0.113.7")), address_key(ip("::ffff:203.0.113.8")), "not one bucket");
        assert_eq!(client_ip(ip("::ffff:203.0.113.7"), std::iter::empty(), &[]), ip("203.0.113.7"));
        let limiter = IpRateLimiter::new(60, 1);
        let t0 = Instant::now();
        assert!(limiter.allow_at(ip("::ffff:198.51.100.1"), t0));
        assert!(limiter.allow_at(ip("::ffff:198.51.100.2"), t0), "each IPv4 client has its own bucket");
        assert!(!limiter.allow_at(ip("198.51.100.1"), t0), "mapped and plain are the same client");
    }
}
