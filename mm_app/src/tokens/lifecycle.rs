use std::collections::{HashMap, HashSet};

use bevygap_shared::ServerId;

use bevy::prelude::*;

use super::{IssuedToken, TokenClaimed, TokenEnded, TokenIndex, TokenState};
use crate::clock::now;
use crate::nats_bridge::{NatsCommand, PlayerGone, PlayerReported, SnapshotRead};
use crate::servers::seats::Seat;
use crate::servers::{SeatBook, ServerIndex, ServerPhase};
use crate::tokens::{GameSession, SessionIndex};

/// Slack after a token's expiry before its seat is freed: a handshake begun just before expiry
/// still completes, and the server's player record needs a moment to arrive.
pub const CLAIM_GRACE_SECS: f64 = 5.0;

/// Players reported for servers the matchmaker does not know yet (the two buckets are watched
/// separately, so at start-up a player record can arrive before its server's); their seats
/// are taken as soon as the server appears.
#[derive(Resource, Debug, Default)]
pub struct EarlyPlayers(pub HashMap<ServerId, HashSet<u64>>);

/// Player records from game servers: a connect occupies the seat (its token is claimed by
/// [`claim_tokens`]); a leave (however the player left) ends the token, which frees the seat.
pub fn follow_players(
    (mut reported, mut gone): (MessageReader<PlayerReported>, MessageReader<PlayerGone>),
    index: Res<ServerIndex>,
    tokens: Res<TokenIndex>,
    mut early: ResMut<EarlyPlayers>,
    mut seats: Query<&mut SeatBook>,
    mut ended: MessageWriter<TokenEnded>,
) {
    if !early.0.is_empty() {
        early.0.retain(|server_id, clients| {
            let Some(mut book) = index.0.get(server_id).and_then(|e| seats.get_mut(*e).ok()) else { return true };
            clients.iter().for_each(|c| book.occupy(*c));
            false
        });
    }
    for PlayerReported(record) in reported.read() {
        match index.0.get(&record.server_id).and_then(|e| seats.get_mut(*e).ok()) {
            Some(mut book) => book.occupy(record.client_id),
            None => {
                early.0.entry(record.server_id.clone()).or_default().insert(record.client_id);
            }
        }
    }
    for PlayerGone { server_id, client_id } in gone.read() {
        // The server says the player is gone: only now is an occupied seat free.
        if let Some(mut book) = index.0.get(server_id).and_then(|e| seats.get_mut(*e).ok()) {
            book.release(*client_id);
        }
        if let Some(clients) = early.0.get_mut(server_id) {
            clients.remove(client_id);
        }
        if let Some(&token) = tokens.0.get(client_id) {
            ended.write(TokenEnded { token, reason: "player left" });
        }
    }
}

/// Players whose record is missing from the snapshot read after a reconnect left while the
/// link was down: their seats are freed and their tokens ended.
pub fn release_players_missing_after_reconnect(
    mut snapshots: MessageReader<SnapshotRead>,
    index: Res<ServerIndex>,
    tokens: Res<TokenIndex>,
    mut seats: Query<&mut SeatBook>,
    mut ended: MessageWriter<TokenEnded>,
) {
    for SnapshotRead(snapshot) in snapshots.read() {
        for (server_id, &server) in &index.0 {
            let Ok(mut book) = seats.get_mut(server) else { continue };
            let gone: Vec<u64> = book
                .clients()
                .filter(|c| book.seat(*c) == Some(Seat::Occupied))
                .filter(|c| !snapshot.players.contains(&(server_id.clone(), *c)))
                .collect();
            for client_id in gone {
                book.release(client_id);
                if let Some(&token) = tokens.0.get(&client_id) {
                    ended.write(TokenEnded { token, reason: "player left while NATS was unreachable" });
                }
            }
        }
    }
}

/// A player the server reports connected has used its token: it is claimed (and keeps its
/// seat until the player leaves, whatever its expiry).
pub fn claim_tokens(
    mut reported: MessageReader<PlayerReported>,
    index: Res<TokenIndex>,
    mut tokens: Query<(&IssuedToken, &mut TokenState)>,
    mut claimed: MessageWriter<TokenClaimed>,
    time: Res<Time<Real>>,
) {
    for PlayerReported(record) in reported.read() {
        let Some(&entity) = index.0.get(&record.client_id) else { continue };
        let Ok((token, mut state)) = tokens.get_mut(entity) else { continue };
        if *state == TokenState::Unclaimed {
            *state = TokenState::Claimed;
            claimed.write(TokenClaimed { token: entity });
            crate::observe::token_claimed(now(&time) - token.issued_at);
            tracing::info!(
                request_id = token.request_id.as_deref().map(tracing::field::display),
                server_id = %record.server_id,
                client_id = record.client_id,
                "player connected"
            );
        }
    }
}

/// How often every token is looked at for expiry and for a lost server: tokens of connected
/// players live as long as their game, so there can be many, and a quarter second is nothing
/// beside the claim grace.
const TOKEN_SWEEP_SECS: f64 = 0.25;

/// Whether a sweep last made at `last` is due again at `now` (and notes it).
fn sweep_due(last: &mut Option<f64>, now: f64) -> bool {
    if last.is_some_and(|at| now - at < TOKEN_SWEEP_SECS) {
        return false;
    }
    *last = Some(now);
    true
}

/// Frees seats whose token expired before its player connected.
pub fn expire_unclaimed_tokens(
    tokens: Query<(Entity, &IssuedToken, &TokenState)>,
    time: Res<Time<Real>>,
    mut ended: MessageWriter<TokenEnded>,
    mut last: Local<Option<f64>>,
) {
    let now = now(&time);
    if !sweep_due(&mut last, now) {
        return;
    }
    for (entity, token, state) in &tokens {
        if *state == TokenState::Unclaimed && now > token.expires_at + CLAIM_GRACE_SECS {
            ended.write(TokenEnded { token: entity, reason: "token expired unclaimed" });
            crate::observe::token_expired_unclaimed();
        }
    }
}

/// Ends tokens whose server entity is gone: at once when a server went this tick, and in the
/// periodic sweep otherwise.
pub fn end_tokens_of_lost_servers(
    tokens: Query<(Entity, &IssuedToken)>,
    servers: Query<(), With<ServerPhase>>,
    mut gone: RemovedComponents<ServerPhase>,
    mut ended: MessageWriter<TokenEnded>,
    time: Res<Time<Real>>,
    mut last: Local<Option<f64>>,
) {
    let server_gone = gone.read().count() > 0;
    if !sweep_due(&mut last, now(&time)) && !server_gone {
        return;
    }
    for (entity, token) in &tokens {
        if !servers.contains(token.server) {
            ended.write(TokenEnded { token: entity, reason: "server lost" });
        }
    }
}

/// Frees a seat still only promised, deletes the grant, closes the session when its last player is gone and
/// despawns the token.
#[allow(clippy::too_many_arguments)]
pub fn finish_ended_tokens(
    mut commands: Commands,
    mut ended: MessageReader<TokenEnded>,
    tokens: Query<&IssuedToken>,
    mut index: ResMut<TokenIndex>,
    mut seats: Query<&mut SeatBook>,
    mut sessions: Query<&mut GameSession>,
    mut session_index: ResMut<SessionIndex>,
    mut nats: MessageWriter<NatsCommand>,
) {
    let mut done = HashSet::new();
    for TokenEnded { token, reason } in ended.read() {
        if !done.insert(*token) {
            continue;
        }
        let Ok(issued) = tokens.get(*token) else { continue };
        tracing::info!(
            request_id = issued.request_id.as_deref().map(tracing::field::display),
            server_id = %issued.server_id,
            client_id = issued.client_id,
            "token ended: {reason}"
        );
        // A seat still only promised is given back; an occupied one stays taken until the
        // server reports its player gone (an operator ending a session does not empty a seat).
        if let Ok(mut book) = seats.get_mut(issued.server)
            && book.seat(issued.client_id) == Some(Seat::Reserved)
        {
            book.release(issued.client_id);
        }
        nats.write(NatsCommand::DeleteGrant { server_id: issued.server_id.clone(), client_id: issued.client_id });
        if let Ok(mut session) = sessions.get_mut(issued.session) {
            session.clients.retain(|c| *c != issued.client_id);
            if session.clients.is_empty() {
                nats.write(NatsCommand::DeleteSession { session_id: session.session_id.clone() });
                session_index.0.remove(&session.session_id);
                commands.entity(issued.session).despawn();
            }
        }
        index.0.remove(&issued.client_id);
        commands.entity(*token).despawn();
    }
}
