//! Joins in flight survive their matchmaker: each admitted join is written to the `requests`
//! bucket and removed once it has its answer. A new owner (after a SIGKILL, a restart, a lease
//! lapsing) reads the bucket when it takes over and queues every join still within its
//! deadline again, under its request id: it is placed at once, and the player's retry (to any
//! replica) resumes it instead of starting another.

use std::collections::HashSet;

use bevy::prelude::*;
use bevygap_shared::protocol::{JoinProgress, JoinRequest, RequestId};
use bevygap_shared::records::{RequestRecord, now_ms};

use super::admission::resolve_mode;
use super::{Join, JoinAnswered, JoinUpdates, RequestIndex, Requester, Settled};
use crate::clock::now;
use crate::game::GameCatalog;
use crate::matching::ProfileSet;
use crate::nats_bridge::{NatsCommand, RequestStored, TakenOver};

/// The `requests` record of a join and the join again: the record lives in `shared` (it is
/// part of the KV layout), the conversions here (they need the join's types).
pub trait PendingJoin: Sized {
    /// The record of `join`, read at `now` (matchmaker clock) = `wall_ms` (Unix ms).
    fn of(join: &Join, now: f64, wall_ms: u64) -> Self;
    /// The join again, queued at `now` with what is left of its deadline; `None` when its
    /// deadline passed or the record does not hold a valid request (written by another
    /// version, or damaged, or naming a mode `profiles` no longer has).
    fn restore(&self, profiles: &ProfileSet, now: f64, wall_ms: u64) -> Option<(Join, JoinProgress)>;
}

impl PendingJoin for RequestRecord {
    fn of(join: &Join, now: f64, wall_ms: u64) -> Self {
        let left_ms = ((join.deadline - now).max(0.0) * 1000.0) as u64;
        Self {
            request_id: join.request_id.to_string(),
            game: join.game.game.to_string(),
            version: join.game.version.to_string(),
            transport: join.transport,
            region: join.region.as_ref().map(ToString::to_string),
            party: join.party.as_ref().map(ToString::to_string),
            requester_ip: join.requester.ip.clone(),
            requester_key: join.requester.key.clone(),
            client_ip: join.client_ip.clone(),
            deadline_ms: wall_ms.saturating_add(left_ms),
            mode: join.claims.as_ref().map(|c| c.mode.clone()),
            party_size: join.claims.as_ref().filter(|_| join.party.is_some()).map(|c| c.party_size),
            attributes: join.claims.as_ref().map(|c| c.attributes.clone()).unwrap_or_default(),
            latencies: join.claims.as_ref().map(|c| c.latencies.clone()).unwrap_or_default(),
        }
    }

    fn restore(&self, profiles: &ProfileSet, now: f64, wall_ms: u64) -> Option<(Join, JoinProgress)> {
        let left = self.deadline_ms.checked_sub(wall_ms).filter(|ms| *ms > 0)? as f64 / 1000.0;
        let request = JoinRequest {
            region: self.region.clone(),
            party: self.party.clone(),
            party_size: self.party_size,
            transport: Some(self.transport),
            mode: self.mode.clone(),
            attributes: self.attributes.clone(),
            latencies: self.latencies.clone(),
            ..JoinRequest::new(self.game.clone(), self.version.clone())
        };
        let valid = request.validate().ok()?;
        let claims = resolve_mode(profiles, &valid).ok()?;
        let request_id = RequestId::new(self.request_id.clone()).ok()?;
        let requester = Requester { ip: self.requester_ip.clone(), key: self.requester_key.clone() };
        let (join, first) = Join::new(&valid, request_id, requester, self.client_ip.clone(), now, now + left);
        Some((join.with_claims(claims), first))
    }
}

/// Writes each newly admitted join to the `requests` bucket.
pub fn record_new_joins(
    joins: Query<&Join, (Added<Join>, Without<Settled>)>,
    mut nats: MessageWriter<NatsCommand>,
    time: Res<Time<Real>>,
) {
    let (now, wall_ms) = (now(&time), now_ms());
    for join in joins.iter().filter(|join| !join.phase().is_terminal()) {
        nats.write(NatsCommand::PutRequest(Box::new(RequestRecord::of(join, now, wall_ms))));
    }
}

/// Removes the record of each join that got its answer (ready or failed), and again when a
/// record is reported written after its join was answered or forgotten (the put and the delete
/// run concurrently, so the delete may land first and leave a record the next owner would
/// queue again).
pub fn remove_answered_joins(
    mut answered: MessageReader<JoinAnswered>,
    mut stored: MessageReader<RequestStored>,
    joins: Query<&Join>,
    waiting: Query<(), (With<Join>, Without<Settled>)>,
    index: Res<RequestIndex>,
    mut nats: MessageWriter<NatsCommand>,
) {
    for join in answered.read().filter_map(|JoinAnswered(entity)| joins.get(*entity).ok()) {
        nats.write(NatsCommand::DeleteRequest { request_id: join.request_id.to_string() });
    }
    for RequestStored { request_id } in stored.read() {
        let still_waiting = index.0.get(request_id).is_some_and(|join| waiting.contains(*join));
        if !still_waiting {
            nats.write(NatsCommand::DeleteRequest { request_id: request_id.clone() });
        }
    }
}

/// Queues again the joins an earlier owner left waiting (read when this replica took over),
/// unless the request id is already taken here; records past their deadline or unusable are
/// removed.
pub fn restore_pending_joins(
    mut taken_over: MessageReader<TakenOver>,
    mut commands: Commands,
    mut index: ResMut<RequestIndex>,
    mut nats: MessageWriter<NatsCommand>,
    (games, profiles): (Res<GameCatalog>, Res<ProfileSet>),
    time: Res<Time<Real>>,
) {
    let (now, wall_ms) = (now(&time), now_ms());
    for TakenOver(state) in taken_over.read() {
        // Joins already answered: the earlier owner may have died between the answer and the
        // removal of their record.
        let answered: HashSet<&str> = state.sessions.iter().filter_map(|s| s.request_id.as_deref()).collect();
        for pending in &state.requests {
            if index.0.contains_key(&pending.request_id) {
                continue;
            }
            if answered.contains(pending.request_id.as_str()) {
                nats.write(NatsCommand::DeleteRequest { request_id: pending.request_id.clone() });
                continue;
            }
            let restored = pending
                .restore(&profiles, now, wall_ms)
                .filter(|(join, _)| games.serves(&join.game.game, &join.game.version));
            let Some((join, first)) = restored else {
                nats.write(NatsCommand::DeleteRequest { request_id: pending.request_id.clone() });
                continue;
            };
            tracing::info!(request_id = pending.request_id, "resuming a join an earlier owner left waiting");
            let name = Name::new(format!("join {}", pending.request_id));
            let entity = commands.spawn((name, join, JoinUpdates::new(first))).id();
            index.0.insert(pending.request_id.clone(), entity);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(deadline: f64) -> Join {
        let request =
            JoinRequest { region: Some("eu".into()), party: Some("friends".into()), ..JoinRequest::new("demo", "1.0") };
        let requester = Requester { ip: "203.0.113.9".into(), key: "203.0.113.9".into() };
        let id = RequestId::new("request-0001").expect("valid");
        Join::new(&request.validate().expect("valid"), id, requester, "203.0.113.9".into(), 10.0, deadline).0
    }

    #[test]
    fn a_record_restores_the_same_join_with_what_is_left_of_its_deadline() {
        let record = RequestRecord::of(&join(40.0), 10.0, 1_000_000);
        assert_eq!(record.deadline_ms, 1_030_000);
        let text = serde_json::to_vec(&record).expect("encodes");
        let read: RequestRecord = serde_json::from_slice(&text).expect("decodes");
        // Read by another process 5 s later, whose clock started elsewhere.
        let none = ProfileSet::default();
        let (restored, first) = read.restore(&none, 500.0, 1_005_000).expect("still within its deadline");
        assert_eq!(restored.request_id.as_str(), "request-0001");
        assert_eq!((restored.requester.ip.as_str(), restored.client_ip.as_str()), ("203.0.113.9", "203.0.113.9"));
        assert_eq!(restored.region.as_ref().map(ToString::to_string).as_deref(), Some("eu"));
        assert_eq!(restored.party.as_ref().map(ToString::to_string).as_deref(), Some("friends"));
        assert!((restored.deadline - 525.0).abs() < 1e-6, "{}", restored.deadline);
        assert!(matches!(first, JoinProgress::Queued { .. }));
        assert!(!restored.seeks_match());
    }

    #[test]
    fn a_match_ticket_is_restored_with_its_claims_while_its_mode_exists() {
        let profiles = ProfileSet::from_json(include_str!("../../../assets/profiles.example.json")).expect("valid");
        let mut request = JoinRequest {
            party: Some("friends".into()),
            party_size: Some(2),
            mode: Some("ranked_2v2".into()),
            ..JoinRequest::new("demo", "1.0")
        };
        request.attributes.numbers.insert("elo".into(), 1500.0);
        request.latencies.insert("eu".into(), 20.0);
        let valid = request.validate().expect("valid");
        let claims = resolve_mode(&profiles, &valid).expect("a ranked ticket");
        let requester = Requester { ip: "203.0.113.9".into(), key: "203.0.113.9".into() };
        let id = RequestId::new("request-0002").expect("valid");
        let (join, _) = Join::new(&valid, id, requester, "203.0.113.9".into(), 10.0, 40.0);
        let record = RequestRecord::of(&join.with_claims(claims), 10.0, 1_000_000);
        let (restored, _) = record.restore(&profiles, 0.0, 1_000_000).expect("restored");
        let claims = restored.claims.expect("still a ticket");
        assert_eq!((claims.mode.as_str(), claims.party_size), ("ranked_2v2", 2));
        assert_eq!((claims.attributes.numbers["elo"], claims.latencies["eu"]), (1500.0, 20.0));
        assert!(record.restore(&ProfileSet::default(), 0.0, 1_000_000).is_none(), "its mode is gone");
    }

    #[test]
    fn expired_or_damaged_records_are_not_restored() {
        let record = RequestRecord::of(&join(40.0), 10.0, 1_000_000);
        let none = ProfileSet::default();
        assert!(record.restore(&none, 0.0, 1_030_000).is_none(), "past its deadline");
        let damaged = RequestRecord { game: "not a game!".into(), ..record.clone() };
        assert!(damaged.restore(&none, 0.0, 1_000_000).is_none());
        let bad_id = RequestRecord { request_id: String::new(), ..record };
        assert!(bad_id.restore(&none, 0.0, 1_000_000).is_none());
    }
}
