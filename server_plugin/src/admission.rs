//! Admission control: only clients the matchmaker issued for this server get in.
//!
//! The matchmaker writes a [`ClientGrant`] under `<server_id>.<client_id>` in the `clients`
//! bucket *before* it hands out a ConnectToken. The server keeps a cache of its own grants, fed
//! by a KV watch (see [`crate::nats_link`]), and Lightyear's connection-request hook
//! ([`AdmissionGate`]) checks it. On a cache miss the gate does one short bounded KV read, to
//! cover a client that is faster than the watch.
//!
//! Refused, each with a logged reason (never the token): unknown client ids, grants for other
//! servers, a client id that is already connected (on any transport), a client id whose grant
//! was already used, and everyone once the server drains or is full.
//!
//! # Single use
//!
//! A ConnectToken is a bearer credential, and Lightyear's replay check is a no-op, so a token
//! copied off the wire could start a second connection within its life once the first one has
//! ended. Admission therefore makes every grant single-use: the first time a client id
//! *connects* (completes the handshake, not merely asks), it is recorded as consumed, and any
//! later request with that id is refused until the grant's token has expired. The record is
//! kept in this process only, so it holds through NATS outages, and it is bounded: entries go
//! once their token can no longer be used, and at most [`Admission::MAX_CONSUMED`] are kept.
//! The matchmaker issues a fresh client id for every join, so a player coming back simply
//! joins again. In [`AdmissionMode::Open`] (development, no grants) ids are not consumed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use bevy::prelude::*;
use bevygap_shared::naming::ServerId;
use bevygap_shared::records::{ClientGrant, now_ms};
use lightyear::connection::client::Disconnecting;
use lightyear::connection::shared::{ConnectionRequestHandler, DeniedReason};
use lightyear::prelude::server::ClientOf;
use lightyear::prelude::{Connected, PeerId, RemoteId};

use crate::api::{BevygapServerState, BevygapStatus, ConnectedPlayer, PlayerEntry, PlayerJoined, PlayerLeft};
use crate::netcode::{LinkTransport, link_transport};

/// Who may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdmissionMode {
    /// Only client ids the matchmaker granted for this server (production).
    #[default]
    Grants,
    /// Anyone holding a valid token (development without a matchmaker). Tokens are still
    /// verified by netcode, so this is only as safe as the private key.
    Open,
}

/// How admission decides, and how long it may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Who may connect (`BEVYGAP_ADMISSION=grants|open`).
    pub mode: AdmissionMode,
    /// Longest the connection hook blocks on a KV read for a grant not yet in the cache.
    pub lookup_timeout: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self { mode: AdmissionMode::Grants, lookup_timeout: Duration::from_millis(50) }
    }
}

/// Why a client was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Draining or shutting down.
    #[error("the server is draining and admits no one new")]
    NotAdmitting,
    /// Every seat is taken (the number of connected players).
    #[error("the server is full ({0} players)")]
    Full(usize),
    /// The same client id is connected already (perhaps over the other transport).
    #[error("this client id is already connected")]
    AlreadyConnected,
    /// This client id has already connected once with its grant: tokens are single-use, so a
    /// replayed (or reused) token is refused until it expires.
    #[error("this client id has already used its grant")]
    GrantUsed,
    /// The matchmaker never placed this client id here (or its grant ended).
    #[error("no grant for this client id on this server")]
    NoGrant,
    /// The grant places the client on another server.
    #[error("the grant names server {0}, not this one")]
    WrongServer(ServerId),
}

impl Refusal {
    /// What the client is told (it sees only "connection denied").
    pub fn denied_reason(&self) -> DeniedReason {
        match self {
            Refusal::NotAdmitting | Refusal::Full(_) => DeniedReason::ServerFull,
            Refusal::AlreadyConnected => DeniedReason::AlreadyConnected,
            Refusal::GrantUsed => DeniedReason::TokenAlreadyUsed,
            Refusal::NoGrant | Refusal::WrongServer(_) => DeniedReason::InvalidToken,
        }
    }
}

/// What the decision needs to know about the server right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occupancy {
    /// Whether the server phase admits players.
    pub admitting: bool,
    /// Players connected now.
    pub connected: usize,
    /// Most players at once.
    pub capacity: usize,
    /// Whether the connecting client id is one of them.
    pub already_connected: bool,
    /// Whether the connecting client id has already connected once with its (unexpired) grant.
    pub grant_used: bool,
}

/// The admission rule, as a pure function of the server's occupancy and the client's grant.
pub fn decide(
    server_id: &ServerId,
    mode: AdmissionMode,
    occupancy: Occupancy,
    grant: Option<&ClientGrant>,
) -> Result<(), Refusal> {
    if !occupancy.admitting {
        return Err(Refusal::NotAdmitting);
    }
    if occupancy.already_connected {
        return Err(Refusal::AlreadyConnected);
    }
    if occupancy.grant_used {
        return Err(Refusal::GrantUsed);
    }
    if occupancy.connected >= occupancy.capacity {
        return Err(Refusal::Full(occupancy.connected));
    }
    match (mode, grant) {
        (AdmissionMode::Open, _) => Ok(()),
        (AdmissionMode::Grants, None) => Err(Refusal::NoGrant),
        (AdmissionMode::Grants, Some(g)) if &g.server_id != server_id => Err(Refusal::WrongServer(g.server_id.clone())),
        (AdmissionMode::Grants, Some(_)) => Ok(()),
    }
}

/// The grants issued for this server, by client id. Shared between the KV watch task, the
/// connection hook and the ECS: shared state behind a lock rather than an inbox, because
/// Lightyear's connection hook reads it synchronously, with no access to the world.
#[derive(Debug, Clone, Default)]
pub struct GrantCache(Arc<RwLock<HashMap<u64, ClientGrant>>>);

impl GrantCache {
    /// The grant for a client id, if cached.
    pub fn get(&self, client_id: u64) -> Option<ClientGrant> {
        self.0.read().ok()?.get(&client_id).cloned()
    }

    /// Number of cached grants.
    pub fn len(&self) -> usize {
        self.0.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether no grant is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a granted token may still be on its way (not yet expired at `now_ms`): a player
    /// the matchmaker just placed here, so the server is not idle.
    pub fn awaiting_players(&self, now_ms: u64) -> bool {
        self.0.read().map(|m| m.values().any(|g| g.token_expires_at_ms > now_ms)).unwrap_or(false)
    }

    /// Caches a grant, if it is for `server_id`.
    pub fn insert(&self, server_id: &ServerId, grant: ClientGrant) -> bool {
        if &grant.server_id != server_id {
            return false;
        }
        if let Ok(mut map) = self.0.write() {
            map.insert(grant.client_id, grant);
        }
        true
    }

    /// Applies one KV watch entry for key `<server_id>.<client_id>`: a put caches the grant, a
    /// delete or purge forgets it. Malformed keys or values are ignored with a warning.
    pub fn apply(&self, server_id: &ServerId, key: &str, operation: kv::Operation, value: &[u8]) {
        let Some(client_id) = key
            .strip_prefix(server_id.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|id| id.parse::<u64>().ok())
        else {
            warn!("ignoring grant with unexpected key {key:?}");
            return;
        };
        match operation {
            kv::Operation::Put => match serde_json::from_slice::<ClientGrant>(value) {
                Ok(grant) if grant.client_id == client_id => {
                    if !self.insert(server_id, grant) {
                        warn!("ignoring grant under {key:?} that names another server");
                    }
                }
                Ok(_) => warn!("ignoring grant under {key:?} whose client id differs from its key"),
                Err(e) => warn!("ignoring malformed grant under {key:?}: {e}"),
            },
            kv::Operation::Delete | kv::Operation::Purge => {
                if let Ok(mut map) = self.0.write() {
                    map.remove(&client_id);
                }
            }
        }
    }
}

/// Reads one grant from KV with a deadline, from any thread (the connection hook runs on the
/// main thread or a Bevy task-pool thread, never inside the tokio runtime).
///
/// This is the one place that does not hand async results to the ECS through an
/// [`Inbox`](bevygap_shared::inbox::Inbox): it is not a delivery to a system but a synchronous
/// question inside Lightyear's [`ConnectionRequestHandler`], which must answer admit or refuse
/// before it returns. So it waits, bounded by `timeout`, on a one-shot channel.
#[derive(Debug, Clone)]
pub(crate) struct GrantLookup {
    pub handle: tokio::runtime::Handle,
    pub store: Arc<RwLock<Option<kv::Store>>>,
    pub timeout: Duration,
}

impl GrantLookup {
    fn get(&self, key: String) -> Option<ClientGrant> {
        let store = self.store.read().ok()?.clone()?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let timeout = self.timeout;
        self.handle.spawn(async move {
            let found = tokio::time::timeout(timeout, store.get(key)).await;
            let _ = tx.send(found);
        });
        match rx.recv_timeout(timeout + Duration::from_millis(50)) {
            Ok(Ok(Ok(Some(bytes)))) => serde_json::from_slice(&bytes).ok(),
            Ok(Ok(Ok(None))) => None,
            Ok(Ok(Err(e))) => {
                debug!("grant lookup failed: {e}");
                None
            }
            Ok(Err(_)) | Err(_) => {
                debug!("grant lookup timed out after {timeout:?}");
                None
            }
        }
    }
}

#[derive(Debug, Default)]
struct Live {
    admitting: bool,
    connected: HashMap<u64, Entity>,
    consumed: ConsumedGrants,
}

/// Client ids that have connected with their grant, each kept until its token can no longer
/// start a connection (see the module docs, "Single use").
#[derive(Debug, Default)]
struct ConsumedGrants {
    /// Client id -> Unix milliseconds after which the entry may go.
    until_ms: HashMap<u64, u64>,
}

impl ConsumedGrants {
    /// Whether `client_id` has used its grant and the token may still be live at `now_ms`.
    fn contains(&self, client_id: u64, now_ms: u64) -> bool {
        self.until_ms.get(&client_id).is_some_and(|until| *until > now_ms)
    }

    /// Records `client_id` as used until its token expires (plus a margin for netcode's
    /// whole-second expiry), forgetting expired entries and, past `max` entries, the ones
    /// closest to expiry.
    fn consume(&mut self, client_id: u64, token_expires_at_ms: u64, now_ms: u64, max: usize) {
        self.until_ms.retain(|_, until| *until > now_ms);
        let until = token_expires_at_ms.saturating_add(Admission::CONSUMED_MARGIN.as_millis() as u64);
        if until <= now_ms {
            return;
        }
        while self.until_ms.len() >= max.max(1) && !self.until_ms.contains_key(&client_id) {
            let Some(oldest) = self.until_ms.iter().min_by_key(|(_, until)| **until).map(|(id, _)| *id) else {
                break;
            };
            warn!("forgetting the used grant of client {oldest} early: more than {max} are remembered");
            self.until_ms.remove(&oldest);
        }
        let entry = self.until_ms.entry(client_id).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn len(&self) -> usize {
        self.until_ms.len()
    }
}

/// Admission state shared by the connection hook and the ECS.
#[derive(Debug)]
pub struct Admission {
    server_id: ServerId,
    mode: AdmissionMode,
    capacity: usize,
    grants: GrantCache,
    live: RwLock<Live>,
    lookup: Option<GrantLookup>,
    recent_misses: Mutex<HashMap<u64, Instant>>,
    last_lookup: Mutex<Option<Instant>>,
}

impl Admission {
    /// How long a failed direct read is trusted (the watch still delivers late grants).
    pub const MISS_MEMORY: Duration = Duration::from_secs(1);
    /// Least time between two blocking lookups, whatever the client ids: clients sending
    /// made-up ids cannot stall more than a bounded share of the server's frames.
    pub const LOOKUP_INTERVAL: Duration = Duration::from_millis(200);
    /// Most used grants remembered at once. Entries normally go when their token expires
    /// (seconds to minutes after issue), so this is only reached under a flood of connections;
    /// the entries closest to expiry are then forgotten first.
    pub const MAX_CONSUMED: usize = 65_536;
    /// How long after its `token_expires_at_ms` a used grant is still remembered: netcode
    /// compares expiry in whole seconds of the server's clock.
    pub const CONSUMED_MARGIN: Duration = Duration::from_secs(10);

    pub(crate) fn new(
        server_id: ServerId,
        mode: AdmissionMode,
        capacity: usize,
        grants: GrantCache,
        lookup: Option<GrantLookup>,
    ) -> Self {
        Self {
            server_id,
            mode,
            capacity,
            grants,
            live: RwLock::new(Live { admitting: true, ..default() }),
            lookup,
            recent_misses: Mutex::default(),
            last_lookup: Mutex::default(),
        }
    }

    /// The grant cache.
    pub fn grants(&self) -> &GrantCache {
        &self.grants
    }

    /// Checks a connecting client id; returns its grant (if any) when admitted.
    pub fn check(&self, client_id: u64) -> Result<Option<ClientGrant>, Refusal> {
        let occupancy = {
            let live = self.live.read().map_err(|_| Refusal::NotAdmitting)?;
            Occupancy {
                admitting: live.admitting,
                connected: live.connected.len(),
                capacity: self.capacity,
                already_connected: live.connected.contains_key(&client_id),
                grant_used: self.mode == AdmissionMode::Grants && live.consumed.contains(client_id, now_ms()),
            }
        };
        let mut grant = self.grants.get(client_id);
        if grant.is_none() && self.mode == AdmissionMode::Grants && occupancy.admitting {
            grant = self.lookup_grant(client_id);
        }
        decide(&self.server_id, self.mode, occupancy, grant.as_ref()).map(|()| grant)
    }

    /// A direct KV read for a grant not in the cache. A miss is remembered for
    /// [`Self::MISS_MEMORY`], so a client retrying an unknown id cannot stall frames repeatedly.
    fn lookup_grant(&self, client_id: u64) -> Option<ClientGrant> {
        let lookup = self.lookup.as_ref()?;
        if let Ok(misses) = self.recent_misses.lock()
            && misses.get(&client_id).is_some_and(|at| at.elapsed() < Self::MISS_MEMORY)
        {
            return None;
        }
        match self.last_lookup.lock() {
            Ok(mut last) if last.is_none_or(|at| at.elapsed() >= Self::LOOKUP_INTERVAL) => *last = Some(Instant::now()),
            _ => return None,
        }
        let key = bevygap_shared::NatsNames::client_key(&self.server_id, client_id);
        match lookup.get(key) {
            Some(grant) => {
                self.grants.insert(&self.server_id, grant.clone());
                Some(grant)
            }
            None => {
                if let Ok(mut misses) = self.recent_misses.lock() {
                    misses.retain(|_, at| at.elapsed() < Self::MISS_MEMORY);
                    misses.insert(client_id, Instant::now());
                }
                None
            }
        }
    }

    fn set_admitting(&self, admitting: bool) {
        if let Ok(mut live) = self.live.write() {
            live.admitting = admitting;
        }
    }

    /// Number of used grants remembered (see the module docs, "Single use").
    pub fn consumed_len(&self) -> usize {
        self.live.read().map(|live| live.consumed.len()).unwrap_or(0)
    }

    /// Records a connection, consuming the client id's grant; false if the client id is already
    /// connected through another entity.
    fn connect(&self, client_id: u64, entity: Entity) -> bool {
        let grant = self.grants.get(client_id);
        let Ok(mut live) = self.live.write() else { return false };
        match live.connected.get(&client_id) {
            Some(existing) if *existing != entity => false,
            _ => {
                live.connected.insert(client_id, entity);
                if self.mode == AdmissionMode::Grants
                    && let Some(grant) = grant
                {
                    live.consumed.consume(client_id, grant.token_expires_at_ms, now_ms(), Self::MAX_CONSUMED);
                }
                true
            }
        }
    }

    /// Records a disconnection; false if `entity` was not the admitted connection.
    fn disconnect(&self, client_id: u64, entity: Entity) -> bool {
        let Ok(mut live) = self.live.write() else { return false };
        if live.connected.get(&client_id) == Some(&entity) {
            live.connected.remove(&client_id);
            true
        } else {
            false
        }
    }
}

/// Lightyear's connection-request hook, backed by [`Admission`].
#[derive(Debug, Clone)]
pub struct AdmissionGate(pub Arc<Admission>);

impl ConnectionRequestHandler for AdmissionGate {
    fn handle_request(&self, peer: PeerId) -> Option<DeniedReason> {
        let PeerId::Netcode(client_id) = peer else {
            warn!("refusing non-netcode peer {peer:?}");
            crate::metrics::refused("not_netcode");
            return Some(DeniedReason::InvalidToken);
        };
        match self.0.check(client_id) {
            Ok(_) => {
                info!("admitting client {client_id}");
                crate::metrics::admitted();
                None
            }
            Err(refusal) => {
                info!("refusing client {client_id}: {refusal}");
                crate::metrics::refused(refusal.label());
                Some(refusal.denied_reason())
            }
        }
    }
}

/// The shared admission state, for systems.
#[derive(Resource, Debug, Clone)]
pub struct AdmissionHandle(pub Arc<Admission>);

/// Tracks admitted players and keeps the gate in step with the server phase.
pub struct AdmissionPlugin;

impl Plugin for AdmissionPlugin {
    fn build(&self, app: &mut App) {
        app.add_observer(on_client_connected)
            .add_observer(on_client_disconnected)
            .add_systems(Update, sync_gate_with_phase.run_if(state_changed::<BevygapServerState>));
    }
}

fn sync_gate_with_phase(phase: Res<State<BevygapServerState>>, admission: Res<AdmissionHandle>) {
    admission.0.set_admitting(phase.admits_players());
}

/// A client finished the netcode handshake: mark it as a player, or kick a duplicate.
fn on_client_connected(
    trigger: On<Add, Connected>,
    clients: Query<(&RemoteId, LinkTransport), With<ClientOf>>,
    admission: Res<AdmissionHandle>,
    mut status: ResMut<BevygapStatus>,
    mut joined: MessageWriter<PlayerJoined>,
    mut commands: Commands,
) {
    let entity = trigger.entity;
    let Ok((RemoteId(PeerId::Netcode(client_id)), over_webtransport)) = clients.get(entity) else {
        return;
    };
    let client_id = *client_id;
    if !admission.0.connect(client_id, entity) {
        warn!("client {client_id} connected twice (another transport?): disconnecting the newer connection");
        commands.entity(entity).insert(Disconnecting);
        return;
    }
    let transport = link_transport(over_webtransport);
    let session_id = admission.0.grants().get(client_id).map(|g| g.session_id).unwrap_or_default();
    let connected_at_ms = now_ms();
    info!("player {client_id} joined over {transport:?} (session {session_id:?})");
    commands.entity(entity).insert(ConnectedPlayer { client_id, session_id: session_id.clone(), connected_at_ms });
    status
        .players
        .insert(client_id, PlayerEntry { entity, session_id: session_id.clone(), transport, connected_at_ms });
    joined.write(PlayerJoined { entity, client_id, session_id, transport });
}

/// Fires for every way a client stops being connected (disconnect, timeout, kick, despawn).
fn on_client_disconnected(
    trigger: On<Remove, Connected>,
    clients: Query<&RemoteId, With<ClientOf>>,
    admission: Res<AdmissionHandle>,
    mut status: ResMut<BevygapStatus>,
    mut left: MessageWriter<PlayerLeft>,
) {
    let entity = trigger.entity;
    let Ok(RemoteId(PeerId::Netcode(client_id))) = clients.get(entity) else {
        return;
    };
    if !admission.0.disconnect(*client_id, entity) {
        return;
    }
    let session_id = status.players.remove(client_id).map(|p| p.session_id).unwrap_or_default();
    info!("player {client_id} left");
    left.write(PlayerLeft { client_id: *client_id, session_id });
}

#[cfg(test)]
mod tests {
    use bevygap_testkit::records::client_grant as grant;

    use super::*;

    fn open_seat() -> Occupancy {
        Occupancy { admitting: true, connected: 0, capacity: 2, already_connected: false, grant_used: false }
    }

    #[test]
    fn admits_only_grants_for_this_server() {
        let me = ServerId::new("me").unwrap();
        let mode = AdmissionMode::Grants;
        assert_eq!(decide(&me, mode, open_seat(), Some(&grant("me", 1))), Ok(()));
        assert_eq!(decide(&me, mode, open_seat(), None), Err(Refusal::NoGrant));
        assert!(matches!(decide(&me, mode, open_seat(), Some(&grant("other", 1))), Err(Refusal::WrongServer(_))));
        assert_eq!(decide(&me, AdmissionMode::Open, open_seat(), None), Ok(()));
    }

    #[test]
    fn refuses_when_draining_full_or_already_connected() {
        let me = ServerId::new("me").unwrap();
        let g = grant("me", 1);
        let mode = AdmissionMode::Grants;
        let draining = Occupancy { admitting: false, ..open_seat() };
        assert_eq!(decide(&me, mode, draining, Some(&g)), Err(Refusal::NotAdmitting));
        let full = Occupancy { connected: 2, ..open_seat() };
        assert_eq!(decide(&me, mode, full, Some(&g)), Err(Refusal::Full(2)));
        let dup = Occupancy { already_connected: true, ..open_seat() };
        assert_eq!(decide(&me, mode, dup, Some(&g)), Err(Refusal::AlreadyConnected));
        let used = Occupancy { grant_used: true, ..open_seat() };
        assert_eq!(decide(&me, mode, used, Some(&g)), Err(Refusal::GrantUsed));
        assert_eq!(Refusal::GrantUsed.denied_reason(), DeniedReason::TokenAlreadyUsed);
        assert_eq!(Refusal::NoGrant.denied_reason(), DeniedReason::InvalidToken);
    }

    #[test]
    fn cache_follows_the_watch_and_ignores_foreign_entries() {
        let me = ServerId::new("me").unwrap();
        let cache = GrantCache::default();
        let bytes = serde_json::to_vec(&grant("me", 7)).unwrap();
        cache.apply(&me, "me.7", kv::Operation::Put, &bytes);
        assert_eq!(cache.get(7).unwrap().session_id, "session-7");
        cache.apply(&me, "me.8", kv::Operation::Put, &bytes); // key/client id mismatch
        cache.apply(&me, "me.9", kv::Operation::Put, b"not json");
        let foreign = serde_json::to_vec(&grant("other", 10)).unwrap();
        cache.apply(&me, "me.10", kv::Operation::Put, &foreign);
        assert_eq!(cache.len(), 1);
        cache.apply(&me, "me.7", kv::Operation::Delete, b"");
        assert!(cache.is_empty());
    }

    /// A grant written just before the client connects, not yet delivered by the watch, is
    /// found by the bounded direct read; a missing one is refused within the bound.
    #[test]
    fn cache_miss_falls_back_to_a_bounded_kv_read() {
        let nats = bevygap_testkit::NatsServer::start().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let names = bevygap_shared::Namespace::new("lookup").unwrap().names();
        let me = ServerId::new("me").unwrap();
        let store = rt.block_on(async {
            let client = async_nats::connect(nats.url()).await.unwrap();
            let js = async_nats::jetstream::new(client);
            let stores = bevygap_shared::kv::KvStores::provision(&js, &names).await.unwrap();
            let bytes = serde_json::to_vec(&grant("me", 5)).unwrap();
            stores.clients.put("me.5", bytes.into()).await.unwrap();
            stores.clients
        });
        let timeout = Duration::from_millis(250);
        let lookup = GrantLookup { handle: rt.handle().clone(), store: Arc::new(RwLock::new(Some(store))), timeout };
        let admission = Admission::new(me, AdmissionMode::Grants, 4, GrantCache::default(), Some(lookup));
        assert_eq!(admission.check(5).unwrap().map(|g| g.session_id), Some("session-5".into()));
        assert!(admission.grants().get(5).is_some(), "the read result is cached");
        let started = std::time::Instant::now();
        assert_eq!(admission.check(6), Err(Refusal::NoGrant));
        assert!(started.elapsed() < timeout * 4, "the hook must not block long: {:?}", started.elapsed());
    }

    #[test]
    fn gate_tracks_connections_across_transports() {
        let me = ServerId::new("me").unwrap();
        let cache = GrantCache::default();
        cache.insert(&me, grant("me", 1));
        let admission = Admission::new(me, AdmissionMode::Grants, 4, cache, None);
        let (a, b) = (Entity::from_raw_u32(1).unwrap(), Entity::from_raw_u32(2).unwrap());
        assert!(admission.check(1).is_ok());
        assert!(admission.connect(1, a));
        assert_eq!(admission.check(1), Err(Refusal::AlreadyConnected));
        assert!(!admission.connect(1, b), "a second connection of the same id is refused");
        assert!(!admission.disconnect(1, b), "the refused duplicate's exit does not free the seat");
        assert!(admission.disconnect(1, a));
        assert_eq!(admission.check(1), Err(Refusal::GrantUsed), "a grant admits one connection");
        assert_eq!(admission.check(2), Err(Refusal::NoGrant));
        admission.set_admitting(false);
        assert_eq!(admission.check(1), Err(Refusal::NotAdmitting));
    }

    #[test]
    fn used_grants_are_remembered_until_their_token_expires_and_no_more_than_the_cap() {
        let now = 1_000_000;
        let margin = Admission::CONSUMED_MARGIN.as_millis() as u64;
        let mut used = ConsumedGrants::default();
        used.consume(1, now + 5_000, now, 3);
        assert!(used.contains(1, now) && used.contains(1, now + 5_000 + margin - 1));
        assert!(!used.contains(1, now + 5_000 + margin), "forgotten once the token is dead");
        used.consume(2, now - margin - 1, now, 3);
        assert!(!used.contains(2, now), "an already expired grant is not kept");
        used.consume(2, now + 1_000, now, 3);
        used.consume(3, now + 9_000, now, 3);
        used.consume(4, now + 7_000, now, 3);
        assert_eq!(used.len(), 3, "bounded");
        assert!(!used.contains(2, now), "the entry closest to expiry goes first");
        assert!([1, 3, 4].iter().all(|id| used.contains(*id, now)));
        used.consume(1, now + 20_000, now + 5_000 + margin, 3);
        assert_eq!(used.len(), 3);
        assert!(used.contains(1, now + 20_000), "a later grant for the same id is remembered anew");
    }

    #[test]
    fn open_mode_consumes_nothing() {
        let me = ServerId::new("me").unwrap();
        let admission = Admission::new(me, AdmissionMode::Open, 4, GrantCache::default(), None);
        let a = Entity::from_raw_u32(1).unwrap();
        assert!(admission.connect(1, a) && admission.disconnect(1, a));
        assert!(admission.check(1).is_ok(), "development servers let a client id come back");
        assert_eq!(admission.consumed_len(), 0);
    }
}
