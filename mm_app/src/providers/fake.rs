//! A provider that starts nothing: it records what it was asked and answers at once, so an
//! App can be stepped through a server's whole life with no child processes. Tests play the
//! game server's part by sending its NATS records through the in-memory bridge.

use std::sync::{Arc, Mutex, MutexGuard};

use bevygap_shared::inbox::InboxSender;
use bevygap_shared::naming::ServerId;

use super::{ProviderError, ProviderEvent, ServerProvider, ServerSpec};

/// What a [`FakeProvider`] was asked to do, in order.
#[derive(Debug, Default, Clone)]
pub struct FakeProviderLog {
    /// Every launch request.
    pub launched: Vec<ServerSpec>,
    /// Every stop request (a server may be asked more than once).
    pub stopped: Vec<ServerId>,
    /// Servers launched and not yet stopped.
    pub running: Vec<ServerId>,
    /// Seats asked for (when it confirms seats), in order.
    pub seats_taken: Vec<(ServerId, u64)>,
    /// Seats given back, with the id the provider had confirmed them under.
    pub seats_freed: Vec<(ServerId, u64, Option<String>)>,
}

#[derive(Default)]
struct FakeState {
    log: FakeProviderLog,
    refuse_launches: bool,
    /// Plays a fleet: starts nothing, servers register themselves.
    fleet: bool,
    /// Plays a provider that holds each seat itself (Edgegap's sessions mode).
    confirms_seats: bool,
    seat_events: Option<InboxSender<ProviderEvent>>,
    senders: Vec<(ServerId, InboxSender<ProviderEvent>)>,
}

/// The test provider: launches succeed (or all fail, see [`FakeProvider::refuse_launches`]),
/// stops are recorded, and a test can make a server exit with [`FakeProvider::exit`].
#[derive(Clone, Default)]
pub struct FakeProvider {
    state: Arc<Mutex<FakeState>>,
}

impl FakeProvider {
    /// A provider whose launches succeed.
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider that plays a fleet: it does not start (or stop) servers.
    pub fn fleet() -> Self {
        let fake = Self::default();
        fake.state().fleet = true;
        fake
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        // A test that panicked while holding the lock poisons it; the log is still readable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A provider that holds each seat itself: tokens wait for [`FakeProvider::confirm_seat`].
    pub fn confirming_seats() -> Self {
        let fake = Self::default();
        fake.state().confirms_seats = true;
        fake
    }

    /// Confirms a seat asked for, under `external_id`.
    pub fn confirm_seat(&self, server_id: &ServerId, client_id: u64, external_id: &str) {
        if let Some(events) = &self.state().seat_events {
            let external_id = external_id.to_string();
            events.send(ProviderEvent::SeatConfirmed { server_id: server_id.clone(), client_id, external_id });
        }
    }

    /// Refuses a seat asked for.
    pub fn refuse_seat(&self, server_id: &ServerId, client_id: u64, why: &str) {
        if let Some(events) = &self.state().seat_events {
            let error = ProviderError::SessionRefused(why.into());
            events.send(ProviderEvent::SeatRefused { server_id: server_id.clone(), client_id, error });
        }
    }

    /// Makes every later launch fail with [`ProviderError::Refused`].
    pub fn refuse_launches(&self, refuse: bool) {
        self.state().refuse_launches = refuse;
    }

    /// What the provider was asked so far.
    pub fn log(&self) -> FakeProviderLog {
        self.state().log.clone()
    }

    /// Reports `server_id`'s process as exited (a crash, as the local provider would see it).
    pub fn exit(&self, server_id: &ServerId, detail: &str) {
        let mut state = self.state();
        state.log.running.retain(|id| id != server_id);
        if let Some((_, events)) = state.senders.iter().find(|(id, _)| id == server_id) {
            events.send(ProviderEvent::Exited { server_id: server_id.clone(), detail: detail.into() });
        }
    }
}

impl ServerProvider for FakeProvider {
    fn name(&self) -> &'static str {
        if self.state().fleet { "fleet" } else { "fake" }
    }

    fn starts_servers(&self) -> bool {
        !self.state().fleet
    }

    fn launch(&self, spec: ServerSpec, events: InboxSender<ProviderEvent>) {
        let mut state = self.state();
        let server_id = spec.server_id.clone();
        state.log.launched.push(spec);
        if state.refuse_launches {
            events.send(ProviderEvent::LaunchFailed { server_id, error: ProviderError::Refused });
            return;
        }
        state.log.running.push(server_id.clone());
        state.senders.push((server_id.clone(), events.clone()));
        events.send(ProviderEvent::Launched { server_id });
    }

    /// Records the stop and, like a real process that exits on SIGTERM, reports it exited.
    fn stop(&self, server_id: &ServerId) {
        let mut state = self.state();
        state.log.stopped.push(server_id.clone());
        let was_running = state.log.running.contains(server_id);
        state.log.running.retain(|id| id != server_id);
        if was_running && let Some((_, events)) = state.senders.iter().find(|(id, _)| id == server_id) {
            events.send(ProviderEvent::Exited { server_id: server_id.clone(), detail: "stopped".into() });
        }
    }

    fn shutdown_all(&self) {
        let mut state = self.state();
        let running = std::mem::take(&mut state.log.running);
        state.log.stopped.extend(running);
    }

    fn running(&self) -> Vec<ServerId> {
        self.state().log.running.clone()
    }

    fn confirms_seats(&self) -> bool {
        self.state().confirms_seats
    }

    fn take_seat(&self, seat: super::SeatSpec, events: InboxSender<ProviderEvent>) {
        let mut state = self.state();
        state.log.seats_taken.push((seat.server_id, seat.client_id));
        state.seat_events = Some(events);
    }

    fn free_seat(&self, server_id: &ServerId, client_id: u64, external_id: Option<&str>) {
        self.state().log.seats_freed.push((server_id.clone(), client_id, external_id.map(String::from)));
    }
}
