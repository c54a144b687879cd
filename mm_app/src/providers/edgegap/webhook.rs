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
//! The listener is a small blocking HTTP/1.1 server on its own thread: heads are capped at
//! 8 KiB and bodies at 64 KiB, a body is read only for a POST to the secret path, each
//! connection gets 2 s in all to send its request, and at most 16 are served at once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::worker::Shared;

/// Largest request head (request line and headers) read.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Largest body read.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Time a connection has to send its whole request, however it trickles in.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
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

/// Where the host part of a URL ends: at its path, query or fragment.
fn host_end(url: &str, after_scheme: usize) -> usize {
    url[after_scheme..].find(['/', '?', '#']).map_or(url.len(), |i| after_scheme + i)
}

/// `scheme://host[:port]/…` of a URL: no userinfo, path, query or fragment (any may be secret).
fn origin(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = host_end(url, after_scheme);
    let host = &url[after_scheme..end];
    let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
    format!("{}{host}/…", &url[..after_scheme])
}

/// The request target Edgegap's call will carry: the URL's path and query (`/` when it has no
/// path), without a fragment.
pub fn expected_path(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[host_end(url, after_scheme)..];
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    if rest.starts_with('/') { rest.to_string() } else { format!("/{rest}") }
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
    let _ = stream.set_write_timeout(Some(REQUEST_DEADLINE));
    let status = match read_request(&mut stream, path) {
        Ok(body) => {
            if let (Some(hint), Some(shared)) = (hint(&body), shared.upgrade()) {
                wake(&shared, &hint);
            }
            "204 No Content"
        }
        Err(Refused::NotFound) => "404 Not Found",
        Err(Refused::Bad) => "400 Bad Request",
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

/// Why a request gets no `204`.
enum Refused {
    /// Not a POST to the secret path: nothing more is read.
    NotFound,
    /// Malformed, too large, too slow, or chunked.
    Bad,
}

/// Reads from `stream` until the whole request must be in, within the overall deadline.
struct Reader<'a> {
    stream: &'a mut TcpStream,
    deadline: Instant,
    buffer: Vec<u8>,
}

impl Reader<'_> {
    /// Reads more bytes; fails once the deadline has passed or the peer closed.
    fn more(&mut self) -> Result<(), Refused> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
            return Err(Refused::Bad);
        }
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => Err(Refused::Bad),
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }
}

/// Reads one request: the head (at most [`MAX_HEAD_BYTES`]), then, only for a POST to the
/// secret `path`, a `content-length` body (at most [`MAX_BODY_BYTES`]); all of it within
/// [`REQUEST_DEADLINE`]. Returns the body.
fn read_request(stream: &mut TcpStream, path: &str) -> Result<Vec<u8>, Refused> {
    let mut reader = Reader { stream, deadline: Instant::now() + REQUEST_DEADLINE, buffer: Vec::with_capacity(1024) };
    let mut scanned: usize = 0;
    let head_end = loop {
        // Only the bytes not scanned yet (and the 3 before them) can complete the separator.
        let from = scanned.saturating_sub(3);
        if let Some(at) = reader.buffer[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            break from + at + 4;
        }
        scanned = reader.buffer.len();
        if scanned > MAX_HEAD_BYTES {
            return Err(Refused::Bad);
        }
        reader.more()?;
    };
    let head = std::str::from_utf8(&reader.buffer[..head_end]).map_err(|_| Refused::Bad)?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().ok_or(Refused::Bad)?.split(' ');
    let (method, target) = (request_line.next().ok_or(Refused::Bad)?, request_line.next().ok_or(Refused::Bad)?);
    if method != "POST" || !constant_time_eq(target.as_bytes(), path.as_bytes()) {
        return Err(Refused::NotFound);
    }
    let mut length = 0;
    for (name, value) in lines.filter_map(|line| line.split_once(':')) {
        if name.trim().eq_ignore_ascii_case("transfer-encoding") {
            return Err(Refused::Bad);
        }
        if name.trim().eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<usize>().map_err(|_| Refused::Bad)?;
        }
    }
    if length > MAX_BODY_BYTES {
        return Err(Refused::Bad);
    }
    while reader.buffer.len() < head_end + length {
        reader.more()?;
    }
    Ok(reader.buffer[head_end..head_end + length].to_vec())
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
        assert_eq!(expected_path("https://mm.example.com?key=s3cr3t"), "/?key=s3cr3t");
        assert_eq!(origin("https://user:pw@mm.example.com?key=s3cr3t"), "https://mm.example.com/…");
        let shown = format!("{webhook:?}");
        assert!(shown.contains("https://mm.example.com/…") && !shown.contains("s3cr3t"), "{shown}");
        assert!(constant_time_eq(b"/a", b"/a") && !constant_time_eq(b"/a", b"/b") && !constant_time_eq(b"/a", b"/ab"));
    }
}
