//! Game servers as entities: launched through the provider, confirmed (or adopted) from their
//! NATS records, stopped when empty, given up when lost. What each report or timer does to a
//! server is the pure table in [`phase`]; seat bookkeeping is [`seats`].

mod components;
pub mod credentials;
mod lifecycle;
pub mod phase;
pub mod provider_seats;
pub mod seats;
pub mod settings;

use bevy::prelude::*;

pub use components::{
    EmptySince, GameServer, HostsMatch, LastHeard, SeatRefused, ServerEndpoints, ServerIndex, ServerLost,
};
pub use credentials::{AuthCalloutConfig, ServerCredentialConfig};
pub use lifecycle::ServerLauncher;
pub use phase::{LossReason, PhaseTimers, ServerPhase};
pub use provider_seats::ProviderSeats;
pub use seats::SeatBook;
pub use settings::ServerSettings;

use crate::nats_bridge::{NatsCommand, ServerRecordGone, ServerReported, SnapshotRead};
use crate::providers::{ProviderEvent, ProviderHandle};
use crate::schedule::{MatchmakerSchedulePlugin, MatchmakerSystems, expect_resource, require};

/// Server lifecycle systems. Needs a provider ([`crate::providers::ProviderPlugin`]) and a NATS
/// bridge (the real one or the in-memory stand-in).
pub struct ServersPlugin;

impl Plugin for ServersPlugin {
    fn build(&self, app: &mut App) {
        require(app, || MatchmakerSchedulePlugin);
        bevygap_shared::inbox::add_inbox::<ProviderEvent>(app);
        app.init_resource::<ServerIndex>()
            .register_type::<HostsMatch>()
            .init_resource::<ServerSettings>()
            .add_message::<ServerLost>()
            .add_message::<SeatRefused>()
            .add_message::<ServerReported>()
            .add_message::<ServerRecordGone>()
            .add_message::<SnapshotRead>()
            .add_message::<NatsCommand>()
            .register_type::<GameServer>()
            .register_type::<ServerPhase>()
            .register_type::<ServerEndpoints>()
            .register_type::<EmptySince>()
            .register_type::<LastHeard>()
            .register_type::<SeatBook>()
            .register_type::<ProviderSeats>()
            .add_systems(
                Update,
                (
                    lifecycle::apply_provider_events,
                    lifecycle::forget_servers_missing_after_reconnect,
                    lifecycle::apply_server_reports,
                    lifecycle::time_out_servers,
                )
                    .chain()
                    .in_set(MatchmakerSystems::Servers),
            )
            // After `Finish`, so a seat freed this tick counts as empty this tick.
            .add_systems(
                Update,
                (lifecycle::track_emptiness, lifecycle::stop_empty_servers, lifecycle::forget_lost_servers)
                    .chain()
                    .in_set(MatchmakerSystems::Cleanup),
            );
    }

    fn finish(&self, app: &mut App) {
        expect_resource::<ProviderHandle>(app, "ServersPlugin", "add ProviderPlugin with a ServerProvider");
    }
}
