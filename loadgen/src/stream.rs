//! One simulated player: a `matchmaker.join+watch` over its own connection, read until the
//! join is answered. HTTP/1.0, so the body is the stream itself until the server closes it
//! (no chunked framing to undo).

use std::net::SocketAddr;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How a join ended, for the player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ready,
    /// The matchmaker's error code, or `transport` / `stream_ended` / `http_<status>`.
    Failed(String),
}

/// The HTTP request of one join; in a match `mode` the player also claims an elo of 1000 to
/// 1399 (spread by `request_id`, so every run sends the same pool).
pub fn join_request(game: &str, version: &str, request_id: &str, mode: Option<&str>) -> Vec<u8> {
    let mut params = json!({"game": game, "version": version, "request_id": request_id});
    if let Some(mode) = mode {
        let spread = request_id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 400;
        params["mode"] = json!(mode);
        params["attributes"] = json!({"numbers": {"elo": 1000 + spread}});
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join+watch", "params": params}).to_string();
    format!("POST / HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len())
        .into_bytes()
}

/// What one event (a `data:` line's JSON, or a whole non-streamed body) says, if it ends the
/// join.
pub fn judge(event: &Value) -> Option<Outcome> {
    if let Some(error) = event.get("error") {
        let code = error
            .pointer("/data/code")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("rpc_{}", error.get("code").and_then(Value::as_i64).unwrap_or(0)));
        return Some(Outcome::Failed(code));
    }
    (event.pointer("/result/status").and_then(Value::as_str) == Some("ready")).then_some(Outcome::Ready)
}

/// Sends `request` to `target` and reads until the join is answered.
pub async fn join(target: SocketAddr, request: &[u8]) -> Outcome {
    answer(target, request).await.0
}

/// The same, with the `ready` message's `result` (the ConnectToken and addresses) when the
/// join got one: what a player connecting to its game server needs.
pub async fn answer(target: SocketAddr, request: &[u8]) -> (Outcome, Option<Value>) {
    match exchange(target, request).await {
        Ok(answer) => answer,
        Err(_) => (Outcome::Failed("transport".into()), None),
    }
}

/// The outcome of one event, with the ready message's `result`.
fn judged(event: Value) -> Option<(Outcome, Option<Value>)> {
    let outcome = judge(&event)?;
    let ready = (outcome == Outcome::Ready).then(|| event.get("result").cloned()).flatten();
    Some((outcome, ready))
}

async fn exchange(target: SocketAddr, request: &[u8]) -> std::io::Result<(Outcome, Option<Value>)> {
    let mut stream = TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    stream.write_all(request).await?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    // Skip the rest of the head.
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut body = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            break;
        }
        if let Some(data) = line.strip_prefix("data:") {
            if let Some(answer) = serde_json::from_str(data.trim()).ok().and_then(judged) {
                return Ok(answer);
            }
        } else {
            body.push_str(&line);
        }
    }
    // Not a stream (a refusal answered at once), or a stream that ended unanswered.
    Ok(serde_json::from_str(body.trim()).ok().and_then(judged).unwrap_or_else(|| {
        (Outcome::Failed(if status == 200 { "stream_ended".into() } else { format!("http_{status}") }), None)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_and_errors_end_a_join_and_progress_does_not() {
        let ready = json!({"jsonrpc": "2.0", "id": 1, "result": {"status": "ready", "connect_token": "…"}});
        assert_eq!(judge(&ready), Some(Outcome::Ready));
        assert_eq!(judge(&json!({"result": {"status": "queued"}})), None);
        let refused = json!({"error": {"code": -32000, "message": "slow down", "data": {"code": "rate_limited"}}});
        assert_eq!(judge(&refused), Some(Outcome::Failed("rate_limited".into())));
        assert_eq!(judge(&json!({"error": {"code": -32601}})), Some(Outcome::Failed("rpc_-32601".into())));
        let (outcome, result) = judged(ready).expect("an answer");
        assert_eq!(
            (outcome, result.and_then(|r| r["connect_token"].as_str().map(str::to_owned))),
            (Outcome::Ready, Some("…".into()))
        );
        assert_eq!(judged(refused).map(|(_, result)| result), Some(None));
    }

    #[test]
    fn the_request_is_a_complete_http_1_0_post() {
        let request = String::from_utf8(join_request("demo", "1.0", "lg-1-0", None)).expect("text");
        let (head, body) = request.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with("POST / HTTP/1.0\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(body["method"], "matchmaker.join+watch");
        assert_eq!(body["params"]["request_id"], "lg-1-0");
        assert!(body["params"].get("mode").is_none(), "drop-in: nothing more");
        let request = String::from_utf8(join_request("demo", "1.0", "lg-1-1", Some("duel"))).expect("text");
        let body: Value = serde_json::from_str(request.split_once("\r\n\r\n").expect("a body").1).expect("JSON");
        assert_eq!(body["params"]["mode"], "duel");
        let elo = body["params"]["attributes"]["numbers"]["elo"].as_u64().expect("an elo");
        assert!((1000..1400).contains(&elo), "{elo}");
    }
}
