//! The namespace lease: who owns it, decided by compare-and-set on one key of the `leases`
//! bucket, and how long this replica may act on it. The decisions are pure
//! ([`LeaseTerms`], [`after_renewal`]); [`hold_lease`] is the task that talks to NATS.
//!
//! 1. **Acquire.** A standby creates the `owner` key (a create fails while it exists) every
//!    half second. The bucket's records live `ttl` past their last write, so a lease its
//!    owner stopped renewing vanishes on the NATS servers' clock alone.
//! 2. **Renew.** The owner rewrites the key every second, conditional on the revision it
//!    holds. Its lease is valid until `sent + ttl - margin` on its own monotonic clock:
//!    NATS stamps the renewal after it was sent, so NATS expires it later than the owner stops
//!    trusting it, by at least `margin`.
//! 3. **Lose.** A renewal refused for its revision (someone else holds the key, or it lapsed)
//!    or no renewal confirmed before the local validity ends loses the lease for good: this
//!    process never acts as owner again (it exits; a supervisor starts it as a standby).
//! 4. **Release.** An owner shutting down deletes the key (if its revision is still the
//!    current one), so a standby takes over at once instead of after `ttl`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{CreateErrorKind, Store, UpdateErrorKind};
use futures::TryStreamExt;

use super::ReplicaName;

/// The key holding the namespace lease; its value is the owner's replica name.
pub const OWNER_KEY: &str = "owner";
/// Prefix of the presence keys, `replica.<name>`, each rewritten by its replica every second.
pub const PRESENCE_PREFIX: &str = "replica.";

/// How long a lease lasts and how it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTerms {
    /// How long the lease lives in NATS after its last renewal.
    pub ttl: Duration,
    /// How often the owner renews it (and every replica refreshes its presence).
    pub renew_every: Duration,
    /// How much sooner than NATS the owner stops trusting an unrenewed lease.
    pub margin: Duration,
}

impl LeaseTerms {
    /// Terms for a lease of `ttl` (at least two seconds): renewed every second, distrusted a
    /// quarter of its life (at least half a second) before NATS lets it lapse.
    pub fn new(ttl: Duration) -> Self {
        let ttl = ttl.max(Duration::from_secs(2));
        Self {
            ttl,
            renew_every: Duration::from_secs(1).min(ttl / 3),
            margin: (ttl / 4).max(Duration::from_millis(500)),
        }
    }

    /// Until when a lease whose renewal was sent at `sent` may be acted on.
    pub fn valid_until(&self, sent: Instant) -> Instant {
        sent + self.ttl.saturating_sub(self.margin)
    }

    /// How often a standby tries to take the lease.
    pub fn acquire_every(&self) -> Duration {
        self.renew_every / 2
    }
}

/// What one renewal attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// NATS took it: the lease now has this revision.
    Renewed { revision: u64 },
    /// NATS refused it for its revision: the lease lapsed or another replica holds it.
    Refused,
    /// No answer (NATS unreachable, a timeout): try again while the lease is still valid.
    Failed,
}

/// Where the lease stands after a renewal attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStep {
    /// Still the owner, at this revision, acting until `valid_until`.
    Hold { revision: u64, valid_until: Instant },
    /// Lost: never act on it again.
    Lost,
}

/// Judges a renewal that was sent at `sent`, answered (or not) by `now`, while the lease was
/// held at `revision` and valid until `valid_until`.
pub fn after_renewal(
    terms: &LeaseTerms,
    revision: u64,
    valid_until: Instant,
    sent: Instant,
    now: Instant,
    renewal: Renewal,
) -> LeaseStep {
    match renewal {
        Renewal::Renewed { revision } => LeaseStep::Hold { revision, valid_until: terms.valid_until(sent) },
        Renewal::Refused => LeaseStep::Lost,
        Renewal::Failed if now < valid_until => LeaseStep::Hold { revision, valid_until },
        Renewal::Failed => LeaseStep::Lost,
    }
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

    fn set_view(&self, view: LeaseView) {
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

/// Takes and keeps the lease for `me` until it is lost; `acquired` runs once, when this
/// replica first becomes the owner. Presence is refreshed all along.
pub async fn hold_lease(
    store: Store,
    me: ReplicaName,
    terms: LeaseTerms,
    hold: Arc<LeaseHold>,
    acquired: impl FnOnce() + Send + 'static,
) {
    let mut revision = loop {
        refresh_view(&store, &me, &hold).await;
        let sent = Instant::now();
        match store.create(OWNER_KEY, me.as_str().to_string().into()).await {
            Ok(revision) => {
                hold.hold(revision, terms.valid_until(sent));
                tracing::info!(replica = %me, revision, "this replica owns the namespace now");
                break revision;
            }
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {}
            Err(e) => tracing::warn!("cannot try to take the namespace lease: {e}"),
        }
        tokio::time::sleep(terms.acquire_every()).await;
    };
    refresh_view(&store, &me, &hold).await;
    acquired();
    let mut valid_until = terms.valid_until(Instant::now());
    loop {
        tokio::time::sleep(terms.renew_every).await;
        if hold.is_lost() {
            return; // released on shutdown
        }
        let sent = Instant::now();
        let update = store.update(OWNER_KEY, me.as_str().to_string().into(), revision);
        let renewal = match tokio::time::timeout(terms.renew_every, update).await {
            Ok(Ok(revision)) => Renewal::Renewed { revision },
            Ok(Err(e)) if e.kind() == UpdateErrorKind::WrongLastRevision => Renewal::Refused,
            Ok(Err(e)) => {
                tracing::warn!("cannot renew the namespace lease: {e}");
                Renewal::Failed
            }
            Err(_) => Renewal::Failed,
        };
        match after_renewal(&terms, revision, valid_until, sent, Instant::now(), renewal) {
            LeaseStep::Hold { revision: held, valid_until: until } => {
                (revision, valid_until) = (held, until);
                hold.hold(revision, valid_until);
            }
            LeaseStep::Lost => {
                hold.lose();
                tracing::error!(replica = %me, "this replica lost the namespace lease; it acts no more");
                return;
            }
        }
        refresh_view(&store, &me, &hold).await;
    }
}

/// Writes this replica's presence, then reads the owner and every present replica.
async fn refresh_view(store: &Store, me: &ReplicaName, hold: &LeaseHold) {
    let key = format!("{PRESENCE_PREFIX}{me}");
    if let Err(e) = store.put(&key, me.as_str().to_string().into()).await {
        tracing::debug!("cannot write this replica's presence: {e}");
        return;
    }
    let owner = match store.get(OWNER_KEY).await {
        Ok(value) => value.map(|v| String::from_utf8_lossy(&v).into_owned()),
        Err(_) => return,
    };
    let keys: Result<Vec<String>, _> = match store.keys().await {
        Ok(keys) => keys.try_collect().await,
        Err(_) => return,
    };
    let Ok(keys) = keys else { return };
    let mut present: Vec<String> =
        keys.iter().filter_map(|k| k.strip_prefix(PRESENCE_PREFIX)).map(str::to_string).collect();
    present.sort();
    hold.set_view(LeaseView { owner, present });
}

/// Gives the lease back (and this replica's presence) on shutdown, so a standby takes over at
/// once. Only the revision this replica holds is deleted.
pub async fn release(store: &Store, me: &ReplicaName, hold: &LeaseHold) {
    let revision = hold.revision();
    hold.lose();
    let presence = format!("{PRESENCE_PREFIX}{me}");
    let _ = tokio::time::timeout(Duration::from_secs(2), store.delete(&presence)).await;
    if let Some(revision) = revision {
        match tokio::time::timeout(Duration::from_secs(2), store.delete_expect_revision(OWNER_KEY, Some(revision)))
            .await
        {
            Ok(Ok(())) => tracing::info!(replica = %me, "released the namespace lease"),
            Ok(Err(e)) => tracing::warn!("the namespace lease was not released (it lapses by itself): {e}"),
            Err(_) => tracing::warn!("the namespace lease was not released in time (it lapses by itself)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_distrust_the_lease_before_nats_lets_it_lapse() {
        let terms = LeaseTerms::new(Duration::from_secs(5));
        assert_eq!(terms.renew_every, Duration::from_secs(1));
        let sent = Instant::now();
        let until = terms.valid_until(sent);
        assert!(until < sent + terms.ttl && until > sent + terms.renew_every * 2, "{terms:?}");
        let short = LeaseTerms::new(Duration::from_millis(100));
        assert_eq!(short.ttl, Duration::from_secs(2), "at least two seconds");
        assert!(short.valid_until(sent) > sent + short.renew_every);
    }

    #[test]
    fn a_renewal_extends_a_refusal_loses_and_silence_holds_only_until_the_lease_runs_out() {
        let terms = LeaseTerms::new(Duration::from_secs(5));
        let start = Instant::now();
        let until = terms.valid_until(start);
        let later = start + Duration::from_secs(1);
        assert_eq!(
            after_renewal(&terms, 7, until, later, later, Renewal::Renewed { revision: 8 }),
            LeaseStep::Hold { revision: 8, valid_until: terms.valid_until(later) }
        );
        assert_eq!(after_renewal(&terms, 7, until, later, later, Renewal::Refused), LeaseStep::Lost);
        assert_eq!(
            after_renewal(&terms, 7, until, later, later, Renewal::Failed),
            LeaseStep::Hold { revision: 7, valid_until: until }
        );
        let past = until + Duration::from_millis(1);
        assert_eq!(after_renewal(&terms, 7, until, past, past, Renewal::Failed), LeaseStep::Lost);
    }

    #[test]
    fn a_hold_acts_only_while_valid_and_never_after_it_is_lost() {
        let hold = LeaseHold::new();
        assert!(!hold.acting(), "not the owner before it holds the lease");
        hold.hold(3, Instant::now() + Duration::from_secs(60));
        assert!(hold.acting() && hold.revision() == Some(3));
        hold.hold(4, Instant::now() - Duration::from_millis(1));
        assert!(!hold.acting(), "a validity in the past (a paused process) does not act");
        hold.lose();
        hold.hold(5, Instant::now() + Duration::from_secs(60));
        assert!(!hold.acting() && hold.is_lost() && hold.revision().is_none(), "lost for good");
        assert!(LeaseHold::sole().acting());
    }
}
