//! Fault injection through real HTTP, and how the client's typed errors and
//! retries respond to it.

mod common;

use std::time::{Duration, Instant};

use bevygap_edgegap::{ApiRetryConfig, DeploymentCreate, EdgegapError, SessionCreate};
use common::{client, client_with, start};
use fake_edgegap::{Endpoint, EndpointFaults, FakeConfig, FaultConfig};
use serde_json::json;

fn session() -> SessionCreate {
    SessionCreate { app_name: "demo".into(), ip_list: Some(vec!["1.2.3.4".into()]), ..Default::default() }
}

#[test]
fn idempotent_calls_retry_through_server_errors() {
    let fake = start(FakeConfig::for_tests());
    let client = client(&fake);
    fake.set_faults(FaultConfig::default().on(Endpoint::ListSessions, EndpointFaults::server_errors(2)));
    client.list_sessions(None, None).expect("third attempt succeeds");
    let inventory = fake.inventory();
    assert_eq!(inventory.requests_to(Endpoint::ListSessions), 3);
    assert_eq!(inventory.faults_injected.get("list_sessions"), Some(&2));
}

#[test]
fn persistent_server_errors_surface_after_the_retries() {
    let fake = start(FakeConfig::for_tests());
    let client = client(&fake); // 3 retries
    fake.set_faults(FaultConfig::default().on(Endpoint::GetApp, EndpointFaults::server_errors(100)));
    let err = client.get_app("demo").expect_err("always 500");
    assert!(matches!(err, EdgegapError::Server { status: 500, ref message } if message == "Internal Server Error"));
    assert!(err.is_retryable());
    assert_eq!(fake.inventory().requests_to(Endpoint::GetApp), 4);
}

#[test]
fn creating_calls_retry_429_but_not_500() {
    let fake = start(FakeConfig::for_tests());
    let client = client(&fake);

    fake.set_faults(FaultConfig::default().on(Endpoint::CreateSession, EndpointFaults::rate_limited(2)));
    client.create_session(&session()).expect("429s are retried");
    assert_eq!(fake.inventory().requests_to(Endpoint::CreateSession), 3);
    assert_eq!(fake.inventory().sessions.len(), 1);

    fake.set_faults(FaultConfig::default().on(Endpoint::CreateDeployment, EndpointFaults::server_errors(1)));
    let err = client.create_deployment(&DeploymentCreate::for_ip("demo", "v1", "1.2.3.4")).expect_err("500");
    assert_eq!(err.status(), Some(500));
    assert_eq!(fake.inventory().requests_to(Endpoint::CreateDeployment), 1, "a POST is never repeated after a 500");
}

#[test]
fn rate_limited_error_after_retries() {
    let fake = start(FakeConfig::for_tests());
    let client = client_with(&fake, |c| c.retry = ApiRetryConfig::none());
    fake.set_faults(FaultConfig::default().on(Endpoint::DeploymentStatus, EndpointFaults::rate_limited(1)));
    let err = client.deployment_status("abcdefabcdef").expect_err("429");
    assert!(matches!(err, EdgegapError::RateLimited { ref message, .. } if message == "Too Many Requests"));
    assert_eq!(err.status(), Some(429));
}

#[test]
fn slow_answers_still_succeed_and_timeouts_are_typed() {
    let fake = start(FakeConfig::for_tests());
    let slow = Duration::from_millis(300);
    fake.set_faults(FaultConfig::default().on(Endpoint::GetApp, EndpointFaults::slow(1, slow)));
    let start_at = Instant::now();
    client(&fake).get_app("demo").expect("slow but fine");
    assert!(start_at.elapsed() >= slow);

    // The fake holds the request 20 s; the client gives up after its 500 ms timeout.
    fake.set_faults(
        FaultConfig::default().on(Endpoint::GetSession, EndpointFaults::timeouts(1, Duration::from_secs(20))),
    );
    let impatient = client_with(&fake, |c| {
        c.timeout = Duration::from_millis(500);
        c.retry = ApiRetryConfig::none();
    });
    let start_at = Instant::now();
    let err = impatient.get_session("000000000000-S").expect_err("timeout");
    assert!(matches!(err, EdgegapError::Timeout(t) if t == Duration::from_millis(500)), "{err:?}");
    assert!(start_at.elapsed() < Duration::from_secs(15), "the client did not wait for the fake");

    // A timed-out idempotent call is retried: the second attempt is served.
    fake.set_faults(FaultConfig::default().on(Endpoint::GetApp, EndpointFaults::timeouts(1, Duration::from_secs(20))));
    let retrying = client_with(&fake, |c| c.timeout = Duration::from_millis(500));
    retrying.get_app("demo").expect("retry after timeout");
}

#[test]
fn malformed_bodies_are_reported() {
    let fake = start(FakeConfig::for_tests());
    fake.set_faults(FaultConfig::default().on(Endpoint::DeploymentStatus, EndpointFaults::malformed(1)));
    let err = client(&fake).deployment_status("abcdefabcdef").expect_err("malformed");
    assert!(
        matches!(err, EdgegapError::MalformedBody { status: 200, ref detail } if detail.contains("request_id")),
        "{err:?}"
    );
    assert!(!err.is_retryable());
}

#[test]
fn transport_errors_when_nothing_listens() {
    let fake = start(FakeConfig::for_tests());
    let client = client_with(&fake, |c| c.retry = ApiRetryConfig::none());
    drop(fake);
    let err = client.get_app("demo").expect_err("nobody listens");
    assert!(matches!(err, EdgegapError::Transport(_) | EdgegapError::Timeout(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[test]
fn faults_are_controllable_over_http() {
    let fake = start(FakeConfig::for_tests());
    let body = json!({"endpoints": {"get_app": {"server_error_rate": 1.0, "max_faults": 1}}});
    let (status, echoed) = common::raw(&fake, "PUT", "/_fake/faults", None, Some(&body));
    assert_eq!(status, 200);
    assert_eq!(echoed["endpoints"]["get_app"]["server_error_rate"], json!(1.0));
    let auth = common::account(&fake);
    assert_eq!(common::raw(&fake, "GET", "/v1/app/demo", Some(&auth), None).0, 500);
    assert_eq!(common::raw(&fake, "GET", "/v1/app/demo", Some(&auth), None).0, 200);
    let (_, inventory) = common::raw(&fake, "GET", "/_fake/inventory", None, None);
    assert_eq!(inventory["faults_injected"]["get_app"], json!(1));
    assert_eq!(inventory["requests"]["get_app"], json!(2));
}
