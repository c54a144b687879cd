//! Tokens an earlier matchmaker process issued (it was restarted, or killed outright): their
//! grants and sessions are still in NATS, their players may still connect with them, and
//! their seats must be held again so the new process does not give the same seats away. Read
//! once at start-up ([`TakenOver`](crate::nats_bridge::TakenOver)); each grant waits until its server is known (its
//! record arrives through the servers watch), then becomes an [`IssuedToken`] again and lives
//! out its life as if this process had issued it: it is claimed when its player connects, and
//! ends (deleting its grant, freeing its seat) when the player leaves or it expires unclaimed.
//! A grant whose server never appears, or whose server has no seat left for it, is deleted.
//! No join is placed before the start-up read arrives, so none takes a seat an earlier token
//! holds.
//!
//! Every grant found is taken for an earlier owner's: one replica owns the namespace at a time
//! (see `ownership`), and a new owner reads them as a restarted matchmaker does.

use std::collections::HashMap;

use bevy::prelude::*;
use bevygap_shared::records::{ClientGrant, SessionRecord, now_ms};

use super::issuer::{SessionSpec, TokenIssuer};
use super::{IssuedToken, TokenState};
use crate::clock::now;
use crate::game::GameKey;
use crate::nats_bridge::{NatsCommand, TakenOver};
use crate::servers::ServerSettings;
use crate::servers::seats::Seat;
use crate::servers::{ProviderSeats, SeatBook, ServerIndex};

/// Grants found at start-up, waiting for their servers.
#[derive(Resource, Debug, Default)]
pub struct EarlierTokens {
    /// Whether the start-up read has been delivered: until then no join is placed, so no seat
    /// an earlier token holds is given away.
    received: bool,
    /// Each grant, and when (matchmaker clock) it was read.
    grants: Vec<(ClientGrant, f64)>,
    /// Their session records, by id.
    sessions: HashMap<String, SessionRecord>,
}

impl EarlierTokens {
    /// Whether joins may be placed: the earlier process's tokens are known (or could not be
    /// read at all).
    pub fn placement_may_start(&self) -> bool {
        self.received
    }
}

/// What to do with one earlier grant now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Restore {
    /// Its server is not known yet: wait.
    Wait,
    /// Its server is known: hold its seat again; the token expires this many seconds from now
    /// (negative: already expired).
    Hold { expires_in: f64 },
    /// Its server did not appear in time: delete the grant.
    Discard,
}

/// Judges one earlier grant: `waited` seconds since it was read, `give_up` how long a server
/// may take to report (the server start timeout).
pub fn judge(grant: &ClientGrant, server_known: bool, waited: f64, give_up: f64, now_ms: u64) -> Restore {
    if server_known {
        let expires_in = (grant.token_expires_at_ms as f64 - now_ms as f64) / 1000.0;
        Restore::Hold { expires_in }
    } else if waited > give_up {
        Restore::Discard
    } else {
        Restore::Wait
    }
}

/// Keeps what NATS held at start-up.
pub fn receive_earlier_tokens(
    mut taken_over: MessageReader<TakenOver>,
    mut earlier: ResMut<EarlierTokens>,
    time: Res<Time<Real>>,
) {
    let now = now(&time);
    for TakenOver(state) in taken_over.read() {
        earlier.received = true;
        earlier.grants.extend(state.grants.iter().cloned().map(|grant| (grant, now)));
        earlier.sessions.extend(state.sessions.iter().map(|s| (s.session_id.clone(), s.clone())));
    }
}

/// Where restored tokens and sessions go.
#[derive(bevy::ecs::system::SystemParam)]
pub struct TokenBooks<'w, 's> {
    issuer: TokenIssuer<'w, 's>,
    provider_seats: Query<'w, 's, &'static mut ProviderSeats>,
    nats: MessageWriter<'w, NatsCommand>,
}

/// Holds the seats of earlier grants whose servers are known, as tokens; deletes those whose
/// server never appeared or has no seat left; deletes sessions none of whose grants survived.
pub fn restore_earlier_tokens(
    mut earlier: ResMut<EarlierTokens>,
    index: Res<ServerIndex>,
    mut seats: Query<&mut SeatBook>,
    mut books: TokenBooks,
    servers: Res<ServerSettings>,
    time: Res<Time<Real>>,
) {
    if earlier.grants.is_empty() && earlier.sessions.is_empty() {
        return;
    }
    let (now, wall_ms) = (now(&time), now_ms());
    let give_up = servers.start_timeout.as_secs_f64();
    let grants = std::mem::take(&mut earlier.grants);
    for (grant, read_at) in grants {
        let server = index.0.get(&grant.server_id).copied();
        match judge(&grant, server.is_some(), now - read_at, give_up, wall_ms) {
            Restore::Wait => earlier.grants.push((grant, read_at)),
            Restore::Discard => {
                tracing::info!(client_id = grant.client_id, server_id = %grant.server_id, "an earlier grant's server is gone");
                books.nats.write(NatsCommand::DeleteGrant { server_id: grant.server_id, client_id: grant.client_id });
            }
            // Already held (this process issued it after the read, or took it over before).
            Restore::Hold { .. } if books.issuer.holds(grant.client_id) => {}
            Restore::Hold { expires_in } => {
                // A server adopted this tick has its seat book from the next one.
                let Some((server, mut book)) = server.and_then(|s| Some((s, seats.get_mut(s).ok()?))) else {
                    earlier.grants.push((grant, read_at));
                    continue;
                };
                let occupied = book.seat(grant.client_id) == Some(Seat::Occupied);
                if !occupied && book.reserve(grant.client_id).is_err() {
                    tracing::warn!(client_id = grant.client_id, server_id = %grant.server_id, "no seat left for an earlier grant");
                    books
                        .nats
                        .write(NatsCommand::DeleteGrant { server_id: grant.server_id, client_id: grant.client_id });
                    continue;
                }
                let state = if occupied { TokenState::Claimed } else { TokenState::Unclaimed };
                hold(&mut books, &earlier.sessions, grant, server, state, now, expires_in);
            }
        }
    }
    if earlier.grants.is_empty() {
        // Every grant is settled: sessions left without any player are over.
        for (session_id, _) in std::mem::take(&mut earlier.sessions) {
            if !books.issuer.has_session(&session_id) {
                books.nats.write(NatsCommand::DeleteSession { session_id });
            }
        }
    }
}

/// Spawns the token of an earlier grant, in its session (created from its record, or from the
/// grant if the record is missing).
fn hold(
    books: &mut TokenBooks,
    records: &HashMap<String, SessionRecord>,
    grant: ClientGrant,
    server: Entity,
    state: TokenState,
    now: f64,
    expires_in: f64,
) {
    let record = records.get(&grant.session_id);
    let created_at = record.map_or(now, |r| now - (now_ms().saturating_sub(r.created_at_ms) as f64 / 1000.0));
    let spec = SessionSpec {
        session_id: grant.session_id.clone(),
        server,
        server_id: grant.server_id.clone(),
        game: GameKey { game: grant.game.clone(), version: grant.version.clone() },
        created_at,
    };
    let session = books.issuer.session(spec, grant.client_id);
    let lifetime = grant.token_expires_at_ms.saturating_sub(grant.issued_at_ms) as f64 / 1000.0;
    let token = IssuedToken {
        client_id: grant.client_id,
        server,
        server_id: grant.server_id.clone(),
        session,
        request_id: None,
        issued_at: now + expires_in - lifetime,
        expires_at: now + expires_in,
    };
    books.issuer.hold(token, state);
    // A seat the provider holds too (an Edgegap session) is given back by its id when freed.
    let held_at_provider = record.and_then(|r| r.provider_session.clone());
    if let (Some(external_id), Ok(mut seats)) = (held_at_provider, books.provider_seats.get_mut(server)) {
        seats.adopt_confirmed(grant.client_id, external_id);
    }
    tracing::info!(client_id = grant.client_id, server_id = %grant.server_id, "holding the seat of an earlier token");
}

#[cfg(test)]
mod tests {
    use bevygap_shared::naming::ServerId;
    use bevygap_shared::protocol::{GameName, GameVersion};

    use super::*;

    fn grant(expires_at_ms: u64) -> ClientGrant {
        ClientGrant {
            client_id: 7,
            server_id: ServerId::new("fleet-a").expect("id"),
            session_id: "s-1".into(),
            game: GameName::new("demo").expect("game"),
            version: GameVersion::new("1.0").expect("version"),
            issued_at_ms: 0,
            token_expires_at_ms: expires_at_ms,
        }
    }

    #[test]
    fn a_grant_waits_for_its_server_then_holds_its_seat_until_its_own_expiry() {
        let g = grant(40_000);
        assert_eq!(judge(&g, false, 1.0, 45.0, 10_000), Restore::Wait);
        assert_eq!(judge(&g, true, 1.0, 45.0, 10_000), Restore::Hold { expires_in: 30.0 });
        assert_eq!(judge(&g, true, 1.0, 45.0, 50_000), Restore::Hold { expires_in: -10.0 }, "already expired");
    }

    #[test]
    fn a_grant_whose_server_never_appears_is_discarded() {
        assert_eq!(judge(&grant(40_000), false, 46.0, 45.0, 10_000), Restore::Discard);
    }
}
