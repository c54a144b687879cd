//! JSON bodies in Edgegap's shapes, built from the state.
//!
//! Written with `serde_json::json!` rather than the client's model types on
//! purpose: if the fake reused the client's structs, a wrong field in them
//! would be wrong on both sides and no test could notice.

use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::config::FakeConfig;
use crate::state::{DeployState, DeploymentRec, SessionRec, SessionState, World};

/// `fqdn` of a deployment.
pub fn fqdn(config: &FakeConfig, request_id: &str) -> String {
    format!("{request_id}.{}", config.fqdn_suffix)
}

/// `ports` map (`PortMapping` values).
pub fn ports(config: &FakeConfig, dep: &DeploymentRec) -> Value {
    let fqdn = fqdn(config, &dep.request_id);
    let map: Map<String, Value> = dep
        .ports
        .iter()
        .map(|p| {
            let link = crate::format::port_link(&fqdn, p.external, &p.protocol, p.tls_upgrade);
            let entry = json!({
                "external": p.external, "internal": p.internal, "protocol": p.protocol, "name": p.name,
                "tls_upgrade": p.tls_upgrade, "link": link, "proxy": null,
            });
            (p.name.clone(), entry)
        })
        .collect();
    Value::Object(map)
}

/// `DeploymentLocation`.
pub fn location(config: &FakeConfig) -> Value {
    let l = &config.location;
    json!({
        "city": l.city, "country": l.country, "continent": l.continent,
        "administrative_division": l.administrative_division, "timezone": l.timezone,
        "latitude": l.latitude, "longitude": l.longitude,
    })
}

/// `Status` (`GET /v1/status`, stop summaries, deployment webhooks).
pub fn status(config: &FakeConfig, world: &World, dep: &DeploymentRec) -> Value {
    let sessions: Vec<Value> =
        world.sessions_of(&dep.request_id).into_iter().map(|s| deployment_session(world, s)).collect();
    json!({
        "request_id": dep.request_id,
        "fqdn": fqdn(config, &dep.request_id),
        "app_name": dep.app,
        "app_version": dep.version,
        "current_status": dep.state.wire(),
        "running": dep.state == DeployState::Ready,
        "whitelisting_active": false,
        "start_time": dep.start_time,
        "removal_time": dep.removal_time,
        "elapsed_time": elapsed_secs(dep.created),
        "last_status": dep.last_state.map(DeployState::wire),
        "error": dep.state == DeployState::Error,
        "error_detail": dep.error_detail.clone().unwrap_or_default(),
        "ports": ports(config, dep),
        "public_ip": config.public_ip,
        "sessions": sessions,
        "location": location(config),
        "tags": dep.tags,
        "sockets": dep.sockets,
        "sockets_usage": world.sockets_usage(&dep.request_id),
        "command": null,
        "arguments": null,
    })
}

/// `DeploymentListData` (an entry of `GET /v1/deployments`).
pub fn deployment_list_item(config: &FakeConfig, world: &World, dep: &DeploymentRec) -> Value {
    json!({
        "request_id": dep.request_id,
        "fqdn": fqdn(config, &dep.request_id),
        "start_time": dep.start_time,
        "ready": dep.state == DeployState::Ready,
        "public_ip": config.public_ip,
        "ports": ports(config, dep),
        "tags": dep.tags,
        "sockets": dep.sockets,
        "sockets_usage": world.sockets_usage(&dep.request_id),
        "is_joinable_by_session": is_joinable(world, dep),
    })
}

/// `Deployment` as the context endpoint returns it (with location and sockets).
pub fn context(config: &FakeConfig, world: &World, dep: &DeploymentRec) -> Value {
    let mut body = embedded_deployment(config, dep);
    if let Value::Object(map) = &mut body {
        map.insert("location".into(), location(config));
        map.insert("tags".into(), json!(dep.tags));
        map.insert("sockets".into(), json!(dep.sockets));
        map.insert("sockets_usage".into(), json!(world.sockets_usage(&dep.request_id)));
        map.insert("is_joinable_by_session".into(), json!(is_joinable(world, dep)));
    }
    body
}

/// `Deployment` as embedded in `SessionGet` (the live capture had no
/// location/tags/sockets there).
pub fn embedded_deployment(config: &FakeConfig, dep: &DeploymentRec) -> Value {
    json!({
        "request_id": dep.request_id,
        "public_ip": config.public_ip,
        "status": dep.state.wire(),
        "ready": dep.state == DeployState::Ready,
        "whitelisting_active": false,
        "fqdn": fqdn(config, &dep.request_id),
        "ports": ports(config, dep),
    })
}

fn is_joinable(world: &World, dep: &DeploymentRec) -> bool {
    !dep.stop_requested
        && !matches!(dep.state, DeployState::Error | DeployState::Terminated)
        && world.sockets_usage(&dep.request_id) < dep.sockets
}

/// Session status word and flags: (`status`, `ready`, `linked`, `error`).
pub fn session_flags(world: &World, session: &SessionRec) -> (&'static str, bool, bool, Option<String>) {
    let Some(dep) = session.deployment.as_deref().and_then(|id| world.deployments.get(id)) else {
        return match session.unlinked_state {
            SessionState::Seeking => ("Seeking", false, false, None),
            SessionState::Unprocessable => {
                ("Unprocessable", false, false, Some("No deployment with free sockets and autodeploy is off".into()))
            }
        };
    };
    match dep.state {
        DeployState::Ready if !dep.stop_requested => ("Ready", true, true, None),
        DeployState::Ready => ("Linked", false, true, None),
        DeployState::Error => ("Error", false, true, Some(dep.error_detail.clone().unwrap_or_default())),
        DeployState::Terminated => ("Error", false, true, Some("Deployment terminated".into())),
        _ => ("Linked", false, true, None),
    }
}

/// `SessionGet`.
pub fn session_get(config: &FakeConfig, world: &World, session: &SessionRec) -> Value {
    let (status, ready, linked, error) = session_flags(world, session);
    let users: Vec<Value> = session
        .users
        .iter()
        .map(|ip| json!({"ip": ip, "latitude": config.location.latitude, "longitude": config.location.longitude}))
        .collect();
    let mut body = json!({
        "session_id": session.session_id,
        "status": status,
        "ready": ready,
        "linked": linked,
        "kind": session.kind,
        "user_count": session.users.len(),
        "app_version": session.version_id,
        "create_time": session.create_time,
        "elapsed": elapsed_secs(session.created),
        "session_users": users,
    });
    if let Value::Object(map) = &mut body {
        if let Some(error) = error {
            map.insert("error".into(), json!(error));
        }
        if let Some(url) = &session.webhook_url {
            map.insert("webhook_url".into(), json!(url));
        }
        if let Some(dep) = session.deployment.as_deref().and_then(|id| world.deployments.get(id)) {
            map.insert("deployment".into(), embedded_deployment(config, dep));
        }
    }
    body
}

/// `SessionContext` (list entries and session webhooks).
pub fn session_context(world: &World, session: &SessionRec) -> Value {
    let (status, ready, linked, _) = session_flags(world, session);
    let mut body = json!({
        "session_id": session.session_id,
        "status": status,
        "ready": ready,
        "linked": linked,
        "kind": session.kind,
        "user_count": session.users.len(),
    });
    if let Value::Object(map) = &mut body {
        if let Some(dep) = &session.deployment {
            map.insert("deployment_request_id".into(), json!(dep));
        }
        if let Some(url) = &session.webhook_url {
            map.insert("webhook_url".into(), json!(url));
        }
    }
    body
}

fn deployment_session(world: &World, session: &SessionRec) -> Value {
    let (status, ready, linked, _) = session_flags(world, session);
    json!({
        "session_id": session.session_id, "status": status, "ready": ready, "linked": linked,
        "kind": session.kind, "user_count": session.users.len(),
    })
}

fn elapsed_secs(since: Instant) -> u64 {
    since.elapsed().as_secs()
}
