//! The HTTP front of both endpoints: hyper on the tokio runtime, feeding JSON-RPC requests
//! into bevy_remote's channel. It enforces what bevy_remote's own HTTP plugin cannot: the
//! public method allow-list, body and rate limits, the admin bearer token, peer-IP
//! resolution, keep-alives and an overall deadline on streams.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bevy_remote::{BrpMessage, BrpResult, error_codes};
use bevygap_shared::Secret;
use bevygap_shared::protocol::{ErrorCode, METHOD_JOIN, METHOD_JOIN_WATCH};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::PUBLIC_METHODS;
use super::join_methods::{PEER_PARAM, STREAM_PARAM};
use super::limits::{RateLimiter, client_ip};
use super::rpc::{code_error, is_terminal_join_result, method_not_available, protocol_error, response_json};
use crate::config::MatchmakerConfig;
use bevygap_shared::inbox::AppWaker;
use bevygap_shared::protocol::METHOD_CANCEL;

type Body = BoxBody<Bytes, Infallible>;

/// How long a client may take to send its (small) request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections per endpoint; beyond this new connections are closed at once, so slow
/// clients cannot exhaust the process's file descriptors.
const MAX_CONNECTIONS: usize = 4096;

/// Which listener a front serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontKind {
    Public,
    Admin,
}

/// One endpoint's policy and its way into the ECS.
pub struct Front {
    kind: FrontKind,
    brp: async_channel::Sender<BrpMessage>,
    waker: AppWaker,
    admin_token: Option<Secret>,
    cors_origin: Option<HeaderValue>,
    max_body: usize,
    limiter: Option<RateLimiter>,
    trusted_proxies: Vec<IpAddr>,
    keepalive: Duration,
    deadline: Duration,
    next_stream: AtomicU64,
}

impl Front {
    pub fn new(
        kind: FrontKind,
        config: &MatchmakerConfig,
        brp: async_channel::Sender<BrpMessage>,
        waker: AppWaker,
    ) -> Self {
        let public = kind == FrontKind::Public;
        Self {
            kind,
            brp,
            waker,
            admin_token: if public { None } else { config.admin_token.clone() },
            cors_origin: config.cors_origin.as_deref().filter(|_| public).and_then(|o| HeaderValue::from_str(o).ok()),
            max_body: config.max_body_bytes,
            limiter: public.then(|| RateLimiter::new(config.rate_per_minute, config.rate_burst)),
            trusted_proxies: config.trusted_proxies.clone(),
            keepalive: config.keepalive,
            // A backstop: the ECS ends every join by its own deadline first.
            deadline: config.join_deadline + Duration::from_secs(5),
            next_stream: AtomicU64::new(1),
        }
    }
}

/// Accepts connections until the runtime shuts down.
pub async fn serve(listener: tokio::net::TcpListener, front: Arc<Front>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!("too many open connections; refusing {peer}");
            continue;
        };
        let front = front.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| {
                let front = front.clone();
                async move { Ok::<_, Infallible>(handle(front, peer, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!("connection from {peer} ended: {e}");
            }
        });
    }
}

/// The operator dashboard, served by the admin endpoint on `GET /`. It holds no data: its
/// requests go through the same token check as any other admin call.
const DASHBOARD: &str = include_str!("../../../assets/dashboard.html");

async fn handle(front: Arc<Front>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    if req.method() == Method::OPTIONS {
        return front.respond(StatusCode::NO_CONTENT, Body::default());
    }
    if front.kind == FrontKind::Admin && front.admin_token.is_none() && !loopback_same_origin(req.headers()) {
        let error = protocol_error(super::rpc::UNAUTHORIZED, "cross-origin requests to the admin endpoint are refused");
        return front.rpc_error(StatusCode::FORBIDDEN, None, error);
    }
    if front.kind == FrontKind::Admin && req.method() == Method::GET {
        let mut page =
            front.respond(StatusCode::OK, BodyExt::boxed(Full::new(Bytes::from_static(DASHBOARD.as_bytes()))));
        page.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        return page;
    }
    if let Some(token) = &front.admin_token
        && !bearer_matches(req.headers().get(AUTHORIZATION), token)
    {
        return front.rpc_error(
            StatusCode::UNAUTHORIZED,
            None,
            protocol_error(super::rpc::UNAUTHORIZED, "a valid bearer token is required"),
        );
    }
    let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let ip = client_ip(peer.ip(), forwarded, &front.trusted_proxies);
    if let Some(limiter) = &front.limiter
        && !limiter.allow(ip)
    {
        return front.rpc_error(StatusCode::TOO_MANY_REQUESTS, None, code_error(ErrorCode::RateLimited));
    }
    let declared =
        req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > front.max_body) {
        return front.too_large();
    }
    let read = tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(req.into_body(), front.max_body).collect()).await;
    let body = match read {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(_)) => return front.too_large(),
        Err(_) => {
            let error = protocol_error(error_codes::INVALID_REQUEST, "request body not received in time");
            return front.rpc_error(StatusCode::REQUEST_TIMEOUT, None, error);
        }
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => {
            return front.rpc_error(StatusCode::OK, None, protocol_error(error_codes::PARSE_ERROR, e.to_string()));
        }
    };
    if request.is_array() {
        let error = protocol_error(error_codes::INVALID_REQUEST, "batch requests are not accepted");
        return front.rpc_error(StatusCode::OK, None, error);
    }
    let id = request.get("id").cloned();
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        let error = protocol_error(error_codes::INVALID_REQUEST, "`jsonrpc` must be \"2.0\"");
        return front.rpc_error(StatusCode::OK, id, error);
    }
    let Some(method) = request.get("method").and_then(Value::as_str).map(str::to_string) else {
        return front.rpc_error(
            StatusCode::OK,
            id,
            protocol_error(error_codes::INVALID_REQUEST, "`method` is required"),
        );
    };
    if front.kind == FrontKind::Public && !PUBLIC_METHODS.contains(&method.as_str()) {
        return front.rpc_error(StatusCode::OK, id, method_not_available(&method));
    }
    let is_join = method == METHOD_JOIN || method == METHOD_JOIN_WATCH;
    let mut params = request.get("params").cloned();
    if is_join || method == METHOD_CANCEL {
        match front.player_params(params, ip, is_join) {
            Ok(p) => params = Some(p),
            Err(e) => return front.rpc_error(StatusCode::OK, id, e),
        }
    }
    let (tx, rx) = async_channel::bounded(64);
    let message = BrpMessage { method: method.clone(), params, sender: tx };
    // bevy_remote's mailbox is small; wait briefly for room rather than refuse a burst.
    let queued = tokio::time::timeout(Duration::from_secs(2), front.brp.send(message)).await;
    if !matches!(queued, Ok(Ok(()))) {
        return front.rpc_error(StatusCode::SERVICE_UNAVAILABLE, id, code_error(ErrorCode::Unavailable));
    }
    front.waker.wake();
    if method.contains("+watch") {
        front.stream(id, rx, is_join)
    } else if is_join {
        front.one_shot_join(id, rx).await
    } else {
        match rx.recv().await {
            Ok(result) => front.rpc_result(id, result),
            Err(_) => front.rpc_error(StatusCode::OK, id, code_error(ErrorCode::Internal)),
        }
    }
}

impl Front {
    /// Player params with server-set fields: every client `$` key dropped, then the resolved
    /// peer IP added; for joins also a stream id, and a request id when the client sent none.
    fn player_params(&self, params: Option<Value>, ip: IpAddr, join: bool) -> Result<Value, bevy_remote::BrpError> {
        let mut object = match params {
            Some(Value::Object(map)) => map,
            _ => return Err(protocol_error(error_codes::INVALID_PARAMS, "params must be an object")),
        };
        object.retain(|key, _| !key.starts_with('$'));
        object.insert(PEER_PARAM.into(), Value::String(ip.to_string()));
        if !join {
            return Ok(Value::Object(object));
        }
        let stream = self.next_stream.fetch_add(1, Ordering::Relaxed);
        object.insert(STREAM_PARAM.into(), Value::from(stream));
        if object.get("request_id").is_none_or(|v| v.is_null()) {
            object.insert("request_id".into(), Value::String(format!("{:032x}", rand::random::<u128>())));
        }
        Ok(Value::Object(object))
    }

    /// Server-sent events: one `data:` line per message, keep-alive comments while waiting,
    /// and always a terminal message (ready or a JSON-RPC error) for joins.
    fn stream(&self, id: Option<Value>, rx: async_channel::Receiver<BrpResult>, is_join: bool) -> Response<Body> {
        let (out, body_rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let keepalive = self.keepalive;
        let deadline = self.deadline;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(keepalive);
            tick.tick().await;
            let end = tokio::time::sleep(deadline);
            tokio::pin!(end);
            loop {
                tokio::select! {
                    result = rx.recv() => {
                        let Ok(result) = result else { break };
                        let terminal = is_join && is_terminal_join_result(&result);
                        let line = format!("data: {}\n\n", response_json(id.clone(), result));
                        if out.send(Bytes::from(line)).await.is_err() || terminal { break; }
                    }
                    _ = tick.tick() => {
                        if out.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() { break; }
                    }
                    _ = &mut end, if is_join => {
                        let line = format!("data: {}\n\n", response_json(id.clone(), Err(code_error(ErrorCode::Timeout))));
                        let _ = out.send(Bytes::from(line)).await;
                        break;
                    }
                }
            }
        });
        let frames = futures::stream::unfold(body_rx, |mut rx| async move {
            rx.recv().await.map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
        });
        let mut response = self.respond(StatusCode::OK, BodyExt::boxed(StreamBody::new(frames)));
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        response.headers_mut().insert("cache-control", HeaderValue::from_static("no-cache"));
        response
    }

    /// Waits for the terminal message of a join and answers once.
    async fn one_shot_join(&self, id: Option<Value>, rx: async_channel::Receiver<BrpResult>) -> Response<Body> {
        let wait = async {
            while let Ok(result) = rx.recv().await {
                if is_terminal_join_result(&result) {
                    return result;
                }
            }
            Err(code_error(ErrorCode::Internal))
        };
        let result =
            tokio::time::timeout(self.deadline, wait).await.unwrap_or_else(|_| Err(code_error(ErrorCode::Timeout)));
        self.rpc_result(id, result)
    }

    fn rpc_result(&self, id: Option<Value>, result: BrpResult) -> Response<Body> {
        self.json(StatusCode::OK, response_json(id, result))
    }

    fn rpc_error(&self, status: StatusCode, id: Option<Value>, error: bevy_remote::BrpError) -> Response<Body> {
        self.json(status, response_json(id, Err(error)))
    }

    fn too_large(&self) -> Response<Body> {
        let error =
            protocol_error(error_codes::INVALID_REQUEST, format!("request body exceeds {} bytes", self.max_body));
        self.rpc_error(StatusCode::PAYLOAD_TOO_LARGE, None, error)
    }

    fn json(&self, status: StatusCode, text: String) -> Response<Body> {
        let mut response = self.respond(status, BodyExt::boxed(Full::new(Bytes::from(text))));
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }

    fn respond(&self, status: StatusCode, body: Body) -> Response<Body> {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        if let Some(origin) = &self.cors_origin {
            let headers = response.headers_mut();
            headers.insert("access-control-allow-origin", origin.clone());
            headers.insert("access-control-allow-methods", HeaderValue::from_static("POST, OPTIONS"));
            headers.insert("access-control-allow-headers", HeaderValue::from_static("content-type"));
        }
        response
    }
}

/// Without a token the admin endpoint trusts loopback, so it must not be reachable from a web
/// page: the `Host` must be a loopback name (defeating DNS rebinding) and an `Origin`, which
/// browsers send on cross-site requests, must be that same host (the dashboard itself).
fn loopback_same_origin(headers: &hyper::HeaderMap) -> bool {
    let host = headers.get(hyper::header::HOST).and_then(|h| h.to_str().ok());
    if let Some(host) = host {
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(name, _)| name),
        };
        let loopback =
            name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return false;
        }
    }
    match headers.get(hyper::header::ORIGIN).map(|o| o.to_str()) {
        None => true,
        Some(Ok(origin)) => host.is_some_and(|host| origin == format!("http://{host}")),
        Some(Err(_)) => false,
    }
}

/// Compares `Authorization: Bearer <token>` in constant time.
fn bearer_matches(header: Option<&HeaderValue>, token: &Secret) -> bool {
    let Some(given) = header.and_then(|h| h.to_str().ok()).and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let (a, b) = (given.as_bytes(), token.expose().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
