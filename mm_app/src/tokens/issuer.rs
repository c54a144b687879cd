//! Issuing a token: the one place that mints ConnectTokens, spawns the [`IssuedToken`] and its
//! [`GameSession`] and indexes both. A join being answered and an earlier owner's grant being
//! held again both go through it, so a token always has the same shape; the twin of
//! [`ServerLauncher`](crate::servers::ServerLauncher).

use std::net::SocketAddr;

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevygap_shared::naming::ServerId;

use super::mint::{MintError, TokenSpec, mint};
use super::{GameSession, IssuedToken, MatchmakerKeys, SessionIndex, TokenIndex, TokenSettings, TokenState};
use crate::game::GameKey;

/// A session to put a token in: opened if no session of that id is open yet.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub session_id: String,
    pub server: Entity,
    pub server_id: ServerId,
    pub game: GameKey,
    /// When it was opened (matchmaker clock), if it is opened now.
    pub created_at: f64,
}

/// Mints, spawns and indexes tokens and their sessions.
#[derive(SystemParam)]
pub struct TokenIssuer<'w, 's> {
    commands: Commands<'w, 's>,
    keys: Res<'w, MatchmakerKeys>,
    settings: Res<'w, TokenSettings>,
    tokens: ResMut<'w, TokenIndex>,
    sessions: ResMut<'w, SessionIndex>,
    session_rows: Query<'w, 's, &'static mut GameSession>,
}

impl<'w, 's> TokenIssuer<'w, 's> {
    /// What tokens are issued with.
    pub fn settings(&self) -> TokenSettings {
        *self.settings
    }

    /// Whether `client_id` holds a token already.
    pub fn holds(&self, client_id: u64) -> bool {
        self.tokens.0.contains_key(&client_id)
    }

    /// Whether a session of this id is open.
    pub fn has_session(&self, session_id: &str) -> bool {
        self.sessions.0.contains_key(session_id)
    }

    /// A ConnectToken for `client_id` to dial `server_addr`, carrying `session_id`.
    pub fn mint(&self, server_addr: SocketAddr, client_id: u64, session_id: &str) -> Result<String, MintError> {
        mint(&TokenSpec {
            server_addr,
            client_id,
            keys: &self.keys.0,
            expire_secs: self.settings.ttl_secs,
            timeout_secs: self.settings.connection_timeout_secs,
            session_id,
        })
    }

    /// The session `spec` names with `client_id` in it: the open one, or a new one spawned and
    /// indexed.
    pub fn session(&mut self, spec: SessionSpec, client_id: u64) -> Entity {
        if let Some(&session) = self.sessions.0.get(&spec.session_id) {
            if let Ok(mut row) = self.session_rows.get_mut(session)
                && !row.clients.contains(&client_id)
            {
                row.clients.push(client_id);
            }
            return session;
        }
        let SessionSpec { session_id, server, server_id, game, created_at } = spec;
        let session = self
            .commands
            .spawn((
                Name::new(format!("session {session_id}")),
                GameSession {
                    session_id: session_id.clone(),
                    server,
                    server_id,
                    game,
                    clients: vec![client_id],
                    created_at,
                },
            ))
            .id();
        self.sessions.0.insert(session_id, session);
        session
    }

    /// Spawns `token` in `state` and indexes it by its client id.
    pub fn hold(&mut self, token: IssuedToken, state: TokenState) -> Entity {
        let client_id = token.client_id;
        let entity = self.commands.spawn((Name::new(format!("token {client_id}")), token, state)).id();
        self.tokens.0.insert(client_id, entity);
        entity
    }

    /// The commands the tokens and sessions are spawned with, for what goes with them.
    pub fn commands(&mut self) -> &mut Commands<'w, 's> {
        &mut self.commands
    }
}
