use std::sync::Arc;

use bevy::prelude::*;
use bevy_tokio_tasks::TokioTasksRuntime;
use bevygap_shared::inbox::InboxSender;
use bevygap_shared::inbox::{Inbox, add_inbox};
use bevygap_shared::kv::KvStores;
use bevygap_shared::naming::ServerId;
use bevygap_shared::naming::{MATCH_KEY_SUFFIX, NatsNames};
use bevygap_shared::nats::{LinkStatus, NatsConnection};

use super::reports::{GrantStored, InheritedState, MatchStored, Report, Undelivered, deliver_reports};
use super::{
    BridgeError, CapacityCall, GrantWrite, IngestEvents, KvSnapshot, MatchWrite, NatsCommand, add_bridge_messages,
    watch,
};
use crate::fence::Ownership;
use crate::schedule::{MatchmakerSchedulePlugin, MatchmakerSystems, expect_resource, require};
use bevygap_shared::records::MatchRecord;

/// The live connection and buckets; NATS KV is the source of truth for anything another
/// process must see, the ECS is the queryable view of it. Not reflected: it holds credentials.
#[derive(Resource, Clone)]
pub struct Nats {
    pub conn: NatsConnection,
    pub kv: KvStores,
    pub names: NatsNames,
}

/// The real bridge: watches the `servers` and `players` buckets into reports and
/// performs [`NatsCommand`]s on the tokio runtime. Needs the [`Nats`] resource and
/// `bevy_tokio_tasks::TokioTasksPlugin`.
pub struct NatsBridgePlugin;

impl Plugin for NatsBridgePlugin {
    fn build(&self, app: &mut App) {
        require(app, || MatchmakerSchedulePlugin);
        add_bridge_messages(app);
        add_inbox::<Report>(app);
        app.init_resource::<Undelivered>();
        // Watches start when this replica first owns the namespace (at once for a sole
        // matchmaker), so a new owner reads everything as a restarted matchmaker does.
        app.add_systems(Update, start_watches.in_set(MatchmakerSystems::Ingest).before(IngestEvents))
            .add_systems(Update, deliver_reports.in_set(MatchmakerSystems::Ingest).in_set(IngestEvents))
            .add_systems(Update, perform_commands.in_set(MatchmakerSystems::Flush));
    }

    fn finish(&self, app: &mut App) {
        expect_resource::<Nats>(app, "NatsBridgePlugin", "connect to NATS and insert it first (see app::build_app)");
        expect_resource::<TokioTasksRuntime>(app, "NatsBridgePlugin", "add bevy_tokio_tasks::TokioTasksPlugin");
    }
}

fn start_watches(nats: Res<Nats>, rt: Res<TokioTasksRuntime>, inbox: Res<Inbox<Report>>, mut started: Local<bool>) {
    if std::mem::replace(&mut *started, true) {
        return;
    }
    let handle = rt.runtime().handle();
    handle.spawn(watch::servers(nats.kv.servers.clone(), inbox.sender()));
    handle.spawn(watch::players(nats.kv.players.clone(), inbox.sender()));
    handle.spawn(follow_link(nats.clone(), inbox.sender()));
    handle.spawn(read_inherited(nats.kv.clone(), inbox.sender()));
}

/// Reads the grants and sessions an earlier matchmaker process left (a few tries: at start-up
/// NATS may still be settling). Undecodable records are skipped with a warning.
async fn read_inherited(kv: KvStores, events: InboxSender<Report>) {
    let mut delay = std::time::Duration::from_millis(200);
    for attempt in 1..=5 {
        match inherited(&kv).await {
            Ok(state) => {
                if !state.grants.is_empty() {
                    tracing::info!(
                        grants = state.grants.len(),
                        sessions = state.sessions.len(),
                        "holding the seats of tokens an earlier matchmaker issued"
                    );
                }
                events.send(Report::TakenOver(Box::new(state)));
                return;
            }
            Err(e) => {
                tracing::warn!("cannot read earlier grants and sessions (attempt {attempt}): {e}");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    tracing::error!("earlier grants and sessions were not read: their seats are not held and they expire by age only");
    // Placement waits for this; go on without them rather than never place anyone.
    events.send(Report::TakenOver(Box::default()));
}

async fn inherited(kv: &KvStores) -> Result<InheritedState, String> {
    let is_match = |key: &String| key.rsplit('.').next() == Some(MATCH_KEY_SUFFIX);
    Ok(InheritedState {
        grants: values_where(&kv.clients, |key| !is_match(key)).await?,
        matches: values_where(&kv.clients, is_match).await?,
        sessions: values_where(&kv.sessions, |_| true).await?,
        requests: values_where(&kv.requests, |_| true).await?,
    })
}

/// Every value of a bucket whose key passes `wanted` and that decodes as `T`.
async fn values_where<T: serde::de::DeserializeOwned>(
    store: &async_nats::jetstream::kv::Store,
    wanted: impl Fn(&String) -> bool,
) -> Result<Vec<T>, String> {
    use futures::TryStreamExt;
    let mut keys: Vec<String> =
        store.keys().await.map_err(|e| e.to_string())?.try_collect().await.map_err(|e| e.to_string())?;
    keys.retain(|key| wanted(key));
    let mut values = Vec::with_capacity(keys.len());
    for key in keys {
        let Some(bytes) = store.get(&key).await.map_err(|e| e.to_string())? else { continue };
        match serde_json::from_slice(&bytes) {
            Ok(value) => values.push(value),
            Err(e) => tracing::warn!(key, "skipping an undecodable record: {e}"),
        }
    }
    Ok(values)
}

/// Reports every change of the NATS link, and after each reconnect a snapshot of the keys of
/// the followed buckets, so removals missed while the link was down are reconciled.
async fn follow_link(nats: Nats, events: InboxSender<Report>) {
    let mut status = nats.conn.status();
    let mut was_down = false;
    loop {
        let now = *status.borrow_and_update();
        events.send(Report::Link(now));
        match now {
            LinkStatus::Connected if was_down => {
                was_down = false;
                match snapshot(&nats.kv).await {
                    Ok(snapshot) => {
                        events.send(Report::Snapshot(Box::new(snapshot)));
                    }
                    Err(e) => tracing::warn!("cannot read the buckets after a reconnect: {e}"),
                }
            }
            LinkStatus::Connected => {}
            _ => was_down = true,
        }
        if status.changed().await.is_err() {
            return; // the connection is gone for good
        }
    }
}

/// Every key of the `servers` and `players` buckets. Any read error fails the whole snapshot:
/// a partial one would make present servers and players look removed.
async fn snapshot(kv: &KvStores) -> Result<KvSnapshot, String> {
    use futures::TryStreamExt;
    let servers: Vec<String> =
        kv.servers.keys().await.map_err(|e| e.to_string())?.try_collect().await.map_err(|e| e.to_string())?;
    let players: Vec<String> =
        kv.players.keys().await.map_err(|e| e.to_string())?.try_collect().await.map_err(|e| e.to_string())?;
    Ok(KvSnapshot {
        servers: servers.into_iter().filter_map(|key| ServerId::new(key).ok()).collect(),
        players: players.iter().filter_map(|key| NatsNames::parse_player_key(key)).collect(),
    })
}

/// Performs this tick's writes off the main thread. Grant writes report back (the token waits
/// for them); deletes are fire-and-forget with a log on failure, and the records expire anyway.
fn perform_commands(
    mut commands: MessageReader<NatsCommand>,
    nats: Res<Nats>,
    rt: Res<TokioTasksRuntime>,
    inbox: Res<Inbox<Report>>,
    ownership: Option<Res<Ownership>>,
    mut shared: Local<Option<Arc<Nats>>>,
) {
    if commands.is_empty() {
        return;
    }
    let handle = rt.runtime().handle();
    let ownership = ownership.map(|o| o.clone()).unwrap_or_else(Ownership::sole);
    // One copy of the connection and buckets, shared by reference count with every write (a
    // `Nats` clone copies every bucket's names and client handle).
    if nats.is_changed() || shared.is_none() {
        *shared = Some(Arc::new(Nats::clone(&nats)));
    }
    let Some(nats) = shared.clone() else { return };
    for command in commands.read() {
        let events = inbox.sender();
        handle.spawn(perform(nats.clone(), command.clone(), events, ownership.clone()));
    }
}

/// Performs one write, if this replica still owns the namespace at the moment it is made
/// (fencing: a replica paused since the tick that decided it must not write as owner).
async fn perform(
    nats: Arc<Nats>,
    command: NatsCommand,
    events: bevygap_shared::inbox::InboxSender<Report>,
    ownership: Ownership,
) {
    if !ownership.acting() {
        tracing::warn!("a write decided as owner was dropped: this replica no longer owns the namespace");
        let refused = || Err(BridgeError::Write { bucket: "clients", reason: "not the namespace owner".into() });
        match command {
            NatsCommand::StoreGrant(write) => {
                let (server_id, client_id) = (write.grant.server_id.clone(), write.grant.client_id);
                events.send(Report::GrantStored(GrantStored {
                    join: write.join,
                    server_id,
                    client_id,
                    result: refused(),
                }));
            }
            NatsCommand::StoreMatch(write) => {
                let (game_match, server_id) = (write.game_match, write.record.server_id.clone());
                events.send(Report::MatchStored(MatchStored { game_match, server_id, result: refused() }));
            }
            _ => {}
        }
        return;
    }
    let kv = &nats.kv;
    let (store, key, what) = match command {
        NatsCommand::StoreGrant(write) => {
            let GrantWrite { join, grant, session } = *write;
            let (server_id, client_id) = (grant.server_id.clone(), grant.client_id);
            let result = Box::pin(store_grant(kv, &grant, &session)).await;
            events.send(Report::GrantStored(GrantStored { join, server_id, client_id, result }));
            return;
        }
        NatsCommand::StoreMatch(write) => {
            let MatchWrite { game_match, record } = *write;
            let result = Box::pin(store_match(kv, &record)).await;
            let server_id = record.server_id;
            events.send(Report::MatchStored(MatchStored { game_match, server_id, result }));
            return;
        }
        NatsCommand::Control { server_id, command } => {
            let subject = nats.names.server_control_subject(&server_id);
            let Ok(bytes) = serde_json::to_vec(&command) else { return };
            if let Err(e) = Box::pin(nats.conn.client().publish(subject.clone(), bytes.into())).await {
                tracing::warn!("cannot publish to {subject}: {e}");
            }
            return;
        }
        NatsCommand::NeedCapacity { game, waiting } => {
            let subject = nats.names.need_capacity_subject(&game.game);
            let call = CapacityCall { game: game.game.to_string(), version: game.version.to_string(), waiting };
            let Ok(bytes) = serde_json::to_vec(&call) else { return };
            if let Err(e) = nats.conn.client().publish(subject.clone(), bytes.into()).await {
                tracing::warn!("cannot publish to {subject}: {e}");
            }
            return;
        }
        NatsCommand::PutRequest(pending) => {
            let Ok(bytes) = serde_json::to_vec(&pending) else { return };
            match Box::pin(kv.requests.put(pending.request_id.as_str(), bytes.into())).await {
                Ok(_) => {
                    events.send(Report::RequestStored(pending.request_id.clone()));
                }
                Err(e) => tracing::warn!(request_id = pending.request_id, "cannot record a waiting join: {e}"),
            }
            return;
        }
        NatsCommand::DeleteRequest { request_id } => (&kv.requests, request_id, "request"),
        NatsCommand::DeleteGrant { server_id, client_id } => {
            (&kv.clients, NatsNames::client_key(&server_id, client_id), "grant")
        }
        NatsCommand::DeleteMatch { server_id } => (&kv.clients, NatsNames::match_key(&server_id), "match"),
        NatsCommand::DeleteSession { session_id } => (&kv.sessions, session_id, "session"),
        NatsCommand::DeleteServer { server_id } => (&kv.servers, server_id.to_string(), "server"),
        NatsCommand::DeletePlayer { server_id, client_id } => {
            (&kv.players, NatsNames::player_key(&server_id, client_id), "player")
        }
    };
    if let Err(e) = Box::pin(store.delete(&key)).await {
        tracing::warn!(key, "cannot delete a {what} record (it will expire): {e}");
    }
}

async fn store_match(kv: &KvStores, record: &MatchRecord) -> Result<(), BridgeError> {
    let bytes = serde_json::to_vec(record).map_err(|e| BridgeError::Encode { what: "match", reason: e.to_string() })?;
    let key = NatsNames::match_key(&record.server_id);
    kv.clients
        .put(key, bytes.into())
        .await
        .map_err(|e| BridgeError::Write { bucket: "clients", reason: e.to_string() })?;
    Ok(())
}

async fn store_grant(
    kv: &KvStores,
    grant: &bevygap_shared::records::ClientGrant,
    session: &bevygap_shared::records::SessionRecord,
) -> Result<(), BridgeError> {
    let encode = |what, e: serde_json::Error| BridgeError::Encode { what, reason: e.to_string() };
    let write = |bucket, e: async_nats::jetstream::kv::PutError| BridgeError::Write { bucket, reason: e.to_string() };
    let key = NatsNames::client_key(&grant.server_id, grant.client_id);
    let bytes = serde_json::to_vec(grant).map_err(|e| encode("grant", e))?;
    kv.clients.put(key, bytes.into()).await.map_err(|e| write("clients", e))?;
    let bytes = serde_json::to_vec(session).map_err(|e| encode("session", e))?;
    kv.sessions.put(session.session_id.clone(), bytes.into()).await.map_err(|e| write("sessions", e))?;
    Ok(())
}
