//! Typed params of the player methods. The public front builds them from the transport's
//! facts (the caller's resolved address, the stream id) and the player's own params, and the
//! handlers read them back as the same types: nothing the player sends can pose as a fact of
//! the transport, because the player's params are one field of the value, not its top level.

use std::net::IpAddr;

use bevy_remote::{BrpError, error_codes};
use bevygap_shared::protocol::JoinRequest;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::envelope::protocol_error;

/// What the transport knows about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The player's address, after trusted-proxy resolution.
    pub ip: IpAddr,
}

/// `matchmaker.join` / `matchmaker.join+watch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinCall {
    pub caller: Caller,
    /// The player's params; the front always fills `request_id`.
    pub request: JoinRequest,
}

/// The player's params of `matchmaker.cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    pub request_id: String,
}

/// `matchmaker.cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelCall {
    pub caller: Caller,
    pub request: CancelRequest,
}

/// Reads typed params in a handler (a malformed value is a bug in the front, reported as
/// invalid params rather than a panic).
pub fn parse<T: DeserializeOwned>(params: Option<Value>) -> Result<T, BrpError> {
    serde_json::from_value(params.unwrap_or(Value::Null))
        .map_err(|e| protocol_error(error_codes::INVALID_PARAMS, format!("invalid params: {e}")))
}
