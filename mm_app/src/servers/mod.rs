//! Game servers as entities: adopted from or confirmed by their NATS records, launched through
//! the provider, stopped when empty, cleaned up when lost.

mod components;
mod lifecycle;
pub mod seats;

use bevy::prelude::*;

pub use components::{EmptySince, GameServer, ServerEndpoints, ServerIndex, ServerKey, ServerLost, ServerPhase};
pub use lifecycle::launch_server;
pub use seats::SeatBook;

use crate::MatchmakerSet;

/// Server lifecycle systems.
pub struct ServersPlugin;

impl Plugin for ServersPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<ServerIndex>()
            .add_message::<ServerLost>()
            .register_type::<GameServer>()
            .register_type::<ServerPhase>()
            .register_type::<ServerEndpoints>()
            .register_type::<EmptySince>()
            .register_type::<SeatBook>()
            .add_systems(
                Update,
                (
                    lifecycle::apply_provider_events,
                    lifecycle::apply_server_reports,
                    lifecycle::time_out_starting_servers,
                )
                    .chain()
                    .in_set(MatchmakerSet::Servers),
            )
            .add_systems(
                Update,
                (lifecycle::track_emptiness, lifecycle::stop_empty_servers).chain().in_set(MatchmakerSet::Housekeeping),
            )
            .add_systems(Update, lifecycle::forget_lost_servers.in_set(MatchmakerSet::Cleanup));
    }
}
