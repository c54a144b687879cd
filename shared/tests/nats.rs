//! The NATS layer against a real nats-server: every auth mode, TLS with a test CA, bucket
//! provisioning, namespace isolation and reconnects.

use std::collections::HashMap;
use std::time::Duration;

use bevygap_shared::kv::{KvError, KvStores, bucket_config};
use bevygap_shared::naming::{Bucket, Namespace};
use bevygap_shared::nats::{InitialConnect, LinkStatus, NatsConfig, NatsConnection, NatsError};
use bevygap_testkit::NatsServer;

fn config(vars: &[(&str, &str)]) -> NatsConfig {
    let map: HashMap<&str, &str> = vars.iter().copied().collect();
    NatsConfig::from_source(&map, "bevygap-test").expect("valid test config")
}

async fn connect(vars: &[(&str, &str)]) -> Result<NatsConnection, NatsError> {
    NatsConnection::connect(&config(vars), InitialConnect::FailFast).await
}

/// A round trip that needs a working, authorised connection.
async fn assert_usable(conn: &NatsConnection) {
    let reply = conn.client().request("$JS.API.INFO", "".into()).await.expect("JetStream answers");
    assert!(String::from_utf8_lossy(&reply.payload).contains("\"memory\""));
    assert_eq!(conn.link_status(), LinkStatus::Connected);
}

#[tokio::test]
async fn provisions_buckets_idempotently_and_servers_can_open_them() {
    let nats = NatsServer::start().unwrap();
    let conn = connect(&[("NATS_URL", &nats.url())]).await.unwrap();
    let js = conn.jetstream();
    let names = Namespace::new("game-a").unwrap().names();

    let err = KvStores::open(&js, &names).await.unwrap_err();
    assert!(matches!(err, KvError::Open { ref bucket, .. } if bucket == "bevygap_game-a_servers"), "{err}");

    let first = KvStores::provision(&js, &names).await.unwrap();
    first.servers.put("s1", "v1".into()).await.unwrap();
    let again = KvStores::provision(&js, &names).await.unwrap();
    assert_eq!(again.servers.get("s1").await.unwrap().as_deref(), Some(&b"v1"[..]), "re-provisioning kept data");

    for bucket in Bucket::ALL {
        let want = bucket_config(&names, bucket);
        let mut stream = js.get_stream(format!("KV_{}", want.bucket)).await.unwrap();
        let info = stream.info().await.unwrap();
        assert_eq!(info.config.max_age, want.max_age, "{bucket:?}");
        assert_eq!(info.config.max_messages_per_subject, 1, "{bucket:?} keeps history 1");
    }

    let opened = KvStores::open(&js, &names).await.unwrap();
    assert_eq!(opened.servers.get("s1").await.unwrap().as_deref(), Some(&b"v1"[..]));
}

#[tokio::test]
async fn two_namespaces_do_not_see_each_other() {
    let nats = NatsServer::start().unwrap();
    let conn = connect(&[("NATS_URL", &nats.url())]).await.unwrap();
    let js = conn.jetstream();
    let a = KvStores::provision(&js, &Namespace::new("a").unwrap().names()).await.unwrap();
    let b = KvStores::provision(&js, &Namespace::new("b").unwrap().names()).await.unwrap();
    a.clients.put("42", "for-a".into()).await.unwrap();
    assert_eq!(b.clients.get("42").await.unwrap(), None);
    b.clients.put("42", "for-b".into()).await.unwrap();
    assert_eq!(a.clients.get("42").await.unwrap().as_deref(), Some(&b"for-a"[..]));
}

#[tokio::test]
async fn user_and_password() {
    let nats = NatsServer::start_with_config("authorization { user: mm, password: \"pw-secret\" }").unwrap();
    let conn =
        connect(&[("NATS_URL", &nats.url()), ("NATS_USER", "mm"), ("NATS_PASSWORD", "pw-secret")]).await.unwrap();
    assert_usable(&conn).await;
    let wrong = connect(&[("NATS_URL", &nats.url()), ("NATS_USER", "mm"), ("NATS_PASSWORD", "nope")]).await;
    assert!(matches!(wrong, Err(NatsError::Connect { .. })), "wrong password must fail");
    let none = connect(&[("NATS_URL", &nats.url())]).await;
    assert!(none.is_err(), "no credentials must fail");
}

#[tokio::test]
async fn token() {
    let nats = NatsServer::start_with_config("authorization { token: \"t0ken-xyz\" }").unwrap();
    assert_usable(&connect(&[("NATS_URL", &nats.url()), ("NATS_TOKEN", "t0ken-xyz")]).await.unwrap()).await;
    assert!(connect(&[("NATS_URL", &nats.url()), ("NATS_TOKEN", "other")]).await.is_err());
}

#[tokio::test]
async fn nkey() {
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    let nats = NatsServer::start_with_config(&format!(
        "authorization {{ users = [ {{ nkey: \"{}\" }} ] }}",
        user.public_key()
    ))
    .unwrap();
    assert_usable(&connect(&[("NATS_URL", &nats.url()), ("NATS_NKEY_SEED", &seed)]).await.unwrap()).await;
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    assert!(connect(&[("NATS_URL", &nats.url()), ("NATS_NKEY_SEED", &stranger)]).await.is_err());
}

struct TestCa {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn make_ca() -> TestCa {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = server_params.signed_by(&server_key, &ca).unwrap();
    TestCa { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: server_key.serialize_pem() }
}

fn tls_server(ca: &TestCa) -> NatsServer {
    let dir = tempfile::tempdir().unwrap().keep();
    let cert = dir.join("server.pem");
    let key = dir.join("server-key.pem");
    std::fs::write(&cert, &ca.cert_pem).unwrap();
    std::fs::write(&key, &ca.key_pem).unwrap();
    NatsServer::start_with_config(&format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\" }}",
        cert.display(),
        key.display()
    ))
    .unwrap()
}

#[tokio::test]
async fn tls_with_a_custom_ca_from_file_or_contents() {
    let ca = make_ca();
    let nats = tls_server(&ca);
    let url = format!("tls://127.0.0.1:{}", nats.port());
    let ca_file = nats.dir().join("ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();

    let from_file =
        connect(&[("NATS_URL", &url), ("NATS_CA_FILE", ca_file.to_str().unwrap()), ("NATS_REQUIRE_TLS", "true")]).await;
    assert_usable(&from_file.unwrap()).await;
    let from_pem = connect(&[("NATS_URL", &url), ("NATS_CA_PEM", &ca.ca_pem), ("NATS_REQUIRE_TLS", "true")]).await;
    assert_usable(&from_pem.unwrap()).await;

    let other_ca = make_ca();
    let untrusted =
        connect(&[("NATS_URL", &url), ("NATS_CA_PEM", &other_ca.ca_pem), ("NATS_REQUIRE_TLS", "true")]).await;
    assert!(untrusted.is_err(), "a certificate from another CA must be refused");
}

#[tokio::test]
async fn require_tls_refuses_a_plaintext_server() {
    let nats = NatsServer::start().unwrap();
    let ca = make_ca();
    let result = connect(&[("NATS_URL", &nats.url()), ("NATS_CA_PEM", &ca.ca_pem), ("NATS_REQUIRE_TLS", "true")]).await;
    assert!(result.is_err(), "require-TLS must not fall back to plaintext");
}

#[tokio::test]
async fn unreachable_server_fails_fast_with_the_url() {
    let port = bevygap_testkit::free_tcp_port();
    let url = format!("nats://127.0.0.1:{port}");
    let err = connect(&[("NATS_URL", &url)]).await.unwrap_err();
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn reconnects_after_an_outage_and_reports_the_link() {
    let mut nats = NatsServer::start().unwrap();
    let conn = connect(&[("NATS_URL", &nats.url())]).await.unwrap();
    let mut status = conn.status();
    assert_eq!(conn.link_status(), LinkStatus::Connected);

    nats.stop();
    tokio::time::timeout(Duration::from_secs(20), status.wait_for(|s| *s == LinkStatus::Disconnected))
        .await
        .expect("disconnect observed")
        .unwrap();
    nats.restart().unwrap();
    tokio::time::timeout(Duration::from_secs(30), status.wait_for(|s| *s == LinkStatus::Connected))
        .await
        .expect("reconnect observed")
        .unwrap();
    assert_usable(&conn).await;
}

#[tokio::test]
async fn retry_in_background_connects_once_the_server_appears() {
    let mut nats = NatsServer::start().unwrap();
    let url = nats.url();
    nats.stop();
    let conn = NatsConnection::connect(&config(&[("NATS_URL", &url)]), InitialConnect::RetryInBackground)
        .await
        .expect("returns without a server");
    assert_ne!(conn.link_status(), LinkStatus::Connected);
    nats.restart().unwrap();
    let mut status = conn.status();
    tokio::time::timeout(Duration::from_secs(30), status.wait_for(|s| *s == LinkStatus::Connected))
        .await
        .expect("connected once the server is up")
        .unwrap();
}
