//! Results of async work (NATS watches, KV writes, provider calls) come back into the world
//! through an [`Inbox`]: a channel drained by ordinary systems, which run in parallel, unlike
//! exclusive main-thread callbacks.

use bevy::prelude::*;
use tokio::sync::mpsc;

use crate::wake::AppWaker;

/// The receiving end, drained each tick by the system that owns `T`.
#[derive(Resource)]
pub struct Inbox<T: Send + 'static> {
    rx: mpsc::UnboundedReceiver<T>,
    tx: InboxSender<T>,
}

/// The sending end: sending also wakes the app so the message is handled at once.
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
    /// Delivers `msg`; dropped silently if the app has shut down.
    pub fn send(&self, msg: T) {
        if self.tx.send(msg).is_ok() {
            self.waker.wake();
        }
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

/// Adds an `Inbox<T>` resource to the app.
pub fn add_inbox<T: Send + 'static>(app: &mut App) {
    let waker = app.world_mut().get_resource_or_insert_with(AppWaker::default).clone();
    app.insert_resource(Inbox::<T>::new(waker));
}
