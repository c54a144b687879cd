//! Several `bevygap-matchmaker` processes on one namespace of a three-node NATS cluster (three
//! nats-server processes routed on loopback, every bucket replicated three times), placing
//! players on the `fake-edgegap` binary, whose deployments run the real demo game server:
//! joins sent to every replica are served by the one owning the namespace, with no server
//! overfilled, launched where one had room, or stopped twice; the owner's SIGKILL, SIGSTOP or
//! SIGTERM hands the namespace to another replica, and nothing is left behind.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevygap_shared::naming::Bucket;
use bevygap_testkit::lightyear_client::{Dial, connecting_client, decode_connect_token, disconnect};
use bevygap_testkit::{DEADLINE, NatsCluster, expect_step_until, step_for};
use fake_edgegap::Endpoint;
use lightyear::prelude::Connected;
use serde_json::{Value, json};
use support::edgegap::{FakeEdgegap, MatchmakerProcess, Setup, wait_for};
use support::{GAME, VERSION, agent, bucket_keys, post};

/// Seats per server in these tests.
const CAPACITY: usize = 4;

/// One test at a time: each runs a dozen processes, and on a loaded two-core machine several
/// at once could starve a replica's lease renewals.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A cluster, the fake (its deployments on the cluster) and a namespace.
struct Replicas {
    cluster: NatsCluster,
    fake: FakeEdgegap,
    namespace: String,
    /// Released last, once the cluster and the fake are gone.
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Replicas {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// With `fake_args` for the fake.
    fn start_with(fake_args: &[&str]) -> Self {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let cluster = NatsCluster::start(3).expect("three nats-servers");
        assert!(cluster.wait_for_jetstream(30), "the JetStream cluster formed");
        let fake = FakeEdgegap::start(Some(&cluster.urls()), fake_args);
        Self { cluster, fake, namespace: format!("t{:08x}", rand::random::<u32>()), _turn: turn }
    }

    /// Starts replica `name`; `vars` override the shared settings.
    fn replica(&self, name: &str, vars: &[(&str, &str)]) -> MatchmakerProcess {
        let setup = Setup { nats_url: self.cluster.urls(), fake: &self.fake, namespace: self.namespace.clone() };
        let capacity = CAPACITY.to_string();
        let mut all = vec![
            ("BEVYGAP_REPLICA_NAME", name),
            ("BEVYGAP_NATS_REPLICAS", "3"),
            ("BEVYGAP_LEASE_SECS", "4"),
            ("BEVYGAP_SERVER_CAPACITY", capacity.as_str()),
            ("BEVYGAP_TOKEN_TTL_SECS", "120"),
            ("BEVYGAP_MAX_JOINS_PER_IP", "64"),
            ("BEVYGAP_RATE_PER_MINUTE", "60000"),
            ("BEVYGAP_RATE_BURST", "1000"),
        ];
        all.retain(|(n, _)| !vars.iter().any(|(v, _)| v == n));
        all.extend_from_slice(vars);
        setup.start(&all)
    }

    fn keys(&self, bucket: Bucket) -> Vec<String> {
        bucket_keys(&self.cluster.nodes[0].url(), &self.namespace, bucket)
    }

    /// Grants (or player records) per server id, from their `<server>.<client>` keys.
    fn per_server(&self, bucket: Bucket) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for key in self.keys(bucket) {
            if let Some((server, _)) = key.rsplit_once('.') {
                *counts.entry(server.to_string()).or_insert(0) += 1;
            }
        }
        counts
    }
}

fn admin(replica: &MatchmakerProcess, method: &str) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}});
    let (status, answer) = post(&format!("http://{}", replica.admin_addr), &body.to_string(), None);
    assert_eq!(status, 200, "{answer}");
    answer["result"].clone()
}

/// The replica owning the namespace, as `replica` sees it (its admin calls are answered there).
fn owner(replica: &MatchmakerProcess) -> String {
    wait_for("a replica to own the namespace", || admin(replica, "admin.stats")["owner"].as_str().map(str::to_string))
}

/// One join through `replica`'s public endpoint; the result or the error.
fn join(replica: &MatchmakerProcess) -> Value {
    join_at(&replica.public_addr, json!({"game": GAME, "version": VERSION, "transport": "udp"}))
}

fn join_at(public_addr: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join", "params": params});
    let (_, answer) = post(&format!("http://{public_addr}"), &body.to_string(), None);
    answer
}

fn ready(answer: &Value) -> bool {
    answer["result"]["status"] == "ready"
}

#[test]
fn joins_sent_to_three_replicas_never_overfill_launch_or_stop_twice_and_every_replica_shows_the_whole_namespace() {
    let replicas = Replicas::start();
    let names = ["mm-a", "mm-b", "mm-c"];
    let processes: Vec<MatchmakerProcess> =
        names.iter().map(|name| replicas.replica(name, &[("BEVYGAP_EMPTY_GRACE_SECS", "1")])).collect();
    let owner_name = owner(&processes[0]);
    assert!(names.contains(&owner_name.as_str()), "{owner_name}");
    for process in &processes {
        assert_eq!(owner(process), owner_name, "every replica agrees on the owner");
    }

    // Eight players at once, spread over the three replicas: two servers of four seats.
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..2 * CAPACITY)
            .map(|i| {
                scope.spawn({
                    let process = &processes[i % processes.len()];
                    move || join(process)
                })
            })
            .collect();
        calls.into_iter().map(|call| call.join().expect("the join thread")).collect()
    });
    for answer in &answers {
        assert!(ready(answer), "every join is served: {answer}");
    }
    let inventory = replicas.fake.inventory();
    assert_eq!(inventory.deployments_created, 2, "two servers for eight players of four seats, not more");
    let grants = replicas.per_server(Bucket::Clients);
    assert_eq!(grants.values().sum::<usize>(), 2 * CAPACITY);
    assert!(grants.values().all(|&n| n <= CAPACITY), "no server was given more grants than seats: {grants:?}");

    // Every replica shows both servers and every session, each row naming the owner.
    for process in &processes {
        let servers = admin(process, "admin.servers")["servers"].as_array().cloned().unwrap_or_default();
        assert_eq!(servers.len(), 2, "{servers:?}");
        assert!(servers.iter().all(|s| s["owner"] == owner_name.as_str()), "{servers:?}");
        let sessions = admin(process, "admin.sessions")["sessions"].as_array().cloned().unwrap_or_default();
        assert_eq!(sessions.len(), 2 * CAPACITY);
        assert!(sessions.iter().all(|s| s["owner"] == owner_name.as_str()));
        let mut present: Vec<String> = admin(process, "admin.stats")["replicas"]
            .as_array()
            .map(|r| r.iter().filter_map(|n| n.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        present.sort();
        assert_eq!(present, names, "every replica is listed as present");
    }

    // The players connect: the servers' own records count them, none above its capacity.
    let mut clients: Vec<(App, Entity)> = answers
        .iter()
        .map(|answer| {
            let token = decode_connect_token(answer["result"]["connect_token"].as_str().expect("a token"));
            connecting_client(token, Dial::Udp)
        })
        .collect();
    let entities: Vec<Entity> = clients.iter().map(|(_, entity)| *entity).collect();
    let mut apps: Vec<&mut App> = clients.iter_mut().map(|(app, _)| app).collect();
    expect_step_until(&mut apps, DEADLINE, "every player to connect", |apps| {
        apps.iter().zip(&entities).all(|(app, entity)| app.world().get::<Connected>(*entity).is_some())
    });
    let players = wait_for("the servers to record every player", || {
        let players = replicas.per_server(Bucket::Players);
        (players.values().sum::<usize>() == 2 * CAPACITY).then_some(players)
    });
    assert!(players.values().all(|&n| n <= CAPACITY), "no server holds more players than seats: {players:?}");
    drop(apps);
    for (app, entity) in &mut clients {
        disconnect(app, *entity);
    }
    let mut apps: Vec<&mut App> = clients.iter_mut().map(|(app, _)| app).collect();
    step_for(&mut apps, Duration::from_millis(100));
    drop(clients);

    // The players gone, each server is stopped once, by the owner only.
    wait_for("both servers to be stopped", || replicas.fake.inventory().is_idle().then_some(()));
    let inventory = replicas.fake.inventory();
    assert_eq!(inventory.requests_to(Endpoint::StopDeployment), 2, "each server stopped exactly once");
    assert_eq!(inventory.deployments_created, 2);
}

#[test]
fn the_owners_sigkill_hands_the_joins_to_another_replica_within_seconds_and_nothing_leaks() {
    let replicas = Replicas::start();
    // Unused tokens expire after 8 s, so the servers empty and are stopped by the new owner.
    let short = [("BEVYGAP_TOKEN_TTL_SECS", "8"), ("BEVYGAP_EMPTY_GRACE_SECS", "1")];
    let a = replicas.replica("mm-a", &short);
    let owner_name = owner(&a);
    let b = replicas.replica("mm-b", &short);
    assert_eq!(owner(&b), owner_name);
    let (owner_process, standby) = if owner_name == "mm-a" { (a, b) } else { (b, a) };

    // A steady stream of joins through the standby; the owner is killed in the middle.
    let mut served = Vec::new();
    for _ in 0..3 {
        let answer = join(&standby);
        assert!(ready(&answer), "{answer}");
        served.push(Instant::now());
    }
    let granted_before = replicas.keys(Bucket::Clients);
    assert_eq!(granted_before.len(), 3);
    let log = owner_process.kill();
    let killed = Instant::now();
    let mut first_after = None;
    for _ in 0..3 {
        let sent = Instant::now();
        let answer = join(&standby);
        assert!(ready(&answer), "joins go on after the owner died: {answer}");
        first_after.get_or_insert(sent.elapsed());
    }
    let gap = first_after.expect("joins after the kill");
    eprintln!("fail-over: the first join sent after the owner's SIGKILL was ready after {gap:?}");
    assert!(gap < Duration::from_secs(20), "served again within seconds, not {gap:?}; old owner's log:\n{log}");
    assert_eq!(owner(&standby), if owner_name == "mm-a" { "mm-b" } else { "mm-a" });
    assert!(killed.elapsed() < Duration::from_secs(60));

    // The seats granted before the kill were never claimed: they expire under the new owner.
    wait_for("the grants issued before the kill to expire", || {
        let grants = replicas.keys(Bucket::Clients);
        granted_before.iter().all(|g| !grants.contains(g)).then_some(())
    });
    // Then every server is empty and stopped, and nothing is left on Edgegap.
    wait_for("every server to be stopped", || replicas.fake.inventory().is_idle().then_some(()));
    wait_for("every grant and session to be gone", || {
        (replicas.keys(Bucket::Clients).is_empty() && replicas.keys(Bucket::Sessions).is_empty()).then_some(())
    });
}

#[test]
fn a_paused_owner_acts_no_more_when_it_wakes_past_its_lease_and_a_sigterm_hands_over_without_stopping_servers() {
    let replicas = Replicas::start();
    let a = replicas.replica("mm-a", &[]);
    assert_eq!(owner(&a), "mm-a");
    let b = replicas.replica("mm-b", &[]);
    let c = replicas.replica("mm-c", &[]);
    assert_eq!(owner(&b), "mm-a");
    for _ in 0..2 {
        assert!(ready(&join(&b)));
    }
    let server = wait_for("the one server", || replicas.fake.inventory().deployments.into_iter().next());

    // Paused well past its lease: another replica takes over and keeps placing players on the
    // same server (its seats are read back from NATS).
    a.signal(libc::SIGSTOP);
    let next = wait_for("another replica to own the namespace", || {
        let owner = admin(&b, "admin.stats")["owner"].as_str().map(str::to_string);
        owner.filter(|o| o != "mm-a")
    });
    for _ in 0..2 {
        assert!(ready(&join(&c)), "the new owner serves");
    }
    let mut a = a;
    a.signal(libc::SIGCONT);
    let exit = wait_for("the woken replica to exit", || a.child.try_wait().ok().flatten());
    assert_eq!(exit.code(), Some(3), "a replica that lost its lease exits for its supervisor to restart it");
    let log = a.log.take().and_then(|log| log.join().ok()).unwrap_or_default();
    assert!(log.contains("lost the namespace lease"), "{log}");

    // It stopped nothing and overfilled nothing: one server, four grants, never a stop.
    let inventory = replicas.fake.inventory();
    assert_eq!(inventory.deployments_created, 1, "the new owner filled the same server");
    assert_eq!(inventory.requests_to(Endpoint::StopDeployment), 0, "{inventory:?}");
    assert_eq!(inventory.deployments.first().map(|d| &d.request_id), Some(&server.request_id));
    let grants = replicas.per_server(Bucket::Clients);
    assert_eq!(grants.values().copied().collect::<Vec<_>>(), vec![CAPACITY], "{grants:?}");

    // A SIGTERM of the new owner, with a replica still there, hands over at once and leaves
    // the server running for it.
    let (leaving, staying) = if next == "mm-b" { (b, c) } else { (c, b) };
    let handed = Instant::now();
    leaving.terminate();
    let last = wait_for("the last replica to own the namespace", || {
        let owner = admin(&staying, "admin.stats")["owner"].as_str().map(str::to_string);
        owner.filter(|o| *o != next)
    });
    eprintln!("rolling restart: {last} owned the namespace {:?} after {next}'s SIGTERM", handed.elapsed());
    let inventory = replicas.fake.inventory();
    assert_eq!(inventory.requests_to(Endpoint::StopDeployment), 0, "the server was left to the next owner");
    // The new owner adopts the server as soon as its watch delivers it, and holds the seats of
    // the earlier tokens a moment later (placement waits for both; the admin view may not).
    wait_for("the next owner to know the one server with its four seats held", || {
        let servers = admin(&staying, "admin.servers")["servers"].as_array().cloned().unwrap_or_default();
        (servers.len() == 1 && servers[0]["taken"] == CAPACITY).then_some(())
    });
    assert_eq!(replicas.fake.inventory().deployments_created, 1, "and launched none of its own");
}

#[test]
fn a_join_waiting_at_the_owners_sigkill_is_resumed_by_the_next_owner_under_its_request_id() {
    // Deployments take 4 s to become ready: the join is still waiting when its owner dies.
    let replicas = Replicas::start_with(&["--deploying-delay-ms", "4000"]);
    let a = replicas.replica("mm-a", &[]);
    assert_eq!(owner(&a), "mm-a");
    let b = replicas.replica("mm-b", &[]);
    assert_eq!(owner(&b), "mm-a");
    let params = json!({"game": GAME, "version": VERSION, "transport": "udp", "request_id": "player-join-0001"});
    // Straight to the owner, which dies before it answers.
    let (url, body) = (
        format!("http://{}", a.public_addr),
        json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join", "params": params.clone()}),
    );
    std::thread::spawn(move || {
        let _ = agent().post(&url).header("content-type", "application/json").send(body.to_string());
    });
    wait_for("the waiting join to be recorded", || {
        replicas.keys(Bucket::Requests).contains(&"player-join-0001".to_string()).then_some(())
    });
    wait_for("its server to be launched", || (replicas.fake.inventory().deployments_created == 1).then_some(()));
    a.kill();

    // The next owner queues it again (and places it) before the player comes back; the
    // player's retry, through any replica, follows that join to its answer rather than
    // starting another.
    wait_for("the next owner", || (admin(&b, "admin.stats")["owner"] == "mm-b").then_some(()));
    let answer = join_at(&b.public_addr, params);
    assert!(ready(&answer), "{answer}");
    assert_eq!(replicas.keys(Bucket::Clients).len(), 1, "one seat for the player (the resumed join's), not two");
    assert!(replicas.keys(Bucket::Requests).is_empty(), "the answered join's record is gone");
    assert_eq!(admin(&b, "admin.stats")["joins_waiting"], 0);
}

/// The game-server processes `pid` started (its children, from every thread).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut children = Vec::new();
    for task in tasks.flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        children.extend(list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    children
}

fn is_running(pid: u32) -> bool {
    // A zombie (exited, not yet reaped by init) is not running.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

#[test]
fn with_the_local_provider_the_owners_sigkill_leaves_no_orphan_and_the_next_owner_starts_its_own_servers() {
    let replicas = Replicas::start();
    let token = "replica-admin-token-0001";
    let server_cmd = support::stand_in_server().display().to_string();
    let local = [
        ("BEVYGAP_PROVIDER", "local"),
        ("BEVYGAP_GAME_SERVER_CMD", server_cmd.as_str()),
        ("BEVYGAP_ADMIN_TOKEN", token),
    ];
    let a = replicas.replica("mm-a", &local);
    let admin_url = |p: &MatchmakerProcess| format!("http://{}", p.admin_addr);
    let stats = |p: &MatchmakerProcess| {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "admin.stats", "params": {}});
        post(&admin_url(p), &body.to_string(), Some(token)).1["result"].clone()
    };
    wait_for("mm-a to own the namespace", || (stats(&a)["owner"] == "mm-a").then_some(()));
    let b = replicas.replica("mm-b", &local);
    assert!(ready(&join(&b)), "a join through the standby is served by the owner");
    let servers = children(a.child.id());
    assert_eq!(servers.len(), 1, "the owner started one game server: {servers:?}");

    a.kill();
    wait_for("the killed owner's game server to end with it", || (!is_running(servers[0])).then_some(()));
    let answer = join(&b);
    assert!(ready(&answer), "the next owner serves: {answer}");
    assert_eq!(stats(&b)["owner"], "mm-b");
    assert_eq!(children(b.child.id()).len(), 1, "on a game server of its own");
    b.terminate();
}
