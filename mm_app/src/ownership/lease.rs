//! The namespace lease: who owns it, decided by compare-and-set on one key of the `leases`
//! bucket, and how long this replica may act on it. The decisions are pure
//! ([`LeaseTerms`], [`after_renewal`]); [`hold_lease`] is the task that talks to NATS.
//!
//! 1. **Acquire.** A standby reads the `owner` key every half second. Absent (never taken, or
//!    released), it creates it (a create fails if another replica was quicker). Present, it
//!    notes when it first saw its revision, on its own monotonic clock; once that revision has
//!    stood unchanged for `ttl`, its owner stopped renewing, and the standby takes the key over
//!    by an update conditional on that revision (which fails if the owner renewed after all).
//!    Nothing here expires by itself: a NATS stream electing a new leader (a node lost) pauses
//!    the lease without ending it.
//! 2. **Renew.** The owner rewrites the key every second, conditional on the revision it
//!    holds. Its lease is valid until `sent + ttl - margin` on its own monotonic clock: a
//!    standby first sees a revision after it was sent, so it takes over later than the owner
//!    stops trusting it, by at least `margin`.
//! 3. **Suspend.** While renewals go unanswered (NATS unreachable, a node of the cluster lost
//!    and its streams electing a new leader), the owner keeps trying; past its local validity it
//!    stops acting. A renewal that then succeeds at the revision it held proves nobody owned the
//!    namespace in between (any other owner would have changed the revision), so it acts again
//!    on the state it has.
//! 4. **Lose.** A renewal refused for its revision (a standby took the key over)
//!    loses the lease for good: this process never acts as owner again (it exits; a
//!    supervisor starts it as a standby, which rebuilds its view from NATS).
//! 5. **Release.** An owner shutting down deletes the key (if its revision is still the
//!    current one), so a standby takes over at once instead of after `ttl`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{CreateErrorKind, Store, UpdateErrorKind};
use futures::TryStreamExt;

use crate::fence::{LeaseHold, LeaseView, ReplicaName};

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
    /// quarter of its life (at least half a second) before a standby may take it over.
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
    /// NATS refused it for its revision: another replica took the lease over.
    Refused,
    /// No answer (NATS unreachable, a timeout): try again; the lease is acted on only until
    /// its validity ends.
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

/// Judges a renewal that was sent at `sent`, while the lease was held at `revision` and valid
/// until `valid_until`. An unanswered renewal keeps the old validity, so the owner stops
/// acting once it passes but may act again if a later renewal at the same revision succeeds.
pub fn after_renewal(
    terms: &LeaseTerms,
    revision: u64,
    valid_until: Instant,
    sent: Instant,
    renewal: Renewal,
) -> LeaseStep {
    match renewal {
        Renewal::Renewed { revision } => LeaseStep::Hold { revision, valid_until: terms.valid_until(sent) },
        Renewal::Refused => LeaseStep::Lost,
        Renewal::Failed => LeaseStep::Hold { revision, valid_until },
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
    let (mut revision, mut valid_until) = acquire(&store, &me, &terms, &hold).await;
    refresh_view(&store, &me, &hold, &terms).await;
    acquired();
    loop {
        tokio::time::sleep(terms.renew_every).await;
        if hold.is_lost() {
            return; // released on shutdown
        }
        let sent = Instant::now();
        let renewal = renew(&store, &me, &terms, &mut revision).await;
        let was_acting = hold.acting();
        match after_renewal(&terms, revision, valid_until, sent, renewal) {
            LeaseStep::Hold { revision: held, valid_until: until } => {
                (revision, valid_until) = (held, until);
                hold.hold(revision, valid_until);
                match (was_acting, hold.acting()) {
                    (true, false) => {
                        tracing::warn!("the namespace lease is unconfirmed: not acting until NATS renews it")
                    }
                    (false, true) => tracing::info!("the namespace lease is confirmed again: acting"),
                    _ => {}
                }
            }
            LeaseStep::Lost => {
                hold.lose();
                tracing::error!(replica = %me, "this replica lost the namespace lease; it acts no more");
                return;
            }
        }
        refresh_view(&store, &me, &hold, &terms).await;
    }
}

/// Waits as a standby until the lease is free or lapsed, takes it, and returns its revision
/// and how long it may be trusted.
async fn acquire(store: &Store, me: &ReplicaName, terms: &LeaseTerms, hold: &LeaseHold) -> (u64, Instant) {
    let mut watch = StandbyWatch::default();
    loop {
        refresh_view(store, me, hold, terms).await;
        let sent = Instant::now();
        match try_take(store, me, terms, &mut watch, sent).await {
            Ok(revision) => {
                let valid_until = terms.valid_until(sent);
                hold.hold(revision, valid_until);
                tracing::info!(replica = %me, revision, "this replica owns the namespace now");
                return (revision, valid_until);
            }
            Err(Some(e)) => tracing::warn!("cannot try to take the namespace lease: {e}"),
            Err(None) => {}
        }
        tokio::time::sleep(terms.acquire_every()).await;
    }
}

/// One try at the `owner` key: create it when absent, take it over once its holder let it
/// lapse for a whole life, else wait. `Err(None)`: not this time; `Err(Some)`: NATS failed.
async fn try_take(
    store: &Store,
    me: &ReplicaName,
    terms: &LeaseTerms,
    watch: &mut StandbyWatch,
    sent: Instant,
) -> Result<u64, Option<String>> {
    let entry = store.entry(OWNER_KEY).await.map_err(|e| Some(e.to_string()))?;
    let seen = entry.map(|e| (e.revision, e.operation == async_nats::jetstream::kv::Operation::Put));
    match watch.judge(seen, sent, terms.ttl) {
        Acquire::Create => store
            .create(OWNER_KEY, me.as_str().to_string().into())
            .await
            .map_err(|e| (e.kind() != CreateErrorKind::AlreadyExists).then(|| e.to_string())),
        Acquire::TakeOver { revision } => {
            tracing::info!(revision, "the namespace lease was not renewed for its whole life; taking it");
            store
                .update(OWNER_KEY, me.as_str().to_string().into(), revision)
                .await
                .map_err(|e| (e.kind() != UpdateErrorKind::WrongLastRevision).then(|| e.to_string()))
        }
        Acquire::Wait => Err(None),
    }
}

/// One renewal at `revision`, bounded by the renewal interval. A refusal is checked first: an
/// earlier renewal that timed out here may have landed after all, and then `revision` moves
/// on to it.
async fn renew(store: &Store, me: &ReplicaName, terms: &LeaseTerms, revision: &mut u64) -> Renewal {
    let update = store.update(OWNER_KEY, me.as_str().to_string().into(), *revision);
    match tokio::time::timeout(terms.renew_every, update).await {
        Ok(Ok(revision)) => Renewal::Renewed { revision },
        Ok(Err(e)) if e.kind() == UpdateErrorKind::WrongLastRevision => {
            match own_late_renewal(store, me, *revision).await {
                Some(landed) => {
                    *revision = landed;
                    Renewal::Failed
                }
                None => Renewal::Refused,
            }
        }
        Ok(Err(e)) => {
            tracing::warn!("cannot renew the namespace lease: {e}");
            Renewal::Failed
        }
        Err(_) => Renewal::Failed,
    }
}

/// What a standby does about the `owner` key now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// Nobody holds it: create it.
    Create,
    /// Its revision stood unchanged for a whole lease: take it over at that revision.
    TakeOver { revision: u64 },
    /// Its owner is alive (or not yet proven dead): wait.
    Wait,
}

/// A standby's memory of the `owner` key: the revision last seen and since when.
#[derive(Debug, Clone, Copy, Default)]
pub struct StandbyWatch {
    seen: Option<(u64, Instant)>,
}

impl StandbyWatch {
    /// Judges the key as read at `now`: `(revision, present)`, or `None` if it never existed.
    /// `present` is false for a delete marker (a released lease).
    pub fn judge(&mut self, entry: Option<(u64, bool)>, now: Instant, ttl: Duration) -> Acquire {
        let Some((revision, true)) = entry else {
            self.seen = None;
            return Acquire::Create;
        };
        match self.seen {
            Some((seen, since)) if seen == revision => {
                if now.saturating_duration_since(since) >= ttl {
                    Acquire::TakeOver { revision }
                } else {
                    Acquire::Wait
                }
            }
            _ => {
                self.seen = Some((revision, now));
                Acquire::Wait
            }
        }
    }
}

/// The revision of a renewal of ours that landed after its answer was given up on: the key
/// holds our name at a later revision than `held`. Only this replica writes its name, and only
/// as an update of the revision it held, so nobody owned the namespace in between.
async fn own_late_renewal(store: &Store, me: &ReplicaName, held: u64) -> Option<u64> {
    let entry = store.entry(OWNER_KEY).await.ok()??;
    let ours = entry.operation == async_nats::jetstream::kv::Operation::Put && entry.value == me.as_str().as_bytes();
    (ours && entry.revision > held).then_some(entry.revision)
}

/// Writes this replica's presence (the wall-clock time, in Unix ms), then reads the owner and
/// every replica whose presence is fresher than a lease (a SIGKILLed replica's goes stale).
async fn refresh_view(store: &Store, me: &ReplicaName, hold: &LeaseHold, terms: &LeaseTerms) {
    let key = format!("{PRESENCE_PREFIX}{me}");
    let now = bevygap_shared::records::now_ms();
    if let Err(e) = store.put(&key, now.to_string().into()).await {
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
    let fresh_ms = u64::try_from(terms.ttl.as_millis()).unwrap_or(u64::MAX);
    let mut present = Vec::new();
    for key in keys {
        let Some(name) = key.strip_prefix(PRESENCE_PREFIX) else { continue };
        let Ok(Some(value)) = store.get(&key).await else { continue };
        let at: u64 = String::from_utf8_lossy(&value).parse().unwrap_or(0);
        if now.saturating_sub(at) <= fresh_ms {
            present.push(name.to_string());
        }
    }
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
            Ok(Err(e)) => {
                tracing::warn!("the namespace lease was not released (a standby takes it after its life): {e}")
            }
            Err(_) => {
                tracing::warn!("the namespace lease was not released in time (a standby takes it after its life)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_distrust_the_lease_before_a_standby_may_take_it() {
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
    fn a_renewal_extends_a_refusal_loses_and_silence_keeps_the_old_validity() {
        let terms = LeaseTerms::new(Duration::from_secs(5));
        let start = Instant::now();
        let until = terms.valid_until(start);
        let later = start + Duration::from_secs(1);
        assert_eq!(
            after_renewal(&terms, 7, until, later, Renewal::Renewed { revision: 8 }),
            LeaseStep::Hold { revision: 8, valid_until: terms.valid_until(later) }
        );
        assert_eq!(after_renewal(&terms, 7, until, later, Renewal::Refused), LeaseStep::Lost);
        let past = until + Duration::from_secs(3);
        assert_eq!(
            after_renewal(&terms, 7, until, past, Renewal::Failed),
            LeaseStep::Hold { revision: 7, valid_until: until },
            "unanswered: not acting past `until`, but not lost"
        );
        // NATS answers again and nobody took the key: the same revision renews, acting resumes.
        assert_eq!(
            after_renewal(&terms, 7, until, past, Renewal::Renewed { revision: 9 }),
            LeaseStep::Hold { revision: 9, valid_until: terms.valid_until(past) }
        );
    }

    #[test]
    fn a_standby_creates_a_free_lease_and_takes_over_one_unrenewed_for_its_whole_life() {
        let ttl = Duration::from_secs(5);
        let start = Instant::now();
        let mut watch = StandbyWatch::default();
        assert_eq!(watch.judge(None, start, ttl), Acquire::Create, "never taken");
        assert_eq!(watch.judge(Some((4, false)), start, ttl), Acquire::Create, "released");
        assert_eq!(watch.judge(Some((7, true)), start, ttl), Acquire::Wait, "first sight of a revision");
        assert_eq!(watch.judge(Some((7, true)), start + Duration::from_secs(4), ttl), Acquire::Wait);
        // Renewed: the clock starts again from the new revision.
        assert_eq!(watch.judge(Some((8, true)), start + Duration::from_secs(4), ttl), Acquire::Wait);
        assert_eq!(watch.judge(Some((8, true)), start + Duration::from_secs(8), ttl), Acquire::Wait);
        assert_eq!(
            watch.judge(Some((8, true)), start + Duration::from_secs(9), ttl),
            Acquire::TakeOver { revision: 8 },
            "unchanged for a whole lease"
        );
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
