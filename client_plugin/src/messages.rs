//! What the plugin tells the game, as Bevy messages: progress for a label or bar, the
//! failure with its code for a retry button, and the connection once it is up.

use std::fmt;
use std::net::SocketAddr;

use bevy::prelude::*;
use bevygap_shared::protocol::{ErrorCode, Transport};

use crate::BevygapClientState;

/// A step of the join: on every state change and every retry.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct BevygapProgress {
    /// The state this step leads to.
    pub state: BevygapClientState,
    /// A short text a game can show as it is ("Finding a server", "Retrying in 2 s…").
    pub text: String,
    /// The matchmaker request this belongs to (the same across retries).
    pub request_id: String,
    /// 1 for the first HTTP attempt, 2 for the first retry, …
    pub attempt: u32,
}

/// The matchmaker formed a match for the player (a `match` mode): its id, the player's team
/// and public id, and the teammates' public ids. A server is found or started next.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct BevygapMatchFound {
    pub match_id: String,
    /// The player's team, counting from 0.
    pub team: u32,
    /// What teammates and the game server see for this player.
    pub public_id: String,
    pub teammates: Vec<String>,
    pub request_id: String,
}

/// The join or the connection failed; the state is now [`BevygapClientState::Failed`].
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct BevygapFailed {
    pub code: FailureCode,
    /// The matchmaker's message when it sent one, else the client's own explanation.
    pub message: String,
    pub request_id: String,
}

impl BevygapFailed {
    /// Whether a new attempt may succeed (show "retry" rather than "update your game").
    pub fn is_retryable(&self) -> bool {
        self.code.is_retryable()
    }
}

/// The Lightyear client is connected to the game server the matchmaker chose.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct BevygapConnected {
    /// The Lightyear client entity (marked [`BevygapClient`](crate::BevygapClient)).
    pub client: Entity,
    /// The server address the client dialled.
    pub server: SocketAddr,
    pub transport: Transport,
    pub session_id: String,
    pub request_id: String,
}

/// Why a join failed: the matchmaker's code, or what went wrong on this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCode {
    /// The matchmaker refused or failed the join with this code (`InvalidRequest` also when
    /// the configured game or version fails the same validation locally).
    Matchmaker(ErrorCode),
    /// The matchmaker could not be reached, or kept failing, after every retry.
    Unreachable,
    /// The matchmaker answered something this client cannot use (another protocol, a broken
    /// token, no address for the transport).
    Protocol,
    /// The whole join took longer than the configured join timeout.
    TimedOut,
    /// The game server did not accept the connection, or it was lost.
    ConnectionFailed,
}

impl FailureCode {
    /// Whether a new attempt may succeed.
    pub fn is_retryable(self) -> bool {
        match self {
            FailureCode::Matchmaker(code) => code.is_retryable(),
            FailureCode::Protocol => false,
            FailureCode::Unreachable | FailureCode::TimedOut | FailureCode::ConnectionFailed => true,
        }
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureCode::Matchmaker(code) => {
                let text = serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_string));
                f.write_str(text.as_deref().unwrap_or("matchmaker_error"))
            }
            FailureCode::Unreachable => f.write_str("unreachable"),
            FailureCode::Protocol => f.write_str("protocol"),
            FailureCode::TimedOut => f.write_str("timed_out"),
            FailureCode::ConnectionFailed => f.write_str("connection_failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_print_in_snake_case_and_know_if_retrying_helps() {
        assert_eq!(FailureCode::Matchmaker(ErrorCode::UnknownGame).to_string(), "unknown_game");
        assert_eq!(FailureCode::ConnectionFailed.to_string(), "connection_failed");
        assert!(!FailureCode::Matchmaker(ErrorCode::UnknownGame).is_retryable());
        assert!(FailureCode::Matchmaker(ErrorCode::NoCapacity).is_retryable());
        assert!(!FailureCode::Protocol.is_retryable());
        assert!(FailureCode::Unreachable.is_retryable());
    }
}
