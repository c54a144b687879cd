//! Deployments: v2 create, v1 status and v1 stop (the path Edgegap's 2026
//! docs recommend over Sessions).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::context::{DeploymentLocation, PortMapping};
use super::session::Pagination;

/// Body of `POST /v2/deployments` (`DeploymentCreate`). Note the v2 names:
/// `application`/`version`, not v1's `app_name`/`version_name`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentCreate {
    /// App name.
    pub application: String,
    /// Version name.
    pub version: String,
    /// At least one user, used to pick the location.
    pub users: Vec<DeploymentUser>,
    /// Only deploy where the image is cached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_cached_locations: Option<bool>,
    /// Extra container environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_variables: Option<Vec<EnvironmentVariable>>,
    /// Deployment tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// POSTed (status body) when READY.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_on_ready: Option<Webhook>,
    /// POSTed when the deployment fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_on_error: Option<Webhook>,
    /// POSTed when the deployment is terminated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_on_terminated: Option<Webhook>,
}

impl DeploymentCreate {
    /// A deployment for one player IP, the common matchmaker case.
    pub fn for_ip(application: impl Into<String>, version: impl Into<String>, ip: impl Into<String>) -> Self {
        Self {
            application: application.into(),
            version: version.into(),
            users: vec![DeploymentUser::ip(ip)],
            require_cached_locations: None,
            environment_variables: None,
            tags: None,
            webhook_on_ready: None,
            webhook_on_error: None,
            webhook_on_terminated: None,
        }
    }
}

/// One v2 user: `{user_type, user_data}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentUser {
    /// `ip_address` or `geo_coordinates`.
    pub user_type: String,
    /// `{"ip_address": ...}` or `{"latitude": ..., "longitude": ...}`.
    pub user_data: serde_json::Value,
}

impl DeploymentUser {
    /// A user identified by IP.
    pub fn ip(ip: impl Into<String>) -> Self {
        Self { user_type: "ip_address".into(), user_data: serde_json::json!({ "ip_address": ip.into() }) }
    }

    /// A user identified by coordinates.
    pub fn geo(latitude: f64, longitude: f64) -> Self {
        Self {
            user_type: "geo_coordinates".into(),
            user_data: serde_json::json!({ "latitude": latitude, "longitude": longitude }),
        }
    }
}

/// v2 environment variable: all three fields required by the spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    /// Name.
    pub key: String,
    /// Value.
    pub value: String,
    /// Hidden in the dashboard.
    pub is_hidden: bool,
}

/// v2 webhook target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    /// URL to POST to.
    pub url: String,
}

/// 202 answer to `POST /v2/deployments`: only the id; poll status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentCreated {
    /// 12 lowercase hex chars.
    pub request_id: String,
}

/// `Status`: answer to `GET /v1/status/{request_id}`, and the body of
/// deployment webhooks. `app_version` is the version *name* here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentStatus {
    /// Deployment id.
    pub request_id: String,
    /// `<request_id>.pr.edgegap.net`.
    pub fqdn: String,
    /// App name.
    pub app_name: String,
    /// Version name.
    pub app_version: String,
    /// `Status.READY` etc.; see [`DeploymentStatus::state`].
    pub current_status: String,
    /// True when READY.
    pub running: bool,
    /// ACL flag.
    pub whitelisting_active: bool,
    /// Start timestamp.
    pub start_time: String,
    /// Seconds since start.
    pub elapsed_time: i64,
    /// True in ERROR.
    pub error: bool,
    /// Host public IP.
    pub public_ip: String,
    /// Set once terminated.
    pub removal_time: Option<String>,
    /// Previous status.
    pub last_status: Option<String>,
    /// Why it failed.
    pub error_detail: Option<String>,
    /// Ports by name.
    pub ports: Option<BTreeMap<String, PortMapping>>,
    /// Sessions linked to it.
    pub sessions: Option<Vec<DeploymentSessionContext>>,
    /// Where it runs.
    pub location: Option<DeploymentLocation>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Seat capacity.
    pub sockets: Option<i64>,
    /// Seats in use.
    pub sockets_usage: Option<i64>,
    /// Container command override.
    pub command: Option<String>,
    /// Container arguments override.
    pub arguments: Option<String>,
}

impl DeploymentStatus {
    /// The typed lifecycle state of `current_status`.
    pub fn state(&self) -> DeploymentState {
        DeploymentState::parse(&self.current_status)
    }
}

/// Answer to `GET /v1/deployments` (`Deployments`). Every field is optional
/// in the spec; a missing `data` means an empty page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentList {
    /// The deployments of this page.
    #[serde(default)]
    pub data: Vec<DeploymentListItem>,
    /// Deployments across all pages.
    pub total_count: Option<i64>,
    /// Where this page sits.
    pub pagination: Option<Pagination>,
    /// Informational messages.
    pub message: Option<Vec<String>>,
}

/// One entry of [`DeploymentList`] (`DeploymentListData`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentListItem {
    /// Deployment id.
    pub request_id: String,
    /// `<request_id>.pr.edgegap.net`.
    pub fqdn: String,
    /// Start timestamp.
    pub start_time: String,
    /// True when READY.
    pub ready: bool,
    /// Host public IP.
    pub public_ip: String,
    /// Ports by name.
    pub ports: Option<BTreeMap<String, PortMapping>>,
    /// Tags given at creation: how a caller finds a deployment whose create
    /// answer it never received.
    pub tags: Option<Vec<String>>,
    /// Seat capacity.
    pub sockets: Option<i64>,
    /// Seats in use.
    pub sockets_usage: Option<i64>,
    /// Whether sessions may join it.
    pub is_joinable_by_session: Option<bool>,
}

impl DeploymentListItem {
    /// Whether the deployment carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.as_ref().is_some_and(|tags| tags.iter().any(|t| t == tag))
    }
}

/// `DeploymentSessionContext`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentSessionContext {
    /// Session id.
    pub session_id: String,
    /// Status word.
    pub status: String,
    /// Ready flag.
    pub ready: bool,
    /// Linked flag.
    pub linked: bool,
    /// Kind.
    pub kind: String,
    /// Users.
    pub user_count: i64,
}

/// Deployment lifecycle: INITIALIZING → SEEKING → SEEKED → SCANNING →
/// DEPLOYING → READY → TERMINATED, or ERROR.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DeploymentState {
    /// `Status.INITIALIZING`.
    Initializing,
    /// `Status.SEEKING`.
    Seeking,
    /// `Status.SEEKED`.
    Seeked,
    /// `Status.SCANNING`.
    Scanning,
    /// `Status.DEPLOYING` (the container may already be running).
    Deploying,
    /// `Status.READY`.
    Ready,
    /// `Status.ERROR`.
    Error,
    /// `Status.TERMINATED`.
    Terminated,
    /// Anything else, kept verbatim (Edgegap may add states).
    Other(String),
}

impl DeploymentState {
    /// Parses `Status.READY` (and, leniently, `READY` / `ready`).
    pub fn parse(raw: &str) -> Self {
        let word = raw.strip_prefix("Status.").unwrap_or(raw);
        match word.to_ascii_uppercase().as_str() {
            "INITIALIZING" => Self::Initializing,
            "SEEKING" => Self::Seeking,
            "SEEKED" => Self::Seeked,
            "SCANNING" => Self::Scanning,
            "DEPLOYING" => Self::Deploying,
            "READY" => Self::Ready,
            "ERROR" => Self::Error,
            "TERMINATED" => Self::Terminated,
            _ => Self::Other(raw.to_owned()),
        }
    }

    /// No further transitions will happen on their own.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Error | Self::Terminated)
    }
}

/// Answer to `DELETE /v1/stop/{id}` and the self-stop endpoint.
#[derive(Clone, Debug, PartialEq)]
pub enum StopOutcome {
    /// 200 (`Delete`): the deployment is being stopped now.
    Stopping {
        /// `Instance <id> will be deleted`.
        message: String,
        /// Status at the time of the stop.
        deployment_summary: Option<Box<DeploymentStatus>>,
    },
    /// 202 (`DeleteRequestReceived`): not READY/ERROR yet; it will be
    /// stopped once it reaches either.
    Accepted {
        /// `<id> - Delete request will be processed soon`.
        message: String,
    },
}

/// Wire shape of the 200 stop answer (`Delete`).
#[derive(Deserialize)]
pub(crate) struct DeleteBody {
    pub message: String,
    pub deployment_summary: Option<DeploymentStatus>,
}

/// Wire shape of the 202 stop answer (`DeleteRequestReceived`).
#[derive(Deserialize)]
pub(crate) struct DeleteRequestReceivedBody {
    pub message: String,
}
