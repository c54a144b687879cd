//! The HTTP transport of both endpoints: hyper on the tokio runtime, feeding JSON-RPC calls
//! into bevy_remote's channel, streaming answers back as server-sent events with keep-alives
//! and an overall deadline. What is let through is the [`gatekeeper`](super::gatekeeper); the JSON-RPC
//! shapes are [`envelope`](super::envelope); the typed player params are
//! [`params`](super::params).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bevy_remote::{BrpResult, error_codes};
use bevygap_shared::protocol::{ErrorCode, JoinError, JoinRequest, METHOD_CANCEL, METHOD_JOIN, METHOD_JOIN_WATCH};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::connections::{ConnectionCounts, connection_budget};
use super::gatekeeper::{FrontKind, Gatekeeper, Refusal};
use super::settings::FrontSettings;
use crate::calls::envelope::{RpcCall, code_error, is_terminal_join_result, parse_call, protocol_error, response_json};
use crate::calls::pacing::{Paced, paced};
use crate::calls::params::{Caller, CancelCall, CancelRequest, JoinCall};
use crate::calls::{Call, CallRouter};
use futures::StreamExt;

type Body = BoxBody<Bytes, Infallible>;

/// How long a client may take to send its (small) request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections on the admin endpoint (operators and their dashboards), counted within the
/// descriptors [`connection_budget`] keeps aside.
const MAX_ADMIN_CONNECTIONS: usize = 64;

/// One endpoint: its policy and its way into the ECS.
pub struct Front {
    policy: Gatekeeper,
    connections: ConnectionCounts,
    max_connections: usize,
    idle_timeout: Duration,
    calls: CallRouter,
    /// Rendered on `GET /metrics` (admin endpoint only).
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    keepalive: Duration,
    deadline: Duration,
}

impl Front {
    /// The `kind` endpoint under `settings`, handing calls to `calls` (this replica's
    /// bevy_remote, or the owning replica's); no call is waited on past `call_deadline`
    /// ([`JoinSettings::call_deadline`](crate::joins::JoinSettings::call_deadline)).
    pub fn new(
        kind: FrontKind,
        settings: &FrontSettings,
        call_deadline: Duration,
        calls: CallRouter,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> Self {
        Self {
            policy: Gatekeeper::new(kind, settings),
            connections: ConnectionCounts::new(settings.max_connections_per_ip),
            max_connections: match kind {
                FrontKind::Admin => MAX_ADMIN_CONNECTIONS,
                FrontKind::Public => settings.max_connections,
            },
            idle_timeout: settings.idle_timeout,
            calls,
            metrics: metrics.filter(|_| kind == FrontKind::Admin),
            keepalive: settings.keepalive,
            deadline: call_deadline,
        }
    }
}

/// Accepts connections until the runtime shuts down: at most what the descriptor limit allows
/// in total and `max_connections_per_ip` per client address (trusted proxies excepted), so one
/// host cannot take every slot; a connection that sends nothing is closed after the idle
/// timeout.
pub async fn serve(listener: tokio::net::TcpListener, front: Arc<Front>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(connection_budget(front.max_connections)));
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
        let counted = if front.policy.is_trusted_proxy(peer.ip()) {
            Some(front.connections.uncounted(peer.ip()))
        } else {
            front.connections.take(peer.ip())
        };
        let Some(counted) = counted else {
            tracing::debug!("too many connections from {}; refusing", peer.ip());
            continue;
        };
        let front = front.clone();
        tokio::spawn(async move {
            let _slots = (slot, counted);
            // A connection that sends nothing costs its holder nothing: close it early.
            if tokio::time::timeout(front.idle_timeout, stream.readable()).await.is_err() {
                return;
            }
            let idle = front.idle_timeout;
            let service = hyper::service::service_fn(move |req| {
                let front = front.clone();
                async move { Ok::<_, Infallible>(handle(front, peer, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(idle)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!("connection from {peer} ended: {e}");
            }
        });
    }
}

/// The operator dashboard, served by the admin endpoint on `GET /`. It holds no data, so it is
/// served without the token (it asks for it): its requests go through the same checks as any
/// other admin call.
const DASHBOARD: &str = include_str!("../../../assets/dashboard.html");

async fn handle(front: Arc<Front>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    if req.method() == Method::OPTIONS {
        return front.respond(StatusCode::NO_CONTENT, Body::default());
    }
    if req.method() == Method::GET && req.uri().path() == "/metrics" && front.metrics.is_some() {
        if let Err(refusal) = front.policy.check_caller(req.headers()) {
            return front.refuse(refusal);
        }
        return front.metrics_page();
    }
    if front.policy.serves_dashboard() && req.method() == Method::GET {
        let mut page =
            front.respond(StatusCode::OK, BodyExt::boxed(Full::new(Bytes::from_static(DASHBOARD.as_bytes()))));
        page.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        return page;
    }
    if let Err(refusal) = front.policy.check_caller(req.headers()) {
        return front.refuse(refusal);
    }
    let ip = front.policy.caller_ip(peer.ip(), req.headers());
    let checked = front.policy.check_rate(ip).and_then(|()| front.policy.check_declared_length(req.headers()));
    if let Err(refusal) = checked {
        return front.refuse(refusal);
    }
    let body = match front.read_body(req).await {
        Ok(body) => body,
        Err(refusal) => return front.refuse(refusal),
    };
    let RpcCall { id, method, params } = match parse_call(&body) {
        Ok(call) => call,
        Err((id, error)) => return front.rpc_error(StatusCode::OK, id, error),
    };
    if let Err(error) = front.policy.check_method(&method) {
        return front.rpc_error(StatusCode::OK, id, error);
    }
    let is_join = method == METHOD_JOIN || method == METHOD_JOIN_WATCH;
    let call = if is_join || method == METHOD_CANCEL {
        match front.player_call(&method, params, ip) {
            Ok(call) => call,
            Err(e) => return front.rpc_error(StatusCode::OK, id, e),
        }
    } else {
        Call::Remote { method: method.clone(), params }
    };
    // The router waits briefly for room rather than refuse a burst.
    let Some(rx) = front.calls.dispatch(call, front.deadline).await else {
        return front.rpc_error(StatusCode::SERVICE_UNAVAILABLE, id, code_error(ErrorCode::Unavailable));
    };
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
    /// Reads the body within the size limit and the read timeout.
    async fn read_body(&self, req: Request<Incoming>) -> Result<Bytes, Refusal> {
        let limited = Limited::new(req.into_body(), self.policy.max_body());
        match tokio::time::timeout(BODY_READ_TIMEOUT, limited.collect()).await {
            Ok(Ok(body)) => Ok(body.to_bytes()),
            Ok(Err(_)) => Err(self.policy.too_large()),
            Err(_) => Err((
                StatusCode::REQUEST_TIMEOUT,
                protocol_error(error_codes::INVALID_REQUEST, "request body not received in time"),
            )),
        }
    }

    /// The typed call of a player method: the caller as the transport resolved it, and the
    /// player's own params parsed into their request type (a join always gets a request id).
    fn player_call(&self, method: &str, params: Option<Value>, ip: IpAddr) -> Result<Call, bevy_remote::BrpError> {
        let invalid = |e: serde_json::Error| {
            let error = JoinError::new(ErrorCode::InvalidRequest, format!("invalid params: {e}"));
            crate::calls::envelope::join_error(&error)
        };
        let caller = Caller { ip };
        let Some(params @ Value::Object(_)) = params else {
            return Err(protocol_error(error_codes::INVALID_PARAMS, "params must be an object"));
        };
        if method == METHOD_CANCEL {
            let request: CancelRequest = serde_json::from_value(params).map_err(invalid)?;
            let params = serde_json::to_value(CancelCall { caller, request })
                .map_err(|e| protocol_error(error_codes::INTERNAL_ERROR, e.to_string()))?;
            return Ok(Call::Remote { method: method.to_string(), params: Some(params) });
        }
        let mut request: JoinRequest = serde_json::from_value(params).map_err(invalid)?;
        if request.request_id.is_none() {
            request.request_id = Some(format!("{:032x}", rand::random::<u128>()));
        }
        Ok(Call::Join { watch: method == METHOD_JOIN_WATCH, call: Box::new(JoinCall { caller, request }) })
    }

    /// Server-sent events: one `data:` line per message, keep-alive comments while waiting,
    /// and always a terminal message (ready or a JSON-RPC error) for joins.
    fn stream(&self, id: Option<Value>, rx: async_channel::Receiver<BrpResult>, is_join: bool) -> Response<Body> {
        // The body is the paced answers themselves (no task or channel of its own per stream:
        // thousands of players may wait at once); it ends after a join's terminal message.
        let events = Box::pin(paced(rx, self.keepalive, is_join.then_some(self.deadline)));
        let frames = futures::stream::unfold((events, id, false), move |(mut events, id, done)| async move {
            if done {
                return None;
            }
            let (line, last) = match events.next().await? {
                Paced::Answer(result) => {
                    let terminal = is_join && is_terminal_join_result(&result);
                    (Bytes::from(format!("data: {}\n\n", response_json(id.clone(), result))), terminal)
                }
                Paced::KeepAlive => (Bytes::from_static(b": keep-alive\n\n"), false),
                Paced::Deadline => {
                    let timeout = response_json(id.clone(), Err(code_error(ErrorCode::Timeout)));
                    (Bytes::from(format!("data: {timeout}\n\n")), true)
                }
            };
            Some((Ok::<_, Infallible>(Frame::data(line)), (events, id, last)))
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

    /// The Prometheus text exposition of this process's metrics.
    fn metrics_page(&self) -> Response<Body> {
        let text = self.metrics.as_ref().map(|m| m.render()).unwrap_or_default();
        let mut page = self.respond(StatusCode::OK, BodyExt::boxed(Full::new(Bytes::from(text))));
        page.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(bevygap_shared::metrics::CONTENT_TYPE));
        page
    }

    fn rpc_result(&self, id: Option<Value>, result: BrpResult) -> Response<Body> {
        self.json(StatusCode::OK, response_json(id, result))
    }

    fn rpc_error(&self, status: StatusCode, id: Option<Value>, error: bevy_remote::BrpError) -> Response<Body> {
        self.json(status, response_json(id, Err(error)))
    }

    fn refuse(&self, (status, error): Refusal) -> Response<Body> {
        self.rpc_error(status, None, error)
    }

    fn json(&self, status: StatusCode, text: String) -> Response<Body> {
        let mut response = self.respond(status, BodyExt::boxed(Full::new(Bytes::from(text))));
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }

    fn respond(&self, status: StatusCode, body: Body) -> Response<Body> {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        self.policy.add_cors_headers(response.headers_mut());
        response
    }
}
