//! Driving Bevy apps by hand: tests own the loop instead of `App::run`, so they can step a
//! server and its clients in turn and stop as soon as what they wait for holds.
//!
//! Real sockets, netcode expiry and background tasks run on wall-clock time, so every round of
//! updates is followed by a short sleep ([`STEP_PAUSE`]).

use std::time::{Duration, Instant};

use bevy::app::App;

/// Sleep between two rounds of updates: long enough for packets and background tasks to make
/// progress, short enough that tests stay quick.
pub const STEP_PAUSE: Duration = Duration::from_millis(5);

/// A generous bound for anything a test waits for on a loaded two-core machine; tests that
/// expect something *not* to happen use a shorter one of their own.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Updates every app once per round ([`STEP_PAUSE`] apart) until `done` holds, or `timeout`
/// has passed. Returns whether `done` held. At least one round always runs, and `done` sees the
/// apps right after each round.
pub fn step_until(apps: &mut [&mut App], timeout: Duration, mut done: impl FnMut(&mut [&mut App]) -> bool) -> bool {
    let start = Instant::now();
    loop {
        for app in apps.iter_mut() {
            app.update();
        }
        if done(apps) {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(STEP_PAUSE);
    }
}

/// [`step_until`], panicking with "timed out … waiting for `what`" when `timeout` passes: for
/// waits whose failure needs no message of its own.
#[track_caller]
pub fn expect_step_until(
    apps: &mut [&mut App],
    timeout: Duration,
    what: &str,
    done: impl FnMut(&mut [&mut App]) -> bool,
) {
    let start = Instant::now();
    if !step_until(apps, timeout, done) {
        panic!("timed out after {:?} waiting for {what}", start.elapsed());
    }
}

/// Keeps every app running for `duration` (packets in flight, background work, an outage
/// that should last a while).
pub fn step_for(apps: &mut [&mut App], duration: Duration) {
    step_until(apps, duration, |_| false);
}

/// Wraps a check too costly for every round (a NATS read, an HTTP call) so that it runs at
/// most once per `interval`, the first time at once; the apps still step every round.
///
/// ```no_run
/// # use std::time::Duration;
/// # use bevygap_testkit::{DEADLINE, every, step_until};
/// # let mut server = bevy::app::App::new();
/// # let record_exists = || true;
/// let found = step_until(&mut [&mut server], DEADLINE, every(Duration::from_millis(100), record_exists));
/// ```
pub fn every(interval: Duration, mut check: impl FnMut() -> bool) -> impl FnMut(&mut [&mut App]) -> bool {
    let mut last: Option<Instant> = None;
    move |_| {
        if last.is_some_and(|at| at.elapsed() < interval) {
            return false;
        }
        last = Some(Instant::now());
        check()
    }
}

#[cfg(test)]
mod tests {
    use bevy::prelude::*;

    use super::*;

    #[derive(Resource, Default)]
    struct Ticks(u32);

    fn counting_app() -> App {
        let mut app = App::new();
        app.init_resource::<Ticks>().add_systems(Update, |mut ticks: ResMut<Ticks>| ticks.0 += 1);
        app
    }

    fn ticks(app: &App) -> u32 {
        app.world().resource::<Ticks>().0
    }

    #[test]
    fn steps_every_app_until_the_condition_holds() {
        let (mut a, mut b) = (counting_app(), counting_app());
        let held = step_until(&mut [&mut a, &mut b], DEADLINE, |apps| ticks(apps[0]) == 3);
        assert!(held);
        assert_eq!((ticks(&a), ticks(&b)), (3, 3), "both apps stepped in lockstep");
    }

    #[test]
    fn gives_up_after_the_timeout_having_stepped_at_least_once() {
        let mut app = counting_app();
        let start = Instant::now();
        assert!(!step_until(&mut [&mut app], Duration::ZERO, |_| false));
        assert_eq!(ticks(&app), 1);
        step_for(&mut [&mut app], Duration::from_millis(30));
        assert!(ticks(&app) > 2, "stepped for the whole duration");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    #[should_panic(expected = "waiting for the impossible")]
    fn the_asserting_form_names_what_it_waited_for() {
        expect_step_until(&mut [&mut counting_app()], Duration::from_millis(10), "the impossible", |_| false);
    }

    #[test]
    fn a_throttled_check_runs_at_most_once_per_interval() {
        let mut app = counting_app();
        let mut checks = 0;
        let held = step_until(
            &mut [&mut app],
            Duration::from_millis(100),
            every(Duration::from_secs(60), || {
                checks += 1;
                false
            }),
        );
        assert!(!held);
        assert_eq!(checks, 1, "checked on the first round only");
        assert!(ticks(&app) > 1, "while the app kept stepping");
    }
}
