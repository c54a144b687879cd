//! The least-privilege NATS users in `assets/nats/bevygap.conf`, against a real nats-server:
//! the matchmaker can provision, a game server can do its job but cannot create or delete
//! JetStream assets, nor touch another namespace.

use std::collections::HashMap;

use bevygap_shared::kv::KvStores;
use bevygap_shared::naming::Namespace;
use bevygap_shared::nats::{InitialConnect, NatsConfig, NatsConnection};
use bevygap_testkit::NatsServer;
use futures::StreamExt;

const CONFIG: &str = include_str!("../../assets/nats/bevygap.conf");

async fn connect(url: &str, user: &str, password: &str) -> NatsConnection {
    let vars: HashMap<&str, &str> = [("NATS_URL", url), ("NATS_USER", user), ("NATS_PASSWORD", password)].into();
    let config = NatsConfig::from_source(&vars, user).unwrap();
    NatsConnection::connect(&config, InitialConnect::FailFast).await.expect("connects")
}

#[tokio::test]
async fn game_servers_get_least_privilege() {
    let nats = NatsServer::start_with_config(CONFIG).unwrap();
    let names = Namespace::new("spaceships").unwrap().names();
    let mm = connect(&nats.url(), "matchmaker", "change-me-matchmaker").await;
    let mm_kv = KvStores::provision(&mm.jetstream(), &names).await.expect("the matchmaker provisions");
    mm_kv.clients.put("srv-1.42", "grant".into()).await.expect("the matchmaker writes grants");

    let gs = connect(&nats.url(), "gameserver", "change-me-gameserver").await;
    let js = gs.jetstream();
    let kv = KvStores::open(&js, &names).await.expect("a game server opens the buckets");
    kv.servers.put("srv-1", "record".into()).await.expect("writes its server record");
    kv.players.put("srv-1.42", "player".into()).await.expect("writes player records");
    kv.players.delete("srv-1.42").await.expect("deletes player records");
    assert_eq!(kv.clients.get("srv-1.42").await.expect("reads grants").as_deref(), Some(&b"grant"[..]));
    let mut watch = kv.clients.watch_with_history("srv-1.>").await.expect("watches its grants");
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), watch.next()).await.expect("delivered");
    assert_eq!(first.unwrap().unwrap().key, "srv-1.42");

    assert!(kv.clients.put("srv-1.43", "forged".into()).await.is_err(), "a game server cannot forge grants");
    assert!(KvStores::provision(&js, &names).await.is_err(), "a game server cannot create or update buckets");
    assert!(js.delete_key_value("bevygap_spaceships_clients").await.is_err(), "nor delete them");
    let other = Namespace::new("othergame").unwrap().names();
    assert!(KvStores::open(&js, &other).await.is_err(), "nor reach another namespace");
    assert!(mm_kv.clients.get("srv-1.43").await.unwrap().is_none());
}
