//! Several matchmaker replicas on one namespace: one owner acts, every replica serves.
//!
//! # Design: one lease per namespace
//!
//! Work that must not be done twice (placing a join on a server's seats, launching or
//! stopping a server, issuing and expiring tokens, deleting sessions) is done by the replica
//! holding the namespace lease, a compare-and-set key in the `leases` JetStream KV bucket
//! ([`lease`]). Every replica serves both endpoints; a replica that is not the owner (a
//! standby) forwards each call to the owner over NATS request/reply and streams its answers
//! back ([`forward`]). The owner's whole matchmaker ECS runs ([`acting`] gates every
//! [`MatchmakerSystems`](crate::schedule::MatchmakerSystems) set); a standby's stays empty.
//!
//! Why the whole namespace rather than one lease per game: the limits that keep a namespace
//! safe are namespace-wide (`max_servers`, `max_waiting`, per-address caps), and one owner
//! keeps them in one place with no split to negotiate; the deciding work is microseconds per
//! join, while what costs (HTTP, TLS at the proxy, streams, policy) is shared by every replica.
//! What several replicas buy is availability: a take-over within the lease's life.
//!
//! # Taking over
//!
//! A new owner (first start, SIGKILL of the old one, a rolling restart, a lease lapsing)
//! starts exactly as a restarted matchmaker does: the bridge begins watching the `servers`
//! and `players` buckets with their history and reads every grant and session
//! (`tokens/restore.rs`), placement waits for that read, and the provider sweep adopts the
//! servers earlier owners started. Unclaimed tokens still expire and free their seats, empty
//! servers are still stopped. Joins in flight are resumed by their request id: a standby
//! that forwarded one sends it again to the new owner, and a player whose own connection
//! broke retries with the same id.
//!
//! # Fencing
//!
//! The owner trusts its lease only until `margin` before a standby may take it over, on its
//! monotonic clock ([`lease::LeaseTerms`]); NATS writes are checked against it again right
//! before they are made (`nats_bridge`). A paused owner (SIGSTOP, a long GC-like stall, a
//! partition) wakes up past its validity and acts no more. If its renewal at the revision it
//! held then succeeds, nobody owned the namespace meanwhile and it acts again (a NATS node
//! lost, a leader election); if it is refused, the lease is lost for good and the process exits
//! so a supervisor restarts it as a standby.
//! What is not fenced: a write already handed to the NATS client when the pause began.
//!
//! # Leaving
//!
//! An owner shutting down while another replica is present releases the lease (a standby
//! takes over within a second) and leaves its servers running for the next owner; alone, it
//! stops them, as a single matchmaker always did.

pub mod forward;
pub mod lease;

use crate::calls::{CallRouter, JoinDesk};
use crate::schedule::MatchmakerSystems;
use bevy::prelude::*;
use bevy_tokio_tasks::TokioTasksRuntime;

pub use crate::fence::{LeaseHold, LeaseView, Ownership, ReplicaName, ReplicaNameError, acting};
pub use forward::Forwarding;
pub use lease::LeaseTerms;

/// The lease bucket, provisioned at start-up.
#[derive(Resource, Clone)]
pub struct LeaseStore(pub async_nats::jetstream::kv::Store);

/// Takes part in the namespace lease: keeps it (or waits for it) on the tokio runtime, answers
/// forwarded calls while it owns, exits the app once the lease is lost, and releases it on
/// shutdown. Needs [`LeaseStore`], [`Ownership`] and [`Forwarding`] resources (see
/// `app::build_app`).
pub struct OwnershipPlugin {
    pub terms: LeaseTerms,
}

impl Plugin for OwnershipPlugin {
    fn build(&self, app: &mut App) {
        // Only the replica owning the namespace acts.
        for set in MatchmakerSystems::ALL {
            app.configure_sets(Update, set.run_if(acting));
        }
        app.insert_resource(Terms(self.terms))
            .add_systems(PostStartup, start_lease)
            .add_systems(First, exit_when_lost)
            .add_systems(Last, release_on_exit.run_if(on_message::<AppExit>).after(crate::providers::stop_all_on_exit));
    }
}

#[derive(Resource, Clone, Copy)]
struct Terms(LeaseTerms);

/// Exit code of a replica that lost the lease (a supervisor restarts it as a standby).
pub const LOST_LEASE_EXIT_CODE: u8 = 3;

fn start_lease(
    store: Res<LeaseStore>,
    ownership: Res<Ownership>,
    forwarding: Res<Forwarding>,
    (brp, desk, waker): (Res<bevy_remote::BrpSender>, Res<JoinDesk>, Res<bevygap_shared::inbox::AppWaker>),
    joins: Res<crate::joins::JoinSettings>,
    terms: Res<Terms>,
    rt: Res<TokioTasksRuntime>,
) {
    let router = CallRouter::new((**brp).clone(), desk.clone(), waker.clone(), None);
    let deadline = joins.call_deadline();
    let handle = rt.runtime().handle().clone();
    let serve = serve_after_acquired(handle.clone(), router, forwarding.clone(), deadline, waker.clone());
    handle.spawn(lease::hold_lease(
        store.0.clone(),
        ownership.replica().clone(),
        terms.0,
        ownership.hold().clone(),
        serve,
    ));
}

/// What to do once the lease is first acquired: answer forwarded calls, wake the app.
fn serve_after_acquired(
    handle: tokio::runtime::Handle,
    router: CallRouter,
    forwarding: Forwarding,
    deadline: std::time::Duration,
    waker: bevygap_shared::inbox::AppWaker,
) -> impl FnOnce() + Send + 'static {
    move || {
        handle.spawn(forward::serve_forwarded_calls(router, forwarding, deadline));
        waker.wake();
    }
}

fn exit_when_lost(ownership: Res<Ownership>, mut exit: MessageWriter<AppExit>, mut done: Local<bool>) {
    if ownership.hold().is_lost() && !*done {
        *done = true;
        tracing::error!("exiting: another replica owns the namespace now");
        exit.write(AppExit::from_code(LOST_LEASE_EXIT_CODE));
    }
}

fn release_on_exit(store: Res<LeaseStore>, ownership: Res<Ownership>, rt: Res<TokioTasksRuntime>) {
    let (store, me, hold) = (store.0.clone(), ownership.replica().clone(), ownership.hold().clone());
    rt.runtime().block_on(lease::release(&store, &me, &hold));
}
