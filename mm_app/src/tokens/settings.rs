//! What the tokens plugin is told: how long a ConnectToken may start a connection and how
//! long Lightyear waits on a silent one.

use bevy::prelude::*;

/// Settings of the [`TokensPlugin`](super::TokensPlugin).
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSettings {
    /// Seconds a ConnectToken can start a connection; an unclaimed token's seat is freed after.
    pub ttl_secs: u32,
    /// Seconds without packets before Lightyear drops a connection (written into the token).
    pub connection_timeout_secs: u32,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self { ttl_secs: 30, connection_timeout_secs: 10 }
    }
}
