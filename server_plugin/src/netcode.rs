//! The Lightyear netcode server: **one** Lightyear server entity for every transport, bound to
//! the internal addresses and accepting tokens addressed to the public ones.
//!
//! # Why one server entity
//!
//! Lightyear 0.30 classifies the app's networking from its *started* `Server` entities
//! (`NetworkingMetadata::mode`), and two started servers side by side are an invalid topology:
//! it logs "invalid Lightyear networking topology: multiple servers are started", `is_server`
//! run conditions turn false, and server-side input handling (`Single<…, With<Started>>`)
//! finds no server. So Bevygap starts a single netcode server and attaches every transport to
//! it, as Lightyear's transports allow (UDP sends only to its own `UdpLinkOfIO` links, Aeronet
//! sessions to theirs):
//!
//! - UDP is Lightyear's `ServerUdpIo` on the server entity itself.
//! - WebTransport is an Aeronet WebTransport listener on its own entity, related to the server
//!   entity by `AeronetLinkOf`: each accepted session becomes a `LinkOf` that server, exactly as
//!   Lightyear's `WebTransportServerIo` does for a server of its own.
//!
//! Sockets are bound first; the netcode server is added and started only once every socket is
//! bound, so the addresses it accepts tokens for (the internal and public address of each
//! transport, with any port 0 resolved) are known. Clients of both transports are the server's
//! `ClientOf`s; [`link_transport`] tells which transport a client link uses.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use aeronet_webtransport::server::{ServerConfig, WebTransportServer};
use bevy::prelude::*;
use bevygap_shared::LightyearKeys;
use bevygap_shared::protocol::{ServerAddresses, Transport};
use bevygap_shared::server_env::Endpoint;
use lightyear::link::LinkStart;
use lightyear::prelude::server::{NetcodeConfig, NetcodeServer, ServerUdpIo, Start, Started, Stopped};
use lightyear::prelude::{Linked, LocalAddr, Server};
use lightyear_aeronet::{AeronetLink, AeronetLinkOf};

use crate::admission::{AdmissionGate, AdmissionHandle};
use crate::api::BevygapStatus;
use crate::certificate::WebTransportCertificate;
use crate::context::ServerContext;

/// Marks the Lightyear server entity started by Bevygap, with the endpoints of the transports
/// it serves (all of them: there is one server entity, see the module docs).
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct BevygapNetcodeServer {
    /// The configured UDP endpoint (bind may use port 0), when UDP is served.
    pub udp: Option<Endpoint>,
    /// The configured WebTransport endpoint (bind may use port 0), when WebTransport is served.
    pub webtransport: Option<Endpoint>,
}

impl BevygapNetcodeServer {
    /// The configured endpoint of one transport.
    pub fn endpoint(&self, transport: Transport) -> Option<Endpoint> {
        match transport {
            Transport::Udp => self.udp,
            Transport::WebTransport => self.webtransport,
        }
    }
}

/// Marks the Aeronet WebTransport listener feeding the Bevygap server entity.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct BevygapWebTransportListener;

/// The socket addresses the transports are bound to, filled in as each one binds (a bind port
/// of 0 becomes the port the OS chose).
#[derive(Component, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BoundAddresses {
    /// The bound UDP socket.
    pub udp: Option<SocketAddr>,
    /// The bound WebTransport (QUIC) socket.
    pub webtransport: Option<SocketAddr>,
}

impl BoundAddresses {
    /// The bound address of one transport.
    pub fn get(&self, transport: Transport) -> Option<SocketAddr> {
        match transport {
            Transport::Udp => self.udp,
            Transport::WebTransport => self.webtransport,
        }
    }
}

/// The netcode keys, kept out of `Debug` output by [`LightyearKeys`].
#[derive(Resource, Debug, Clone)]
pub(crate) struct NetcodeKeys(pub LightyearKeys);

/// Binds the transports, then adds and starts the netcode server, and reports when it listens.
pub struct NetcodePlugin;

impl Plugin for NetcodePlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Startup, spawn_server).add_systems(
            Update,
            (start_netcode_once_bound, track_listening).chain().in_set(crate::api::BevygapSystems::Receive),
        );
    }
}

/// The netcode configuration: tokens may name the internal or public address of any transport
/// (`accepted`), because one netcode server serves them all and its own `LocalAddr` can be only
/// one of them.
pub fn netcode_config(
    keys: &LightyearKeys,
    capacity: u32,
    accepted: impl IntoIterator<Item = SocketAddr>,
    gate: AdmissionGate,
) -> NetcodeConfig {
    NetcodeConfig::default()
        .with_protocol_id(keys.protocol_id)
        .with_key(*keys.private_key.expose())
        .with_max_clients(capacity as usize)
        // Tokens carry the public address; behind NAT or Edgegap's port mapping it differs
        // from the socket's own address, which netcode would otherwise insist on.
        .with_additional_expected_addresses(accepted)
        .with_connection_request_handler(Arc::new(gate))
}

/// The transport a client link entity of the Bevygap server uses: WebTransport links are fed
/// by an Aeronet session (`AeronetLink`), UDP links by the server's UDP socket.
pub fn link_transport(has_aeronet_session: bool) -> Transport {
    if has_aeronet_session { Transport::WebTransport } else { Transport::Udp }
}

/// Query data telling a link's transport; see [`link_transport`].
pub type LinkTransport = Has<AeronetLink>;

/// Fails early, with the address in the message, if a socket cannot be bound (Lightyear would
/// otherwise fail later inside an observer).
fn probe_bind(addr: SocketAddr) -> std::io::Result<()> {
    UdpSocket::bind(addr).map(drop)
}

/// The WebTransport listener's settings: Lightyear's own (1 s keep-alive, 5 s idle timeout).
fn webtransport_config(bind: SocketAddr, cert: Option<&WebTransportCertificate>) -> Result<ServerConfig, String> {
    let identity = cert.ok_or_else(|| "no certificate".to_string())?.0.identity().map_err(|e| e.to_string())?;
    Ok(ServerConfig::builder()
        .with_bind_address(bind)
        .with_identity(identity)
        .keep_alive_interval(Some(Duration::from_secs(1)))
        .max_idle_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| format!("idle timeout: {e}"))?
        .build())
}

/// Spawns the one server entity and binds every transport (not netcode yet: see
/// [`start_netcode_once_bound`]). Exclusive, so the UDP socket's bound address can be read
/// right after binding, before the WebTransport listener's address is mirrored onto the entity.
fn spawn_server(world: &mut World) {
    let ctx = world.resource::<ServerContext>().clone();
    let exit = |world: &mut World, message: String| {
        error!("{message}");
        world.write_message(AppExit::from_code(2));
    };
    for (transport, endpoint) in ctx.transports() {
        if let Err(e) = probe_bind(endpoint.bind) {
            return exit(world, format!("cannot listen for {transport:?} on {}: {e}", endpoint.bind));
        }
    }
    let webtransport = match ctx.webtransport {
        Some(endpoint) => match webtransport_config(endpoint.bind, world.get_resource::<WebTransportCertificate>()) {
            Ok(config) => Some((endpoint, config)),
            Err(e) => return exit(world, format!("cannot serve WebTransport: {e}")),
        },
        None => None,
    };
    let marker = BevygapNetcodeServer { udp: ctx.udp, webtransport: ctx.webtransport };
    let server = world.spawn((Name::new("bevygap server"), marker, Server::default(), BoundAddresses::default())).id();
    if let Some(endpoint) = ctx.udp {
        info!("starting UDP on {} (public {})", endpoint.bind, endpoint.public);
        world.entity_mut(server).insert((ServerUdpIo::default(), LocalAddr(endpoint.bind)));
        world.trigger(LinkStart { entity: server });
        world.flush();
        let bound = world.get::<Linked>(server).and(world.get::<LocalAddr>(server)).map(|a| a.0);
        match bound {
            Some(addr) => {
                if let Some(mut addresses) = world.get_mut::<BoundAddresses>(server) {
                    addresses.udp = Some(addr);
                }
            }
            None => return exit(world, format!("cannot listen for UDP on {}", endpoint.bind)),
        }
    }
    if let Some((endpoint, config)) = webtransport {
        info!("starting WebTransport on {} (public {})", endpoint.bind, endpoint.public);
        let listener = world.spawn((
            Name::new("bevygap WebTransport listener"),
            BevygapWebTransportListener,
            AeronetLinkOf(server),
        ));
        WebTransportServer::open(config).apply(listener);
    }
}

/// Once every transport is bound, adds the netcode server (accepting tokens for every
/// transport's addresses) and starts it.
fn start_netcode_once_bound(
    mut commands: Commands,
    mut servers: Query<(Entity, &BevygapNetcodeServer, &mut BoundAddresses), Without<NetcodeServer>>,
    // The listener gets its `LocalAddr` when it has opened.
    listeners: Query<&LocalAddr, With<BevygapWebTransportListener>>,
    ctx: Res<ServerContext>,
    keys: Res<NetcodeKeys>,
    admission: Res<AdmissionHandle>,
) {
    for (entity, server, mut bound) in &mut servers {
        if server.webtransport.is_some() && bound.webtransport.is_none() {
            match listeners.iter().next() {
                Some(addr) => bound.webtransport = Some(addr.0),
                None => continue,
            }
        }
        let addresses = resolved_addresses(server, &bound);
        let accepted: Vec<SocketAddr> = [Transport::Udp, Transport::WebTransport]
            .into_iter()
            .flat_map(|t| [bound.get(t), addresses.get(t)])
            .flatten()
            .collect();
        let config = netcode_config(&keys.0, ctx.capacity, accepted, AdmissionGate(admission.0.clone()));
        info!("starting the netcode server for {addresses:?}");
        commands.entity(entity).insert(NetcodeServer::new(config));
        commands.trigger(Start { entity });
    }
}

/// The public addresses once bound: a public port of 0 takes the port the OS chose.
pub fn resolved_addresses(server: &BevygapNetcodeServer, bound: &BoundAddresses) -> ServerAddresses {
    let resolve = |transport| {
        let endpoint: Endpoint = server.endpoint(transport)?;
        let mut public = endpoint.public;
        if public.port() == 0 {
            public.set_port(bound.get(transport)?.port());
        }
        Some(public)
    };
    ServerAddresses { udp: resolve(Transport::Udp), webtransport: resolve(Transport::WebTransport) }
}

/// What tells whether the server listens: it is started (netcode added once every socket is
/// bound), linked and not stopped.
type ListeningState = (&'static BevygapNetcodeServer, &'static BoundAddresses, Has<Started>, Has<Linked>, Has<Stopped>);

fn track_listening(servers: Query<ListeningState, With<NetcodeServer>>, mut status: ResMut<BevygapStatus>) {
    let Some((server, bound, started, linked, stopped)) = servers.iter().next() else {
        return;
    };
    let listening = started && linked && !stopped;
    if listening && !status.listening {
        status.addresses = resolved_addresses(server, bound);
        info!("listening: {:?}", status.addresses);
        status.listening = true;
    } else if !listening && status.listening {
        status.listening = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_port_of_zero_takes_the_bound_port() {
        let endpoint = Endpoint { bind: "127.0.0.1:0".parse().unwrap(), public: "127.0.0.1:0".parse().unwrap() };
        let fixed = Endpoint { bind: "0.0.0.0:5000".parse().unwrap(), public: "1.2.3.4:31000".parse().unwrap() };
        let server = BevygapNetcodeServer { udp: Some(endpoint), webtransport: Some(fixed) };
        let bound = BoundAddresses {
            udp: Some("127.0.0.1:4242".parse().unwrap()),
            webtransport: Some("0.0.0.0:5000".parse().unwrap()),
        };
        let addresses = resolved_addresses(&server, &bound);
        assert_eq!(addresses.udp, Some("127.0.0.1:4242".parse().unwrap()));
        assert_eq!(addresses.webtransport, Some("1.2.3.4:31000".parse().unwrap()));
        let unbound = resolved_addresses(&server, &BoundAddresses::default());
        assert_eq!((unbound.udp, unbound.webtransport), (None, Some("1.2.3.4:31000".parse().unwrap())));
    }

    #[test]
    fn links_fed_by_an_aeronet_session_are_webtransport() {
        assert_eq!(link_transport(true), Transport::WebTransport);
        assert_eq!(link_transport(false), Transport::Udp);
    }
}
