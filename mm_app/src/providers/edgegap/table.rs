//! The provider's book of deployments: server id → Edgegap request id and stage, shared by
//! the trait methods (called on the Bevy main thread, never blocking) and the worker threads.
//! Nothing here does I/O; locks are held only to read or write an entry.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::mpsc::SyncSender;
use std::sync::{Mutex, MutexGuard};

use bevygap_shared::naming::ServerId;

use crate::providers::ParkedStop;

/// Where one server's deployment is in its life, as far as the provider knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// `POST /v2/deployments` is in flight.
    Creating,
    /// Accepted; status read with backoff until READY.
    Deploying,
    /// READY; watched at a slow pace.
    Ready,
    /// Being stopped (or retried).
    Stopping,
    /// Stopping failed every attempt; retried slowly, shown to operators.
    Parked { error: String, attempts: u32 },
    /// The create answer was lost: looking for the deployment by its tag.
    Searching,
    /// Edgegap accepted the stop; following it to TERMINATED.
    StopAccepted,
}

struct Entry {
    request_id: Option<String>,
    stage: Stage,
    stop_requested: bool,
    /// Cuts the worker's current wait short (capacity 1: repeated wakes collapse).
    wake: SyncSender<()>,
}

/// How many finished servers the table remembers (see [`Table::handled`]).
const REMEMBERED: usize = 4096;
/// How many webhook hints for not-yet-recorded deployments are kept.
const EARLY_HINTS: usize = 64;

/// Every deployment the provider is responsible for, and the most recent ones it was.
#[derive(Default)]
pub struct Table {
    entries: Mutex<HashMap<ServerId, Entry>>,
    finished: Mutex<Finished>,
    /// Request ids webhooks named before their create's answer was recorded.
    early_hints: Mutex<VecDeque<String>>,
}

/// A bounded memory of servers whose deployments this provider already saw end.
#[derive(Default)]
struct Finished {
    order: VecDeque<ServerId>,
    ids: HashSet<ServerId>,
}

impl Table {
    fn lock(&self) -> MutexGuard<'_, HashMap<ServerId, Entry>> {
        // Entries are plain data updated in one statement each: still consistent after a
        // panic elsewhere.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a server whose create is about to be sent.
    pub fn insert(&self, server_id: ServerId, wake: SyncSender<()>) {
        self.lock().insert(server_id, Entry { request_id: None, stage: Stage::Creating, stop_requested: false, wake });
    }

    /// Marks a server to be stopped and wakes its worker; false if the provider does not know it.
    pub fn request_stop(&self, server_id: &ServerId) -> bool {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(server_id) else { return false };
        entry.stop_requested = true;
        let _ = entry.wake.try_send(());
        true
    }

    /// Marks every server to be stopped (shutdown).
    pub fn request_stop_all(&self) {
        for entry in self.lock().values_mut() {
            entry.stop_requested = true;
            let _ = entry.wake.try_send(());
        }
    }

    /// Wakes the worker following the deployment `request_id` (a webhook named it). A hint
    /// for a deployment no worker follows yet (Edgegap may call before the create's answer
    /// was recorded) is kept a little, and wakes the worker when the id is recorded.
    pub fn wake_request(&self, request_id: &str) -> bool {
        let entries = self.lock();
        if let Some(entry) = entries.values().find(|e| e.request_id.as_deref() == Some(request_id)) {
            let _ = entry.wake.try_send(());
            return true;
        }
        let mut early = self.early_hints.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        early.push_back(request_id.to_string());
        while early.len() > EARLY_HINTS {
            early.pop_front();
        }
        false
    }

    /// Whether someone asked for `server_id` to stop.
    pub fn stop_requested(&self, server_id: &ServerId) -> bool {
        self.lock().get(server_id).is_some_and(|e| e.stop_requested)
    }

    /// Records the deployment's request id (waking its worker if a webhook already named it).
    pub fn set_request_id(&self, server_id: &ServerId, request_id: &str) {
        if let Some(entry) = self.lock().get_mut(server_id) {
            entry.request_id = Some(request_id.to_string());
            let mut early = self.early_hints.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(at) = early.iter().position(|hinted| hinted == request_id) {
                early.remove(at);
                let _ = entry.wake.try_send(());
            }
        }
    }

    /// Moves a server to `stage`.
    pub fn set_stage(&self, server_id: &ServerId, stage: Stage) {
        if let Some(entry) = self.lock().get_mut(server_id) {
            entry.stage = stage;
        }
    }

    /// Forgets a server (its deployment is gone, or never existed), remembering that it was
    /// handled here.
    pub fn remove(&self, server_id: &ServerId) {
        self.lock().remove(server_id);
        let mut finished = self.finished.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if finished.ids.insert(server_id.clone()) {
            finished.order.push_back(server_id.clone());
        }
        while finished.order.len() > REMEMBERED {
            if let Some(oldest) = finished.order.pop_front() {
                finished.ids.remove(&oldest);
            }
        }
    }

    /// Whether this provider runs `server_id` now or saw it end recently: if not, it was
    /// started by another matchmaker process (one that ran before a restart) and can only be
    /// found by its tag.
    pub fn handled(&self, server_id: &ServerId) -> bool {
        self.lock().contains_key(server_id)
            || self.finished.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).ids.contains(server_id)
    }

    /// The request id of a server, once known.
    pub fn request_id(&self, server_id: &ServerId) -> Option<String> {
        self.lock().get(server_id).and_then(|e| e.request_id.clone())
    }

    /// Servers whose deployment may still run and whose stop Edgegap has not accepted yet.
    pub fn running(&self) -> Vec<ServerId> {
        self.lock().iter().filter(|(_, e)| e.stage != Stage::StopAccepted).map(|(id, _)| id.clone()).collect()
    }

    /// Stops that kept failing.
    pub fn parked(&self) -> Vec<ParkedStop> {
        let mut parked: Vec<ParkedStop> = self
            .lock()
            .iter()
            .filter_map(|(id, e)| match &e.stage {
                Stage::Parked { error, attempts } => Some(ParkedStop {
                    server_id: id.clone(),
                    external_id: e.request_id.clone().unwrap_or_default(),
                    error: error.clone(),
                    attempts: *attempts,
                }),
                _ => None,
            })
            .collect();
        parked.sort_by(|a, b| a.server_id.as_str().cmp(b.server_id.as_str()));
        parked
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use super::*;

    fn id(n: u8) -> ServerId {
        ServerId::new(format!("edgegap-{n:016x}")).expect("id")
    }

    #[test]
    fn running_excludes_accepted_stops_and_parked_stops_are_listed() {
        let table = Table::default();
        let (tx, rx) = sync_channel(1);
        table.insert(id(1), tx.clone());
        table.insert(id(2), tx.clone());
        table.insert(id(3), tx);
        table.set_request_id(&id(2), "a1b2c3d4e5f6");
        table.set_stage(&id(2), Stage::Parked { error: "Edgegap server error 500".into(), attempts: 4 });
        table.set_stage(&id(3), Stage::StopAccepted);
        let mut running = table.running();
        running.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(running, vec![id(1), id(2)]);
        let parked = table.parked();
        assert_eq!(parked.len(), 1);
        assert_eq!((parked[0].external_id.as_str(), parked[0].attempts), ("a1b2c3d4e5f6", 4));

        assert!(table.request_stop(&id(1)) && table.request_stop(&id(2)), "wakes collapse instead of blocking");
        assert!(table.stop_requested(&id(1)) && !table.stop_requested(&id(3)));
        assert!(rx.try_recv().is_ok() && rx.try_recv().is_err());
        assert!(!table.wake_request("0000000000ee"), "no deployment has that id yet");
        table.set_request_id(&id(1), "0000000000ee");
        assert!(rx.try_recv().is_ok(), "the early webhook wakes the worker once its id is recorded");
        assert!(table.wake_request("0000000000ee") && rx.try_recv().is_ok());
        table.remove(&id(1));
        assert!(!table.request_stop(&id(1)));
        assert!(table.handled(&id(1)) && table.handled(&id(2)) && !table.handled(&id(9)));
    }
}
