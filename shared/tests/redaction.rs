//! Credentials written into `NATS_URL` never show: not in start-up errors, not in a failed
//! connection's error (Display or Debug), not in anything async-nats logs, even at TRACE; and
//! they still authenticate, special characters and all.

use std::collections::HashMap;
use std::sync::Mutex;

use bevygap_shared::nats::{InitialConnect, NatsConfig, NatsConnection};
use bevygap_testkit::NatsServer;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A password with every character that breaks naive URL parsing.
const PASSWORD: &str = "s3cr/et@pa:ss#wo?rd";
/// Pieces of it that must never appear anywhere (a leak may be cut at any special character).
const PIECES: [&str; 4] = ["s3cr", "et@pa", "ss#wo", "rd"];

/// Everything logged in this test binary, at every level, as text.
static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Recorder;

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut text = Text(format!("span {}", span.metadata().name()));
        span.record(&mut text);
        LOGS.lock().unwrap().push(text.0);
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut text = Text("record".into());
        values.record(&mut text);
        LOGS.lock().unwrap().push(text.0);
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut text = Text(event.metadata().target().to_string());
        event.record(&mut text);
        LOGS.lock().unwrap().push(text.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn install_recorder() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| tracing::subscriber::set_global_default(Recorder).expect("the only subscriber"));
}

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains("s3cr") && !text.contains("ss#wo"), "{what} leaks the password: {text}");
    for piece in PIECES.iter().filter(|p| p.len() > 2) {
        assert!(!text.contains(piece), "{what} leaks {piece:?}: {text}");
    }
}

fn from_env(url: &str) -> Result<NatsConfig, bevygap_shared::env::EnvError> {
    let vars: HashMap<&str, &str> = [("NATS_URL", url)].into();
    NatsConfig::from_source(&vars, "redaction-test")
}

#[test]
fn a_bad_nats_url_with_credentials_is_reported_without_them() {
    for url in [
        format!("nats://mm:{PASSWORD}@127.0.0.1:notaport"),
        format!("nats://mm:{PASSWORD}@"),
        format!("nats://127.0.0.1:4222,nats://mm:{PASSWORD}@[::1"),
        format!("mm:{PASSWORD}@127.0.0.1:99999"),
    ] {
        let err = from_env(&url).expect_err("malformed");
        assert_clean("the start-up error", &err.to_string());
        assert_clean("the start-up error's Debug", &format!("{err:?}"));
    }
}

#[tokio::test]
async fn a_failed_connection_shows_no_credentials_in_its_error_or_the_logs() {
    install_recorder();
    // A port nothing listens on: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // A plain password (any URL parser copes) and one with every special character.
    for password in ["s3crPlain", PASSWORD] {
        let url = format!("nats://mm:{password}@127.0.0.1:{port}");
        let config = from_env(&url).expect("a valid URL with credentials");
        assert_clean("the config's Debug", &format!("{config:?}"));
        let err = NatsConnection::connect(&config, InitialConnect::FailFast).await.expect_err("nothing listens");
        assert_clean("the connection error", &err.to_string());
        assert_clean("the connection error's Debug", &format!("{err:?}"));
        let logs = LOGS.lock().unwrap().join("\n");
        assert!(logs.contains("attempting connection"), "async-nats logged its attempt: {logs}");
        assert_clean("the logs", &logs);
    }
}

#[tokio::test]
async fn credentials_in_the_url_authenticate_whatever_their_characters() {
    install_recorder();
    let nats = NatsServer::start_with_config(&format!(
        "authorization {{ user: mm, password: \"{PASSWORD}\" }}\njetstream: enabled\n"
    ))
    .unwrap();
    let url = format!("nats://mm:{PASSWORD}@127.0.0.1:{}", nats.port());
    let conn = NatsConnection::connect(&from_env(&url).expect("valid"), InitialConnect::FailFast)
        .await
        .expect("the URL's credentials authenticate");
    conn.client().flush().await.expect("usable");
    // Percent-encoded credentials work too.
    let encoded = format!("nats://mm:{}@127.0.0.1:{}", "s3cr%2Fet%40pa%3Ass%23wo%3Frd", nats.port());
    let conn = NatsConnection::connect(&from_env(&encoded).expect("valid"), InitialConnect::FailFast)
        .await
        .expect("percent-encoded credentials authenticate");
    conn.client().flush().await.expect("usable");
    assert_clean("the logs", &LOGS.lock().unwrap().join("\n"));
}
