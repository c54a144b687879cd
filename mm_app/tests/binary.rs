//! The `bevygap-matchmaker` binary itself: `--help`, config errors, and the one-machine
//! default (its own nats-server and local game servers), stopped cleanly by SIGTERM.

mod support;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_bevygap-matchmaker");

#[test]
fn help_lists_every_setting_with_its_env_var() {
    let out = Command::new(BIN).arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "BEVYGAP_NAMESPACE",
        "BEVYGAP_GAMES",
        "BEVYGAP_PUBLIC_ADDR",
        "BEVYGAP_ADMIN_ADDR",
        "BEVYGAP_ADMIN_TOKEN",
        "BEVYGAP_TRUSTED_PROXIES",
        "BEVYGAP_DEV_MODE",
        "BEVYGAP_CORS_ORIGIN",
        "BEVYGAP_MAX_BODY_BYTES",
        "BEVYGAP_RATE_PER_MINUTE",
        "BEVYGAP_MAX_WAITING",
        "BEVYGAP_JOIN_DEADLINE_SECS",
        "BEVYGAP_TOKEN_TTL_SECS",
        "BEVYGAP_GAME_SERVER_CMD",
        "BEVYGAP_SERVER_CAPACITY",
        "BEVYGAP_MAX_SERVERS",
        "BEVYGAP_EMPTY_GRACE_SECS",
        "BEVYGAP_SERVER_CREDENTIAL_KEY",
        "BEVYGAP_SERVER_CREDENTIAL_HOURS",
        "BEVYGAP_AUTH_CALLOUT_ISSUER_SEED",
        "BEVYGAP_AUTH_CALLOUT_USER",
        "BEVYGAP_AUTH_CALLOUT_PASSWORD",
        "BEVYGAP_AUTH_CALLOUT_ACCOUNT",
        "BEVYGAP_NATS_REPLICAS",
        "BEVYGAP_LEASE_SECS",
        "BEVYGAP_REPLICA_NAME",
        "BEVYGAP_LOG_FORMAT",
    ] {
        assert!(help.contains(var), "--help does not mention {var}");
    }
    assert!(help.contains("[default: 0.0.0.0:7800]"), "defaults are shown");
}

#[test]
fn bad_config_fails_at_start_naming_the_setting() {
    let out = Command::new(BIN).env("BEVYGAP_ADMIN_ADDR", "0.0.0.0:15999").output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BEVYGAP_ADMIN_TOKEN"));
    let out = Command::new(BIN).env("LIGHTYEAR_PRIVATE_KEY", "short").output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LIGHTYEAR_PRIVATE_KEY"));
    let out = Command::new(BIN).env("BEVYGAP_DEV_MODE", "true").env("NATS_USER", "only-user").output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NATS_PASSWORD"));
}

#[test]
fn check_profiles_lists_each_games_profiles_or_names_the_bad_field_and_starts_nothing() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/profiles.example.json");
    let out = Command::new(BIN).args(["--check-profiles", "--profiles", example]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "demo:1.0: drop_in, duel, ranked_2v2\n");
    let bad = std::env::temp_dir().join(format!("bevygap-bad-profiles-{:08x}.json", rand::random::<u32>()));
    std::fs::write(
        &bad,
        r#"{ "demo:1.0": [ { "name": "duel", "kind": "match", "max_wait_secs": 5,
        "teams": { "count": 0, "min_size": 1, "max_size": 1 } } ] }"#,
    )
    .expect("write");
    let out = Command::new(BIN).arg("--check-profiles").env("BEVYGAP_PROFILES", &bad).output().expect("runs");
    let _ = std::fs::remove_file(&bad);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("BEVYGAP_PROFILES") && stderr.contains("demo:1.0[0].teams.count"), "{stderr}");
}

#[test]
fn without_a_key_it_refuses_to_start_unless_in_development_mode() {
    let out = Command::new(BIN)
        .env_remove("LIGHTYEAR_PRIVATE_KEY")
        .env_remove("LIGHTYEAR_PRIVATE_KEY_FILE")
        .env_remove("BEVYGAP_DEV_MODE")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "the all-zero key is refused in production");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("LIGHTYEAR_PRIVATE_KEY") && stderr.contains("BEVYGAP_DEV_MODE"), "{stderr}");
}

#[test]
fn with_no_nats_url_it_runs_its_own_nats_and_game_servers_and_stops_them_all_logging_json_lines() {
    let public = bevygap_testkit::free_tcp_port();
    let admin = bevygap_testkit::free_tcp_port();
    let mut child = Command::new(BIN)
        .env_remove("NATS_URL")
        .env("BEVYGAP_PUBLIC_ADDR", format!("127.0.0.1:{public}"))
        .env("BEVYGAP_ADMIN_ADDR", format!("127.0.0.1:{admin}"))
        .env("BEVYGAP_NAMESPACE", "binary-test")
        .env("BEVYGAP_GAME_SERVER_CMD", stand_in_server().display().to_string())
        .env("RUST_LOG", "debug")
        .env("BEVYGAP_LOG_FORMAT", "json")
        .env("LIGHTYEAR_PROTOCOL_ID", "5")
        .env("LIGHTYEAR_PRIVATE_KEY", "ab".repeat(32))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("matchmaker starts");
    let stderr_pipe = child.stderr.take().expect("piped");
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr_pipe)).map_while(Result::ok) {
            let _ = lines_tx.send(line.clone());
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    bevygap_testkit::wait_for(Duration::from_secs(60), "the matchmaker to listen", || {
        assert!(child.try_wait().ok().flatten().is_none(), "the matchmaker exited early");
        TcpStream::connect(("127.0.0.1", public)).ok()
    });
    let url = format!("http://127.0.0.1:{public}");
    let params = json!({"game": GAME, "version": VERSION, "request_id": "life-of-a-join-0001"});
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join", "params": params});
    let (status, body) = post(&url, &request.to_string(), None);
    assert_eq!(status, 200);
    assert_eq!(body["result"]["status"], "ready", "{body}");

    // Its game servers run on this host, so the admin endpoint wants this run's token, shown
    // once on the terminal as the dashboard link.
    let admin_url = format!("http://127.0.0.1:{admin}");
    let token = lines
        .iter()
        .find_map(|line| line.split("/#token=").nth(1).map(|t| t.split_whitespace().next().unwrap_or("").to_string()))
        .expect("the admin token is shown");
    let stats = json!({"jsonrpc": "2.0", "id": 1, "method": "admin.stats"}).to_string();
    assert_eq!(post(&admin_url, &stats, None).0, 401, "a local process without the token is refused");
    let (status, body) = post(&admin_url, &stats, Some(&token));
    assert_eq!(status, 200, "{body}");

    bevygap_testkit::send_signal(&child, libc::SIGTERM).expect("SIGTERM");
    let status = bevygap_testkit::wait_for(Duration::from_secs(30), "the matchmaker to exit on SIGTERM", || {
        child.try_wait().ok().flatten()
    });
    let stderr = stderr_reader.join().expect("stderr read");
    assert!(status.success(), "exit status {status}: {stderr}");
    let nats_url = stderr
        .lines()
        .find_map(|l| l.split("embedded nats-server at ").nth(1))
        .expect("it announced its embedded nats-server")
        .trim()
        .to_string();
    let port: u16 = nats_url.rsplit(':').next().unwrap().parse().unwrap();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "the embedded nats-server was stopped");
    // Every log line is one JSON object (what the process itself prints for the operator,
    // the addresses and the token link, is plain text), its fields as keys.
    let logs: Vec<serde_json::Value> =
        stderr.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert!(logs.iter().any(|l| l["level"] == "INFO"), "logs were captured: {stderr}");
    let started = logs.iter().find(|l| l["fields"]["message"] == "server starting -> ready").expect("a server line");
    assert!(started["fields"]["server_id"].as_str().is_some_and(|id| id.starts_with("local-")), "{started}");
    assert!(stderr.lines().all(|l| l.starts_with('{') || l.starts_with("bevygap-matchmaker: ")), "{stderr}");
    // A join's life can be followed by its request id, and once it has a seat, by its server
    // id too, on every line.
    let life: Vec<&serde_json::Value> =
        logs.iter().filter(|l| l["fields"]["request_id"] == "life-of-a-join-0001").collect();
    let messages: Vec<&str> = life.iter().filter_map(|l| l["fields"]["message"].as_str()).collect();
    assert_eq!(messages, ["join queued", "seat reserved", "token issued", "join ready"], "{stderr}");
    let server_id = life[1]["fields"]["server_id"].as_str().expect("the seat's server").to_string();
    assert!(life[1..].iter().all(|l| l["fields"]["server_id"] == server_id.as_str()), "{life:?}");
    let client_id = life[1]["fields"]["client_id"].clone();
    let about_the_client: Vec<_> = logs.iter().filter(|l| l["fields"]["client_id"] == client_id).collect();
    assert!(
        about_the_client.iter().all(|l| l["fields"]["request_id"] == "life-of-a-join-0001"),
        "every line about its client names the join: {about_the_client:?}"
    );
    assert!(!stderr.contains(&"ab".repeat(32)), "no key material in logs");
    assert_eq!(stderr.matches(token.as_str()).count(), 1, "the admin token is shown once, never logged");
}

#[test]
fn it_issues_a_fleet_servers_own_nats_credentials_from_the_credential_key() {
    const KEY: &str = "0707070707070707070707070707070707070707070707070707070707070707";
    let out = Command::new(BIN)
        .env("BEVYGAP_NAMESPACE", "spaceships")
        .env("BEVYGAP_SERVER_CREDENTIAL_KEY", KEY)
        .args(["--issue-server-credentials", "fleet-eu-1"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let var = |name: &str| stdout.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).expect(name).to_string();
    assert_eq!(var("NATS_USER"), "fleet-eu-1");
    let key = bevygap_shared::nats::server_credentials::ServerCredentialKey::from_hex(KEY).unwrap();
    let names = bevygap_shared::Namespace::new("spaceships").unwrap().names();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let verified =
        bevygap_shared::nats::server_credentials::verify(&key, &names, "fleet-eu-1", &var("NATS_PASSWORD"), now);
    assert!(verified.is_ok_and(|(id, _)| id.as_str() == "fleet-eu-1"), "the callout accepts them");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(KEY));

    let out = Command::new(BIN)
        .env_remove("BEVYGAP_SERVER_CREDENTIAL_KEY")
        .args(["--issue-server-credentials", "fleet-eu-1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BEVYGAP_SERVER_CREDENTIAL_KEY"));
}

#[test]
fn the_shipped_cluster_node_config_is_one_nats_server_accepts() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/nats");
    let out = Command::new("nats-server")
        .args(["-t", "-c", "cluster-node.conf"])
        .current_dir(dir)
        .output()
        .expect("nats-server runs (scripts/ensure-nats-server)");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("is valid"), "{said}");
}
