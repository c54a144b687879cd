//! Issued ConnectTokens as entities: each holds a seat until its player connects (claimed),
//! and ends when the player leaves, when it expires unclaimed, or when its server is lost.
//! Tokens an earlier matchmaker process issued are taken over at start-up ([`restore`]).

pub mod issuer;
mod lifecycle;
pub mod mint;
pub mod restore;
mod session;
pub mod settings;

pub use lifecycle::CLAIM_GRACE_SECS;
pub use session::{GameSession, SessionIndex};
pub use settings::TokenSettings;

use std::collections::HashMap;

use bevy::prelude::*;
use bevygap_shared::naming::ServerId;

use crate::schedule::{MatchmakerSystems, require};
use crate::servers::ServersPlugin;

/// A token handed to a player; the seat it holds is freed when this entity ends.
#[derive(Component, Debug, Clone, Reflect)]
#[reflect(Component)]
#[type_path = "bevygap"]
pub struct IssuedToken {
    pub client_id: u64,
    pub server: Entity,
    pub server_id: ServerId,
    pub session: Entity,
    /// The join it was issued for, for the logs; `None` for a token an earlier matchmaker
    /// issued (grants carry no request id: game servers read them).
    pub request_id: Option<String>,
    /// When the token was issued (seconds since app start; before it for a token an earlier
    /// matchmaker issued): the start of the "token issued → player connected" stage.
    pub issued_at: f64,
    /// When the token can no longer start a connection (seconds since app start).
    pub expires_at: f64,
}

/// Whether the player has shown up on the server.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq, Reflect)]
#[reflect(Component)]
#[type_path = "bevygap"]
pub enum TokenState {
    Unclaimed,
    Claimed,
}

/// The Lightyear keys tokens are signed with. Not reflected, so BRP can never read them.
#[derive(Resource, Clone)]
pub struct MatchmakerKeys(pub bevygap_shared::LightyearKeys);

/// Client id → token entity.
#[derive(Resource, Debug, Default)]
pub struct TokenIndex(pub HashMap<u64, Entity>);

/// A token's life is over; [`lifecycle::finish_ended_tokens`] frees its seat, deletes its
/// grant and closes its session.
#[derive(Message, Debug, Clone)]
pub struct TokenEnded {
    pub token: Entity,
    pub reason: &'static str,
}

/// A player connected with this token (it is claimed now): what the join plugin's count of
/// unclaimed seats reacts to, without looking at every token for changes.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenClaimed {
    pub token: Entity,
}

/// Token lifecycle systems, and the sessions tokens belong to; tokens hold seats on servers.
pub struct TokensPlugin;

impl Plugin for TokensPlugin {
    fn build(&self, app: &mut App) {
        require(app, || ServersPlugin);
        app.init_resource::<TokenIndex>()
            .init_resource::<TokenSettings>()
            .init_resource::<SessionIndex>()
            .register_type::<GameSession>()
            .init_resource::<lifecycle::EarlyPlayers>()
            .add_message::<TokenEnded>()
            .add_message::<TokenClaimed>()
            .register_type::<IssuedToken>()
            .register_type::<TokenState>()
            .init_resource::<restore::EarlierTokens>()
            .add_systems(
                Update,
                (
                    lifecycle::release_players_missing_after_reconnect,
                    lifecycle::follow_players,
                    lifecycle::claim_tokens,
                    restore::receive_earlier_tokens,
                    restore::restore_earlier_tokens,
                )
                    .chain()
                    .in_set(MatchmakerSystems::Players),
            )
            .add_systems(
                Update,
                (lifecycle::expire_unclaimed_tokens, lifecycle::end_tokens_of_lost_servers)
                    .in_set(MatchmakerSystems::Housekeeping),
            )
            .add_systems(Update, lifecycle::finish_ended_tokens.in_set(MatchmakerSystems::Finish));
    }
}
