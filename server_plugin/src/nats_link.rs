//! The one place that talks to NATS. A background task on the tokio runtime owns the
//! connection and a [`RecordBook`]; the ECS sends it `ToNats` through [`NatsLink`] and drains
//! what it reports (`FromNats`) from an [`Inbox`] each frame. NATS faults never reach the
//! game: writes that fail stay pending and are retried, and after a reconnect every record is
//! rewritten (players who left meanwhile are deleted).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::kv;
use bevy::prelude::*;
use bevy_tokio_tasks::TokioTasksRuntime;
use bevygap_shared::inbox::{Inbox, InboxSender, add_inbox};
use bevygap_shared::kv::KvStores;
use bevygap_shared::naming::{NatsNames, ServerId};
use bevygap_shared::nats::{InitialConnect, LinkStatus, NatsConfig, NatsConnection};
use bevygap_shared::records::{ServerCommand, ServerStatus, now_ms};
use futures::StreamExt;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::admission::GrantCache;
use crate::api::{BevygapStatus, BevygapSystems, ServerControl};
use crate::matched::{MatchAssigned, MatchUpdate, apply_update, is_match_key, read_update};
use crate::reporting::ReportingConfig;
use crate::reporting::book::{KvOp, RecordBook};

/// From the ECS to the NATS task.
#[derive(Debug, Clone)]
pub(crate) enum ToNats {
    Server(bevygap_shared::records::ServerRecord),
    PlayerJoined(bevygap_shared::records::PlayerRecord),
    PlayerLeft(u64),
    /// Remove every record, report [`FromNats::Retired`] and stop.
    Retire,
}

/// From the NATS task to the ECS, through an [`Inbox`].
#[derive(Debug, Clone)]
pub(crate) enum FromNats {
    Link(LinkStatus),
    ServerRecordWritten(ServerStatus),
    Control(ServerCommand),
    Match(MatchUpdate),
    Retired { clean: bool },
}

/// The ECS end of the NATS task: what systems send it. Its reports come back through
/// `Inbox<FromNats>`.
#[derive(Resource)]
pub(crate) struct NatsLink {
    tx: UnboundedSender<ToNats>,
}

impl NatsLink {
    /// Queues a message for the NATS task; dropped silently once it has stopped.
    pub fn send(&self, message: ToNats) {
        let _ = self.tx.send(message);
    }
}

/// Set once the NATS task has removed the records at shutdown: `Some(true)` when every delete
/// was acknowledged, `Some(false)` when it gave up (the records then expire by TTL).
#[derive(Resource, Debug, Default, Clone, Copy)]
pub struct RecordsRetired(pub Option<bool>);

/// Everything the NATS task needs.
#[derive(Debug, Clone)]
pub(crate) struct NatsLinkConfig {
    pub nats: NatsConfig,
    pub names: NatsNames,
    pub server_id: ServerId,
    pub reporting: ReportingConfig,
    /// Kept in step with the `clients` bucket by a KV watch. Shared state rather than an inbox:
    /// Lightyear's connection-request hook reads it synchronously, outside any system.
    pub grants: GrantCache,
    /// Filled with the `clients` bucket once open, for the admission hook's direct reads.
    pub clients: Arc<RwLock<Option<kv::Store>>>,
}

/// Starts the NATS task and applies what it reports.
pub(crate) struct NatsLinkPlugin {
    pub config: NatsLinkConfig,
}

impl Plugin for NatsLinkPlugin {
    fn build(&self, app: &mut App) {
        add_inbox::<FromNats>(app);
        let events = app.world().resource::<Inbox<FromNats>>().sender();
        let (to_tx, to_rx) = unbounded_channel();
        if let Some(runtime) = app.world().get_resource::<TokioTasksRuntime>() {
            runtime.runtime().spawn(run(self.config.clone(), to_rx, events));
        } else {
            error!("no TokioTasksRuntime: NATS reporting is disabled");
        }
        app.insert_resource(NatsLink { tx: to_tx })
            .init_resource::<RecordsRetired>()
            .add_message::<MatchAssigned>()
            .add_systems(Update, receive_from_nats.in_set(BevygapSystems::Receive));
    }
}

fn receive_from_nats(
    mut commands: Commands,
    mut inbox: ResMut<Inbox<FromNats>>,
    mut status: ResMut<BevygapStatus>,
    mut retired: ResMut<RecordsRetired>,
    mut control: MessageWriter<ServerControl>,
    mut assigned: MessageWriter<MatchAssigned>,
) {
    for event in inbox.drain() {
        match event {
            FromNats::Link(link) => status.nats = Some(link),
            FromNats::ServerRecordWritten(reported) => {
                status.registered = true;
                status.reported = Some(reported);
            }
            FromNats::Control(ServerCommand::Drain) => {
                control.write(ServerControl::Drain { reason: "drain requested by the matchmaker".into() });
            }
            FromNats::Control(ServerCommand::Shutdown) => {
                control.write(ServerControl::Shutdown { reason: "shutdown requested by the matchmaker".into() });
            }
            FromNats::Match(update) => apply_update(&mut commands, &mut assigned, update),
            FromNats::Retired { clean } => retired.0 = Some(clean),
        }
    }
}

/// The NATS task.
async fn run(config: NatsLinkConfig, mut commands: UnboundedReceiver<ToNats>, events: InboxSender<FromNats>) {
    // Its own inbox, inside the game-server role's: NATS permissions can then keep every other
    // role's replies (and watch deliveries) out of a game server's reach, and, with per-server
    // credentials, every other server's too.
    let nats = config.nats.clone().for_game_server(&config.names, &config.server_id);
    let conn = match NatsConnection::connect(&nats, InitialConnect::RetryInBackground).await {
        Ok(conn) => conn,
        Err(e) => {
            // Only configuration errors (bad CA, unreadable creds) end up here.
            error!("NATS is unusable, the server runs unregistered: {e}");
            drain_until_retired(&mut commands, &events).await;
            return;
        }
    };
    tokio::spawn(listen_for_control(
        conn.clone(),
        config.names.server_control_subject(&config.server_id),
        events.clone(),
    ));

    let mut link = conn.status();
    events.send(FromNats::Link(*link.borrow_and_update()));
    let mut book = RecordBook::default();
    let mut stores: Option<KvStores> = None;
    let reporting = config.reporting;
    let mut sync = tokio::time::interval(reporting.sync_interval);
    let mut heartbeat = tokio::time::interval(reporting.heartbeat);
    let mut refresh = tokio::time::interval(reporting.player_refresh);
    for timer in [&mut sync, &mut heartbeat, &mut refresh] {
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => return,
                Some(ToNats::Server(record)) => book.set_server(record),
                Some(ToNats::PlayerJoined(record)) => book.player_joined(record),
                Some(ToNats::PlayerLeft(id)) => book.player_left(id),
                Some(ToNats::Retire) => {
                    book.retire();
                    let clean = retire(&mut book, &mut stores, &conn, (&config, &events)).await;
                    events.send(FromNats::Retired { clean });
                    return;
                }
            },
            Ok(()) = link.changed() => {
                let status = *link.borrow_and_update();
                events.send(FromNats::Link(status));
                // The admission hook reads KV directly only while the link is up, so an outage
                // never makes it block for its full timeout.
                if let Ok(mut slot) = config.clients.write() {
                    *slot = stores.as_ref().filter(|_| status == LinkStatus::Connected).map(|s| s.clients.clone());
                }
                if status == LinkStatus::Connected {
                    info!("NATS link up: reconciling records");
                    book.touch_all();
                }
            }
            _ = heartbeat.tick() => book.touch_server(),
            _ = refresh.tick() => book.touch_players(),
            _ = sync.tick() => {
                if conn.link_status() == LinkStatus::Connected {
                    ensure_stores(&mut stores, &conn, &config, &events).await;
                    if let Some(stores) = &stores {
                        flush(&mut book, stores, &config, Some(&events)).await;
                    }
                }
            }
        }
    }
}

/// Without NATS, still answer a retire so shutdown does not wait for nothing.
async fn drain_until_retired(commands: &mut UnboundedReceiver<ToNats>, events: &InboxSender<FromNats>) {
    while let Some(command) = commands.recv().await {
        if let ToNats::Retire = command {
            events.send(FromNats::Retired { clean: true });
            return;
        }
    }
}

/// Opens the buckets (once), then starts the grant watch.
async fn ensure_stores(
    stores: &mut Option<KvStores>,
    conn: &NatsConnection,
    config: &NatsLinkConfig,
    events: &InboxSender<FromNats>,
) {
    if stores.is_some() {
        return;
    }
    match tokio::time::timeout(config.reporting.op_timeout, KvStores::open(&conn.jetstream(), &config.names)).await {
        Ok(Ok(opened)) => {
            info!("NATS KV buckets open");
            if let Ok(mut slot) = config.clients.write() {
                *slot = Some(opened.clients.clone());
            }
            let watch =
                watch_grants(opened.clients.clone(), config.server_id.clone(), config.grants.clone(), events.clone());
            tokio::spawn(watch);
            *stores = Some(opened);
        }
        Ok(Err(e)) => warn!("{e}"),
        Err(_) => warn!("opening the NATS KV buckets timed out"),
    }
}

/// Writes what the book says is pending; stops at the first failure (likely an outage) and
/// leaves the rest pending for the next round. Acknowledged server records are reported to
/// `events`, when given.
async fn flush(
    book: &mut RecordBook,
    stores: &KvStores,
    config: &NatsLinkConfig,
    events: Option<&InboxSender<FromNats>>,
) {
    for op in book.pending() {
        book.attempting(&op);
        let written = tokio::time::timeout(config.reporting.op_timeout, apply(&op, stores, &config.server_id)).await;
        match written {
            Ok(Ok(())) => {
                book.done(&op);
                if let (KvOp::PutServer(record), Some(events)) = (&op, events) {
                    events.send(FromNats::ServerRecordWritten(record.status));
                }
            }
            Ok(Err(e)) => {
                warn!("NATS write failed, will retry: {e}");
                return;
            }
            Err(_) => {
                warn!("NATS write timed out, will retry");
                return;
            }
        }
    }
}

async fn apply(
    op: &KvOp,
    stores: &KvStores,
    server_id: &ServerId,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use bevygap_shared::NatsNames;
    match op {
        KvOp::PutServer(record) => {
            let mut record = record.clone();
            record.heartbeat_at_ms = now_ms();
            stores.servers.put(server_id.as_str(), serde_json::to_vec(&record)?.into()).await?;
        }
        KvOp::DeleteServer => stores.servers.delete(server_id.as_str()).await?,
        KvOp::PutPlayer(record) => {
            let key = NatsNames::player_key(server_id, record.client_id);
            stores.players.put(key, serde_json::to_vec(record)?.into()).await?;
        }
        KvOp::DeletePlayer(id) => stores.players.delete(NatsNames::player_key(server_id, *id)).await?,
    }
    Ok(())
}

/// Removes every record, retrying for a bounded time. True when all were acknowledged.
async fn retire(
    book: &mut RecordBook,
    stores: &mut Option<KvStores>,
    conn: &NatsConnection,
    (config, events): (&NatsLinkConfig, &InboxSender<FromNats>),
) -> bool {
    let deadline = tokio::time::Instant::now() + config.reporting.retire_timeout;
    loop {
        if book.is_settled() {
            return true;
        }
        if conn.link_status() == LinkStatus::Connected {
            ensure_stores(stores, conn, config, events).await;
            if let Some(stores) = stores.as_ref() {
                flush(book, stores, config, None).await;
            }
        }
        if book.is_settled() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            warn!("could not remove every record before exiting; they will expire on their own");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Keeps the grant cache in step with `<server_id>.>` in the `clients` bucket, and reports the
/// server's match record (`<server_id>.match`) as it comes and goes. The watch starts with
/// current values (history), and is re-established whenever it breaks.
async fn watch_grants(store: kv::Store, server_id: ServerId, cache: GrantCache, events: InboxSender<FromNats>) {
    let filter = format!("{server_id}.>");
    loop {
        match store.watch_with_history(&filter).await {
            Ok(mut watch) => {
                while let Some(entry) = watch.next().await {
                    match entry {
                        Ok(entry) if is_match_key(&server_id, &entry.key) => {
                            if let Some(update) = read_update(&server_id, entry.operation, &entry.value) {
                                events.send(FromNats::Match(update));
                            }
                        }
                        Ok(entry) => cache.apply(&server_id, &entry.key, entry.operation, &entry.value),
                        Err(e) => {
                            debug!("grant watch interrupted: {e}");
                            break;
                        }
                    }
                }
            }
            Err(e) => debug!("cannot watch grants yet: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Forwards `{"command": "drain"|"shutdown"}` from the control subject; answers requests.
async fn listen_for_control(conn: NatsConnection, subject: String, events: InboxSender<FromNats>) {
    let mut subscription = match conn.client().subscribe(subject.clone()).await {
        Ok(s) => s,
        Err(e) => {
            error!("cannot subscribe to {subject}: {e}");
            return;
        }
    };
    while let Some(message) = subscription.next().await {
        let reply = match serde_json::from_slice::<ServerCommand>(&message.payload) {
            Ok(command) => {
                info!("control command: {command:?}");
                events.send(FromNats::Control(command));
                serde_json::json!({ "ok": true })
            }
            Err(e) => {
                warn!("ignoring malformed control message on {subject}: {e}");
                serde_json::json!({ "ok": false, "error": e.to_string() })
            }
        };
        if let Some(reply_to) = message.reply {
            let _ = conn.client().publish(reply_to, reply.to_string().into()).await;
        }
    }
}
