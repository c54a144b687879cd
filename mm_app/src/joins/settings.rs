//! What the joins plugin is told: how long a join may take, how many may wait, and whether a
//! client's own idea of its address is believed.

use std::time::Duration;

use bevy::prelude::*;

use super::admission::AdmissionLimits;

/// How much longer than a join's deadline its caller waits: a backstop, since the ECS ends
/// every join by its own deadline first.
pub const CALL_DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// Settings of the [`JoinsPlugin`](super::JoinsPlugin) and of the join calls that feed it.
#[derive(Resource, Debug, Clone, PartialEq, Eq)]
pub struct JoinSettings {
    /// How long a join may take before it fails with `timeout`.
    pub deadline: Duration,
    /// The caps of admission.
    pub limits: AdmissionLimits,
    /// Whether a join's own `client_ip` is used to place it (development only: a client can
    /// claim any address).
    pub trust_client_ip: bool,
}

impl Default for JoinSettings {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(60),
            limits: AdmissionLimits { max_waiting: 1000, max_per_requester: 4 },
            trust_client_ip: false,
        }
    }
}

impl JoinSettings {
    /// The longest a caller (an HTTP connection, a relayed call) waits for a join's answers.
    pub fn call_deadline(&self) -> Duration {
        self.deadline + CALL_DEADLINE_MARGIN
    }
}
