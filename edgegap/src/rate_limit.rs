//! Client-side rate limiting for the endpoints Edgegap documents limits for.
//!
//! Edgegap documents 40 deploys/s (`POST /v2/deployments`), 20 status
//! reads/s (`GET /v1/status/{id}`) and 10 lists/s (`GET /v1/deployments`).
//! A matchmaker polling many deployments would otherwise hit 429s under load; waiting locally is cheaper than a
//! rejected round trip plus backoff.
//!
//! The limiter is a sliding-window log: at most `limit` permits are granted in
//! any window of `window` length. Unlike a token bucket, this never lets
//! `2 * limit` requests through around a window boundary, so it satisfies a
//! server that counts per second however it aligns its windows.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Documented Edgegap limit for `POST /v2/deployments` (per second).
pub const DEPLOYS_PER_SECOND: u32 = 40;
/// Documented Edgegap limit for `GET /v1/status/{id}` (per second).
pub const STATUS_PER_SECOND: u32 = 20;
/// Documented Edgegap limit for `GET /v1/deployments` (per second).
pub const LIST_DEPLOYMENTS_PER_SECOND: u32 = 10;

/// Blocking sliding-window rate limiter, shared by all clones of a client.
#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    granted: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    /// At most `limit` permits per `window`. A `limit` of 0 is treated as 1.
    pub fn new(limit: u32, window: Duration) -> Self {
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        Self { limit, window, granted: Mutex::new(VecDeque::with_capacity(limit)) }
    }

    /// `limit` permits per second.
    pub fn per_second(limit: u32) -> Self {
        Self::new(limit, Duration::from_secs(1))
    }

    /// Blocks the calling thread until a permit is free, then takes it.
    /// Returns the instant the permit was granted.
    pub fn acquire(&self) -> Instant {
        loop {
            let wait = {
                // A poisoned lock only means another thread panicked while
                // holding it; the deque is still consistent.
                let mut granted = self.granted.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                while granted.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                    granted.pop_front();
                }
                if granted.len() < self.limit {
                    granted.push_back(now);
                    return now;
                }
                match granted.front() {
                    Some(oldest) => (*oldest + self.window).saturating_duration_since(now),
                    None => Duration::ZERO,
                }
            };
            std::thread::sleep(wait.max(Duration::from_millis(1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_grants_more_than_limit_in_any_window() {
        let window = Duration::from_millis(200);
        let limiter = RateLimiter::new(5, window);
        let times: Vec<Instant> = (0..16).map(|_| limiter.acquire()).collect();
        for pair in times.windows(6) {
            // permit i and permit i+5 can never be in the same window
            assert!(pair[5].duration_since(pair[0]) >= window, "{:?}", pair[5].duration_since(pair[0]));
        }
    }

    #[test]
    fn first_burst_is_immediate() {
        let limiter = RateLimiter::per_second(20);
        let start = Instant::now();
        for _ in 0..20 {
            limiter.acquire();
        }
        // Lower bound only would be meaningless here; the burst must not wait a window.
        assert!(start.elapsed() < Duration::from_millis(900));
    }
}
