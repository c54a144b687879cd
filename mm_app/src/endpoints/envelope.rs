//! The JSON-RPC 2.0 envelope shared by both endpoints: parsing one call, shaping results and
//! errors. No HTTP and no policy here.

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

/// One JSON-RPC call as the front received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcCall {
    pub id: Option<Value>,
    pub method: String,
    pub params: Option<Value>,
}

/// Parses a request body into one call; an error carries the id when one could be read.
pub fn parse_call(body: &[u8]) -> Result<RpcCall, (Option<Value>, BrpError)> {
    let request: Value =
        serde_json::from_slice(body).map_err(|e| (None, protocol_error(error_codes::PARSE_ERROR, e.to_string())))?;
    if request.is_array() {
        return Err((None, protocol_error(error_codes::INVALID_REQUEST, "batch requests are not accepted")));
    }
    let id = request.get("id").cloned();
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err((id, protocol_error(error_codes::INVALID_REQUEST, "`jsonrpc` must be \"2.0\"")));
    }
    let Some(method) = request.get("method").and_then(Value::as_str).map(str::to_string) else {
        return Err((id, protocol_error(error_codes::INVALID_REQUEST, "`method` is required")));
    };
    Ok(RpcCall { id, method, params: request.get("params").cloned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_call_and_refuses_what_is_not_one() {
        let call = parse_call(br#"{"jsonrpc":"2.0","id":3,"method":"m","params":{"a":1}}"#).unwrap();
        assert_eq!(call, RpcCall { id: Some(json!(3)), method: "m".into(), params: Some(json!({"a": 1})) });
        let code = |body: &[u8]| parse_call(body).unwrap_err().1.code;
        assert_eq!(code(b"{nope"), error_codes::PARSE_ERROR);
        assert_eq!(code(br#"[{"jsonrpc":"2.0","method":"m"}]"#), error_codes::INVALID_REQUEST);
        assert_eq!(code(br#"{"jsonrpc":"1.0","method":"m"}"#), error_codes::INVALID_REQUEST);
        assert_eq!(parse_call(br#"{"jsonrpc":"2.0","id":"x"}"#).unwrap_err().0, Some(json!("x")), "the id is kept");
    }

    #[test]
    fn only_ready_failed_or_errors_end_a_join_stream() {
        assert!(is_terminal_join_result(&Ok(json!({"status": "ready"}))));
        assert!(is_terminal_join_result(&Err(code_error(ErrorCode::Timeout))));
        assert!(!is_terminal_join_result(&Ok(json!({"status": "queued"}))));
    }
}
