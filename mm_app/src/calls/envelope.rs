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

    /// Arbitrary JSON values, nested a few levels, with the keys a call uses among random ones.
    fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "[ -~]{0,40}".prop_map(Value::from),
            Just(Value::from("2.0")),
            Just(Value::from("matchmaker.join+watch")),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            let key = prop_oneof![
                Just("jsonrpc".to_string()),
                Just("method".to_string()),
                Just("params".to_string()),
                Just("id".to_string()),
                Just("game".to_string()),
                Just("version".to_string()),
                Just("request_id".to_string()),
                Just("client_ip".to_string()),
                Just("transport".to_string()),
                "[a-z_$]{1,10}",
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(key, inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The public endpoint's parsing never panics: any bytes give one call or an error.
        #[test]
        fn any_bytes_parse_to_a_call_or_an_error(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse_call(&bytes);
        }

        /// Any JSON body, and any params a player sends, parse and validate to an answer
        /// without panicking; what validates has only valid tokens.
        #[test]
        fn any_json_call_and_join_params_give_an_answer(body in arb_json(), params in arb_json()) {
            let text = serde_json::to_vec(&body).expect("serialisable");
            // What the endpoint sees is the text: serde_json does not round-trip every float
            // bit for bit (subnormals), so the body is compared as it reads back.
            let body: Value = serde_json::from_slice(&text).expect("reads back");
            let well_formed = body.is_object()
                && body.get("jsonrpc") == Some(&json!("2.0"))
                && body.get("method").is_some_and(Value::is_string);
            match parse_call(&text) {
                Ok(call) => {
                    proptest::prop_assert!(well_formed, "accepted a malformed call: {body}");
                    proptest::prop_assert_eq!(Some(call.method.as_str()), body.get("method").and_then(Value::as_str));
                    proptest::prop_assert_eq!(call.params.as_ref(), body.get("params"));
                }
                Err(_) => proptest::prop_assert!(!well_formed, "refused a well-formed call: {body}"),
            }
            if let Ok(request) = serde_json::from_value::<bevygap_shared::protocol::JoinRequest>(params)
                && let Ok(valid) = request.validate()
            {
                // What validation lets through is a valid token all the way down.
                proptest::prop_assert!(bevygap_shared::protocol::GameName::new(valid.game.as_str()).is_ok());
                proptest::prop_assert!(bevygap_shared::protocol::GameVersion::new(valid.version.as_str()).is_ok());
            }
        }
    }

    #[test]
    fn only_ready_failed_or_errors_end_a_join_stream() {
        assert!(is_terminal_join_result(&Ok(json!({"status": "ready"}))));
        assert!(is_terminal_join_result(&Err(code_error(ErrorCode::Timeout))));
        assert!(!is_terminal_join_result(&Ok(json!({"status": "queued"}))));
    }
}
