//! The client's deployment calls against the fake: v2 create, status
//! lifecycle, stop by state, webhooks, app lookups, rate limits.

mod common;

use std::time::{Duration, Instant};

use bevygap_edgegap::{
    DeploymentCreate, DeploymentState, DeploymentStatus, EdgegapClient, EdgegapError, EnvironmentVariable, StopOutcome,
    Webhook,
};
use common::{client, client_with, start, wait_for};
use fake_edgegap::{Endpoint, FakeConfig, FaultConfig};
use serde_json::json;

fn deploy(client: &EdgegapClient) -> String {
    client.create_deployment(&DeploymentCreate::for_ip("demo", "v1", "81.128.1.2")).expect("deploy").request_id
}

fn wait_state(client: &EdgegapClient, id: &str, state: DeploymentState) -> DeploymentStatus {
    wait_for(&format!("{id} in {state:?}"), || client.deployment_status(id).ok().filter(|s| s.state() == state))
}

#[test]
fn deployment_walks_the_documented_lifecycle() {
    let mut config = FakeConfig::for_tests();
    config.delays.step = Duration::from_millis(40);
    config.rate_limits.clear(); // this test polls as fast as it can
    let fake = start(config);
    let client = client(&fake);
    let id = deploy(&client);
    assert_eq!(id.len(), 12);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));

    let mut seen: Vec<DeploymentState> = Vec::new();
    let ready = wait_for("READY", || {
        let status = client.deployment_status(&id).ok()?;
        if seen.last() != Some(&status.state()) {
            seen.push(status.state());
        }
        (status.state() == DeploymentState::Ready).then_some(status)
    });
    let order = [
        DeploymentState::Initializing,
        DeploymentState::Seeking,
        DeploymentState::Seeked,
        DeploymentState::Scanning,
        DeploymentState::Deploying,
        DeploymentState::Ready,
    ];
    let positions: Vec<usize> = seen.iter().map(|s| order.iter().position(|o| o == s).expect("known state")).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "states out of order: {seen:?}");
    assert_eq!(seen.last(), Some(&DeploymentState::Ready));

    assert!(ready.running && !ready.error);
    assert_eq!(ready.app_name, "demo");
    assert_eq!(ready.app_version, "v1");
    assert_eq!(ready.fqdn, format!("{id}.pr.edgegap.net"));
    assert_eq!(ready.last_status.as_deref(), Some("Status.DEPLOYING"));
    assert_eq!(ready.public_ip, "127.0.0.1");
    assert_eq!(ready.start_time.len(), "2024-05-26 12:00:45.831041".len());
    let port = ready.ports.as_ref().and_then(|p| p.get("server port")).expect("named port");
    let external = port.external.expect("external");
    assert_eq!(port.link.as_deref(), Some(format!("{id}.pr.edgegap.net:{external}").as_str()));
    assert_eq!(port.protocol.as_deref(), Some("UDP"));
}

#[test]
fn stop_answers_by_state() {
    let mut config = FakeConfig::for_tests();
    config.delays.step = Duration::from_millis(500); // 2 s before READY: room for the early stop
    let fake = start(config);
    let client = client(&fake);

    // Early: 202, carried out once the deployment reaches READY.
    let early = deploy(&client);
    match client.stop_deployment(&early).expect("stop early") {
        StopOutcome::Accepted { message } => assert!(message.starts_with(&early), "{message}"),
        other => panic!("expected 202, got {other:?}"),
    }
    let ended = wait_state(&client, &early, DeploymentState::Terminated);
    assert!(ended.removal_time.is_some());
    assert!(!ended.running);

    // READY: 200 with a summary, then TERMINATED, then 410.
    let ready = deploy(&client);
    wait_state(&client, &ready, DeploymentState::Ready);
    match client.stop_deployment(&ready).expect("stop ready") {
        StopOutcome::Stopping { message, deployment_summary } => {
            assert_eq!(message, format!("Instance {ready} will be deleted"));
            assert_eq!(deployment_summary.expect("summary").request_id, ready);
        }
        other => panic!("expected 200, got {other:?}"),
    }
    wait_state(&client, &ready, DeploymentState::Terminated);
    let again = client.stop_deployment(&ready).expect_err("already terminated");
    assert!(
        matches!(again, EdgegapError::Api { status: 410, ref message, .. } if message == "Instance Already terminated")
    );
    assert!(again.is_gone());

    let unknown = client.stop_deployment("000000000000").expect_err("unknown");
    assert_eq!(unknown.status(), Some(400));
    assert!(fake.inventory().is_idle());
}

#[test]
fn deployment_error_paths() {
    let fake = start(FakeConfig::for_tests());
    let client = client(&fake);
    assert_eq!(client.deployment_status("ffffffffffff").expect_err("unknown").status(), Some(400));

    let unknown_app = client.create_deployment(&DeploymentCreate::for_ip("nope", "v1", "1.2.3.4"));
    assert!(matches!(unknown_app, Err(EdgegapError::Api { status: 400, .. })));

    let mut no_users = DeploymentCreate::for_ip("demo", "v1", "1.2.3.4");
    no_users.users.clear();
    assert_eq!(client.create_deployment(&no_users).expect_err("no users").status(), Some(400));

    // v1 field names on the v2 endpoint are rejected, as on Edgegap.
    let auth = common::account(&fake);
    let v1_body = json!({"app_name": "demo", "version_name": "v1", "ip_list": ["1.2.3.4"]});
    let (status, body) = common::raw(&fake, "POST", "/v2/deployments", Some(&auth), Some(&v1_body));
    assert_eq!(status, 400);
    common::schema::assert_shape("v2 400", &body, common::schema::V2_ERROR);
    // env vars need all of key, value, is_hidden
    let bad_env = json!({"application": "demo", "version": "v1",
        "users": [{"user_type": "ip_address", "user_data": {"ip_address": "1.2.3.4"}}],
        "environment_variables": [{"key": "A", "value": "b"}]});
    assert_eq!(common::raw(&fake, "POST", "/v2/deployments", Some(&auth), Some(&bad_env)).0, 400);
}

#[test]
fn injected_deploy_failures_end_in_error() {
    let mut config = FakeConfig::for_tests();
    config.faults = FaultConfig { deploy_error_rate: 1.0, ..FaultConfig::default() };
    let fake = start(config);
    let client = client(&fake);
    let id = deploy(&client);
    let failed = wait_state(&client, &id, DeploymentState::Error);
    assert!(failed.error && !failed.running);
    assert!(failed.error_detail.as_deref().is_some_and(|d| !d.is_empty()));
    assert_eq!(fake.inventory().deployments.len(), 1, "ERROR deployments still exist until stopped");
    assert!(matches!(client.stop_deployment(&id), Ok(StopOutcome::Stopping { .. })));
    wait_state(&client, &id, DeploymentState::Terminated);

    // 422: created in ERROR, the id is in the error for cleanup.
    fake.set_faults(FaultConfig { deploy_unprocessable_rate: 1.0, ..FaultConfig::default() });
    let err = client.create_deployment(&DeploymentCreate::for_ip("demo", "v1", "1.2.3.4")).expect_err("422");
    let EdgegapError::Api { status: 422, request_id: Some(left), .. } = err else {
        panic!("expected 422, got {err:?}")
    };
    assert_eq!(client.deployment_status(&left).expect("exists").state(), DeploymentState::Error);
    client.stop_deployment(&left).expect("cleanup");
    wait_for("idle", || fake.inventory().is_idle().then_some(()));
}

#[test]
fn deployment_webhooks_carry_the_status_body() {
    let (url, received) = common::webhook_receiver();
    let fake = start(FakeConfig::for_tests());
    let client = client(&fake);
    let mut request = DeploymentCreate::for_ip("demo", "v1", "1.2.3.4");
    request.webhook_on_ready = Some(Webhook { url: format!("{url}/ready") });
    request.webhook_on_terminated = Some(Webhook { url: format!("{url}/terminated") });
    request.tags = Some(vec!["production".into()]);
    let id = client.create_deployment(&request).expect("deploy").request_id;

    let (path, body) = received.recv_timeout(common::DEADLINE).expect("ready webhook");
    assert_eq!(path, "/ready");
    common::schema::assert_shape("ready webhook", &body, common::schema::STATUS);
    assert_eq!(body["request_id"], json!(id));
    assert_eq!(body["current_status"], json!("Status.READY"));
    assert_eq!(body["tags"], json!(["production"]));

    client.stop_deployment(&id).expect("stop");
    let (path, body) = received.recv_timeout(common::DEADLINE).expect("terminated webhook");
    assert_eq!(path, "/terminated");
    assert_eq!(body["current_status"], json!("Status.TERMINATED"));
}

#[test]
fn app_and_version_lookups() {
    let mut config = FakeConfig::for_tests();
    config.apps[0].versions.push(fake_edgegap::FakeVersion {
        name: "v2".into(),
        is_active: false,
        ..Default::default()
    });
    let fake = start(config);
    let client = client(&fake);
    let app = client.get_app("demo").expect("app");
    assert!(app.is_active);
    assert_eq!(app.name, "demo");
    let version = client.get_app_version("demo", "v1").expect("version");
    assert_eq!(version.is_active, Some(true));
    let session_config = version.session_config.expect("session config");
    assert_eq!((session_config.kind.as_str(), session_config.sockets), ("Seat", 10));
    assert_eq!(version.ports.expect("ports")[0].port, 5420);
    assert_eq!(client.get_app_version("demo", "v2").expect("inactive still readable").is_active, Some(false));
    assert_eq!(client.get_app_version("demo", "v9").expect_err("unknown").status(), Some(404));
    assert_eq!(client.get_app("nope").expect_err("unknown").status(), Some(400));
    // Inactive versions cannot be deployed (bevygap saw 400 on a disabled version).
    let inactive = client.create_deployment(&DeploymentCreate::for_ip("demo", "v2", "1.2.3.4"));
    assert_eq!(inactive.expect_err("inactive").status(), Some(400));
}

#[test]
fn fake_enforces_rate_limits_and_the_client_limiter_respects_them() {
    let mut config = FakeConfig::for_tests();
    config.rate_limits.insert(Endpoint::DeploymentStatus, 2);
    let fake = start(config);
    let id = deploy(&client(&fake));

    // Without local limiting or retries, the third call within a second is refused.
    let raw_client = client_with(&fake, |c| {
        c.rate_limit = false;
        c.retry = bevygap_edgegap::ApiRetryConfig::none();
    });
    let results: Vec<_> = (0..10).map(|_| raw_client.deployment_status(&id)).collect();
    assert!(
        results.iter().any(|r| matches!(r, Err(EdgegapError::RateLimited { .. }))),
        "expected a 429 among {results:?}"
    );

    // The client's own limiter holds status calls to 20/s: 41 calls need > 2 s.
    let mut config = FakeConfig::for_tests();
    config.rate_limits.clear();
    let fake = start(config);
    let limited = client(&fake);
    let id = deploy(&limited);
    let start_at = Instant::now();
    for _ in 0..41 {
        limited.deployment_status(&id).expect("status");
    }
    assert!(start_at.elapsed() >= Duration::from_secs(2), "{:?}", start_at.elapsed());
}

#[test]
fn deployment_variables_and_tags_reach_the_status() {
    let fake = start(FakeConfig::for_tests());
    let client = client(&fake);
    let mut request = DeploymentCreate::for_ip("demo", "v1", "1.2.3.4");
    request.environment_variables =
        Some(vec![EnvironmentVariable { key: "K".into(), value: "V".into(), is_hidden: false }]);
    request.tags = Some(vec!["a".into(), "b".into()]);
    let id = client.create_deployment(&request).expect("deploy").request_id;
    let status = wait_state(&client, &id, DeploymentState::Ready);
    assert_eq!(status.tags, Some(vec!["a".to_owned(), "b".to_owned()]));
    assert_eq!(status.location.expect("location").city, "Montreal");
}

#[test]
fn live_deployments_are_listed_with_their_tags_page_by_page() {
    let fake = start(FakeConfig::for_tests());
    let client = client(&fake);
    let tagged = |tag: &str| {
        let mut request = DeploymentCreate::for_ip("demo", "v1", "1.2.3.4");
        request.tags = Some(vec!["bevygap".into(), tag.into()]);
        client.create_deployment(&request).expect("deploy").request_id
    };
    let (first, second, third) = (tagged("one"), tagged("two"), tagged("three"));

    let page = client.list_deployments(Some(1), Some(2)).expect("first page");
    assert_eq!(page.total_count, Some(3));
    assert_eq!(page.data.iter().map(|d| d.request_id.as_str()).collect::<Vec<_>>(), [&first, &second]);
    assert_eq!(page.pagination.as_ref().and_then(|p| p.has_next), Some(true));
    let last = client.list_deployments(Some(2), Some(2)).expect("second page");
    assert_eq!(last.data.len(), 1);
    assert!(last.data[0].has_tag("three") && last.data[0].has_tag("bevygap") && !last.data[0].has_tag("one"));
    assert_eq!(last.pagination.as_ref().and_then(|p| p.has_next), Some(false));

    // Terminated deployments are no longer listed.
    client.stop_deployment(&third).expect("stop");
    wait_for("the stopped deployment to leave the list", || {
        let all = client.list_deployments(None, None).ok()?;
        (all.data.len() == 2 && !all.data.iter().any(|d| d.request_id == third)).then_some(())
    });
}
