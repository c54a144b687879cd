//! What the fake holds right now, so tests can assert nothing leaked:
//! live (not TERMINATED) deployments, sessions, running processes, plus
//! request and injected-fault counters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::server::Shared;
use crate::state::DeployState;

/// Snapshot served at `GET /_fake/inventory` and by `FakeEdgegap::inventory`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// Deployments not yet TERMINATED (ERROR ones included: they still exist on Edgegap).
    pub deployments: Vec<LiveDeployment>,
    /// Sessions not deleted.
    pub sessions: Vec<LiveSession>,
    /// Processes started and not yet reaped.
    pub processes: Vec<LiveProcess>,
    /// Deployments ever created, including terminated ones.
    pub deployments_created: usize,
    /// Requests received per endpoint name.
    pub requests: BTreeMap<String, u64>,
    /// Faults injected per endpoint name.
    pub faults_injected: BTreeMap<String, u32>,
}

impl Inventory {
    /// True when no deployment, session or process is live.
    pub fn is_idle(&self) -> bool {
        self.deployments.is_empty() && self.sessions.is_empty() && self.processes.is_empty()
    }

    /// Requests received on one endpoint (by its snake_case name).
    pub fn requests_to(&self, endpoint: crate::Endpoint) -> u64 {
        self.requests.get(endpoint.name()).copied().unwrap_or(0)
    }
}

/// A live deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveDeployment {
    /// Id.
    pub request_id: String,
    /// `Status.*`.
    pub status: String,
    /// App.
    pub app: String,
    /// Version.
    pub version: String,
    /// Capacity.
    pub sockets: u32,
    /// Seats in use.
    pub sockets_usage: u32,
    /// A stop was requested.
    pub stop_requested: bool,
}

/// A live session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSession {
    /// Id.
    pub session_id: String,
    /// Status word.
    pub status: String,
    /// Linked deployment.
    pub deployment_request_id: Option<String>,
}

/// A running process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveProcess {
    /// OS pid (also its process group).
    pub pid: u32,
    /// Deployment it belongs to.
    pub request_id: String,
}

impl Inventory {
    pub(crate) fn collect(shared: &Shared) -> Self {
        let world = shared.world();
        let deployments = world
            .deployments
            .values()
            .filter(|d| d.state != DeployState::Terminated)
            .map(|d| LiveDeployment {
                request_id: d.request_id.clone(),
                status: d.state.wire().to_owned(),
                app: d.app.clone(),
                version: d.version.clone(),
                sockets: d.sockets,
                sockets_usage: world.sockets_usage(&d.request_id),
                stop_requested: d.stop_requested,
            })
            .collect();
        let sessions = world
            .sessions
            .values()
            .map(|s| LiveSession {
                session_id: s.session_id.clone(),
                status: crate::views::session_flags(&world, s).0.to_owned(),
                deployment_request_id: s.deployment.clone(),
            })
            .collect();
        let processes = world
            .deployments
            .values()
            .filter_map(|d| d.process.as_ref().map(|p| LiveProcess { pid: p.pid(), request_id: d.request_id.clone() }))
            .collect();
        let requests = world.request_counts.clone();
        let deployments_created = world.deployments.len();
        drop(world);
        let faults_injected = shared.faults().injected.iter().map(|(e, n)| (e.name().to_owned(), *n)).collect();
        Self { deployments, sessions, processes, deployments_created, requests, faults_injected }
    }
}
