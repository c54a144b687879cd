//! Golden shape tests: every response body the fake produces must satisfy
//! the required fields and JSON types of Edgegap's swagger. The checker
//! itself is first validated against real bodies captured from Edgegap (as
//! quoted in the project's API notes) and against bodies with known defects.

mod common;

use std::time::Duration;

use common::schema::{self, assert_shape, violations};
use common::{account, raw, start, wait_for};
use fake_edgegap::{ChildOutput, FakeConfig, FakeEdgegap, GameServerCommand};
use serde_json::{Value, json};

/// Live `GET /v1/session` while seeking (2024-10-09 capture).
fn real_session_seeking() -> Value {
    json!({"session_id":"a1cb46bc7f15-S","status":"Seeking","ready":false,"linked":false,"kind":"Seat","user_count":1,
        "app_version":55039,"create_time":"2024-10-09 14:03:24.975285","elapsed":0,
        "session_users":[{"ip":"81.128.0.1","latitude":53.1651,"longitude":-1.482}]})
}

/// Live `GET /v1/session` once ready.
fn real_session_ready() -> Value {
    json!({"session_id":"a1cb46bc7f15-S","status":"Ready","ready":true,"linked":true,"kind":"Seat","user_count":1,
        "app_version":55039,"create_time":"2024-10-09 14:03:24.975285","elapsed":201,
        "session_users":[{"ip":"81.128.0.1","latitude":53.1651,"longitude":-1.482}],
        "deployment":{"request_id":"835d0d69f2fc","public_ip":"172.235.165.125","status":"Status.READY","ready":true,
            "whitelisting_active":false,"fqdn":"835d0d69f2fc.pr.edgegap.net",
            "ports":{"server port":{"external":30898,"internal":5420,"protocol":"UDP","name":"server port",
                "tls_upgrade":false,"link":"835d0d69f2fc.pr.edgegap.net:30898","proxy":null}}}})
}

/// Live context body, fetched while deploying.
fn real_context() -> Value {
    json!({"fqdn":"835d0d69f2fc.pr.edgegap.net",
        "location":{"administrative_division":"North Holland","city":"Amsterdam","continent":"Europe","country":"Netherlands",
            "latitude":51.9688,"longitude":4.7688,"timezone":"Central European Time"},
        "ports":{"server port":{"external":30898,"internal":5420,"link":"835d0d69f2fc.pr.edgegap.net:30898","name":"server port",
            "protocol":"UDP","proxy":null,"tls_upgrade":false}},
        "public_ip":"172.235.165.125","ready":false,"request_id":"835d0d69f2fc","sockets":10,"sockets_usage":0,
        "status":"Status.DEPLOYING","whitelisting_active":false})
}

/// Live session webhook body.
fn real_session_webhook() -> Value {
    json!({"session_id":"950dd2eaff09-S","status":"Ready","ready":true,"kind":"Seat","user_count":1,"linked":true,
        "webhook_url":"https://example.com/hook/session","deployment_request_id":"57f84a8e1298"})
}

#[test]
fn the_checker_accepts_real_edgegap_bodies() {
    assert_shape("real seeking session", &real_session_seeking(), schema::SESSION_GET);
    assert_shape("real ready session", &real_session_ready(), schema::SESSION_GET);
    assert_shape("real context", &real_context(), schema::DEPLOYMENT);
    assert_shape("real session webhook", &real_session_webhook(), schema::SESSION_CONTEXT);
}

#[test]
fn the_checker_rejects_wrong_types_and_missing_fields() {
    let mut wrong_version = real_session_ready();
    wrong_version["app_version"] = json!("v1"); // a string here is the classic mistake
    assert_eq!(violations(&wrong_version, schema::SESSION_GET).len(), 1);

    let mut no_fqdn = real_context();
    no_fqdn.as_object_mut().expect("object").remove("fqdn");
    assert!(violations(&no_fqdn, schema::DEPLOYMENT).iter().any(|v| v.contains("fqdn")));

    let mut bad_port = real_context();
    bad_port["ports"]["server port"]["external"] = json!("30898");
    assert!(violations(&bad_port, schema::DEPLOYMENT).iter().any(|v| v.contains("external")));

    let status_with_int_version = json!({"request_id":"x","fqdn":"x","app_name":"a","app_version":1,"current_status":"Status.READY",
        "running":true,"whitelisting_active":false,"start_time":"t","elapsed_time":0,"error":false,"public_ip":"1.1.1.1"});
    assert!(violations(&status_with_int_version, schema::STATUS).iter().any(|v| v.contains("app_version")));
}

fn fake_with_process() -> FakeEdgegap {
    // Autodeployed (session) deployments get no per-deployment env: serve by default.
    let mut command = GameServerCommand::new(common::game_server_bin());
    command.env.push(("FAKE_GS_MODE".into(), "serve".into()));
    let mut config = FakeConfig::for_tests().with_game_server(command);
    config.child_output = ChildOutput::Null;
    config.delays.session_link = Duration::from_millis(200);
    config.rate_limits.clear(); // raw polling below is faster than 20 status/s
    start(config)
}

#[test]
fn every_fake_response_satisfies_the_swagger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.json");
    let fake = fake_with_process();
    let auth = account(&fake);
    let auth = Some(auth.as_str());

    let (status, body) = raw(&fake, "GET", "/v1/app/demo", auth, None);
    assert_eq!(status, 200);
    assert_shape("application", &body, schema::APPLICATION);
    let (status, body) = raw(&fake, "GET", "/v1/app/demo/version/v1", auth, None);
    assert_eq!(status, 200);
    assert_shape("app version", &body, schema::APP_VERSION);

    // Sessions
    let create = json!({"app_name": "demo", "ip_list": ["81.128.1.2"], "webhook_url": "http://127.0.0.1:9/hook",
        "selectors": [{"tag": "eu", "tag_only": false, "env": {}}]});
    let (status, created) = raw(&fake, "POST", "/v1/session", auth, Some(&create));
    assert_eq!(status, 200);
    assert_shape("session request", &created, schema::SESSION_REQUEST);
    let session_id = created["session_id"].as_str().expect("id").to_owned();
    let (_, seeking) = raw(&fake, "GET", &format!("/v1/session/{session_id}"), auth, None);
    assert_shape("session (seeking)", &seeking, schema::SESSION_GET);
    assert!(seeking["app_version"].is_i64(), "app_version is an integer in a session");
    let ready = wait_for("session ready", || {
        let (_, body) = raw(&fake, "GET", &format!("/v1/session/{session_id}"), auth, None);
        (body["ready"] == json!(true)).then_some(body)
    });
    assert_shape("session (ready)", &ready, schema::SESSION_GET);
    let (_, list) = raw(&fake, "GET", "/v1/sessions?page=1&limit=10", auth, None);
    assert_shape("sessions", &list, schema::SESSIONS);

    // Deployments: status in every state we can catch, context, stop
    let deploy = json!({"application": "demo", "version": "v1",
        "users": [{"user_type": "ip_address", "user_data": {"ip_address": "1.2.3.4"}}],
        "environment_variables": [{"key": "FAKE_GS_MODE", "value": "serve", "is_hidden": false},
                                  {"key": "FAKE_GS_REPORT", "value": report.display().to_string(), "is_hidden": true}]});
    let (status, created) = raw(&fake, "POST", "/v2/deployments", auth, Some(&deploy));
    assert_eq!(status, 202);
    assert_shape("v2 created", &created, schema::V2_CREATED);
    let id = created["request_id"].as_str().expect("id").to_owned();
    let (status, early) = raw(&fake, "GET", &format!("/v1/status/{id}"), auth, None);
    assert_eq!(status, 200);
    assert_shape("status (early)", &early, schema::STATUS);
    assert!(early["app_version"].is_string(), "app_version is a string in a status");
    let status_ready = wait_for("ready", || {
        let (_, body) = raw(&fake, "GET", &format!("/v1/status/{id}"), auth, None);
        (body["current_status"] == json!("Status.READY")).then_some(body)
    });
    assert_shape("status (ready)", &status_ready, schema::STATUS);
    let context = wait_for("game server report", || std::fs::read_to_string(&report).ok());
    assert!(context.contains(&id));

    let linked_dep = ready["deployment"]["request_id"].as_str().expect("linked").to_owned();
    let (_, linked_status) = raw(&fake, "GET", &format!("/v1/status/{linked_dep}"), auth, None);
    assert_shape("status with sessions", &linked_status, schema::STATUS);
    assert_eq!(linked_status["sessions"].as_array().map(Vec::len), Some(1));

    let (status, stopped) = raw(&fake, "DELETE", &format!("/v1/stop/{id}"), auth, None);
    assert_eq!(status, 200);
    assert_shape("stop (200)", &stopped, schema::DELETE);
    let (status, early_stop) = {
        let (_, again) = raw(&fake, "POST", "/v2/deployments", auth, Some(&deploy));
        let other = again["request_id"].as_str().expect("id").to_owned();
        raw(&fake, "DELETE", &format!("/v1/stop/{other}"), auth, None)
    };
    assert_eq!(status, 202);
    assert_shape("stop (202)", &early_stop, schema::DELETE_REQUEST_RECEIVED);
    wait_for("terminated", || {
        let (_, body) = raw(&fake, "GET", &format!("/v1/status/{id}"), auth, None);
        (body["current_status"] == json!("Status.TERMINATED")).then_some(())
    });
    let (status, gone) = raw(&fake, "DELETE", &format!("/v1/stop/{id}"), auth, None);
    assert_eq!(status, 410);
    assert_shape("stop (410)", &gone, schema::ERROR);

    let (status, deleted) = raw(&fake, "DELETE", &format!("/v1/session/{session_id}"), auth, None);
    assert_eq!(status, 200);
    assert_shape("session delete", &deleted, schema::SESSION_DELETE);

    // Errors are always {"message": ...}
    for (method, path, expected) in [
        ("GET", "/v1/session/000000000000-S", 400),
        ("DELETE", "/v1/session/000000000000-S", 404),
        ("GET", "/v1/status/000000000000", 400),
        ("GET", "/v1/app/nope", 400),
        ("GET", "/v1/app/demo/version/nope", 404),
        ("GET", "/v1/unknown", 404),
    ] {
        let (status, body) = raw(&fake, method, path, auth, None);
        assert_eq!(status, expected, "{method} {path}");
        assert_shape(path, &body, schema::ERROR);
    }
    let (status, body) = raw(&fake, "GET", "/v1/sessions", None, None);
    assert_eq!(status, 401);
    assert_shape("401", &body, schema::ERROR);
}

#[test]
fn in_container_endpoints_check_their_raw_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("env.json");
    // A shell "game server" that dumps the env it was given.
    let script = format!("env > {}.tmp && mv {0}.tmp {0}; sleep 60", report.display());
    let mut config = FakeConfig::for_tests().with_game_server(GameServerCommand::new("/bin/sh").arg("-c").arg(script));
    config.child_output = ChildOutput::Null;
    config.rate_limits.clear(); // raw polling below is faster than 20 status/s
    let fake = start(config);
    let auth = account(&fake);
    let deploy = json!({"application": "demo", "version": "v1",
        "users": [{"user_type": "geo_coordinates", "user_data": {"latitude": 45.5, "longitude": -73.5}}]});
    let (_, created) = raw(&fake, "POST", "/v2/deployments", Some(&auth), Some(&deploy));
    let id = created["request_id"].as_str().expect("id").to_owned();
    let text = wait_for("env dump", || std::fs::read_to_string(&report).ok());
    let vars: Vec<(String, String)> =
        text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let get = |k: &str| vars.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();

    let env = bevygap_edgegap::ArbitriumEnv::from_vars(vars.clone()).expect("the client parses the injected env");
    assert_eq!(env.request_id, id);
    assert_eq!(get("ARBITRIUM_PORT_SERVER_PORT_PROTOCOL"), "UDP");
    assert_eq!(get("ARBITRIUM_PORT_SERVER_PORT_EXTERNAL"), env.port("server port").expect("port").external.to_string());
    assert_eq!(get("ARBITRIUM_CONTEXT_TOKEN").len(), 32);

    let context_path = get("ARBITRIUM_CONTEXT_URL").replace(fake.base_url(), "");
    let delete_path = get("ARBITRIUM_DELETE_URL").replace(fake.base_url(), "");
    assert!(context_path.starts_with(&format!("/v1/context/{id}/")), "{context_path}");
    assert!(delete_path.starts_with(&format!("/v1/self/stop/{id}/")), "{delete_path}");

    let (status, context) = raw(&fake, "GET", &context_path, Some(&get("ARBITRIUM_CONTEXT_TOKEN")), None);
    assert_eq!(status, 200);
    assert_shape("context", &context, schema::DEPLOYMENT);
    assert_shape("context location", &context["location"], schema::LOCATION);
    assert!(context["sockets"].is_i64());
    // The account key is not a context token; the delete token is not either.
    assert_eq!(raw(&fake, "GET", &context_path, Some(&auth), None).0, 401);
    assert_eq!(raw(&fake, "GET", &context_path, Some(&get("ARBITRIUM_DELETE_TOKEN")), None).0, 401);
    assert_eq!(raw(&fake, "GET", &format!("/v1/context/{id}/0"), Some(&get("ARBITRIUM_CONTEXT_TOKEN")), None).0, 400);
    assert_eq!(raw(&fake, "DELETE", &delete_path, Some(&get("ARBITRIUM_CONTEXT_TOKEN")), None).0, 401);

    // Before READY self-stop would answer 202; wait so the 200 shape is checked.
    wait_for("ready", || {
        let (_, body) = raw(&fake, "GET", &format!("/v1/status/{id}"), Some(&auth), None);
        (body["current_status"] == json!("Status.READY")).then_some(())
    });
    let (status, body) = raw(&fake, "DELETE", &delete_path, Some(&get("ARBITRIUM_DELETE_TOKEN")), None);
    assert_eq!(status, 200);
    assert_shape("self stop", &body, schema::DELETE);
    wait_for("terminated", || fake.inventory().is_idle().then_some(()));
    let (status, body) = raw(&fake, "DELETE", &delete_path, Some(&get("ARBITRIUM_DELETE_TOKEN")), None);
    assert_eq!(status, 410);
    assert_shape("self stop 410", &body, schema::ERROR);
}
