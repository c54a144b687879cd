//! The seam between the plugin and an HTTP client.
//!
//! A backend does one thing: POST a JSON body and stream the response back as
//! [`HttpEvent`]s, without blocking the caller. Everything about the protocol (SSE framing,
//! JSON-RPC, retries, error codes) lives above it, so a browser backend (`fetch` with a
//! `ReadableStream` reader, spawned with `wasm_bindgen_futures::spawn_local`) only has to
//! implement [`MatchmakerHttp`] and is installed with
//! [`BevygapClientPlugin::with_http`](crate::BevygapClientPlugin::with_http); the plugin's
//! public API does not change.
//!
//! | target | backend | notes |
//! |---|---|---|
//! | native | `NativeHttp`: ureq 3 on a short-lived thread per call | the default, tested |
//! | wasm32 | `WebHttp`: `fetch` with a streaming body reader, on the page's event loop | the default, tested in Chromium |

#[cfg(not(target_arch = "wasm32"))]
mod native;

#[cfg(not(target_arch = "wasm32"))]
pub use native::NativeHttp;

#[cfg(target_arch = "wasm32")]
mod web;

#[cfg(target_arch = "wasm32")]
pub use web::WebHttp;

use std::time::Duration;

/// One POST to the matchmaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub url: String,
    /// A JSON-RPC 2.0 request.
    pub body: String,
    /// Giving up on establishing the connection.
    pub connect_timeout: Duration,
    /// Giving up when the response is silent this long (the matchmaker sends keep-alives).
    pub idle_timeout: Duration,
    /// Giving up on the whole call.
    pub total_timeout: Duration,
}

/// What a backend reports about one call, in this order: at most one `Head`, any number of
/// `Body` chunks, then exactly one of `End` or `Failed` (or `Failed` alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpEvent {
    /// The response status and whether the body is `text/event-stream`.
    Head { status: u16, event_stream: bool },
    /// Body bytes as they arrive, split anywhere.
    Body(Vec<u8>),
    /// The body ended normally.
    End,
    /// The call failed below HTTP (refused, reset, timed out) or the body broke off.
    Failed(String),
}

/// Where a backend sends the events of one call. When the plugin loses interest (the join
/// was cancelled or superseded) sends start failing and the backend should stop.
#[derive(Debug, Clone)]
pub struct HttpSink(async_channel::Sender<HttpEvent>);

impl HttpSink {
    /// A sink and the receiver the plugin reads from.
    pub fn channel() -> (Self, async_channel::Receiver<HttpEvent>) {
        let (tx, rx) = async_channel::unbounded();
        (Self(tx), rx)
    }

    /// Sends one event; `false` when nobody listens any more.
    pub fn send(&self, event: HttpEvent) -> bool {
        self.0.try_send(event).is_ok()
    }

    /// Whether nobody listens any more.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// An HTTP client for the matchmaker. Implementations must return at once and do the work in
/// the background (a thread, a task, the browser's event loop).
pub trait MatchmakerHttp: Send + Sync + 'static {
    fn post(&self, request: HttpRequest, sink: HttpSink);
}

/// The backend for this target, if one is built in.
pub fn default_backend() -> Option<Box<dyn MatchmakerHttp>> {
    #[cfg(not(target_arch = "wasm32"))]
    return Some(Box::new(NativeHttp));
    #[cfg(target_arch = "wasm32")]
    return Some(Box::new(WebHttp));
}
