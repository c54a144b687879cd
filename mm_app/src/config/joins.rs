//! `--join-deadline-secs` and the admission caps, validated into [`JoinSettings`].

use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use clap::Args;

use super::{nonzero_secs, nonzero_usize};
use crate::joins::JoinSettings;
use crate::joins::admission::AdmissionLimits;

/// How joins are admitted and how long they may take.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Joins")]
pub struct JoinArgs {
    /// Seconds a join may take before it fails with timeout.
    #[arg(long, env = "BEVYGAP_JOIN_DEADLINE_SECS", default_value_t = nonzero_secs(JoinSettings::default().deadline))]
    pub join_deadline_secs: NonZeroU64,
    /// Most join requests waiting at once; more fail with too_many_waiting.
    #[arg(
        long,
        env = "BEVYGAP_MAX_WAITING",
        default_value_t = nonzero_usize(JoinSettings::default().limits.max_waiting)
    )]
    pub max_waiting: NonZeroUsize,
    /// Most joins waiting at once from one address (its unused tokens count too).
    #[arg(
        long,
        env = "BEVYGAP_MAX_JOINS_PER_IP",
        default_value_t = nonzero_usize(JoinSettings::default().limits.max_per_requester)
    )]
    pub max_joins_per_ip: NonZeroUsize,
}

impl JoinArgs {
    /// The settings; `trust_client_ip` comes from development mode.
    pub fn validate(self, trust_client_ip: bool) -> JoinSettings {
        JoinSettings {
            deadline: Duration::from_secs(self.join_deadline_secs.get()),
            limits: AdmissionLimits {
                max_waiting: self.max_waiting.get(),
                max_per_requester: self.max_joins_per_ip.get(),
            },
            trust_client_ip,
        }
    }
}
