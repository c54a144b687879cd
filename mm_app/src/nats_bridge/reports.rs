//! What NATS reported, one Message per fact, and the order they reach the systems in.
//!
//! The watches, the link follower and the writes all report through one inbox, in the order
//! things happened. Each fact then becomes its own Message, read only by the systems that
//! care about it, so the order between two kinds of Message within a tick is lost. It is
//! kept where it matters by [`deliverable`]: within one tick no record key is reported twice
//! (a server's `put, gone, put` spans three ticks), and a link change, a snapshot or a
//! take-over is delivered in a tick of its own.

use std::collections::{HashSet, VecDeque};

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevygap_shared::inbox::{AppWaker, Inbox};
use bevygap_shared::naming::ServerId;
use bevygap_shared::nats::LinkStatus;
use bevygap_shared::records::{ClientGrant, MatchRecord, PlayerRecord, RequestRecord, ServerRecord, SessionRecord};

use super::{BridgeError, KvSnapshot};

/// A game server registered or heartbeated: its record was written.
#[derive(Message, Debug, Clone)]
pub struct ServerReported(pub Box<ServerRecord>);

/// A server record was deleted or expired (its heartbeats stopped).
#[derive(Message, Debug, Clone)]
pub struct ServerRecordGone(pub ServerId);

/// A game server reports a player connected.
#[derive(Message, Debug, Clone)]
pub struct PlayerReported(pub PlayerRecord);

/// A player record was deleted or expired.
#[derive(Message, Debug, Clone)]
pub struct PlayerGone {
    pub server_id: ServerId,
    pub client_id: u64,
}

/// The link to NATS changed.
#[derive(Message, Debug, Clone, Copy)]
pub struct LinkChanged(pub LinkStatus);

/// Every key of the `servers` and `players` buckets, read after a reconnect: removals made
/// while the link was down (expiry and delete markers) are gone by the time a watch resumes,
/// so whatever the matchmaker knows that is not here was removed.
#[derive(Message, Debug, Clone)]
pub struct SnapshotRead(pub Box<KvSnapshot>);

/// What the `clients`, `sessions` and `requests` buckets held when this replica took over
/// (at its start, after a SIGKILL of the earlier owner, a lease lapsing…): tokens an earlier
/// owner issued, whose seats must be held again and whose grants must still expire, and the
/// joins it left waiting.
#[derive(Message, Debug, Clone)]
pub struct TakenOver(pub Box<InheritedState>);

/// The answer to [`NatsCommand::StoreGrant`](super::NatsCommand::StoreGrant).
#[derive(Message, Debug, Clone)]
pub struct GrantStored {
    pub join: Entity,
    pub server_id: ServerId,
    pub client_id: u64,
    pub result: Result<(), BridgeError>,
}

/// The answer to [`NatsCommand::StoreMatch`](super::NatsCommand::StoreMatch): the game
/// server can read its match, so its players may get their tokens.
#[derive(Message, Debug, Clone)]
pub struct MatchStored {
    pub game_match: Entity,
    pub server_id: ServerId,
    pub result: Result<(), BridgeError>,
}

/// A [`NatsCommand::PutRequest`](super::NatsCommand::PutRequest) was written. Writes run
/// concurrently, so the delete of a join answered at once may have landed before it: the
/// join plugin deletes again.
#[derive(Message, Debug, Clone)]
pub struct RequestStored {
    pub request_id: String,
}

/// Grants, matches, sessions and joins still waiting, found in NATS when this replica took
/// over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InheritedState {
    pub grants: Vec<ClientGrant>,
    /// The matches servers run (their players may still be arriving).
    pub matches: Vec<MatchRecord>,
    pub sessions: Vec<SessionRecord>,
    pub requests: Vec<RequestRecord>,
}

/// One report as the bridge's async tasks send it, before it becomes its Message.
#[derive(Debug, Clone)]
pub(super) enum Report {
    Server(Box<ServerRecord>),
    ServerGone(ServerId),
    Player(PlayerRecord),
    PlayerGone { server_id: ServerId, client_id: u64 },
    Link(LinkStatus),
    Snapshot(Box<KvSnapshot>),
    TakenOver(Box<InheritedState>),
    GrantStored(GrantStored),
    MatchStored(MatchStored),
    RequestStored(String),
}

/// What a report must not be reordered against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum OrderKey<'a> {
    /// Reports about one server record.
    Server(&'a ServerId),
    /// Reports about one player record.
    Player(&'a ServerId, u64),
    /// A report that every other report is ordered against.
    Barrier,
    /// A report no other one depends on (an answer to this replica's own write).
    Free,
}

impl Report {
    /// What this report is ordered against.
    pub(super) fn order_key(&self) -> OrderKey<'_> {
        match self {
            Report::Server(record) => OrderKey::Server(&record.server_id),
            Report::ServerGone(server_id) => OrderKey::Server(server_id),
            Report::Player(record) => OrderKey::Player(&record.server_id, record.client_id),
            Report::PlayerGone { server_id, client_id } => OrderKey::Player(server_id, *client_id),
            Report::Link(_) | Report::Snapshot(_) | Report::TakenOver(_) => OrderKey::Barrier,
            Report::GrantStored(_) | Report::MatchStored(_) | Report::RequestStored(_) => OrderKey::Free,
        }
    }
}

/// How many of `keys` (the order keys of the waiting reports, oldest first) may be delivered
/// in one tick: up to, not including, the first that repeats a record key delivered before it
/// in the tick, and a barrier only first and alone.
pub(super) fn deliverable<'a>(keys: impl IntoIterator<Item = OrderKey<'a>>) -> usize {
    let mut seen: HashSet<OrderKey<'a>> = HashSet::new();
    let mut count = 0;
    for key in keys {
        match key {
            OrderKey::Barrier if count == 0 => return 1,
            OrderKey::Barrier => return count,
            OrderKey::Free => {}
            record => {
                if !seen.insert(record) {
                    return count;
                }
            }
        }
        count += 1;
    }
    count
}

/// Reports taken from the inbox and not delivered yet, oldest first.
#[derive(Resource, Debug, Default)]
pub(super) struct Undelivered(pub VecDeque<Report>);

/// A writer for every kind of report.
#[derive(SystemParam)]
pub(super) struct ReportWriters<'w> {
    servers: MessageWriter<'w, ServerReported>,
    servers_gone: MessageWriter<'w, ServerRecordGone>,
    players: MessageWriter<'w, PlayerReported>,
    players_gone: MessageWriter<'w, PlayerGone>,
    links: MessageWriter<'w, LinkChanged>,
    snapshots: MessageWriter<'w, SnapshotRead>,
    take_overs: MessageWriter<'w, TakenOver>,
    grants: MessageWriter<'w, GrantStored>,
    matches: MessageWriter<'w, MatchStored>,
    requests: MessageWriter<'w, RequestStored>,
}

impl ReportWriters<'_> {
    /// Writes `report` as its Message.
    pub(super) fn write(&mut self, report: Report) {
        match report {
            Report::Server(record) => {
                self.servers.write(ServerReported(record));
            }
            Report::ServerGone(server_id) => {
                self.servers_gone.write(ServerRecordGone(server_id));
            }
            Report::Player(record) => {
                self.players.write(PlayerReported(record));
            }
            Report::PlayerGone { server_id, client_id } => {
                self.players_gone.write(PlayerGone { server_id, client_id });
            }
            Report::Link(status) => {
                self.links.write(LinkChanged(status));
            }
            Report::Snapshot(snapshot) => {
                self.snapshots.write(SnapshotRead(snapshot));
            }
            Report::TakenOver(state) => {
                self.take_overs.write(TakenOver(state));
            }
            Report::GrantStored(stored) => {
                self.grants.write(stored);
            }
            Report::MatchStored(stored) => {
                self.matches.write(stored);
            }
            Report::RequestStored(request_id) => {
                self.requests.write(RequestStored { request_id });
            }
        }
    }
}

/// Writes what NATS reported as this tick's Messages, as many as keep their order (see
/// [`deliverable`]); the rest wait for the next tick, which is asked for at once.
pub(super) fn deliver_reports(
    mut inbox: ResMut<Inbox<Report>>,
    mut undelivered: ResMut<Undelivered>,
    mut writers: ReportWriters,
    waker: Res<AppWaker>,
) {
    undelivered.0.extend(inbox.drain());
    // One report (most ticks) is always deliverable; only a batch needs its keys compared.
    let count = match undelivered.0.len() {
        0 | 1 => undelivered.0.len(),
        _ => deliverable(undelivered.0.iter().map(Report::order_key)),
    };
    for report in undelivered.0.drain(..count) {
        writers.write(report);
    }
    if !undelivered.0.is_empty() {
        waker.wake();
    }
}

/// Adds every Message of the seam (idempotent).
pub(super) fn add_report_messages(app: &mut App) {
    app.add_message::<ServerReported>()
        .add_message::<ServerRecordGone>()
        .add_message::<PlayerReported>()
        .add_message::<PlayerGone>()
        .add_message::<LinkChanged>()
        .add_message::<SnapshotRead>()
        .add_message::<TakenOver>()
        .add_message::<GrantStored>()
        .add_message::<MatchStored>()
        .add_message::<RequestStored>();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(id: &str) -> ServerId {
        ServerId::new(id).expect("id")
    }

    #[test]
    fn distinct_records_go_together_and_a_repeated_one_waits() {
        let (a, b, c) = (id("a"), id("b"), id("c"));
        let keys =
            [OrderKey::Server(&a), OrderKey::Server(&b), OrderKey::Free, OrderKey::Server(&a), OrderKey::Server(&c)];
        assert_eq!(deliverable(keys), 3, "the second report about a waits for the next tick");
        assert_eq!(deliverable(keys[3..].iter().copied()), 2);
        let player = |client| OrderKey::Player(&a, client);
        assert_eq!(deliverable([player(1), player(2), OrderKey::Server(&a), player(1)]), 3);
    }

    /// What the systems saw, tick by tick.
    #[derive(Resource, Default)]
    struct Seen(Vec<Vec<String>>);

    fn record_what_is_seen(
        (mut gone, mut players, mut links): (
            MessageReader<ServerRecordGone>,
            MessageReader<PlayerGone>,
            MessageReader<LinkChanged>,
        ),
        mut seen: ResMut<Seen>,
    ) {
        let mut tick: Vec<String> = gone.read().map(|ServerRecordGone(id)| format!("gone {id}")).collect();
        tick.extend(players.read().map(|p| format!("left {}/{}", p.server_id, p.client_id)));
        tick.extend(links.read().map(|LinkChanged(status)| format!("link {status:?}")));
        seen.0.push(tick);
    }

    #[test]
    fn the_bridge_delivers_one_report_per_record_per_tick_and_wakes_for_the_rest() {
        let mut app = App::new();
        bevygap_shared::inbox::add_inbox::<Report>(&mut app);
        add_report_messages(&mut app);
        app.init_resource::<Undelivered>()
            .init_resource::<Seen>()
            .add_systems(Update, (deliver_reports, record_what_is_seen).chain());
        let sender = app.world().resource::<Inbox<Report>>().sender();
        let a = id("a");
        for _ in 0..2 {
            sender.send(Report::ServerGone(a.clone()));
            sender.send(Report::PlayerGone { server_id: a.clone(), client_id: 1 });
        }
        sender.send(Report::Link(LinkStatus::Disconnected));
        let waker = app.world().resource::<AppWaker>().clone();
        assert!(waker.wait(std::time::Duration::ZERO), "sending woke the app");
        app.update();
        assert!(waker.wait(std::time::Duration::ZERO), "reports left over ask for another tick");
        app.update();
        assert!(waker.wait(std::time::Duration::ZERO), "the link change is left over");
        app.update();
        assert!(!waker.wait(std::time::Duration::ZERO), "nothing left, no wake");
        app.update();
        let seen = &app.world().resource::<Seen>().0;
        assert_eq!(seen[0], ["gone a", "left a/1"]);
        assert_eq!(seen[1], ["gone a", "left a/1"], "the repeats came a tick later, in their order");
        assert_eq!(seen[2], ["link Disconnected"], "the link change alone");
        assert!(seen[3].is_empty());
    }

    #[test]
    fn a_barrier_goes_alone() {
        let (a, b) = (id("a"), id("b"));
        let keys = [OrderKey::Server(&a), OrderKey::Barrier, OrderKey::Server(&b)];
        assert_eq!(deliverable(keys), 1, "what came before the barrier goes first");
        assert_eq!(deliverable(keys[1..].iter().copied()), 1, "the barrier alone");
        assert_eq!(deliverable(keys[2..].iter().copied()), 1);
        assert_eq!(deliverable([]), 0);
        assert_eq!(deliverable([OrderKey::Free, OrderKey::Free]), 2, "answers never wait");
    }
}
