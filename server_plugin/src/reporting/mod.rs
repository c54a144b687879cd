//! Reporting to the matchmaker: the server record (registration and heartbeat) and one record
//! per connected player. The systems here only decide *what* the records are; the NATS task
//! ([`crate::nats_link`]) writes them, retries and reconciles.

pub mod book;
pub mod players;
pub mod server_record;

use std::time::Duration;

use bevy::prelude::*;

use crate::api::BevygapSystems;

/// How often records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportingConfig {
    /// Server record re-put interval (the bucket expires it after
    /// [`bevygap_shared::kv::SERVER_RECORD_TTL`]).
    pub heartbeat: Duration,
    /// Player record re-put interval (expiry: [`bevygap_shared::kv::PLAYER_RECORD_TTL`]).
    pub player_refresh: Duration,
    /// How often pending writes are retried.
    pub sync_interval: Duration,
    /// Longest wait for one KV write.
    pub op_timeout: Duration,
    /// Longest time spent removing records at shutdown.
    pub retire_timeout: Duration,
}

impl Default for ReportingConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(5),
            player_refresh: Duration::from_secs(30),
            sync_interval: Duration::from_millis(250),
            op_timeout: Duration::from_secs(2),
            retire_timeout: Duration::from_secs(4),
        }
    }
}

/// Turns server state and player messages into records for the NATS task.
pub struct ReportingPlugin;

impl Plugin for ReportingPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(
            Update,
            (server_record::publish_server_record, players::forward_player_changes).in_set(BevygapSystems::Report),
        );
    }
}
