//! Golden tests: the client's models against real Edgegap bodies (captured
//! from the live API and quoted in the project's API notes) and the spec's
//! examples. Pins which fields are required and their JSON types.

use bevygap_edgegap::{
    Deployment, DeploymentCreate, DeploymentState, DeploymentStatus, SessionContext, SessionCreate, SessionCreated,
    SessionDeleted, SessionGet,
};
use serde_json::json;

const REAL_SESSION_SEEKING: &str = r#"{"session_id":"a1cb46bc7f15-S","status":"Seeking","ready":false,"linked":false,"kind":"Seat","user_count":1,
 "app_version":55039,"create_time":"2024-10-09 14:03:24.975285","elapsed":0,
 "session_users":[{"ip":"81.128.0.1","latitude":53.1651,"longitude":-1.482}]}"#;

const REAL_SESSION_READY: &str = r#"{"session_id":"a1cb46bc7f15-S","status":"Ready","ready":true,"linked":true,"kind":"Seat","user_count":1,
 "app_version":55039,"create_time":"2024-10-09 14:03:24.975285","elapsed":201,
 "session_users":[{"ip":"81.128.0.1","latitude":53.1651,"longitude":-1.482}],
 "deployment":{"request_id":"835d0d69f2fc","public_ip":"172.235.165.125","status":"Status.READY","ready":true,
   "whitelisting_active":false,"fqdn":"835d0d69f2fc.pr.edgegap.net",
   "ports":{"server port":{"external":30898,"internal":5420,"protocol":"UDP","name":"server port",
            "tls_upgrade":false,"link":"835d0d69f2fc.pr.edgegap.net:30898","proxy":null}}}}"#;

const REAL_CONTEXT: &str = r#"{"fqdn":"835d0d69f2fc.pr.edgegap.net",
 "location":{"administrative_division":"North Holland","city":"Amsterdam","continent":"Europe","country":"Netherlands",
             "latitude":51.9688,"longitude":4.7688,"timezone":"Central European Time"},
 "ports":{"server port":{"external":30898,"internal":5420,"link":"835d0d69f2fc.pr.edgegap.net:30898","name":"server port",
          "protocol":"UDP","proxy":null,"tls_upgrade":false}},
 "public_ip":"172.235.165.125","ready":false,"request_id":"835d0d69f2fc","sockets":10,"sockets_usage":0,
 "status":"Status.DEPLOYING","whitelisting_active":false}"#;

const REAL_SESSION_WEBHOOK: &str = r#"{"session_id":"950dd2eaff09-S","status":"Ready","ready":true,"kind":"Seat","user_count":1,"linked":true,"webhook_url":"https://example.com/hook/session","deployment_request_id":"57f84a8e1298"}"#;

/// Shape of the spec's Status example, for a READY deployment.
const STATUS_EXAMPLE: &str = r#"{"request_id":"c0653765de3b","fqdn":"c0653765de3b.pr.edgegap.net","app_name":"test","app_version":"v1",
 "current_status":"Status.READY","running":true,"whitelisting_active":false,"start_time":"2024-05-26 12:00:45.831041",
 "removal_time":null,"elapsed_time":12,"last_status":"Status.DEPLOYING","error":false,"error_detail":"",
 "ports":{"gameport":{"external":31669,"internal":7777,"protocol":"UDP","name":"gameport","tls_upgrade":false,
          "link":"c0653765de3b.pr.edgegap.net:31669","proxy":65002}},
 "public_ip":"100.10.0.85","sessions":[],"location":{"city":"Montreal","country":"Canada","continent":"North America",
 "administrative_division":"Quebec","timezone":"Eastern Time","latitude":45.508888,"longitude":-73.561668},
 "tags":["production"],"sockets":5,"sockets_usage":2,"command":null,"arguments":null}"#;

#[test]
fn real_session_bodies_parse() {
    let seeking: SessionGet = serde_json::from_str(REAL_SESSION_SEEKING).expect("seeking body");
    assert!(!seeking.ready && !seeking.linked && seeking.deployment.is_none());
    assert_eq!(seeking.app_version, 55039);

    let ready: SessionGet = serde_json::from_str(REAL_SESSION_READY).expect("ready body");
    let deployment = ready.deployment.expect("deployment");
    assert_eq!(deployment.public_ip, "172.235.165.125");
    assert_eq!(deployment.state(), DeploymentState::Ready);
    let port = &deployment.ports.expect("ports")["server port"];
    assert_eq!((port.external, port.internal, port.proxy), (Some(30898), Some(5420), None));
    assert!(deployment.location.is_none(), "the live embedded deployment had no location");
}

#[test]
fn real_context_and_webhook_bodies_parse() {
    let context: Deployment = serde_json::from_str(REAL_CONTEXT).expect("context body");
    assert_eq!(context.state(), DeploymentState::Deploying);
    assert_eq!(context.location.expect("location").city, "Amsterdam");
    assert_eq!(context.sockets, Some(10));

    let hook: SessionContext = serde_json::from_str(REAL_SESSION_WEBHOOK).expect("webhook body");
    assert_eq!(hook.deployment_request_id.as_deref(), Some("57f84a8e1298"));
}

#[test]
fn status_example_parses_with_nulls_and_string_version() {
    let status: DeploymentStatus = serde_json::from_str(STATUS_EXAMPLE).expect("status body");
    assert_eq!(status.app_version, "v1");
    assert_eq!(status.state(), DeploymentState::Ready);
    assert_eq!(status.removal_time, None);
    assert_eq!(status.command, None);
    assert_eq!(status.ports.expect("ports")["gameport"].proxy, Some(65002));
}

#[test]
fn app_version_type_differs_between_session_and_status() {
    let mut session: serde_json::Value = serde_json::from_str(REAL_SESSION_READY).expect("json");
    session["app_version"] = json!("v1");
    assert!(serde_json::from_value::<SessionGet>(session).is_err(), "session app_version must be an integer");

    let mut status: serde_json::Value = serde_json::from_str(STATUS_EXAMPLE).expect("json");
    status["app_version"] = json!(55039);
    assert!(serde_json::from_value::<DeploymentStatus>(status).is_err(), "status app_version must be a string");
}

#[test]
fn required_fields_are_enforced_and_unknown_fields_ignored() {
    for field in ["fqdn", "public_ip", "status", "ready", "whitelisting_active", "request_id"] {
        let mut context: serde_json::Value = serde_json::from_str(REAL_CONTEXT).expect("json");
        context.as_object_mut().expect("object").remove(field);
        assert!(serde_json::from_value::<Deployment>(context).is_err(), "{field} is required");
    }
    let mut extra: serde_json::Value = serde_json::from_str(REAL_CONTEXT).expect("json");
    extra["a_field_edgegap_added_later"] = json!({"x": 1});
    assert!(serde_json::from_value::<Deployment>(extra).is_ok());

    let created: SessionCreated =
        serde_json::from_value(json!({"session_id":"abc123-s","app":"demo","version":"v1.0"})).expect("minimal");
    assert!(created.deployment_request_id.is_none());
    assert!(serde_json::from_value::<SessionCreated>(json!({"session_id":"abc123-s","app":"demo"})).is_err());

    let deleted: SessionDeleted = serde_json::from_value(
        json!({"message":"Instance 93924761ccde will be deleted","session_id":"abc123-s","custom_id":"custom-abc123"}),
    )
    .expect("spec example");
    assert_eq!(deleted.custom_id.as_deref(), Some("custom-abc123"));
}

#[test]
fn request_bodies_use_the_documented_names() {
    let session = SessionCreate {
        app_name: "spacepit_server".into(),
        ip_list: Some(vec!["81.128.1.2".into()]),
        webhook_url: Some("https://x/hook/session".into()),
        ..Default::default()
    };
    // bevygap's real body: unset optionals are omitted, not null.
    assert_eq!(
        serde_json::to_value(&session).expect("json"),
        json!({"app_name":"spacepit_server","ip_list":["81.128.1.2"],"webhook_url":"https://x/hook/session"})
    );
    let deploy = DeploymentCreate::for_ip("demo", "v1", "75.28.35.192");
    assert_eq!(
        serde_json::to_value(&deploy).expect("json"),
        json!({"application":"demo","version":"v1","users":[{"user_type":"ip_address","user_data":{"ip_address":"75.28.35.192"}}]})
    );
}
