use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{ErrorCode, GameName, GameVersion, JoinError, PartyId, Region, RequestId, TicketAttributes, Transport};

/// Most players a party may have.
pub const MAX_PARTY_SIZE: u32 = 64;

/// A join request as it arrives on the wire: every field still untrusted text.
///
/// Unknown fields are ignored so newer clients keep working with an older matchmaker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// How many players the party has, counting this one. A match mode needs it to keep a
    /// party whole: the party's ticket waits until every member has joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party_size: Option<u32>,
    /// The transport the client will connect with; the token lists that transport's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// The mode: a profile of the game (unset: `drop_in`, a seat on any server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// What the mode's rules compare (the player's claims; see [`TicketAttributes`]).
    #[serde(default, skip_serializing_if = "TicketAttributes::is_empty")]
    pub attributes: TicketAttributes,
    /// Measured round trips in milliseconds, by location.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latencies: BTreeMap<String, f64>,
}

/// A join request whose every field passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidJoinRequest {
    pub game: GameName,
    pub version: GameVersion,
    pub request_id: Option<RequestId>,
    pub client_ip: Option<IpAddr>,
    pub region: Option<Region>,
    pub party: Option<PartyId>,
    pub party_size: Option<u32>,
    pub transport: Transport,
    pub mode: Option<String>,
    pub attributes: TicketAttributes,
    pub latencies: BTreeMap<String, f64>,
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
        if let Some(mode) = &self.mode {
            super::check_mode(mode).map_err(|e| invalid(&e))?;
        }
        self.attributes.check().map_err(|e| invalid(&e))?;
        if let Some(size) = self.party_size {
            if self.party.is_none() {
                return Err(JoinError::new(ErrorCode::InvalidRequest, "party_size is set but party is not"));
            }
            if !(1..=MAX_PARTY_SIZE).contains(&size) {
                return Err(JoinError::new(
                    ErrorCode::InvalidRequest,
                    format!("party_size {size} is not between 1 and {MAX_PARTY_SIZE}"),
                ));
            }
        }
        super::check_latencies(&self.latencies).map_err(|e| invalid(&e))?;
        Ok(ValidJoinRequest {
            game: GameName::new(self.game.as_str()).map_err(|e| invalid(&e))?,
            version: GameVersion::new(self.version.as_str()).map_err(|e| invalid(&e))?,
            request_id: self.request_id.as_deref().map(RequestId::new).transpose().map_err(|e| invalid(&e))?,
            client_ip,
            region: self.region.as_deref().map(Region::new).transpose().map_err(|e| invalid(&e))?,
            party: self.party.as_deref().map(PartyId::new).transpose().map_err(|e| invalid(&e))?,
            party_size: self.party_size,
            transport: self.transport.unwrap_or_default(),
            mode: self.mode.clone(),
            attributes: self.attributes.clone(),
            latencies: self.latencies.clone(),
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
    fn a_ticket_carries_its_mode_attributes_and_latencies_and_old_requests_still_parse() {
        let json = r#"{"game":"g","version":"1","mode":"duel","attributes":{"numbers":{"elo":1200},
            "lists":{"maps":["dust","port"]}},"latencies":{"eu":21.5,"us":98}}"#;
        let valid = serde_json::from_str::<JoinRequest>(json).unwrap().validate().unwrap();
        assert_eq!(valid.mode.as_deref(), Some("duel"));
        assert_eq!(valid.attributes.numbers["elo"], 1200.0);
        assert_eq!(valid.latencies["eu"], 21.5);
        let old = serde_json::from_str::<JoinRequest>(r#"{"game":"g","version":"1"}"#).unwrap();
        assert!(old.mode.is_none() && old.attributes.is_empty() && old.latencies.is_empty());
        assert_eq!(
            serde_json::to_value(&old).unwrap(),
            serde_json::json!({"game": "g", "version": "1"}),
            "nothing new on the wire"
        );
        let mut bad = JoinRequest::new("g", "1");
        bad.latencies.insert("eu".into(), f64::INFINITY);
        assert!(bad.validate().unwrap_err().message.contains("latencies.eu"));
        bad.latencies.clear();
        bad.mode = Some("two words".into());
        assert!(bad.validate().unwrap_err().message.contains("mode"));
        bad.mode = None;
        bad.party_size = Some(2);
        assert!(bad.validate().unwrap_err().message.contains("party is not"));
        bad.party = Some("p1".into());
        assert_eq!(bad.validate().unwrap().party_size, Some(2));
        bad.party_size = Some(MAX_PARTY_SIZE + 1);
        assert!(bad.validate().unwrap_err().message.contains("party_size"));
    }

    #[test]
    fn defaults_to_udp() {
        assert_eq!(JoinRequest::new("g", "1").validate().unwrap().transport, Transport::Udp);
    }
}
