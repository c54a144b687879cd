//! Game sessions as entities (the tokens plugin keeps them): one placement of one or more players on a server, mirrored in
//! the `sessions` bucket; it ends when its last token ends.

use std::collections::HashMap;

use bevy::prelude::*;
use bevygap_shared::naming::ServerId;

use crate::game::GameKey;

/// A placement of players on a server.
#[derive(Component, Debug, Clone, Reflect)]
#[reflect(Component)]
#[type_path = "bevygap"]
pub struct GameSession {
    pub session_id: String,
    pub server: Entity,
    pub server_id: ServerId,
    pub game: GameKey,
    pub clients: Vec<u64>,
    pub created_at: f64,
}

/// Session id → entity.
#[derive(Resource, Debug, Default)]
pub struct SessionIndex(pub HashMap<String, Entity>);
