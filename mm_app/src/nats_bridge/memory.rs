use std::collections::BTreeMap;

use bevy::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::records::{ClientGrant, MatchRecord, ServerCommand, SessionRecord};

use super::reports::{GrantStored, InheritedState, MatchStored, RequestStored, TakenOver};
use super::{BridgeError, GrantWrite, MatchWrite, NatsCommand, add_bridge_messages};
use crate::game::GameKey;
use crate::schedule::{MatchmakerSchedulePlugin, MatchmakerSystems, require};

/// What the in-memory stand-in holds: the records the matchmaker wrote and the deletes and
/// commands it sent, for tests to assert on.
#[derive(Resource, Debug, Default)]
pub struct MemoryNats {
    pub grants: BTreeMap<(ServerId, u64), ClientGrant>,
    /// The match each server runs.
    pub matches: BTreeMap<ServerId, MatchRecord>,
    pub sessions: BTreeMap<String, SessionRecord>,
    pub deleted_servers: Vec<ServerId>,
    pub deleted_players: Vec<(ServerId, u64)>,
    pub controls: Vec<(ServerId, ServerCommand)>,
    /// Every scale-hook call, in order.
    pub capacity_calls: Vec<(GameKey, usize)>,
    /// Joins waiting for their answer, by request id.
    pub requests: BTreeMap<String, bevygap_shared::records::RequestRecord>,
    /// Make grant writes fail (as during a NATS outage).
    pub fail_grant_writes: bool,
    /// Make match record writes fail.
    pub fail_match_writes: bool,
}

/// The NATS seam without NATS: commands are applied to [`MemoryNats`] at the end of the tick
/// and grant writes are acknowledged on the next one. Tests play the game servers' part by
/// writing the bridge's Messages ([`ServerReported`](super::ServerReported),
/// [`PlayerReported`](super::PlayerReported)…) into the world.
pub struct MemoryNatsPlugin;

impl Plugin for MemoryNatsPlugin {
    fn build(&self, app: &mut App) {
        require(app, || MatchmakerSchedulePlugin);
        add_bridge_messages(app);
        app.init_resource::<MemoryNats>()
            .add_systems(Startup, report_inherited)
            .add_systems(Update, apply_commands.in_set(MatchmakerSystems::Flush));
    }
}

/// Reports the grants and sessions held at start-up, as the real bridge does.
fn report_inherited(store: Res<MemoryNats>, mut taken_over: MessageWriter<TakenOver>) {
    let state = InheritedState {
        grants: store.grants.values().cloned().collect(),
        matches: store.matches.values().cloned().collect(),
        sessions: store.sessions.values().cloned().collect(),
        requests: store.requests.values().cloned().collect(),
    };
    taken_over.write(TakenOver(Box::new(state)));
}

fn apply_commands(
    mut commands: MessageReader<NatsCommand>,
    mut store: ResMut<MemoryNats>,
    (mut grants, mut matches, mut requests): (
        MessageWriter<GrantStored>,
        MessageWriter<MatchStored>,
        MessageWriter<RequestStored>,
    ),
) {
    for command in commands.read() {
        match command.clone() {
            NatsCommand::StoreGrant(write) => {
                let GrantWrite { join, grant, session } = *write;
                let (server_id, client_id) = (grant.server_id.clone(), grant.client_id);
                let result = if store.fail_grant_writes {
                    Err(BridgeError::Write { bucket: "clients", reason: "NATS is unreachable".into() })
                } else {
                    store.grants.insert((server_id.clone(), client_id), grant);
                    store.sessions.insert(session.session_id.clone(), session);
                    Ok(())
                };
                grants.write(GrantStored { join, server_id, client_id, result });
            }
            NatsCommand::StoreMatch(write) => {
                let MatchWrite { game_match, record } = *write;
                let server_id = record.server_id.clone();
                let result = if store.fail_match_writes {
                    Err(BridgeError::Write { bucket: "clients", reason: "NATS is unreachable".into() })
                } else {
                    store.matches.insert(server_id.clone(), record);
                    Ok(())
                };
                matches.write(MatchStored { game_match, server_id, result });
            }
            NatsCommand::DeleteMatch { server_id } => {
                store.matches.remove(&server_id);
            }
            NatsCommand::DeleteGrant { server_id, client_id } => {
                store.grants.remove(&(server_id, client_id));
            }
            NatsCommand::DeleteSession { session_id } => {
                store.sessions.remove(&session_id);
            }
            NatsCommand::DeleteServer { server_id } => store.deleted_servers.push(server_id),
            NatsCommand::DeletePlayer { server_id, client_id } => store.deleted_players.push((server_id, client_id)),
            NatsCommand::Control { server_id, command } => store.controls.push((server_id, command)),
            NatsCommand::NeedCapacity { game, waiting } => store.capacity_calls.push((game, waiting)),
            NatsCommand::PutRequest(pending) => {
                requests.write(RequestStored { request_id: pending.request_id.clone() });
                store.requests.insert(pending.request_id.clone(), *pending);
            }
            NatsCommand::DeleteRequest { request_id } => {
                store.requests.remove(&request_id);
            }
        }
    }
}
