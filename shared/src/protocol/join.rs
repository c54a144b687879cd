use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{ErrorCode, GameName, GameVersion, JoinError, PartyId, Region, RequestId, Transport};

/// A join request as it arrives on the wire: every field still untrusted text.
///
/// Unknown fields are ignored so newer clients keep working with an older matchmaker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub game: String,
    pub version: String,
    /// Client-chosen id; a retry with the same id resumes the same request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The player's IP, honoured only by a matchmaker in development mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<String>,
    /// The transport the client will connect with; the token lists that transport's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
}

/// A join request whose every field passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidJoinRequest {
    pub game: GameName,
    pub version: GameVersion,
    pub request_id: Option<RequestId>,
    pub client_ip: Option<IpAddr>,
    pub region: Option<Region>,
    pub party: Option<PartyId>,
    pub transport: Transport,
}

impl JoinRequest {
    /// A request for `game` at `version` with every optional field unset.
    pub fn new(game: impl Into<String>, version: impl Into<String>) -> Self {
        Self { game: game.into(), version: version.into(), ..Default::default() }
    }

    /// Validates every field; the error's message names the first field that is wrong.
    pub fn validate(&self) -> Result<ValidJoinRequest, JoinError> {
        let invalid = |e: &dyn std::fmt::Display| JoinError::new(ErrorCode::InvalidRequest, e.to_string());
        let client_ip = match &self.client_ip {
            Some(ip) => Some(ip.trim().parse::<IpAddr>().map_err(|_| {
                JoinError::new(ErrorCode::InvalidRequest, format!("client_ip {ip:?} is not an IPv4 or IPv6 address"))
            })?),
            None => None,
        };
        Ok(ValidJoinRequest {
            game: GameName::new(self.game.as_str()).map_err(|e| invalid(&e))?,
            version: GameVersion::new(self.version.as_str()).map_err(|e| invalid(&e))?,
            request_id: self.request_id.as_deref().map(RequestId::new).transpose().map_err(|e| invalid(&e))?,
            client_ip,
            region: self.region.as_deref().map(Region::new).transpose().map_err(|e| invalid(&e))?,
            party: self.party.as_deref().map(PartyId::new).transpose().map_err(|e| invalid(&e))?,
            transport: self.transport.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_a_full_request() {
        let json = r#"{"game":"spaceships","version":"1.0","request_id":"req-0001-abcd",
            "client_ip":"2001:db8::1","region":"eu","party":"p1","transport":"webtransport","future":1}"#;
        let req: JoinRequest = serde_json::from_str(json).unwrap();
        let valid = req.validate().unwrap();
        assert_eq!(valid.game.as_str(), "spaceships");
        assert_eq!(valid.client_ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(valid.transport, Transport::WebTransport);
    }

    #[test]
    fn errors_name_the_bad_field() {
        let mut req = JoinRequest::new("ok", "1.0");
        req.client_ip = Some("300.1.1.1".into());
        let err = req.validate().unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert!(err.message.contains("client_ip"), "{}", err.message);

        let err = JoinRequest::new("ok", "1 0").validate().unwrap_err();
        assert!(err.message.starts_with("version contains ' '"), "{}", err.message);

        let mut req = JoinRequest::new("ok", "1");
        req.request_id = Some("short".into());
        assert!(req.validate().unwrap_err().message.contains("request_id"));
    }

    #[test]
    fn defaults_to_udp() {
        assert_eq!(JoinRequest::new("g", "1").validate().unwrap().transport, Transport::Udp);
    }
}
