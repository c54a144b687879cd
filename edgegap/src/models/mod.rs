//! Typed request and response bodies.
//!
//! Field names and required/optional status follow Edgegap's published
//! swagger: required response fields are plain types (a missing one is a
//! [`crate::EdgegapError::MalformedBody`]), optional ones are `Option` and
//! accept both absent and `null`. Unknown fields are ignored, because Edgegap
//! adds fields over time. Request bodies omit unset optional fields.

pub mod app;
pub mod context;
pub mod deployment;
pub mod session;

pub use app::{AppVersion, AppVersionEnv, AppVersionPort, Application, SessionConfig};
pub use context::{Deployment, DeploymentLocation, PortMapping};
pub use deployment::{
    DeploymentCreate, DeploymentCreated, DeploymentList, DeploymentListItem, DeploymentSessionContext, DeploymentState,
    DeploymentStatus, DeploymentUser, EnvironmentVariable, StopOutcome, Webhook,
};
pub use session::{
    GeoIp, LatLong, Pagination, Paginator, Selector, SessionContext, SessionCreate, SessionCreated, SessionDeleted,
    SessionGet, SessionList, SessionUser,
};
