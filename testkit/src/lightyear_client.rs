//! Real Lightyear clients for tests: a headless client app, bare or with the plugin under test,
//! and a client entity connecting with a `ConnectToken` over UDP or WebTransport.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use lightyear::netcode::{ConnectToken, Key};
use lightyear::prelude::client::{ClientPlugins, NetcodeClient, NetcodeConfig, WebTransportClientIo};
use lightyear::prelude::{
    Authentication, Client, Connect, Connected, Disconnect, Disconnected, DisconnectedReason, LocalAddr, UdpIo,
};

/// The tick every test app runs at (60 Hz, as the demo server).
pub const TICK: Duration = Duration::from_micros(16_667);

/// A headless Lightyear client app ready to be stepped by hand: `MinimalPlugins`, Bevy's
/// `StatesPlugin` and Lightyear's `ClientPlugins` at [`TICK`], then whatever `configure` adds
/// (the plugin under test, recorders), then the plugins' `finish` and `cleanup`, which
/// `App::run` would otherwise call.
pub fn client_app(configure: impl FnOnce(&mut App)) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, StatesPlugin)).add_plugins(ClientPlugins { tick_duration: TICK });
    configure(&mut app);
    app.finish();
    app.cleanup();
    app
}

/// How a test client reaches its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dial {
    /// Plain UDP from an ephemeral loopback port.
    Udp,
    /// WebTransport, pinning the server's certificate by its SHA-256 digest (lowercase hex, no
    /// colons; a wrong one makes the client refuse the server).
    WebTransport {
        /// The digest the server published.
        cert_digest: String,
    },
}

/// A bare client app with one client entity that starts connecting with `token` over `dial`.
/// Returns the app and the client entity; step it with the server until
/// [`client_connection`] says how it went.
pub fn connecting_client(token: ConnectToken, dial: Dial) -> (App, Entity) {
    connecting_client_with(token, dial, NetcodeConfig::default())
}

/// [`connecting_client`] with these netcode settings (a game's own, say).
pub fn connecting_client_with(token: ConnectToken, dial: Dial, config: NetcodeConfig) -> (App, Entity) {
    let mut app = client_app(|_| {});
    let netcode = NetcodeClient::new(Authentication::Token(token), config)
        .expect("a netcode client accepts any well-formed token");
    let mut client = app.world_mut().spawn((Client, netcode));
    match dial {
        Dial::Udp => {
            client.insert((UdpIo::default(), LocalAddr(SocketAddr::from(([127, 0, 0, 1], 0)))));
        }
        Dial::WebTransport { cert_digest } => {
            client.insert(WebTransportClientIo { certificate_digest: cert_digest, target: None });
        }
    }
    let entity = client.id();
    app.world_mut().trigger(Connect { entity });
    (app, entity)
}

/// A token for `client_id` addressed to `server`, as a matchmaker would mint it: valid for
/// 30 s, and a connection that times out after 3 s of silence (so a test notices a dead
/// server quickly).
pub fn connect_token(server: SocketAddr, protocol_id: u64, key: Key, client_id: u64) -> ConnectToken {
    ConnectToken::build(server, protocol_id, client_id, key)
        .expire_seconds(30)
        .timeout_seconds(3)
        .generate()
        .expect("a token for one address with default lengths is always valid")
}

/// Decodes the base64 `connect_token` of a ready payload.
pub fn decode_connect_token(base64: &str) -> ConnectToken {
    let bytes = base64::engine::general_purpose::STANDARD.decode(base64.trim()).expect("the token is base64");
    ConnectToken::try_from_bytes(&bytes).expect("the token is a Lightyear connect token")
}

/// Where a client stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientConnection {
    /// Still connecting (or never started).
    Pending,
    /// Connected to the server.
    Connected,
    /// Gave up or was refused, with Lightyear's reason (`ConnectionDenied`, `Link failed…`).
    Disconnected(String),
}

/// The state of the client entity `entity` in `app`.
pub fn client_connection(app: &App, entity: Entity) -> ClientConnection {
    let world = app.world();
    if world.get::<Connected>(entity).is_some() {
        return ClientConnection::Connected;
    }
    match world.get::<Disconnected>(entity) {
        Some(Disconnected { reason: DisconnectedReason::Unknown }) | None => ClientConnection::Pending,
        Some(d) => ClientConnection::Disconnected(d.reason.to_string()),
    }
}

/// Whether the client entity has been refused or has given up.
pub fn is_disconnected(app: &App, entity: Entity) -> bool {
    matches!(client_connection(app, entity), ClientConnection::Disconnected(_))
}

/// Disconnects the client entity, as a game leaving its server would.
pub fn disconnect(app: &mut App, entity: Entity) {
    app.world_mut().trigger(Disconnect { entity });
}
