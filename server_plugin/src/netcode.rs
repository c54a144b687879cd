//! The Lightyear netcode servers: one per transport, sharing the protocol id, key and
//! admission gate, bound to the internal addresses and accepting tokens addressed to the
//! public ones.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use bevy::prelude::*;
use bevygap_shared::LightyearKeys;
use bevygap_shared::protocol::{ServerAddresses, Transport};
use bevygap_shared::server_env::Endpoint;
use lightyear::prelude::server::{NetcodeConfig, NetcodeServer, ServerUdpIo, Start, Stopped, WebTransportServerIo};
use lightyear::prelude::{Linked, LocalAddr};

use crate::admission::{AdmissionGate, AdmissionHandle};
use crate::api::BevygapStatus;
use crate::certificate::WebTransportCertificate;
use crate::context::ServerContext;

/// Marks a Lightyear server entity started by Bevygap, with the transport it serves.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct BevygapNetcodeServer {
    /// The transport this server entity serves.
    pub transport: Transport,
    /// The configured endpoint (bind may use port 0).
    pub endpoint: Endpoint,
}

/// The netcode keys, kept out of `Debug` output by [`LightyearKeys`].
#[derive(Resource, Debug, Clone)]
pub(crate) struct NetcodeKeys(pub LightyearKeys);

/// Spawns and starts the netcode servers and reports when they listen.
pub struct NetcodePlugin;

impl Plugin for NetcodePlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Startup, spawn_netcode_servers)
            .add_systems(Update, track_listening.in_set(crate::api::BevygapSystems::Receive));
    }
}

/// The netcode configuration for one transport.
pub fn netcode_config(keys: &LightyearKeys, capacity: u32, endpoint: Endpoint, gate: AdmissionGate) -> NetcodeConfig {
    NetcodeConfig::default()
        .with_protocol_id(keys.protocol_id)
        .with_key(*keys.private_key.expose())
        .with_max_clients(capacity as usize)
        // Tokens carry the public address; behind NAT or Edgegap's port mapping it differs
        // from the socket's own address, which netcode would otherwise insist on.
        .with_additional_expected_addresses([endpoint.public])
        .with_connection_request_handler(Arc::new(gate))
}

/// Fails early, with the address in the message, if a socket cannot be bound (Lightyear would
/// otherwise fail later inside an observer).
fn probe_bind(addr: SocketAddr) -> std::io::Result<()> {
    UdpSocket::bind(addr).map(drop)
}

fn spawn_netcode_servers(
    mut commands: Commands,
    ctx: Res<ServerContext>,
    keys: Res<NetcodeKeys>,
    admission: Res<AdmissionHandle>,
    cert: Option<Res<WebTransportCertificate>>,
    mut exit: MessageWriter<AppExit>,
) {
    for (transport, endpoint) in ctx.transports() {
        if let Err(e) = probe_bind(endpoint.bind) {
            error!("cannot listen for {transport:?} on {}: {e}", endpoint.bind);
            exit.write(AppExit::from_code(2));
            return;
        }
        let config = netcode_config(&keys.0, ctx.capacity, endpoint, AdmissionGate(admission.0.clone()));
        let mut server = commands.spawn((
            Name::new(format!("bevygap {transport:?} server")),
            BevygapNetcodeServer { transport, endpoint },
            NetcodeServer::new(config),
            LocalAddr(endpoint.bind),
        ));
        match transport {
            Transport::Udp => {
                server.insert(ServerUdpIo::default());
            }
            Transport::WebTransport => {
                let identity = cert
                    .as_ref()
                    .ok_or_else(|| "no certificate".to_string())
                    .and_then(|c| c.0.identity().map_err(|e| e.to_string()));
                match identity {
                    Ok(certificate) => {
                        server.insert(WebTransportServerIo { certificate });
                    }
                    Err(e) => {
                        error!("cannot serve WebTransport: {e}");
                        server.despawn();
                        exit.write(AppExit::from_code(2));
                        return;
                    }
                }
            }
        }
        let entity = server.id();
        info!("starting {transport:?} server on {} (public {})", endpoint.bind, endpoint.public);
        commands.trigger(Start { entity });
    }
}

/// The public addresses once bound: a public port of 0 takes the port the OS chose.
pub fn resolved_addresses(servers: impl IntoIterator<Item = (BevygapNetcodeServer, SocketAddr)>) -> ServerAddresses {
    let mut addresses = ServerAddresses::default();
    for (server, local) in servers {
        let mut public = server.endpoint.public;
        if public.port() == 0 {
            public.set_port(local.port());
        }
        match server.transport {
            Transport::Udp => addresses.udp = Some(public),
            Transport::WebTransport => addresses.webtransport = Some(public),
        }
    }
    addresses
}

fn track_listening(
    servers: Query<(&BevygapNetcodeServer, &LocalAddr, Has<Linked>, Has<Stopped>)>,
    mut status: ResMut<BevygapStatus>,
) {
    if servers.is_empty() {
        return;
    }
    let listening = servers.iter().all(|(_, _, linked, stopped)| linked && !stopped);
    if listening && !status.listening {
        status.addresses = resolved_addresses(servers.iter().map(|(s, local, _, _)| (*s, local.0)));
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
        let addresses = resolved_addresses([
            (BevygapNetcodeServer { transport: Transport::Udp, endpoint }, "127.0.0.1:4242".parse().unwrap()),
            (
                BevygapNetcodeServer { transport: Transport::WebTransport, endpoint: fixed },
                "0.0.0.0:5000".parse().unwrap(),
            ),
        ]);
        assert_eq!(addresses.udp, Some("127.0.0.1:4242".parse().unwrap()));
        assert_eq!(addresses.webtransport, Some("1.2.3.4:31000".parse().unwrap()));
    }
}
