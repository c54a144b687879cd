//! The lease fence: whether this replica may act as the namespace's owner at this instant.
//! Everything that must not be done twice checks it: the matchmaker's system sets (gated by
//! [`acting`], see [`crate::ownership::OwnershipPlugin`]), the NATS bridge right before each
//! write, and the call router deciding whether to serve a call here or forward it. The lease
//! task in [`crate::ownership`] keeps the [`LeaseHold`] up to date; this module only reads
//! and records it, with no I/O, so the seams below the domain can depend on it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bevy::prelude::*;

/// A replica's name: 1–64 of `A-Z a-z 0-9 _ -` (it is part of a KV key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReplicaName(String);

/// A replica name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaNameError {
    #[error("a replica name must be 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'")]
    Invalid,
}

impl ReplicaName {
    pub fn new(name: impl Into<String>) -> Result<Self, ReplicaNameError> {
        let name = name.into();
        let valid =
            (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if valid { Ok(Self(name)) } else { Err(ReplicaNameError::Invalid) }
    }

    /// `<host>-<pid>`: unique among replicas on one host, readable in the admin view.
    pub fn generated() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let host: String =
            host.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(40).collect::<String>();
        let host = if host.is_empty() { "matchmaker".to_string() } else { host };
        Self(format!("{host}-{}", std::process::id()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ReplicaName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// This replica and its hold on the namespace lease.
#[derive(Resource, Clone, Debug)]
pub struct Ownership {
    replica: ReplicaName,
    hold: Arc<LeaseHold>,
}

impl Ownership {
    /// A replica whose `hold` is kept by the lease task.
    pub fn new(replica: ReplicaName, hold: Arc<LeaseHold>) -> Self {
        Self { replica, hold }
    }

    /// The one matchmaker of a test with no NATS: always the owner.
    pub fn sole() -> Self {
        Self::new(ReplicaName("sole".into()), Arc::new(LeaseHold::sole()))
    }

    /// Whether this replica may act as owner now.
    pub fn acting(&self) -> bool {
        self.hold.acting()
    }

    pub fn replica(&self) -> &ReplicaName {
        &self.replica
    }

    pub fn hold(&self) -> &Arc<LeaseHold> {
        &self.hold
    }

    /// The owner (this replica while it acts) and every replica present.
    pub fn view(&self) -> LeaseView {
        let mut view = self.hold.view();
        if self.acting() {
            view.owner = Some(self.replica.to_string());
        }
        view
    }

    /// Whether this replica, shutting down, should stop the servers it started: only when it
    /// still owns the namespace and no other replica is there to take them over.
    pub fn stops_servers_on_exit(&self) -> bool {
        let others = self.hold.view().present.iter().any(|name| name != self.replica.as_str());
        self.acting() && !others
    }
}

/// Run condition: this replica owns the namespace (always true without an [`Ownership`]).
pub fn acting(ownership: Option<Res<Ownership>>) -> bool {
    ownership.is_none_or(|o| o.acting())
}

/// This process's view of the lease, shared by the ECS (which acts only while it holds) and
/// the tasks that write to NATS or call the provider (which check it again right before).
#[derive(Debug)]
pub struct LeaseHold {
    /// Acts always: a matchmaker with no lease (in-memory tests).
    sole: bool,
    origin: Instant,
    /// Nanoseconds after `origin` until which the lease may be acted on; 0 while not held.
    valid_until: AtomicU64,
    /// The revision held (0: none).
    revision: AtomicU64,
    lost: AtomicBool,
    /// The owner as last read, and every replica present.
    view: Mutex<LeaseView>,
}

/// Who owns the namespace and who is present, as this replica last saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseView {
    pub owner: Option<String>,
    pub present: Vec<String>,
}

impl LeaseHold {
    /// A hold that is not yet the owner.
    pub fn new() -> Self {
        Self {
            sole: false,
            origin: Instant::now(),
            valid_until: AtomicU64::new(0),
            revision: AtomicU64::new(0),
            lost: AtomicBool::new(false),
            view: Mutex::new(LeaseView::default()),
        }
    }

    /// A hold that always acts: the one matchmaker of an in-memory test.
    pub fn sole() -> Self {
        Self { sole: true, ..Self::new() }
    }

    /// Whether this replica may act as owner at this instant.
    pub fn acting(&self) -> bool {
        if self.sole {
            return true;
        }
        let until = self.valid_until.load(Ordering::SeqCst);
        !self.lost.load(Ordering::SeqCst) && until > 0 && self.nanos(Instant::now()) < until
    }

    /// Whether the lease was held and lost (or released): this process acts no more.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The revision held, if any.
    pub fn revision(&self) -> Option<u64> {
        let revision = self.revision.load(Ordering::SeqCst);
        (revision > 0 && !self.is_lost()).then_some(revision)
    }

    /// The owner and the replicas present, as last read.
    pub fn view(&self) -> LeaseView {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Records a held lease.
    pub fn hold(&self, revision: u64, valid_until: Instant) {
        if self.is_lost() {
            return;
        }
        self.revision.store(revision, Ordering::SeqCst);
        self.valid_until.store(self.nanos(valid_until).max(1), Ordering::SeqCst);
    }

    /// Gives the lease up for good.
    pub fn lose(&self) {
        self.lost.store(true, Ordering::SeqCst);
        self.valid_until.store(0, Ordering::SeqCst);
    }

    pub(crate) fn set_view(&self, view: LeaseView) {
        if let Ok(mut current) = self.view.lock() {
            *current = view;
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }
}

impl Default for LeaseHold {
    fn default() -> Self {
        Self::new()
    }
}
