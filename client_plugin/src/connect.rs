//! The Lightyear side: turning a ready payload into a configured, connecting client entity.

use std::net::SocketAddr;
#[cfg(not(target_arch = "wasm32"))]
use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine;
use bevy::prelude::*;
use bevygap_shared::protocol::{ReadyPayload, Transport};
use lightyear::netcode::{CONNECT_TOKEN_BYTES, ConnectToken};
use lightyear::prelude::client::{NetcodeClient, NetcodeConfig, WebTransportClientIo};
use lightyear::prelude::{Authentication, Connect};
#[cfg(not(target_arch = "wasm32"))]
use lightyear::prelude::{LocalAddr, UdpIo};

/// Marks the entity that becomes the Lightyear client.
///
/// Spawn it yourself (with any components of your own, such as your protocol's message
/// receivers) before connecting, or let the plugin spawn one. On each successful join the
/// plugin inserts the `NetcodeClient` and the transport's IO on it and triggers `Connect`;
/// if there are several, the first found is used.
#[derive(Component, Debug, Default, Clone, Copy, Reflect)]
#[reflect(Component)]
pub struct BevygapClient;

/// A ready payload that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadyError {
    /// The token is not base64.
    #[error("the connect token is not base64: {0}")]
    TokenEncoding(#[from] base64::DecodeError),
    /// The token has the wrong length (its length in bytes).
    #[error("the connect token is {0} bytes long; a Lightyear token is {CONNECT_TOKEN_BYTES}")]
    TokenLength(usize),
    /// Lightyear cannot read the token.
    #[error("the connect token is invalid: {0}")]
    TokenInvalid(#[from] lightyear::netcode::InvalidTokenError),
    /// The payload lists no address for the transport it chose.
    #[error("the server offers no {0:?} address although the token is for it")]
    NoAddress(Transport),
    /// Lightyear refused to build a client from the token.
    #[error("cannot create the netcode client: {0}")]
    Netcode(#[from] lightyear::netcode::Error),
    /// This target cannot use the transport (a browser has no UDP).
    #[error("this build cannot connect over {0:?} (browsers only have WebTransport)")]
    TransportUnavailable(Transport),
}

/// Everything the Lightyear client needs, checked.
pub struct ServerTarget {
    pub token: ConnectToken,
    pub transport: Transport,
    /// The address the matchmaker lists for `transport`.
    pub address: SocketAddr,
    /// Lowercase hex SHA-256 of the server's WebTransport certificate.
    pub cert_digest: Option<String>,
}

impl ServerTarget {
    /// Checks and decodes a ready payload; nothing from the network is trusted unchecked.
    pub fn from_ready(ready: &ReadyPayload) -> Result<Self, ReadyError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(ready.connect_token.trim())?;
        if bytes.len() != CONNECT_TOKEN_BYTES {
            return Err(ReadyError::TokenLength(bytes.len()));
        }
        let token = ConnectToken::try_from_bytes(&bytes)?;
        let address = ready.addresses.get(ready.transport).ok_or(ReadyError::NoAddress(ready.transport))?;
        Ok(Self {
            token,
            transport: ready.transport,
            address,
            cert_digest: ready.cert_digest.as_ref().map(|d| d.as_str().to_string()),
        })
    }
}

/// How often the netcode client sends when it has nothing else to send: connection requests
/// and challenge responses during the handshake, keep-alives after it. Lightyear's default
/// (ten a second) holds each handshake step until the next send, so connecting took about
/// 110 ms even on loopback (BENCHMARKS.md, scenario c); thirty a second cuts that to a few
/// tens of milliseconds. A keep-alive is a few dozen bytes and only goes out when the game
/// sent nothing in the interval.
pub const NETCODE_SEND_INTERVAL_SECS: f64 = 1.0 / 30.0;

/// The netcode settings the plugin connects with (see [`NETCODE_SEND_INTERVAL_SECS`]).
pub fn netcode_config() -> NetcodeConfig {
    NetcodeConfig { keepalive_packet_send_rate: NETCODE_SEND_INTERVAL_SECS, ..NetcodeConfig::default() }
}

/// Inserts the netcode client and the IO for the target's transport on `entity`, then
/// triggers Lightyear's `Connect`. Returns the address the client will dial (the token's).
pub fn connect_client(commands: &mut Commands, entity: Entity, target: ServerTarget) -> Result<SocketAddr, ReadyError> {
    let netcode = NetcodeClient::new(Authentication::Token(target.token), netcode_config())?;
    let dialled = netcode.inner.server_addr();
    if dialled != target.address {
        // The token decides where the client goes; a mismatch is the matchmaker's bug to log.
        warn!("the connect token dials {dialled} but the matchmaker listed {}", target.address);
    }
    let mut client = commands.entity(entity);
    match target.transport {
        #[cfg(target_arch = "wasm32")]
        Transport::Udp => return Err(ReadyError::TransportUnavailable(Transport::Udp)),
        #[cfg(not(target_arch = "wasm32"))]
        Transport::Udp => {
            let any = if dialled.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
            client.remove::<WebTransportClientIo>().insert((
                netcode,
                UdpIo::default(),
                LocalAddr(SocketAddr::new(any, 0)),
            ));
        }
        Transport::WebTransport => {
            // An empty digest means "validate the certificate normally" (a CA-signed server).
            let certificate_digest = target.cert_digest.unwrap_or_default();
            #[cfg(not(target_arch = "wasm32"))]
            client.remove::<UdpIo>();
            client.insert((netcode, WebTransportClientIo { certificate_digest, target: None }));
        }
    }
    commands.trigger(Connect { entity });
    Ok(dialled)
}

#[cfg(test)]
mod tests {
    use bevygap_shared::protocol::ServerAddresses;

    use super::*;

    fn ready(token: String, transport: Transport) -> ReadyPayload {
        ReadyPayload {
            connect_token: token,
            transport,
            addresses: ServerAddresses { udp: Some("127.0.0.1:5000".parse().unwrap()), webtransport: None },
            cert_digest: None,
            request_id: "req-00000001".into(),
            session_id: "s".into(),
            token_expires_in_secs: 30,
        }
    }

    fn real_token() -> String {
        let token = ConnectToken::build("127.0.0.1:5000", 1, 7, [3; 32]).generate().unwrap();
        base64::engine::general_purpose::STANDARD.encode(token.try_into_bytes().unwrap())
    }

    #[test]
    fn accepts_a_real_token() {
        let target = ServerTarget::from_ready(&ready(real_token(), Transport::Udp)).unwrap();
        assert_eq!(target.address, "127.0.0.1:5000".parse().unwrap());
    }

    #[test]
    fn refuses_broken_tokens_and_missing_addresses() {
        let short = base64::engine::general_purpose::STANDARD.encode([0u8; 100]);
        assert!(matches!(ServerTarget::from_ready(&ready(short, Transport::Udp)), Err(ReadyError::TokenLength(100))));
        assert!(matches!(
            ServerTarget::from_ready(&ready("%%%".into(), Transport::Udp)),
            Err(ReadyError::TokenEncoding(_))
        ));
        let garbage = base64::engine::general_purpose::STANDARD.encode([0xffu8; CONNECT_TOKEN_BYTES]);
        assert!(ServerTarget::from_ready(&ready(garbage, Transport::Udp)).is_err());
        assert!(matches!(
            ServerTarget::from_ready(&ready(real_token(), Transport::WebTransport)),
            Err(ReadyError::NoAddress(Transport::WebTransport))
        ));
    }
}
