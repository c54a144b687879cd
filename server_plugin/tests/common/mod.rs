//! Shared test harness: a private nats-server with the buckets provisioned (playing the
//! matchmaker's part), a Bevygap server App, and real Lightyear client Apps.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use bevygap_server_plugin::prelude::*;
use bevygap_server_plugin::{AdmissionSettings, CertificatePolicy, ReportingSettings, ShutdownSettings};
use bevygap_shared::kv::KvStores;
use bevygap_shared::naming::{Namespace, NatsNames, ServerId};
use bevygap_shared::nats::NatsConfig;
use bevygap_shared::protocol::{GameName, GameVersion, Transport};
use bevygap_shared::records::{ClientGrant, PlayerRecord, ServerRecord, now_ms};
use bevygap_shared::server_env::Endpoint;
use bevygap_shared::{LightyearKeys, PrivateKey};
use bevygap_testkit::NatsServer;
use lightyear::netcode::ConnectToken;
use lightyear::prelude::client::{ClientPlugins, NetcodeClient, NetcodeConfig, WebTransportClientIo};
use lightyear::prelude::{
    Authentication, Client, Connect, Connected, Disconnect, Disconnected, DisconnectedReason, LocalAddr, UdpIo,
};

pub const PROTOCOL_ID: u64 = 0xB3_5617;
pub const KEY: [u8; 32] = [42; 32];
pub const TICK: Duration = Duration::from_micros(16_667);
pub const DEADLINE: Duration = Duration::from_secs(20);

pub fn keys() -> LightyearKeys {
    LightyearKeys { protocol_id: PROTOCOL_ID, private_key: PrivateKey::from_bytes(KEY) }
}

/// A private NATS with the namespace provisioned, and a runtime to read and write KV from the
/// test thread (never used while an App updates).
pub struct Matchmaker {
    pub nats: NatsServer,
    pub rt: tokio::runtime::Runtime,
    pub client: async_nats::Client,
    pub stores: KvStores,
    pub names: NatsNames,
}

impl Matchmaker {
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

    /// Writes a grant, as the matchmaker does before handing out a token.
    pub fn grant(&self, server_id: &ServerId, client_id: u64, session: &str) {
        let grant = ClientGrant {
            client_id,
            server_id: server_id.clone(),
            session_id: session.into(),
            game: GameName::new("testgame").unwrap(),
            version: GameVersion::new("1.0").unwrap(),
            issued_at_ms: now_ms(),
            token_expires_at_ms: now_ms() + 30_000,
        };
        let key = NatsNames::client_key(server_id, client_id);
        self.rt.block_on(self.stores.clients.put(key, serde_json::to_vec(&grant).unwrap().into())).unwrap();
    }

    pub fn server_record(&self, server_id: &ServerId) -> Option<ServerRecord> {
        let found = self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(2), self.stores.servers.get(server_id.as_str())).await
        });
        match found {
            Ok(Ok(Some(bytes))) => Some(serde_json::from_slice(&bytes).unwrap()),
            _ => None,
        }
    }

    pub fn player_record(&self, server_id: &ServerId, client_id: u64) -> Option<PlayerRecord> {
        let key = NatsNames::player_key(server_id, client_id);
        let found = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(2), self.stores.players.get(key)).await });
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

/// Settings for a test server on loopback with OS-chosen ports.
pub fn settings(mm: &Matchmaker, id: &str, udp: bool, webtransport: bool) -> ServerSettings {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let endpoint = Endpoint { bind: any, public: any };
    let context = ServerContext {
        namespace: mm.names.namespace().clone(),
        server_id: ServerId::new(id).unwrap(),
        provider: Provider::Bevygap("local".into()),
        game: GameName::new("testgame").unwrap(),
        version: GameVersion::new("1.0").unwrap(),
        capacity: 8,
        udp: udp.then_some(endpoint),
        webtransport: webtransport.then_some(endpoint),
    };
    ServerSettings {
        context,
        nats: NatsConfig::new(mm.nats.url(), format!("test-{id}")),
        keys: keys(),
        admission: AdmissionSettings::default(),
        reporting: ReportingSettings::default(),
        shutdown: ShutdownSettings { handle_signals: false, ..Default::default() },
        certificate: CertificatePolicy::default(),
    }
}

use bevygap_server_plugin::Provider;

/// A server App as a game would build it.
pub fn server_app(settings: ServerSettings) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, StatesPlugin))
        .add_plugins(lightyear::prelude::server::ServerPlugins { tick_duration: TICK })
        .add_plugins(BevygapServerPlugin::new(settings).unwrap());
    app.finish();
    app.cleanup();
    app
}

/// A real Lightyear client App with one client entity using `token` over `transport`.
pub fn client_app(token: ConnectToken, transport: Transport, digest: Option<String>) -> (App, Entity) {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins).add_plugins(ClientPlugins { tick_duration: TICK });
    app.finish();
    app.cleanup();
    let netcode = NetcodeClient::new(Authentication::Token(token), NetcodeConfig::default()).unwrap();
    let mut client = app.world_mut().spawn((Client, netcode));
    match transport {
        Transport::Udp => {
            client.insert((UdpIo::default(), LocalAddr("127.0.0.1:0".parse().unwrap())));
        }
        Transport::WebTransport => {
            client.insert(WebTransportClientIo { certificate_digest: digest.unwrap_or_default(), target: None });
        }
    }
    let entity = client.id();
    app.world_mut().trigger(Connect { entity });
    (app, entity)
}

/// A token for `client_id` addressed to `addr`.
pub fn token(addr: SocketAddr, client_id: u64) -> ConnectToken {
    ConnectToken::build(addr, PROTOCOL_ID, client_id, KEY).expire_seconds(30).timeout_seconds(3).generate().unwrap()
}

/// Steps every app (5 ms apart) until `done` holds or the deadline passes.
pub fn step_until(apps: &mut [&mut App], timeout: Duration, mut done: impl FnMut(&mut [&mut App]) -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        for app in apps.iter_mut() {
            app.update();
        }
        if done(apps) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Steps until `done` holds, checking the (slow) condition only every 100 ms.
pub fn step_until_slow(apps: &mut [&mut App], timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut last_check = Instant::now() - Duration::from_secs(1);
    while start.elapsed() < timeout {
        for app in apps.iter_mut() {
            app.update();
        }
        if last_check.elapsed() >= Duration::from_millis(100) {
            if done() {
                return true;
            }
            last_check = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Steps the server until it is Ready and returns its server record from NATS.
pub fn wait_ready(server: &mut App, mm: &Matchmaker, id: &ServerId) -> ServerRecord {
    let ready = step_until(&mut [server], DEADLINE, |apps| {
        *apps[0].world().resource::<State<ServerPhase>>().get() == ServerPhase::Ready
    });
    assert!(ready, "server never became ready: {:?}", server.world().resource::<BevygapStatus>());
    let mut record = None;
    let found = step_until_slow(&mut [server], DEADLINE, || {
        record = mm.server_record(id).filter(|r| r.status == bevygap_shared::records::ServerStatus::Ready);
        record.is_some()
    });
    assert!(found, "no ready server record in NATS");
    record.unwrap()
}

/// Where a client stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientState {
    Pending,
    Connected,
    Disconnected(String),
}

pub fn client_state(app: &App, entity: Entity) -> ClientState {
    let world = app.world();
    if world.get::<Connected>(entity).is_some() {
        return ClientState::Connected;
    }
    match world.get::<Disconnected>(entity) {
        Some(Disconnected { reason: DisconnectedReason::Unknown }) | None => ClientState::Pending,
        Some(d) => ClientState::Disconnected(d.reason.to_string()),
    }
}

pub fn disconnect(app: &mut App, entity: Entity) {
    app.world_mut().trigger(Disconnect { entity });
}

/// Whether the server App has asked to exit.
pub fn exited(app: &App) -> bool {
    app.should_exit().is_some()
}
