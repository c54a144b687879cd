//! The fake account's state: deployments and sessions, guarded by one mutex
//! in [`crate::server::Shared`]. Pure data plus the queries handlers need;
//! time-driven changes live in `lifecycle`.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::process::GameProcess;

/// Edgegap deployment states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeployState {
    /// `Status.INITIALIZING`.
    Initializing,
    /// `Status.SEEKING`.
    Seeking,
    /// `Status.SEEKED`.
    Seeked,
    /// `Status.SCANNING`.
    Scanning,
    /// `Status.DEPLOYING`: the process runs.
    Deploying,
    /// `Status.READY`.
    Ready,
    /// `Status.ERROR`.
    Error,
    /// `Status.TERMINATED`.
    Terminated,
}

impl DeployState {
    /// Wire form, `Status.READY`.
    pub fn wire(self) -> &'static str {
        match self {
            Self::Initializing => "Status.INITIALIZING",
            Self::Seeking => "Status.SEEKING",
            Self::Seeked => "Status.SEEKED",
            Self::Scanning => "Status.SCANNING",
            Self::Deploying => "Status.DEPLOYING",
            Self::Ready => "Status.READY",
            Self::Error => "Status.ERROR",
            Self::Terminated => "Status.TERMINATED",
        }
    }

    /// The state after a pre-deploy step, or `None` from DEPLOYING onwards.
    pub fn next_step(self) -> Option<Self> {
        match self {
            Self::Initializing => Some(Self::Seeking),
            Self::Seeking => Some(Self::Seeked),
            Self::Seeked => Some(Self::Scanning),
            Self::Scanning => Some(Self::Deploying),
            _ => None,
        }
    }

    /// A stop request is carried out only in READY or ERROR (else 202).
    pub fn stoppable_now(self) -> bool {
        matches!(self, Self::Ready | Self::Error)
    }
}

/// A port of a deployment.
#[derive(Clone, Debug)]
pub struct PortRec {
    /// Name (map key).
    pub name: String,
    /// Port the process binds. Equal to `external`: there is no NAT locally.
    pub internal: u16,
    /// Port reachable at the public IP.
    pub external: u16,
    /// Protocol.
    pub protocol: String,
    /// TLS upgrade.
    pub tls_upgrade: bool,
}

/// v2 webhook targets.
#[derive(Clone, Debug, Default)]
pub struct DeployWebhooks {
    /// POSTed on READY.
    pub on_ready: Option<String>,
    /// POSTed on ERROR.
    pub on_error: Option<String>,
    /// POSTed on TERMINATED.
    pub on_terminated: Option<String>,
}

/// One deployment.
#[derive(Debug)]
pub struct DeploymentRec {
    /// Id.
    pub request_id: String,
    /// App name.
    pub app: String,
    /// Version name.
    pub version: String,
    /// When it was created (monotonic).
    pub created: Instant,
    /// Edgegap-format creation time.
    pub start_time: String,
    /// Current state.
    pub state: DeployState,
    /// Previous state.
    pub last_state: Option<DeployState>,
    /// When `state` was entered.
    pub state_since: Instant,
    /// ERROR detail.
    pub error_detail: Option<String>,
    /// Ports.
    pub ports: Vec<PortRec>,
    /// Tags.
    pub tags: Vec<String>,
    /// Seat capacity.
    pub sockets: u32,
    /// Set by stop/self-stop.
    pub stop_requested: bool,
    /// When SIGTERM was sent (or the stop began without a process).
    pub stopping_since: Option<Instant>,
    /// Edgegap-format termination time.
    pub removal_time: Option<String>,
    /// Raw token for the context endpoint.
    pub context_token: String,
    /// Last path segment of the context URL.
    pub security_number: u32,
    /// Raw token for self-stop.
    pub delete_token: String,
    /// Last path segment of the delete URL.
    pub access_point_id: u32,
    /// Deployment variables (v2 `environment_variables`).
    pub env: Vec<(String, String)>,
    /// v2 webhooks.
    pub webhooks: DeployWebhooks,
    /// Decided at creation by `deploy_error_rate`.
    pub will_fail: bool,
    /// The running process, if any.
    pub process: Option<GameProcess>,
    /// How the process ended.
    pub exit: Option<String>,
}

/// Session status words (live API uses Title case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// Not linked yet.
    Seeking,
    /// Could not be placed (no capacity and no autodeploy).
    Unprocessable,
}

/// One session.
#[derive(Debug)]
pub struct SessionRec {
    /// `<hex>-S`.
    pub session_id: String,
    /// App name.
    pub app: String,
    /// Version name.
    pub version: String,
    /// Numeric version id (`app_version` in `SessionGet`).
    pub version_id: i64,
    /// `Seat`, `Match`, `Default`.
    pub kind: String,
    /// Player IPs.
    pub users: Vec<String>,
    /// Creation (monotonic).
    pub created: Instant,
    /// Edgegap-format creation time.
    pub create_time: String,
    /// Linked deployment.
    pub deployment: Option<String>,
    /// State while not linked.
    pub unlinked_state: SessionState,
    /// Deployment requested by the creator (`deployment_request_id`).
    pub requested_deployment: Option<String>,
    /// Session webhook.
    pub webhook_url: Option<String>,
    /// Whether the webhook has been sent.
    pub webhook_sent: bool,
    /// Creation order (for listing).
    pub seq: u64,
}

/// Everything the fake account holds.
#[derive(Debug, Default)]
pub struct World {
    /// By request id.
    pub deployments: BTreeMap<String, DeploymentRec>,
    /// By session id.
    pub sessions: BTreeMap<String, SessionRec>,
    /// Requests received per endpoint name.
    pub request_counts: BTreeMap<String, u64>,
    /// Next session sequence number.
    pub next_seq: u64,
}

impl World {
    /// Seats taken on a deployment by its sessions.
    pub fn sockets_usage(&self, request_id: &str) -> u32 {
        let users: usize =
            self.sessions.values().filter(|s| s.deployment.as_deref() == Some(request_id)).map(|s| s.users.len()).sum();
        u32::try_from(users).unwrap_or(u32::MAX)
    }

    /// Sessions linked to a deployment, in creation order.
    pub fn sessions_of(&self, request_id: &str) -> Vec<&SessionRec> {
        let mut list: Vec<_> = self.sessions.values().filter(|s| s.deployment.as_deref() == Some(request_id)).collect();
        list.sort_by_key(|s| s.seq);
        list
    }

    /// A live deployment of this app version with `seats` free sockets.
    pub fn deployment_with_free_seats(&self, app: &str, version: &str, seats: u32) -> Option<String> {
        self.deployments
            .values()
            .filter(|d| d.app == app && d.version == version && !d.stop_requested)
            .filter(|d| !matches!(d.state, DeployState::Error | DeployState::Terminated))
            .filter(|d| self.sockets_usage(&d.request_id).saturating_add(seats) <= d.sockets)
            .min_by_key(|d| d.created)
            .map(|d| d.request_id.clone())
    }
}
