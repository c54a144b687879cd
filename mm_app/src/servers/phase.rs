//! A game server's life as the matchmaker sees it, as a pure transition table: what each
//! report, timer and operator action does to a [`ServerPhase`]. The systems in
//! [`lifecycle`](super::lifecycle) only gather the inputs and apply the outcome.
//!
//! ```text
//!   launch ──▶ Starting ──record ready──▶ Ready ──drain──▶ Draining
//!                 │  ▲                      │                 │
//!   record gone   │  └──record starting─┐   │ empty past grace│ empty past grace
//!                 ▼                     │   ▼                 ▼
//!             Unreported ──record ready/draining──▶ …     Stopping ──record gone──▶ lost
//!                 │ silent past grace                         │ not gone in time
//!                 ▼                                           ▼
//!               lost                                        lost
//! ```
//! `Starting` past the start timeout is lost too. A lost server is stopped, its records are
//! removed and the joins waiting for it are placed again.

use bevy::prelude::*;
use bevygap_shared::records::ServerStatus;

use crate::placement::Readiness;

/// Where a server is in its life. Times are seconds on the matchmaker's clock
/// ([`crate::clock::now`]).
#[derive(Component, Debug, Clone, Copy, PartialEq, Reflect)]
#[reflect(Component)]
#[type_path = "bevygap"]
pub enum ServerPhase {
    /// Launched; waiting for it to report itself ready in NATS.
    Starting { since: f64 },
    /// Reporting ready: takes players.
    Ready,
    /// Its NATS record expired or was deleted while it was not being stopped: perhaps a crash,
    /// perhaps only a NATS outage. No new players go there; it is given up only if it stays
    /// silent past a grace period, so a NATS hiccup never kills a healthy server.
    Unreported { since: f64 },
    /// Finishing its players; takes no one new.
    Draining,
    /// Asked to stop; waiting for it to go.
    Stopping { since: f64 },
}

/// Why a server is given up; carried to the logs and to the joins that were waiting for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LossReason {
    #[error("launch failed: {0}")]
    LaunchFailed(String),
    #[error("{0}")]
    Exited(String),
    #[error("did not report ready in time")]
    NeverReady,
    #[error("did not stop in time")]
    DidNotStop,
    #[error("its record stayed gone past the grace period")]
    StayedSilent,
    #[error("it stopped")]
    Stopped,
}

impl LossReason {
    /// Whether the provider must still be told to stop it: not when its process already
    /// exited, nor when it vanished while already being stopped.
    pub fn needs_stop(&self) -> bool {
        !matches!(self, LossReason::Exited(_) | LossReason::Stopped)
    }
}

/// The timers of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhaseTimers {
    /// How long a server may take to report ready.
    pub start_timeout: f64,
    /// How long a server whose record vanished is waited for.
    pub silence_grace: f64,
    /// How long a running server may go without a heartbeat before it is held.
    pub heartbeat_timeout: f64,
    /// How long a stopping server may take to go.
    pub stop_timeout: f64,
}

/// What a server record's disappearance means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RecordGone {
    /// Expected: it was stopping, and now it is gone.
    Lost,
    /// Unexpected: hold it (no new players) until it reports again or the grace runs out.
    Hold(ServerPhase),
    /// Already held; nothing changes.
    Unchanged,
}

impl ServerPhase {
    /// Whether new players may be placed on it.
    pub fn accepts_players(self) -> bool {
        matches!(self, ServerPhase::Starting { .. } | ServerPhase::Ready)
    }

    /// How far along it is, for placement (only meaningful when it accepts players).
    pub fn readiness(self) -> Readiness {
        if self == ServerPhase::Ready { Readiness::Ready } else { Readiness::Starting }
    }

    /// Whether it counts against the server limit: everything that is not on its way out.
    pub fn counts_against_limit(self) -> bool {
        !matches!(self, ServerPhase::Stopping { .. })
    }

    /// Whether it may be stopped for being empty: only once it has been ready (a starting
    /// server is empty by nature) and not while its record is missing.
    pub fn may_stop_when_empty(self) -> bool {
        matches!(self, ServerPhase::Ready | ServerPhase::Draining)
    }

    /// The phase after the server's own record reports `status`.
    pub fn on_report(self, status: ServerStatus, now: f64) -> ServerPhase {
        match (self, status) {
            (ServerPhase::Stopping { .. }, _) => self,
            (ServerPhase::Draining, ServerStatus::Ready) => self,
            (_, ServerStatus::Ready) => ServerPhase::Ready,
            (_, ServerStatus::Draining) => ServerPhase::Draining,
            (ServerPhase::Unreported { .. }, ServerStatus::Starting) => ServerPhase::Starting { since: now },
            _ => self,
        }
    }

    /// What the disappearance of its record means.
    pub fn on_record_gone(self, now: f64) -> RecordGone {
        match self {
            ServerPhase::Stopping { .. } => RecordGone::Lost,
            ServerPhase::Unreported { .. } => RecordGone::Unchanged,
            _ => RecordGone::Hold(ServerPhase::Unreported { since: now }),
        }
    }

    /// What heartbeats that stopped (nothing heard for longer than the heartbeat timeout)
    /// mean: a running server is held like one whose record vanished; a starting or stopping
    /// one is left to its own timer.
    pub fn on_silent(self, now: f64) -> RecordGone {
        match self {
            ServerPhase::Ready | ServerPhase::Draining => RecordGone::Hold(ServerPhase::Unreported { since: now }),
            _ => RecordGone::Unchanged,
        }
    }

    /// The phase after an operator asks it to drain.
    pub fn on_drain(self) -> ServerPhase {
        match self {
            ServerPhase::Stopping { .. } => self,
            _ => ServerPhase::Draining,
        }
    }

    /// The phase after the matchmaker decides to stop it.
    pub fn on_stop(self, now: f64) -> ServerPhase {
        match self {
            ServerPhase::Stopping { .. } => self,
            _ => ServerPhase::Stopping { since: now },
        }
    }

    /// Whether a timer ran out at `now`, and so the server is lost.
    pub fn overdue(self, now: f64, timers: &PhaseTimers) -> Option<LossReason> {
        match self {
            ServerPhase::Starting { since } if now - since > timers.start_timeout => Some(LossReason::NeverReady),
            ServerPhase::Stopping { since } if now - since > timers.stop_timeout => Some(LossReason::DidNotStop),
            ServerPhase::Unreported { since } if now - since > timers.silence_grace => Some(LossReason::StayedSilent),
            _ => None,
        }
    }

    /// A short label for operators and metrics (`starting`, `ready`…).
    pub fn label(self) -> &'static str {
        match self {
            ServerPhase::Starting { .. } => "starting",
            ServerPhase::Ready => "ready",
            ServerPhase::Unreported { .. } => "unreported",
            ServerPhase::Draining => "draining",
            ServerPhase::Stopping { .. } => "stopping",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMERS: PhaseTimers =
        PhaseTimers { start_timeout: 45.0, silence_grace: 60.0, heartbeat_timeout: 15.0, stop_timeout: 15.0 };
    const STARTING: ServerPhase = ServerPhase::Starting { since: 0.0 };
    const UNREPORTED: ServerPhase = ServerPhase::Unreported { since: 0.0 };
    const STOPPING: ServerPhase = ServerPhase::Stopping { since: 0.0 };
    const ALL: [ServerPhase; 5] = [STARTING, ServerPhase::Ready, UNREPORTED, ServerPhase::Draining, STOPPING];

    #[test]
    fn reports_move_servers_forward_but_never_out_of_stopping_or_draining() {
        use ServerStatus::*;
        let table = [
            (STARTING, Ready, ServerPhase::Ready),
            (STARTING, Starting, STARTING),
            (STARTING, Draining, ServerPhase::Draining),
            (ServerPhase::Ready, Draining, ServerPhase::Draining),
            (ServerPhase::Draining, Ready, ServerPhase::Draining),
            (UNREPORTED, Ready, ServerPhase::Ready),
            (UNREPORTED, Starting, ServerPhase::Starting { since: 9.0 }),
            (UNREPORTED, Draining, ServerPhase::Draining),
            (STOPPING, Ready, STOPPING),
            (STOPPING, Starting, STOPPING),
        ];
        for (from, status, to) in table {
            assert_eq!(from.on_report(status, 9.0), to, "{from:?} + {status:?}");
        }
    }

    #[test]
    fn a_vanished_record_is_lost_only_when_stopping_and_held_otherwise() {
        assert_eq!(STOPPING.on_record_gone(5.0), RecordGone::Lost);
        assert_eq!(UNREPORTED.on_record_gone(5.0), RecordGone::Unchanged);
        for phase in [STARTING, ServerPhase::Ready, ServerPhase::Draining] {
            assert_eq!(phase.on_record_gone(5.0), RecordGone::Hold(ServerPhase::Unreported { since: 5.0 }));
        }
    }

    #[test]
    fn a_running_server_that_stops_heartbeating_is_held() {
        for phase in [ServerPhase::Ready, ServerPhase::Draining] {
            assert_eq!(phase.on_silent(7.0), RecordGone::Hold(ServerPhase::Unreported { since: 7.0 }));
        }
        for phase in [STARTING, UNREPORTED, STOPPING] {
            assert_eq!(phase.on_silent(7.0), RecordGone::Unchanged, "{phase:?} has its own timer");
        }
    }

    #[test]
    fn timers_give_up_on_servers_that_never_start_never_stop_or_stay_silent() {
        assert_eq!(STARTING.overdue(45.0, &TIMERS), None);
        assert_eq!(STARTING.overdue(45.1, &TIMERS), Some(LossReason::NeverReady));
        assert_eq!(STOPPING.overdue(15.1, &TIMERS), Some(LossReason::DidNotStop));
        assert_eq!(UNREPORTED.overdue(60.0, &TIMERS), None);
        assert_eq!(UNREPORTED.overdue(60.1, &TIMERS), Some(LossReason::StayedSilent));
        assert_eq!(ServerPhase::Ready.overdue(1e9, &TIMERS), None);
        assert_eq!(ServerPhase::Draining.overdue(1e9, &TIMERS), None);
    }

    #[test]
    fn only_starting_and_ready_servers_take_players_and_only_stopping_ones_do_not_count() {
        let accepts: Vec<bool> = ALL.iter().map(|p| p.accepts_players()).collect();
        assert_eq!(accepts, [true, true, false, false, false]);
        let counts: Vec<bool> = ALL.iter().map(|p| p.counts_against_limit()).collect();
        assert_eq!(counts, [true, true, true, true, false]);
        let stoppable: Vec<bool> = ALL.iter().map(|p| p.may_stop_when_empty()).collect();
        assert_eq!(stoppable, [false, true, false, true, false]);
    }

    #[test]
    fn only_servers_that_may_still_run_are_stopped_when_lost() {
        assert!(!LossReason::Exited("exit 1".into()).needs_stop());
        assert!(!LossReason::Stopped.needs_stop());
        for reason in [LossReason::NeverReady, LossReason::DidNotStop, LossReason::StayedSilent] {
            assert!(reason.needs_stop(), "{reason}");
        }
    }

    #[test]
    fn drain_and_stop_are_idempotent_and_stop_wins() {
        assert_eq!(ServerPhase::Ready.on_drain(), ServerPhase::Draining);
        assert_eq!(STOPPING.on_drain(), STOPPING);
        assert_eq!(ServerPhase::Ready.on_stop(3.0), ServerPhase::Stopping { since: 3.0 });
        assert_eq!(STOPPING.on_stop(3.0), STOPPING, "the first stop's time is kept");
    }
}
