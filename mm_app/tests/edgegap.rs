//! The `edgegap` provider end to end: a real matchmaker (real nats-server) launches
//! deployments on the real `fake-edgegap` binary, whose deployments run the real demo game
//! server with Edgegap's `ARBITRIUM_*` environment; real Lightyear clients play on them. Then
//! each fault the fake can inject: what the player sees, and that nothing is left on "Edgegap"
//! (the fake's `/_fake/inventory`).
//!
//! The fake's own environment stands in for the app version's env on Edgegap: its deployment
//! processes inherit `NATS_URL` and the Lightyear keys from it.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevygap_edgegap::EdgegapError;
use bevygap_matchmaker::config::MatchmakerConfig;
use bevygap_matchmaker::harness::LocalMatchmaker;
use bevygap_matchmaker::providers::edgegap::{
    EdgegapMode, EdgegapProvider, EdgegapProviderConfig, EdgegapTiming, EdgegapWebhook,
};
use bevygap_matchmaker::providers::{ProviderError, ProviderEvent, ServerProvider, ServerSpec};
use bevygap_shared::inbox::{AppWaker, Inbox};
use bevygap_shared::naming::{Namespace, ServerId};
use bevygap_shared::nats::NatsServer;
use bevygap_shared::protocol::{GameName, GameVersion};
use bevygap_testkit::lightyear_client::{Dial, connecting_client, decode_connect_token, disconnect};
use bevygap_testkit::{DEADLINE, every, expect_step_until, step_for};
use fake_edgegap::{Endpoint, Inventory};
use lightyear::prelude::Connected;
use serde_json::{Value, json};
use support::edgegap::*;
use support::{GAME, VERSION, agent, post, test_keys};

fn provider_config(fake: &FakeEdgegap, namespace: &str) -> EdgegapProviderConfig {
    let mut config = EdgegapProviderConfig::new(
        client_config(&fake.base_url, TOKEN),
        APP,
        Namespace::new(namespace).expect("namespace"),
    );
    config.timing = EdgegapTiming::quick();
    config
}

/// A matchmaker whose provider is Edgegap (the fake), on its own nats-server.
struct Stack {
    mm: Option<LocalMatchmaker>,
    provider: Arc<EdgegapProvider>,
    fake: FakeEdgegap,
}

impl Stack {
    /// `fake_args` go to the fake; `demo` makes its deployments run the demo server.
    fn start(
        demo: bool,
        fake_args: &[&str],
        provider: impl FnOnce(&mut EdgegapProviderConfig),
        matchmaker: impl FnOnce(&mut MatchmakerConfig),
    ) -> Self {
        let nats = NatsServer::start().expect("nats-server");
        let nats_url = nats.url();
        let fake = FakeEdgegap::start(demo.then_some(nats_url.as_str()), fake_args);
        let namespace = format!("t{:08x}", rand::random::<u32>());
        let mut edgegap = provider_config(&fake, &namespace);
        provider(&mut edgegap);
        let provider = Arc::new(EdgegapProvider::new(edgegap).expect("provider"));
        provider.listen_for_webhooks().expect("the webhook listener binds");
        let mut config = MatchmakerConfig::for_tests(&namespace, Vec::new());
        config.provider = bevygap_matchmaker::config::ProviderKind::Edgegap;
        config.servers.empty_grace = Duration::from_secs(1);
        matchmaker(&mut config);
        let shared: Arc<dyn ServerProvider> = provider.clone();
        let mm = LocalMatchmaker::start_on(nats, shared, config, test_keys(), |_| {}).expect("matchmaker starts");
        Self { mm: Some(mm), provider, fake }
    }

    fn mm(&self) -> &LocalMatchmaker {
        self.mm.as_ref().expect("running")
    }

    /// A blocking join; the whole JSON-RPC answer.
    fn join(&self) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join",
                          "params": {"game": GAME, "version": VERSION, "transport": "udp"}});
        let (status, answer) = post(&self.mm().public_url(), &body.to_string(), None);
        assert_eq!(status, 200, "{answer}");
        answer
    }

    fn join_ready(&self) -> Value {
        let answer = self.join();
        assert_eq!(answer["result"]["status"], "ready", "{answer}");
        answer["result"].clone()
    }

    fn admin_servers(&self) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "admin.servers", "params": {}});
        let (status, answer) = post(&self.mm().admin_url(), &body.to_string(), None);
        assert_eq!(status, 200, "{answer}");
        answer["result"].clone()
    }

    fn servers(&self) -> Vec<Value> {
        self.admin_servers()["servers"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the fake holds no live deployment, session or process, and the provider
    /// no server and no session.
    fn expect_nothing_left(&self) -> Inventory {
        wait_for("the fake to hold no live deployment, session or process and the provider nothing", || {
            let inventory = self.fake.inventory();
            let provider_idle = self.provider.running().is_empty() && self.provider.sessions_held() == 0;
            (inventory.is_idle() && provider_idle).then_some(inventory)
        })
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        drop(self.mm.take()); // stops the app, which stops its deployments
        if !std::thread::panicking() {
            assert!(self.provider.running().is_empty(), "deployments outlived the matchmaker");
        }
    }
}

fn client_for(ready: &Value) -> (App, Entity) {
    connecting_client(decode_connect_token(ready["connect_token"].as_str().expect("a token")), Dial::Udp)
}

#[test]
fn a_join_starts_a_deployment_running_the_demo_server_real_clients_play_and_the_empty_one_is_stopped() {
    let stack = Stack::start(true, &[], |_| {}, |_| {});
    let first = stack.join_ready();

    // One deployment, running the demo server, which registered under the matchmaker's id and
    // advertises the public address of Edgegap's port mapping.
    let servers = stack.servers();
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(servers[0]["provider"], "edgegap");
    let server_id = ServerId::new(servers[0]["server_id"].as_str().expect("id")).expect("valid id");
    let request_id = stack.provider.request_id(&server_id).expect("Edgegap named the deployment");
    let status = stack.fake.client().deployment_status(&request_id).expect("status");
    assert_eq!(
        (status.app_name.as_str(), status.app_version.as_str()),
        (APP, VERSION),
        "game version = Edgegap version"
    );
    assert!(status.tags.as_ref().is_some_and(|t| t.contains(&server_id.to_string())), "{:?}", status.tags);
    let port = status.ports.as_ref().and_then(|p| p.get("server port")).and_then(|p| p.external).expect("port");
    assert_eq!(first["addresses"]["udp"], format!("127.0.0.1:{port}"), "{first}");
    let inventory = stack.fake.inventory();
    assert_eq!(inventory.deployments.len(), 1);
    assert_eq!(inventory.processes.len(), 1, "{inventory:?}");
    assert_eq!(inventory.processes[0].request_id, request_id);

    // A real Lightyear client connects with the token; a second join fills the same deployment.
    let (mut one, one_entity) = client_for(&first);
    expect_step_until(&mut [&mut one], DEADLINE, "the first client to connect", |apps| {
        apps[0].world().get::<Connected>(one_entity).is_some()
    });
    let second = stack.join_ready();
    assert_eq!(second["addresses"], first["addresses"], "the second player is placed on the same deployment");
    let (mut two, two_entity) = client_for(&second);
    expect_step_until(&mut [&mut one, &mut two], DEADLINE, "the second client to connect", |apps| {
        apps[1].world().get::<Connected>(two_entity).is_some()
    });
    expect_step_until(
        &mut [&mut one, &mut two],
        DEADLINE,
        "the matchmaker to count both players connected",
        every(Duration::from_millis(100), || stack.servers().first().is_some_and(|s| s["connected"] == 2)),
    );
    assert_eq!(stack.fake.inventory().deployments_created, 1);

    // Both leave; after the empty grace the deployment is stopped and its process is gone.
    disconnect(&mut one, one_entity);
    disconnect(&mut two, two_entity);
    step_for(&mut [&mut one, &mut two], Duration::from_millis(100));
    drop((one, two));
    wait_for("the empty server to be stopped", || stack.servers().is_empty().then_some(()));
    let inventory = stack.expect_nothing_left();
    assert!(inventory.requests_to(Endpoint::StopDeployment) >= 1);

    // The Edgegap calls are counted on the admin endpoint's /metrics, by method and status
    // class (at least these; other tests of this binary share the process's recorder).
    let mut response = agent().get(format!("{}/metrics", stack.mm().admin_url())).call().expect("scrape");
    let page = response.body_mut().read_to_string().expect("text");
    let calls = |method: &str| {
        page.lines()
            .filter(|l| l.starts_with("bevygap_edgegap_requests_total{"))
            .filter(|l| l.contains(&format!("method=\"{method}\"")) && l.contains("status=\"2xx\""))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum::<f64>()
    };
    assert!(calls("POST") >= 1.0 && calls("GET") >= 1.0 && calls("DELETE") >= 1.0, "{page}");
}

/// Joins and expects the player to be told `code`; then nothing may be left on the fake.
fn expect_player_error(stack: &Stack, code: &str) -> Inventory {
    let answer = stack.join();
    assert_eq!(answer["error"]["data"]["code"], code, "{answer}");
    stack.expect_nothing_left()
}

/// Sets the provider's mode.
fn in_mode(mode: EdgegapMode) -> impl FnOnce(&mut EdgegapProviderConfig) {
    move |c| c.mode = mode
}

#[test]
fn an_unknown_version_400_fails_the_join_with_server_failed_and_creates_nothing() {
    an_unknown_version_400_fails_the_join_in(EdgegapMode::Deployments);
}

#[test]
fn in_sessions_mode_an_unknown_version_400_fails_the_join_with_server_failed_and_creates_nothing() {
    an_unknown_version_400_fails_the_join_in(EdgegapMode::Sessions);
}

fn an_unknown_version_400_fails_the_join_in(mode: EdgegapMode) {
    let stack = Stack::start(
        false,
        &[],
        |c| {
            c.version = Some("9.9".into());
            c.mode = mode;
        },
        |_| {},
    );
    // The orphan sweep lists once at startup (the next one is 90 s away).
    let sweep = wait_for("the startup orphan sweep", || {
        let lists = stack.fake.inventory().requests_to(Endpoint::ListDeployments);
        (lists >= 1).then_some(lists)
    });
    let inventory = expect_player_error(&stack, "server_failed");
    assert_eq!(inventory.deployments_created, 0);
    assert_eq!(inventory.requests_to(Endpoint::CreateDeployment), 3, "the join is re-placed up to 3 times");
    assert_eq!(inventory.requests_to(Endpoint::ListDeployments), sweep, "a refused create leaves nothing to look for");
}

#[test]
fn a_wrong_token_401_fails_the_join_with_server_failed_and_creates_nothing() {
    let stack = Stack::start(false, &[], |c| c.client = client_config(&c.client.base_url, "wrong-token"), |_| {});
    let inventory = expect_player_error(&stack, "server_failed");
    assert_eq!(inventory.deployments_created, 0);
}

#[test]
fn a_wrong_api_url_404_fails_the_join_with_server_failed_and_creates_nothing() {
    let stack = Stack::start(false, &[], |c| c.client.base_url = format!("{}/not-the-api", c.client.base_url), |_| {});
    let inventory = expect_player_error(&stack, "server_failed");
    assert_eq!(inventory.deployments_created, 0);
}

#[test]
fn rate_limits_429_that_outlast_the_client_retries_fail_the_join_and_create_nothing() {
    let stack = Stack::start(false, &["--fault", "create_deployment:rate_limited_rate=1"], |_| {}, |_| {});
    let inventory = expect_player_error(&stack, "server_failed");
    assert_eq!(inventory.deployments_created, 0);
    assert_eq!(inventory.requests_to(Endpoint::CreateDeployment), 6, "3 launches, each retried once on 429");
}

#[test]
fn server_errors_500_fail_the_join_and_the_lost_answer_is_searched_for() {
    let stack = Stack::start(false, &["--fault", "create_deployment:server_error_rate=1"], |_| {}, |_| {});
    let inventory = expect_player_error(&stack, "server_failed");
    assert_eq!(inventory.deployments_created, 0);
    assert_eq!(inventory.requests_to(Endpoint::CreateDeployment), 3, "a create is never repeated after a 500");
    assert!(inventory.requests_to(Endpoint::ListDeployments) >= 3, "each lost answer is looked for by tag");
}

#[test]
fn create_timeouts_fail_the_join_and_leave_nothing() {
    let stack = Stack::start(
        false,
        &["--fault", "create_deployment:timeout_rate=1", "--fault", "create_deployment:timeout_ms=5000"],
        |c| c.client.timeout = Duration::from_millis(700),
        |_| {},
    );
    let inventory = expect_player_error(&stack, "server_failed");
    assert_eq!(inventory.deployments_created, 0);
}

#[test]
fn deployments_that_end_in_error_are_stopped_and_their_players_re_placed_then_told_server_failed() {
    deployments_that_end_in_error_are_stopped_in(EdgegapMode::Deployments);
}

#[test]
fn in_sessions_mode_deployments_that_end_in_error_are_stopped_with_their_sessions_and_players_told_server_failed() {
    let inventory = deployments_that_end_in_error_are_stopped_in(EdgegapMode::Sessions);
    assert!(inventory.requests_to(Endpoint::CreateSession) >= 1, "seats were asked for on the failing deployments");
}

fn deployments_that_end_in_error_are_stopped_in(mode: EdgegapMode) -> Inventory {
    let stack = Stack::start(false, &["--deploy-error-rate", "1"], in_mode(mode), |_| {});
    let inventory = expect_player_error(&stack, "server_failed");
    assert_eq!(inventory.deployments_created, 3, "each loss re-placed the player on a new deployment");
    assert_eq!(inventory.requests_to(Endpoint::StopDeployment), 3, "every failed deployment was stopped");
    inventory
}

#[test]
fn a_stop_that_keeps_failing_is_parked_shown_in_admin_servers_and_done_once_edgegap_recovers() {
    // Deployments run no process here, so no game server reports and the matchmaker gives the
    // server up after its start timeout and stops it: the stop is what fails.
    let stack = Stack::start(
        false,
        &["--fault", "stop_deployment:server_error_rate=1"],
        |_| {},
        |c| c.servers.start_timeout = Duration::from_secs(1),
    );
    let answer = stack.join();
    assert_eq!(answer["error"]["data"]["code"], "server_failed", "{answer}");
    let parked = wait_for("parked stops in admin.servers", || {
        let parked = stack.admin_servers()["parked_stops"].as_array().cloned().unwrap_or_default();
        (parked.len() == 3).then_some(parked)
    });
    let live = stack.fake.inventory().deployments;
    for stop in &parked {
        assert!(stop["error"].as_str().is_some_and(|e| e.contains("500")), "{stop}");
        assert!(stop["attempts"].as_u64().is_some_and(|n| n >= 3), "{stop}");
        assert!(live.iter().any(|d| stop["external_id"].as_str() == Some(d.request_id.as_str())), "{stop}");
    }
    assert_eq!(live.len(), 3, "parked stops leave their deployments running");
    assert_eq!(stack.provider.parked_stops().len(), 3);

    // Edgegap recovers: the parked stops go through.
    stack.fake.set_faults(json!({}));
    stack.expect_nothing_left();
    assert!(stack.admin_servers()["parked_stops"].as_array().is_some_and(Vec::is_empty));
}

// Provider-level checks, without a matchmaker: what exactly is reported.

fn spec(server: &str) -> ServerSpec {
    ServerSpec {
        server_id: ServerId::new(server).expect("id"),
        game: GameName::new(GAME).expect("game"),
        version: GameVersion::new(VERSION).expect("version"),
        capacity: 4,
        player_ips: vec!["127.0.0.1".parse().expect("ip")],
        nats_credentials: None,
    }
}

/// Launches `spec` and returns the first event.
fn first_event(provider: &EdgegapProvider, spec: ServerSpec) -> ProviderEvent {
    let mut inbox = Inbox::new(AppWaker::default());
    provider.launch(spec, inbox.sender());
    wait_for("a provider event", || inbox.drain().next())
}

#[test]
fn launch_failures_are_typed_and_carry_edgegaps_status_and_message() {
    let fake = FakeEdgegap::start(None, &[]);
    let mut config = provider_config(&fake, "typed");
    config.version = Some("9.9".into());
    let provider = EdgegapProvider::new(config).expect("provider");
    let started = Instant::now();
    match first_event(&provider, spec("edgegap-00000000000000a1")) {
        ProviderEvent::LaunchFailed { error: ProviderError::Edgegap(e), .. } => match e.as_ref() {
            EdgegapError::Api { status: 400, message, .. } => assert!(message.contains("9.9"), "{message}"),
            other => panic!("expected a 400 with Edgegap's message, got {other:?}"),
        },
        other => panic!("expected LaunchFailed, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(provider.running().is_empty());
}

#[test]
fn a_create_whose_answer_is_lost_but_that_edgegap_carries_out_is_found_by_its_tag_and_stopped() {
    // The fake answers the create only after 2 s, then creates the deployment; the provider
    // gave up after 700 ms.
    let fake = FakeEdgegap::start(
        None,
        &["--fault", "create_deployment:slow_rate=1", "--fault", "create_deployment:slow_ms=2000"],
    );
    let mut config = provider_config(&fake, "lost");
    config.client.timeout = Duration::from_millis(700);
    let provider = EdgegapProvider::new(config).expect("provider");
    match first_event(&provider, spec("edgegap-00000000000000a2")) {
        ProviderEvent::LaunchFailed { error: ProviderError::Edgegap(e), .. } => {
            assert!(matches!(e.as_ref(), EdgegapError::Timeout(_)), "{e:?}")
        }
        other => panic!("expected LaunchFailed, got {other:?}"),
    }
    wait_for("the late deployment to exist", || (fake.inventory().deployments_created == 1).then_some(()));
    wait_for("the late deployment to be found and stopped", || {
        let inventory = fake.inventory();
        (inventory.is_idle() && provider.running().is_empty()).then_some(())
    });
    let inventory = fake.inventory();
    assert!(inventory.requests_to(Endpoint::ListDeployments) >= 1);
    assert_eq!(inventory.requests_to(Endpoint::StopDeployment), 1);
}

// The `bevygap-matchmaker` binary with `--provider edgegap`.

#[test]
fn the_binary_lists_the_edgegap_settings_and_refuses_an_incomplete_edgegap_setup_by_variable() {
    let help = matchmaker_binary(&[]).arg("--help").output().expect("runs");
    let help = String::from_utf8_lossy(&help.stdout);
    for var in [
        "BEVYGAP_EDGEGAP_API_TOKEN",
        "BEVYGAP_EDGEGAP_URL",
        "BEVYGAP_EDGEGAP_APP",
        "BEVYGAP_EDGEGAP_VERSION",
        "BEVYGAP_EDGEGAP_LOCATION",
        "BEVYGAP_EDGEGAP_MODE",
        "BEVYGAP_EDGEGAP_WEBHOOK_URL",
        "BEVYGAP_EDGEGAP_WEBHOOK_BIND",
        "BEVYGAP_EDGEGAP_UDP_PORT_NAME",
        "BEVYGAP_EDGEGAP_WT_PORT_NAME",
        "BEVYGAP_SERVER_CAPACITY",
    ] {
        assert!(help.contains(var), "--help does not mention {var}");
    }
    assert!(help.contains("edgegap") && help.contains("[default: https://api.edgegap.com]"), "{help}");

    let out =
        matchmaker_binary(&[("BEVYGAP_PROVIDER", "edgegap"), ("BEVYGAP_EDGEGAP_APP", "demo")]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BEVYGAP_EDGEGAP_API_TOKEN"));
    let out = matchmaker_binary(&[("BEVYGAP_PROVIDER", "edgegap"), ("BEVYGAP_EDGEGAP_API_TOKEN", TOKEN)])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("BEVYGAP_EDGEGAP_APP") && !stderr.contains(TOKEN), "{stderr}");
}

#[test]
fn the_binary_with_provider_edgegap_serves_a_join_and_stops_its_deployment_on_sigterm() {
    let nats = NatsServer::start().expect("nats-server");
    let fake = FakeEdgegap::start(Some(&*nats.url()), &[]);
    let setup = Setup { nats_url: nats.url(), fake: &fake, namespace: format!("t{:08x}", rand::random::<u32>()) };
    let mm = setup.start(&[("RUST_LOG", "debug"), ("BEVYGAP_EMPTY_GRACE_SECS", "60")]);

    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join",
                      "params": {"game": GAME, "version": VERSION, "transport": "udp"}});
    let (status, answer) = post(&format!("http://{}", mm.public_addr), &body.to_string(), None);
    assert_eq!((status, &answer["result"]["status"]), (200, &json!("ready")), "{answer}");
    let inventory = fake.inventory();
    assert_eq!(inventory.deployments.len(), 1);
    assert_eq!(inventory.requests_to(Endpoint::GetApp), 1, "the app is checked at startup");

    // SIGTERM: the matchmaker stops its deployment before it exits.
    let log = mm.terminate();
    assert!(!log.contains(TOKEN), "the Edgegap token was logged");
    wait_for("the fake to hold no live deployment or process", || fake.inventory().is_idle().then_some(()));
}

/// `KEY=VALUE` lines of an example env file (comments and blanks skipped).
fn example_env(name: &str) -> Vec<(String, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("{name}: not KEY=VALUE: {line}"));
            (key.to_string(), value.to_string())
        })
        .collect()
}

#[test]
fn the_example_env_files_are_valid_matchmaker_settings() {
    for name in ["edgegap.env", "fleet.env"] {
        let vars = example_env(name);
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        // Every setting validates; the run then stops at the example's key file, which does not
        // exist here, before connecting anywhere.
        let out = matchmaker_binary(&vars).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(!stderr.contains("invalid setting") && stderr.contains("LIGHTYEAR_PRIVATE_KEY"), "{name}: {stderr}");
    }
}

#[test]
fn a_deployment_an_earlier_matchmaker_started_is_found_by_its_tag_and_stopped() {
    let fake = FakeEdgegap::start(None, &[]);
    let server = ServerId::new("edgegap-00000000000000b1").expect("id");
    let mut request = bevygap_edgegap::DeploymentCreate::for_ip(APP, VERSION, "127.0.0.1");
    request.tags = Some(vec!["bevygap".into(), "ns-restarted".into(), server.to_string()]);
    let client = fake.client();
    let request_id = client.create_deployment(&request).expect("deployment").request_id;

    // A fresh provider (the matchmaker restarted) is asked to stop a server it never launched.
    let provider = EdgegapProvider::new(provider_config(&fake, "restarted")).expect("provider");
    provider.stop(&server);
    wait_for("the earlier deployment to be stopped", || {
        let inventory = fake.inventory();
        (inventory.is_idle() && provider.running().is_empty()).then_some(())
    });
    let status = client.deployment_status(&request_id).expect("status");
    assert_eq!(status.current_status, "Status.TERMINATED");

    // A server it handled itself is not searched for again.
    let lists = fake.inventory().requests_to(Endpoint::ListDeployments);
    provider.stop(&server);
    provider.stop(&ServerId::new("local-0000000000000001").expect("id"));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(fake.inventory().requests_to(Endpoint::ListDeployments), lists);
}

// Nothing leaks across a matchmaker SIGKILL: a second `bevygap-matchmaker` process on the same
// NATS and Edgegap finds what the killed one left (adoption from NATS, the orphan sweep).

/// The one live deployment of the fake once it exists: (request id, server id tag).
fn the_deployment(fake: &FakeEdgegap, namespace: &str) -> (String, String) {
    let deployment = wait_for("Edgegap to answer the create", || fake.inventory().deployments.into_iter().next());
    let status = fake.client().deployment_status(&deployment.request_id).expect("status");
    let tags = status.tags.unwrap_or_default();
    assert!(tags.contains(&format!("ns-{namespace}")), "{tags:?}");
    let server = tags.iter().find(|t| t.starts_with("edgegap-")).cloned().expect("a server id tag");
    (deployment.request_id, server)
}

#[test]
fn a_deployment_whose_server_never_registered_before_a_sigkill_is_stopped_by_the_restarted_matchmakers_sweep() {
    // Deployments run no process: the game server never registers, so only the orphan sweep
    // can find the deployment after the kill. Start timeout 3 s: orphan grace 6 s.
    let nats = NatsServer::start().expect("nats-server");
    let fake = FakeEdgegap::start(None, &[]);
    let setup = Setup { nats_url: nats.url(), fake: &fake, namespace: format!("t{:08x}", rand::random::<u32>()) };
    let timeout = [("BEVYGAP_SERVER_START_TIMEOUT_SECS", "3")];
    let first = setup.start(&timeout);
    first.join_in_background();
    let (request_id, server) = the_deployment(&fake, &setup.namespace);
    first.kill();
    assert_eq!(fake.inventory().deployments.len(), 1, "the killed matchmaker stopped nothing");

    // The join the killed matchmaker left waiting is resumed (on deployments of its own, which
    // never register either); the orphan is the sweep's to find.
    let started = Instant::now();
    let second = setup.start(&timeout);
    wait_for("the orphan to be stopped", || {
        let status = fake.client().deployment_status(&request_id).ok()?;
        (status.current_status == "Status.TERMINATED").then_some(())
    });
    assert!(started.elapsed() >= Duration::from_secs(2), "a young deployment is left to register first");
    assert!(fake.inventory().requests_to(Endpoint::ListDeployments) >= 1);
    assert!(!second.server_ids().contains(&server), "the orphan was never a server of the new matchmaker");
    let log = second.terminate();
    assert!(log.contains(&server) && log.contains("orphan sweep"), "{log}");
    wait_for("nothing to be left on Edgegap", || fake.inventory().is_idle().then_some(()));
}

#[test]
fn a_deployment_still_booting_at_a_sigkill_is_adopted_by_the_restarted_matchmaker_and_stopped_when_empty() {
    a_deployment_still_booting_at_a_sigkill_is_adopted_in("deployments");
}

#[test]
fn in_sessions_mode_a_deployment_still_booting_at_a_sigkill_is_adopted_stopped_and_its_sessions_deleted() {
    a_deployment_still_booting_at_a_sigkill_is_adopted_in("sessions");
}

fn a_deployment_still_booting_at_a_sigkill_is_adopted_in(mode: &str) {
    // The deployment takes 6 s to become READY (then its demo server starts and registers);
    // the matchmaker is killed while it is still DEPLOYING (in sessions mode, with the
    // player's session created and linked but not ready).
    let nats = NatsServer::start().expect("nats-server");
    let fake = FakeEdgegap::start(Some(&*nats.url()), &["--deploying-delay-ms", "6000"]);
    let setup = Setup { nats_url: nats.url(), fake: &fake, namespace: format!("t{:08x}", rand::random::<u32>()) };
    let first = setup.start(&[("BEVYGAP_EDGEGAP_MODE", mode)]);
    first.join_in_background();
    let (request_id, server) = the_deployment(&fake, &setup.namespace);
    if mode == "sessions" {
        wait_for("the player's session", || (!fake.inventory().sessions.is_empty()).then_some(()));
    }
    first.kill();
    let status = fake.client().deployment_status(&request_id).expect("status");
    assert_ne!(status.current_status, "Status.READY", "killed before the deployment was ready");

    let second = setup.start(&[("BEVYGAP_EDGEGAP_MODE", mode)]);
    wait_for("the restarted matchmaker to adopt the server", || second.server_ids().contains(&server).then_some(()));
    wait_for("the empty adopted server to be stopped", || fake.inventory().is_idle().then_some(()));
    assert_eq!(fake.inventory().requests_to(Endpoint::StopDeployment), 1);
    wait_for("the server to be forgotten", || second.server_ids().is_empty().then_some(()));
    second.terminate();
}

#[test]
fn a_ready_server_at_a_sigkill_is_adopted_by_the_restarted_matchmaker_and_stopped_when_empty() {
    a_ready_server_at_a_sigkill_is_adopted_in("deployments");
}

#[test]
fn in_sessions_mode_a_ready_server_at_a_sigkill_is_adopted_and_stopped_when_empty_and_its_sessions_deleted() {
    let (first_log, inventory) = a_ready_server_at_a_sigkill_is_adopted_in("sessions");
    assert!(first_log.contains("Edgegap session created"), "{first_log}");
    assert!(inventory.requests_to(Endpoint::DeleteSession) >= 1, "the killed matchmaker's session was deleted");
}

/// Returns the killed matchmaker's log and the fake's final inventory.
fn a_ready_server_at_a_sigkill_is_adopted_in(mode: &str) -> (String, Inventory) {
    let nats = NatsServer::start().expect("nats-server");
    let fake = FakeEdgegap::start(Some(&*nats.url()), &[]);
    let setup = Setup { nats_url: nats.url(), fake: &fake, namespace: format!("t{:08x}", rand::random::<u32>()) };
    // The empty grace is long for the first matchmaker, so it is killed while its server runs.
    let first = setup.start(&[("BEVYGAP_EMPTY_GRACE_SECS", "60"), ("BEVYGAP_EDGEGAP_MODE", mode)]);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join",
                      "params": {"game": GAME, "version": VERSION, "transport": "udp"}});
    let (status, answer) = post(&format!("http://{}", first.public_addr), &body.to_string(), None);
    assert_eq!((status, &answer["result"]["status"]), (200, &json!("ready")), "{answer}");
    let (_, server) = the_deployment(&fake, &setup.namespace);
    let first_log = first.kill();
    let left = fake.inventory();
    assert_eq!(left.processes.len(), 1, "the killed matchmaker stopped nothing");
    assert_eq!(left.sessions.len(), usize::from(mode == "sessions"), "{left:?}");

    // In sessions mode the empty grace is long enough to see the order: the earlier token
    // expires, its session is deleted by its id, then the empty deployment is stopped.
    let second = setup.start(&[("BEVYGAP_EDGEGAP_MODE", mode), ("BEVYGAP_EMPTY_GRACE_SECS", "6")]);
    wait_for("the restarted matchmaker to adopt the server", || second.server_ids().contains(&server).then_some(()));
    if mode == "sessions" {
        let inventory = wait_for("the earlier player's session to be deleted", || {
            Some(fake.inventory()).filter(|i| i.sessions.is_empty())
        });
        assert_eq!(inventory.deployments.len(), 1, "deleted when its seat was freed, not with the deployment");
    }
    wait_for("the empty adopted server to be stopped", || fake.inventory().is_idle().then_some(()));
    let inventory = fake.inventory();
    assert_eq!(inventory.requests_to(Endpoint::StopDeployment), 1);
    second.terminate();
    (first_log, inventory)
}

// Sessions mode: each seated player holds an Edgegap session on the server's deployment.

#[test]
fn in_sessions_mode_each_player_holds_a_session_on_the_shared_deployment_deleted_when_they_leave() {
    let stack = Stack::start(true, &[], in_mode(EdgegapMode::Sessions), |_| {});
    let first = stack.join_ready();
    let servers = stack.servers();
    assert_eq!(servers.len(), 1, "{servers:?}");
    let server_id = ServerId::new(servers[0]["server_id"].as_str().expect("id")).expect("valid id");
    let request_id = stack.provider.request_id(&server_id).expect("Edgegap named the deployment");
    let inventory = stack.fake.inventory();
    assert_eq!(inventory.sessions.len(), 1, "{inventory:?}");
    assert_eq!(inventory.sessions[0].deployment_request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(inventory.sessions[0].status, "Ready", "the token waited for the session to be ready");
    let session = stack.fake.client().get_session(&inventory.sessions[0].session_id).expect("session");
    let ips: Vec<String> = session.session_users.unwrap_or_default().into_iter().map(|u| u.ip).collect();
    assert_eq!(ips, vec!["127.0.0.1".to_string()], "the session is the player's IP");

    let (mut one, one_entity) = client_for(&first);
    expect_step_until(&mut [&mut one], DEADLINE, "the first client to connect", |apps| {
        apps[0].world().get::<Connected>(one_entity).is_some()
    });
    let second = stack.join_ready();
    assert_eq!(second["addresses"], first["addresses"], "the second player is placed on the same deployment");
    let inventory = stack.fake.inventory();
    assert_eq!(inventory.deployments_created, 1);
    assert_eq!(inventory.sessions.len(), 2, "one session per player: {inventory:?}");
    assert!(inventory.sessions.iter().all(|s| s.deployment_request_id.as_deref() == Some(request_id.as_str())));
    let (mut two, two_entity) = client_for(&second);
    expect_step_until(&mut [&mut one, &mut two], DEADLINE, "the second client to connect", |apps| {
        apps[1].world().get::<Connected>(two_entity).is_some()
    });

    // The first player leaves: their session is deleted while the second plays on.
    disconnect(&mut one, one_entity);
    expect_step_until(
        &mut [&mut one, &mut two],
        DEADLINE,
        "the first player's session to be deleted",
        every(Duration::from_millis(100), || stack.fake.inventory().sessions.len() == 1),
    );
    assert_eq!(stack.fake.inventory().deployments.len(), 1, "the deployment runs on for the second player");

    disconnect(&mut two, two_entity);
    step_for(&mut [&mut one, &mut two], Duration::from_millis(100));
    drop((one, two));
    let inventory = stack.expect_nothing_left();
    assert_eq!(inventory.requests_to(Endpoint::DeleteSession), 2);
}

#[test]
fn in_sessions_mode_a_token_that_expires_unclaimed_deletes_its_session_and_the_deployment_stops() {
    let stack = Stack::start(true, &[], in_mode(EdgegapMode::Sessions), |c| c.tokens.ttl_secs = 2);
    stack.join_ready();
    assert_eq!(stack.fake.inventory().sessions.len(), 1);
    // Nobody connects: the token expires, its seat and session are given back.
    let inventory = stack.expect_nothing_left();
    assert_eq!(inventory.requests_to(Endpoint::DeleteSession), 1);
}

#[test]
fn in_sessions_mode_a_session_create_that_fails_fails_the_join_and_leaves_nothing() {
    for fault in ["create_session:server_error_rate=1", "create_session:rate_limited_rate=1"] {
        let stack = Stack::start(true, &["--fault", fault], in_mode(EdgegapMode::Sessions), |_| {});
        let answer = stack.join();
        assert_eq!(answer["error"]["data"]["code"], "server_failed", "{fault}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default().to_string();
        assert!(message.contains("Edgegap"), "{fault}: the player is told why: {answer}");
        let inventory = stack.expect_nothing_left();
        assert_eq!(inventory.deployments_created, 1, "{fault}: the server is not relaunched for a refused seat");
    }
}

#[test]
fn in_sessions_mode_a_session_create_that_times_out_fails_the_join_and_leaves_nothing() {
    let stack = Stack::start(
        true,
        &["--fault", "create_session:timeout_rate=1", "--fault", "create_session:timeout_ms=4000"],
        |c| {
            c.mode = EdgegapMode::Sessions;
            c.client.timeout = Duration::from_millis(700);
        },
        |_| {},
    );
    let answer = stack.join();
    assert_eq!(answer["error"]["data"]["code"], "server_failed", "{answer}");
    stack.expect_nothing_left();
}

#[test]
fn in_sessions_mode_passing_session_read_and_delete_errors_are_retried() {
    let stack = Stack::start(
        true,
        &[
            "--fault",
            "get_session:server_error_rate=1",
            "--fault",
            "get_session:max_faults=2",
            "--fault",
            "delete_session:server_error_rate=1",
            "--fault",
            "delete_session:max_faults=2",
        ],
        in_mode(EdgegapMode::Sessions),
        |c| c.tokens.ttl_secs = 2,
    );
    stack.join_ready();
    let inventory = stack.expect_nothing_left();
    assert_eq!(inventory.faults_injected.values().sum::<u32>(), 4, "{inventory:?}");
}

// Webhooks: Edgegap's calls cut the status polling short.

#[test]
fn a_webhook_makes_the_provider_notice_a_failed_deployment_at_once_and_a_wrong_path_does_nothing() {
    let port = bevygap_testkit::free_tcp_port();
    let secret = format!("{:016x}", rand::random::<u64>());
    let webhook = EdgegapWebhook {
        public_url: format!("http://127.0.0.1:{port}/edgegap/{secret}"),
        bind: format!("127.0.0.1:{port}").parse().expect("addr"),
    };
    // Status reads back off from 10 minutes: without the webhook, no ERROR would be seen
    // before the join's deadline.
    let stack = Stack::start(
        false,
        &["--deploy-error-rate", "1"],
        move |c| {
            c.webhook = Some(webhook);
            c.timing.status = bevygap_matchmaker::providers::edgegap::Backoff::new(
                Duration::from_secs(600),
                Duration::from_secs(600),
            );
        },
        // Nor would the matchmaker give the servers up for not starting.
        |c| c.servers.start_timeout = Duration::from_secs(600),
    );
    let inventory = expect_player_error(&stack, "server_failed");
    assert_eq!(inventory.deployments_created, 3, "each ERROR was noticed through its webhook");
    assert_eq!(inventory.requests_to(Endpoint::StopDeployment), 3);

    // A call to any other path is refused and wakes nothing (once the stopped deployments'
    // last status reads are done).
    let statuses = wait_for("status reads to settle", || {
        let before = stack.fake.inventory().requests_to(Endpoint::DeploymentStatus);
        std::thread::sleep(Duration::from_millis(500));
        (stack.fake.inventory().requests_to(Endpoint::DeploymentStatus) == before).then_some(before)
    });
    let wrong = agent()
        .post(format!("http://127.0.0.1:{port}/edgegap/not-the-secret"))
        .header("content-type", "application/json")
        .send(r#"{"request_id":"000000000000"}"#)
        .expect("an answer");
    assert_eq!(wrong.status(), 404);
    let right = agent()
        .post(format!("http://127.0.0.1:{port}/edgegap/{secret}"))
        .header("content-type", "application/json")
        .send("not json")
        .expect("an answer");
    assert_eq!(right.status(), 204, "the right path is acknowledged even when the body names nothing");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(stack.fake.inventory().requests_to(Endpoint::DeploymentStatus), statuses);
}
