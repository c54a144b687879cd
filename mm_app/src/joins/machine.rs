//! The life of one join, as one type: [`Join`] holds where the request is ([`JoinPhase`]) and
//! its transitions are methods, plain Rust tested without an App. Each transition returns what
//! the player is told (a [`JoinProgress`]) and what must be given back ([`Release`]); the
//! systems in [`systems`](super::systems) gather ECS state, call these methods and apply the
//! result.
//!
//! ```text
//!  Queued ──place──▶ WaitingForServer ──issue_token──▶ IssuingToken ──grant_stored──▶ Ready
//!    ▲                     │ server_lost (≤ 3 times)         │ grant failed / server lost
//!    └─────────────────────┘                                 ▼
//!  any non-terminal phase ──fail(cancelled | timeout | server_failed | …)──▶ Failed
//! ```
//! A finished join (ready or failed) is kept for [`RESUME_WINDOW_SECS`] so a retry with the
//! same request id gets the same answer instead of a second seat.

use std::collections::BTreeMap;

use bevy::prelude::*;
use bevygap_shared::protocol::{
    ErrorCode, JoinError, JoinProgress, PartyId, ReadyPayload, Region, RequestId, TicketAttributes, Transport,
    ValidJoinRequest,
};

use crate::game::GameKey;
use crate::placement::Readiness;

/// Seconds a finished join is kept so a retry with its id gets the same answer.
pub const RESUME_WINDOW_SECS: f64 = 120.0;

/// Placements lost before a join fails with `server_failed` instead of trying again, so a
/// game server that cannot start does not make the matchmaker launch servers in a loop.
pub const MAX_LOST_SERVERS: u32 = 3;

/// A seat held for a join: the server entity and the Lightyear client id minted for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Reflect)]
#[type_path = "bevygap"]
pub struct SeatClaim {
    pub server: Entity,
    pub client_id: u64,
}

/// Where a join is.
#[derive(Debug, Clone, Copy, PartialEq, Reflect)]
#[type_path = "bevygap"]
pub enum JoinPhase {
    /// Waiting for a seat.
    Queued,
    /// Has a seat on a server that is not ready yet.
    WaitingForServer { seat: SeatClaim },
    /// Token minted; waiting for NATS to acknowledge the client grant.
    IssuingToken { seat: SeatClaim },
    /// Terminal: the player has a token (since `at`).
    Ready { seat: SeatClaim, at: f64 },
    /// Terminal: failed, cancelled or expired (since `at`).
    Failed { code: ErrorCode, at: f64 },
}

impl JoinPhase {
    /// Whether the join has its answer.
    pub fn is_terminal(self) -> bool {
        matches!(self, JoinPhase::Ready { .. } | JoinPhase::Failed { .. })
    }

    /// The seat the join holds or held, if any.
    pub fn seat(self) -> Option<SeatClaim> {
        match self {
            JoinPhase::WaitingForServer { seat } | JoinPhase::IssuingToken { seat } | JoinPhase::Ready { seat, .. } => {
                Some(seat)
            }
            JoinPhase::Queued | JoinPhase::Failed { .. } => None,
        }
    }
}

/// What a transition gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    Nothing,
    /// A seat reserved on a server (no token yet): free it.
    Seat(SeatClaim),
    /// A token was issued for this seat: end the token (which frees the seat, deletes the grant
    /// and closes the session).
    Token(SeatClaim),
}

/// The result of a transition: the message for the player's stream and what to give back.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub progress: JoinProgress,
    pub release: Release,
}

/// What to do with a grant NATS acknowledged (or refused).
#[derive(Debug, Clone, PartialEq)]
pub enum GrantOutcome {
    /// The join is ready: publish this.
    Ready(JoinProgress),
    /// The join failed because of the grant.
    Failed(Step),
    /// The join ended while the grant was being written: delete the grant again.
    Orphan,
}

/// A transition was asked of a join in the wrong phase (a bug in the caller, never a player
/// error).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("a join in phase {0:?} cannot do that")]
pub struct WrongPhase(pub JoinPhase);

/// Who made a request: the exact address (only it may resume or cancel the join) and the key
/// per-address limits count it under (IPv6 by /64).
#[derive(Debug, Clone, PartialEq, Eq, Default, Reflect)]
#[type_path = "bevygap"]
pub struct Requester {
    pub ip: String,
    pub key: String,
}

/// What a join of a match mode brings to its pool: the rules compare these (see
/// [`crate::matching`]). Drop-in joins have none.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MatchClaims {
    /// The profile (mode) whose pool the ticket waits in.
    pub mode: String,
    /// Players in the party, this one included (1 when alone); the party's ticket waits until
    /// every member has joined.
    pub party_size: u32,
    pub attributes: TicketAttributes,
    pub latencies: BTreeMap<String, f64>,
    /// What teammates and the game server see for this player: random, never the request id.
    pub public_id: String,
}

impl MatchClaims {
    /// A fresh public id: 64 random bits as 16 hex digits.
    pub fn new_public_id() -> String {
        format!("{:016x}", rand::random::<u64>())
    }
}

/// A player's join request and where it is in its life.
#[derive(Component, Debug, Clone, Reflect)]
#[reflect(Component)]
#[type_path = "bevygap"]
pub struct Join {
    pub request_id: RequestId,
    pub game: GameKey,
    pub transport: Transport,
    pub region: Option<Region>,
    /// Players of one party are placed on one server when it has the seats.
    pub party: Option<PartyId>,
    /// The address that made the request (after trusted-proxy resolution); only it may resume
    /// or cancel this join, so knowing a request id is not enough to take someone's token.
    pub requester: Requester,
    /// The player's IP as providers should see it (the requester, or in dev mode the
    /// `client_ip` the request named).
    pub client_ip: String,
    pub queued_at: f64,
    /// When it last got a seat (the start of the placement stage in the metrics).
    pub placed_at: Option<f64>,
    pub deadline: f64,
    /// For a join of a match mode: its ticket's claims (`None`: drop-in).
    #[reflect(ignore)]
    pub claims: Option<Box<MatchClaims>>,
    phase: JoinPhase,
    lost_servers: u32,
}

impl Join {
    /// A new queued join, and the first message for its stream.
    pub fn new(
        request: &ValidJoinRequest,
        request_id: RequestId,
        requester: Requester,
        client_ip: String,
        now: f64,
        deadline: f64,
    ) -> (Self, JoinProgress) {
        let first = JoinProgress::Queued { request_id: request_id.to_string() };
        let join = Self {
            request_id,
            game: GameKey { game: request.game.clone(), version: request.version.clone() },
            transport: request.transport,
            region: request.region.clone(),
            party: request.party.clone(),
            requester,
            client_ip,
            queued_at: now,
            placed_at: None,
            deadline,
            claims: None,
            phase: JoinPhase::Queued,
            lost_servers: 0,
        };
        (join, first)
    }

    /// The same join as a ticket of a match mode.
    pub fn with_claims(mut self, claims: Option<MatchClaims>) -> Self {
        self.claims = claims.map(Box::new);
        self
    }

    /// Whether the join waits for a match rather than a seat on any server.
    pub fn seeks_match(&self) -> bool {
        self.claims.is_some()
    }

    /// Where the join is.
    pub fn phase(&self) -> JoinPhase {
        self.phase
    }

    /// Servers lost under this join so far.
    pub fn lost_servers(&self) -> u32 {
        self.lost_servers
    }

    /// Queued → WaitingForServer: a seat was reserved for it.
    pub fn place(&mut self, seat: SeatClaim, readiness: Readiness) -> Result<JoinProgress, WrongPhase> {
        if self.phase != JoinPhase::Queued {
            return Err(WrongPhase(self.phase));
        }
        self.phase = JoinPhase::WaitingForServer { seat };
        let request_id = self.request_id.to_string();
        Ok(match readiness {
            Readiness::Ready => JoinProgress::FindingServer { request_id },
            Readiness::Starting => JoinProgress::ServerStarting { request_id },
        })
    }

    /// WaitingForServer → IssuingToken: its server is ready and a token was minted.
    pub fn issue_token(&mut self) -> Result<SeatClaim, WrongPhase> {
        let JoinPhase::WaitingForServer { seat } = self.phase else { return Err(WrongPhase(self.phase)) };
        self.phase = JoinPhase::IssuingToken { seat };
        Ok(seat)
    }

    /// IssuingToken → Ready (or Failed): NATS answered the grant write. `stored` says whether
    /// it succeeded, `token_alive` whether the token still exists (an operator may have ended
    /// it meanwhile).
    pub fn grant_stored(&mut self, stored: bool, token_alive: bool, ready: ReadyPayload, now: f64) -> GrantOutcome {
        let JoinPhase::IssuingToken { seat } = self.phase else { return GrantOutcome::Orphan };
        if !token_alive {
            return self.fail(ErrorCode::ServerFailed.into(), now).map_or(GrantOutcome::Orphan, GrantOutcome::Failed);
        }
        if !stored {
            let error = JoinError::new(ErrorCode::Unavailable, "the matchmaker could not record the grant");
            return self.fail(error, now).map_or(GrantOutcome::Orphan, GrantOutcome::Failed);
        }
        self.phase = JoinPhase::Ready { seat, at: now };
        GrantOutcome::Ready(JoinProgress::Ready(ready))
    }

    /// Its server was lost. A join still waiting goes back to the queue (a few times at most);
    /// one whose token was being issued fails. Finished joins are unaffected.
    pub fn server_lost(&mut self, now: f64) -> Option<Step> {
        match self.phase {
            JoinPhase::WaitingForServer { seat } => {
                self.lost_servers += 1;
                if self.lost_servers >= MAX_LOST_SERVERS {
                    return self.fail(ErrorCode::ServerFailed.into(), now);
                }
                self.phase = JoinPhase::Queued;
                let progress = JoinProgress::FindingServer { request_id: self.request_id.to_string() };
                Some(Step { progress, release: Release::Seat(seat) })
            }
            JoinPhase::IssuingToken { .. } => self.fail(ErrorCode::ServerFailed.into(), now),
            _ => None,
        }
    }

    /// WaitingForServer → Queued because its match broke up before anyone got a token (a
    /// member left): the seat is given back, and the player returns to the pool with its age.
    /// Not counted as a lost server.
    pub fn back_to_pool(&mut self) -> Option<Release> {
        let JoinPhase::WaitingForServer { seat } = self.phase else { return None };
        self.phase = JoinPhase::Queued;
        self.placed_at = None;
        Some(Release::Seat(seat))
    }

    /// Any phase → Failed with `error`, giving back what it held; `None` if already finished.
    pub fn fail(&mut self, error: JoinError, now: f64) -> Option<Step> {
        let release = match self.phase {
            JoinPhase::Queued => Release::Nothing,
            JoinPhase::WaitingForServer { seat } => Release::Seat(seat),
            JoinPhase::IssuingToken { seat } => Release::Token(seat),
            JoinPhase::Ready { .. } | JoinPhase::Failed { .. } => return None,
        };
        self.phase = JoinPhase::Failed { code: error.code, at: now };
        Some(Step { progress: JoinProgress::Failed(error), release })
    }

    /// Whether a placed join ran past its deadline (queued joins are answered by placement,
    /// which knows whether capacity is the reason).
    pub fn overdue(&self, now: f64) -> bool {
        matches!(self.phase, JoinPhase::WaitingForServer { .. } | JoinPhase::IssuingToken { .. }) && now > self.deadline
    }

    /// Whether a finished join has been kept long enough.
    pub fn forgettable(&self, now: f64) -> bool {
        match self.phase {
            JoinPhase::Ready { at, .. } | JoinPhase::Failed { at, .. } => now - at > RESUME_WINDOW_SECS,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use bevygap_shared::protocol::JoinRequest;

    use super::*;

    fn join() -> Join {
        let request = JoinRequest::new("demo", "1.0").validate().unwrap();
        let requester = Requester { ip: "10.0.0.1".into(), key: "10.0.0.1".into() };
        let (join, first) =
            Join::new(&request, RequestId::new("request-1").unwrap(), requester, "10.0.0.1".into(), 0.0, 60.0);
        assert_eq!(first, JoinProgress::Queued { request_id: "request-1".into() });
        join
    }

    fn seat(n: u32) -> SeatClaim {
        SeatClaim { server: Entity::from_raw_u32(n).unwrap(), client_id: u64::from(n) * 100 }
    }

    fn ready() -> ReadyPayload {
        ReadyPayload {
            connect_token: "t".into(),
            transport: Transport::Udp,
            addresses: Default::default(),
            cert_digest: None,
            request_id: "request-1".into(),
            session_id: "s".into(),
            token_expires_in_secs: 30,
        }
    }

    #[test]
    fn the_happy_path_runs_queued_to_ready() {
        let mut j = join();
        assert_eq!(
            j.place(seat(1), Readiness::Starting),
            Ok(JoinProgress::ServerStarting { request_id: "request-1".into() })
        );
        assert_eq!(j.phase(), JoinPhase::WaitingForServer { seat: seat(1) });
        assert_eq!(j.issue_token(), Ok(seat(1)));
        assert_eq!(j.grant_stored(true, true, ready(), 2.0), GrantOutcome::Ready(JoinProgress::Ready(ready())));
        assert_eq!(j.phase(), JoinPhase::Ready { seat: seat(1), at: 2.0 });
        assert!(j.phase().is_terminal());
        assert!(j.fail(ErrorCode::Cancelled.into(), 3.0).is_none(), "a ready join cannot fail");
        assert!(!j.forgettable(2.0 + RESUME_WINDOW_SECS));
        assert!(j.forgettable(2.1 + RESUME_WINDOW_SECS));
    }

    #[test]
    fn transitions_refuse_the_wrong_phase() {
        let mut j = join();
        assert!(j.issue_token().is_err());
        j.place(seat(1), Readiness::Ready).unwrap();
        assert!(j.place(seat(2), Readiness::Ready).is_err(), "no second seat");
        assert_eq!(j.grant_stored(true, true, ready(), 1.0), GrantOutcome::Orphan, "no token was issued");
    }

    #[test]
    fn failing_gives_back_what_the_join_held() {
        let mut queued = join();
        assert_eq!(queued.fail(ErrorCode::Cancelled.into(), 1.0).unwrap().release, Release::Nothing);
        assert_eq!(queued.phase(), JoinPhase::Failed { code: ErrorCode::Cancelled, at: 1.0 });

        let mut waiting = join();
        waiting.place(seat(1), Readiness::Starting).unwrap();
        let step = waiting.fail(ErrorCode::Timeout.into(), 1.0).unwrap();
        assert_eq!(step.release, Release::Seat(seat(1)));
        assert!(matches!(step.progress, JoinProgress::Failed(ref e) if e.code == ErrorCode::Timeout));

        let mut issuing = join();
        issuing.place(seat(1), Readiness::Ready).unwrap();
        issuing.issue_token().unwrap();
        assert_eq!(issuing.fail(ErrorCode::Cancelled.into(), 1.0).unwrap().release, Release::Token(seat(1)));
        assert_eq!(issuing.grant_stored(true, true, ready(), 2.0), GrantOutcome::Orphan, "a late grant is deleted");
    }

    #[test]
    fn a_lost_server_requeues_a_few_times_then_fails() {
        let mut j = join();
        for round in 1..MAX_LOST_SERVERS {
            j.place(seat(round), Readiness::Starting).unwrap();
            let step = j.server_lost(1.0).unwrap();
            assert_eq!(step.release, Release::Seat(seat(round)));
            assert_eq!(step.progress, JoinProgress::FindingServer { request_id: "request-1".into() });
            assert_eq!(j.phase(), JoinPhase::Queued);
        }
        j.place(seat(9), Readiness::Starting).unwrap();
        let step = j.server_lost(1.0).unwrap();
        assert!(matches!(step.progress, JoinProgress::Failed(ref e) if e.code == ErrorCode::ServerFailed));
        assert_eq!(j.lost_servers(), MAX_LOST_SERVERS);
        assert!(j.server_lost(1.0).is_none(), "a failed join ignores more losses");
    }

    #[test]
    fn a_broken_match_sends_a_waiting_join_back_to_its_pool_without_counting_a_loss() {
        let mut j = join();
        assert_eq!(j.back_to_pool(), None, "a queued join is in its pool already");
        j.place(seat(1), Readiness::Starting).unwrap();
        assert_eq!(j.back_to_pool(), Some(Release::Seat(seat(1))));
        assert_eq!((j.phase(), j.lost_servers()), (JoinPhase::Queued, 0));
        j.place(seat(2), Readiness::Ready).unwrap();
        j.issue_token().unwrap();
        assert_eq!(j.back_to_pool(), None, "a join with a token stays in its match");
    }

    #[test]
    fn a_lost_server_fails_a_join_whose_token_was_being_issued() {
        let mut j = join();
        j.place(seat(1), Readiness::Ready).unwrap();
        j.issue_token().unwrap();
        assert_eq!(j.server_lost(1.0).unwrap().release, Release::Token(seat(1)));
        assert!(matches!(j.phase(), JoinPhase::Failed { code: ErrorCode::ServerFailed, .. }));
    }

    #[test]
    fn a_refused_grant_or_an_ended_token_fails_the_join() {
        let mut j = join();
        j.place(seat(1), Readiness::Ready).unwrap();
        j.issue_token().unwrap();
        let GrantOutcome::Failed(step) = j.grant_stored(false, true, ready(), 1.0) else { panic!("fails") };
        assert!(matches!(step.progress, JoinProgress::Failed(ref e) if e.code == ErrorCode::Unavailable));
        assert_eq!(step.release, Release::Token(seat(1)));

        let mut j = join();
        j.place(seat(1), Readiness::Ready).unwrap();
        j.issue_token().unwrap();
        assert!(matches!(j.grant_stored(true, false, ready(), 1.0), GrantOutcome::Failed(_)));
    }

    #[test]
    fn only_placed_joins_are_overdue_here() {
        let mut j = join();
        assert!(!j.overdue(61.0), "placement answers queued joins");
        j.place(seat(1), Readiness::Starting).unwrap();
        assert!(!j.overdue(60.0));
        assert!(j.overdue(60.5));
    }
}
