//! `GET /v1/app/{app}` and `GET /v1/app/{app}/version/{version}`.

use serde_json::json;

use super::Reply;
use crate::server::Shared;

pub(super) fn get_app(shared: &Shared, app: &str) -> Reply {
    let Some(found) = shared.config.apps.iter().find(|a| a.name == app) else {
        return Reply::error(400, format!("Application {app} not found"));
    };
    Reply::ok(json!({
        "name": found.name,
        "is_active": found.is_active,
        "is_telemetry_agent_active": false,
        "image": "",
        "create_time": shared.started_at,
        "last_updated": shared.started_at,
    }))
}

pub(super) fn get_app_version(shared: &Shared, app: &str, version: &str) -> Reply {
    let Some(found) = shared.config.apps.iter().find(|a| a.name == app) else {
        return Reply::error(404, format!("Application {app} not found"));
    };
    let Some(v) = found.versions.iter().find(|v| v.name == version) else {
        return Reply::error(404, format!("Version {version} of {app} not found"));
    };
    let ports: Vec<_> = v
        .ports
        .iter()
        .map(|p| json!({"port": p.internal, "protocol": p.protocol, "to_check": false, "tls_upgrade": p.tls_upgrade, "name": p.name}))
        .collect();
    let envs: Vec<_> = v.envs.iter().map(|(k, val)| json!({"key": k, "value": val, "is_secret": false})).collect();
    Reply::ok(json!({
        "name": v.name,
        "is_active": v.is_active,
        "docker_repository": "registry.edgegap.com",
        "docker_image": format!("fake/{app}"),
        "docker_tag": v.name,
        "req_cpu": 256,
        "req_memory": 256,
        "req_video": 0,
        "max_duration": 60,
        "use_telemetry": false,
        "inject_context_env": true,
        "whitelisting_active": false,
        "force_cache": false,
        "time_to_deploy": 15,
        "termination_grace_period_seconds": shared.config.stop_grace.as_secs(),
        "session_config": {"kind": v.session_kind, "sockets": v.sockets, "autodeploy": v.autodeploy, "empty_ttl": 60},
        "ports": ports,
        "envs": envs,
    }))
}

/// An app version that may receive sessions and deployments.
pub(crate) struct Resolved<'a> {
    pub app: &'a crate::config::FakeApp,
    pub version: &'a crate::config::FakeVersion,
    /// Numeric id reported as `SessionGet.app_version`.
    pub version_id: i64,
}

/// Finds an active app version; `version: None` picks the last one created
/// (Edgegap's documented default). Unknown or inactive → 400.
pub(crate) fn resolve<'a>(shared: &'a Shared, app: &str, version: Option<&str>) -> Result<Resolved<'a>, Reply> {
    let Some((app_index, found)) = shared.config.apps.iter().enumerate().find(|(_, a)| a.name == app) else {
        return Err(Reply::error(400, format!("Application {app} not found")));
    };
    let picked = match version {
        Some(name) => found.versions.iter().enumerate().find(|(_, v)| v.name == name),
        None => found.versions.iter().enumerate().next_back(),
    };
    let Some((version_index, v)) = picked else {
        return Err(Reply::error(400, format!("Version {} of {app} not found", version.unwrap_or("<latest>"))));
    };
    if !found.is_active || !v.is_active {
        return Err(Reply::error(400, format!("App version {app}/{} is not active", v.name)));
    }
    let offset = i64::try_from(app_index * 100 + version_index).unwrap_or(0);
    Ok(Resolved { app: found, version: v, version_id: 55_000 + offset })
}
