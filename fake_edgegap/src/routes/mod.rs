//! Request routing: path normalisation, fault injection, auth, dispatch.
//!
//! Order per request: match the route (404 if none) → count it → injected
//! faults and rate limits → authentication → handler. Faults come before
//! auth because Edgegap's front door (rate limiting, gateway errors) answers
//! before the application checks the token.

mod apps;
mod container;
mod deployments;
mod fake;
mod sessions;

use serde_json::{Value, json};

use crate::faults::{Decision, Endpoint};
use crate::server::Shared;

pub(crate) use deployments::request_stop;

/// A parsed HTTP request.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub body: String,
}

impl Incoming {
    /// A query parameter, if present.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

/// An answer: status and JSON body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }

    pub fn with(status: u16, body: Value) -> Self {
        Self { status, body }
    }

    /// Edgegap's error shape, `{"message": ...}`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self { status, body: json!({ "message": message.into() }) }
    }
}

enum Route {
    App(String),
    AppVersion(String, String),
    CreateSession,
    GetSession(String),
    DeleteSession(String),
    ListSessions,
    CreateDeployment,
    ListDeployments,
    Status(String),
    Stop(String),
    Context(String, String),
    SelfStop(String, String),
    Inventory,
    GetFaults,
    PutFaults,
}

impl Route {
    fn parse(method: &str, path: &str) -> Option<Self> {
        // Splitting and dropping empty segments collapses `//` (bevygap's
        // generated client really sends `//v1/session`).
        let segs: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let own = |s: &str| s.to_owned();
        Some(match (method, segs.as_slice()) {
            ("GET", ["v1", "app", app]) => Self::App(own(app)),
            ("GET", ["v1", "app", app, "version", version]) => Self::AppVersion(own(app), own(version)),
            ("POST", ["v1", "session"]) => Self::CreateSession,
            ("GET", ["v1", "session", id]) => Self::GetSession(own(id)),
            ("DELETE", ["v1", "session", id]) => Self::DeleteSession(own(id)),
            ("GET", ["v1", "sessions"]) => Self::ListSessions,
            ("POST", ["v2", "deployments"]) => Self::CreateDeployment,
            ("GET", ["v1", "deployments"]) => Self::ListDeployments,
            ("GET", ["v1", "status", id]) => Self::Status(own(id)),
            ("DELETE", ["v1", "stop", id]) => Self::Stop(own(id)),
            ("GET", ["v1", "context", id, n]) => Self::Context(own(id), own(n)),
            ("DELETE", ["v1", "self", "stop", id, n]) => Self::SelfStop(own(id), own(n)),
            ("GET", ["_fake", "inventory"]) => Self::Inventory,
            ("GET", ["_fake", "faults"]) => Self::GetFaults,
            ("PUT", ["_fake", "faults"]) => Self::PutFaults,
            _ => return None,
        })
    }

    fn endpoint(&self) -> Option<Endpoint> {
        Some(match self {
            Self::App(_) => Endpoint::GetApp,
            Self::AppVersion(..) => Endpoint::GetAppVersion,
            Self::CreateSession => Endpoint::CreateSession,
            Self::GetSession(_) => Endpoint::GetSession,
            Self::DeleteSession(_) => Endpoint::DeleteSession,
            Self::ListSessions => Endpoint::ListSessions,
            Self::CreateDeployment => Endpoint::CreateDeployment,
            Self::ListDeployments => Endpoint::ListDeployments,
            Self::Status(_) => Endpoint::DeploymentStatus,
            Self::Stop(_) => Endpoint::StopDeployment,
            Self::Context(..) => Endpoint::Context,
            Self::SelfStop(..) => Endpoint::SelfStop,
            Self::Inventory | Self::GetFaults | Self::PutFaults => return None,
        })
    }

    /// Account endpoints need `authorization: token <key>`; in-container ones
    /// check their raw token in the handler; `/_fake/*` is open.
    fn needs_account_token(&self) -> bool {
        !matches!(self, Self::Context(..) | Self::SelfStop(..) | Self::Inventory | Self::GetFaults | Self::PutFaults)
    }
}

/// Serves one request.
pub(crate) fn dispatch(shared: &Shared, req: &Incoming) -> Reply {
    let Some(route) = Route::parse(&req.method, &req.path) else {
        return Reply::error(404, "Not Found");
    };
    if let Some(endpoint) = route.endpoint() {
        *shared.world().request_counts.entry(endpoint.name().to_owned()).or_default() += 1;
        let decision = shared.faults().decide(endpoint);
        match decision {
            Decision::Pass => {}
            Decision::Slow(delay) => {
                shared.sleep(delay);
            }
            Decision::Fail(status, message) => return Reply::error(status, message),
            Decision::Malformed => return Reply::ok(json!({ "unexpected": true })),
            Decision::Hang(hold) => {
                shared.sleep(hold);
                return Reply::error(504, "Gateway Timeout");
            }
        }
    }
    if route.needs_account_token() && !account_token_ok(shared, req) {
        return Reply::error(401, "Unauthorized");
    }
    match route {
        Route::App(app) => apps::get_app(shared, &app),
        Route::AppVersion(app, version) => apps::get_app_version(shared, &app, &version),
        Route::CreateSession => sessions::create(shared, req),
        Route::GetSession(id) => sessions::get(shared, &id),
        Route::DeleteSession(id) => sessions::delete(shared, &id),
        Route::ListSessions => sessions::list(shared, req),
        Route::CreateDeployment => deployments::create_v2(shared, req),
        Route::ListDeployments => deployments::list(shared, req),
        Route::Status(id) => deployments::status(shared, &id),
        Route::Stop(id) => request_stop(shared, &id),
        Route::Context(id, n) => container::context(shared, req, &id, &n),
        Route::SelfStop(id, n) => container::self_stop(shared, req, &id, &n),
        Route::Inventory => fake::inventory(shared),
        Route::GetFaults => fake::get_faults(shared),
        Route::PutFaults => fake::put_faults(shared, req),
    }
}

/// Exactly `token <api_token>`; `token token <key>` and a bare key are rejected.
fn account_token_ok(shared: &Shared, req: &Incoming) -> bool {
    let expected = format!("token {}", shared.config.api_token);
    req.authorization.as_deref() == Some(expected.as_str())
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        if let (b'%', Some(Ok(byte))) = (bytes[i], hex.map(|h| u8::from_str_radix(h, 16))) {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a JSON body into `T`, answering 400 with serde's reason on failure.
/// One page of a list endpoint: `page` and `limit` from the query (1 and 100 by default).
pub(crate) struct Page {
    page: usize,
    limit: usize,
}

impl Page {
    pub(crate) fn of(req: &Incoming) -> Self {
        let page = req.query_param("page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1);
        let limit = req.query_param("limit").and_then(|l| l.parse().ok()).filter(|l| *l >= 1).unwrap_or(100);
        Self { page, limit }
    }

    /// This page of `items`, rendered, with `total_count` and the `pagination` object Edgegap's
    /// list endpoints answer with.
    pub(crate) fn body<T>(&self, items: &[T], render: impl Fn(&T) -> Value) -> serde_json::Map<String, Value> {
        let (page, total) = (self.page, items.len());
        let num_pages = total.div_ceil(self.limit).max(1);
        let data: Vec<Value> =
            items.iter().skip((page - 1).saturating_mul(self.limit)).take(self.limit).map(render).collect();
        let body = json!({
            "data": data,
            "total_count": total,
            "pagination": {
                "number": page,
                "next_page_number": if page < num_pages { Some(page + 1) } else { None },
                "previous_page_number": if page > 1 { Some(page - 1) } else { None },
                "paginator": { "num_pages": num_pages },
                "has_next": page < num_pages,
                "has_previous": page > 1,
            },
        });
        match body {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    }
}

pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(req: &Incoming) -> Result<T, Reply> {
    serde_json::from_str(&req.body)
        .map_err(|e| Reply::with(400, json!({ "message": "Bad Request", "details": { "body": e.to_string() } })))
}
