//! Configuration of a fake Edgegap instance: the account it serves (token, apps,
//! versions), how fast deployments progress, what process a deployment runs,
//! and which faults to inject.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::faults::{Endpoint, FaultConfig};

/// Everything a [`crate::FakeEdgegap`] needs to start.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// Where to listen; port 0 picks a free port (what tests use).
    pub listen: SocketAddr,
    /// The account API token accepted as `authorization: token <api_token>`.
    pub api_token: String,
    /// Applications of the account.
    pub apps: Vec<FakeApp>,
    /// Reported as the deployments' `public_ip` and `ARBITRIUM_PUBLIC_IP`.
    /// Children really listen on 127.0.0.1, so keep a loopback address for tests.
    pub public_ip: String,
    /// Domain after `<request_id>.` in `fqdn` (Edgegap: `pr.edgegap.net`).
    pub fqdn_suffix: String,
    /// Reported deployment location.
    pub location: FakeLocation,
    /// Lifecycle timing.
    pub delays: LifecycleDelays,
    /// The command a deployment runs. `None`: deployments have no process.
    pub game_server: Option<GameServerCommand>,
    /// Where children's stdout/stderr go.
    pub child_output: ChildOutput,
    /// Time between SIGTERM and SIGKILL when a deployment is stopped.
    pub stop_grace: Duration,
    /// Injected faults (also changeable at run time).
    pub faults: FaultConfig,
    /// Per-second request limits answered with 429, per endpoint.
    /// Defaults to Edgegap's documented limits ([`FakeConfig::documented_rate_limits`]).
    pub rate_limits: BTreeMap<Endpoint, u32>,
    /// How often the lifecycle driver advances states and reaps processes.
    pub tick: Duration,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_token: "fake-edgegap-token".to_owned(),
            apps: vec![FakeApp::default()],
            public_ip: "127.0.0.1".to_owned(),
            fqdn_suffix: "pr.edgegap.net".to_owned(),
            location: FakeLocation::default(),
            delays: LifecycleDelays::default(),
            game_server: None,
            child_output: ChildOutput::Inherit,
            stop_grace: Duration::from_secs(5),
            faults: FaultConfig::default(),
            rate_limits: Self::documented_rate_limits(),
            tick: Duration::from_millis(10),
        }
    }
}

impl FakeConfig {
    /// Edgegap's documented limits: 40 deploys/s, 20 status reads/s, 10 deployment lists/s.
    pub fn documented_rate_limits() -> BTreeMap<Endpoint, u32> {
        BTreeMap::from([
            (Endpoint::CreateDeployment, 40),
            (Endpoint::DeploymentStatus, 20),
            (Endpoint::ListDeployments, 10),
        ])
    }

    /// Fast lifecycle for tests: every step 5 ms, deploying 50 ms, 2 s grace.
    pub fn for_tests() -> Self {
        Self {
            delays: LifecycleDelays {
                step: Duration::from_millis(5),
                deploying: Duration::from_millis(50),
                session_link: Duration::ZERO,
            },
            stop_grace: Duration::from_secs(2),
            child_output: ChildOutput::Null,
            ..Self::default()
        }
    }

    /// Sets the deployment command.
    pub fn with_game_server(mut self, command: GameServerCommand) -> Self {
        self.game_server = Some(command);
        self
    }
}

/// Lifecycle timing: INITIALIZING → SEEKING → SEEKED → SCANNING each take
/// `step`, then the container starts and DEPLOYING lasts `deploying` before READY.
#[derive(Clone, Debug)]
pub struct LifecycleDelays {
    /// Each pre-deploy step.
    pub step: Duration,
    /// DEPLOYING → READY (the process is running during this time).
    pub deploying: Duration,
    /// How long a new session stays `Seeking` before it is linked.
    pub session_link: Duration,
}

impl Default for LifecycleDelays {
    fn default() -> Self {
        Self {
            step: Duration::from_millis(50),
            deploying: Duration::from_millis(500),
            session_link: Duration::from_millis(200),
        }
    }
}

/// An application of the fake account.
#[derive(Clone, Debug)]
pub struct FakeApp {
    /// App name.
    pub name: String,
    /// Inactive apps cannot get sessions or deployments (400).
    pub is_active: bool,
    /// Versions, oldest first (the last is the default "last version created").
    pub versions: Vec<FakeVersion>,
}

impl Default for FakeApp {
    fn default() -> Self {
        Self { name: "demo".to_owned(), is_active: true, versions: vec![FakeVersion::default()] }
    }
}

/// An application version.
#[derive(Clone, Debug)]
pub struct FakeVersion {
    /// Version name.
    pub name: String,
    /// Inactive versions reject sessions and deployments with 400.
    pub is_active: bool,
    /// Container ports.
    pub ports: Vec<FakePort>,
    /// `Seat`, `Match` or `Default`.
    pub session_kind: String,
    /// Seats per deployment.
    pub sockets: u32,
    /// Whether a session with no free deployment starts one.
    pub autodeploy: bool,
    /// Version environment variables passed to the process.
    pub envs: Vec<(String, String)>,
}

impl Default for FakeVersion {
    fn default() -> Self {
        Self {
            name: "v1".to_owned(),
            is_active: true,
            ports: vec![FakePort::udp("server port", 5420)],
            session_kind: "Seat".to_owned(),
            sockets: 10,
            autodeploy: true,
            envs: Vec::new(),
        }
    }
}

/// A container port of a version.
#[derive(Clone, Debug)]
pub struct FakePort {
    /// Port name (key of `ports` maps).
    pub name: String,
    /// Port declared in the app version.
    pub internal: u16,
    /// `UDP`, `TCP`, `HTTP`, `WS`.
    pub protocol: String,
    /// TLS upgrade for HTTP/WS.
    pub tls_upgrade: bool,
}

impl FakePort {
    /// A named UDP port.
    pub fn udp(name: &str, internal: u16) -> Self {
        Self { name: name.to_owned(), internal, protocol: "UDP".to_owned(), tls_upgrade: false }
    }
}

/// Reported deployment location.
#[derive(Clone, Debug)]
pub struct FakeLocation {
    /// City.
    pub city: String,
    /// Country.
    pub country: String,
    /// Continent.
    pub continent: String,
    /// Province/state.
    pub administrative_division: String,
    /// Timezone name.
    pub timezone: String,
    /// Latitude.
    pub latitude: f64,
    /// Longitude.
    pub longitude: f64,
}

impl Default for FakeLocation {
    fn default() -> Self {
        Self {
            city: "Montreal".to_owned(),
            country: "Canada".to_owned(),
            continent: "North America".to_owned(),
            administrative_division: "Quebec".to_owned(),
            timezone: "Eastern Time".to_owned(),
            latitude: 45.508888,
            longitude: -73.561668,
        }
    }
}

/// The program a deployment runs, standing in for the container.
#[derive(Clone, Debug)]
pub struct GameServerCommand {
    /// Executable path.
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment (besides `ARBITRIUM_*` and deployment variables).
    pub env: Vec<(String, String)>,
}

impl GameServerCommand {
    /// A command with no arguments.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self { program: program.into(), args: Vec::new(), env: Vec::new() }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }
}

/// Where a deployment process's stdout and stderr go.
#[derive(Clone, Debug)]
pub enum ChildOutput {
    /// The fake's own stderr (both streams, so the fake's stdout stays machine-readable).
    Inherit,
    /// Discarded.
    Null,
    /// `<dir>/<request_id>.log`.
    Dir(PathBuf),
}
