use serde::{Deserialize, Serialize};

/// The closed set of reasons a join can fail, shared by the matchmaker and every client.
///
/// Clients branch on the code (retry, show a message, give up), never on message text; each code
/// also has a fixed JSON-RPC error number so plain JSON-RPC clients can do the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "bevy", derive(bevy::reflect::Reflect), type_path = "bevygap")]
pub enum ErrorCode {
    /// The request was malformed or a field failed validation.
    InvalidRequest,
    /// No servers are configured for this game and version.
    UnknownGame,
    /// This client sent too many requests; slow down.
    RateLimited,
    /// Too many players are already waiting; try again shortly.
    TooManyWaiting,
    /// Every server is full and no new one may be started right now.
    NoCapacity,
    /// The provider failed to start or lost the game server.
    ServerFailed,
    /// No server became ready before the request's deadline.
    Timeout,
    /// The request was withdrawn by the player.
    Cancelled,
    /// The matchmaker cannot serve right now (shutting down, backbone unreachable).
    Unavailable,
    /// An unexpected fault inside the matchmaker.
    Internal,
    /// The mode forms matches, and no match took this player before the request's deadline.
    NoMatch,
}

impl ErrorCode {
    /// Every code, for exhaustive tests and documentation.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::InvalidRequest,
        ErrorCode::UnknownGame,
        ErrorCode::RateLimited,
        ErrorCode::TooManyWaiting,
        ErrorCode::NoCapacity,
        ErrorCode::ServerFailed,
        ErrorCode::Timeout,
        ErrorCode::Cancelled,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::NoMatch,
    ];

    /// The code as it appears on the wire (`unknown_game`…), e.g. for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnknownGame => "unknown_game",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyWaiting => "too_many_waiting",
            ErrorCode::NoCapacity => "no_capacity",
            ErrorCode::ServerFailed => "server_failed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::NoMatch => "no_match",
        }
    }

    /// A message a game can show a player as it is.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "The join request was not valid.",
            ErrorCode::UnknownGame => "This game or version is not being served.",
            ErrorCode::RateLimited => "Too many requests; please wait a moment.",
            ErrorCode::TooManyWaiting => "The matchmaker is busy; please try again shortly.",
            ErrorCode::NoCapacity => "All servers are full; please try again shortly.",
            ErrorCode::ServerFailed => "The game server could not be started.",
            ErrorCode::Timeout => "No game server was ready in time.",
            ErrorCode::Cancelled => "The join request was cancelled.",
            ErrorCode::Unavailable => "The matchmaker is temporarily unavailable.",
            ErrorCode::Internal => "The matchmaker hit an internal error.",
            ErrorCode::NoMatch => "No match was found in time; please try again.",
        }
    }

    /// Whether retrying the same request later can succeed.
    pub fn is_retryable(self) -> bool {
        !matches!(self, ErrorCode::InvalidRequest | ErrorCode::UnknownGame | ErrorCode::Cancelled)
    }

    /// The JSON-RPC 2.0 error number (server-defined range -32000..-32099).
    pub fn rpc_code(self) -> i16 {
        match self {
            ErrorCode::InvalidRequest => -32001,
            ErrorCode::UnknownGame => -32002,
            ErrorCode::RateLimited => -32003,
            ErrorCode::TooManyWaiting => -32004,
            ErrorCode::NoCapacity => -32005,
            ErrorCode::ServerFailed => -32006,
            ErrorCode::Timeout => -32007,
            ErrorCode::Cancelled => -32008,
            ErrorCode::Unavailable => -32009,
            ErrorCode::Internal => -32010,
            ErrorCode::NoMatch => -32011,
        }
    }

    /// The code for a JSON-RPC error number, if it is one of ours.
    pub fn from_rpc_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|c| i64::from(c.rpc_code()) == code)
    }
}

/// A failed join: a machine-readable code and a human message (possibly more specific than
/// [`ErrorCode::message`], e.g. naming the invalid field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct JoinError {
    pub code: ErrorCode,
    pub message: String,
}

impl JoinError {
    /// An error with a specific message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<ErrorCode> for JoinError {
    fn from(code: ErrorCode) -> Self {
        Self::new(code, code.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_is_the_wire_name() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_string)).as_deref(),
                Some(code.as_str())
            );
        }
    }

    #[test]
    fn rpc_codes_are_distinct_and_round_trip() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_rpc_code(code.rpc_code().into()), Some(code));
            assert!((-32099..=-32000).contains(&code.rpc_code()));
        }
        assert_eq!(ErrorCode::from_rpc_code(-32601), None);
    }

    #[test]
    fn serialises_as_snake_case() {
        assert_eq!(serde_json::to_string(&ErrorCode::TooManyWaiting).unwrap(), "\"too_many_waiting\"");
        assert!(!ErrorCode::InvalidRequest.is_retryable());
        assert!(ErrorCode::NoCapacity.is_retryable());
    }
}
