//! The environment Edgegap injects into a deployment's container, pointing
//! the in-container URLs at this fake.

use serde_json::{Map, Value, json};

use crate::config::FakeVersion;
use crate::format::env_port_name;
use crate::server::Shared;
use crate::state::DeploymentRec;

/// Version variables, then deployment variables, then `ARBITRIUM_*` (which
/// therefore cannot be overridden by user variables).
pub fn deployment_env(shared: &Shared, dep: &DeploymentRec, version: Option<&FakeVersion>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = version.map(|v| v.envs.clone()).unwrap_or_default();
    env.extend(dep.env.iter().cloned());
    let base = &shared.base_url;
    let id = &dep.request_id;
    let mut add = |k: &str, v: String| env.push((k.to_owned(), v));
    add("ARBITRIUM_REQUEST_ID", id.clone());
    add("ARBITRIUM_PUBLIC_IP", shared.config.public_ip.clone());
    add("ARBITRIUM_HOST_ID", format!("fake-local-{}", std::process::id()));
    add("ARBITRIUM_CONTEXT_URL", format!("{base}/v1/context/{id}/{}", dep.security_number));
    add("ARBITRIUM_CONTEXT_TOKEN", dep.context_token.clone());
    add("ARBITRIUM_DELETE_URL", format!("{base}/v1/self/stop/{id}/{}", dep.access_point_id));
    add("ARBITRIUM_DELETE_TOKEN", dep.delete_token.clone());
    add("ARBITRIUM_DEPLOYMENT_LOCATION", crate::views::location(&shared.config).to_string());
    add("ARBITRIUM_PORTS_MAPPING", ports_mapping(dep).to_string());
    add("ARBITRIUM_DEPLOYMENT_TAGS", dep.tags.join(","));
    add("ARBITRIUM_DEPLOYMENT_VCPU_UNITS", "256".to_owned());
    add("ARBITRIUM_DEPLOYMENT_MEMORY_MB", "256".to_owned());
    add("ARBITRIUM_HOST_IN_PRIVATE_FLEET", "false".to_owned());
    add("ARBITRIUM_PRIVATE_FLEET_ID", "PUBLIC_CLOUD".to_owned());
    for port in &dep.ports {
        let name = env_port_name(&port.name);
        add(&format!("ARBITRIUM_PORT_{name}_INTERNAL"), port.internal.to_string());
        add(&format!("ARBITRIUM_PORT_{name}_EXTERNAL"), port.external.to_string());
        add(&format!("ARBITRIUM_PORT_{name}_PROTOCOL"), port.protocol.clone());
    }
    env
}

/// `{"ports": {"<name>": {"name", "internal", "external", "protocol"}}}`.
fn ports_mapping(dep: &DeploymentRec) -> Value {
    let ports: Map<String, Value> = dep
        .ports
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                json!({"name": p.name, "internal": p.internal, "external": p.external, "protocol": p.protocol}),
            )
        })
        .collect();
    json!({ "ports": ports })
}
