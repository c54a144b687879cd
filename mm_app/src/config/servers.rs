//! `--server-capacity`, `--max-servers` and the timers of a server's life, validated into
//! [`ServerSettings`].

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

use clap::Args;

use super::{nonzero_secs, nonzero_u32, nonzero_usize};
use crate::servers::ServerSettings;

/// How many game servers, how big, and how long each step of their life may take.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Game servers")]
pub struct ServerArgs {
    /// Players per game server.
    #[arg(long, env = "BEVYGAP_SERVER_CAPACITY", default_value_t = nonzero_u32(ServerSettings::default().capacity))]
    pub server_capacity: NonZeroU32,
    /// Most game servers running at once.
    #[arg(long, env = "BEVYGAP_MAX_SERVERS", default_value_t = nonzero_usize(ServerSettings::default().max_servers))]
    pub max_servers: NonZeroUsize,
    /// Seconds a join waits for a free seat when no server can be started (fleet full, or the
    /// server limit reached) before it fails with no_capacity. Default: the join deadline.
    #[arg(long, env = "BEVYGAP_CAPACITY_WAIT_SECS")]
    pub capacity_wait_secs: Option<u64>,
    /// Seconds an empty server is kept before it is stopped.
    #[arg(long, env = "BEVYGAP_EMPTY_GRACE_SECS", default_value_t = ServerSettings::default().empty_grace.as_secs())]
    pub empty_grace_secs: u64,
    /// Seconds a new server may take to report itself ready.
    #[arg(
        long,
        env = "BEVYGAP_SERVER_START_TIMEOUT_SECS",
        default_value_t = nonzero_secs(ServerSettings::default().start_timeout)
    )]
    pub server_start_timeout_secs: NonZeroU64,
    /// Seconds a running server may go without a heartbeat (its record rewritten) before it
    /// takes no new players; it is given up after the silence grace on top.
    #[arg(
        long,
        env = "BEVYGAP_SERVER_HEARTBEAT_TIMEOUT_SECS",
        default_value_t = nonzero_secs(ServerSettings::default().heartbeat_timeout)
    )]
    pub server_heartbeat_timeout_secs: NonZeroU64,
    /// Seconds a server whose NATS record vanished (crash or NATS outage) is waited for
    /// before it is given up and stopped.
    #[arg(
        long,
        env = "BEVYGAP_SERVER_SILENCE_GRACE_SECS",
        default_value_t = ServerSettings::default().silence_grace.as_secs()
    )]
    pub server_silence_grace_secs: u64,
    /// Seconds a stopped server gets to exit after SIGTERM before SIGKILL.
    #[arg(long, env = "BEVYGAP_STOP_GRACE_SECS", default_value_t = ServerSettings::default().stop_grace.as_secs())]
    pub stop_grace_secs: u64,
}

impl ServerArgs {
    /// The settings; the capacity wait defaults to the join deadline, since a join never
    /// waits longer than that anyway.
    pub fn validate(self, join_deadline: Duration) -> ServerSettings {
        ServerSettings {
            capacity: self.server_capacity.get(),
            max_servers: self.max_servers.get(),
            capacity_wait: self.capacity_wait_secs.map_or(join_deadline, Duration::from_secs),
            empty_grace: Duration::from_secs(self.empty_grace_secs),
            start_timeout: Duration::from_secs(self.server_start_timeout_secs.get()),
            heartbeat_timeout: Duration::from_secs(self.server_heartbeat_timeout_secs.get()),
            silence_grace: Duration::from_secs(self.server_silence_grace_secs),
            stop_grace: Duration::from_secs(self.stop_grace_secs),
        }
    }
}
