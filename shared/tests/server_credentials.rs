//! Per-server credentials under `assets/nats/bevygap-per-server.conf`, against a real
//! nats-server doing auth callout to `AuthCallout`: a game server may write its own records
//! only, read its own grants and control subject only; bad or expired passwords do not connect.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bevygap_shared::Secret;
use bevygap_shared::kv::KvStores;
use bevygap_shared::naming::{Namespace, NatsNames, NatsRole, ServerId};
use bevygap_shared::nats::server_credentials::{AuthCallout, ServerCredentialKey, ServerCredentials, issue};
use bevygap_shared::nats::{InitialConnect, NatsConfig, NatsConnection, NatsError};
use bevygap_testkit::NatsServer;
use futures::StreamExt;

const CONFIG: &str = include_str!("../../assets/nats/bevygap-per-server.conf");
const PLACEHOLDER: &str = "REPLACE-WITH-THE-ISSUER-ACCOUNT-PUBLIC-KEY";
const QUIET: Duration = Duration::from_millis(700);

fn names() -> NatsNames {
    Namespace::new("spaceships").unwrap().names()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn config(url: &str, user: &str, password: &str) -> NatsConfig {
    let vars: HashMap<&str, &str> = [("NATS_URL", url), ("NATS_USER", user), ("NATS_PASSWORD", password)].into();
    NatsConfig::from_source(&vars, user).unwrap()
}

/// A nats-server with the shipped per-server configuration (and a fresh issuer), its
/// namespace provisioned, and the callout service answering.
struct Setup {
    nats: NatsServer,
    key: ServerCredentialKey,
    mm: NatsConnection,
    mm_kv: KvStores,
}

async fn setup() -> Setup {
    let issuer = nkeys::KeyPair::new_account();
    let conf = CONFIG.replace(PLACEHOLDER, &issuer.public_key());
    assert_ne!(conf, CONFIG, "the shipped file names its issuer placeholder");
    let nats = NatsServer::start_with_config(&conf).unwrap();
    let key = ServerCredentialKey::from_bytes([9; 32]);
    let callout = AuthCallout::new(&Secret::new(issuer.seed().unwrap()), key.clone(), names(), "bevygap_spaceships")
        .expect("an account seed");
    let auth = NatsConnection::connect(&config(&nats.url(), "auth", "change-me-auth"), InitialConnect::FailFast)
        .await
        .expect("the callout service connects");
    tokio::spawn(callout.serve(auth.client().clone()));
    let mm_config = config(&nats.url(), "matchmaker", "change-me-matchmaker").for_role(&names(), NatsRole::Matchmaker);
    let mm = NatsConnection::connect(&mm_config, InitialConnect::FailFast).await.expect("the matchmaker connects");
    let mm_kv = KvStores::provision(&mm.jetstream(), &names()).await.expect("and provisions");
    Setup { nats, key, mm, mm_kv }
}

async fn connect_server(
    url: &str,
    id: &ServerId,
    credentials: &ServerCredentials,
) -> Result<NatsConnection, NatsError> {
    let config = config(url, &credentials.user, credentials.password.expose()).for_game_server(&names(), id);
    NatsConnection::connect(&config, InitialConnect::FailFast).await
}

#[tokio::test]
async fn a_game_server_writes_and_reads_only_its_own_records() {
    let Setup { nats, key, mm, mm_kv } = setup().await;
    let names = names();
    let (a, b) = (ServerId::new("srv-a").unwrap(), ServerId::new("srv-b").unwrap());
    mm_kv.clients.put("srv-a.1", "grant-a".into()).await.unwrap();
    mm_kv.clients.put("srv-b.2", "grant-b".into()).await.unwrap();

    let credentials = issue(&key, &names, &a, now() + 3600);
    let gs = connect_server(&nats.url(), &a, &credentials).await.expect("issued credentials connect");
    let kv = KvStores::open(&gs.jetstream(), &names).await.expect("opens the buckets");
    kv.servers.put("srv-a", "record".into()).await.expect("writes its server record");
    kv.players.put("srv-a.1", "player".into()).await.expect("writes its player records");
    kv.players.delete("srv-a.1").await.expect("and deletes them");
    assert_eq!(kv.clients.get("srv-a.1").await.expect("reads its grants").as_deref(), Some(&b"grant-a"[..]));
    let mut grants = kv.clients.watch_with_history("srv-a.>").await.expect("watches its grants");
    let first = tokio::time::timeout(Duration::from_secs(10), grants.next()).await.expect("delivered");
    assert_eq!(first.unwrap().unwrap().key, "srv-a.1");
    let mut control = gs.client().subscribe(names.server_control_subject(&a)).await.unwrap();
    // A round trip on the same connection: the server has then registered the subscription
    // (`flush` only empties the socket buffer).
    kv.clients.get("srv-a.1").await.unwrap();
    mm.client().publish(names.server_control_subject(&a), "{\"command\":\"drain\"}".into()).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(5), control.next()).await.is_ok(), "receives its commands");

    let (server_b, player_b, grant_b) = tokio::join!(
        kv.servers.put("srv-b", "forged".into()),
        kv.players.put("srv-b.2", "forged".into()),
        kv.clients.get("srv-b.2"),
    );
    assert!(server_b.is_err(), "cannot write another server's record");
    assert!(player_b.is_err(), "nor its player records");
    assert!(grant_b.is_err(), "nor read its grants by key");
    assert!(
        mm_kv.servers.get("srv-b").await.unwrap().is_none() && mm_kv.players.get("srv-b.2").await.unwrap().is_none()
    );
    let mut spy = gs.client().subscribe(names.server_control_subject(&b)).await.unwrap();
    kv.clients.get("srv-a.1").await.unwrap();
    mm.client().publish(names.server_control_subject(&b), "{\"command\":\"shutdown\"}".into()).await.unwrap();
    assert!(tokio::time::timeout(QUIET, spy.next()).await.map(|m| m.is_none()).unwrap_or(true), "reads B's commands");
}

#[tokio::test]
async fn wrong_foreign_or_expired_passwords_do_not_connect() {
    let Setup { nats, key, .. } = setup().await;
    let names = names();
    let id = ServerId::new("srv-a").unwrap();
    let expired = issue(&key, &names, &id, now() - 1);
    let other_key = issue(&ServerCredentialKey::from_bytes([1; 32]), &names, &id, now() + 3600);
    let other_namespace = issue(&key, &Namespace::new("othergame").unwrap().names(), &id, now() + 3600);
    let mut stolen = issue(&key, &names, &id, now() + 3600);
    stolen.user = "srv-b".into();
    for (what, credentials) in [
        ("expired", expired),
        ("another key's", other_key),
        ("another namespace's", other_namespace),
        ("another server's", stolen),
    ] {
        let refused = connect_server(&nats.url(), &id, &credentials).await;
        assert!(refused.is_err(), "{what} credentials connected");
        let text = format!("{:?}", refused.err());
        assert!(!text.contains(credentials.password.expose()), "the password leaked: {text}");
    }
}
