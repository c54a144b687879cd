//! Sessions API (v1): create, get, delete, list.

use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value, json};

use super::apps::resolve;
use super::{Incoming, Page, Reply, parse_body};
use crate::server::Shared;
use crate::state::{DeployState, SessionRec, SessionState};
use crate::{format, views};

/// `SessionModel` as the fake reads it (unknown fields ignored).
#[derive(Deserialize)]
struct CreateBody {
    app_name: Option<String>,
    version_name: Option<String>,
    ip_list: Option<Vec<String>>,
    geo_ip_list: Option<Vec<GeoIp>>,
    deployment_request_id: Option<String>,
    webhook_url: Option<String>,
    selectors: Option<Value>,
}

#[derive(Deserialize)]
struct GeoIp {
    ip: String,
    #[allow(dead_code)] // required by the spec; checked by deserialisation
    latitude: f64,
    #[allow(dead_code)]
    longitude: f64,
}

pub(super) fn create(shared: &Shared, req: &Incoming) -> Reply {
    let body: CreateBody = match parse_body(req) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let Some(app_name) = body.app_name else {
        return Reply::error(400, "app_name: Missing data for required field.");
    };
    let resolved = match resolve(shared, &app_name, body.version_name.as_deref()) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let mut users: Vec<String> = body.ip_list.unwrap_or_default();
    users.extend(body.geo_ip_list.unwrap_or_default().into_iter().map(|g| g.ip));
    if users.is_empty() {
        return Reply::error(400, "A session needs at least one user (ip_list or geo_ip_list)");
    }
    let mut world = shared.world();
    if let Some(requested) = &body.deployment_request_id {
        match world.deployments.get(requested) {
            Some(dep) if !matches!(dep.state, DeployState::Terminated | DeployState::Error) => {}
            _ => {
                return Reply::error(400, format!("Deployment {requested} not found or not running"));
            }
        }
    }
    let mut session_id = format::session_id();
    while world.sessions.contains_key(&session_id) {
        session_id = format::session_id();
    }
    let seq = world.next_seq;
    world.next_seq += 1;
    let session = SessionRec {
        session_id: session_id.clone(),
        app: resolved.app.name.clone(),
        version: resolved.version.name.clone(),
        version_id: resolved.version_id,
        kind: resolved.version.session_kind.clone(),
        users,
        created: Instant::now(),
        create_time: format::timestamp_now(),
        deployment: None,
        unlinked_state: SessionState::Seeking,
        requested_deployment: body.deployment_request_id.clone(),
        webhook_url: body.webhook_url.clone(),
        webhook_sent: false,
        seq,
    };
    world.sessions.insert(session_id.clone(), session);
    let mut reply = json!({
        "session_id": session_id,
        "app": resolved.app.name,
        "version": resolved.version.name,
    });
    if let Value::Object(map) = &mut reply {
        if let Some(dep) = body.deployment_request_id {
            map.insert("deployment_request_id".into(), json!(dep));
        }
        if let Some(url) = body.webhook_url {
            map.insert("webhook_url".into(), json!(url));
        }
        if let Some(selectors) = body.selectors {
            map.insert("selectors".into(), selectors);
        }
    }
    Reply::ok(reply)
}

pub(super) fn get(shared: &Shared, id: &str) -> Reply {
    let world = shared.world();
    match world.sessions.get(id) {
        Some(session) => Reply::ok(views::session_get(&shared.config, &world, session)),
        // The spec documents only 400/401 for this endpoint.
        None => Reply::error(400, format!("Session {id} not found")),
    }
}

/// Frees the session's seats; the deployment keeps running. 410 when its
/// deployment is already terminated (the session is removed all the same).
pub(super) fn delete(shared: &Shared, id: &str) -> Reply {
    let mut world = shared.world();
    let Some(session) = world.sessions.remove(id) else {
        return Reply::error(404, format!("Session {id} not found"));
    };
    let terminated = session
        .deployment
        .as_deref()
        .and_then(|d| world.deployments.get(d))
        .is_some_and(|d| d.state == DeployState::Terminated);
    if terminated {
        return Reply::error(410, "Instance Already terminated");
    }
    Reply::ok(json!({ "message": format!("Session {id} deleted"), "session_id": id }))
}

pub(super) fn list(shared: &Shared, req: &Incoming) -> Reply {
    let world = shared.world();
    let mut all: Vec<&SessionRec> = world.sessions.values().collect();
    all.sort_by_key(|s| s.seq);
    Reply::ok(Value::Object(Page::of(req).body(&all, |s| views::session_context(&world, s))))
}
