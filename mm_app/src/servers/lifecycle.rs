//! The systems of a server's life: each gathers its inputs, asks the [`phase`](super::phase)
//! table, and applies the answer.

use std::collections::HashSet;
use std::net::IpAddr;

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevygap_shared::inbox::Inbox;
use bevygap_shared::naming::ServerId;
use bevygap_shared::records::{ServerCommand, ServerRecord};

use super::components::*;
use super::credentials::ServerCredentialConfig;
use super::phase::{LossReason, RecordGone, ServerPhase};
use super::provider_seats::ProviderSeats;
use super::seats::SeatBook;
use super::settings::ServerSettings;
use crate::clock::now;
use crate::game::GameKey;
use crate::nats_bridge::{NatsCommand, NatsLinkState, ServerRecordGone, ServerReported, SnapshotRead};
use crate::placement::PlacementRules;
use crate::providers::{ProviderEvent, ProviderHandle, ServerSpec};

/// Launches servers for placement: spawns the entity in `Starting` and asks the provider.
#[derive(SystemParam)]
pub struct ServerLauncher<'w> {
    index: ResMut<'w, ServerIndex>,
    provider: Res<'w, ProviderHandle>,
    events: Res<'w, Inbox<ProviderEvent>>,
    settings: Res<'w, ServerSettings>,
    credentials: Option<Res<'w, ServerCredentialConfig>>,
    link: Res<'w, NatsLinkState>,
}

impl ServerLauncher<'_> {
    /// The rules placement works within, given what the provider can do: nothing is launched
    /// while the NATS link is down (a server could not report itself ready).
    pub fn rules(&self) -> PlacementRules {
        self.settings.placement_rules(self.provider.0.starts_servers() && self.link.is_up())
    }

    /// How long a join waits for a seat no provider will start.
    pub fn capacity_wait(&self) -> f64 {
        self.settings.capacity_wait.as_secs_f64()
    }

    /// Seats on a new server.
    pub fn capacity(&self) -> u32 {
        self.settings.capacity
    }

    /// Spawns a server entity for `game` in `Starting` and asks the provider to launch it,
    /// near `player_ips` (the players it is launched for) where the provider can choose.
    pub fn launch(
        &mut self,
        commands: &mut Commands,
        game: &GameKey,
        player_ips: Vec<IpAddr>,
        now: f64,
    ) -> (Entity, ServerId) {
        let id = self.provider.new_server_id();
        let capacity = self.settings.capacity;
        let mut entity = commands.spawn((
            Name::new(format!("server {id}")),
            GameServer { id: id.clone(), game: game.clone(), provider: self.provider.0.name().into() },
            ServerPhase::Starting { since: now },
            SeatBook::new(capacity),
            EmptySince(Some(now)),
        ));
        if self.provider.0.confirms_seats() {
            entity.insert(ProviderSeats::default());
        }
        let entity = entity.id();
        self.index.0.insert(id.clone(), entity);
        let nats_credentials = self.credentials.as_ref().map(|c| c.issue(&id));
        let spec = ServerSpec {
            server_id: id.clone(),
            game: game.game.clone(),
            version: game.version.clone(),
            capacity,
            player_ips,
            nats_credentials,
        };
        self.provider.0.launch(spec, self.events.sender());
        crate::observe::server_launched(self.provider.0.name());
        tracing::info!(server_id = %id, game = %game.label(), "launching a server");
        (entity, id)
    }
}

/// Provider outcomes: a failed launch or an exited process means the server is lost; a seat
/// the provider confirmed may get its token, one it refused fails its join.
pub fn apply_provider_events(
    mut inbox: ResMut<Inbox<ProviderEvent>>,
    index: Res<ServerIndex>,
    mut provider_seats: Query<&mut ProviderSeats>,
    mut lost: MessageWriter<ServerLost>,
    mut refused: MessageWriter<SeatRefused>,
) {
    for event in inbox.drain() {
        let (server_id, reason) = match event {
            ProviderEvent::SeatConfirmed { server_id, client_id, external_id } => {
                let seats = index.0.get(&server_id).and_then(|&server| provider_seats.get_mut(server).ok());
                if !seats.is_some_and(|mut seats| seats.confirm(client_id, external_id)) {
                    tracing::debug!(%server_id, client_id, "a seat confirmed after it was freed");
                }
                continue;
            }
            ProviderEvent::SeatRefused { server_id, client_id, error } => {
                tracing::warn!(%server_id, client_id, "the provider refused a seat: {error}");
                if let Some(&server) = index.0.get(&server_id) {
                    refused.write(SeatRefused { server, client_id, reason: error.to_string() });
                }
                continue;
            }
            ProviderEvent::Launched { server_id } => {
                tracing::debug!(%server_id, "launched");
                continue;
            }
            ProviderEvent::LaunchFailed { server_id, error } => {
                (server_id, LossReason::LaunchFailed(error.to_string()))
            }
            ProviderEvent::Exited { server_id, detail } => (server_id, LossReason::Exited(detail)),
        };
        if let Some(&server) = index.0.get(&server_id) {
            lost.write(ServerLost { server, reason });
        }
    }
}

/// Adopts servers this matchmaker did not launch (another replica's, or an earlier process's),
/// but only of its own provider kind: `local` servers for a local matchmaker, registered fleet
/// servers for a fleet… A record of another kind (forged or misconfigured) is never adopted,
/// so no player is sent to it.
#[derive(SystemParam)]
pub struct Adopter<'w, 's> {
    commands: Commands<'w, 's>,
    provider: Res<'w, ProviderHandle>,
    refused: Local<'s, HashSet<ServerId>>,
}

impl Adopter<'_, '_> {
    /// The name of the provider whose servers this matchmaker runs.
    fn provider_name(&self) -> &'static str {
        self.provider.0.name()
    }

    /// The new server entity, or `None` when the record is refused.
    fn adopt(&mut self, record: &ServerRecord, now: f64) -> Option<Entity> {
        let kind = self.provider.0.name();
        if record.provider != kind {
            // Each refused id is warned about once; the memory of them is bounded (forged
            // records could name any number of ids).
            if self.refused.len() >= 1024 {
                self.refused.clear();
            }
            if self.refused.insert(record.server_id.clone()) {
                tracing::warn!(
                    server_id = %record.server_id,
                    "ignoring a server record from provider {:?}; this matchmaker runs {kind:?}",
                    record.provider
                );
            }
            return None;
        }
        Some(adopt(&mut self.commands, record, self.provider.0.confirms_seats(), now))
    }
}

/// Server records from NATS: confirm readiness, update addresses, adopt servers this
/// matchmaker did not launch ([`Adopter`]), and hold (or give up) a server whose record
/// vanished.
pub fn apply_server_reports(
    mut adopter: Adopter,
    (mut reported, mut gone): (MessageReader<ServerReported>, MessageReader<ServerRecordGone>),
    mut index: ResMut<ServerIndex>,
    mut servers: Query<(&mut ServerPhase, &mut ServerEndpoints, &mut SeatBook, &mut LastHeard)>,
    mut lost: MessageWriter<ServerLost>,
    time: Res<Time<Real>>,
) {
    let now = now(&time);
    for ServerReported(record) in reported.read() {
        let known = index.0.get(&record.server_id).and_then(|e| servers.get_mut(*e).ok());
        match known {
            Some((mut phase, mut endpoints, mut seats, mut heard)) => {
                let launched_at = match *phase {
                    ServerPhase::Starting { since } => Some(since),
                    _ => None,
                };
                apply_record(record, &mut phase, &mut endpoints, now);
                if let (Some(since), ServerPhase::Ready) = (launched_at, *phase) {
                    crate::observe::server_started(adopter.provider_name(), now - since);
                }
                seats.capacity = record.capacity;
                heard.0 = Some(now);
            }
            None if !index.0.contains_key(&record.server_id) => {
                if let Some(entity) = adopter.adopt(record, now) {
                    index.0.insert(record.server_id.clone(), entity);
                }
            }
            None => {}
        }
    }
    for ServerRecordGone(server_id) in gone.read() {
        let Some(&server) = index.0.get(server_id) else { continue };
        let Ok((mut phase, ..)) = servers.get_mut(server) else { continue };
        record_gone(server, server_id, &mut phase, &mut lost, now);
    }
}

/// Servers that reported before but whose record is missing from the snapshot read after a
/// reconnect were removed while the link was down.
pub fn forget_servers_missing_after_reconnect(
    mut snapshots: MessageReader<SnapshotRead>,
    index: Res<ServerIndex>,
    mut servers: Query<(&mut ServerPhase, &LastHeard)>,
    mut lost: MessageWriter<ServerLost>,
    time: Res<Time<Real>>,
) {
    let now = now(&time);
    for SnapshotRead(snapshot) in snapshots.read() {
        for (server_id, &server) in index.0.iter().filter(|(id, _)| !snapshot.servers.contains(*id)) {
            let Ok((mut phase, heard)) = servers.get_mut(server) else { continue };
            if heard.0.is_some() {
                record_gone(server, server_id, &mut phase, &mut lost, now);
            }
        }
    }
}

/// A server's record is gone (deleted, expired, or missing after a reconnect).
fn record_gone(
    server: Entity,
    server_id: &ServerId,
    phase: &mut ServerPhase,
    lost: &mut MessageWriter<ServerLost>,
    now: f64,
) {
    match phase.on_record_gone(now) {
        RecordGone::Lost => {
            lost.write(ServerLost { server, reason: LossReason::Stopped });
        }
        RecordGone::Hold(next) => {
            tracing::warn!(%server_id, "server record gone; holding new players until it reports again");
            *phase = next;
        }
        RecordGone::Unchanged => {}
    }
}

fn apply_record(record: &ServerRecord, phase: &mut ServerPhase, endpoints: &mut ServerEndpoints, now: f64) {
    endpoints.addresses = record.addresses.clone();
    endpoints.cert_digest = record.cert_digest.as_ref().map(|d| d.to_string());
    let next = phase.on_report(record.status, now);
    if next != *phase {
        tracing::info!(server_id = %record.server_id, "server {} -> {}", phase.label(), next.label());
        *phase = next;
    }
}

fn adopt(commands: &mut Commands, record: &ServerRecord, provider_seats: bool, now: f64) -> Entity {
    tracing::info!(server_id = %record.server_id, "adopting a server this matchmaker did not launch");
    let mut phase = ServerPhase::Starting { since: now };
    let mut endpoints = ServerEndpoints::default();
    apply_record(record, &mut phase, &mut endpoints, now);
    let mut entity = commands.spawn((
        Name::new(format!("server {}", record.server_id)),
        GameServer {
            id: record.server_id.clone(),
            game: GameKey { game: record.game.clone(), version: record.version.clone() },
            provider: record.provider.clone(),
        },
        phase,
        SeatBook::new(record.capacity),
        endpoints,
        EmptySince(Some(now)),
        LastHeard(Some(now)),
    ));
    if provider_seats {
        entity.insert(ProviderSeats::default());
    }
    entity.id()
}

/// Running servers whose heartbeats stopped are held; servers whose phase timer ran out (never
/// ready, never stopped, silent too long) are lost.
pub fn time_out_servers(
    mut servers: Query<(Entity, &GameServer, &mut ServerPhase, &LastHeard)>,
    settings: Res<ServerSettings>,
    time: Res<Time<Real>>,
    mut lost: MessageWriter<ServerLost>,
) {
    let (now, timers) = (now(&time), settings.phase_timers());
    for (server, game_server, mut phase, heard) in &mut servers {
        let silent = heard.0.is_some_and(|at| now - at > timers.heartbeat_timeout);
        if silent && let RecordGone::Hold(next) = phase.on_silent(now) {
            tracing::warn!(server_id = %game_server.id, "no heartbeat; holding new players until it reports again");
            *phase = next;
        }
        if let Some(reason) = phase.overdue(now, &timers) {
            lost.write(ServerLost { server, reason });
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

/// Stops servers that stayed empty past the grace period (scale to zero), for providers that
/// start servers on demand.
pub fn stop_empty_servers(
    mut servers: Query<(&GameServer, &mut ServerPhase, &EmptySince)>,
    settings: Res<ServerSettings>,
    provider: Res<ProviderHandle>,
    mut nats: MessageWriter<NatsCommand>,
    time: Res<Time<Real>>,
) {
    if !provider.0.starts_servers() {
        return; // a fleet's servers run whether or not they are empty
    }
    let now = now(&time);
    for (server, mut phase, empty) in &mut servers {
        let idle = empty.0.is_some_and(|since| now - since >= settings.empty_grace.as_secs_f64());
        if idle && phase.may_stop_when_empty() {
            tracing::info!(server_id = %server.id, "stopping empty server");
            crate::observe::server_stopped(&server.provider);
            *phase = phase.on_stop(now);
            provider.0.stop(&server.id);
            nats.write(NatsCommand::Control { server_id: server.id.clone(), command: ServerCommand::Shutdown });
        }
    }
}

/// What is given back when a server ends: its seats (with the provider's), and its match.
type EndingServer =
    (&'static GameServer, &'static ServerPhase, &'static SeatBook, Option<&'static ProviderSeats>, Has<HostsMatch>);

/// Removes lost servers, and stopped ones once they are gone: stops whatever may be left of
/// them, deletes their NATS records and despawns them. Joins, tokens and sessions that pointed
/// at them notice the entity is gone. A server that goes while being stopped ended as asked:
/// it is not counted lost.
pub fn forget_lost_servers(
    mut commands: Commands,
    mut lost: MessageReader<ServerLost>,
    servers: Query<EndingServer>,
    mut index: ResMut<ServerIndex>,
    provider: Res<ProviderHandle>,
    mut nats: MessageWriter<NatsCommand>,
) {
    let mut seen = HashSet::new();
    for ServerLost { server, reason } in lost.read() {
        if !seen.insert(*server) {
            continue;
        }
        let Ok((game_server, phase, seats, provider_seats, hosts_match)) = servers.get(*server) else { continue };
        let id: &ServerId = &game_server.id;
        let asked_to_stop = matches!(phase, ServerPhase::Stopping { .. })
            && matches!(reason, LossReason::Stopped | LossReason::Exited(_));
        if asked_to_stop {
            tracing::info!(server_id = %id, "server stopped: {reason}");
        } else {
            tracing::warn!(server_id = %id, "server lost: {reason}");
            crate::observe::server_lost(&game_server.provider);
        }
        if reason.needs_stop() && provider.0.starts_servers() {
            provider.0.stop(id);
        }
        // Seats the provider holds (Edgegap sessions) go with the server.
        for (client_id, external_id) in provider_seats.into_iter().flat_map(ProviderSeats::held) {
            provider.0.free_seat(id, client_id, external_id);
        }
        nats.write(NatsCommand::DeleteServer { server_id: id.clone() });
        if hosts_match {
            nats.write(NatsCommand::DeleteMatch { server_id: id.clone() });
        }
        nats.write_batch(
            seats.clients().map(|client_id| NatsCommand::DeletePlayer { server_id: id.clone(), client_id }),
        );
        index.0.remove(id);
        commands.entity(*server).despawn();
    }
}
