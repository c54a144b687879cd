//! The one way async work reaches the ECS, on both sides (matchmaker and game server): an
//! [`Inbox`] is a channel drained by ordinary systems (which run in parallel, unlike exclusive
//! main-thread callbacks), and every send wakes the app through its [`AppWaker`] so an
//! event-driven runner handles the message at once instead of at its next timer tick.
//!
//! ```
//! use bevy::prelude::*;
//! use bevygap_shared::inbox::{add_inbox, Inbox};
//!
//! #[derive(Debug, PartialEq)]
//! struct Fetched(u32);
//!
//! let mut app = App::new();
//! add_inbox::<Fetched>(&mut app);
//! let sender = app.world().resource::<Inbox<Fetched>>().sender();
//! std::thread::spawn(move || sender.send(Fetched(7))).join().unwrap();
//! let got: Vec<_> = app.world_mut().resource_mut::<Inbox<Fetched>>().drain().collect();
//! assert_eq!(got, vec![Fetched(7)]);
//! ```

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bevy::prelude::*;
use tokio::sync::mpsc;

/// Wakes an app that sleeps between ticks; cloned into every async task and HTTP handler that
/// hands work to the ECS. Apps that tick at a fixed rate can ignore it.
#[derive(Clone, Default, Resource)]
pub struct AppWaker(Arc<(Mutex<bool>, Condvar)>);

impl AppWaker {
    /// Asks for another tick as soon as the current one ends.
    pub fn wake(&self) {
        let (flag, cvar) = &*self.0;
        if let Ok(mut pending) = flag.lock() {
            *pending = true;
            cvar.notify_one();
        }
    }

    /// Sleeps until woken or `timeout` passes; returns whether it was woken (a wake is
    /// consumed by one wait).
    pub fn wait(&self, timeout: Duration) -> bool {
        let (flag, cvar) = &*self.0;
        let Ok(guard) = flag.lock() else { return false };
        let Ok((mut pending, _)) = cvar.wait_timeout_while(guard, timeout, |pending| !*pending) else {
            return false;
        };
        std::mem::replace(&mut *pending, false)
    }
}

/// The receiving end, drained each tick by the system that owns `T`.
#[derive(Resource)]
pub struct Inbox<T: Send + 'static> {
    rx: mpsc::UnboundedReceiver<T>,
    tx: InboxSender<T>,
}

/// The sending end, for async tasks and threads: sending also wakes the app.
#[derive(Resource)]
pub struct InboxSender<T> {
    tx: mpsc::UnboundedSender<T>,
    waker: AppWaker,
}

impl<T> Clone for InboxSender<T> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone(), waker: self.waker.clone() }
    }
}

impl<T: Send + 'static> InboxSender<T> {
    /// Delivers `msg`; returns false (and drops it) if the app has shut down.
    pub fn send(&self, msg: T) -> bool {
        let sent = self.tx.send(msg).is_ok();
        if sent {
            self.waker.wake();
        }
        sent
    }
}

impl<T: Send + 'static> Inbox<T> {
    /// A new inbox whose senders wake `waker`.
    pub fn new(waker: AppWaker) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self { rx, tx: InboxSender { tx, waker } }
    }

    /// A sender for async tasks.
    pub fn sender(&self) -> InboxSender<T> {
        self.tx.clone()
    }

    /// Everything received so far.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(move || self.rx.try_recv().ok())
    }
}

/// Adds an `Inbox<T>` resource to the app, sharing the app's [`AppWaker`] (inserted if absent).
pub fn add_inbox<T: Send + 'static>(app: &mut App) {
    let waker = app.world_mut().get_resource_or_insert_with(AppWaker::default).clone();
    app.insert_resource(Inbox::<T>::new(waker));
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn wake_ends_the_wait_early_and_is_consumed_once() {
        let waker = AppWaker::default();
        let other = waker.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.wake();
        });
        let start = Instant::now();
        assert!(waker.wait(Duration::from_secs(10)));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!waker.wait(Duration::from_millis(10)), "a wake is consumed once");
    }

    #[test]
    fn a_send_wakes_and_a_closed_inbox_refuses() {
        let waker = AppWaker::default();
        let inbox = Inbox::<u8>::new(waker.clone());
        let sender = inbox.sender();
        assert!(sender.send(1));
        assert!(waker.wait(Duration::from_millis(10)), "sending woke the app");
        drop(inbox);
        assert!(!sender.send(2), "the app is gone");
    }
}
