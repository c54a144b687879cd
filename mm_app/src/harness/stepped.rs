//! A matchmaker App stepped by hand, for lifecycle tests that cross long timers in
//! milliseconds.

use std::sync::Arc;
use std::time::Duration;

use bevy::app::App;
use bevygap_shared::LightyearKeys;

use crate::config::MatchmakerConfig;
use crate::providers::ServerProvider;

/// A matchmaker App stepped by hand with manual time, no nats-server and no processes: the
/// [`FakeProvider`](crate::providers::FakeProvider) starts nothing and the in-memory NATS
/// stand-in records writes. The test plays the game servers' part with
/// [`report_server`](Self::report_server) and friends, and moves the clock with
/// [`advance`](Self::advance), so lifecycle cases (token expiry, empty-server grace, start
/// timeout, crash → re-place) run in milliseconds.
///
/// ```
/// use bevygap_matchmaker::harness::SteppedMatchmaker;
/// use bevygap_shared::records::ServerStatus;
///
/// let mut mm = SteppedMatchmaker::new(|_| {});
/// let join = mm.join("demo", "1.0");
/// mm.step();
/// let server = mm.server_ids()[0].clone();
/// mm.report_server(&server, ServerStatus::Ready);
/// mm.step_n(2);
/// assert!(mm.ready_payload(join).is_some(), "the player got a token");
/// ```
pub struct SteppedMatchmaker {
    pub app: App,
    pub provider: crate::providers::FakeProvider,
    /// The game servers the test plays as alive, with the status they heartbeat.
    alive: std::collections::BTreeMap<bevygap_shared::ServerId, (bevygap_shared::records::ServerStatus, u32)>,
}

/// Seconds between the heartbeats the harness writes for live servers (as the server plugin
/// does by default).
const HEARTBEAT_SECS: f64 = 5.0;

impl SteppedMatchmaker {
    /// A matchmaker serving `demo:1.0` with test settings, changed by `configure`, whose
    /// provider starts servers on demand.
    pub fn new(configure: impl FnOnce(&mut MatchmakerConfig)) -> Self {
        Self::with_provider(crate::providers::FakeProvider::new(), configure)
    }

    /// The same with a provider that holds each seat itself (Edgegap's sessions mode): tokens
    /// wait for `provider.confirm_seat`.
    pub fn confirming_seats(configure: impl FnOnce(&mut MatchmakerConfig)) -> Self {
        Self::with_provider(crate::providers::FakeProvider::confirming_seats(), configure)
    }

    /// The same with a fleet: the provider starts nothing, servers register themselves
    /// ([`register_server`](Self::register_server)).
    pub fn fleet(configure: impl FnOnce(&mut MatchmakerConfig)) -> Self {
        Self::with_provider(crate::providers::FakeProvider::fleet(), configure)
    }

    fn with_provider(provider: crate::providers::FakeProvider, configure: impl FnOnce(&mut MatchmakerConfig)) -> Self {
        use bevy::prelude::*;
        let mut config = MatchmakerConfig::for_tests("stepped", Vec::new());
        configure(&mut config);
        let mut app = App::new();
        config.insert_into(&mut app);
        app.add_plugins(MinimalPlugins)
            .insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(Duration::ZERO))
            .insert_resource(crate::tokens::MatchmakerKeys(LightyearKeys::development()))
            .add_plugins((
                crate::nats_bridge::MemoryNatsPlugin,
                crate::providers::ProviderPlugin::new(Arc::new(provider.clone())),
                // Everything but a transport: the calls layer, and through it the domain.
                crate::calls::CallsPlugin,
            ));
        app.finish();
        app.cleanup();
        app.update();
        Self { app, provider, alive: Default::default() }
    }

    /// One tick with the clock standing still.
    pub fn step(&mut self) {
        self.app.update();
    }

    /// `n` ticks with the clock standing still.
    pub fn step_n(&mut self, n: usize) {
        (0..n).for_each(|_| self.app.update());
    }

    /// Moves the clock `secs` forward, in ticks of at most the heartbeat interval with every
    /// live server heartbeating before each, then ticks once more with the clock still so what
    /// the last tick decided is applied.
    pub fn advance(&mut self, secs: f64) {
        use bevy::time::TimeUpdateStrategy;
        let mut left = secs;
        while left > 0.0 {
            let step = left.min(HEARTBEAT_SECS);
            self.heartbeat();
            self.app.insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_secs_f64(step)));
            self.app.update();
            left -= step;
        }
        self.app.insert_resource(TimeUpdateStrategy::ManualDuration(Duration::ZERO));
        self.app.update();
    }

    /// Every live server rewrites its record; servers the provider stopped are no longer live.
    fn heartbeat(&mut self) {
        let log = self.provider.log();
        let launched_and_gone = |id: &bevygap_shared::ServerId| {
            log.launched.iter().any(|s| &s.server_id == id) && !log.running.contains(id)
        };
        self.alive.retain(|id, _| !launched_and_gone(id));
        let records: Vec<_> =
            self.alive.iter().map(|(id, (status, capacity))| self.record(id, *status, *capacity)).collect();
        for record in records {
            self.app.world_mut().write_message(crate::nats_bridge::ServerReported(Box::new(record)));
        }
    }

    /// Queues a join for `game` at `version` from `127.0.0.1` (admission is unit-tested on
    /// its own; this enters the flow right after it).
    pub fn join(&mut self, game: &str, version: &str) -> bevy::prelude::Entity {
        self.join_with(bevygap_shared::protocol::JoinRequest::new(game, version))
    }

    /// Queues `request` from `127.0.0.1`, in its mode's pool when the mode forms matches.
    /// Panics on a request admission would refuse: a test writes valid ones.
    pub fn join_with(&mut self, request: bevygap_shared::protocol::JoinRequest) -> bevy::prelude::Entity {
        use bevygap_shared::protocol::RequestId;
        let world = self.app.world_mut();
        let now = world.resource::<bevy::time::Time<bevy::time::Real>>().elapsed_secs_f64();
        let deadline = now + world.resource::<crate::joins::JoinSettings>().deadline.as_secs_f64();
        let request = request.validate().expect("a valid test request");
        let claims = crate::joins::admission::resolve_mode(world.resource::<crate::matching::ProfileSet>(), &request)
            .expect("a mode of the game");
        let request_id = RequestId::new(format!("r{:016x}", rand::random::<u64>())).expect("a valid request id");
        let requester = crate::joins::Requester { ip: "127.0.0.1".into(), key: "127.0.0.1".into() };
        let (join, first) =
            crate::joins::Join::new(&request, request_id.clone(), requester, "127.0.0.1".into(), now, deadline);
        let entity = world.spawn((join.with_claims(claims), crate::joins::JoinUpdates::new(first))).id();
        world.resource_mut::<crate::joins::RequestIndex>().0.insert(request_id.to_string(), entity);
        entity
    }

    /// The join's phase.
    pub fn phase(&self, join: bevy::prelude::Entity) -> Option<crate::joins::JoinPhase> {
        self.app.world().get::<crate::joins::Join>(join).map(|j| j.phase())
    }

    /// The join's progress messages so far.
    pub fn updates(&self, join: bevy::prelude::Entity) -> Vec<bevygap_shared::protocol::JoinProgress> {
        let Some(updates) = self.app.world().get::<crate::joins::JoinUpdates>(join) else { return Vec::new() };
        (0..updates.len()).filter_map(|i| updates.get(i).cloned()).collect()
    }

    /// The ready answer, once the join has one.
    pub fn ready_payload(&self, join: bevy::prelude::Entity) -> Option<bevygap_shared::protocol::ReadyPayload> {
        self.updates(join).into_iter().find_map(|p| match p {
            bevygap_shared::protocol::JoinProgress::Ready(ready) => Some(ready),
            _ => None,
        })
    }

    /// Ids of the servers the matchmaker knows, oldest launch first.
    pub fn server_ids(&self) -> Vec<bevygap_shared::ServerId> {
        self.provider.log().launched.into_iter().map(|s| s.server_id).filter(|id| self.server(id).is_some()).collect()
    }

    /// A server's entity, if the matchmaker still knows it.
    pub fn server(&self, id: &bevygap_shared::ServerId) -> Option<bevy::prelude::Entity> {
        self.app.world().resource::<crate::servers::ServerIndex>().0.get(id).copied()
    }

    /// A server's phase and seats.
    pub fn server_state(
        &self,
        id: &bevygap_shared::ServerId,
    ) -> Option<(crate::servers::ServerPhase, crate::servers::SeatBook)> {
        let entity = self.server(id)?;
        let world = self.app.world();
        Some((
            *world.get::<crate::servers::ServerPhase>(entity)?,
            world.get::<crate::servers::SeatBook>(entity)?.clone(),
        ))
    }

    /// Plays the game server writing its record with `status` (and heartbeating it from then
    /// on): UDP and WebTransport on loopback, with the capacity it was launched with.
    pub fn report_server(&mut self, id: &bevygap_shared::ServerId, status: bevygap_shared::records::ServerStatus) {
        let spec = self.provider.log().launched.into_iter().find(|s| &s.server_id == id);
        let capacity = spec.map_or(bevygap_shared::server_env::ServerEnv::DEFAULT_CAPACITY, |s| s.capacity);
        self.write_server(id, status, capacity);
    }

    /// Plays a fleet server (started by someone else) registering itself, ready, with
    /// `capacity` seats, and heartbeating from then on.
    pub fn register_server(&mut self, id: &str, capacity: u32) -> bevygap_shared::ServerId {
        let id = bevygap_shared::ServerId::new(id).expect("a valid test server id");
        self.write_server(&id, bevygap_shared::records::ServerStatus::Ready, capacity);
        id
    }

    fn write_server(
        &mut self,
        id: &bevygap_shared::ServerId,
        status: bevygap_shared::records::ServerStatus,
        capacity: u32,
    ) {
        self.alive.insert(id.clone(), (status, capacity));
        let record = self.record(id, status, capacity);
        self.app.world_mut().write_message(crate::nats_bridge::ServerReported(Box::new(record)));
    }

    /// The record a stand-in server with this id writes (its launch's game, this provider).
    pub fn record(
        &self,
        id: &bevygap_shared::ServerId,
        status: bevygap_shared::records::ServerStatus,
        capacity: u32,
    ) -> bevygap_shared::records::ServerRecord {
        use bevygap_shared::protocol::{GameName, GameVersion, ServerAddresses};
        let spec = self.provider.log().launched.into_iter().find(|s| &s.server_id == id);
        let (game, version) = match spec {
            Some(spec) => (spec.game, spec.version),
            None => (GameName::new("demo").expect("name"), GameVersion::new("1.0").expect("version")),
        };
        bevygap_shared::records::ServerRecord {
            server_id: id.clone(),
            game,
            version,
            provider: self.provider.name().into(),
            addresses: ServerAddresses {
                udp: Some(([127, 0, 0, 1], 5000).into()),
                webtransport: Some(([127, 0, 0, 1], 5001).into()),
            },
            cert_digest: None,
            cert_not_after: None,
            capacity,
            status,
            started_at_ms: 0,
            heartbeat_at_ms: 0,
        }
    }

    /// Plays a game server that hangs: it stops heartbeating but its record stays until it
    /// expires.
    pub fn mute(&mut self, id: &bevygap_shared::ServerId) {
        self.alive.remove(id);
    }

    /// Plays a game server's process dying: no more heartbeats, and the provider reports
    /// the exit.
    pub fn crash(&mut self, id: &bevygap_shared::ServerId, detail: &str) {
        self.alive.remove(id);
        self.provider.exit(id, detail);
    }

    /// Plays NATS reporting that a server's record expired or was deleted (the server stays
    /// silent until it reports again).
    pub fn server_record_gone(&mut self, id: &bevygap_shared::ServerId) {
        self.alive.remove(id);
        self.app.world_mut().write_message(crate::nats_bridge::ServerRecordGone(id.clone()));
    }

    /// The server and Lightyear client id of the seat `join` holds.
    pub fn seat_of(&self, join: bevy::prelude::Entity) -> Option<(bevygap_shared::ServerId, u64)> {
        let seat = self.phase(join)?.seat()?;
        let server = self.app.world().get::<crate::servers::GameServer>(seat.server)?;
        Some((server.id.clone(), seat.client_id))
    }

    /// Plays the game server reporting `client_id` connected.
    pub fn player_connects(&mut self, server_id: &bevygap_shared::ServerId, client_id: u64) {
        let record = bevygap_shared::records::PlayerRecord {
            client_id,
            server_id: server_id.clone(),
            session_id: String::new(),
            connected_at_ms: 0,
            team: None,
        };
        self.app.world_mut().write_message(crate::nats_bridge::PlayerReported(record));
    }

    /// Plays the game server reporting `client_id` gone (or its record expiring).
    pub fn player_leaves(&mut self, server_id: &bevygap_shared::ServerId, client_id: u64) {
        let event = crate::nats_bridge::PlayerGone { server_id: server_id.clone(), client_id };
        self.app.world_mut().write_message(event);
    }

    /// Plays the NATS link going down or coming back.
    pub fn nats_link(&mut self, status: bevygap_shared::nats::LinkStatus) {
        self.app.world_mut().write_message(crate::nats_bridge::LinkChanged(status));
    }

    /// Plays the bridge's snapshot after a reconnect: these server and player records exist.
    pub fn nats_snapshot(
        &mut self,
        servers: &[&bevygap_shared::ServerId],
        players: &[(&bevygap_shared::ServerId, u64)],
    ) {
        let snapshot = crate::nats_bridge::KvSnapshot {
            servers: servers.iter().map(|id| (*id).clone()).collect(),
            players: players.iter().map(|(id, client)| ((*id).clone(), *client)).collect(),
        };
        self.app.world_mut().write_message(crate::nats_bridge::SnapshotRead(Box::new(snapshot)));
    }

    /// The in-memory NATS state.
    /// Plays a restart: these grants and sessions, issued by an earlier matchmaker process,
    /// are in NATS and reported as read at start-up.
    pub fn earlier_process_issued(
        &mut self,
        grants: Vec<bevygap_shared::records::ClientGrant>,
        sessions: Vec<bevygap_shared::records::SessionRecord>,
    ) {
        let mut store = self.app.world_mut().resource_mut::<crate::nats_bridge::MemoryNats>();
        for grant in &grants {
            store.grants.insert((grant.server_id.clone(), grant.client_id), grant.clone());
        }
        for session in &sessions {
            store.sessions.insert(session.session_id.clone(), session.clone());
        }
        let state = crate::nats_bridge::InheritedState { grants, sessions, ..Default::default() };
        self.app.world_mut().write_message(crate::nats_bridge::TakenOver(Box::new(state)));
    }

    /// Plays a take-over: these joins an earlier owner left waiting are in the `requests`
    /// bucket and reported as read.
    pub fn earlier_owner_left_waiting(&mut self, requests: Vec<bevygap_shared::records::RequestRecord>) {
        let mut store = self.app.world_mut().resource_mut::<crate::nats_bridge::MemoryNats>();
        for pending in &requests {
            store.requests.insert(pending.request_id.clone(), pending.clone());
        }
        let state = crate::nats_bridge::InheritedState { requests, ..Default::default() };
        self.app.world_mut().write_message(crate::nats_bridge::TakenOver(Box::new(state)));
    }

    /// The join holding `request_id`, if any.
    pub fn join_by_request(&self, request_id: &str) -> Option<bevy::prelude::Entity> {
        self.app.world().resource::<crate::joins::RequestIndex>().0.get(request_id).copied()
    }

    pub fn nats(&self) -> &crate::nats_bridge::MemoryNats {
        self.app.world().resource::<crate::nats_bridge::MemoryNats>()
    }
}
