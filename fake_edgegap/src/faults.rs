//! Fault injection and rate limiting, per endpoint.
//!
//! Tests use this to drive the client's error paths against a real HTTP
//! exchange: 500s, 429s, slow answers, answers slower than the client's
//! timeout, and deployments that end in ERROR. `max_faults` makes injection
//! deterministic ("fail the next 2 calls") so retry tests do not depend on luck.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};

/// The Edgegap endpoints the fake serves, as fault and rate-limit keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `GET /v1/app/{app}`.
    GetApp,
    /// `GET /v1/app/{app}/version/{version}`.
    GetAppVersion,
    /// `POST /v1/session`.
    CreateSession,
    /// `GET /v1/session/{id}`.
    GetSession,
    /// `DELETE /v1/session/{id}`.
    DeleteSession,
    /// `GET /v1/sessions`.
    ListSessions,
    /// `POST /v2/deployments`.
    CreateDeployment,
    /// `GET /v1/status/{id}`.
    DeploymentStatus,
    /// `DELETE /v1/stop/{id}`.
    StopDeployment,
    /// `GET /v1/deployments`.
    ListDeployments,
    /// `GET /v1/context/{id}/{n}`.
    Context,
    /// `DELETE /v1/self/stop/{id}/{n}`.
    SelfStop,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 12] = [
        Self::GetApp,
        Self::GetAppVersion,
        Self::CreateSession,
        Self::GetSession,
        Self::DeleteSession,
        Self::ListSessions,
        Self::CreateDeployment,
        Self::DeploymentStatus,
        Self::StopDeployment,
        Self::ListDeployments,
        Self::Context,
        Self::SelfStop,
    ];

    /// The snake_case name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::GetApp => "get_app",
            Self::GetAppVersion => "get_app_version",
            Self::CreateSession => "create_session",
            Self::GetSession => "get_session",
            Self::DeleteSession => "delete_session",
            Self::ListSessions => "list_sessions",
            Self::CreateDeployment => "create_deployment",
            Self::DeploymentStatus => "deployment_status",
            Self::StopDeployment => "stop_deployment",
            Self::ListDeployments => "list_deployments",
            Self::Context => "context",
            Self::SelfStop => "self_stop",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|e| e.name() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|e| e.name()).collect();
            format!("unknown endpoint {s:?}; expected one of {}", names.join(", "))
        })
    }
}

/// Faults for one endpoint. Rates are probabilities in `0.0..=1.0`, rolled
/// in the order timeout, 500, 429, malformed, slow.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointFaults {
    /// Answer 500 `{"message": "Internal Server Error"}`.
    pub server_error_rate: f64,
    /// Answer 429 `{"message": "Too Many Requests"}`.
    pub rate_limited_rate: f64,
    /// Wait `slow_ms`, then answer normally.
    pub slow_rate: f64,
    /// Delay of a slow answer.
    pub slow_ms: u64,
    /// Answer 200 with a body lacking every required field.
    pub malformed_rate: f64,
    /// Hold the request `timeout_ms` (longer than the client's timeout), then answer 504.
    pub timeout_rate: f64,
    /// How long a "timeout" holds the request (default 30 s when 0).
    pub timeout_ms: u64,
    /// Stop injecting on this endpoint after this many faults.
    pub max_faults: Option<u32>,
}

impl EndpointFaults {
    /// Always 500, at most `n` times.
    pub fn server_errors(n: u32) -> Self {
        Self { server_error_rate: 1.0, max_faults: Some(n), ..Self::default() }
    }

    /// Always 429, at most `n` times.
    pub fn rate_limited(n: u32) -> Self {
        Self { rate_limited_rate: 1.0, max_faults: Some(n), ..Self::default() }
    }

    /// Always slower than any sane client timeout, at most `n` times.
    pub fn timeouts(n: u32, hold: Duration) -> Self {
        Self { timeout_rate: 1.0, timeout_ms: millis(hold), max_faults: Some(n), ..Self::default() }
    }

    /// Always a 200 with a body of the wrong shape, at most `n` times.
    pub fn malformed(n: u32) -> Self {
        Self { malformed_rate: 1.0, max_faults: Some(n), ..Self::default() }
    }

    /// Always slow by `delay`, at most `n` times.
    pub fn slow(n: u32, delay: Duration) -> Self {
        Self { slow_rate: 1.0, slow_ms: millis(delay), max_faults: Some(n), ..Self::default() }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// All injected faults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// Per-endpoint request faults.
    pub endpoints: BTreeMap<Endpoint, EndpointFaults>,
    /// Probability that a new deployment ends in `Status.ERROR` instead of starting.
    pub deploy_error_rate: f64,
    /// Probability that `POST /v2/deployments` answers 422 "Could not allocate"
    /// (the deployment is created in ERROR, as Edgegap documents).
    pub deploy_unprocessable_rate: f64,
}

impl FaultConfig {
    /// Adds faults for one endpoint.
    pub fn on(mut self, endpoint: Endpoint, faults: EndpointFaults) -> Self {
        self.endpoints.insert(endpoint, faults);
        self
    }
}

/// What to do with one request.
#[derive(Debug, PartialEq)]
pub(crate) enum Decision {
    /// Serve normally.
    Pass,
    /// Sleep, then serve normally.
    Slow(Duration),
    /// Answer with this status and message right away.
    Fail(u16, &'static str),
    /// Answer 200 with `{"unexpected": true}`.
    Malformed,
    /// Hold the request this long, then answer 504.
    Hang(Duration),
}

/// Mutable fault bookkeeping: the config, faults injected so far, rate windows.
#[derive(Debug)]
pub(crate) struct FaultState {
    pub config: FaultConfig,
    pub injected: BTreeMap<Endpoint, u32>,
    rate_limits: BTreeMap<Endpoint, u32>,
    windows: BTreeMap<Endpoint, VecDeque<Instant>>,
}

impl FaultState {
    pub fn new(config: FaultConfig, rate_limits: BTreeMap<Endpoint, u32>) -> Self {
        Self { config, injected: BTreeMap::new(), rate_limits, windows: BTreeMap::new() }
    }

    /// Decides the fate of one request to `endpoint`.
    pub fn decide(&mut self, endpoint: Endpoint) -> Decision {
        if self.over_rate_limit(endpoint) {
            return Decision::Fail(429, "Too Many Requests");
        }
        let Some(faults) = self.config.endpoints.get(&endpoint).cloned() else {
            return Decision::Pass;
        };
        let used = self.injected.get(&endpoint).copied().unwrap_or(0);
        if faults.max_faults.is_some_and(|max| used >= max) {
            return Decision::Pass;
        }
        let mut rng = rand::rng();
        let mut roll = |p: f64| p > 0.0 && rng.random::<f64>() < p;
        let decision = if roll(faults.timeout_rate) {
            let hold = if faults.timeout_ms == 0 { 30_000 } else { faults.timeout_ms };
            Decision::Hang(Duration::from_millis(hold))
        } else if roll(faults.server_error_rate) {
            Decision::Fail(500, "Internal Server Error")
        } else if roll(faults.rate_limited_rate) {
            Decision::Fail(429, "Too Many Requests")
        } else if roll(faults.malformed_rate) {
            Decision::Malformed
        } else if roll(faults.slow_rate) {
            Decision::Slow(Duration::from_millis(faults.slow_ms))
        } else {
            Decision::Pass
        };
        if decision != Decision::Pass {
            *self.injected.entry(endpoint).or_default() += 1;
        }
        decision
    }

    /// Sliding one-second window per endpoint with a configured limit.
    fn over_rate_limit(&mut self, endpoint: Endpoint) -> bool {
        let Some(limit) = self.rate_limits.get(&endpoint).copied() else {
            return false;
        };
        let window = self.windows.entry(endpoint).or_default();
        let now = Instant::now();
        while window.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
            window.pop_front();
        }
        if window.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
            return true;
        }
        window.push_back(now);
        false
    }

    /// Rolls `deploy_error_rate` for a new deployment.
    pub fn deployment_should_fail(&self) -> bool {
        let p = self.config.deploy_error_rate;
        p > 0.0 && rand::rng().random::<f64>() < p
    }

    /// Rolls `deploy_unprocessable_rate` for a v2 create.
    pub fn deploy_unprocessable(&self) -> bool {
        let p = self.config.deploy_unprocessable_rate;
        p > 0.0 && rand::rng().random::<f64>() < p
    }
}

/// Parses a command-line fault, `ENDPOINT:FIELD=VALUE`
/// (e.g. `deployment_status:server_error_rate=0.2`), into `config`.
pub fn apply_cli_fault(config: &mut FaultConfig, spec: &str) -> Result<(), String> {
    let (endpoint, setting) =
        spec.split_once(':').ok_or_else(|| format!("fault {spec:?}: expected ENDPOINT:FIELD=VALUE"))?;
    let endpoint: Endpoint = endpoint.parse()?;
    let (field, value) = setting.split_once('=').ok_or_else(|| format!("fault {spec:?}: expected FIELD=VALUE"))?;
    let faults = config.endpoints.entry(endpoint).or_default();
    let rate = |v: &str| v.parse::<f64>().map_err(|e| format!("fault {spec:?}: {e}"));
    let ms = |v: &str| v.parse::<u64>().map_err(|e| format!("fault {spec:?}: {e}"));
    match field {
        "server_error_rate" => faults.server_error_rate = rate(value)?,
        "rate_limited_rate" => faults.rate_limited_rate = rate(value)?,
        "slow_rate" => faults.slow_rate = rate(value)?,
        "malformed_rate" => faults.malformed_rate = rate(value)?,
        "slow_ms" => faults.slow_ms = ms(value)?,
        "timeout_rate" => faults.timeout_rate = rate(value)?,
        "timeout_ms" => faults.timeout_ms = ms(value)?,
        "max_faults" => faults.max_faults = Some(value.parse().map_err(|e| format!("fault {spec:?}: {e}"))?),
        other => return Err(format!("fault {spec:?}: unknown field {other:?}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_faults_bounds_injection() {
        let config = FaultConfig::default().on(Endpoint::GetSession, EndpointFaults::server_errors(2));
        let mut state = FaultState::new(config, BTreeMap::new());
        let decisions: Vec<_> = (0..4).map(|_| state.decide(Endpoint::GetSession)).collect();
        assert_eq!(decisions[0], Decision::Fail(500, "Internal Server Error"));
        assert_eq!(decisions[1], Decision::Fail(500, "Internal Server Error"));
        assert_eq!(decisions[2], Decision::Pass);
        assert_eq!(state.decide(Endpoint::Context), Decision::Pass);
    }

    #[test]
    fn rate_limit_rejects_beyond_limit() {
        let mut state = FaultState::new(FaultConfig::default(), BTreeMap::from([(Endpoint::DeploymentStatus, 2)]));
        assert_eq!(state.decide(Endpoint::DeploymentStatus), Decision::Pass);
        assert_eq!(state.decide(Endpoint::DeploymentStatus), Decision::Pass);
        assert_eq!(state.decide(Endpoint::DeploymentStatus), Decision::Fail(429, "Too Many Requests"));
    }

    #[test]
    fn parses_cli_faults() {
        let mut config = FaultConfig::default();
        apply_cli_fault(&mut config, "deployment_status:server_error_rate=0.25").expect("valid");
        apply_cli_fault(&mut config, "deployment_status:max_faults=3").expect("valid");
        let f = &config.endpoints[&Endpoint::DeploymentStatus];
        assert_eq!((f.server_error_rate, f.max_faults), (0.25, Some(3)));
        assert!(apply_cli_fault(&mut config, "nope:slow_ms=1").is_err());
        assert!(apply_cli_fault(&mut config, "context:bogus=1").is_err());
    }
}
