//! Server lifecycle against a real matchmaker, real NATS and real processes: seat filling,
//! crashes, servers that never start or vanish, and records that expire in real KV. Timer-heavy
//! cases (token expiry, empty-server grace) are stepped with manual time in `lifecycle.rs`.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

fn session_server(mm: &Matchmaker, body: &Value) -> (String, u64) {
    let ready = &body["result"];
    assert_eq!(ready["status"], "ready", "{body}");
    let session = mm.session(ready["session_id"].as_str().unwrap()).expect("session record");
    (session.server_id.to_string(), session.client_ids[0])
}

fn join(mm: &Matchmaker) -> Value {
    mm.join(json!({"game": GAME, "version": VERSION}))
}

#[test]
fn fills_a_server_before_starting_a_second() {
    let mm = Matchmaker::start(|c| c.servers.capacity = 2);
    let a = session_server(&mm, &join(&mm)).0;
    let b = session_server(&mm, &join(&mm)).0;
    let c = session_server(&mm, &join(&mm)).0;
    assert_eq!(a, b, "the second player fills the first server");
    assert_ne!(a, c, "the third player gets a new server");
    assert_eq!(mm.servers().len(), 2);
    assert_eq!(mm.keys(&mm.kv.servers).len(), 2);
}

#[test]
fn a_crashed_server_is_cleaned_up() {
    let mm = Matchmaker::start(|c| c.local.command.extend(["--exit-after-ms".into(), "1500".into()]));
    let body = join(&mm);
    let (server, client) = session_server(&mm, &body);
    mm.player_joins(&server, client, body["result"]["session_id"].as_str().unwrap());
    mm.wait_for(30, "the crashed server to be forgotten", |mm| mm.servers().is_empty().then_some(()));
    mm.wait_for(10, "its records to be removed", |mm| {
        (mm.keys(&mm.kv.servers).is_empty()
            && mm.keys(&mm.kv.clients).is_empty()
            && mm.keys(&mm.kv.players).is_empty()
            && mm.keys(&mm.kv.sessions).is_empty())
        .then_some(())
    });
}

#[test]
fn a_join_waiting_on_a_server_that_dies_is_placed_again() {
    let marker = tempfile_path("crash-once");
    let mm = Matchmaker::start(|c| c.local.command.extend(["--crash-once".into(), marker.clone()]));
    let events = mm.join_stream(json!({"game": GAME, "version": VERSION}));
    let statuses: Vec<&str> = events.iter().map(|e| e["result"]["status"].as_str().unwrap_or("error")).collect();
    let restarted =
        statuses.iter().position(|s| *s == "finding_server").unwrap_or_else(|| panic!("not re-placed: {events:?}"));
    assert!(statuses[..restarted].contains(&"server_starting"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"ready"), "{statuses:?}");
    assert_eq!(mm.keys(&mm.kv.servers).len(), 1, "only the healthy server remains");
}

#[test]
fn a_server_that_never_gets_ready_fails_the_join_without_looping() {
    let mm = Matchmaker::start(|c| {
        c.local.command.push("--never-ready".into());
        c.servers.start_timeout = Duration::from_secs(1);
    });
    let body = join(&mm);
    assert_eq!(body["error"]["data"]["code"], "server_failed", "{body}");
    mm.wait_for(20, "the failed servers to be stopped", |mm| mm.provider.running().is_empty().then_some(()));
}

fn tempfile_path(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("bevygap-{name}-{:016x}", rand::random::<u64>()));
    dir.display().to_string()
}

#[test]
fn a_server_whose_record_vanishes_is_held_not_killed_and_returns_when_it_reports() {
    let mm = Matchmaker::start(|_| {});
    let (server, _) = session_server(&mm, &join(&mm));
    mm.rt.block_on(mm.kv.servers.delete(&server)).unwrap(); // as a NATS outage would expire it
    mm.wait_for(10, "the server to be held as unreported", |mm| {
        mm.servers().first().filter(|s| s["phase"] == "unreported").map(|_| ())
    });
    assert_eq!(mm.provider.running().len(), 1, "the game server was not stopped");
    mm.wait_for(20, "the server to report again", |mm| {
        mm.servers().first().filter(|s| s["phase"] == "ready").map(|_| ())
    });
    let (again, _) = session_server(&mm, &join(&mm));
    assert_eq!(again, server, "it takes players again");
}

#[test]
fn a_server_that_stays_unreported_is_given_up() {
    let mm = Matchmaker::start(|c| c.servers.silence_grace = Duration::from_secs(1));
    // A server this matchmaker did not launch (another replica's, or from before a restart),
    // of its own provider kind: only its record speaks for it.
    let record = bevygap_shared::records::ServerRecord {
        server_id: bevygap_shared::ServerId::new("ghost-1").unwrap(),
        game: bevygap_shared::protocol::GameName::new(GAME).unwrap(),
        version: bevygap_shared::protocol::GameVersion::new(VERSION).unwrap(),
        provider: "local".into(),
        addresses: Default::default(),
        cert_digest: None,
        cert_not_after: None,
        capacity: 4,
        status: bevygap_shared::records::ServerStatus::Ready,
        started_at_ms: 0,
        heartbeat_at_ms: 0,
    };
    let bytes = serde_json::to_vec(&record).unwrap();
    mm.rt.block_on(mm.kv.servers.put("ghost-1", bytes.into())).unwrap();
    mm.wait_for(10, "the server to be adopted", |mm| {
        mm.servers().iter().any(|s| s["server_id"] == "ghost-1").then_some(())
    });
    mm.rt.block_on(mm.kv.servers.delete("ghost-1")).unwrap();
    mm.wait_for(10, "the silent server to be given up", |mm| mm.servers().is_empty().then_some(()));
}

#[test]
fn a_server_whose_heartbeats_stop_is_given_up_when_its_record_expires() {
    let mm = Matchmaker::start(|c| {
        c.local.command.extend(["--mute-after-ms".into(), "2500".into()]);
        c.servers.silence_grace = Duration::from_secs(1);
        c.servers.empty_grace = Duration::from_secs(600); // only the expiry can end it
    });
    let (server, _) = session_server(&mm, &join(&mm));
    // The bucket's max age (30 s) expires the silent server's record; the expiry marker reaches
    // the matchmaker's watch, which holds the server, then gives it up and stops the process.
    mm.wait_for(60, "the hung server to be given up", |mm| {
        mm.servers().iter().all(|s| s["server_id"] != server.as_str()).then_some(())
    });
    mm.wait_for(20, "its process to be stopped", |mm| mm.provider.running().is_empty().then_some(()));
}

/// Pids of this process's children (the in-process matchmaker's game servers).
fn child_pids() -> Vec<u32> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        pids.extend(children.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    pids
}

#[test]
fn a_game_server_gets_its_key_through_a_private_file_never_in_its_environment() {
    let mm = Matchmaker::start(|_| {});
    assert_eq!(join(&mm)["result"]["status"], "ready");
    let environs: Vec<String> = child_pids()
        .into_iter()
        .filter_map(|pid| std::fs::read(format!("/proc/{pid}/environ")).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', "\n"))
        .filter(|env| env.lines().any(|l| l == format!("BEVYGAP_NAMESPACE={}", mm.namespace)))
        .collect();
    assert_eq!(environs.len(), 1, "this matchmaker's one game server (other tests run theirs alongside)");
    let environ = &environs[0];
    let key_hex: String = test_keys().private_key.to_hex();
    assert!(!environ.contains(&key_hex), "the private key is not readable in /proc/<pid>/environ");
    assert!(!environ.contains("LIGHTYEAR_PRIVATE_KEY="));
    let path = environ.lines().find_map(|l| l.strip_prefix("LIGHTYEAR_PRIVATE_KEY_FILE=")).expect("a key file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(path).unwrap(), key_hex);
}

/// The shipped per-server NATS configuration for `namespace`, with a fresh callout issuer.
fn per_server_nats(namespace: &str) -> (bevygap_shared::nats::NatsServer, nkeys::KeyPair) {
    const CONF: &str = include_str!("../../assets/nats/bevygap-per-server.conf");
    let issuer = nkeys::KeyPair::new_account();
    let conf = CONF
        .replace("REPLACE-WITH-THE-ISSUER-ACCOUNT-PUBLIC-KEY", &issuer.public_key())
        .replace("spaceships", namespace);
    (bevygap_shared::nats::NatsServer::start_with_config(&conf).expect("nats-server"), issuer)
}

#[test]
fn with_per_server_credentials_each_launched_server_connects_as_itself_and_its_players_get_in() {
    use bevygap_matchmaker::config::MatchmakerConfig;
    use bevygap_matchmaker::harness::LocalMatchmaker;
    use bevygap_matchmaker::servers::{AuthCalloutConfig, ServerCredentialConfig};
    use bevygap_shared::Secret;
    use bevygap_shared::nats::server_credentials::ServerCredentialKey;
    use bevygap_shared::nats::{NatsAuth, NatsConfig};
    use bevygap_testkit::lightyear_client::{Dial, connecting_client, decode_connect_token};
    use lightyear::prelude::Connected;

    let namespace = format!("t{:08x}", rand::random::<u32>());
    let (nats, issuer) = per_server_nats(&namespace);
    let mut config = MatchmakerConfig::for_tests(&namespace, vec![demo_server().display().to_string()]);
    config.server_credentials = Some(ServerCredentialConfig {
        namespace: config.namespace.clone(),
        key: ServerCredentialKey::from_bytes([7; 32]),
        lifetime: Duration::from_secs(3600),
        callout: Some(AuthCalloutConfig {
            issuer_seed: Secret::new(issuer.seed().expect("seed")),
            user: "auth".into(),
            password: Secret::new("change-me-auth"),
            account: format!("bevygap_{namespace}"),
        }),
    });
    // No shared game-server credentials anywhere: only what the matchmaker issues.
    let provider = local_provider(&config, nats.url());
    let mut nats_config = NatsConfig::new(nats.url(), "bevygap-matchmaker");
    nats_config.auth =
        NatsAuth::UserPassword { user: "matchmaker".into(), password: Secret::new("change-me-matchmaker") };
    let mm = LocalMatchmaker::start_with_nats_config(Some(nats), nats_config, provider, config, test_keys(), |_| {})
        .expect("the matchmaker starts and runs the auth callout");

    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join",
                      "params": {"game": GAME, "version": VERSION, "transport": "udp"}});
    let (status, answer) = post(&mm.public_url(), &body.to_string(), None);
    assert_eq!((status, &answer["result"]["status"]), (200, &json!("ready")), "{answer}");

    // The server connected as itself: its environment names its own user and password.
    let environ = child_pids()
        .into_iter()
        .filter_map(|pid| std::fs::read(format!("/proc/{pid}/environ")).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', "\n"))
        .find(|env| env.lines().any(|l| l == format!("BEVYGAP_NAMESPACE={namespace}")))
        .expect("the game server's environment");
    let var = |name: &str| environ.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).map(str::to_string);
    assert_eq!(var("NATS_USER"), var("BEVYGAP_SERVER_ID"), "the server's NATS user is its own id");
    assert!(var("NATS_PASSWORD").is_some_and(|p| p.starts_with("v1.")), "an issued password");
    assert!(!environ.contains("change-me-matchmaker") && !environ.contains("change-me-auth"));

    // A real client gets in: the server read its grant with its own credentials.
    let token = decode_connect_token(answer["result"]["connect_token"].as_str().expect("a token"));
    let (mut client, entity) = connecting_client(token, Dial::Udp);
    bevygap_testkit::expect_step_until(
        &mut [&mut client],
        bevygap_testkit::DEADLINE,
        "the client to connect",
        |apps| apps[0].world().get::<Connected>(entity).is_some(),
    );
}
