//! The self-hosted topology of `deploy/docker-compose.yml`, run for real without Docker: NATS,
//! the matchmaker and two fleet game servers each on its own host (a network namespace with
//! its own address on a private LAN: a bridge joined by veth pairs), configured from the kit's
//! own env files, and two demo clients on a fifth host who join, meet and play. So the NATS
//! URLs, the addresses game servers advertise and the client address the matchmaker sees all
//! cross a network as they would between machines.
//!
//! Needs root and `ip` (iproute2): where network namespaces cannot be made it fails, saying
//! so, rather than passing untested (CI and `scripts/test` run as root, where they can).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const SUBNET: &str = "10.77.0";
const NATS: usize = 1;
const MATCHMAKER: usize = 2;
const SERVER_1: usize = 3;
const SERVER_2: usize = 4;
const PLAYERS: usize = 5;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn addr(host: usize) -> String {
    format!("{SUBNET}.{host}")
}

fn ip(args: &[&str]) -> Output {
    Command::new("ip").args(args).output().expect("ip (iproute2) runs")
}

fn ip_ok(args: &[&str]) {
    let out = ip(args);
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// `KEY=VALUE` lines of one of the kit's env files (comments and blank lines skipped).
fn env_file(name: &str) -> BTreeMap<String, String> {
    let path = workspace().join("deploy/env").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

/// Five hosts on one LAN; every namespace (and so every veth and the bridge) and every
/// process started in them goes when this is dropped.
struct Lan {
    tag: String,
    children: Vec<(String, Child)>,
    dir: PathBuf,
}

impl Lan {
    /// Panics, saying why, when this machine cannot make network namespaces (not root, no
    /// iproute2).
    fn up() -> Self {
        let tag = format!("bg{}", std::process::id() % 100_000);
        let probe = format!("{tag}-probe");
        let needs = "this test needs root and network namespaces (`ip netns`, iproute2); run it as root";
        match Command::new("ip").args(["netns", "add", &probe]).output() {
            Ok(out) if out.status.success() => {
                ip(&["netns", "del", &probe]);
            }
            Ok(out) => panic!("{needs}: `ip netns add` failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
            Err(e) => panic!("{needs}: cannot run ip: {e}"),
        }
        let dir = std::env::temp_dir().join(format!("{tag}-topology"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let lan = Lan { tag, children: Vec::new(), dir };
        let switch = lan.ns("lan");
        ip_ok(&["netns", "add", &switch]);
        ip_ok(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip_ok(&["-n", &switch, "link", "set", "br0", "up"]);
        for host in [NATS, MATCHMAKER, SERVER_1, SERVER_2, PLAYERS] {
            let ns = lan.ns(&host.to_string());
            let (inside, port) = (format!("{}h{host}", lan.tag), format!("{}s{host}", lan.tag));
            ip_ok(&["netns", "add", &ns]);
            ip_ok(&["link", "add", &inside, "netns", &ns, "type", "veth", "peer", "name", &port, "netns", &switch]);
            ip_ok(&["-n", &switch, "link", "set", &port, "master", "br0", "up"]);
            ip_ok(&["-n", &ns, "addr", "add", &format!("{}/24", addr(host)), "dev", &inside]);
            ip_ok(&["-n", &ns, "link", "set", &inside, "up"]);
            ip_ok(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        lan
    }

    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.tag)
    }

    /// `program args` on `host` with exactly `env` (plus PATH), output to a log file.
    fn command(&self, host: usize, program: &Path, args: &[&str], env: &BTreeMap<String, String>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(&host.to_string())]).arg(program).args(args);
        cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).envs(env);
        cmd
    }

    fn spawn(&mut self, name: &str, mut cmd: Command) {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).expect("a log file");
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().expect("the process starts");
        self.children.push((name.to_string(), child));
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    fn logs(&self) -> String {
        self.children.iter().map(|(name, _)| format!("--- {name}\n{}\n", self.log(name))).collect()
    }

    /// Waits until `check` passes or `secs` go by (then fails with every log).
    fn wait_for(&self, secs: u64, what: &str, mut check: impl FnMut() -> bool) {
        let waited = bevygap_testkit::try_wait_for(Duration::from_secs(secs), what, || check().then_some(()));
        if let Err(timed_out) = waited {
            panic!("{timed_out}\n{}", self.logs());
        }
    }

    /// A JSON-RPC call from the players' host, over the LAN, with curl.
    fn rpc(&self, url: &str, token: Option<&str>, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut args: Vec<String> =
            ["netns", "exec", &self.ns(&PLAYERS.to_string()), "curl", "-s", "-m", "5"].map(String::from).to_vec();
        if let Some(token) = token {
            args.extend(["-H".into(), format!("authorization: Bearer {token}")]);
        }
        args.extend(["-d".into(), body.to_string(), url.into()]);
        let out = Command::new("ip").args(&args).output().expect("curl runs");
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for host in ["lan", "1", "2", "3", "4", "5"] {
            ip(&["netns", "del", &self.ns(host)]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn nats_the_matchmaker_two_fleet_servers_and_players_on_five_hosts_play_as_on_separate_machines() {
    let mut lan = Lan::up();
    let client = PathBuf::from(env!("CARGO_BIN_EXE_bevygap-demo-client"));
    let server = client.with_file_name("bevygap-demo-server");
    let matchmaker = bevygap_testkit::workspace_binary("bevygap_matchmaker", "bevygap-matchmaker");
    let key_file = lan.dir.join("lightyear.key");
    std::fs::write(&key_file, "5e".repeat(32)).expect("the key file");
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&key_file).expect("the key file").permissions(),
        0o600,
    );
    let key_file = key_file.display().to_string();
    let admin_token = format!("{:032x}", std::process::id() as u128 * 0x9e37_79b9_7f4a_7c15);
    let nats_url = format!("nats://{}:4222", addr(NATS));

    // NATS with the shipped least-privilege roles.
    let conf = workspace().join("assets/nats/bevygap.conf");
    let store = lan.dir.join("jetstream").display().to_string();
    let nats = lan.command(
        NATS,
        Path::new("nats-server"),
        &["-c", &conf.display().to_string(), "-js", "-sd", &store, "-a", &addr(NATS), "-p", "4222"],
        &BTreeMap::new(),
    );
    lan.spawn("nats", nats);
    // The matchmaker exits when NATS refuses it at start (compose and systemd restart it); the
    // game servers retry by themselves.
    lan.wait_for(30, "NATS to listen on the LAN", || lan.log("nats").contains("Server is ready"));

    // The matchmaker, from the kit's env file; what differs on this LAN is set here.
    let mut mm_env = env_file("matchmaker.env");
    mm_env.extend([
        ("NATS_URL".to_string(), nats_url.clone()),
        ("BEVYGAP_ADMIN_TOKEN".to_string(), admin_token.clone()),
        ("LIGHTYEAR_PRIVATE_KEY_FILE".to_string(), key_file.clone()),
        ("BEVYGAP_EMPTY_GRACE_SECS".to_string(), "2".to_string()),
    ]);
    let mm = lan.command(MATCHMAKER, &matchmaker, &[], &mm_env);
    lan.spawn("matchmaker", mm);

    // Two fleet servers, as the compose file sets them up, advertising their LAN addresses.
    for (host, id, udp, wt) in [(SERVER_1, "fleet-1", 6420, 6421), (SERVER_2, "fleet-2", 6430, 6431)] {
        let mut env = env_file("gameserver.env");
        env.extend([
            ("NATS_URL".to_string(), nats_url.clone()),
            ("BEVYGAP_SERVER_ID".to_string(), id.to_string()),
            ("BEVYGAP_UDP_BIND".to_string(), format!("0.0.0.0:{udp}")),
            ("BEVYGAP_UDP_PUBLIC".to_string(), format!("{}:{udp}", addr(host))),
            ("BEVYGAP_WT_BIND".to_string(), format!("0.0.0.0:{wt}")),
            ("BEVYGAP_WT_PUBLIC".to_string(), format!("{}:{wt}", addr(host))),
            ("LIGHTYEAR_PRIVATE_KEY_FILE".to_string(), key_file.clone()),
        ]);
        let cmd = lan.command(host, &server, &[], &env);
        lan.spawn(id, cmd);
    }

    // Both servers registered with the matchmaker over the LAN.
    let admin = format!("http://{}:15702", addr(MATCHMAKER));
    lan.wait_for(60, "both fleet servers to be ready in the matchmaker", || {
        let servers = lan.rpc(&admin, Some(&admin_token), "admin.servers", Value::Null);
        let ready = servers["result"]["servers"].as_array().map(|s| s.iter().filter(|s| s["phase"] == "ready").count());
        ready == Some(2)
    });
    assert_eq!(
        lan.rpc(&admin, None, "admin.servers", Value::Null)["result"],
        Value::Null,
        "the admin endpoint wants its token"
    );

    // Two players on their own host join through the matchmaker's LAN address.
    let public = format!("http://{}:7800", addr(MATCHMAKER));
    let players: Vec<Child> = ["alice", "bob"]
        .into_iter()
        .map(|name| {
            lan.command(
                PLAYERS,
                &client,
                // One party: the fleet spreads players over its servers, a party plays together.
                &[
                    "--name",
                    name,
                    "--party",
                    "friends",
                    "--matchmaker",
                    &public,
                    "--expect-others",
                    "1",
                    "--play-secs",
                    "2",
                ],
                &BTreeMap::new(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("a demo client starts")
        })
        .collect();
    let outputs: Vec<Output> = players.into_iter().map(|p| p.wait_with_output().expect("the client ends")).collect();
    let printed: Vec<String> = outputs.iter().map(|o| String::from_utf8_lossy(&o.stdout).to_string()).collect();
    for (output, text) in outputs.iter().zip(&printed) {
        assert!(output.status.success(), "{text}\n{}\n{}", String::from_utf8_lossy(&output.stderr), lan.logs());
    }
    // Both played on one server, at the address it advertised on the LAN.
    let played_on = |text: &str| {
        text.lines()
            .find_map(|l| l.split("playing on ").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    };
    let (alice_on, bob_on) = (played_on(&printed[0]), played_on(&printed[1]));
    assert_eq!(alice_on, bob_on, "{printed:?}");
    let on = alice_on.unwrap_or_default();
    assert!(
        on == format!("{}:6420", addr(SERVER_1)) || on == format!("{}:6430", addr(SERVER_2)),
        "a fleet server's advertised address, not {on}"
    );
    assert!(printed[0].contains("[alice] bob says: hi alice, I am bob!"), "{}", printed[0]);
    assert!(printed[1].contains("[bob] alice says: hi bob, I am alice!"), "{}", printed[1]);

    // The matchmaker saw the players' own address (they came from another host, no proxy).
    let joins = lan.rpc(&admin, Some(&admin_token), "world.query", json!({"data": {"components": ["bevygap::Join"]}}));
    let ips: Vec<&Value> = joins["result"]
        .as_array()
        .map(|rows| rows.iter().map(|r| &r["components"]["bevygap::Join"]["client_ip"]).collect())
        .unwrap_or_default();
    assert_eq!(ips, vec![&json!(addr(PLAYERS)); 2], "{joins}");

    // They left: their seats are free on the fleet server, which stays up (the fleet is yours).
    lan.wait_for(30, "the players' seats to be freed", || {
        let servers = lan.rpc(&admin, Some(&admin_token), "admin.servers", Value::Null);
        servers["result"]["servers"]
            .as_array()
            .is_some_and(|s| s.len() == 2 && s.iter().all(|s| s["taken"] == 0 && s["phase"] == "ready"))
    });
    assert!(lan.log("nats").contains("Server is ready"), "{}", lan.log("nats"));
}
