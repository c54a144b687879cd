//! The least-privilege NATS users in `assets/nats/bevygap.conf`, against a real nats-server
//! running the shipped file: each role can do everything Bevygap does with it, and nothing
//! more: a game server cannot forge grants, administer JetStream, read another role's inbox,
//! reach another namespace, or create consumers without bound; the matchmaker is confined to
//! its namespace and its own inbox too.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::kv::Operation;
use async_nats::jetstream::{self, consumer};
use bevygap_shared::kv::KvStores;
use bevygap_shared::naming::{Namespace, NatsNames, NatsRole, ServerId};
use bevygap_shared::nats::{InitialConnect, NatsConfig, NatsConnection};
use bevygap_testkit::NatsServer;
use futures::StreamExt;

const CONFIG: &str = include_str!("../../assets/nats/bevygap.conf");
/// The namespace the shipped file is written for.
const NAMESPACE: &str = "spaceships";
const MATCHMAKER: (&str, &str) = ("matchmaker", "change-me-matchmaker");
const GAMESERVER: (&str, &str) = ("gameserver", "change-me-gameserver");
/// Long enough for anything NATS does on loopback, short enough for checks that expect silence.
const QUIET: Duration = Duration::from_millis(700);

fn names() -> NatsNames {
    Namespace::new(NAMESPACE).unwrap().names()
}

/// The connection configuration of `role`, as Bevygap builds it (credentials from env, the
/// role's inbox prefix).
fn role_config(url: &str, (user, password): (&str, &str), role: NatsRole) -> NatsConfig {
    let vars: HashMap<&str, &str> = [("NATS_URL", url), ("NATS_USER", user), ("NATS_PASSWORD", password)].into();
    NatsConfig::from_source(&vars, user).unwrap().for_role(&names(), role)
}

async fn connect(url: &str, user: (&str, &str), role: NatsRole) -> NatsConnection {
    NatsConnection::connect(&role_config(url, user, role), InitialConnect::FailFast).await.expect("connects")
}

/// A raw client of `role` whose permission errors are collected, for probing what it may not do.
async fn probe(
    url: &str,
    user: (&str, &str),
    role: NatsRole,
) -> (async_nats::Client, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_user_and_password(user.0.into(), user.1.into())
        .custom_inbox_prefix(names().inbox_prefix(role))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(url)
        .await
        .expect("connects");
    (client, rx)
}

/// The `max_consumers` the shipped file allows per stream.
fn max_consumers() -> usize {
    let at = CONFIG.find("max_consumers:").expect("the config limits consumers") + "max_consumers:".len();
    CONFIG[at..].trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// Everything the matchmaker and a game server do, with their own credentials and inboxes.
#[tokio::test]
async fn each_role_can_do_its_job() {
    let nats = NatsServer::start_with_config(CONFIG).unwrap();
    let names = names();
    let server_id = ServerId::new("srv-1").unwrap();
    let mm = connect(&nats.url(), MATCHMAKER, NatsRole::Matchmaker).await;
    let mm_kv = KvStores::provision(&mm.jetstream(), &names).await.expect("the matchmaker provisions");
    KvStores::provision(&mm.jetstream(), &names).await.expect("and provisions again on restart");
    let mut servers = mm_kv.servers.watch_with_history(">").await.expect("the matchmaker watches servers");
    let mut players = mm_kv.players.watch_with_history(">").await.expect("the matchmaker watches players");
    mm_kv.clients.put("srv-1.42", "grant".into()).await.expect("the matchmaker writes grants");
    mm_kv.sessions.put("session-1", "session".into()).await.expect("the matchmaker writes sessions");
    // The replicas' lease: created, renewed by compare-and-set, read, released.
    let leases = bevygap_shared::kv::provision_leases(&mm.jetstream(), &names, 1).await.expect("the lease bucket");
    let held = leases.create("owner", "mm-1".into()).await.expect("takes the lease");
    let renewed = leases.update("owner", "mm-1".into(), held).await.expect("renews it");
    assert_eq!(leases.get("owner").await.expect("reads it").as_deref(), Some(&b"mm-1"[..]));
    leases.delete_expect_revision("owner", Some(renewed)).await.expect("releases it");

    let gs = connect(&nats.url(), GAMESERVER, NatsRole::GameServer).await;
    let kv = KvStores::open(&gs.jetstream(), &names).await.expect("a game server opens the buckets");
    let mut grants = kv.clients.watch_with_history("srv-1.>").await.expect("watches its grants");
    let first = tokio::time::timeout(Duration::from_secs(10), grants.next()).await.expect("delivered");
    assert_eq!(first.unwrap().unwrap().key, "srv-1.42");
    assert_eq!(kv.clients.get("srv-1.42").await.expect("reads grants").as_deref(), Some(&b"grant"[..]));
    let mut control = gs.client().subscribe(names.server_control_subject(&server_id)).await.unwrap();
    kv.servers.put("srv-1", "record".into()).await.expect("writes its server record");
    kv.players.put("srv-1.42", "player".into()).await.expect("writes player records");
    kv.players.delete("srv-1.42").await.expect("deletes player records");

    assert_eq!(next(&mut servers).await.key, "srv-1", "the matchmaker sees the server record");
    assert_eq!(next(&mut players).await.operation, Operation::Put);
    assert_eq!(next(&mut players).await.operation, Operation::Delete, "and the player leaving");
    mm_kv.clients.put("srv-1.43", "grant".into()).await.unwrap();
    assert_eq!(next(&mut grants).await.key, "srv-1.43", "the grant watch follows new grants");

    // Control commands, fire-and-forget as the matchmaker sends them, and as requests that the
    // game server answers (operators, tools).
    let subject = names.server_control_subject(&server_id);
    mm.client().publish(subject.clone(), "{\"command\":\"drain\"}".into()).await.unwrap();
    let received = tokio::time::timeout(Duration::from_secs(5), control.next()).await.expect("delivered").unwrap();
    assert_eq!(&received.payload[..], b"{\"command\":\"drain\"}");
    let request = mm.client().request(subject, "{\"command\":\"drain\"}".into());
    let answer = async {
        let message = control.next().await.unwrap();
        gs.client().publish(message.reply.expect("a request"), "{\"ok\":true}".into()).await.unwrap();
        gs.client().flush().await.unwrap();
    };
    let (reply, ()) = tokio::join!(request, answer);
    assert_eq!(&reply.expect("the game server may answer requests it receives").payload[..], b"{\"ok\":true}");
    for subject in [
        names.need_capacity_subject(&bevygap_shared::protocol::GameName::new("game").unwrap()),
        names.matchmaker_calls_subject(),
    ] {
        mm.client().publish(subject, "{}".into()).await.expect("the matchmaker publishes in its namespace");
    }
    mm.client().flush().await.unwrap();

    for (key, store) in [
        ("srv-1.42", &mm_kv.clients),
        ("session-1", &mm_kv.sessions),
        ("srv-1", &mm_kv.servers),
        ("srv-1.42", &mm_kv.players),
    ] {
        store.delete(key).await.expect("the matchmaker deletes records");
    }
    assert!(mm_kv.clients.get("srv-1.42").await.unwrap().is_none());
    assert_no_violations(&nats);
}

/// Nothing either role did was refused, even silently (a refused publish only shows in the
/// server's log).
#[track_caller]
fn assert_no_violations(nats: &NatsServer) {
    let log = std::fs::read_to_string(nats.dir().join("nats.log")).unwrap_or_default();
    let violations: Vec<&str> = log.lines().filter(|l| l.contains(" Violation")).collect();
    assert!(violations.is_empty(), "refused: {violations:#?}");
}

/// The next entry of a KV watch, within 10 s.
async fn next(watch: &mut jetstream::kv::Watch) -> jetstream::kv::Entry {
    let next = tokio::time::timeout(Duration::from_secs(10), watch.next()).await;
    next.expect("delivered").expect("open").expect("an entry")
}

#[tokio::test]
async fn game_servers_cannot_forge_administer_or_leave_their_namespace() {
    let nats = NatsServer::start_with_config(CONFIG).unwrap();
    let names = names();
    let mm = connect(&nats.url(), MATCHMAKER, NatsRole::Matchmaker).await;
    let mm_kv = KvStores::provision(&mm.jetstream(), &names).await.unwrap();
    let gs = connect(&nats.url(), GAMESERVER, NatsRole::GameServer).await;
    let js = gs.jetstream();
    let kv = KvStores::open(&js, &names).await.unwrap();
    let other = Namespace::new("othergame").unwrap().names();

    // Each denied request times out, so they run together.
    let mm_js = mm.jetstream();
    let (forged, provisioned, deleted, elsewhere, foreign_stream, mm_elsewhere, sessions) = tokio::join!(
        kv.clients.put("srv-1.43", "forged".into()),
        KvStores::provision(&js, &names),
        js.delete_key_value("bevygap_spaceships_clients"),
        KvStores::open(&js, &other),
        js.get_stream("KV_bevygap_othergame_clients"),
        KvStores::provision(&mm_js, &other),
        kv.sessions.put("session-1", "forged".into()),
    );
    assert!(forged.is_err(), "a game server cannot forge grants");
    assert!(sessions.is_err(), "nor write sessions");
    assert!(provisioned.is_err(), "a game server cannot create or update buckets");
    assert!(deleted.is_err(), "nor delete them");
    assert!(elsewhere.is_err() && foreign_stream.is_err(), "nor reach another namespace's JetStream API");
    assert!(mm_elsewhere.is_err(), "the matchmaker cannot reach another namespace either");
    assert!(mm_kv.clients.get("srv-1.43").await.unwrap().is_none());
    assert!(mm_kv.sessions.get("session-1").await.unwrap().is_none());

    // Consumers only on the grants stream (the matchmaker's watches are on the others).
    let servers = mm.jetstream().get_stream("KV_bevygap_spaceships_servers").await.unwrap();
    let gs_servers = js.get_stream("KV_bevygap_spaceships_servers").await.expect("stream info is allowed");
    let created = gs_servers.create_consumer(consumer::pull::Config::default()).await;
    assert!(created.is_err(), "a game server cannot create consumers on the servers stream");
    drop(servers);
    // The replicas' own surface: the lease bucket and the forwarded calls.
    let calls = names.matchmaker_calls_subject();
    bevygap_shared::kv::provision_leases(&mm_js, &names, 1).await.expect("the matchmaker makes the lease bucket");
    assert!(js.get_key_value(names.lease_bucket()).await.is_err(), "a game server cannot open the lease bucket");
    let _listening = gs.client().subscribe(calls.clone()).await;
    gs.client().publish(calls.clone(), "{\"method\":\"admin.servers\"}".into()).await.unwrap();
    gs.client().flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = std::fs::read_to_string(nats.dir().join("nats.log")).unwrap();
    assert!(log.contains("Publish Violation"), "refusals show in the server log (what assert_no_violations reads)");
    let refused = |kind: &str| log.lines().any(|l| l.contains(kind) && l.contains(&calls));
    assert!(refused("Publish Violation"), "a game server cannot forward calls to the owning matchmaker: {log}");
    assert!(refused("Subscription Violation"), "nor listen to them");
}

#[tokio::test]
async fn no_role_reads_another_roles_inbox() {
    let nats = NatsServer::start_with_config(CONFIG).unwrap();
    let names = names();
    let mm = connect(&nats.url(), MATCHMAKER, NatsRole::Matchmaker).await;
    KvStores::provision(&mm.jetstream(), &names).await.unwrap();
    let gs = connect(&nats.url(), GAMESERVER, NatsRole::GameServer).await;

    let mm_inbox = format!("{}.>", names.inbox_prefix(NatsRole::Matchmaker));
    let gs_inbox = format!("{}.>", names.inbox_prefix(NatsRole::GameServer));
    for (who, user, role, own, foreign) in [
        ("a game server", GAMESERVER, NatsRole::GameServer, &gs_inbox, &mm_inbox),
        ("the matchmaker", MATCHMAKER, NatsRole::Matchmaker, &mm_inbox, &gs_inbox),
    ] {
        let (spy, mut errors) = probe(&nats.url(), user, role).await;
        let mut own_replies = spy.subscribe(own.clone()).await.unwrap();
        let mut foreign_replies = spy.subscribe(foreign.clone()).await.unwrap();
        let mut default_inboxes = spy.subscribe("_INBOX.>").await.unwrap();
        spy.flush().await.unwrap();
        // Real replies in both roles' inboxes all along: JetStream answers to requests.
        let (mm_js, gs_js) = (mm.jetstream(), gs.jetstream());
        let requests = tokio::spawn(async move {
            loop {
                for js in [&mm_js, &gs_js] {
                    js.get_stream("KV_bevygap_spaceships_clients").await.expect("stream info");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let mine = tokio::time::timeout(Duration::from_secs(5), own_replies.next()).await;
        assert!(mine.is_ok(), "{who} can snoop on its own role's inbox (the probe works)");
        let theirs = tokio::time::timeout(QUIET, foreign_replies.next()).await;
        assert!(theirs.is_err(), "{who} read another role's reply: {:?}", theirs.ok().flatten().map(|m| m.subject));
        assert!(tokio::time::timeout(QUIET, default_inboxes.next()).await.is_err(), "{who} read _INBOX");
        requests.abort();
        let mut violations = Vec::new();
        while let Ok(Some(e)) = tokio::time::timeout(QUIET, errors.recv()).await {
            violations.push(e);
        }
        let refused =
            |subject: &str| violations.iter().any(|v| v.contains("Permissions Violation") && v.contains(subject));
        assert!(refused(foreign) && refused("_INBOX.>"), "{who}: the server refuses the subscriptions: {violations:?}");
    }
}

#[tokio::test]
async fn game_servers_create_a_bounded_number_of_consumers() {
    let nats = NatsServer::start_with_config(CONFIG).unwrap();
    let names = names();
    let mm = connect(&nats.url(), MATCHMAKER, NatsRole::Matchmaker).await;
    KvStores::provision(&mm.jetstream(), &names).await.unwrap();
    let gs = connect(&nats.url(), GAMESERVER, NatsRole::GameServer).await;
    let stream = gs.jetstream().get_stream("KV_bevygap_spaceships_clients").await.unwrap();

    let limit = max_consumers();
    assert!((64..=4096).contains(&limit), "room for a fleet, but bounded: {limit}");
    let config = || consumer::pull::Config { inactive_threshold: Duration::from_secs(60), ..Default::default() };
    let mut created = 0;
    let refusal = loop {
        assert!(created <= limit, "created {created} consumers, more than the {limit} allowed");
        let batch: Vec<_> = (0..32).map(|_| stream.create_consumer(config())).collect();
        let results = futures::future::join_all(batch).await;
        created += results.iter().filter(|r| r.is_ok()).count();
        if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
            break e;
        }
    };
    assert_eq!(created, limit, "every allowed consumer could be created");
    assert!(refusal.to_string().contains("maximum consumers"), "{refusal}");
}
