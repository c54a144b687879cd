//! Join requests as entities. The life of a join is the pure state machine in [`machine`];
//! whether a request is let in is the pure check in [`admission`]; which seat it gets is
//! [`crate::placement`]. The systems in `systems` gather ECS state, call those, and apply
//! what they decide.

pub mod admission;
mod issuance;
pub mod machine;
pub mod pending;
mod seat_sync;
pub mod settings;
pub mod settled;
pub mod systems;

pub use systems::{Releases, new_client_id, reserve_seat};

use std::collections::HashMap;

use bevy::prelude::*;
use bevygap_shared::protocol::{JoinError, JoinProgress, ReadyPayload};

pub use machine::{Join, JoinPhase, MAX_LOST_SERVERS, MatchClaims, RESUME_WINDOW_SECS, Release, Requester, SeatClaim};
pub use settings::JoinSettings;
pub use settled::{JoinAnswered, Settled, UnclaimedSeats};

use crate::nats_bridge::NatsCommand;
use crate::schedule::{MatchmakerSystems, require};
use crate::tokens::TokensPlugin;

/// Every progress message of a join, in order; streams send each one they have not yet sent.
/// Not reflected: a ready message carries the player's ConnectToken.
#[derive(Component, Debug, Clone)]
pub struct JoinUpdates(Vec<JoinProgress>);

impl JoinUpdates {
    /// The log, starting with the join's first message.
    pub fn new(first: JoinProgress) -> Self {
        Self(vec![first])
    }

    /// Publishes a new message to every stream following this join.
    pub fn push(&mut self, next: JoinProgress) {
        self.0.push(next);
    }

    /// How many messages there are; a stream that has sent this many is up to date.
    #[allow(clippy::len_without_is_empty)] // never empty: created with a first message
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The message at `index`, if published.
    pub fn get(&self, index: usize) -> Option<&JoinProgress> {
        self.0.get(index)
    }

    /// The most recent message.
    pub fn latest(&self) -> &JoinProgress {
        // Never empty: `new` takes the first message and nothing removes one.
        &self.0[self.0.len() - 1]
    }
}

/// The ready answer, held back until NATS acknowledges the grant. Not reflected (it carries
/// the ConnectToken).
#[derive(Component, Debug, Clone)]
pub struct PendingReady(pub ReadyPayload);

/// A placed join of a match whose record the game server cannot read yet: its token waits,
/// so the game knows the teams before the first player arrives.
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct AwaitingMatchRecord;

/// Request id → join entity, for idempotent retries, streams and cancel.
#[derive(Resource, Debug, Default)]
pub struct RequestIndex(pub HashMap<String, Entity>);

/// Ask to end a join with an error (cancel, an operator, a deadline).
#[derive(Message, Debug, Clone)]
pub struct FailJoin {
    pub join: Entity,
    pub error: JoinError,
}

/// The join systems. Declares the token (and so server and session) plugins it builds on; the
/// app adds a provider and a NATS bridge.
pub struct JoinsPlugin;

impl Plugin for JoinsPlugin {
    fn build(&self, app: &mut App) {
        require(app, || TokensPlugin);
        app.init_resource::<RequestIndex>()
            .init_resource::<JoinSettings>()
            .init_resource::<crate::game::GameCatalog>()
            .init_resource::<crate::matching::ProfileSet>()
            .init_resource::<UnclaimedSeats>()
            .init_resource::<settled::AnsweredOrder>()
            .add_message::<FailJoin>()
            .add_message::<JoinAnswered>()
            .add_message::<NatsCommand>()
            .register_type::<Join>()
            .register_type::<Requester>()
            .add_systems(
                Update,
                (
                    pending::restore_pending_joins,
                    pending::record_new_joins,
                    systems::replace_lost_servers,
                    seat_sync::fail_refused_seats,
                    systems::fail_overdue_joins,
                    systems::place_queued_joins,
                    systems::call_for_capacity,
                    issuance::issue_tokens,
                    issuance::complete_grants,
                )
                    .chain()
                    .in_set(MatchmakerSystems::Joins),
            )
            .add_systems(
                Update,
                (
                    systems::apply_failures,
                    settled::settle_joins,
                    settled::release_claimed_seats,
                    settled::recount_unclaimed_seats,
                    pending::remove_answered_joins,
                    systems::forget_finished_joins,
                )
                    .chain()
                    .in_set(MatchmakerSystems::Finish),
            )
            // After `Finish`: seats freed this tick are given back this tick.
            .add_systems(Update, seat_sync::sync_provider_seats.in_set(MatchmakerSystems::Cleanup));
    }
}
