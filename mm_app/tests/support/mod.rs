//! Runs a real matchmaker (real nats-server, real child processes, real HTTP) on a thread for
//! one test, with helpers to call its endpoints and to read or write its NATS records.
#![allow(dead_code)]

pub mod edgegap;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bevygap_matchmaker::config::MatchmakerConfig;
use bevygap_matchmaker::endpoints::EndpointAddrs;
use bevygap_matchmaker::harness::LocalMatchmaker;
use bevygap_matchmaker::providers::ServerProvider;
use bevygap_shared::kv::KvStores;
use bevygap_shared::nats::{InitialConnect, NatsConfig, NatsConnection};
use bevygap_shared::{LightyearKeys, PrivateKey};
use serde_json::{Value, json};

pub const GAME: &str = "demo";
pub const VERSION: &str = "1.0";

pub fn test_keys() -> LightyearKeys {
    LightyearKeys { protocol_id: 4242, private_key: PrivateKey::from_bytes([7; 32]) }
}

/// The stand-in game server example, built by `cargo test` next to the test binaries.
pub fn stand_in_server() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    let dir = exe.parent().and_then(|p| p.parent()).expect("target/debug");
    let path = dir.join("examples").join("stand_in_server");
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds examples; run it without --test filters",
        path.display()
    );
    path
}

/// The real Lightyear game server (`bevygap-demo-server` of the server plugin).
pub fn demo_server() -> PathBuf {
    bevygap_testkit::workspace_binary("bevygap_demo", "bevygap-demo-server")
}

pub struct Matchmaker {
    inner: Option<LocalMatchmaker>,
    pub addrs: EndpointAddrs,
    pub provider: Arc<dyn ServerProvider>,
    pub rt: tokio::runtime::Runtime,
    pub kv: KvStores,
    pub namespace: String,
}

impl Matchmaker {
    /// Starts a matchmaker whose game servers are the stand-in unless `configure` says otherwise.
    pub fn start(configure: impl FnOnce(&mut MatchmakerConfig)) -> Self {
        let (namespace, config) = Self::config(configure);
        Self::observe(LocalMatchmaker::start(config, test_keys()).expect("matchmaker starts"), namespace)
    }

    /// Starts a matchmaker with the `fleet` provider: it starts no server; tests start game
    /// servers themselves with [`Matchmaker::fleet_server_env`].
    pub fn start_fleet(configure: impl FnOnce(&mut MatchmakerConfig)) -> Self {
        let (namespace, mut config) = Self::config(configure);
        config.provider = bevygap_matchmaker::config::ProviderKind::Fleet;
        let nats = bevygap_testkit::NatsServer::start().expect("nats-server starts");
        let provider = Arc::new(bevygap_matchmaker::providers::FleetProvider);
        let inner = LocalMatchmaker::start_on(nats, provider, config, test_keys(), |_| {}).expect("matchmaker starts");
        Self::observe(inner, namespace)
    }

    fn config(configure: impl FnOnce(&mut MatchmakerConfig)) -> (String, MatchmakerConfig) {
        let namespace = format!("t{:08x}", rand::random::<u32>());
        let mut config = MatchmakerConfig::for_tests(&namespace, vec![stand_in_server().display().to_string()]);
        config.servers.stop_grace = Duration::from_secs(2);
        configure(&mut config);
        (namespace, config)
    }

    /// The env a self-hosted game server is started with to join this matchmaker's fleet.
    pub fn fleet_server_env(&self, server_id: &str, capacity: u32) -> Vec<(String, String)> {
        fleet_env(&self.nats_url(), &self.namespace, server_id, capacity)
    }

    /// The URL of this matchmaker's nats-server.
    pub fn nats_url(&self) -> String {
        self.inner.as_ref().and_then(|mm| mm.nats_url()).unwrap_or_default()
    }

    fn observe(inner: LocalMatchmaker, namespace: String) -> Self {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let kv = rt.block_on(async {
            let conn = NatsConnection::connect(
                &NatsConfig::new(inner.nats_url().expect("its own nats-server"), "test-observer"),
                InitialConnect::FailFast,
            )
            .await
            .expect("observer connects");
            KvStores::open(&conn.jetstream(), &bevygap_shared::Namespace::new(&namespace).unwrap().names())
                .await
                .expect("buckets exist")
        });
        Self { addrs: inner.addrs, provider: inner.provider.clone(), inner: Some(inner), rt, kv, namespace }
    }

    pub fn public_url(&self) -> String {
        format!("http://{}", self.addrs.public)
    }

    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addrs.admin.port())
    }

    /// One JSON-RPC call; returns (HTTP status, parsed body). Calls to the admin endpoint
    /// carry its token.
    pub fn call(&self, url: &str, method: &str, params: Value) -> (u16, Value) {
        let bearer = if url == self.admin_url() { self.admin_token() } else { None };
        post(url, &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string(), bearer)
    }

    /// The admin endpoint's token, if it demands one.
    pub fn admin_token(&self) -> Option<&str> {
        self.inner.as_ref().and_then(|mm| mm.admin_token())
    }

    pub fn join(&self, params: Value) -> Value {
        let (status, body) = self.call(&self.public_url(), "matchmaker.join", params);
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A streamed join: every `data:` message until the stream closes.
    pub fn join_stream(&self, params: Value) -> Vec<Value> {
        stream_join(&self.public_url(), params)
    }

    /// A streamed join's raw lines, keep-alive comments included.
    pub fn join_stream_lines(&self, params: Value) -> Vec<String> {
        stream_join_lines(&self.public_url(), params)
    }

    pub fn admin(&self, method: &str, params: Value) -> Value {
        let (status, body) = self.call(&self.admin_url(), method, params);
        assert_eq!(status, 200, "{body}");
        body["result"].clone()
    }

    /// Polls `check` until it returns Some or `secs` pass.
    pub fn wait_for<T>(&self, secs: u64, what: &str, mut check: impl FnMut(&Self) -> Option<T>) -> T {
        bevygap_testkit::wait_for(Duration::from_secs(secs), what, || check(self))
    }

    pub fn servers(&self) -> Vec<Value> {
        self.admin("admin.servers", json!({}))["servers"].as_array().cloned().unwrap_or_default()
    }

    /// Keys of a bucket that currently hold a value.
    pub fn keys(&self, store: &async_nats::jetstream::kv::Store) -> Vec<String> {
        use futures::StreamExt;
        self.rt.block_on(async {
            let mut keys = match store.keys().await {
                Ok(k) => k,
                Err(_) => return Vec::new(),
            };
            let mut out = Vec::new();
            while let Some(Ok(k)) = keys.next().await {
                out.push(k);
            }
            out.sort();
            out
        })
    }

    /// Simulates the game server reporting a connected player.
    pub fn player_joins(&self, server_id: &str, client_id: u64, session_id: &str) {
        let record = bevygap_shared::records::PlayerRecord {
            client_id,
            server_id: bevygap_shared::ServerId::new(server_id).unwrap(),
            session_id: session_id.into(),
            connected_at_ms: bevygap_shared::records::now_ms(),
            team: None,
        };
        let bytes = serde_json::to_vec(&record).unwrap();
        self.rt.block_on(self.kv.players.put(format!("{server_id}.{client_id}"), bytes.into())).unwrap();
    }

    /// Simulates the game server reporting the player gone.
    pub fn player_leaves(&self, server_id: &str, client_id: u64) {
        self.rt.block_on(self.kv.players.delete(format!("{server_id}.{client_id}"))).unwrap();
    }

    /// The session record of a ready join.
    pub fn session(&self, session_id: &str) -> Option<bevygap_shared::records::SessionRecord> {
        let bytes = self.rt.block_on(self.kv.sessions.get(session_id)).ok()??;
        serde_json::from_slice(&bytes).ok()
    }
}

impl Drop for Matchmaker {
    fn drop(&mut self) {
        drop(self.inner.take()); // stops the app, which stops its game servers
        if !std::thread::panicking() {
            assert!(self.provider.running().is_empty(), "game servers outlived the matchmaker");
        }
    }
}

/// A streamed join to the public endpoint at `url`: every `data:` message until the stream
/// closes (callable from any thread).
pub fn stream_join(url: &str, params: Value) -> Vec<Value> {
    stream_join_lines(url, params)
        .iter()
        .filter_map(|line| line.strip_prefix("data: ").map(|d| serde_json::from_str(d).expect("json event")))
        .collect()
}

/// The raw lines of a streamed join, keep-alive comments included.
pub fn stream_join_lines(url: &str, params: Value) -> Vec<String> {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "matchmaker.join+watch", "params": params}).to_string();
    let response =
        agent().post(url).header("content-type", "application/json").send(body.as_str()).expect("stream opens");
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("text/event-stream"));
    BufReader::new(response.into_body().into_reader()).lines().map_while(Result::ok).collect()
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(90)))
        .build()
        .into()
}

/// POSTs a raw body; returns (status, JSON body).
pub fn post(url: &str, body: &str, bearer: Option<&str>) -> (u16, Value) {
    let headers: Vec<(&str, String)> = bearer.map(|t| ("authorization", format!("Bearer {t}"))).into_iter().collect();
    post_with(url, body, &headers)
}

/// POSTs a raw body with extra headers; returns (status, JSON body).
pub fn post_with(url: &str, body: &str, headers: &[(&str, String)]) -> (u16, Value) {
    let mut req = agent().post(url).header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, value.as_str());
    }
    let mut response = req.send(body).expect("http request");
    let status = response.status().as_u16();
    let value = response.body_mut().read_json::<Value>().unwrap_or(Value::Null);
    (status, value)
}

pub fn addr(v: &Value) -> SocketAddr {
    v.as_str().expect("address string").parse().expect("socket address")
}

/// The env a self-hosted game server is started with to join a fleet: the provider → server
/// contract (free local ports), NATS and the Lightyear keys.
pub fn fleet_env(nats_url: &str, namespace: &str, server_id: &str, capacity: u32) -> Vec<(String, String)> {
    let free_udp = || std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("a free UDP port");
    let (udp, wt) = (free_udp(), free_udp());
    let env = bevygap_shared::server_env::ServerEnv {
        namespace: bevygap_shared::Namespace::new(namespace).unwrap(),
        server_id: bevygap_shared::ServerId::new(server_id).unwrap(),
        provider: "fleet".into(),
        game: bevygap_shared::protocol::GameName::new(GAME).unwrap(),
        version: bevygap_shared::protocol::GameVersion::new(VERSION).unwrap(),
        capacity,
        udp: Some(bevygap_shared::server_env::Endpoint { bind: udp, public: udp }),
        webtransport: Some(bevygap_shared::server_env::Endpoint { bind: wt, public: wt }),
    };
    let keys = test_keys();
    let mut vars: Vec<(String, String)> = env.to_vars().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    vars.push(("NATS_URL".into(), nats_url.to_string()));
    vars.extend(keys.to_env().map(|(name, value)| (name.to_string(), value)));
    vars
}

/// Keys of one of a namespace's buckets, read on a fresh connection to `nats_url` (retried for
/// a while: a replicated bucket answers only once its stream has a leader).
pub fn bucket_keys(nats_url: &str, namespace: &str, bucket: bevygap_shared::naming::Bucket) -> Vec<String> {
    use futures::TryStreamExt;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let conn = NatsConnection::connect(&NatsConfig::new(nats_url, "test-observer"), InitialConnect::FailFast)
            .await
            .expect("observer connects");
        let names = bevygap_shared::Namespace::new(namespace).unwrap().names();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let read = async {
                let store = conn.jetstream().get_key_value(names.bucket(bucket)).await.map_err(|e| e.to_string())?;
                let keys = store.keys().await.map_err(|e| e.to_string())?;
                keys.try_collect::<Vec<String>>().await.map_err(|e| e.to_string())
            };
            match read.await {
                Ok(keys) => return keys,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("reading {bucket:?} keys again: {e}");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("cannot read the {bucket:?} keys: {e}"),
            }
        }
    })
}

/// A local provider for `config`'s game servers that reach NATS at `nats_url` (one URL or
/// several, comma-separated) and inherit no NATS setting (`NATS_*`, `BEVYGAP_SERVER_NATS_*`)
/// of the test's own environment.
pub fn local_provider(
    config: &MatchmakerConfig,
    nats_url: String,
) -> Arc<bevygap_matchmaker::providers::LocalProvider> {
    use bevygap_matchmaker::providers::{LocalProvider, LocalProviderConfig};
    let provider = LocalProvider::new(LocalProviderConfig {
        command: config.local.command.clone(),
        namespace: config.namespace.clone(),
        public_ip: config.local.public_ip,
        keys: test_keys(),
        parent_env: std::env::vars().filter(|(k, _)| !k.contains("NATS")).collect(),
        extra_env: vec![("NATS_URL".into(), nats_url)],
        stop_grace: config.servers.stop_grace,
    });
    Arc::new(provider.expect("the local provider starts"))
}
