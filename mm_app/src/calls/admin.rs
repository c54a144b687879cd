//! Operator methods, reachable only on the admin endpoint.

use bevy::prelude::*;
use bevy_remote::{BrpResult, error_codes};
use bevygap_shared::records::ServerCommand;
use serde_json::{Value, json};

use super::envelope::protocol_error;
use crate::fence::Ownership;
use crate::joins::Join;
use crate::nats_bridge::NatsCommand;
use crate::providers::ProviderHandle;
use crate::servers::{GameServer, SeatBook, ServerEndpoints, ServerIndex, ServerPhase};
use crate::telemetry::{HISTORY_INTERVAL_SECS, HistoryPoint, MetricsHistory};
use crate::tokens::{GameSession, SessionIndex};
use crate::tokens::{IssuedToken, TokenEnded, TokenIndex, TokenState};

pub const SERVERS: &str = "admin.servers";
pub const SESSIONS: &str = "admin.sessions";
pub const STATS: &str = "admin.stats";
pub const DELETE_SESSION: &str = "admin.delete_session";
pub const DRAIN_SERVER: &str = "admin.drain_server";
pub const HISTORY: &str = "admin.history";

fn string_param(params: &Option<Value>, name: &str) -> Result<String, bevy_remote::BrpError> {
    params
        .as_ref()
        .and_then(|p| p.get(name))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| protocol_error(error_codes::INVALID_PARAMS, format!("`{name}` is required")))
}

/// The replica that answers admin calls owns every row it shows: a standby forwards them to
/// the owner (see [`crate::ownership`]).
fn owner_name(ownership: &Option<Res<Ownership>>) -> String {
    ownership.as_ref().map_or_else(|| "sole".to_string(), |o| o.replica().to_string())
}

/// Every server of the namespace with its phase, seats, players and owning replica, and the
/// provider's parked stops: servers the matchmaker let go whose stop kept failing, so they
/// may still run (and cost money).
pub fn servers(
    In(_): In<Option<Value>>,
    servers: Query<(&GameServer, &ServerPhase, &SeatBook, &ServerEndpoints)>,
    provider: Option<Res<ProviderHandle>>,
    ownership: Option<Res<Ownership>>,
) -> BrpResult {
    let owner = owner_name(&ownership);
    let list: Vec<Value> = servers
        .iter()
        .map(|(server, phase, seats, endpoints)| {
            json!({
                "server_id": server.id,
                "game": server.game.game,
                "version": server.game.version,
                "provider": server.provider,
                "phase": phase.label(),
                "capacity": seats.capacity,
                "taken": seats.taken(),
                "connected": seats.occupied(),
                // Client ids as strings, like every id on a JSON surface (JavaScript numbers
                // are exact only to 2^53).
                "players": seats.clients().map(|c| c.to_string()).collect::<Vec<_>>(),
                "addresses": endpoints.addresses,
                "owner": owner,
            })
        })
        .collect();
    let parked: Vec<Value> = provider
        .map(|p| p.0.parked_stops())
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            json!({
                "server_id": p.server_id,
                "external_id": p.external_id,
                "error": p.error,
                "attempts": p.attempts,
            })
        })
        .collect();
    Ok(json!({ "servers": list, "parked_stops": parked }))
}

/// Every live session of the namespace, with its owning replica.
pub fn sessions(
    In(_): In<Option<Value>>,
    sessions: Query<&GameSession>,
    ownership: Option<Res<Ownership>>,
) -> BrpResult {
    let owner = owner_name(&ownership);
    let list: Vec<Value> = sessions
        .iter()
        .map(|s| {
            json!({
                "session_id": s.session_id,
                "server_id": s.server_id,
                "game": s.game.game,
                "version": s.game.version,
                "clients": s.clients.iter().map(u64::to_string).collect::<Vec<_>>(),
                "owner": owner,
            })
        })
        .collect();
    Ok(json!({ "sessions": list }))
}

/// The dashboard's charts: a point every few seconds over the last fifteen minutes, taken from
/// the Prometheus page this replica serves (see [`crate::telemetry::MetricsHistory`]).
pub fn history(In(_): In<Option<Value>>, history: Option<Res<MetricsHistory>>) -> BrpResult {
    let points: Vec<&HistoryPoint> = history.as_ref().map(|h| h.points().collect()).unwrap_or_default();
    let now_ms = bevygap_shared::records::now_ms();
    Ok(json!({ "interval_secs": HISTORY_INTERVAL_SECS, "now_ms": now_ms, "points": points }))
}

/// Counts for dashboards, and the replicas: which one owns the namespace, which are present.
pub fn stats(
    In(_): In<Option<Value>>,
    ownership: Option<Res<Ownership>>,
    joins: Query<&Join>,
    servers: Query<(&ServerPhase, &SeatBook)>,
    tokens: Query<&TokenState>,
    sessions: Query<(), With<GameSession>>,
) -> BrpResult {
    let waiting = joins.iter().filter(|j| !j.phase().is_terminal()).count();
    let (mut ready, mut starting, mut other, mut players, mut capacity) = (0, 0, 0, 0u32, 0u32);
    for (phase, seats) in &servers {
        match phase {
            ServerPhase::Ready => ready += 1,
            ServerPhase::Starting { .. } => starting += 1,
            _ => other += 1,
        }
        players += seats.occupied();
        capacity += seats.capacity;
    }
    let claimed = tokens.iter().filter(|t| **t == TokenState::Claimed).count();
    Ok(json!({
        "joins_waiting": waiting,
        "servers_ready": ready,
        "servers_starting": starting,
        "servers_other": other,
        "players_connected": players,
        "capacity": capacity,
        "tokens_claimed": claimed,
        "tokens_unclaimed": tokens.iter().count() - claimed,
        "sessions": sessions.iter().count(),
        "owner": owner_name(&ownership),
        "replicas": ownership.as_ref().map(|o| o.view().present).unwrap_or_default(),
    }))
}

/// Ends a session: its tokens end, seats are freed and records deleted.
pub fn delete_session(
    In(params): In<Option<Value>>,
    index: Res<SessionIndex>,
    sessions: Query<&GameSession>,
    tokens: Res<TokenIndex>,
    issued: Query<&IssuedToken>,
    mut ended: MessageWriter<TokenEnded>,
) -> BrpResult {
    let session_id = string_param(&params, "session_id")?;
    let Some(session) = index.0.get(&session_id).and_then(|e| sessions.get(*e).ok()) else {
        return Ok(json!({ "deleted": false }));
    };
    for client in &session.clients {
        if let Some(&token) = tokens.0.get(client).filter(|t| issued.contains(**t)) {
            ended.write(TokenEnded { token, reason: "deleted by an operator" });
        }
    }
    Ok(json!({ "deleted": true }))
}

/// Stops placing players on a server and tells it to drain.
pub fn drain_server(
    In(params): In<Option<Value>>,
    index: Res<ServerIndex>,
    mut servers: Query<(&GameServer, &mut ServerPhase)>,
    mut nats: MessageWriter<NatsCommand>,
) -> BrpResult {
    let server_id = string_param(&params, "server_id")?;
    let entity = bevygap_shared::ServerId::new(server_id).ok().and_then(|id| index.0.get(&id).copied());
    let Some((server, mut phase)) = entity.and_then(|e| servers.get_mut(e).ok()) else {
        return Ok(json!({ "draining": false }));
    };
    *phase = phase.on_drain();
    nats.write(NatsCommand::Control { server_id: server.id.clone(), command: ServerCommand::Drain });
    Ok(json!({ "draining": true }))
}
