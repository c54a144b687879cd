use std::collections::HashSet;

use bevy::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::records::{ServerCommand, ServerRecord, ServerStatus};

use super::components::*;
use super::seats::SeatBook;
use crate::clock::now;
use crate::config::{GameKey, MatchmakerConfig};
use crate::nats_bridge::{NatsEvent, NatsWriter};
use crate::providers::{Provider, ProviderEvent, ServerSpec};
use bevygap_shared::inbox::Inbox;

/// Spawns a server entity in `Starting` and asks the provider to launch it.
pub fn launch_server(
    commands: &mut Commands,
    index: &mut ServerIndex,
    provider: &Provider,
    events: &Inbox<ProviderEvent>,
    game: &GameKey,
    capacity: u32,
    now: f64,
) -> Entity {
    let id = ServerId::new(format!("{}-{:016x}", provider.0.name(), rand::random::<u64>()))
        .expect("provider names and hex are valid id characters");
    let entity = commands
        .spawn((
            Name::new(format!("server {id}")),
            GameServer {
                server_id: id.to_string(),
                game: game.game.to_string(),
                version: game.version.to_string(),
                provider: provider.0.name().into(),
            },
            ServerKey { id: id.clone(), game: game.clone() },
            ServerPhase::Starting { since: now },
            SeatBook::new(capacity),
            ServerEndpoints::default(),
            EmptySince(Some(now)),
        ))
        .id();
    index.0.insert(id.clone(), entity);
    provider.0.launch(
        ServerSpec { server_id: id, game: game.game.clone(), version: game.version.clone(), capacity },
        events.sender(),
    );
    entity
}

/// Provider outcomes: a failed launch or an exited process means the server is lost.
pub fn apply_provider_events(
    mut inbox: ResMut<Inbox<ProviderEvent>>,
    index: Res<ServerIndex>,
    mut lost: MessageWriter<ServerLost>,
) {
    for event in inbox.drain() {
        match event {
            ProviderEvent::Launched { server_id } => tracing::debug!(%server_id, "launched"),
            ProviderEvent::LaunchFailed { server_id, error } => {
                if let Some(&server) = index.0.get(&server_id) {
                    lost.write(ServerLost { server, reason: format!("launch failed: {error}") });
                }
            }
            ProviderEvent::Exited { server_id, detail } => {
                if let Some(&server) = index.0.get(&server_id) {
                    lost.write(ServerLost { server, reason: detail });
                }
            }
        }
    }
}

/// Server records from NATS: confirm readiness, update addresses, adopt servers this replica
/// did not launch, and treat a deleted or expired record as a lost server.
pub fn apply_server_reports(
    mut commands: Commands,
    mut events: MessageReader<NatsEvent>,
    mut index: ResMut<ServerIndex>,
    mut servers: Query<(&mut ServerPhase, &mut ServerEndpoints, &mut SeatBook)>,
    mut lost: MessageWriter<ServerLost>,
    time: Res<Time<Real>>,
) {
    for event in events.read() {
        match event {
            NatsEvent::ServerPut(record) => match index.0.get(&record.server_id) {
                Some(&entity) => {
                    if let Ok((mut phase, mut endpoints, mut seats)) = servers.get_mut(entity) {
                        apply_record(record, &mut phase, &mut endpoints, now(&time));
                        seats.capacity = record.capacity;
                    }
                }
                None => {
                    let entity = adopt(&mut commands, record, now(&time));
                    index.0.insert(record.server_id.clone(), entity);
                }
            },
            NatsEvent::ServerGone(server_id) => {
                let Some(&server) = index.0.get(server_id) else { continue };
                let Ok((mut phase, ..)) = servers.get_mut(server) else { continue };
                if matches!(*phase, ServerPhase::Stopping { .. }) {
                    lost.write(ServerLost { server, reason: "it stopped".into() });
                } else if !matches!(*phase, ServerPhase::Unreported { .. }) {
                    tracing::warn!(%server_id, "server record gone; holding new players until it reports again");
                    *phase = ServerPhase::Unreported { since: now(&time) };
                }
            }
            _ => {}
        }
    }
}

fn apply_record(record: &ServerRecord, phase: &mut ServerPhase, endpoints: &mut ServerEndpoints, now: f64) {
    endpoints.addresses = record.addresses.clone();
    endpoints.cert_digest = record.cert_digest.as_ref().map(|d| d.to_string());
    let next = match (*phase, record.status) {
        (ServerPhase::Stopping { .. }, _) => *phase,
        (_, ServerStatus::Ready) if *phase != ServerPhase::Draining => ServerPhase::Ready,
        (_, ServerStatus::Draining) => ServerPhase::Draining,
        (ServerPhase::Unreported { .. }, ServerStatus::Starting) => ServerPhase::Starting { since: now },
        _ => *phase,
    };
    if next != *phase {
        tracing::info!(server_id = %record.server_id, "server {:?} -> {:?}", phase, next);
        *phase = next;
    }
}

fn adopt(commands: &mut Commands, record: &ServerRecord, now: f64) -> Entity {
    tracing::info!(server_id = %record.server_id, "adopting a server this matchmaker did not launch");
    let mut phase = ServerPhase::Starting { since: now };
    let mut endpoints = ServerEndpoints::default();
    apply_record(record, &mut phase, &mut endpoints, now);
    commands
        .spawn((
            Name::new(format!("server {}", record.server_id)),
            GameServer {
                server_id: record.server_id.to_string(),
                game: record.game.to_string(),
                version: record.version.to_string(),
                provider: record.provider.clone(),
            },
            ServerKey {
                id: record.server_id.clone(),
                game: GameKey { game: record.game.clone(), version: record.version.clone() },
            },
            phase,
            SeatBook::new(record.capacity),
            endpoints,
            EmptySince(Some(now)),
        ))
        .id()
}

/// A server that never reports ready, never stops, or stays unreported is lost (its joins are
/// re-placed).
pub fn time_out_starting_servers(
    servers: Query<(Entity, &ServerPhase)>,
    config: Res<MatchmakerConfig>,
    time: Res<Time<Real>>,
    mut lost: MessageWriter<ServerLost>,
) {
    let now = now(&time);
    for (server, phase) in &servers {
        match *phase {
            ServerPhase::Starting { since } if now - since > config.server_start_timeout.as_secs_f64() => {
                lost.write(ServerLost { server, reason: "did not report ready in time".into() });
            }
            ServerPhase::Stopping { since } if now - since > config.stop_grace.as_secs_f64() + 10.0 => {
                lost.write(ServerLost { server, reason: "did not stop in time".into() });
            }
            ServerPhase::Unreported { since } if now - since > config.silence_grace.as_secs_f64() => {
                lost.write(ServerLost { server, reason: "its record stayed gone past the grace period".into() });
            }
            _ => {}
        }
    }
}

/// Keeps `EmptySince` current.
pub fn track_emptiness(mut servers: Query<(&SeatBook, &mut EmptySince)>, time: Res<Time<Real>>) {
    let now = now(&time);
    for (seats, mut empty) in &mut servers {
        match (seats.is_empty(), empty.0) {
            (true, None) => empty.0 = Some(now),
            (false, Some(_)) => empty.0 = None,
            _ => {}
        }
    }
}

/// Stops servers that stayed empty past the grace period (scale to zero).
pub fn stop_empty_servers(
    mut servers: Query<(&ServerKey, &mut ServerPhase, &EmptySince)>,
    config: Res<MatchmakerConfig>,
    provider: Res<Provider>,
    writer: Res<NatsWriter>,
    time: Res<Time<Real>>,
) {
    let now = now(&time);
    for (key, mut phase, empty) in &mut servers {
        let idle = empty.0.is_some_and(|since| now - since >= config.empty_grace.as_secs_f64());
        if idle && matches!(*phase, ServerPhase::Ready | ServerPhase::Draining) {
            tracing::info!(server_id = %key.id, "stopping empty server");
            *phase = ServerPhase::Stopping { since: now };
            provider.0.stop(&key.id);
            writer.send_command(&key.id, ServerCommand::Shutdown);
        }
    }
}

/// Removes lost servers: stops whatever is left of them, deletes their NATS records and
/// despawns them. Joins, tokens and sessions that pointed at them notice the entity is gone.
pub fn forget_lost_servers(
    mut commands: Commands,
    mut lost: MessageReader<ServerLost>,
    servers: Query<(&ServerKey, &SeatBook)>,
    mut index: ResMut<ServerIndex>,
    provider: Res<Provider>,
    writer: Res<NatsWriter>,
) {
    let mut seen = HashSet::new();
    for ServerLost { server, reason } in lost.read() {
        if !seen.insert(*server) {
            continue;
        }
        let Ok((key, seats)) = servers.get(*server) else { continue };
        tracing::warn!(server_id = %key.id, "server lost: {reason}");
        provider.0.stop(&key.id);
        writer.delete_server(&key.id);
        for client in seats.clients() {
            writer.delete_player(&key.id, client);
        }
        index.0.remove(&key.id);
        commands.entity(*server).despawn();
    }
}
