//! Sessions API (v1, legacy): what bevygap's matchmaker uses to place players.
//!
//! Edgegap's 2026 spec no longer lists these endpoints; they are kept because
//! bevygap was built and tested against them. Note `app_version` is an
//! *integer* id in [`SessionGet`] but a *string* name in deployment status.

use serde::{Deserialize, Serialize};

use super::context::Deployment;

/// Body of `POST /v1/session` (`SessionModel`). Only `app_name` is required.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionCreate {
    /// App to place the session on.
    pub app_name: String,
    /// Version; Edgegap picks the app's version when omitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_name: Option<String>,
    /// Player IPs (bevygap sends exactly the client's IP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_list: Option<Vec<String>>,
    /// Player IPs with coordinates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo_ip_list: Option<Vec<GeoIp>>,
    /// Link to this specific deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_request_id: Option<String>,
    /// Centroid for placement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<LatLong>,
    /// Pin to a city.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Pin to a country.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Pin to a continent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continent: Option<String>,
    /// Pin to a region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Deployment selectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selectors: Option<Vec<Selector>>,
    /// POSTed when the session is linked, unprocessable or in error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Skip telemetry, use GeoIP only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_telemetry: Option<bool>,
}

/// `GeoIpListModel`: all fields required.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeoIp {
    /// Player IP.
    pub ip: String,
    /// Latitude.
    pub latitude: f64,
    /// Longitude.
    pub longitude: f64,
}

/// `LocationModel`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatLong {
    /// Latitude.
    pub latitude: f64,
    /// Longitude.
    pub longitude: f64,
}

/// `SelectorModel`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Selector {
    /// Tag to match (1..20 chars).
    pub tag: String,
    /// Only tag the session, do not filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_only: Option<bool>,
    /// Environment injected on autodeploy (`{key, value}` or `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<serde_json::Value>,
}

/// `SessionRequest`: answer to `POST /v1/session`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionCreated {
    /// `<12 hex>-S`.
    pub session_id: String,
    /// App name.
    pub app: String,
    /// Version name.
    pub version: String,
    /// Custom id.
    pub custom_id: Option<String>,
    /// Deployment already linked, if any.
    pub deployment_request_id: Option<String>,
    /// Selectors echoed back.
    pub selectors: Option<Vec<Selector>>,
    /// Webhook echoed back.
    pub webhook_url: Option<String>,
}

/// `SessionGet`: answer to `GET /v1/session/{id}`.
///
/// Drive logic off `ready`/`linked`, not `status`: live Edgegap answers
/// `Seeking`/`Ready` while the spec examples say `Status.READY`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionGet {
    /// Session id.
    pub session_id: String,
    /// `Seeking`, `Linked`, `Ready`, `Unprocessable`, `Error`.
    pub status: String,
    /// Linked to a READY deployment.
    pub ready: bool,
    /// Linked to a deployment.
    pub linked: bool,
    /// `Seat`, `Match`, `Default`.
    pub kind: String,
    /// Users in the session.
    pub user_count: i64,
    /// Internal numeric version id (not the version name).
    pub app_version: i64,
    /// Creation timestamp.
    pub create_time: String,
    /// Seconds since creation.
    pub elapsed: i64,
    /// Custom id.
    pub custom_id: Option<String>,
    /// Error detail in `Error`/`Unprocessable` states.
    pub error: Option<String>,
    /// Users with coordinates.
    pub session_users: Option<Vec<SessionUser>>,
    /// Same as users (older field).
    pub session_ips: Option<Vec<SessionUser>>,
    /// Present once linked.
    pub deployment: Option<Deployment>,
    /// Webhook.
    pub webhook_url: Option<String>,
}

/// `SessionUser`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionUser {
    /// Player IP.
    pub ip: String,
    /// Latitude.
    pub latitude: Option<f64>,
    /// Longitude.
    pub longitude: Option<f64>,
}

/// `SessionDelete`: answer to `DELETE /v1/session/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionDeleted {
    /// Human-readable confirmation.
    pub message: String,
    /// Deleted session.
    pub session_id: String,
    /// Custom id.
    pub custom_id: Option<String>,
}

/// `Sessions`: answer to `GET /v1/sessions` (every field optional).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionList {
    /// This page of sessions.
    pub data: Option<Vec<SessionContext>>,
    /// Sessions across all pages.
    pub total_count: Option<i64>,
    /// Paging info.
    pub pagination: Option<Pagination>,
}

/// `SessionContext`: list entry and session webhook body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionContext {
    /// Session id.
    pub session_id: String,
    /// Status word.
    pub status: String,
    /// Linked to a READY deployment.
    pub ready: bool,
    /// Linked to a deployment.
    pub linked: bool,
    /// Session kind.
    pub kind: String,
    /// Users.
    pub user_count: i64,
    /// Custom id.
    pub custom_id: Option<String>,
    /// Linked deployment.
    pub deployment_request_id: Option<String>,
    /// Webhook.
    pub webhook_url: Option<String>,
}

/// `Pagination` (every field optional).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pagination {
    /// Current page (1-based).
    pub number: Option<i64>,
    /// Next page or null.
    pub next_page_number: Option<i64>,
    /// Previous page or null.
    pub previous_page_number: Option<i64>,
    /// Page count.
    pub paginator: Option<Paginator>,
    /// More pages after this one.
    pub has_next: Option<bool>,
    /// Pages before this one.
    pub has_previous: Option<bool>,
}

/// `Paginator`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Paginator {
    /// Number of pages.
    pub num_pages: Option<i64>,
}
