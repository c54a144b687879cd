//! `--token-ttl-secs` and `--connection-timeout-secs`, validated into [`TokenSettings`].

use std::num::NonZeroU32;

use clap::Args;

use super::nonzero_u32;
use crate::tokens::TokenSettings;

/// What the ConnectTokens handed to players say.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Tokens")]
pub struct TokenArgs {
    /// Seconds a ConnectToken can start a connection; an unused token's seat is freed after.
    #[arg(long, env = "BEVYGAP_TOKEN_TTL_SECS", default_value_t = nonzero_u32(TokenSettings::default().ttl_secs))]
    pub token_ttl_secs: NonZeroU32,
    /// Seconds without packets before Lightyear drops a connection.
    #[arg(
        long,
        env = "BEVYGAP_CONNECTION_TIMEOUT_SECS",
        default_value_t = nonzero_u32(TokenSettings::default().connection_timeout_secs)
    )]
    pub connection_timeout_secs: NonZeroU32,
}

impl TokenArgs {
    /// The settings (clap has checked every value).
    pub fn validate(self) -> TokenSettings {
        TokenSettings {
            ttl_secs: self.token_ttl_secs.get(),
            connection_timeout_secs: self.connection_timeout_secs.get(),
        }
    }
}
