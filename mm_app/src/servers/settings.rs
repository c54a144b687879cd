//! What the servers plugin is told: how big servers are, how many may run, and the timers of
//! their life. Inserted by the composition (`config`), or left at its defaults.

use std::time::Duration;

use bevy::prelude::*;

use super::phase::PhaseTimers;
use crate::placement::{Packing, PlacementRules};

/// How long after its stop grace a stopping server's NATS record may take to go: the
/// provider's SIGKILL lands at the end of the grace, then the record expires or is deleted.
pub const STOP_RECORD_MARGIN: Duration = Duration::from_secs(10);

/// Settings of the [`ServersPlugin`](super::ServersPlugin).
#[derive(Resource, Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// Players per game server.
    pub capacity: u32,
    /// Most game servers running at once (all games together).
    pub max_servers: usize,
    /// How long a join waits for a free seat when no server can be started (a full fleet,
    /// the server limit) before it fails with `no_capacity`.
    pub capacity_wait: Duration,
    /// How long an empty server is kept before it is stopped (on-demand providers only).
    pub empty_grace: Duration,
    /// How long a new server may take to report itself ready.
    pub start_timeout: Duration,
    /// How long a running server may go without a heartbeat before it takes no new players.
    pub heartbeat_timeout: Duration,
    /// How long a server whose record vanished is waited for before it is given up.
    pub silence_grace: Duration,
    /// How long a stopped server gets to exit after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            capacity: 16,
            max_servers: 8,
            capacity_wait: Duration::from_secs(60),
            empty_grace: Duration::from_secs(30),
            start_timeout: Duration::from_secs(45),
            heartbeat_timeout: Duration::from_secs(15),
            silence_grace: Duration::from_secs(60),
            stop_grace: Duration::from_secs(5),
        }
    }
}

impl ServerSettings {
    /// The rules placement works within, for a provider that does (or does not) start
    /// servers now: on-demand servers are filled (so empty ones stop), a fleet's servers
    /// share the load.
    pub fn placement_rules(&self, may_launch: bool) -> PlacementRules {
        PlacementRules {
            max_servers: self.max_servers,
            server_capacity: self.capacity,
            may_launch,
            packing: if may_launch { Packing::Fill } else { Packing::Spread },
        }
    }

    /// The timers of the server phase table.
    pub fn phase_timers(&self) -> PhaseTimers {
        PhaseTimers {
            start_timeout: self.start_timeout.as_secs_f64(),
            silence_grace: self.silence_grace.as_secs_f64(),
            heartbeat_timeout: self.heartbeat_timeout.as_secs_f64(),
            stop_timeout: (self.stop_grace + STOP_RECORD_MARGIN).as_secs_f64(),
        }
    }
}
