//! The client's Sessions API against the fake: lifecycle, seats, errors, auth.

mod common;

use bevygap_edgegap::{ApiKey, EdgegapClient, EdgegapConfig, EdgegapError, SessionCreate, SessionGet};
use common::{client, start, wait_for};
use fake_edgegap::{FakeConfig, FakeEdgegap};
use serde_json::json;

fn session_for(ip: &str) -> SessionCreate {
    SessionCreate { app_name: "demo".into(), ip_list: Some(vec![ip.into()]), ..Default::default() }
}

fn wait_ready(client: &EdgegapClient, id: &str) -> SessionGet {
    wait_for("session ready", || client.get_session(id).ok().filter(|s| s.ready))
}

fn small_fake(sockets: u32, autodeploy: bool) -> FakeEdgegap {
    let mut config = FakeConfig::for_tests();
    config.apps[0].versions[0].sockets = sockets;
    config.apps[0].versions[0].autodeploy = autodeploy;
    start(config)
}

#[test]
fn session_goes_from_seeking_to_ready_on_an_autodeployed_deployment() {
    let mut config = FakeConfig::for_tests();
    config.delays.session_link = std::time::Duration::from_secs(2);
    let fake = start(config);
    let client = client(&fake);

    let created = client.create_session(&session_for("81.128.1.2")).expect("create");
    assert!(created.session_id.ends_with("-S"), "{}", created.session_id);
    assert_eq!((created.app.as_str(), created.version.as_str()), ("demo", "v1"));

    let first = client.get_session(&created.session_id).expect("get");
    assert_eq!(first.status, "Seeking");
    assert!(!first.ready && !first.linked && first.deployment.is_none());
    assert_eq!(first.kind, "Seat");
    assert_eq!(first.user_count, 1);

    let ready = wait_ready(&client, &created.session_id);
    assert_eq!(ready.status, "Ready");
    assert!(ready.linked);
    let deployment = ready.deployment.expect("deployment once ready");
    assert!(deployment.ready);
    assert_eq!(deployment.status, "Status.READY");
    assert_eq!(deployment.fqdn, format!("{}.pr.edgegap.net", deployment.request_id));
    let port = deployment.ports.as_ref().and_then(|p| p.values().next()).expect("a port");
    assert!(port.external.is_some_and(|p| p > 0));
    assert_eq!(client.deployment_status(&deployment.request_id).expect("status").sockets_usage, Some(1));
}

#[test]
fn seat_sessions_share_a_deployment_until_full_and_delete_frees_the_seat() {
    let fake = small_fake(2, true);
    let client = client(&fake);
    let a = client.create_session(&session_for("10.0.0.1")).expect("a");
    let b = client.create_session(&session_for("10.0.0.2")).expect("b");
    let dep_a = wait_ready(&client, &a.session_id).deployment.expect("linked").request_id;
    let dep_b = wait_ready(&client, &b.session_id).deployment.expect("linked").request_id;
    assert_eq!(dep_a, dep_b, "second seat goes to the deployment with a free socket");

    let c = client.create_session(&session_for("10.0.0.3")).expect("c");
    let dep_c = wait_ready(&client, &c.session_id).deployment.expect("linked").request_id;
    assert_ne!(dep_a, dep_c, "a full deployment makes the third session autodeploy");
    assert_eq!(fake.inventory().deployments.len(), 2);

    let deleted = client.delete_session(&a.session_id).expect("delete");
    assert_eq!(deleted.session_id, a.session_id);
    let status = client.deployment_status(&dep_a).expect("deployment kept");
    assert_eq!(status.current_status, "Status.READY");
    assert_eq!(status.sockets_usage, Some(1));
    assert_eq!(status.sessions.as_ref().map(Vec::len), Some(1));

    let d = client.create_session(&session_for("10.0.0.4")).expect("d");
    let dep_d = wait_ready(&client, &d.session_id).deployment.expect("linked").request_id;
    assert_eq!(dep_d, dep_a, "the freed seat is reused");
}

#[test]
fn without_autodeploy_a_session_with_no_free_seat_is_unprocessable() {
    let fake = small_fake(1, false);
    let client = client(&fake);
    let s = client.create_session(&session_for("10.0.0.1")).expect("create");
    let got = wait_for("unprocessable", || client.get_session(&s.session_id).ok().filter(|g| g.status != "Seeking"));
    assert_eq!(got.status, "Unprocessable");
    assert!(!got.linked && !got.ready);
    assert!(got.error.is_some());
    assert_eq!(fake.inventory().deployments_created, 0);
}

#[test]
fn session_linked_to_a_requested_deployment() {
    let fake = small_fake(4, false);
    let client = client(&fake);
    let dep =
        client.create_deployment(&bevygap_edgegap::DeploymentCreate::for_ip("demo", "v1", "1.2.3.4")).expect("deploy");
    let created = client
        .create_session(&SessionCreate {
            deployment_request_id: Some(dep.request_id.clone()),
            ..session_for("9.9.9.9")
        })
        .expect("create");
    assert_eq!(created.deployment_request_id.as_deref(), Some(dep.request_id.as_str()));
    let ready = wait_ready(&client, &created.session_id);
    assert_eq!(ready.deployment.expect("linked").request_id, dep.request_id);
}

#[test]
fn list_sessions_paginates() {
    let fake = small_fake(10, true);
    let client = client(&fake);
    let ids: Vec<String> = (0..3)
        .map(|i| client.create_session(&session_for(&format!("10.0.0.{i}"))).expect("create").session_id)
        .collect();
    let page1 = client.list_sessions(Some(1), Some(2)).expect("page 1");
    let page2 = client.list_sessions(Some(2), Some(2)).expect("page 2");
    assert_eq!(page1.total_count, Some(3));
    let listed: Vec<String> =
        page1.data.iter().chain(page2.data.iter()).flatten().map(|s| s.session_id.clone()).collect();
    assert_eq!(listed, ids);
    let pagination = page1.pagination.expect("pagination");
    assert_eq!((pagination.has_next, pagination.next_page_number), (Some(true), Some(2)));
    assert_eq!(page2.pagination.expect("pagination").has_next, Some(false));
    assert_eq!(client.list_sessions(None, None).expect("all").data.map(|d| d.len()), Some(3));
}

#[test]
fn session_error_paths() {
    let fake = small_fake(2, true);
    let client = client(&fake);

    let unknown_app = client.create_session(&SessionCreate { app_name: "nope".into(), ..session_for("1.1.1.1") });
    assert!(matches!(unknown_app, Err(EdgegapError::Api { status: 400, ref message, .. }) if message.contains("nope")));

    let no_users = client.create_session(&SessionCreate { app_name: "demo".into(), ..Default::default() });
    assert!(matches!(no_users, Err(EdgegapError::Api { status: 400, .. })));

    let unknown_get = client.get_session("000000000000-S").expect_err("unknown session");
    assert_eq!(unknown_get.status(), Some(400));

    let unknown_delete = client.delete_session("000000000000-S").expect_err("unknown session");
    assert_eq!(unknown_delete.status(), Some(404));
    assert!(unknown_delete.is_gone());
}

#[test]
fn deleting_a_session_whose_deployment_ended_answers_410() {
    let fake = small_fake(2, true);
    let client = client(&fake);
    let s = client.create_session(&session_for("10.0.0.1")).expect("create");
    let dep = wait_ready(&client, &s.session_id).deployment.expect("linked").request_id;
    client.stop_deployment(&dep).expect("stop");
    wait_for("terminated", || client.deployment_status(&dep).ok().filter(|d| d.current_status == "Status.TERMINATED"));
    let after = client.get_session(&s.session_id).expect("still listed");
    assert!(!after.ready);
    let gone = client.delete_session(&s.session_id).expect_err("already terminated");
    assert_eq!(gone.status(), Some(410));
    assert!(gone.is_gone());
    assert!(fake.inventory().is_idle(), "{:?}", fake.inventory());
}

#[test]
fn auth_rules_match_edgegap() {
    let fake = start(FakeConfig::for_tests());
    let path = "/v1/sessions";
    let token = fake.api_token().to_owned();
    assert_eq!(common::raw(&fake, "GET", path, Some(&format!("token {token}")), None).0, 200);
    for bad in [None, Some(token.clone()), Some(format!("token token {token}")), Some("token wrong".into())] {
        let (status, body) = common::raw(&fake, "GET", path, bad.as_deref(), None);
        assert_eq!(status, 401, "authorization {bad:?}");
        assert_eq!(body, json!({"message": "Unauthorized"}));
    }
    // The client accepts the configured key with or without the prefix.
    for configured in [token.clone(), format!("token {token}")] {
        let mut config = EdgegapConfig::new(ApiKey::parse(&configured).expect("key"));
        config.base_url = fake.base_url().to_owned();
        let client = EdgegapClient::new(config).expect("client");
        assert!(client.list_sessions(None, None).is_ok(), "configured as {configured:?}");
    }
    let mut config = EdgegapConfig::new(ApiKey::parse("token wrong-key").expect("key"));
    config.base_url = fake.base_url().to_owned();
    let wrong = EdgegapClient::new(config).expect("client").list_sessions(None, None);
    assert!(matches!(wrong, Err(EdgegapError::Api { status: 401, ref message, .. }) if message == "Unauthorized"));
}

#[test]
fn double_slashes_in_paths_are_tolerated() {
    let fake = start(FakeConfig::for_tests());
    let auth = common::account(&fake);
    let (status, body) = common::raw(
        &fake,
        "POST",
        "//v1/session",
        Some(&auth),
        Some(&json!({"app_name": "demo", "ip_list": ["1.2.3.4"]})),
    );
    assert_eq!(status, 200, "{body}");
    let id = body["session_id"].as_str().expect("id").to_owned();
    assert_eq!(common::raw(&fake, "GET", &format!("//v1//session/{id}"), Some(&auth), None).0, 200);
    assert_eq!(common::raw(&fake, "GET", "/v1/nothing-here", Some(&auth), None).0, 404);
}

#[test]
fn session_webhook_is_posted_when_ready() {
    let (url, received) = common::webhook_receiver();
    let fake = start(FakeConfig::for_tests());
    let client = client(&fake);
    let hook = format!("{url}/hook/session");
    let s = client
        .create_session(&SessionCreate { webhook_url: Some(hook.clone()), ..session_for("1.2.3.4") })
        .expect("create");
    assert_eq!(s.webhook_url.as_deref(), Some(hook.as_str()));
    let (path, body) = received.recv_timeout(common::DEADLINE).expect("webhook arrives");
    assert_eq!(path, "/hook/session");
    common::schema::assert_shape("session webhook", &body, common::schema::SESSION_CONTEXT);
    assert_eq!(body["session_id"], json!(s.session_id));
    assert_eq!(body["status"], json!("Ready"));
    assert_eq!(body["ready"], json!(true));
    assert!(body["deployment_request_id"].is_string());
}
