//! Edgegap's webhooks, received: a deployment's `webhook_on_ready|error|terminated` and a
//! session's `webhook_url` POST their status to the configured URL, and the provider reads
//! that deployment's (or session's) status at once instead of at its next backoff step.
//!
//! A webhook is only a hint. Edgegap does not sign them, so the body is trusted for nothing
//! but which id to look at; what happens next is decided by the status the API itself
//! returns. The URL's path should carry a secret (any path not exactly the configured one is
//! answered 404 and ignored), so a stranger cannot even cause extra status reads; the secret
//! is never logged.
//!
//! The listener is a small blocking HTTP/1.1 server on its own thread: bodies are capped at
//! 64 KiB, each connection gets 2 s to send its request and at most 16 are served at once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::worker::Shared;

/// Largest request (headers and body) read.
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Time a connection has to send its whole request.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 16;

/// Where Edgegap's webhooks reach the matchmaker (`BEVYGAP_EDGEGAP_WEBHOOK_URL`,
/// `BEVYGAP_EDGEGAP_WEBHOOK_BIND`).
#[derive(Clone, PartialEq, Eq)]
pub struct EdgegapWebhook {
    /// The URL Edgegap calls, given to it with every deployment and session. Put a secret in
    /// its path (`https://mm.example.com/edgegap/<random>`); a proxy in front forwards it to
    /// `bind`.
    pub public_url: String,
    /// Where the matchmaker listens for those calls.
    pub bind: SocketAddr,
}

impl std::fmt::Debug for EdgegapWebhook {
    /// The path is a secret: only the scheme and host are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgegapWebhook")
            .field("public_url", &origin(&self.public_url))
            .field("bind", &self.bind)
            .finish()
    }
}

/// `scheme://host[:port]/…` of a URL, the rest left out.
fn origin(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => format!("{}/…", &url[..after_scheme + slash]),
        None => url.to_string(),
    }
}

/// The path (with query) of a URL: what Edgegap's request line will carry.
pub fn expected_path(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    url[after_scheme..].find('/').map_or_else(|| "/".to_string(), |slash| url[after_scheme + slash..].to_string())
}

/// Which deployment or session a webhook is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    Deployment(String),
    Session(String),
}

/// Reads the id out of a webhook body: `request_id` (deployment status body) or `session_id`
/// (session context). Anything else is ignored.
pub fn hint(body: &[u8]) -> Option<Hint> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).filter(|s| !s.is_empty() && s.len() <= 64);
    if let Some(session_id) = text("session_id") {
        return Some(Hint::Session(session_id.to_string()));
    }
    text("request_id").map(|id| Hint::Deployment(id.to_string()))
}

/// Binds the listener and serves it on a thread until the provider is dropped or shuts down.
pub fn listen(shared: &Arc<Shared>, webhook: &EdgegapWebhook) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(webhook.bind)?;
    let bound = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let path = expected_path(&webhook.public_url);
    let weak = Arc::downgrade(shared);
    std::thread::Builder::new().name("edgegap-webhooks".into()).spawn(move || serve(listener, path, weak))?;
    tracing::info!("listening for Edgegap webhooks on {bound}");
    Ok(bound)
}

fn serve(listener: TcpListener, path: String, shared: Weak<Shared>) {
    let active = Arc::new(AtomicUsize::new(0));
    let path = Arc::new(path);
    loop {
        match shared.upgrade() {
            Some(shared) if !shared.shutting_down.load(Ordering::SeqCst) => {}
            _ => return,
        }
        match listener.accept() {
            Ok((stream, _)) => {
                if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    active.fetch_sub(1, Ordering::SeqCst);
                    continue; // dropped: closed at once
                }
                let (serving, path, shared) = (active.clone(), path.clone(), shared.clone());
                let spawned = std::thread::Builder::new().name("edgegap-webhook".into()).spawn(move || {
                    handle(stream, &path, &shared);
                    serving.fetch_sub(1, Ordering::SeqCst);
                });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::SeqCst);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(25)),
            Err(e) => {
                tracing::debug!("webhook accept failed: {e}");
                std::thread::sleep(Duration::from_millis(25));
            }
        }
    }
}

fn handle(mut stream: TcpStream, path: &str, shared: &Weak<Shared>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let status = match read_request(&mut stream) {
        Some(request) if request.method == "POST" && constant_time_eq(request.path.as_bytes(), path.as_bytes()) => {
            if let (Some(hint), Some(shared)) = (hint(&request.body), shared.upgrade()) {
                wake(&shared, &hint);
            }
            "204 No Content"
        }
        Some(_) => "404 Not Found",
        None => "400 Bad Request",
    };
    let _ = write!(stream, "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
}

/// Cuts the wait of whoever follows the named deployment or session.
fn wake(shared: &Shared, hint: &Hint) {
    let woke = match hint {
        Hint::Deployment(request_id) => shared.table.wake_request(request_id),
        Hint::Session(session_id) => shared.seats.wake_session(session_id),
    };
    tracing::debug!(?hint, woke, "Edgegap webhook");
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

/// Reads one request: request line, headers, and a `content-length` body, within the caps.
fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buffer.len() >= MAX_REQUEST_BYTES {
            return None;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buffer[..header_end]).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, path) = (request_line.next()?.to_string(), request_line.next()?.to_string());
    let length = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .map_or(Some(0), |(_, value)| value.trim().parse::<usize>().ok())?;
    if header_end.checked_add(length)? > MAX_REQUEST_BYTES {
        return None;
    }
    while buffer.len() < header_end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some(Request { method, path, body: buffer[header_end..header_end + length].to_vec() })
}

/// Compares without stopping at the first difference, so timing does not reveal how much of
/// the secret path a guess got right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_a_deployment_or_a_session_and_nothing_else_counts() {
        assert_eq!(
            hint(br#"{"request_id":"835d0d69f2fc","current_status":"Status.READY"}"#),
            Some(Hint::Deployment("835d0d69f2fc".into()))
        );
        assert_eq!(
            hint(br#"{"session_id":"a1cb46bc7f15-S","deployment_request_id":"835d0d69f2fc"}"#),
            Some(Hint::Session("a1cb46bc7f15-S".into()))
        );
        assert_eq!(hint(b"not json"), None);
        assert_eq!(hint(br#"{"request_id": 7}"#), None);
        assert_eq!(hint(br#"{"request_id": ""}"#), None);
    }

    #[test]
    fn the_secret_path_is_what_must_match_and_never_what_debug_shows() {
        let webhook = EdgegapWebhook {
            public_url: "https://mm.example.com/edgegap/s3cr3t?x=1".into(),
            bind: "127.0.0.1:0".parse().expect("addr"),
        };
        assert_eq!(expected_path(&webhook.public_url), "/edgegap/s3cr3t?x=1");
        assert_eq!(expected_path("http://mm.example.com"), "/");
        let shown = format!("{webhook:?}");
        assert!(shown.contains("https://mm.example.com/…") && !shown.contains("s3cr3t"), "{shown}");
        assert!(constant_time_eq(b"/a", b"/a") && !constant_time_eq(b"/a", b"/b") && !constant_time_eq(b"/a", b"/ab"));
    }
}
