//! The JSON-RPC side of one join attempt: building request bodies and turning the bytes the
//! HTTP layer delivers into progress, a ready payload, or a typed error.
//!
//! Plain Rust with no Bevy and no I/O, so every HTTP backend (native, browser) shares it and
//! it is tested on byte strings.

use bevygap_shared::protocol::{
    ErrorCode, JoinError, JoinProgress, JoinRequest, METHOD_CANCEL, METHOD_JOIN_WATCH, ReadyPayload,
};
use serde_json::{Value, json};

use crate::http::HttpEvent;
use crate::sse::SseDecoder;

/// JSON-RPC id of every request; one request per HTTP call, so it only has to be present.
const RPC_ID: u64 = 1;
/// Most bytes kept of a non-streamed body (an error object, a one-shot answer).
const MAX_BODY: usize = 64 * 1024;

/// The body of a streamed join (`matchmaker.join+watch`).
pub fn join_body(request: &JoinRequest) -> String {
    json!({ "jsonrpc": "2.0", "id": RPC_ID, "method": METHOD_JOIN_WATCH, "params": request }).to_string()
}

/// The body of `matchmaker.cancel` for `request_id`.
pub fn cancel_body(request_id: &str) -> String {
    json!({ "jsonrpc": "2.0", "id": RPC_ID, "method": METHOD_CANCEL, "params": { "request_id": request_id } })
        .to_string()
}

/// A JSON-RPC error object from the matchmaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    /// The JSON-RPC error number.
    pub code: i64,
    pub message: String,
    /// Our closed error code, from `data.code` or else the number; `None` for protocol errors
    /// such as "method not found".
    pub error_code: Option<ErrorCode>,
}

impl RpcError {
    fn from_value(error: &Value) -> Option<Self> {
        let code = error.get("code")?.as_i64()?;
        let message = error.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
        let error_code = error
            .pointer("/data/code")
            .and_then(|c| serde_json::from_value::<ErrorCode>(c.clone()).ok())
            .or_else(|| ErrorCode::from_rpc_code(code));
        Some(Self { code, message, error_code })
    }
}

impl From<JoinError> for RpcError {
    fn from(error: JoinError) -> Self {
        Self { code: error.code.rpc_code().into(), message: error.message, error_code: Some(error.code) }
    }
}

/// Why one attempt ended without a ready payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttemptError {
    /// The request never got an answer: refused, reset, timed out.
    #[error("cannot reach the matchmaker: {0}")]
    Network(String),
    /// An HTTP error status, with the JSON-RPC error from the body when there was one.
    #[error("the matchmaker answered HTTP {status}{}", .error.as_ref().map(|e| format!(": {}", e.message)).unwrap_or_default())]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
        /// The JSON-RPC error in the body, if it had one.
        error: Option<RpcError>,
    },
    /// The matchmaker refused or failed the join.
    #[error("{}", .0.message)]
    Rpc(RpcError),
    /// The stream closed before its terminal message.
    #[error("the matchmaker closed the stream before the join finished")]
    StreamEnded,
    /// Not the protocol this client speaks.
    #[error("the matchmaker sent an invalid response: {0}")]
    Malformed(String),
}

/// What one attempt reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptUpdate {
    /// A non-terminal step (queued, finding a server, starting a server).
    Progress(JoinProgress),
    /// Terminal: connect with this.
    Ready(Box<ReadyPayload>),
    /// Terminal: this attempt failed.
    Failed(AttemptError),
}

impl AttemptUpdate {
    fn is_terminal(&self) -> bool {
        !matches!(self, AttemptUpdate::Progress(_))
    }
}

/// Decodes one JSON-RPC response (a streamed event or a whole body).
pub fn decode_message(text: &str) -> AttemptUpdate {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return AttemptUpdate::Failed(AttemptError::Malformed(format!("not JSON ({e})"))),
    };
    if let Some(error) = value.get("error") {
        return match RpcError::from_value(error) {
            Some(e) => AttemptUpdate::Failed(AttemptError::Rpc(e)),
            None => AttemptUpdate::Failed(AttemptError::Malformed("error object without a numeric code".into())),
        };
    }
    let Some(result) = value.get("result") else {
        return AttemptUpdate::Failed(AttemptError::Malformed("neither result nor error".into()));
    };
    match serde_json::from_value::<JoinProgress>(result.clone()) {
        Ok(JoinProgress::Ready(ready)) => AttemptUpdate::Ready(Box::new(ready)),
        Ok(JoinProgress::Failed(error)) => AttemptUpdate::Failed(AttemptError::Rpc(error.into())),
        Ok(progress) => AttemptUpdate::Progress(progress),
        Err(e) => AttemptUpdate::Failed(AttemptError::Malformed(format!("unexpected join result ({e})"))),
    }
}

/// Turns the [`HttpEvent`]s of one attempt into [`AttemptUpdate`]s; silent after the first
/// terminal update.
#[derive(Debug, Default)]
pub struct AttemptDecoder {
    /// Status and whether the body is an event stream, once the head arrived.
    head: Option<(u16, bool)>,
    sse: SseDecoder,
    body: Vec<u8>,
    finished: bool,
}

impl AttemptDecoder {
    /// Whether a terminal update was produced.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Feeds one HTTP event; returns what it completed.
    pub fn feed(&mut self, event: HttpEvent) -> Vec<AttemptUpdate> {
        if self.finished {
            return Vec::new();
        }
        let mut updates = match event {
            HttpEvent::Head { status, event_stream } => {
                self.head = Some((status, event_stream));
                Vec::new()
            }
            HttpEvent::Body(bytes) => self.body(&bytes),
            HttpEvent::End => vec![self.end()],
            HttpEvent::Failed(reason) => vec![AttemptUpdate::Failed(AttemptError::Network(reason))],
        };
        if let Some(last) = updates.iter().position(AttemptUpdate::is_terminal) {
            updates.truncate(last + 1);
            self.finished = true;
        }
        updates
    }

    fn body(&mut self, bytes: &[u8]) -> Vec<AttemptUpdate> {
        match self.head {
            Some((200..=299, true)) => match self.sse.push(bytes) {
                Ok(events) => events.iter().map(|data| decode_message(data)).collect(),
                Err(e) => vec![AttemptUpdate::Failed(AttemptError::Malformed(e.to_string()))],
            },
            _ => {
                let room = MAX_BODY.saturating_sub(self.body.len());
                self.body.extend_from_slice(&bytes[..bytes.len().min(room)]);
                Vec::new()
            }
        }
    }

    fn end(&mut self) -> AttemptUpdate {
        let text = String::from_utf8_lossy(&self.body);
        match self.head {
            None => AttemptUpdate::Failed(AttemptError::Network("no response".into())),
            Some((200..=299, true)) => AttemptUpdate::Failed(AttemptError::StreamEnded),
            Some((200..=299, false)) => match decode_message(&text) {
                AttemptUpdate::Progress(_) => AttemptUpdate::Failed(AttemptError::StreamEnded),
                terminal => terminal,
            },
            Some((status, _)) => {
                let error = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v.get("error").and_then(RpcError::from_value));
                AttemptUpdate::Failed(AttemptError::HttpStatus { status, error })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(decoder: &mut AttemptDecoder, chunks: &[&str]) -> Vec<AttemptUpdate> {
        let mut out = decoder.feed(HttpEvent::Head { status: 200, event_stream: true });
        for chunk in chunks {
            out.extend(decoder.feed(HttpEvent::Body(chunk.as_bytes().to_vec())));
        }
        out
    }

    const READY: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"status":"ready","connect_token":"AAAA","transport":"udp",
        "addresses":{"udp":"127.0.0.1:5000"},"request_id":"req-00000001","session_id":"s1","token_expires_in_secs":30}}"#;

    #[test]
    fn request_bodies_follow_the_protocol() {
        let mut request = JoinRequest::new("demo", "1.0");
        request.request_id = Some("req-00000001".into());
        let body: Value = serde_json::from_str(&join_body(&request)).unwrap();
        assert_eq!(body["method"], "matchmaker.join+watch");
        assert_eq!(body["jsonrpc"], "2.0");
        assert_eq!(body["params"]["request_id"], "req-00000001");
        assert!(body["params"].get("region").is_none(), "unset fields are left out");
        let cancel: Value = serde_json::from_str(&cancel_body("req-00000001")).unwrap();
        assert_eq!(cancel["method"], "matchmaker.cancel");
        assert_eq!(cancel["params"]["request_id"], "req-00000001");
    }

    #[test]
    fn progress_then_ready_then_nothing() {
        let mut decoder = AttemptDecoder::default();
        let queued = r#"data: {"jsonrpc":"2.0","id":1,"result":{"status":"queued","request_id":"r"}}"#;
        let ready = format!("data: {}\n\n", READY.replace('\n', ""));
        let updates = stream(&mut decoder, &[queued, "\n\n: keep-alive\n\n", &ready, "data: {}\n\n"]);
        assert_eq!(updates.len(), 2, "{updates:?}");
        assert!(
            matches!(&updates[0], AttemptUpdate::Progress(JoinProgress::Queued { request_id }) if request_id == "r")
        );
        assert!(matches!(&updates[1], AttemptUpdate::Ready(r) if r.session_id == "s1"));
        assert!(decoder.is_finished());
        assert!(decoder.feed(HttpEvent::End).is_empty(), "silent after the terminal message");
    }

    #[test]
    fn a_streamed_error_carries_its_code() {
        let mut decoder = AttemptDecoder::default();
        let error = r#"data: {"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"demo@9 is not served here","data":{"code":"unknown_game"}}}"#;
        let updates = stream(&mut decoder, &[error, "\n\n"]);
        let AttemptUpdate::Failed(AttemptError::Rpc(e)) = &updates[0] else { panic!("{updates:?}") };
        assert_eq!(e.error_code, Some(ErrorCode::UnknownGame));
        assert_eq!(e.message, "demo@9 is not served here");
        // Without `data`, the number identifies the code.
        let AttemptUpdate::Failed(AttemptError::Rpc(e)) =
            decode_message(r#"{"error":{"code":-32005,"message":"full"}}"#)
        else {
            panic!()
        };
        assert_eq!(e.error_code, Some(ErrorCode::NoCapacity));
        let AttemptUpdate::Failed(AttemptError::Rpc(e)) =
            decode_message(r#"{"error":{"code":-32601,"message":"Method not found"}}"#)
        else {
            panic!()
        };
        assert_eq!(e.error_code, None);
    }

    #[test]
    fn a_stream_closed_early_is_reported_as_such() {
        let mut decoder = AttemptDecoder::default();
        let queued = "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"status\":\"queued\",\"request_id\":\"r\"}}\n\n";
        assert_eq!(stream(&mut decoder, &[queued]).len(), 1);
        assert_eq!(decoder.feed(HttpEvent::End), vec![AttemptUpdate::Failed(AttemptError::StreamEnded)]);
        let mut decoder = AttemptDecoder::default();
        stream(&mut decoder, &[queued]);
        let updates = decoder.feed(HttpEvent::Failed("connection reset".into()));
        assert_eq!(updates, vec![AttemptUpdate::Failed(AttemptError::Network("connection reset".into()))]);
    }

    #[test]
    fn http_errors_keep_the_rpc_error_of_the_body() {
        let mut decoder = AttemptDecoder::default();
        decoder.feed(HttpEvent::Head { status: 429, event_stream: false });
        let body = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32003,"message":"slow down","data":{"code":"rate_limited"}}}"#;
        decoder.feed(HttpEvent::Body(body.as_bytes().to_vec()));
        let updates = decoder.feed(HttpEvent::End);
        let AttemptUpdate::Failed(AttemptError::HttpStatus { status: 429, error: Some(e) }) = &updates[0] else {
            panic!("{updates:?}")
        };
        assert_eq!(e.error_code, Some(ErrorCode::RateLimited));
        let mut decoder = AttemptDecoder::default();
        decoder.feed(HttpEvent::Head { status: 502, event_stream: false });
        decoder.feed(HttpEvent::Body(b"<html>bad gateway</html>".to_vec()));
        assert_eq!(
            decoder.feed(HttpEvent::End),
            vec![AttemptUpdate::Failed(AttemptError::HttpStatus { status: 502, error: None })]
        );
    }

    #[test]
    fn a_one_shot_json_answer_is_understood() {
        let mut decoder = AttemptDecoder::default();
        decoder.feed(HttpEvent::Head { status: 200, event_stream: false });
        decoder.feed(HttpEvent::Body(READY.as_bytes().to_vec()));
        assert!(matches!(&decoder.feed(HttpEvent::End)[0], AttemptUpdate::Ready(_)));
        let mut decoder = AttemptDecoder::default();
        decoder.feed(HttpEvent::Head { status: 200, event_stream: false });
        decoder.feed(HttpEvent::Body(b"{\"jsonrpc\":\"2.0\",\"result\":{\"status\":\"dancing\"}}".to_vec()));
        assert!(matches!(&decoder.feed(HttpEvent::End)[0], AttemptUpdate::Failed(AttemptError::Malformed(_))));
    }
}
