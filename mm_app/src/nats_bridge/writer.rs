use bevy::prelude::*;
use bevygap_shared::naming::{NatsNames, ServerId};
use bevygap_shared::records::{ClientGrant, SessionRecord};
use tokio::runtime::Handle;

use super::{Nats, NatsEvent};
use bevygap_shared::inbox::InboxSender;

/// Performs KV writes off the main thread. Grants report back (the token waits for them);
/// deletes are fire-and-forget with a log on failure, and records expire anyway.
#[derive(Resource, Clone)]
pub struct NatsWriter {
    nats: Nats,
    handle: Handle,
    events: InboxSender<NatsEvent>,
}

impl NatsWriter {
    pub fn new(nats: Nats, handle: Handle, events: InboxSender<NatsEvent>) -> Self {
        Self { nats, handle, events }
    }

    /// Writes the grant and session record; reports `GrantStored` for `request` when both are
    /// acknowledged, so the game server can admit the client before it ever has the token.
    pub fn store_grant(&self, request: Entity, grant: ClientGrant, session: SessionRecord) {
        let kv = self.nats.kv.clone();
        let events = self.events.clone();
        let (server_id, client_id) = (grant.server_id.clone(), grant.client_id);
        self.handle.spawn(async move {
            let result = async {
                let key = NatsNames::client_key(&grant.server_id, grant.client_id);
                let bytes = serde_json::to_vec(&grant).map_err(|e| e.to_string())?;
                kv.clients.put(key, bytes.into()).await.map_err(|e| e.to_string())?;
                let bytes = serde_json::to_vec(&session).map_err(|e| e.to_string())?;
                kv.sessions.put(session.session_id.clone(), bytes.into()).await.map_err(|e| e.to_string())?;
                Ok(())
            }
            .await;
            events.send(NatsEvent::GrantStored { request, server_id, client_id, result });
        });
    }

    /// Removes a client's grant, so its token can no longer be admitted.
    pub fn delete_grant(&self, server_id: &ServerId, client_id: u64) {
        let key = NatsNames::client_key(server_id, client_id);
        self.delete(Which::Clients, key);
    }

    /// Removes a session record.
    pub fn delete_session(&self, session_id: &str) {
        self.delete(Which::Sessions, session_id.to_string());
    }

    /// Removes a server record (the server normally does this itself on a clean exit).
    pub fn delete_server(&self, server_id: &ServerId) {
        self.delete(Which::Servers, server_id.to_string());
    }

    /// Removes a player record left behind by a server that vanished.
    pub fn delete_player(&self, server_id: &ServerId, client_id: u64) {
        self.delete(Which::Players, NatsNames::player_key(server_id, client_id));
    }

    /// Publishes a command on a server's control subject.
    pub fn send_command(&self, server_id: &ServerId, command: bevygap_shared::records::ServerCommand) {
        let subject = self.nats.names.server_control_subject(server_id);
        let client = self.nats.conn.client().clone();
        self.handle.spawn(async move {
            let Ok(bytes) = serde_json::to_vec(&command) else { return };
            if let Err(e) = client.publish(subject.clone(), bytes.into()).await {
                tracing::warn!("cannot publish to {subject}: {e}");
            }
        });
    }

    fn delete(&self, which: Which, key: String) {
        let store = match which {
            Which::Clients => self.nats.kv.clients.clone(),
            Which::Sessions => self.nats.kv.sessions.clone(),
            Which::Servers => self.nats.kv.servers.clone(),
            Which::Players => self.nats.kv.players.clone(),
        };
        self.handle.spawn(async move {
            if let Err(e) = store.delete(&key).await {
                tracing::warn!(key, "KV delete failed (the record will expire): {e}");
            }
        });
    }
}

enum Which {
    Clients,
    Sessions,
    Servers,
    Players,
}
