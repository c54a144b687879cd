use std::time::Duration;

use async_nats::jetstream::kv::{Operation, Store};
use bevygap_shared::naming::{NatsNames, ServerId};
use bevygap_shared::records::{PlayerRecord, ServerRecord};
use futures::StreamExt;

use super::reports::Report;
use bevygap_shared::inbox::InboxSender;

/// Follows the `servers` bucket forever, re-subscribing (with history) if the watch ends.
pub async fn servers(store: Store, events: InboxSender<Report>) {
    follow(store, "servers", events, |entry| match entry.operation {
        Operation::Put => match serde_json::from_slice::<ServerRecord>(&entry.value) {
            Ok(record) if record.server_id.as_str() == entry.key => Some(Report::Server(Box::new(record))),
            Ok(_) => {
                tracing::warn!(key = entry.key, "server record names another server; ignored");
                None
            }
            Err(e) => {
                tracing::warn!(key = entry.key, "malformed server record ignored: {e}");
                None
            }
        },
        Operation::Delete | Operation::Purge => ServerId::new(entry.key.as_str()).ok().map(Report::ServerGone),
    })
    .await
}

/// Follows the `players` bucket forever.
pub async fn players(store: Store, events: InboxSender<Report>) {
    follow(store, "players", events, |entry| match entry.operation {
        Operation::Put => match serde_json::from_slice::<PlayerRecord>(&entry.value) {
            Ok(record) => Some(Report::Player(record)),
            Err(e) => {
                tracing::warn!(key = entry.key, "malformed player record ignored: {e}");
                None
            }
        },
        Operation::Delete | Operation::Purge => {
            let (server_id, client_id) = NatsNames::parse_player_key(&entry.key)?;
            Some(Report::PlayerGone { server_id, client_id })
        }
    })
    .await
}

async fn follow(
    store: Store,
    what: &'static str,
    events: InboxSender<Report>,
    map: impl Fn(async_nats::jetstream::kv::Entry) -> Option<Report>,
) {
    loop {
        match store.watch_with_history(">").await {
            Ok(mut watch) => {
                while let Some(entry) = watch.next().await {
                    match entry {
                        Ok(entry) => {
                            if let Some(event) = map(entry) {
                                events.send(event);
                            }
                        }
                        Err(e) => {
                            tracing::warn!("{what} watch error: {e}");
                            break;
                        }
                    }
                }
                tracing::warn!("{what} watch ended; re-subscribing");
            }
            Err(e) => tracing::warn!("cannot watch {what}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
