//! The `Deployment` model: what the context endpoint returns to a game server
//! and what a linked session embeds. Also the port and location shapes shared
//! with deployment status.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `Deployment`: body of `GET /v1/context/{request_id}/{security_number}` and
/// of `SessionGet.deployment`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// 12 lowercase hex chars.
    pub request_id: String,
    /// Public IP of the host.
    pub public_ip: String,
    /// `Status.DEPLOYING`, `Status.READY`, ... (see [`crate::DeploymentState`]).
    pub status: String,
    /// Whether the deployment is READY.
    pub ready: bool,
    /// ACL flag.
    pub whitelisting_active: bool,
    /// `<request_id>.pr.edgegap.net`.
    pub fqdn: String,
    /// Ports by name; bevygap uses the first entry's `external`.
    pub ports: Option<BTreeMap<String, PortMapping>>,
    /// Where the deployment runs (absent from deployments embedded in sessions).
    pub location: Option<DeploymentLocation>,
    /// Deployment tags.
    pub tags: Option<Vec<String>>,
    /// Seat capacity.
    pub sockets: Option<i64>,
    /// Seats in use.
    pub sockets_usage: Option<i64>,
    /// Whether sessions may still join.
    pub is_joinable_by_session: Option<bool>,
}

impl Deployment {
    /// The typed lifecycle state of [`Self::status`].
    pub fn state(&self) -> crate::DeploymentState {
        crate::DeploymentState::parse(&self.status)
    }
}

/// `PortMapping`: one entry of a deployment's `ports` map. All fields are
/// optional in the v1 swagger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Port reachable at `public_ip`.
    pub external: Option<u16>,
    /// Port inside the container.
    pub internal: Option<u16>,
    /// `UDP`, `TCP`, `HTTP`, `WS`.
    pub protocol: Option<String>,
    /// Port name.
    pub name: Option<String>,
    /// TLS upgrade for HTTP/WS.
    pub tls_upgrade: Option<bool>,
    /// `<fqdn>:<external>` (scheme-prefixed for HTTP/WS).
    pub link: Option<String>,
    /// Proxy port or null.
    pub proxy: Option<i64>,
}

/// `DeploymentLocation`: every field required.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentLocation {
    /// City.
    pub city: String,
    /// Country.
    pub country: String,
    /// Continent.
    pub continent: String,
    /// Province/state.
    pub administrative_division: String,
    /// Timezone name (`Eastern Time`).
    pub timezone: String,
    /// Latitude.
    pub latitude: f64,
    /// Longitude.
    pub longitude: f64,
}
