//! Required fields and JSON types of Edgegap's response models, written by
//! hand from the published swagger (definitions `SessionGet`, `Status`, ...)
//! and Edgegap's v2 spec. A value passes when every required field is present
//! and non-null with the right type, and every optional field is absent,
//! null or of the right type. Extra fields are allowed, as in the real API.

use serde_json::Value;

#[derive(Clone, Copy, Debug)]
pub enum Ty {
    Str,
    Int,
    Num,
    Bool,
    Obj(&'static [Field]),
    ArrOf(&'static Ty),
    MapOf(&'static [Field]),
    Any,
}

#[derive(Clone, Copy, Debug)]
pub struct Field(pub &'static str, pub Ty, pub bool);

const REQ: bool = true;
const OPT: bool = false;

pub static ERROR: &[Field] = &[Field("message", Ty::Str, REQ)];
pub static V2_ERROR: &[Field] = &[Field("message", Ty::Str, REQ), Field("details", Ty::Any, OPT)];
pub static V2_UNPROCESSABLE: &[Field] = &[Field("request_id", Ty::Str, REQ), Field("message", Ty::Str, REQ)];
pub static V2_CREATED: &[Field] = &[Field("request_id", Ty::Str, REQ)];

pub static LOCATION: &[Field] = &[
    Field("city", Ty::Str, REQ),
    Field("country", Ty::Str, REQ),
    Field("continent", Ty::Str, REQ),
    Field("administrative_division", Ty::Str, REQ),
    Field("timezone", Ty::Str, REQ),
    Field("latitude", Ty::Num, REQ),
    Field("longitude", Ty::Num, REQ),
];

pub static PORT_MAPPING: &[Field] = &[
    Field("external", Ty::Int, OPT),
    Field("internal", Ty::Int, OPT),
    Field("protocol", Ty::Str, OPT),
    Field("name", Ty::Str, OPT),
    Field("tls_upgrade", Ty::Bool, OPT),
    Field("link", Ty::Str, OPT),
    Field("proxy", Ty::Int, OPT),
];

pub static DEPLOYMENT: &[Field] = &[
    Field("request_id", Ty::Str, REQ),
    Field("public_ip", Ty::Str, REQ),
    Field("status", Ty::Str, REQ),
    Field("ready", Ty::Bool, REQ),
    Field("whitelisting_active", Ty::Bool, REQ),
    Field("fqdn", Ty::Str, REQ),
    Field("ports", Ty::MapOf(PORT_MAPPING), OPT),
    Field("location", Ty::Obj(LOCATION), OPT),
    Field("tags", Ty::ArrOf(&Ty::Str), OPT),
    Field("sockets", Ty::Int, OPT),
    Field("sockets_usage", Ty::Int, OPT),
    Field("is_joinable_by_session", Ty::Bool, OPT),
];

pub static SESSION_USER: &[Field] =
    &[Field("ip", Ty::Str, REQ), Field("latitude", Ty::Num, OPT), Field("longitude", Ty::Num, OPT)];

pub static SESSION_GET: &[Field] = &[
    Field("session_id", Ty::Str, REQ),
    Field("custom_id", Ty::Str, OPT),
    Field("status", Ty::Str, REQ),
    Field("ready", Ty::Bool, REQ),
    Field("linked", Ty::Bool, REQ),
    Field("kind", Ty::Str, REQ),
    Field("user_count", Ty::Int, REQ),
    Field("app_version", Ty::Int, REQ),
    Field("create_time", Ty::Str, REQ),
    Field("elapsed", Ty::Int, REQ),
    Field("error", Ty::Str, OPT),
    Field("session_users", Ty::ArrOf(&Ty::Obj(SESSION_USER)), OPT),
    Field("session_ips", Ty::ArrOf(&Ty::Obj(SESSION_USER)), OPT),
    Field("deployment", Ty::Obj(DEPLOYMENT), OPT),
    Field("webhook_url", Ty::Str, OPT),
];

pub static SELECTOR: &[Field] =
    &[Field("tag", Ty::Str, REQ), Field("tag_only", Ty::Bool, OPT), Field("env", Ty::Any, OPT)];

pub static SESSION_REQUEST: &[Field] = &[
    Field("session_id", Ty::Str, REQ),
    Field("custom_id", Ty::Str, OPT),
    Field("app", Ty::Str, REQ),
    Field("version", Ty::Str, REQ),
    Field("deployment_request_id", Ty::Str, OPT),
    Field("selectors", Ty::ArrOf(&Ty::Obj(SELECTOR)), OPT),
    Field("webhook_url", Ty::Str, OPT),
];

pub static SESSION_DELETE: &[Field] =
    &[Field("message", Ty::Str, REQ), Field("session_id", Ty::Str, REQ), Field("custom_id", Ty::Str, OPT)];

pub static SESSION_CONTEXT: &[Field] = &[
    Field("session_id", Ty::Str, REQ),
    Field("custom_id", Ty::Str, OPT),
    Field("status", Ty::Str, REQ),
    Field("ready", Ty::Bool, REQ),
    Field("linked", Ty::Bool, REQ),
    Field("kind", Ty::Str, REQ),
    Field("user_count", Ty::Int, REQ),
    Field("deployment_request_id", Ty::Str, OPT),
    Field("webhook_url", Ty::Str, OPT),
];

pub static PAGINATOR: &[Field] = &[Field("num_pages", Ty::Int, OPT)];

pub static PAGINATION: &[Field] = &[
    Field("number", Ty::Int, OPT),
    Field("next_page_number", Ty::Int, OPT),
    Field("previous_page_number", Ty::Int, OPT),
    Field("paginator", Ty::Obj(PAGINATOR), OPT),
    Field("has_next", Ty::Bool, OPT),
    Field("has_previous", Ty::Bool, OPT),
];

pub static SESSIONS: &[Field] = &[
    Field("data", Ty::ArrOf(&Ty::Obj(SESSION_CONTEXT)), OPT),
    Field("total_count", Ty::Int, OPT),
    Field("pagination", Ty::Obj(PAGINATION), OPT),
];

pub static DEPLOYMENT_SESSION_CONTEXT: &[Field] = &[
    Field("session_id", Ty::Str, REQ),
    Field("status", Ty::Str, REQ),
    Field("ready", Ty::Bool, REQ),
    Field("linked", Ty::Bool, REQ),
    Field("kind", Ty::Str, REQ),
    Field("user_count", Ty::Int, REQ),
];

pub static STATUS: &[Field] = &[
    Field("request_id", Ty::Str, REQ),
    Field("fqdn", Ty::Str, REQ),
    Field("app_name", Ty::Str, REQ),
    Field("app_version", Ty::Str, REQ),
    Field("current_status", Ty::Str, REQ),
    Field("running", Ty::Bool, REQ),
    Field("whitelisting_active", Ty::Bool, REQ),
    Field("start_time", Ty::Str, REQ),
    Field("removal_time", Ty::Str, OPT),
    Field("elapsed_time", Ty::Int, REQ),
    Field("last_status", Ty::Str, OPT),
    Field("error", Ty::Bool, REQ),
    Field("error_detail", Ty::Str, OPT),
    Field("ports", Ty::MapOf(PORT_MAPPING), OPT),
    Field("public_ip", Ty::Str, REQ),
    Field("sessions", Ty::ArrOf(&Ty::Obj(DEPLOYMENT_SESSION_CONTEXT)), OPT),
    Field("location", Ty::Obj(LOCATION), OPT),
    Field("tags", Ty::ArrOf(&Ty::Str), OPT),
    Field("sockets", Ty::Int, OPT),
    Field("sockets_usage", Ty::Int, OPT),
    Field("command", Ty::Str, OPT),
    Field("arguments", Ty::Str, OPT),
];

pub static DELETE: &[Field] = &[Field("message", Ty::Str, REQ), Field("deployment_summary", Ty::Obj(STATUS), OPT)];
pub static DELETE_REQUEST_RECEIVED: &[Field] = &[Field("message", Ty::Str, REQ)];

pub static APPLICATION: &[Field] = &[
    Field("name", Ty::Str, REQ),
    Field("is_active", Ty::Bool, REQ),
    Field("is_telemetry_agent_active", Ty::Bool, OPT),
    Field("image", Ty::Str, OPT),
    Field("create_time", Ty::Str, REQ),
    Field("last_updated", Ty::Str, REQ),
];

pub static SESSION_CONFIG: &[Field] = &[
    Field("kind", Ty::Str, REQ),
    Field("sockets", Ty::Int, REQ),
    Field("autodeploy", Ty::Bool, OPT),
    Field("empty_ttl", Ty::Int, OPT),
    Field("session_max_duration", Ty::Int, OPT),
];

pub static APP_VERSION_PORT: &[Field] = &[
    Field("port", Ty::Int, REQ),
    Field("protocol", Ty::Str, REQ),
    Field("to_check", Ty::Bool, OPT),
    Field("tls_upgrade", Ty::Bool, OPT),
    Field("name", Ty::Str, OPT),
];

pub static APP_VERSION_ENV: &[Field] =
    &[Field("key", Ty::Str, REQ), Field("value", Ty::Str, REQ), Field("is_secret", Ty::Bool, OPT)];

pub static APP_VERSION: &[Field] = &[
    Field("name", Ty::Str, REQ),
    Field("is_active", Ty::Bool, OPT),
    Field("docker_repository", Ty::Str, REQ),
    Field("docker_image", Ty::Str, REQ),
    Field("docker_tag", Ty::Str, REQ),
    Field("req_cpu", Ty::Int, REQ),
    Field("req_memory", Ty::Int, REQ),
    Field("req_video", Ty::Int, OPT),
    Field("max_duration", Ty::Int, OPT),
    Field("use_telemetry", Ty::Bool, OPT),
    Field("inject_context_env", Ty::Bool, OPT),
    Field("whitelisting_active", Ty::Bool, OPT),
    Field("force_cache", Ty::Bool, OPT),
    Field("time_to_deploy", Ty::Int, OPT),
    Field("termination_grace_period_seconds", Ty::Int, OPT),
    Field("session_config", Ty::Obj(SESSION_CONFIG), OPT),
    Field("ports", Ty::ArrOf(&Ty::Obj(APP_VERSION_PORT)), OPT),
    Field("envs", Ty::ArrOf(&Ty::Obj(APP_VERSION_ENV)), OPT),
];

/// Every violation of `schema` in `value`, with JSON paths.
pub fn violations(value: &Value, schema: &[Field]) -> Vec<String> {
    let mut out = Vec::new();
    check_object(value, schema, "$", &mut out);
    out
}

/// Panics listing the violations, if any.
pub fn assert_shape(what: &str, value: &Value, schema: &[Field]) {
    let found = violations(value, schema);
    assert!(found.is_empty(), "{what} violates the Edgegap schema: {found:#?}\nbody: {value}");
}

fn check_object(value: &Value, schema: &[Field], path: &str, out: &mut Vec<String>) {
    let Some(map) = value.as_object() else {
        out.push(format!("{path}: expected an object, got {value}"));
        return;
    };
    for Field(name, ty, required) in schema {
        let here = format!("{path}.{name}");
        match map.get(*name) {
            None | Some(Value::Null) if *required => out.push(format!("{here}: required but missing or null")),
            None | Some(Value::Null) => {}
            Some(v) => check_type(v, ty, &here, out),
        }
    }
}

fn check_type(value: &Value, ty: &Ty, path: &str, out: &mut Vec<String>) {
    let ok = match ty {
        Ty::Str => value.is_string(),
        Ty::Int => value.is_i64() || value.is_u64(),
        Ty::Num => value.is_number(),
        Ty::Bool => value.is_boolean(),
        Ty::Any => true,
        Ty::Obj(fields) => {
            check_object(value, fields, path, out);
            true
        }
        Ty::ArrOf(item) => match value.as_array() {
            Some(items) => {
                for (i, v) in items.iter().enumerate() {
                    check_type(v, item, &format!("{path}[{i}]"), out);
                }
                true
            }
            None => false,
        },
        Ty::MapOf(fields) => match value.as_object() {
            Some(map) => {
                for (k, v) in map {
                    check_object(v, fields, &format!("{path}[{k:?}]"), out);
                }
                true
            }
            None => false,
        },
    };
    if !ok {
        out.push(format!("{path}: expected {ty:?}, got {value}"));
    }
}
