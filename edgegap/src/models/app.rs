//! Application and application-version lookups, used at matchmaker startup to
//! fail fast on a misconfigured or disabled app version.

use serde::{Deserialize, Serialize};

/// `GET /v1/app/{app_name}` (`Application`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Application {
    /// App name.
    pub name: String,
    /// Whether the app can be deployed.
    pub is_active: bool,
    /// Creation timestamp (`2024-10-09 14:03:24.975285`, UTC).
    pub create_time: String,
    /// Last update timestamp.
    pub last_updated: String,
    /// Image URL, if any.
    pub image: Option<String>,
    /// Telemetry agent flag.
    pub is_telemetry_agent_active: Option<bool>,
}

/// `GET /v1/app/{app_name}/version/{version_name}` (`AppVersionPayload`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppVersion {
    /// Version name.
    pub name: String,
    /// Container registry.
    pub docker_repository: String,
    /// Image name.
    pub docker_image: String,
    /// Image tag.
    pub docker_tag: String,
    /// vCPU units.
    pub req_cpu: i64,
    /// Memory in MB.
    pub req_memory: i64,
    /// Disabled versions cannot be deployed (bevygap warns at startup).
    pub is_active: Option<bool>,
    /// Session behaviour (Seat/Match/Default, sockets, autodeploy).
    pub session_config: Option<SessionConfig>,
    /// Container ports.
    pub ports: Option<Vec<AppVersionPort>>,
    /// Version environment variables.
    pub envs: Option<Vec<AppVersionEnv>>,
    /// Maximum deployment duration in minutes.
    pub max_duration: Option<i64>,
    /// Expected seconds to deploy.
    pub time_to_deploy: Option<i64>,
    /// SIGTERM-to-SIGKILL grace in seconds.
    pub termination_grace_period_seconds: Option<i64>,
}

/// `AppVersionCreateSessionConfig`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionConfig {
    /// `Default`, `Seat` or `Match`.
    pub kind: String,
    /// Sockets (player seats) per deployment.
    pub sockets: i64,
    /// Whether a session with no free deployment starts a new one.
    pub autodeploy: Option<bool>,
    /// Minutes an empty deployment is kept.
    pub empty_ttl: Option<i64>,
    /// Maximum session duration.
    pub session_max_duration: Option<i64>,
}

/// `AppVersionPort`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppVersionPort {
    /// Internal container port.
    pub port: i64,
    /// `UDP`, `TCP`, `HTTP`, `WS`, ...
    pub protocol: String,
    /// Health-checked or not.
    pub to_check: Option<bool>,
    /// TLS upgrade for HTTP/WS.
    pub tls_upgrade: Option<bool>,
    /// Port name (the key of the deployment's `ports` map).
    pub name: Option<String>,
}

/// `AppVersionEnv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppVersionEnv {
    /// Variable name.
    pub key: String,
    /// Variable value.
    pub value: String,
    /// Hidden in the dashboard.
    pub is_secret: Option<bool>,
}
