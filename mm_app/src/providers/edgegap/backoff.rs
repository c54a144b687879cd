//! Exponential backoff schedules: how long to wait before the next status read, stop retry or
//! search. Pure, so the schedule is tested without clocks or threads.
//!
//! Status reads of a deployment start fast (Edgegap often deploys in a couple of seconds) and
//! slow down the longer it takes (it sometimes takes 20 s or more), which keeps a matchmaker
//! with many starting servers well under Edgegap's 20 status reads a second.

use std::time::Duration;

/// `initial × 2ⁿ`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// No delay is longer than this.
    pub max: Duration,
}

impl Backoff {
    /// A schedule from `initial` doubling up to `max`.
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max }
    }

    /// The delay before attempt `attempt` (0-based): `initial × 2^attempt`, at most `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(20));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The first `attempts` delays, in order.
    pub fn delays(&self, attempts: u32) -> impl Iterator<Item = Duration> + '_ {
        (0..attempts).map(|attempt| self.delay(attempt))
    }

    /// How long the first `attempts` delays add up to (the window they cover).
    pub fn total(&self, attempts: u32) -> Duration {
        self.delays(attempts).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn doubles_from_the_initial_delay_up_to_the_cap() {
        let backoff = Backoff::new(MS(100), MS(1000));
        let delays: Vec<_> = backoff.delays(6).collect();
        assert_eq!(delays, [MS(100), MS(200), MS(400), MS(800), MS(1000), MS(1000)]);
        assert_eq!(backoff.total(4), MS(1500));
    }

    #[test]
    fn huge_attempt_numbers_stay_at_the_cap() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(30));
        assert_eq!(backoff.delay(0), Duration::from_secs(1));
    }

    #[test]
    fn a_cap_below_the_initial_delay_wins() {
        assert_eq!(Backoff::new(MS(500), MS(100)).delay(0), MS(100));
    }
}
