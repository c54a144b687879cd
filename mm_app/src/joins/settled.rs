//! Answered joins, kept aside. A join stays an entity for its resume window after its answer
//! (a retry with its request id gets the answer again), so at a steady load most join entities
//! are answered ones: 120 s of them. [`Settled`] marks them, and every system that works on
//! waiting joins skips them by archetype instead of looking at each one on every tick.
//!
//! Admission still counts one thing about answered joins: the seats of ready joins whose
//! player has not connected yet ([`UnclaimedSeats`]). That count grows when a join turns ready
//! and shrinks when its player connects, both at once, and is recounted from the tokens (at
//! most a few times a second) after tokens ended, so a token that expired unclaimed drops out a
//! moment late: admission is then stricter for that moment, never looser.

use std::collections::HashMap;

use bevy::prelude::*;

use super::RequestIndex;
use super::machine::{Join, JoinPhase};
use crate::clock::now;
use crate::tokens::{IssuedToken, TokenClaimed, TokenIndex, TokenState};

/// A join that has its answer (ready or failed); it never waits again.
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct Settled;

/// A join got its answer this tick (written once per join, when it is settled): what the
/// pending-join records and the metrics react to, without looking at every join for changes.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinAnswered(pub Entity);

/// Seats held by ready joins whose token is still unclaimed, per requester address key.
#[derive(Resource, Debug, Default)]
pub struct UnclaimedSeats {
    by_key: HashMap<String, usize>,
    counted_at: f64,
    /// Tokens ended since the last recount (an expired one may have held a counted seat).
    stale: bool,
}

/// Answered joins in the order they were answered, so the ones whose resume window has passed
/// are found at the front without looking at the others.
#[derive(Resource, Debug, Default)]
pub struct AnsweredOrder(pub std::collections::VecDeque<Entity>);

/// How often [`UnclaimedSeats`] may be recounted from the tokens.
const RECOUNT_SECS: f64 = 0.25;

impl UnclaimedSeats {
    /// Unclaimed seats per address key.
    pub fn by_key(&self) -> &HashMap<String, usize> {
        &self.by_key
    }

    fn add(&mut self, key: &str) {
        match self.by_key.get_mut(key) {
            Some(held) => *held += 1,
            None => {
                self.by_key.insert(key.to_owned(), 1);
            }
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(held) = self.by_key.get_mut(key) {
            *held = held.saturating_sub(1);
        }
    }
}

/// Joins not yet settled whose phase may have changed this tick.
type Unsettled = (Changed<Join>, Without<Settled>);

/// Marks joins answered this tick, and counts the seats of those that turned ready.
pub fn settle_joins(
    mut commands: Commands,
    joins: Query<(Entity, &Join), Unsettled>,
    mut unclaimed: ResMut<UnclaimedSeats>,
    mut answered: MessageWriter<JoinAnswered>,
    mut order: ResMut<AnsweredOrder>,
) {
    for (entity, join) in &joins {
        if join.phase().is_terminal() {
            commands.entity(entity).insert(Settled);
            answered.write(JoinAnswered(entity));
            order.0.push_back(entity);
            if matches!(join.phase(), JoinPhase::Ready { .. }) {
                unclaimed.add(&join.requester.key);
            }
        }
    }
}

/// Drops the seats of tokens claimed this tick from the count (their player connected).
pub fn release_claimed_seats(
    mut claimed: MessageReader<TokenClaimed>,
    tokens: Query<&IssuedToken>,
    index: Res<RequestIndex>,
    joins: Query<&Join, With<Settled>>,
    mut unclaimed: ResMut<UnclaimedSeats>,
) {
    for token in claimed.read().filter_map(|claimed| tokens.get(claimed.token).ok()) {
        let join = token.request_id.as_ref().and_then(|id| index.0.get(id)).and_then(|e| joins.get(*e).ok());
        if let Some(join) = join {
            unclaimed.remove(&join.requester.key);
        }
    }
}

/// Recounts the unclaimed seats from the tokens of ready joins after tokens ended, at most a
/// few times a second (idle, with thousands of live tokens, it does nothing).
pub fn recount_unclaimed_seats(
    joins: Query<&Join, With<Settled>>,
    tokens: Res<TokenIndex>,
    states: Query<&TokenState>,
    mut ended: RemovedComponents<TokenState>,
    mut unclaimed: ResMut<UnclaimedSeats>,
    time: Res<Time<Real>>,
) {
    if ended.read().count() > 0 {
        unclaimed.stale = true;
    }
    let now = now(&time);
    if !unclaimed.stale || now - unclaimed.counted_at < RECOUNT_SECS {
        return;
    }
    unclaimed.counted_at = now;
    unclaimed.stale = false;
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for join in &joins {
        let JoinPhase::Ready { seat, .. } = join.phase() else { continue };
        let waiting_for_player = tokens
            .0
            .get(&seat.client_id)
            .and_then(|token| states.get(*token).ok())
            .is_some_and(|state| *state == TokenState::Unclaimed);
        if waiting_for_player {
            *by_key.entry(join.requester.key.clone()).or_default() += 1;
        }
    }
    unclaimed.by_key = by_key;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::SteppedMatchmaker;

    fn unclaimed(mm: &SteppedMatchmaker) -> usize {
        mm.app.world().resource::<UnclaimedSeats>().by_key().get("127.0.0.1").copied().unwrap_or(0)
    }

    #[test]
    fn an_answered_join_is_settled_and_its_seat_counts_until_its_player_connects() {
        let mut mm = SteppedMatchmaker::fleet(|_| {});
        let server = mm.register_server("fleet-1", 4);
        let join = mm.join("demo", "1.0");
        assert!(mm.app.world().get::<Settled>(join).is_none(), "a waiting join is not settled");
        mm.step_n(4);
        assert!(matches!(mm.phase(join), Some(JoinPhase::Ready { .. })));
        assert!(mm.app.world().get::<Settled>(join).is_some(), "a ready join is settled");
        assert_eq!(unclaimed(&mm), 1, "its unused token holds a seat");
        let (_, client_id) = mm.seat_of(join).expect("a seat");
        mm.player_connects(&server, client_id);
        mm.step();
        assert_eq!(unclaimed(&mm), 0, "a used token no longer counts, at once");
    }

    #[test]
    fn a_token_that_expires_unclaimed_leaves_the_count_at_the_next_recount() {
        let mut mm = SteppedMatchmaker::fleet(|c| c.tokens.ttl_secs = 5);
        mm.register_server("fleet-1", 4);
        let join = mm.join("demo", "1.0");
        mm.step_n(4);
        assert!(matches!(mm.phase(join), Some(JoinPhase::Ready { .. })));
        assert_eq!(unclaimed(&mm), 1);
        mm.advance(4.0);
        assert_eq!(unclaimed(&mm), 1, "still held before it expires");
        mm.advance(5.0 + crate::tokens::CLAIM_GRACE_SECS);
        assert_eq!(mm.app.world_mut().query::<&TokenState>().iter(mm.app.world()).count(), 0, "the token expired");
        assert_eq!(unclaimed(&mm), 0, "recounted once the token ended");
    }
}
