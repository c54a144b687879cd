//! Matchmaker settings: CLI flags with env-var fallbacks (`--help` lists each with its
//! default), validated at start so a bad value stops the program with a message naming it.

mod cli;
mod credentials;

pub use cli::{Cli, ConfigError, EdgegapSettings, LogFormat, MatchmakerConfig, ProviderKind};
pub use credentials::{AuthCalloutConfig, ServerCredentialConfig};
