//! The bridge between NATS and the world: KV watches become [`NatsEvent`]s in an inbox, and
//! systems hand writes to [`NatsWriter`], which performs them on the tokio runtime.

mod dispatch;
mod watch;
mod writer;

use bevy::prelude::*;
use bevy_tokio_tasks::TokioTasksRuntime;
use bevygap_shared::kv::KvStores;
use bevygap_shared::naming::{NatsNames, ServerId};
use bevygap_shared::nats::NatsConnection;
use bevygap_shared::records::{PlayerRecord, ServerRecord};

pub use writer::NatsWriter;

use bevygap_shared::inbox::{Inbox, add_inbox};

/// The live connection and buckets; NATS KV is the source of truth for anything another
/// process must see, the ECS is the queryable view of it.
#[derive(Resource, Clone)]
pub struct Nats {
    pub conn: NatsConnection,
    pub kv: KvStores,
    pub names: NatsNames,
}

/// Something changed in NATS that the matchmaker follows.
#[derive(Message, Debug, Clone)]
pub enum NatsEvent {
    /// A game server registered or heartbeated.
    ServerPut(Box<ServerRecord>),
    /// A server record was deleted or expired (heartbeats stopped).
    ServerGone(ServerId),
    /// A game server reports a player connected.
    PlayerJoined(PlayerRecord),
    /// A player record was deleted or expired.
    PlayerLeft { server_id: ServerId, client_id: u64 },
    /// The result of writing a client grant, before the token may be returned.
    GrantStored { request: Entity, server_id: ServerId, client_id: u64, result: Result<(), String> },
}

/// Watches the `servers` and `players` buckets and provides the writer.
pub struct NatsBridgePlugin;

impl Plugin for NatsBridgePlugin {
    fn build(&self, app: &mut App) {
        add_inbox::<NatsEvent>(app);
        app.add_message::<NatsEvent>()
            .add_systems(Startup, start_watches)
            .add_systems(Update, dispatch::dispatch_nats_events.in_set(crate::MatchmakerSet::Ingest));
    }
}

fn start_watches(mut commands: Commands, nats: Res<Nats>, rt: Res<TokioTasksRuntime>, inbox: Res<Inbox<NatsEvent>>) {
    let handle = rt.runtime().handle().clone();
    handle.spawn(watch::servers(nats.kv.servers.clone(), inbox.sender()));
    handle.spawn(watch::players(nats.kv.players.clone(), inbox.sender()));
    commands.insert_resource(NatsWriter::new(nats.clone(), handle, inbox.sender()));
}
