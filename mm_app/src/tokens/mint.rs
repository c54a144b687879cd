//! Minting Lightyear ConnectTokens: plain Rust, tested without an App.

use std::net::SocketAddr;

use base64::Engine;
use bevygap_shared::LightyearKeys;
use lightyear::netcode::{ConnectToken, USER_DATA_BYTES};

/// A token could not be built (an internal fault: inputs are validated before).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    #[error("netcode refused the token: {0}")]
    Netcode(String),
    #[error("session id is longer than the {USER_DATA_BYTES} bytes of token user data")]
    UserDataTooLong,
}

/// What goes into one token.
pub struct TokenSpec<'a> {
    /// The address the client dials, for the transport it asked for.
    pub server_addr: SocketAddr,
    pub client_id: u64,
    pub keys: &'a LightyearKeys,
    /// Seconds the token can start a connection; short, since netcode does not block replays.
    pub expire_secs: u32,
    /// Seconds without packets before the connection is dropped.
    pub timeout_secs: u32,
    /// Carried to the game server as `TokenUserData` (the session id, for its logs and admission).
    pub session_id: &'a str,
}

/// Builds the token and encodes its 2048 bytes as standard base64, the form of the wire protocol.
pub fn mint(spec: &TokenSpec<'_>) -> Result<String, MintError> {
    let mut user_data = [0u8; USER_DATA_BYTES];
    let session = spec.session_id.as_bytes();
    if session.len() > USER_DATA_BYTES {
        return Err(MintError::UserDataTooLong);
    }
    user_data[..session.len()].copy_from_slice(session);
    let expire = i32::try_from(spec.expire_secs).unwrap_or(i32::MAX);
    let timeout = i32::try_from(spec.timeout_secs).unwrap_or(i32::MAX);
    let token =
        ConnectToken::build(spec.server_addr, spec.keys.protocol_id, spec.client_id, *spec.keys.private_key.expose())
            .expire_seconds(expire)
            .timeout_seconds(timeout)
            .user_data(user_data)
            .generate()
            .map_err(|e| MintError::Netcode(e.to_string()))?;
    let bytes = token.try_into_bytes().map_err(|e| MintError::Netcode(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The public (unencrypted) part of a ConnectToken, for tests and diagnostics: netcode's
/// layout is version(13) protocol_id(8) created(8) expires(8) nonce(24) private(1024)
/// timeout(4) then the server address list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub protocol_id: u64,
    pub expires_at: u64,
    pub created_at: u64,
    pub timeout_secs: i32,
    pub server_addresses: Vec<SocketAddr>,
}

/// Why a token could not be inspected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    #[error("not standard base64: {0}")]
    Base64(String),
    #[error("not a ConnectToken Lightyear can read: {0}")]
    NotAToken(String),
    #[error("the token ends early")]
    Short,
    #[error("unknown address type {0:?}")]
    AddressType(Option<u8>),
}

/// Decodes a base64 token's public part, checking it is a token Lightyear can read.
pub fn inspect(token_b64: &str) -> Result<TokenInfo, InspectError> {
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(token_b64).map_err(|e| InspectError::Base64(e.to_string()))?;
    ConnectToken::try_from_bytes(&bytes).map_err(|e| InspectError::NotAToken(format!("{e:?}")))?;
    let u64_at = |at: usize| bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
    let protocol_id = u64_at(13).ok_or(InspectError::Short)?;
    let created_at = u64_at(21).ok_or(InspectError::Short)?;
    let expires_at = u64_at(29).ok_or(InspectError::Short)?;
    let mut at = 13 + 8 + 8 + 8 + 24 + 1024;
    let timeout_secs =
        bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).map(i32::from_be_bytes).ok_or(InspectError::Short)?;
    at += 4;
    let count =
        bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes).ok_or(InspectError::Short)?;
    at += 4;
    let mut server_addresses = Vec::new();
    for _ in 0..count {
        // Address type 1 is IPv4 (4 bytes), 2 is IPv6 (16 bytes); a big-endian port follows.
        let (addr, len) = match bytes.get(at) {
            Some(1) => (read_ip::<4>(&bytes, at + 1).map(std::net::IpAddr::from), 4),
            Some(2) => (read_ip::<16>(&bytes, at + 1).map(std::net::IpAddr::from), 16),
            other => return Err(InspectError::AddressType(other.copied())),
        };
        let port = read_ip::<2>(&bytes, at + 1 + len).map(u16::from_be_bytes);
        server_addresses.push(SocketAddr::new(addr.ok_or(InspectError::Short)?, port.ok_or(InspectError::Short)?));
        at += 1 + len + 2;
    }
    Ok(TokenInfo { protocol_id, expires_at, created_at, timeout_secs, server_addresses })
}

/// `N` bytes at `at`, if the token is long enough.
fn read_ip<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at + N).and_then(|b| b.try_into().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mints_a_token_lightyear_can_read_for_the_right_server() {
        let keys = LightyearKeys { protocol_id: 77, private_key: bevygap_shared::PrivateKey::from_bytes([9; 32]) };
        let addr: SocketAddr = "127.0.0.1:5123".parse().unwrap();
        let token = mint(&TokenSpec {
            server_addr: addr,
            client_id: 42,
            keys: &keys,
            expire_secs: 30,
            timeout_secs: 10,
            session_id: "s-1",
        })
        .unwrap();
        let info = inspect(&token).unwrap();
        assert_eq!(info.protocol_id, 77);
        assert_eq!(info.server_addresses, vec![addr]);
        assert_eq!(info.timeout_secs, 10);
        assert_eq!(info.expires_at - info.created_at, 30);
    }

    #[test]
    fn inspect_rejects_garbage() {
        assert!(inspect("not base64!").is_err());
        assert!(inspect("AAAA").is_err());
    }
}
