//! Event-driven ticking: the app sleeps until work arrives (an HTTP request, a NATS update, a
//! provider result) instead of spinning at a fixed rate, so a join is handled in the same
//! wake-up it arrives in and an idle matchmaker uses almost no CPU.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bevy::app::{App, AppExit};
use bevy::prelude::Resource;

/// Longest sleep between ticks when idle; timers (token expiry, deadlines, empty-server grace)
/// are checked at least this often.
pub const IDLE_TICK: Duration = Duration::from_millis(200);

/// Wakes the app loop; cloned into every async task and HTTP handler that hands work to the ECS.
#[derive(Clone, Default, Resource)]
pub struct AppWaker(Arc<(Mutex<bool>, Condvar)>);

impl AppWaker {
    /// Asks for another tick as soon as the current one ends.
    pub fn wake(&self) {
        let (flag, cvar) = &*self.0;
        if let Ok(mut pending) = flag.lock() {
            *pending = true;
            cvar.notify_one();
        }
    }

    /// Sleeps until woken or `timeout` passes; returns whether it was woken.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (flag, cvar) = &*self.0;
        let Ok(guard) = flag.lock() else { return false };
        let Ok((mut pending, _)) = cvar.wait_timeout_while(guard, timeout, |pending| !*pending) else {
            return false;
        };
        std::mem::replace(&mut *pending, false)
    }
}

/// Runs `app` until it exits, ticking on every wake-up and at least every [`IDLE_TICK`].
pub fn wakeable_runner(mut app: App) -> AppExit {
    let waker = app.world_mut().get_resource_or_insert_with(AppWaker::default).clone();
    app.finish();
    app.cleanup();
    loop {
        app.update();
        if let Some(exit) = app.should_exit() {
            return exit;
        }
        waker.wait(IDLE_TICK);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn wake_ends_the_wait_early() {
        let waker = AppWaker::default();
        let other = waker.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.wake();
        });
        let start = Instant::now();
        assert!(waker.wait(Duration::from_secs(10)));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!waker.wait(Duration::from_millis(10)), "a wake is consumed once");
    }
}
