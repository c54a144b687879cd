//! Join requests as entities: queued, placed on a seat, given a token once the server is
//! ready and the grant is in NATS, or failed with a code. Kept a while after the end so a
//! retry with the same request id resumes instead of placing the player twice.

mod components;
mod outcome;
mod placement;

use bevy::prelude::*;

pub use components::*;
pub use outcome::RESUME_WINDOW_SECS;

use crate::MatchmakerSet;

/// Join request systems.
pub struct RequestsPlugin;

impl Plugin for RequestsPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<RequestIndex>()
            .add_message::<FailJoin>()
            .register_type::<JoinTicket>()
            .register_type::<JoinPhase>()
            .register_type::<Placement>()
            .register_type::<FinishedAt>()
            .add_systems(
                Update,
                (
                    outcome::fail_overdue_joins,
                    placement::requeue_lost_placements,
                    placement::place_queued_joins,
                    placement::issue_tokens,
                    outcome::complete_grants,
                )
                    .chain()
                    .in_set(MatchmakerSet::Requests),
            )
            .add_systems(
                Update,
                (outcome::apply_failures, outcome::forget_finished_joins).chain().in_set(MatchmakerSet::Finish),
            );
    }
}
