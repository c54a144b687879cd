//! Wall-clock seconds since app start, the time base of every deadline component (reflectable
//! as a plain `f64`, unlike `Instant`).

use bevy::prelude::*;

/// Seconds since the app started, read from real time (virtual time may be paused or scaled).
pub fn now(time: &Time<Real>) -> f64 {
    time.elapsed_secs_f64()
}
