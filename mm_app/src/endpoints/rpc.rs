//! JSON-RPC 2.0 shapes shared by both endpoints.

use bevy_remote::{BrpError, BrpResponse, BrpResult, error_codes};
use bevygap_shared::protocol::{ErrorCode, JoinError};
use serde_json::{Value, json};

/// A JSON-RPC error for one of our closed error codes; `data.code` carries the string form
/// so clients can branch without a table of numbers.
pub fn join_error(error: &JoinError) -> BrpError {
    BrpError { code: error.code.rpc_code(), message: error.message.clone(), data: Some(json!({ "code": error.code })) }
}

/// The same for a bare code with its standard message.
pub fn code_error(code: ErrorCode) -> BrpError {
    join_error(&code.into())
}

/// A protocol-level error (parse, invalid request, unknown method).
pub fn protocol_error(code: i16, message: impl Into<String>) -> BrpError {
    BrpError { code, message: message.into(), data: None }
}

/// A method refused on this endpoint.
pub fn method_not_available(method: &str) -> BrpError {
    protocol_error(error_codes::METHOD_NOT_FOUND, format!("Method `{method}` is not available on this endpoint"))
}

/// Serialises one response.
pub fn response_json(id: Option<Value>, result: BrpResult) -> String {
    serde_json::to_string(&BrpResponse::new(id, result)).unwrap_or_else(|_| {
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"unserialisable response"}}"#.into()
    })
}

/// Whether a join result ends its stream: an error, or a `ready`/`failed` message.
pub fn is_terminal_join_result(result: &BrpResult) -> bool {
    match result {
        Err(_) => true,
        Ok(value) => matches!(value.get("status").and_then(Value::as_str), Some("ready" | "failed")),
    }
}

/// JSON-RPC error number for a missing or wrong admin bearer token.
pub const UNAUTHORIZED: i16 = -32099;
