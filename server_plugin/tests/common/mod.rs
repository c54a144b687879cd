//! Shared test harness: a private nats-server with the buckets provisioned (playing the
//! matchmaker's part) and a Bevygap server App. Clients, stepping and records come from
//! `bevygap_testkit`.

#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

use std::net::SocketAddr;
use std::time::Duration;

use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use bevygap_server_plugin::prelude::*;
use bevygap_server_plugin::{AdmissionConfig, CertificateConfig, ReportingConfig, ServerOrigin, ShutdownConfig};
use bevygap_shared::kv::KvStores;
use bevygap_shared::naming::{Namespace, NatsNames, NatsRole, ServerId};
use bevygap_shared::nats::server_credentials::{AuthCallout, ServerCredentialKey};
use bevygap_shared::nats::{InitialConnect, NatsConfig, NatsConnection};
use bevygap_shared::records::{ClientGrant, PlayerRecord, ServerRecord, ServerStatus};
use bevygap_shared::server_env::Endpoint;
use bevygap_testkit::lightyear_client::{ClientConnection, Dial, TICK, client_connection, connecting_client};
use bevygap_testkit::records::{client_grant, test_game, test_version};
use bevygap_testkit::{
    DEADLINE, NatsServer, TEST_PRIVATE_KEY, TEST_PROTOCOL_ID, every, expect_step_until, step_until, test_keys,
};
use lightyear::netcode::ConnectToken;

/// How often checks that read NATS run while the apps step.
pub const NATS_POLL: Duration = Duration::from_millis(100);

/// The buckets of a namespace in a private NATS, provisioned and written as the matchmaker
/// would (grants before tokens, control commands), with a runtime to read and write KV from the
/// test thread (never used while an App updates).
pub struct GrantBuckets {
    pub nats: NatsServer,
    pub rt: tokio::runtime::Runtime,
    pub client: async_nats::Client,
    pub stores: KvStores,
    pub names: NatsNames,
}

impl GrantBuckets {
    pub fn start(namespace: &str) -> Self {
        let nats = NatsServer::start().expect("nats-server");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let names = Namespace::new(namespace).unwrap().names();
        let (client, stores) = rt.block_on(async {
            let client = async_nats::connect(nats.url()).await.unwrap();
            let stores = KvStores::provision(&async_nats::jetstream::new(client.clone()), &names).await.unwrap();
            (client, stores)
        });
        Self { nats, rt, client, stores, names }
    }

    /// A private NATS running the shipped role configuration (`assets/nats/bevygap.conf`, for
    /// namespace `spaceships`), provisioned by a client with the matchmaker's credentials and
    /// inbox, as the real matchmaker would be.
    pub fn start_with_shipped_permissions() -> Self {
        let nats = NatsServer::start_with_config(SHIPPED_NATS_CONFIG).expect("nats-server");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let names = Namespace::new("spaceships").unwrap().names();
        let config = shipped_role_config(&nats, "matchmaker").for_role(&names, NatsRole::Matchmaker);
        let (client, stores) = rt.block_on(async {
            let conn = NatsConnection::connect(&config, InitialConnect::FailFast).await.expect("matchmaker connects");
            let stores = KvStores::provision(&conn.jetstream(), &names).await.expect("matchmaker provisions");
            (conn.client().clone(), stores)
        });
        Self { nats, rt, client, stores, names }
    }

    /// A private NATS running the shipped per-server configuration
    /// (`assets/nats/bevygap-per-server.conf`, namespace `spaceships`) with a fresh issuer, the
    /// auth callout service answering, provisioned by the matchmaker role. Returns the key that
    /// game servers' credentials must be issued with.
    pub fn start_with_per_server_credentials() -> (Self, ServerCredentialKey) {
        let issuer = nkeys::KeyPair::new_account();
        let conf =
            SHIPPED_PER_SERVER_CONFIG.replace("REPLACE-WITH-THE-ISSUER-ACCOUNT-PUBLIC-KEY", &issuer.public_key());
        let nats = NatsServer::start_with_config(&conf).expect("nats-server");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let names = Namespace::new("spaceships").unwrap().names();
        let key = ServerCredentialKey::from_bytes([5; 32]);
        let seed = bevygap_shared::Secret::new(issuer.seed().unwrap());
        let callout = AuthCallout::new(&seed, key.clone(), names.clone(), "bevygap_spaceships").unwrap();
        let config = shipped_role_config(&nats, "matchmaker").for_role(&names, NatsRole::Matchmaker);
        let auth = shipped_role_config(&nats, "auth");
        let (client, stores) = rt.block_on(async {
            let auth = NatsConnection::connect(&auth, InitialConnect::FailFast).await.expect("callout connects");
            tokio::spawn(callout.serve(auth.client().clone()));
            let conn = NatsConnection::connect(&config, InitialConnect::FailFast).await.expect("matchmaker connects");
            let stores = KvStores::provision(&conn.jetstream(), &names).await.expect("matchmaker provisions");
            (conn.client().clone(), stores)
        });
        (Self { nats, rt, client, stores, names }, key)
    }

    /// Writes a grant, as the matchmaker does before handing out a token.
    pub fn grant(&self, server_id: &ServerId, client_id: u64, session: &str) {
        let grant = ClientGrant { session_id: session.into(), ..client_grant(server_id.as_str(), client_id) };
        let key = NatsNames::client_key(server_id, client_id);
        self.rt.block_on(self.stores.clients.put(key, serde_json::to_vec(&grant).unwrap().into())).unwrap();
    }

    pub fn server_record(&self, server_id: &ServerId) -> Option<ServerRecord> {
        self.read(&self.stores.servers, server_id.as_str().to_string())
    }

    pub fn player_record(&self, server_id: &ServerId, client_id: u64) -> Option<PlayerRecord> {
        self.read(&self.stores.players, NatsNames::player_key(server_id, client_id))
    }

    /// One KV value, or `None` when absent or NATS does not answer within 2 s.
    fn read<T: serde::de::DeserializeOwned>(&self, store: &async_nats::jetstream::kv::Store, key: String) -> Option<T> {
        let found = self.rt.block_on(async { tokio::time::timeout(Duration::from_secs(2), store.get(key)).await });
        match found {
            Ok(Ok(Some(bytes))) => Some(serde_json::from_slice(&bytes).unwrap()),
            _ => None,
        }
    }

    /// Publishes a control command to one server.
    pub fn command(&self, server_id: &ServerId, json: &str) {
        let subject = self.names.server_control_subject(server_id);
        self.rt.block_on(async {
            self.client.publish(subject, json.to_string().into()).await.unwrap();
            self.client.flush().await.unwrap();
        });
    }
}

/// The role configuration shipped for operators.
pub const SHIPPED_NATS_CONFIG: &str = include_str!("../../../assets/nats/bevygap.conf");
/// The per-server (auth callout) configuration shipped for operators.
pub const SHIPPED_PER_SERVER_CONFIG: &str = include_str!("../../../assets/nats/bevygap-per-server.conf");

/// How `user` (`matchmaker`, `gameserver`) of the shipped configuration connects to `nats`:
/// its user and its placeholder password.
pub fn shipped_role_config(nats: &NatsServer, user: &str) -> NatsConfig {
    let vars: std::collections::HashMap<String, String> =
        [("NATS_URL", nats.url()), ("NATS_USER", user.to_string()), ("NATS_PASSWORD", format!("change-me-{user}"))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    NatsConfig::from_source(&vars, user).expect("valid")
}

/// The nats-server's log lines about refused publishes or subscriptions.
pub fn permission_violations(nats: &NatsServer) -> Vec<String> {
    let log = std::fs::read_to_string(nats.dir().join("nats.log")).unwrap_or_default();
    log.lines().filter(|l| l.contains(" Violation")).map(str::to_string).collect()
}

/// The configuration of a test server on loopback with OS-chosen ports, as if started by the
/// `local` provider.
pub fn server_config(buckets: &GrantBuckets, id: &str, udp: bool, webtransport: bool) -> ServerConfig {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let endpoint = Endpoint { bind: any, public: any };
    let context = ServerContext {
        namespace: buckets.names.namespace().clone(),
        server_id: ServerId::new(id).unwrap(),
        origin: ServerOrigin::Bevygap("local".into()),
        game: test_game(),
        version: test_version(),
        capacity: 8,
        udp: udp.then_some(endpoint),
        webtransport: webtransport.then_some(endpoint),
    };
    ServerConfig {
        context,
        nats: NatsConfig::new(buckets.nats.url(), format!("test-{id}")),
        keys: test_keys(),
        admission: AdmissionConfig::default(),
        reporting: ReportingConfig::default(),
        shutdown: ShutdownConfig { handle_signals: false, ..Default::default() },
        certificate: CertificateConfig::default(),
        metrics: Default::default(),
    }
}

/// A server App as a game would build it.
pub fn server_app(config: ServerConfig) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, StatesPlugin))
        .add_plugins(lightyear::prelude::server::ServerPlugins { tick_duration: TICK })
        .add_plugins(BevygapServerPlugin::new(config).unwrap());
    app.finish();
    app.cleanup();
    app
}

/// A token for `client_id` addressed to `addr`, signed with this harness's key.
pub fn token(addr: SocketAddr, client_id: u64) -> ConnectToken {
    bevygap_testkit::lightyear_client::connect_token(addr, TEST_PROTOCOL_ID, TEST_PRIVATE_KEY, client_id)
}

/// A UDP client connecting to `addr` as `client_id`.
pub fn udp_client(addr: SocketAddr, client_id: u64) -> (App, Entity) {
    connecting_client(token(addr, client_id), Dial::Udp)
}

/// A UDP client for `client_id`, stepped along with `others` (the server, other clients) until
/// it is connected.
pub fn connected_udp_client(others: &mut [&mut App], addr: SocketAddr, client_id: u64) -> (App, Entity) {
    let (mut client, entity) = udp_client(addr, client_id);
    {
        let mut apps: Vec<&mut App> = others.iter_mut().map(|app| &mut **app).collect();
        apps.push(&mut client);
        expect_step_until(&mut apps, DEADLINE, &format!("client {client_id} to connect"), |apps| {
            apps.last().is_some_and(|app| client_connection(app, entity) == ClientConnection::Connected)
        });
    }
    (client, entity)
}

/// Steps `apps` until the player record of `client_id` is gone (the player left, however).
pub fn wait_for_no_player_record(apps: &mut [&mut App], buckets: &GrantBuckets, id: &ServerId, client_id: u64) {
    expect_step_until(
        apps,
        DEADLINE,
        &format!("the player record of client {client_id} to go"),
        every(NATS_POLL, || buckets.player_record(id, client_id).is_none()),
    );
}

/// Steps `apps` until the server has written the player record of `client_id`.
pub fn wait_for_player_record(
    apps: &mut [&mut App],
    buckets: &GrantBuckets,
    id: &ServerId,
    client_id: u64,
) -> PlayerRecord {
    let mut record = None;
    expect_step_until(
        apps,
        DEADLINE,
        &format!("the player record of client {client_id}"),
        every(NATS_POLL, || {
            record = buckets.player_record(id, client_id);
            record.is_some()
        }),
    );
    record.expect("found above")
}

/// A fresh matchmaker namespace and a server App `id` in it (serving UDP, and WebTransport if
/// asked), stepped until ready; with its server record as NATS holds it.
pub fn start_ready_server(
    namespace: &str,
    id: &str,
    webtransport: bool,
) -> (GrantBuckets, App, ServerId, ServerRecord) {
    let buckets = GrantBuckets::start(namespace);
    let server_id = ServerId::new(id).unwrap();
    let mut server = server_app(server_config(&buckets, id, true, webtransport));
    let record = wait_ready(&mut server, &buckets, &server_id);
    (buckets, server, server_id, record)
}

/// Steps the server until it is Ready and returns its server record from NATS.
pub fn wait_ready(server: &mut App, buckets: &GrantBuckets, id: &ServerId) -> ServerRecord {
    let ready = step_until(&mut [server], DEADLINE, |apps| phase(apps[0]) == BevygapServerState::Ready);
    assert!(ready, "server never became ready: {:?}", server.world().resource::<BevygapStatus>());
    let mut record = None;
    expect_step_until(
        &mut [server],
        DEADLINE,
        "a ready server record in NATS",
        every(NATS_POLL, || {
            record = buckets.server_record(id).filter(|r| r.status == ServerStatus::Ready);
            record.is_some()
        }),
    );
    record.expect("found above")
}

/// The server's lifecycle state.
pub fn phase(app: &App) -> BevygapServerState {
    *app.world().resource::<State<BevygapServerState>>().get()
}

/// Whether the server App has asked to exit.
pub fn exited(app: &App) -> bool {
    app.should_exit().is_some()
}
