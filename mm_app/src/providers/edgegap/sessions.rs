//! Sessions mode: every seated player holds an Edgegap session (the legacy Sessions API the
//! original Bevygap used), so Edgegap's seat accounting, dashboard and `empty_ttl` see each
//! player.
//!
//! # A seat's session
//!
//! 1. **Take** ([`ServerProvider::take_seat`](crate::providers::ServerProvider::take_seat),
//!    when placement reserved the seat): wait until the server's deployment has a request id
//!    (its create may still be in flight; a deployment an earlier matchmaker started is found
//!    by its server tag), then `POST /v1/session` with the player's IP and
//!    `deployment_request_id` naming that deployment.
//! 2. **Follow** `GET /v1/session/{id}` with backoff until it is `ready` (linked to the
//!    deployment, which is READY), and check it is linked to *our* deployment:
//!    [`ProviderEvent::SeatConfirmed`] lets the matchmaker issue the player's token. A session
//!    that turns `Unprocessable` or `Error`, links elsewhere or vanishes:
//!    [`ProviderEvent::SeatRefused`] (the join fails with `server_failed`).
//! 3. **Free** (the player left, their token expired unclaimed, their join ended or failed):
//!    `DELETE /v1/session/{id}`, retried with backoff; 404 and 410 mean it is already gone.
//! 4. **The deployment stops**: every session still linked to it is deleted (listed with
//!    `GET /v1/sessions`), including ones this process never knew (an earlier process's,
//!    before a restart, or one a lost create answer made).
//!
//! # Why the deployment itself is not autodeployed by a session
//!
//! The matchmaker creates each deployment with `POST /v2/deployments` and links the sessions
//! to it, rather than letting the first session autodeploy one. An autodeployed deployment
//! carries neither the matchmaker's tags nor its per-server environment, so the matchmaker
//! could not name its server before it registers, could not find it again after a crash, and
//! would have to rename servers as sessions link. Pinning every session to a deployment keeps
//! our seat book the one placement truth while Edgegap still counts every player.
//! Set the app version's `sockets` to at least `BEVYGAP_SERVER_CAPACITY`.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bevygap_edgegap::{SessionCreate, SessionGet};
use bevygap_shared::inbox::InboxSender;
use bevygap_shared::naming::ServerId;

use super::policy;
use super::worker::Shared;
use crate::providers::{ProviderError, ProviderEvent, SeatSpec};

/// Page size and page cap when listing sessions.
const LIST_PAGE: u32 = 100;
const LIST_MAX_PAGES: u32 = 100;

type SeatKey = (ServerId, u64);

struct SeatEntry {
    session_id: Option<String>,
    freed: bool,
    wake: SyncSender<()>,
}

/// The seats whose sessions this process holds or is creating.
#[derive(Default)]
pub struct SeatTable {
    entries: Mutex<HashMap<SeatKey, SeatEntry>>,
}

impl SeatTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<SeatKey, SeatEntry>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a seat; false if it is already held.
    fn insert(&self, key: SeatKey, wake: SyncSender<()>) -> bool {
        let mut entries = self.lock();
        if entries.contains_key(&key) {
            return false;
        }
        entries.insert(key, SeatEntry { session_id: None, freed: false, wake });
        true
    }

    /// Marks a seat to be given back and wakes its worker; false if no worker holds it.
    pub fn free(&self, server_id: &ServerId, client_id: u64) -> bool {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(&(server_id.clone(), client_id)) else { return false };
        entry.freed = true;
        let _ = entry.wake.try_send(());
        true
    }

    /// Marks every seat of a server (stopping) to be given back.
    pub fn free_server(&self, server_id: &ServerId) {
        for ((server, _), entry) in self.lock().iter_mut() {
            if server == server_id {
                entry.freed = true;
                let _ = entry.wake.try_send(());
            }
        }
    }

    /// Marks every seat to be given back (shutdown).
    pub fn free_all(&self) {
        for entry in self.lock().values_mut() {
            entry.freed = true;
            let _ = entry.wake.try_send(());
        }
    }

    /// Wakes the worker following `session_id` (a webhook named it); false if none does.
    pub fn wake_session(&self, session_id: &str) -> bool {
        let entries = self.lock();
        let Some(entry) = entries.values().find(|e| e.session_id.as_deref() == Some(session_id)) else { return false };
        let _ = entry.wake.try_send(());
        true
    }

    fn freed(&self, key: &SeatKey) -> bool {
        self.lock().get(key).is_none_or(|e| e.freed)
    }

    fn set_session(&self, key: &SeatKey, session_id: &str) {
        if let Some(entry) = self.lock().get_mut(key) {
            entry.session_id = Some(session_id.to_string());
        }
    }

    fn remove(&self, key: &SeatKey) {
        self.lock().remove(key);
    }

    /// Sessions created and not yet deleted (for shutdown and leak checks).
    pub fn held(&self) -> usize {
        self.lock().len()
    }
}

/// Starts the worker thread of one seat (a no-op if the seat is already held).
pub fn spawn_seat(shared: Arc<Shared>, seat: SeatSpec, events: InboxSender<ProviderEvent>) {
    let key = (seat.server_id.clone(), seat.client_id);
    let (wake_tx, wake) = sync_channel(1);
    if !shared.seats.insert(key.clone(), wake_tx) {
        return;
    }
    let worker = SeatWorker { shared: shared.clone(), key: key.clone(), events: events.clone(), wake };
    let spawned =
        std::thread::Builder::new().name(format!("edgegap-seat-{}", seat.client_id)).spawn(move || worker.run(seat));
    if let Err(e) = spawned {
        tracing::error!(server_id = %key.0, "cannot start an Edgegap session thread: {e}");
        shared.seats.remove(&key);
        let error = ProviderError::SessionRefused("the matchmaker could not start a session thread".into());
        events.send(ProviderEvent::SeatRefused { server_id: key.0, client_id: key.1, error });
    }
}

/// Deletes one session on its own thread: one an earlier matchmaker process created, whose
/// seat this process took over after a restart and has now freed.
pub fn spawn_delete(shared: Arc<Shared>, session_id: String) {
    let spawned = std::thread::Builder::new().name("edgegap-session-delete".into()).spawn(move || {
        if !delete_session(&shared, &session_id, std::thread::sleep) {
            tracing::error!(
                session_id,
                "Edgegap keeps refusing to delete a session; it is deleted when its deployment stops"
            );
        }
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start a thread to delete an Edgegap session: {e}");
    }
}

/// Deletes every session linked to a deployment (it is stopping or gone). Best effort, on the
/// calling worker thread: a session Edgegap keeps refusing to delete is logged.
pub fn delete_sessions_on(shared: &Shared, request_id: &str) {
    let mut linked = Vec::new();
    for page in 1..=LIST_MAX_PAGES {
        match shared.client.list_sessions(Some(page), Some(LIST_PAGE)) {
            Ok(list) => {
                let more = list.pagination.as_ref().and_then(|p| p.has_next).unwrap_or(false);
                linked.extend(
                    list.data
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|s| s.deployment_request_id.as_deref() == Some(request_id))
                        .map(|s| s.session_id),
                );
                if !more {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(request_id, "cannot list Edgegap sessions to delete those of a stopped deployment: {e}");
                return;
            }
        }
    }
    for session_id in linked {
        if !delete_session(shared, &session_id, std::thread::sleep) {
            tracing::error!(
                request_id,
                session_id,
                "Edgegap keeps refusing to delete a session of a stopped deployment"
            );
        }
    }
}

/// Deletes one session, retried with the stop backoff; true once Edgegap no longer has it.
fn delete_session(shared: &Shared, session_id: &str, mut nap: impl FnMut(Duration)) -> bool {
    let timing = &shared.config.timing;
    for (attempt, delay) in (1..).zip(timing.stop_retry.delays(timing.stop_attempts)) {
        match shared.client.delete_session(session_id) {
            Ok(_) => return true,
            Err(e) if policy::status_error_means_gone(&e) => return true,
            Err(e) => {
                tracing::debug!(session_id, "deleting the session failed (attempt {attempt}): {e}");
                nap(delay);
            }
        }
    }
    false
}

/// How following a session ended.
enum SessionEnd {
    Confirmed,
    Refused(String),
    Freed,
}

struct SeatWorker {
    shared: Arc<Shared>,
    key: SeatKey,
    events: InboxSender<ProviderEvent>,
    wake: Receiver<()>,
}

impl SeatWorker {
    fn freed(&self) -> bool {
        self.shared.seats.freed(&self.key)
    }

    /// Waits up to `delay`, less if woken (the seat was freed).
    fn nap(&self, delay: Duration) {
        match self.wake.recv_timeout(delay) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(delay),
        }
    }

    fn refuse(&self, error: ProviderError) {
        self.events.send(ProviderEvent::SeatRefused { server_id: self.key.0.clone(), client_id: self.key.1, error });
    }

    fn run(self, seat: SeatSpec) {
        let Some(request_id) = self.deployment() else { return self.shared.seats.remove(&self.key) };
        let Some(session_id) = self.create(&seat, &request_id) else { return self.shared.seats.remove(&self.key) };
        match self.follow(&session_id, &request_id) {
            SessionEnd::Confirmed => {
                self.events.send(ProviderEvent::SeatConfirmed {
                    server_id: self.key.0.clone(),
                    client_id: self.key.1,
                    external_id: session_id.clone(),
                });
                while !self.freed() {
                    self.nap(Duration::from_secs(60));
                }
            }
            SessionEnd::Refused(detail) => self.refuse(ProviderError::SessionRefused(detail)),
            SessionEnd::Freed => {}
        }
        if !delete_session(&self.shared, &session_id, |delay| self.nap(delay)) {
            tracing::error!(
                server_id = %self.key.0,
                session_id,
                "Edgegap keeps refusing to delete a session; it is deleted when its deployment stops"
            );
        }
        self.shared.seats.remove(&self.key);
    }

    /// The request id of the server's deployment, once Edgegap named it; `None` if it never
    /// will be (the seat was freed, the server failed or stops: the matchmaker hears of that
    /// from the server's events; or, reported as refused, no deployment carries its tag).
    fn deployment(&self) -> Option<String> {
        let (server_id, timing) = (&self.key.0, &self.shared.config.timing);
        let mut attempt = 0;
        loop {
            if self.freed() {
                return None;
            }
            if let Some(request_id) = self.shared.table.request_id(server_id) {
                return Some(request_id);
            }
            if !self.shared.table.handled(server_id) {
                // Started by an earlier matchmaker process: find it by its tag.
                return match super::worker::find_tagged(&self.shared, &super::request::server_tag(server_id)) {
                    Ok(Some(request_id)) => Some(request_id),
                    Ok(None) => {
                        self.refuse(ProviderError::SessionRefused("no deployment carries the server's tag".into()));
                        None
                    }
                    Err(e) => {
                        self.refuse(ProviderError::SessionRefused(format!("cannot find the server's deployment: {e}")));
                        None
                    }
                };
            }
            if self.shared.table.stop_requested(server_id) || !self.shared.table.running().contains(server_id) {
                // The launch failed or the server is stopping: the matchmaker learns that from
                // the server's own events and re-places the player; nothing to refuse.
                return None;
            }
            self.nap(timing.status.delay(attempt));
            attempt = attempt.saturating_add(1);
        }
    }

    /// Creates the player's session on the deployment.
    fn create(&self, seat: &SeatSpec, request_id: &str) -> Option<String> {
        let config = &self.shared.config;
        let body = SessionCreate {
            app_name: config.app.clone(),
            version_name: Some(config.version.clone().unwrap_or_else(|| seat.version.to_string())),
            ip_list: Some(vec![seat.player_ip.to_string()]),
            deployment_request_id: Some(request_id.to_string()),
            webhook_url: config.webhook.as_ref().map(|w| w.public_url.clone()),
            ..SessionCreate::default()
        };
        match self.shared.client.create_session(&body) {
            Ok(created) => {
                tracing::info!(server_id = %self.key.0, session_id = created.session_id, "Edgegap session created");
                self.shared.seats.set_session(&self.key, &created.session_id);
                Some(created.session_id)
            }
            Err(error) => {
                // A lost answer may have left a session: it is linked to this deployment and
                // deleted when the deployment stops.
                tracing::warn!(server_id = %self.key.0, "Edgegap did not create the player's session: {error}");
                self.refuse(ProviderError::SessionRefused(error.to_string()));
                None
            }
        }
    }

    /// Reads the session with backoff until it is ready (linked to `request_id`, also for a
    /// server an earlier process started), refused, or the seat is freed.
    fn follow(&self, session_id: &str, request_id: &str) -> SessionEnd {
        let timing = &self.shared.config.timing;
        let mut attempt = 0;
        loop {
            self.nap(timing.status.delay(attempt));
            attempt = attempt.saturating_add(1);
            if self.freed() {
                return SessionEnd::Freed;
            }
            match self.shared.client.get_session(session_id) {
                Ok(session) => match judge_session(&session, Some(request_id)) {
                    SessionVerdict::Waiting => {}
                    SessionVerdict::Ready => return SessionEnd::Confirmed,
                    SessionVerdict::Refused(detail) => return SessionEnd::Refused(detail),
                },
                Err(e) if policy::status_error_means_gone(&e) => {
                    return SessionEnd::Refused(format!("Edgegap no longer knows session {session_id}: {e}"));
                }
                Err(e) => tracing::debug!(session_id, "session read failed, reading again later: {e}"),
            }
        }
    }
}

/// What one session read means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionVerdict {
    /// Seeking, or linked to a deployment that is not ready yet.
    Waiting,
    /// Linked to the expected deployment, which is ready.
    Ready,
    /// It will never seat the player here.
    Refused(String),
}

/// Judges a session read; `expected` is the deployment it must be linked to, if known. Driven
/// by the `ready`/`linked` flags and the `error` field, not by status words (Edgegap's
/// spelling of those varies).
pub fn judge_session(session: &SessionGet, expected: Option<&str>) -> SessionVerdict {
    let status = session.status.to_ascii_lowercase();
    if let Some(error) = session.error.as_deref().filter(|e| !e.is_empty()) {
        return SessionVerdict::Refused(format!("session {} is in error: {error}", session.session_id));
    }
    if status.contains("unprocessable") || status.contains("error") {
        return SessionVerdict::Refused(format!("session {} is {}", session.session_id, session.status));
    }
    let linked_to = session.deployment.as_ref().map(|d| d.request_id.as_str());
    if let (Some(expected), Some(linked_to)) = (expected, linked_to)
        && expected != linked_to
    {
        return SessionVerdict::Refused(format!(
            "session {} linked to deployment {linked_to}, not {expected}",
            session.session_id
        ));
    }
    if session.ready && session.linked && linked_to.is_some() { SessionVerdict::Ready } else { SessionVerdict::Waiting }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(json: serde_json::Value) -> SessionGet {
        serde_json::from_value(json).expect("a SessionGet")
    }

    fn base(status: &str, ready: bool, linked: bool) -> serde_json::Value {
        serde_json::json!({"session_id": "a1cb46bc7f15-S", "status": status, "ready": ready, "linked": linked,
            "kind": "Seat", "user_count": 1, "app_version": 55039, "create_time": "2024-10-09 14:03:24.975285",
            "elapsed": 0})
    }

    fn linked(request_id: &str, ready: bool) -> SessionGet {
        let mut body = base(if ready { "Ready" } else { "Linked" }, ready, true);
        body["deployment"] = serde_json::json!({"request_id": request_id, "public_ip": "172.235.165.125",
            "status": "Status.READY", "ready": ready, "whitelisting_active": false,
            "fqdn": format!("{request_id}.pr.edgegap.net"), "ports": {}});
        session(body)
    }

    #[test]
    fn a_session_is_ready_only_when_linked_to_the_expected_ready_deployment() {
        assert_eq!(
            judge_session(&session(base("Seeking", false, false)), Some("835d0d69f2fc")),
            SessionVerdict::Waiting
        );
        assert_eq!(judge_session(&linked("835d0d69f2fc", false), Some("835d0d69f2fc")), SessionVerdict::Waiting);
        assert_eq!(judge_session(&linked("835d0d69f2fc", true), Some("835d0d69f2fc")), SessionVerdict::Ready);
        assert!(matches!(
            judge_session(&linked("000000000000", true), Some("835d0d69f2fc")),
            SessionVerdict::Refused(detail) if detail.contains("not 835d0d69f2fc")
        ));
    }

    #[test]
    fn unprocessable_and_errored_sessions_are_refused_with_their_detail() {
        assert!(matches!(
            judge_session(&session(base("Unprocessable", false, false)), None),
            SessionVerdict::Refused(detail) if detail.contains("Unprocessable")
        ));
        let mut errored = base("Error", false, true);
        errored["error"] = serde_json::json!("deployment terminated");
        assert!(matches!(
            judge_session(&session(errored), None),
            SessionVerdict::Refused(detail) if detail.contains("deployment terminated")
        ));
    }
}
