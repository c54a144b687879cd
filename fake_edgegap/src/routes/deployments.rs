//! Deployments: v2 create, v1 status, v1 list and v1 stop.

use serde::Deserialize;
use serde_json::{Value, json};

use super::apps::resolve;
use super::{Incoming, Page, Reply, parse_body};
use crate::lifecycle::{DeploymentSpec, create_deployment};
use crate::server::Shared;
use crate::state::{DeployState, DeployWebhooks};
use crate::views;

/// `DeploymentCreate` as the spec requires it: `application`, `version`,
/// `users` mandatory; each env var needs `key`, `value` and `is_hidden`.
/// Sending v1 names (`app_name`) fails as it does on Edgegap.
#[derive(Deserialize)]
struct CreateBody {
    application: String,
    version: String,
    users: Vec<User>,
    #[serde(default)]
    environment_variables: Vec<EnvVar>,
    #[serde(default)]
    tags: Vec<String>,
    webhook_on_ready: Option<Hook>,
    webhook_on_error: Option<Hook>,
    webhook_on_terminated: Option<Hook>,
    #[allow(dead_code)] // accepted, no effect locally
    require_cached_locations: Option<bool>,
}

#[derive(Deserialize)]
struct User {
    user_type: String,
    user_data: Value,
}

#[derive(Deserialize)]
struct EnvVar {
    key: String,
    value: String,
    #[allow(dead_code)] // required by the spec; only hides the value in the dashboard
    is_hidden: bool,
}

#[derive(Deserialize)]
struct Hook {
    url: String,
}

fn bad_request(detail: &str) -> Reply {
    Reply::with(400, json!({ "message": "Bad Request", "details": { "body": detail } }))
}

pub(super) fn create_v2(shared: &Shared, req: &Incoming) -> Reply {
    let body: CreateBody = match parse_body(req) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    if body.users.is_empty() {
        return bad_request("users: at least 1 item required");
    }
    for user in &body.users {
        let valid = match user.user_type.as_str() {
            "ip_address" => user.user_data.get("ip_address").is_some_and(Value::is_string),
            "geo_coordinates" => {
                user.user_data.get("latitude").is_some_and(Value::is_number)
                    && user.user_data.get("longitude").is_some_and(Value::is_number)
            }
            _ => false,
        };
        if !valid {
            return bad_request(&format!("users: invalid user of type {:?}", user.user_type));
        }
    }
    if let Err(reply) = resolve(shared, &body.application, Some(&body.version)) {
        return reply;
    }
    let unprocessable = shared.faults().deploy_unprocessable();
    let spec = DeploymentSpec {
        app: body.application,
        version: body.version,
        env: body.environment_variables.into_iter().map(|e| (e.key, e.value)).collect(),
        tags: body.tags,
        webhooks: DeployWebhooks {
            on_ready: body.webhook_on_ready.map(|h| h.url),
            on_error: body.webhook_on_error.map(|h| h.url),
            on_terminated: body.webhook_on_terminated.map(|h| h.url),
        },
        fail_now: unprocessable.then(|| "Could not allocate a deployment (injected fault)".to_owned()),
    };
    let mut world = shared.world();
    let request_id = create_deployment(shared, &mut world, spec);
    if unprocessable {
        return Reply::with(
            422,
            json!({
                "request_id": request_id,
                "message": "Could not allocate a deployment. A deployment has been created. Deployment is in error state.",
            }),
        );
    }
    Reply::with(202, json!({ "request_id": request_id }))
}

/// `GET /v1/deployments?page=&limit=`: live (not TERMINATED) deployments,
/// oldest first, as `DeploymentListData` with the usual pagination. The
/// `query` filter parameter is accepted and ignored: callers filter by tags
/// themselves, which works the same against Edgegap.
pub(super) fn list(shared: &Shared, req: &Incoming) -> Reply {
    let world = shared.world();
    let mut live: Vec<_> = world.deployments.values().filter(|d| d.state != DeployState::Terminated).collect();
    live.sort_by_key(|d| d.created);
    let mut body = Page::of(req).body(&live, |d| views::deployment_list_item(&shared.config, &world, d));
    body.insert("message".into(), json!([]));
    Reply::ok(Value::Object(body))
}

pub(super) fn status(shared: &Shared, id: &str) -> Reply {
    let world = shared.world();
    match world.deployments.get(id) {
        Some(dep) => Reply::ok(views::status(&shared.config, &world, dep)),
        // Live Edgegap answers 400 for an unknown request id.
        None => Reply::error(400, format!("Deployment {id} not found")),
    }
}

/// Shared by `DELETE /v1/stop` and self-stop: 200 with a summary when READY
/// or ERROR (or already stopping), 202 before that (carried out on reaching
/// READY/ERROR), 410 once terminated.
pub(crate) fn request_stop(shared: &Shared, id: &str) -> Reply {
    let mut world = shared.world();
    let Some(dep) = world.deployments.get_mut(id) else {
        return Reply::error(400, format!("Deployment {id} not found"));
    };
    if dep.state == DeployState::Terminated {
        return Reply::error(410, "Instance Already terminated");
    }
    dep.stop_requested = true;
    if !dep.state.stoppable_now() {
        return Reply::with(202, json!({ "message": format!("{id} - Delete request will be processed soon") }));
    }
    let Some(dep) = world.deployments.get(id) else {
        return Reply::error(400, format!("Deployment {id} not found"));
    };
    let summary = views::status(&shared.config, &world, dep);
    Reply::ok(json!({ "message": format!("Instance {id} will be deleted"), "deployment_summary": summary }))
}
