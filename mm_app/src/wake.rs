//! Event-driven ticking: the app sleeps until work arrives (an HTTP request, a NATS update, a
//! provider result) instead of spinning at a fixed rate, so a join is handled in the same
//! wake-up it arrives in and an idle matchmaker uses almost no CPU.

use std::time::Duration;

use bevy::app::{App, AppExit};
use bevygap_shared::inbox::AppWaker;

/// Longest sleep between ticks when idle; timers (token expiry, deadlines, empty-server grace)
/// are checked at least this often.
pub const IDLE_TICK: Duration = Duration::from_millis(200);

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
