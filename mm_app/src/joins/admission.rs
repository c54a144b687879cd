//! Whether a join request is let in: a pure check of the game catalog, the waiting caps and
//! request-id ownership, tested without an App. The `matchmaker.join` handler gathers the
//! counts, calls [`admit`], and only translates the answer.

use std::net::IpAddr;

use std::collections::HashMap;

use bevygap_shared::protocol::{ErrorCode, JoinError, ValidJoinRequest};

use super::machine::{Join, MatchClaims, Requester};
use crate::matching::{DEFAULT_PROFILE, ProfileKind, ProfileSet};

/// The caps that keep one player, or everyone together, from queueing without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Joins waiting at once, from everyone.
    pub max_waiting: usize,
    /// Joins waiting at once from one requester address.
    pub max_per_requester: usize,
}

/// How many joins are waiting now (not yet answered), and how many seats the requester holds:
/// its joins still waiting plus those answered ready whose player has not connected yet, so
/// one address cannot squat seats by collecting tokens it never uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Waiting {
    pub total: usize,
    pub from_requester: usize,
}

/// The counts behind [`Waiting`] for every requester at once: waiting joins gathered in one
/// pass and kept up to date as a batch of calls is admitted, and the unclaimed seats of ready
/// joins as the join plugin keeps them ([`super::UnclaimedSeats`]). Admitting a call costs the
/// same with ten thousand answered joins kept for retries as with none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingTally<'a> {
    total: usize,
    waiting_by: HashMap<String, usize>,
    unclaimed_by: &'a HashMap<String, usize>,
}

impl<'a> WaitingTally<'a> {
    /// A tally with no waiting join yet, over these unclaimed seats per address key.
    pub fn new(unclaimed_by: &'a HashMap<String, usize>) -> Self {
        Self { total: 0, waiting_by: HashMap::new(), unclaimed_by }
    }

    /// Counts one waiting join of the requester with address key `key`.
    pub fn count_waiting(&mut self, key: &str) {
        self.total += 1;
        match self.waiting_by.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                self.waiting_by.insert(key.to_owned(), 1);
            }
        }
    }

    /// What [`admit`] needs to know about `requester`.
    pub fn for_requester(&self, requester: &Requester) -> Waiting {
        let held = |map: &HashMap<String, usize>| map.get(&requester.key).copied().unwrap_or(0);
        Waiting { total: self.total, from_requester: held(&self.waiting_by) + held(self.unclaimed_by) }
    }

    /// Counts a join just admitted for `requester`.
    pub fn admitted(&mut self, requester: &Requester) {
        self.count_waiting(&requester.key);
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// A new join: queue it.
    Admit,
    /// The same request again (a retry after a dropped connection): follow the existing join.
    Resume,
    /// Refused with this error.
    Refuse(JoinError),
}

/// What the request's mode asks for: `Ok(None)` for a seat on any server (`drop_in`, the
/// default; no mode means `drop_in`), `Ok(Some(claims))` for a ticket in a match mode's pool.
/// A mode that is not a profile of the game is refused, and so is a party that could never
/// be matched whole (no `party_size`, or more players than a team holds).
pub fn resolve_mode(profiles: &ProfileSet, request: &ValidJoinRequest) -> Result<Option<MatchClaims>, JoinError> {
    let mode = request.mode.as_deref();
    if profiles.is_empty() && mode.is_none_or(|m| m == DEFAULT_PROFILE) {
        return Ok(None); // no profiles file: every join is drop-in, with nothing to look up
    }
    let label = format!("{}:{}", request.game, request.version);
    let invalid = |message: String| JoinError::new(ErrorCode::InvalidRequest, message);
    let profile = profiles
        .get(&label, mode)
        .ok_or_else(|| invalid(format!("mode {} is not a profile of {label}", mode.unwrap_or_default())))?;
    if profile.kind == ProfileKind::DropIn {
        return Ok(None);
    }
    let party_size = match (&request.party, request.party_size) {
        (None, _) => 1,
        (Some(_), Some(size)) => size,
        (Some(_), None) => {
            return Err(invalid(format!(
                "mode {} forms matches: a party must say its party_size, so it is matched whole",
                profile.name
            )));
        }
    };
    if party_size > profile.teams.max_size {
        return Err(invalid(format!(
            "party_size {party_size} is more than a team of mode {} holds ({})",
            profile.name, profile.teams.max_size
        )));
    }
    Ok(Some(MatchClaims {
        mode: profile.name.clone(),
        party_size,
        attributes: request.attributes.clone(),
        latencies: request.latencies.clone(),
        public_id: MatchClaims::new_public_id(),
    }))
}

/// Decides on `request` from `requester`. `existing` is the join already holding the request
/// id, if any; `served` whether the catalog lists the game and version; `backbone_up` whether
/// NATS is reachable (without it no grant can be stored: refuse at once rather than hold).
pub fn admit(
    request: &ValidJoinRequest,
    requester: &Requester,
    existing: Option<&Join>,
    served: bool,
    waiting: Waiting,
    limits: &AdmissionLimits,
    backbone_up: bool,
) -> Admission {
    if !served {
        let label = format!("{}:{}", request.game, request.version);
        return Admission::Refuse(JoinError::new(ErrorCode::UnknownGame, format!("{label} is not served here")));
    }
    if let Some(join) = existing {
        let same = join.requester.ip == requester.ip
            && join.game.game == request.game
            && join.game.version == request.version
            && join.transport == request.transport;
        if same {
            return Admission::Resume;
        }
        return Admission::Refuse(JoinError::new(
            ErrorCode::InvalidRequest,
            "request_id is already used by a different request; choose a new one",
        ));
    }
    if !backbone_up {
        return Admission::Refuse(JoinError::new(ErrorCode::Unavailable, "the matchmaker cannot reach NATS"));
    }
    if waiting.total >= limits.max_waiting {
        return Admission::Refuse(ErrorCode::TooManyWaiting.into());
    }
    if waiting.from_requester >= limits.max_per_requester {
        return Admission::Refuse(JoinError::new(ErrorCode::RateLimited, "too many joins waiting from this address"));
    }
    Admission::Admit
}

/// The key every per-address limit counts against (rate, waiting joins, held seats,
/// connections): IPv4 addresses one by one, IPv6 by /64, since one subscriber usually holds a
/// whole /64 and could otherwise rotate through it. IPv4-mapped IPv6 addresses (what a
/// dual-stack listener reports for IPv4 clients) count as the IPv4 address they are.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::from(segments)
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use bevygap_shared::protocol::{JoinRequest, RequestId, Transport};

    use super::*;

    const LIMITS: AdmissionLimits = AdmissionLimits { max_waiting: 10, max_per_requester: 2 };

    fn request() -> ValidJoinRequest {
        JoinRequest::new("demo", "1.0").validate().unwrap()
    }

    #[test]
    fn modes_resolve_to_a_seat_or_a_ticket_and_unmatchable_requests_are_refused_by_name() {
        let example = include_str!("../../../assets/profiles.example.json");
        let profiles = ProfileSet::from_json(example).expect("valid");
        assert_eq!(resolve_mode(&profiles, &request()), Ok(None), "no mode: drop_in");
        let with = |mode: &str, party: Option<(&str, Option<u32>)>| {
            let mut r = JoinRequest::new("demo", "1.0");
            r.mode = Some(mode.into());
            r.attributes.numbers.insert("elo".into(), 1200.0);
            if let Some((party, size)) = party {
                r.party = Some(party.into());
                r.party_size = size;
            }
            resolve_mode(&profiles, &r.validate().unwrap())
        };
        assert_eq!(with("drop_in", None), Ok(None));
        let duel = with("duel", None).expect("a duel ticket").expect("claims");
        assert_eq!((duel.mode.as_str(), duel.party_size), ("duel", 1));
        assert_eq!(duel.attributes.numbers["elo"], 1200.0);
        assert_eq!(duel.public_id.len(), 16, "{}", duel.public_id);
        assert_ne!(duel.public_id, with("duel", None).unwrap().unwrap().public_id, "fresh per join");
        let pair = with("ranked_2v2", Some(("p1", Some(2)))).unwrap().unwrap();
        assert_eq!(pair.party_size, 2);
        let unsized_party = with("ranked_2v2", Some(("p1", None))).unwrap_err();
        assert!(unsized_party.message.contains("party_size"), "{}", unsized_party.message);
        let too_big = with("duel", Some(("p1", Some(2)))).unwrap_err();
        assert!(too_big.message.contains("more than a team"), "{}", too_big.message);
        let unknown = with("ranked", None).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::InvalidRequest);
        assert!(unknown.message.contains("not a profile of demo:1.0"), "{}", unknown.message);
    }

    fn from(ip: &str) -> Requester {
        Requester { ip: ip.into(), key: ip.into() }
    }

    fn existing(ip: &str) -> Join {
        Join::new(&request(), RequestId::new("request-1").unwrap(), from(ip), ip.into(), 0.0, 60.0).0
    }

    fn code(admission: Admission) -> ErrorCode {
        match admission {
            Admission::Refuse(e) => e.code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn admits_under_the_caps_and_refuses_at_them() {
        let ok = Waiting { total: 9, from_requester: 1 };
        assert_eq!(admit(&request(), &from("a"), None, true, ok, &LIMITS, true), Admission::Admit);
        let full = Waiting { total: 10, from_requester: 0 };
        assert_eq!(code(admit(&request(), &from("a"), None, true, full, &LIMITS, true)), ErrorCode::TooManyWaiting);
        let mine = Waiting { total: 3, from_requester: 2 };
        assert_eq!(code(admit(&request(), &from("a"), None, true, mine, &LIMITS, true)), ErrorCode::RateLimited);
    }

    #[test]
    fn the_tally_counts_waiting_joins_for_everyone_and_held_seats_per_address_key() {
        let unclaimed = HashMap::from([("a".to_string(), 1), ("d".to_string(), 5)]);
        let mut tally = WaitingTally::new(&unclaimed);
        tally.count_waiting("a");
        tally.count_waiting("b");
        assert_eq!(tally.for_requester(&from("a")), Waiting { total: 2, from_requester: 2 });
        assert_eq!(tally.for_requester(&from("c")), Waiting { total: 2, from_requester: 0 });
        tally.admitted(&from("c"));
        assert_eq!(tally.for_requester(&from("c")), Waiting { total: 3, from_requester: 1 });
        assert_eq!(tally.for_requester(&from("b")), Waiting { total: 3, from_requester: 1 });
        assert_eq!(tally.for_requester(&from("d")), Waiting { total: 3, from_requester: 5 }, "unclaimed seats only");
    }

    #[test]
    fn without_nats_new_joins_are_refused_as_unavailable_but_resumes_still_answer() {
        let refused = admit(&request(), &from("a"), None, true, Waiting::default(), &LIMITS, false);
        assert_eq!(code(refused), ErrorCode::Unavailable);
        let join = existing("10.0.0.1");
        let resumed = admit(&request(), &from("10.0.0.1"), Some(&join), true, Waiting::default(), &LIMITS, false);
        assert_eq!(resumed, Admission::Resume);
    }

    #[test]
    fn unknown_games_are_refused_first() {
        let error = admit(&request(), &from("a"), None, false, Waiting::default(), &LIMITS, true);
        assert!(
            matches!(&error, Admission::Refuse(e) if e.code == ErrorCode::UnknownGame && e.message.contains("demo:1.0"))
        );
    }

    #[test]
    fn a_request_id_resumes_only_for_the_same_requester_and_request() {
        let join = existing("10.0.0.1");
        let full = Waiting { total: 10, from_requester: 2 };
        assert_eq!(
            admit(&request(), &from("10.0.0.1"), Some(&join), true, full, &LIMITS, true),
            Admission::Resume,
            "caps do not apply"
        );
        assert_eq!(
            code(admit(&request(), &from("10.0.0.2"), Some(&join), true, full, &LIMITS, true)),
            ErrorCode::InvalidRequest
        );
        let mut other = request();
        other.transport = Transport::WebTransport;
        assert_eq!(
            code(admit(&other, &from("10.0.0.1"), Some(&join), true, full, &LIMITS, true)),
            ErrorCode::InvalidRequest
        );
    }
}
