//! Waiting on wall-clock time for something outside any Bevy app (a process, a socket, an HTTP
//! answer, a NATS record): poll a check until it gives a value or a deadline passes. Stepped
//! apps wait with [`step_until`](crate::step_until) instead, which keeps them updating.

use std::fmt;
use std::time::{Duration, Instant};

/// How long [`wait_for`] sleeps between two checks: short next to any deadline, long enough
/// that a check doing an HTTP call or a NATS read does not load the machine.
pub const POLL: Duration = Duration::from_millis(20);

/// What [`try_wait_for`] gives back when the deadline passed with no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    /// What was waited for, as the caller named it.
    pub what: String,
    /// How long it was waited for.
    pub waited: Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?} waiting for {}", self.waited, self.what)
    }
}

impl std::error::Error for TimedOut {}

/// Calls `check` every [`POLL`] until it gives a value, for at most `within`; `check` runs at
/// least once, and once more after the deadline, so a value that arrives during the last sleep
/// is still seen. For callers that report errors rather than panic (the benchmark runner).
pub fn try_wait_for<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> Result<T, TimedOut> {
    let start = Instant::now();
    loop {
        let past_deadline = start.elapsed() >= within;
        if let Some(value) = check() {
            return Ok(value);
        }
        if past_deadline {
            return Err(TimedOut { what: what.to_string(), waited: start.elapsed() });
        }
        std::thread::sleep(POLL);
    }
}

/// [`try_wait_for`], panicking with "timed out after … waiting for `what`" when `within` passes.
///
/// ```no_run
/// # use std::time::Duration;
/// use bevygap_testkit::wait_for;
///
/// let stream = wait_for(Duration::from_secs(30), "the matchmaker to listen", || {
///     std::net::TcpStream::connect("127.0.0.1:7800").ok()
/// });
/// ```
#[track_caller]
pub fn wait_for<T>(within: Duration, what: &str, check: impl FnMut() -> Option<T>) -> T {
    match try_wait_for(within, what, check) {
        Ok(value) => value,
        Err(timed_out) => panic!("{timed_out}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_value_the_check_gives() {
        let mut calls = 0;
        let value = wait_for(Duration::from_secs(30), "the third call", || {
            calls += 1;
            (calls == 3).then_some(calls * 10)
        });
        assert_eq!((value, calls), (30, 3));
    }

    #[test]
    fn gives_up_after_the_deadline_having_checked_after_it() {
        let mut calls = 0;
        let start = Instant::now();
        let err = try_wait_for(Duration::from_millis(50), "nothing", || {
            calls += 1;
            None::<()>
        })
        .unwrap_err();
        assert!(err.waited >= Duration::from_millis(50) && start.elapsed() < Duration::from_secs(5), "{err}");
        assert!(calls >= 2, "checked at once and again at the deadline: {calls}");
        assert_eq!(err.what, "nothing");
        assert!(err.to_string().starts_with("timed out after ") && err.to_string().ends_with("waiting for nothing"));
    }

    #[test]
    fn a_zero_deadline_still_checks_once() {
        assert_eq!(try_wait_for(Duration::ZERO, "a value", || Some(7)), Ok(7));
    }

    #[test]
    #[should_panic(expected = "waiting for the impossible")]
    fn the_panicking_form_names_what_it_waited_for() {
        wait_for(Duration::from_millis(10), "the impossible", || None::<()>);
    }
}
