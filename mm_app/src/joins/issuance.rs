//! Answering a placed join: once its server is ready a ConnectToken is minted and its token
//! and session spawned ([`TokenIssuer`]), the grant is stored in NATS, and only when NATS
//! acknowledges it does the join turn ready, so the game server can always admit the token.

use bevy::prelude::*;
use bevygap_shared::protocol::{ErrorCode, JoinError, ReadyPayload};
use bevygap_shared::records::{ClientGrant, SessionRecord, now_ms};

use super::machine::{GrantOutcome, Join, JoinPhase, SeatClaim};
use super::systems::Releases;
use super::{AwaitingMatchRecord, FailJoin, JoinUpdates, PendingReady, Settled};
use crate::clock::now;
use crate::nats_bridge::{GrantStored, GrantWrite, NatsCommand};
use crate::providers::ProviderHandle;
use crate::servers::{GameServer, ProviderSeats, ServerEndpoints, ServerPhase};
use crate::tokens::issuer::{SessionSpec, TokenIssuer};
use crate::tokens::{IssuedToken, TokenState};

/// The servers as issuance reads them.
type IssuingServers<'w, 's> = Query<
    'w,
    's,
    (&'static GameServer, &'static ServerPhase, &'static ServerEndpoints, Option<&'static ProviderSeats>),
>;

/// The placed joins whose tokens may go out (a match's wait for its record).
type IssuableJoins<'w, 's> =
    Query<'w, 's, (Entity, &'static mut Join), (Without<Settled>, Without<AwaitingMatchRecord>)>;

/// Mints tokens for joins whose server is ready, spawns their token and session entities and
/// asks the bridge to store the grant; the join turns ready only once NATS acknowledges it.
pub fn issue_tokens(
    mut joins: IssuableJoins,
    servers: IssuingServers,
    provider: Res<ProviderHandle>,
    mut issuer: TokenIssuer,
    mut nats: MessageWriter<NatsCommand>,
    mut failures: MessageWriter<FailJoin>,
    time: Res<Time<Real>>,
) {
    let now = now(&time);
    for (entity, mut join) in &mut joins {
        let JoinPhase::WaitingForServer { seat } = join.phase() else { continue };
        let Ok((server, ServerPhase::Ready, endpoints, provider_seats)) = servers.get(seat.server) else { continue };
        // A provider that holds each seat itself must have confirmed this one.
        if provider.0.confirms_seats() && !provider_seats.is_some_and(|seats| seats.may_issue(seat.client_id)) {
            continue;
        }
        let Some(server_addr) = endpoints.address(join.transport) else {
            let message = format!("the server offers no {:?} address", join.transport);
            failures.write(FailJoin { join: entity, error: JoinError::new(ErrorCode::ServerFailed, message) });
            continue;
        };
        let session_id = format!("s-{:016x}", rand::random::<u64>());
        let token = match issuer.mint(server_addr, seat.client_id, &session_id) {
            Ok(token) => token,
            Err(e) => {
                tracing::error!(request_id = %join.request_id, server_id = %server.id, "cannot mint a token: {e}");
                failures.write(FailJoin { join: entity, error: ErrorCode::Internal.into() });
                continue;
            }
        };
        if join.issue_token().is_err() {
            continue;
        }
        let provider_session = provider_seats.and_then(|seats| seats.external_id(seat.client_id)).map(String::from);
        let ttl = issuer.settings().ttl_secs;
        hold_token(&mut issuer, &join, server, seat, &session_id, now);
        nats.write(NatsCommand::StoreGrant(Box::new(grant_write(
            entity,
            &join,
            server,
            seat,
            &session_id,
            provider_session,
            ttl,
        ))));
        issuer.commands().entity(entity).insert(PendingReady(ReadyPayload {
            connect_token: token,
            transport: join.transport,
            addresses: endpoints.addresses.clone(),
            cert_digest: endpoints.digest(),
            request_id: join.request_id.to_string(),
            session_id,
            token_expires_in_secs: ttl,
        }));
    }
}

/// Spawns the token of `join`'s seat, in a new session on its server.
fn hold_token(issuer: &mut TokenIssuer, join: &Join, server: &GameServer, seat: SeatClaim, session_id: &str, now: f64) {
    let spec = SessionSpec {
        session_id: session_id.to_string(),
        server: seat.server,
        server_id: server.id.clone(),
        game: server.game.clone(),
        created_at: now,
    };
    let session = issuer.session(spec, seat.client_id);
    let token = IssuedToken {
        client_id: seat.client_id,
        server: seat.server,
        server_id: server.id.clone(),
        session,
        request_id: Some(join.request_id.to_string()),
        issued_at: now,
        expires_at: now + f64::from(issuer.settings().ttl_secs),
    };
    issuer.hold(token, TokenState::Unclaimed);
    tracing::debug!(request_id = %join.request_id, server_id = %server.id, client_id = seat.client_id, %session_id, "token issued");
}

/// The grant and session records that let `server` admit the token, for the bridge to store.
fn grant_write(
    entity: Entity,
    join: &Join,
    server: &GameServer,
    seat: SeatClaim,
    session_id: &str,
    provider_session: Option<String>,
    ttl_secs: u32,
) -> GrantWrite {
    let issued_ms = now_ms();
    GrantWrite {
        join: entity,
        grant: ClientGrant {
            client_id: seat.client_id,
            server_id: server.id.clone(),
            session_id: session_id.to_string(),
            game: server.game.game.clone(),
            version: server.game.version.clone(),
            issued_at_ms: issued_ms,
            token_expires_at_ms: issued_ms + u64::from(ttl_secs) * 1000,
        },
        session: SessionRecord {
            session_id: session_id.to_string(),
            server_id: server.id.clone(),
            game: server.game.game.clone(),
            version: server.game.version.clone(),
            client_ids: vec![seat.client_id],
            created_at_ms: issued_ms,
            provider_session,
            request_id: Some(join.request_id.to_string()),
        },
    }
}

/// A stored grant turns the join ready; a failed one fails it. A grant that lands after its
/// join ended is deleted again, so no orphan grant stays in NATS.
pub fn complete_grants(
    mut commands: Commands,
    mut stored: MessageReader<GrantStored>,
    mut joins: Query<(&mut Join, &mut JoinUpdates, Option<&PendingReady>)>,
    mut releases: Releases,
    mut nats: MessageWriter<NatsCommand>,
    time: Res<Time<Real>>,
) {
    let now = now(&time);
    for GrantStored { join: entity, server_id, client_id, result } in stored.read() {
        if let Err(e) = result {
            tracing::warn!(%server_id, "cannot store a client grant: {e}");
        }
        let token_alive = releases.holds_token(*client_id);
        let outcome = match joins.get_mut(*entity) {
            Ok((mut join, _, Some(ready))) => join.grant_stored(result.is_ok(), token_alive, ready.0.clone(), now),
            _ => GrantOutcome::Orphan,
        };
        match outcome {
            GrantOutcome::Ready(progress) => {
                if let Ok((join, mut updates, _)) = joins.get_mut(*entity) {
                    tracing::info!(request_id = %join.request_id, %server_id, client_id, "join ready");
                    updates.push(progress);
                }
                commands.entity(*entity).remove::<PendingReady>();
            }
            GrantOutcome::Failed(step) => {
                if let Ok((_, mut updates, _)) = joins.get_mut(*entity) {
                    releases.apply(step, &mut updates);
                }
                commands.entity(*entity).remove::<PendingReady>();
                if result.is_ok() {
                    nats.write(NatsCommand::DeleteGrant { server_id: server_id.clone(), client_id: *client_id });
                }
            }
            GrantOutcome::Orphan => {
                // The join or its token ended while the write was in flight: any delete issued
                // then may have landed first, so delete again now that the put is done.
                if result.is_ok() {
                    nats.write(NatsCommand::DeleteGrant { server_id: server_id.clone(), client_id: *client_id });
                }
            }
        }
    }
}
