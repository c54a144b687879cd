use std::net::{IpAddr, SocketAddr};

use bevygap_shared::nats::server_credentials::ServerCredentialKey;

use super::credentials::{AuthCalloutConfig, ServerCredentialConfig};
use std::path::PathBuf;
use std::time::Duration;

use bevygap_shared::naming::Namespace;
use clap::{Parser, ValueEnum};

use crate::game::GameCatalog;

/// Which provider starts game servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderKind {
    /// Child processes on this machine (the default on one machine).
    Local,
    /// Servers started elsewhere (systemd, compose, Kubernetes…) that register themselves in
    /// NATS; the matchmaker places players on them and never starts or stops them.
    Fleet,
    /// Deployments on Edgegap's cloud (v2 deployments API), started near the players and
    /// stopped when empty; needs BEVYGAP_EDGEGAP_API_TOKEN and BEVYGAP_EDGEGAP_APP.
    Edgegap,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line, with every field (`request_id`, `server_id`…) as a key, for a
    /// log pipeline.
    Json,
}

/// Validated settings of the `edgegap` provider (present when it is the provider).
#[derive(Debug, Clone)]
pub struct EdgegapSettings {
    /// Account API token (redacted in `Debug`; never logged).
    pub api_key: bevygap_edgegap::ApiKey,
    /// API base URL.
    pub base_url: String,
    /// Edgegap application.
    pub app: String,
    /// Edgegap version for every game version; `None`: the game version.
    pub version: Option<String>,
    /// Where to start servers when no player IP is known.
    pub location: Option<crate::providers::edgegap::GeoPoint>,
    /// Deployments only, or a session per player too.
    pub mode: crate::providers::edgegap::EdgegapMode,
    /// Where Edgegap's webhooks reach the matchmaker (its `Debug` hides the URL's path).
    pub webhook: Option<crate::providers::edgegap::EdgegapWebhook>,
    /// App-version port names serving UDP and WebTransport, passed to each deployment.
    pub udp_port_name: Option<String>,
    pub wt_port_name: Option<String>,
}

/// `bevygap-matchmaker` command line. Every flag can also be given as the env var shown.
/// NATS settings (`NATS_URL`, auth, TLS) and Lightyear keys (`LIGHTYEAR_*`) are read from env
/// only, so secrets never sit on a command line.
#[derive(Debug, Clone, Parser)]
#[command(name = "bevygap-matchmaker", version, about = "Places Bevy/Lightyear players on game servers on demand.")]
pub struct Cli {
    /// NATS namespace (usually the app name): all buckets and subjects derive from it.
    #[arg(long, env = "BEVYGAP_NAMESPACE", default_value = "bevygap-dev")]
    pub namespace: String,
    /// Games served, as game:version[,game:version…].
    #[arg(long, env = "BEVYGAP_GAMES", default_value = "demo:1.0")]
    pub games: String,
    /// Public JSON-RPC endpoint for players (matchmaking methods only).
    #[arg(long, env = "BEVYGAP_PUBLIC_ADDR", default_value = "0.0.0.0:7800")]
    pub public_addr: SocketAddr,
    /// Admin endpoint (full Bevy Remote Protocol plus admin methods).
    #[arg(long, env = "BEVYGAP_ADMIN_ADDR", default_value = "127.0.0.1:15702")]
    pub admin_addr: SocketAddr,
    /// Bearer token for the admin endpoint; required when it binds a non-loopback address.
    #[arg(long, env = "BEVYGAP_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Proxies whose X-Forwarded-For is trusted: comma-separated IPs or CIDR ranges
    /// (10.0.0.0/8, 2001:db8::/32).
    #[arg(long, env = "BEVYGAP_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<crate::endpoints::limits::ProxyRange>,
    /// Development mode: honour a client-supplied client_ip.
    #[arg(long, env = "BEVYGAP_DEV_MODE", default_value_t = false)]
    pub dev_mode: bool,
    /// Value of Access-Control-Allow-Origin on public responses (unset: no CORS headers).
    #[arg(long, env = "BEVYGAP_CORS_ORIGIN")]
    pub cors_origin: Option<String>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "BEVYGAP_MAX_BODY_BYTES", default_value_t = 8192)]
    pub max_body_bytes: usize,
    /// Requests per minute allowed from one IP on the public endpoint.
    #[arg(long, env = "BEVYGAP_RATE_PER_MINUTE", default_value_t = 60)]
    pub rate_per_minute: u32,
    /// Burst of requests allowed from one IP before the rate applies.
    #[arg(long, env = "BEVYGAP_RATE_BURST", default_value_t = 10)]
    pub rate_burst: u32,
    /// Open connections one client address may hold on the public endpoint (IPv6 per /64;
    /// trusted proxies are not limited).
    #[arg(long, env = "BEVYGAP_MAX_CONNECTIONS_PER_IP", default_value_t = 32)]
    pub max_connections_per_ip: usize,
    /// Open connections on the public endpoint in total (each waiting player holds one); never
    /// more than the file-descriptor limit allows, keeping descriptors aside for NATS, game
    /// servers and the admin endpoint.
    #[arg(long, env = "BEVYGAP_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Seconds a connection may stay silent (before a request, or between requests) before it
    /// is closed.
    #[arg(long, env = "BEVYGAP_IDLE_TIMEOUT_SECS", default_value_t = 5)]
    pub idle_timeout_secs: u64,
    /// Most join requests waiting at once; more fail with too_many_waiting.
    #[arg(long, env = "BEVYGAP_MAX_WAITING", default_value_t = 1000)]
    pub max_waiting: usize,
    /// Most joins waiting at once from one address.
    #[arg(long, env = "BEVYGAP_MAX_JOINS_PER_IP", default_value_t = 4)]
    pub max_joins_per_ip: usize,
    /// Seconds a join may take before it fails with timeout.
    #[arg(long, env = "BEVYGAP_JOIN_DEADLINE_SECS", default_value_t = 60)]
    pub join_deadline_secs: u64,
    /// Seconds between keep-alive comments on a streamed join.
    #[arg(long, env = "BEVYGAP_KEEPALIVE_SECS", default_value_t = 10)]
    pub keepalive_secs: u64,
    /// Seconds a ConnectToken can start a connection.
    #[arg(long, env = "BEVYGAP_TOKEN_TTL_SECS", default_value_t = 30)]
    pub token_ttl_secs: u32,
    /// Seconds without packets before Lightyear drops a connection.
    #[arg(long, env = "BEVYGAP_CONNECTION_TIMEOUT_SECS", default_value_t = 10)]
    pub connection_timeout_secs: u32,
    /// Provider that starts game servers.
    #[arg(long, env = "BEVYGAP_PROVIDER", value_enum, default_value_t = ProviderKind::Local)]
    pub provider: ProviderKind,
    /// Log line format on stderr: `text`, or `json` (one object per line) for a log pipeline.
    #[arg(long, env = "BEVYGAP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Game-server command for the local provider (program and arguments, split on spaces).
    /// Default: `bevygap-demo-server` next to this executable.
    #[arg(long, env = "BEVYGAP_GAME_SERVER_CMD")]
    pub game_server_cmd: Option<String>,
    /// Host that local game servers are reachable on (put in ConnectTokens).
    #[arg(long, env = "BEVYGAP_LOCAL_PUBLIC_IP", default_value = "127.0.0.1")]
    pub local_public_ip: IpAddr,
    /// Players per game server.
    #[arg(long, env = "BEVYGAP_SERVER_CAPACITY", default_value_t = 16)]
    pub server_capacity: u32,
    /// Most game servers running at once.
    #[arg(long, env = "BEVYGAP_MAX_SERVERS", default_value_t = 8)]
    pub max_servers: usize,
    /// Seconds a join waits for a free seat when no server can be started (fleet full, or the
    /// server limit reached) before it fails with no_capacity. Default: the join deadline.
    #[arg(long, env = "BEVYGAP_CAPACITY_WAIT_SECS")]
    pub capacity_wait_secs: Option<u64>,
    /// Seconds an empty server is kept before it is stopped.
    #[arg(long, env = "BEVYGAP_EMPTY_GRACE_SECS", default_value_t = 30)]
    pub empty_grace_secs: u64,
    /// Seconds a new server may take to report itself ready.
    #[arg(long, env = "BEVYGAP_SERVER_START_TIMEOUT_SECS", default_value_t = 45)]
    pub server_start_timeout_secs: u64,
    /// Seconds a running server may go without a heartbeat (its record rewritten) before it
    /// takes no new players; it is given up after the silence grace on top.
    #[arg(long, env = "BEVYGAP_SERVER_HEARTBEAT_TIMEOUT_SECS", default_value_t = 15)]
    pub server_heartbeat_timeout_secs: u64,
    /// Seconds a server whose NATS record vanished (crash or NATS outage) is waited for
    /// before it is given up and stopped.
    #[arg(long, env = "BEVYGAP_SERVER_SILENCE_GRACE_SECS", default_value_t = 60)]
    pub server_silence_grace_secs: u64,
    /// Seconds a stopped server gets to exit after SIGTERM before SIGKILL.
    #[arg(long, env = "BEVYGAP_STOP_GRACE_SECS", default_value_t = 5)]
    pub stop_grace_secs: u64,
    /// Copies of every JetStream KV bucket: 1 on a single nats-server, 3 on a three-node
    /// cluster (any one node can then be lost without losing a record). Applied when the
    /// matchmaker creates or updates the buckets at start.
    #[arg(long, env = "BEVYGAP_NATS_REPLICAS", default_value_t = 1)]
    pub nats_replicas: usize,
    /// Seconds the namespace lease lasts without renewal: how long, at most, joins wait for
    /// another replica after the owning one dies (see `ownership`). Renewed every second.
    #[arg(long, env = "BEVYGAP_LEASE_SECS", default_value_t = 5)]
    pub lease_secs: u64,
    /// This replica's name in the lease, the presence list and the admin view (default: the
    /// host name and process id).
    #[arg(long, env = "BEVYGAP_REPLICA_NAME")]
    pub replica_name: Option<String>,
    /// nats-server binary for the embedded server started when NATS_URL is unset.
    #[arg(long, env = "BEVYGAP_NATS_SERVER_BIN", default_value = "nats-server")]
    pub nats_server_bin: PathBuf,
    /// Edgegap account API token, with or without the `token ` prefix (provider edgegap).
    /// Held as a [`Secret`](bevygap_shared::Secret) from parsing on, so not even `Cli`'s
    /// `Debug` shows it.
    #[arg(long, env = "BEVYGAP_EDGEGAP_API_TOKEN", hide_env_values = true, value_parser = secret)]
    pub edgegap_api_token: Option<bevygap_shared::Secret>,
    /// Edgegap API base URL (a fake's URL in tests).
    #[arg(long, env = "BEVYGAP_EDGEGAP_URL", default_value = "https://api.edgegap.com")]
    pub edgegap_url: String,
    /// Edgegap application whose versions run the game servers (provider edgegap).
    #[arg(long, env = "BEVYGAP_EDGEGAP_APP")]
    pub edgegap_app: Option<String>,
    /// Edgegap version name for every game version. Default: the game version of the join
    /// (game `demo:1.0` runs app version `1.0`).
    #[arg(long, env = "BEVYGAP_EDGEGAP_VERSION")]
    pub edgegap_version: Option<String>,
    /// Where to start an Edgegap server when no player IP is known, as latitude,longitude.
    #[arg(long, env = "BEVYGAP_EDGEGAP_LOCATION")]
    pub edgegap_location: Option<String>,
    /// `deployments` (v2 deployments; our seat book counts players) or `sessions` (also an
    /// Edgegap session per seated player: the legacy Sessions API, for accounts that use it).
    #[arg(long, env = "BEVYGAP_EDGEGAP_MODE", default_value = "deployments")]
    pub edgegap_mode: String,
    /// URL Edgegap's webhooks call (deployment ready/error/terminated, session linked): it
    /// makes the matchmaker read that status at once. Put a secret in its path; never logged.
    /// Unset: status polling with backoff alone.
    #[arg(long, env = "BEVYGAP_EDGEGAP_WEBHOOK_URL", hide_env_values = true, value_parser = secret)]
    pub edgegap_webhook_url: Option<bevygap_shared::Secret>,
    /// Where the matchmaker listens for those webhooks (behind the proxy the URL names).
    #[arg(long, env = "BEVYGAP_EDGEGAP_WEBHOOK_BIND", default_value = "0.0.0.0:8090")]
    pub edgegap_webhook_bind: SocketAddr,
    /// App-version port name that serves UDP, passed to each deployment as
    /// BEVYGAP_UDP_PORT_NAME. Unset: the app version's env (or the server's default, `udp`).
    #[arg(long, env = "BEVYGAP_EDGEGAP_UDP_PORT_NAME")]
    pub edgegap_udp_port_name: Option<String>,
    /// App-version port name that serves WebTransport, passed as BEVYGAP_WT_PORT_NAME.
    #[arg(long, env = "BEVYGAP_EDGEGAP_WT_PORT_NAME")]
    pub edgegap_wt_port_name: Option<String>,
    /// Secret (32 bytes as 64 hex characters) for per-server NATS credentials: every server
    /// the matchmaker launches gets its own NATS_USER/NATS_PASSWORD, and a nats-server set up
    /// as in assets/nats/bevygap-per-server.conf confines it to its own records. Every replica
    /// needs the same key. Never logged.
    #[arg(long, env = "BEVYGAP_SERVER_CREDENTIAL_KEY", hide_env_values = true, value_parser = secret)]
    pub server_credential_key: Option<bevygap_shared::Secret>,
    /// How long issued server credentials stay valid, in hours (longer than any server lives).
    #[arg(long, env = "BEVYGAP_SERVER_CREDENTIAL_HOURS", default_value_t = 336)]
    pub server_credential_hours: u64,
    /// Account nkey seed (SA…) of the auth callout issuer: set it to have this matchmaker
    /// answer nats-server's authorization requests for game servers. Never logged.
    #[arg(long, env = "BEVYGAP_AUTH_CALLOUT_ISSUER_SEED", hide_env_values = true, value_parser = secret)]
    pub auth_callout_issuer_seed: Option<bevygap_shared::Secret>,
    /// The callout account's user the service connects as.
    #[arg(long, env = "BEVYGAP_AUTH_CALLOUT_USER", default_value = "auth")]
    pub auth_callout_user: String,
    /// Its password. Never logged.
    #[arg(long, env = "BEVYGAP_AUTH_CALLOUT_PASSWORD", hide_env_values = true, value_parser = secret)]
    pub auth_callout_password: Option<bevygap_shared::Secret>,
    /// NATS account game servers are placed in. Default: bevygap_<namespace>.
    #[arg(long, env = "BEVYGAP_AUTH_CALLOUT_ACCOUNT")]
    pub auth_callout_account: Option<String>,
    /// Prints NATS_USER and NATS_PASSWORD for a self-hosted (fleet) server with this id, from
    /// BEVYGAP_SERVER_CREDENTIAL_KEY, and exits: how an operator admits a fleet server.
    #[arg(long, value_name = "SERVER_ID")]
    pub issue_server_credentials: Option<String>,
}

/// A setting that failed validation; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: String,
}

/// Wraps a secret flag value as soon as clap reads it.
fn secret(value: &str) -> Result<bevygap_shared::Secret, std::convert::Infallible> {
    Ok(bevygap_shared::Secret::new(value))
}

fn bad(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError { setting, reason: reason.into() }
}

/// Validated settings the app runs with.
#[derive(Debug, Clone, bevy::prelude::Resource)]
pub struct MatchmakerConfig {
    pub namespace: Namespace,
    pub games: GameCatalog,
    pub public_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub admin_token: Option<bevygap_shared::Secret>,
    pub trusted_proxies: Vec<crate::endpoints::limits::ProxyRange>,
    pub dev_mode: bool,
    pub cors_origin: Option<String>,
    pub max_body_bytes: usize,
    pub rate_per_minute: u32,
    pub rate_burst: u32,
    pub max_connections_per_ip: usize,
    pub max_connections: usize,
    pub idle_timeout: Duration,
    pub max_waiting: usize,
    pub max_joins_per_ip: usize,
    pub join_deadline: Duration,
    pub keepalive: Duration,
    pub token_ttl_secs: u32,
    pub connection_timeout_secs: u32,
    pub log_format: LogFormat,
    pub provider: ProviderKind,
    pub game_server_cmd: Vec<String>,
    pub local_public_ip: IpAddr,
    pub server_capacity: u32,
    pub max_servers: usize,
    pub capacity_wait: Duration,
    pub empty_grace: Duration,
    pub server_start_timeout: Duration,
    pub heartbeat_timeout: Duration,
    pub silence_grace: Duration,
    pub stop_grace: Duration,
    pub nats_server_bin: PathBuf,
    /// Copies of every KV bucket (`BEVYGAP_NATS_REPLICAS`).
    pub nats_replicas: usize,
    /// How long the namespace lease lasts unrenewed (`BEVYGAP_LEASE_SECS`).
    pub lease_ttl: Duration,
    /// This replica's name (`BEVYGAP_REPLICA_NAME`).
    pub replica_name: crate::ownership::ReplicaName,
    /// Settings of the `edgegap` provider; `Some` exactly when it is the provider.
    pub edgegap: Option<EdgegapSettings>,
    /// Per-server NATS credentials, if enabled.
    pub server_credentials: Option<ServerCredentialConfig>,
}

impl Cli {
    /// Checks every setting and resolves defaults that depend on the environment.
    pub fn validate(self) -> Result<MatchmakerConfig, ConfigError> {
        let namespace =
            Namespace::new(&self.namespace).map_err(|e| bad("--namespace / BEVYGAP_NAMESPACE", e.to_string()))?;
        let games = GameCatalog::parse(&self.games).map_err(|e| bad("--games / BEVYGAP_GAMES", e))?;
        let admin_token = self.admin_token.filter(|t| !t.is_empty()).map(bevygap_shared::Secret::new);
        if !self.admin_addr.ip().is_loopback() && admin_token.is_none() {
            return Err(bad(
                "--admin-token / BEVYGAP_ADMIN_TOKEN",
                format!("is required because the admin endpoint binds {}, which is not loopback", self.admin_addr),
            ));
        }
        if admin_token.as_ref().is_some_and(|t| t.expose().len() < 16) {
            return Err(bad("--admin-token / BEVYGAP_ADMIN_TOKEN", "must be at least 16 characters"));
        }
        if self.public_addr == self.admin_addr && self.public_addr.port() != 0 {
            return Err(bad("--admin-addr / BEVYGAP_ADMIN_ADDR", "must differ from the public address"));
        }
        let positive =
            |v: u64, name: &'static str| if v == 0 { Err(bad(name, "must be greater than 0")) } else { Ok(v) };
        positive(self.max_body_bytes as u64, "--max-body-bytes / BEVYGAP_MAX_BODY_BYTES")?;
        positive(self.rate_per_minute.into(), "--rate-per-minute / BEVYGAP_RATE_PER_MINUTE")?;
        positive(self.rate_burst.into(), "--rate-burst / BEVYGAP_RATE_BURST")?;
        positive(self.max_waiting as u64, "--max-waiting / BEVYGAP_MAX_WAITING")?;
        positive(self.max_connections_per_ip as u64, "--max-connections-per-ip / BEVYGAP_MAX_CONNECTIONS_PER_IP")?;
        positive(self.max_connections as u64, "--max-connections / BEVYGAP_MAX_CONNECTIONS")?;
        positive(self.idle_timeout_secs, "--idle-timeout-secs / BEVYGAP_IDLE_TIMEOUT_SECS")?;
        positive(self.max_joins_per_ip as u64, "--max-joins-per-ip / BEVYGAP_MAX_JOINS_PER_IP")?;
        positive(self.join_deadline_secs, "--join-deadline-secs / BEVYGAP_JOIN_DEADLINE_SECS")?;
        positive(self.keepalive_secs, "--keepalive-secs / BEVYGAP_KEEPALIVE_SECS")?;
        positive(self.token_ttl_secs.into(), "--token-ttl-secs / BEVYGAP_TOKEN_TTL_SECS")?;
        positive(self.connection_timeout_secs.into(), "--connection-timeout-secs / BEVYGAP_CONNECTION_TIMEOUT_SECS")?;
        positive(self.server_capacity.into(), "--server-capacity / BEVYGAP_SERVER_CAPACITY")?;
        positive(self.max_servers as u64, "--max-servers / BEVYGAP_MAX_SERVERS")?;
        positive(
            self.server_heartbeat_timeout_secs,
            "--server-heartbeat-timeout-secs / BEVYGAP_SERVER_HEARTBEAT_TIMEOUT_SECS",
        )?;
        let game_server_cmd = match self.game_server_cmd {
            Some(cmd) => {
                let parts: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
                if parts.is_empty() {
                    return Err(bad("--game-server-cmd / BEVYGAP_GAME_SERVER_CMD", "is empty"));
                }
                parts
            }
            None => vec![default_game_server()],
        };
        let edgegap = match self.provider {
            ProviderKind::Edgegap => Some(edgegap_settings(EdgegapFlags {
                token: self.edgegap_api_token,
                url: self.edgegap_url,
                app: self.edgegap_app,
                version: self.edgegap_version,
                location: self.edgegap_location,
                mode: self.edgegap_mode,
                webhook_url: self.edgegap_webhook_url,
                webhook_bind: self.edgegap_webhook_bind,
                udp_port_name: self.edgegap_udp_port_name,
                wt_port_name: self.edgegap_wt_port_name,
            })?),
            ProviderKind::Local | ProviderKind::Fleet => None,
        };
        if !(1..=5).contains(&self.nats_replicas) {
            return Err(bad("--nats-replicas / BEVYGAP_NATS_REPLICAS", "must be 1 to 5 (JetStream's range)"));
        }
        let nats_replicas = self.nats_replicas;
        if !(2..=60).contains(&self.lease_secs) {
            return Err(bad("--lease-secs / BEVYGAP_LEASE_SECS", "must be 2 to 60 seconds"));
        }
        let replica_name = match self.replica_name.filter(|n| !n.is_empty()) {
            Some(name) => crate::ownership::ReplicaName::new(name)
                .map_err(|e| bad("--replica-name / BEVYGAP_REPLICA_NAME", e.to_string()))?,
            None => crate::ownership::ReplicaName::generated(),
        };
        let server_credentials = server_credential_settings(
            self.server_credential_key,
            self.server_credential_hours,
            self.auth_callout_issuer_seed,
            self.auth_callout_user,
            self.auth_callout_password,
            self.auth_callout_account,
            &namespace,
        )?;
        Ok(MatchmakerConfig {
            namespace,
            games,
            public_addr: self.public_addr,
            admin_addr: self.admin_addr,
            admin_token,
            trusted_proxies: self.trusted_proxies,
            dev_mode: self.dev_mode,
            cors_origin: self.cors_origin.filter(|o| !o.is_empty()),
            max_body_bytes: self.max_body_bytes,
            rate_per_minute: self.rate_per_minute,
            rate_burst: self.rate_burst,
            max_connections_per_ip: self.max_connections_per_ip,
            max_connections: self.max_connections,
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            max_waiting: self.max_waiting,
            max_joins_per_ip: self.max_joins_per_ip,
            join_deadline: Duration::from_secs(self.join_deadline_secs),
            keepalive: Duration::from_secs(self.keepalive_secs),
            token_ttl_secs: self.token_ttl_secs,
            connection_timeout_secs: self.connection_timeout_secs,
            log_format: self.log_format,
            provider: self.provider,
            game_server_cmd,
            local_public_ip: self.local_public_ip,
            server_capacity: self.server_capacity,
            max_servers: self.max_servers,
            capacity_wait: Duration::from_secs(self.capacity_wait_secs.unwrap_or(self.join_deadline_secs)),
            empty_grace: Duration::from_secs(self.empty_grace_secs),
            server_start_timeout: Duration::from_secs(self.server_start_timeout_secs.max(1)),
            heartbeat_timeout: Duration::from_secs(self.server_heartbeat_timeout_secs),
            silence_grace: Duration::from_secs(self.server_silence_grace_secs),
            stop_grace: Duration::from_secs(self.stop_grace_secs),
            nats_server_bin: self.nats_server_bin,
            nats_replicas,
            lease_ttl: Duration::from_secs(self.lease_secs),
            replica_name,
            edgegap,
            server_credentials,
        })
    }
}

/// Checks the per-server credential settings; every error names its variable.
fn server_credential_settings(
    key: Option<bevygap_shared::Secret>,
    hours: u64,
    seed: Option<bevygap_shared::Secret>,
    user: String,
    password: Option<bevygap_shared::Secret>,
    account: Option<String>,
    namespace: &Namespace,
) -> Result<Option<ServerCredentialConfig>, ConfigError> {
    const KEY: &str = "--server-credential-key / BEVYGAP_SERVER_CREDENTIAL_KEY";
    const SEED: &str = "--auth-callout-issuer-seed / BEVYGAP_AUTH_CALLOUT_ISSUER_SEED";
    let key = key.filter(|k| !k.expose().trim().is_empty());
    let seed = seed.filter(|s| !s.expose().trim().is_empty());
    let Some(key) = key else {
        return match seed {
            Some(_) => Err(bad(KEY, "is required with an auth callout issuer seed")),
            None => Ok(None),
        };
    };
    // The parse error never quotes the key.
    let key = ServerCredentialKey::from_hex(key.expose().trim()).map_err(|e| bad(KEY, e.to_string()))?;
    if hours == 0 {
        return Err(bad("--server-credential-hours / BEVYGAP_SERVER_CREDENTIAL_HOURS", "must be at least 1"));
    }
    let callout = match seed {
        Some(issuer_seed) => {
            let password = password
                .filter(|p| !p.expose().is_empty())
                .ok_or_else(|| bad("--auth-callout-password / BEVYGAP_AUTH_CALLOUT_PASSWORD", "is required"))?;
            let account = account
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| format!("bevygap_{}", namespace.as_str()));
            Some(AuthCalloutConfig { issuer_seed, user, password, account })
        }
        None => None,
    };
    let config = ServerCredentialConfig { key, lifetime: Duration::from_secs(hours.saturating_mul(3600)), callout };
    config.callout_service(namespace).map_err(|e| bad(SEED, e.to_string()))?;
    Ok(Some(config))
}

/// The `edgegap` provider's flags, as given.
struct EdgegapFlags {
    token: Option<bevygap_shared::Secret>,
    url: String,
    app: Option<String>,
    version: Option<String>,
    location: Option<String>,
    mode: String,
    webhook_url: Option<bevygap_shared::Secret>,
    webhook_bind: SocketAddr,
    udp_port_name: Option<String>,
    wt_port_name: Option<String>,
}

/// Checks the `edgegap` provider's settings; every error names its variable.
fn edgegap_settings(flags: EdgegapFlags) -> Result<EdgegapSettings, ConfigError> {
    const TOKEN: &str = "--edgegap-api-token / BEVYGAP_EDGEGAP_API_TOKEN";
    let EdgegapFlags { token, url, app, version, location, .. } = flags;
    let token = token
        .filter(|t| !t.expose().trim().is_empty())
        .ok_or_else(|| bad(TOKEN, "is required with provider edgegap"))?;
    // The parse error never quotes the token.
    let api_key = bevygap_edgegap::ApiKey::parse(token.expose()).map_err(|e| bad(TOKEN, e.to_string()))?;
    let base_url = url.trim().to_string();
    if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
        return Err(bad("--edgegap-url / BEVYGAP_EDGEGAP_URL", format!("{base_url:?} is not an http(s) URL")));
    }
    let app = app
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| bad("--edgegap-app / BEVYGAP_EDGEGAP_APP", "is required with provider edgegap"))?;
    let version = version.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let location = location
        .filter(|l| !l.trim().is_empty())
        .map(|l| crate::providers::edgegap::GeoPoint::parse(&l))
        .transpose()
        .map_err(|e| bad("--edgegap-location / BEVYGAP_EDGEGAP_LOCATION", e))?;
    let mode = crate::providers::edgegap::EdgegapMode::parse(&flags.mode)
        .map_err(|e| bad("--edgegap-mode / BEVYGAP_EDGEGAP_MODE", e))?;
    let webhook = match flags.webhook_url.filter(|u| !u.expose().trim().is_empty()) {
        Some(url) => {
            let url = url.expose().trim().to_string();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                // Never quote it: its path is a secret.
                return Err(bad("--edgegap-webhook-url / BEVYGAP_EDGEGAP_WEBHOOK_URL", "is not an http(s) URL"));
            }
            Some(crate::providers::edgegap::EdgegapWebhook { public_url: url, bind: flags.webhook_bind })
        }
        None => None,
    };
    let name = |n: Option<String>| n.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    Ok(EdgegapSettings {
        api_key,
        base_url,
        app,
        version,
        location,
        mode,
        webhook,
        udp_port_name: name(flags.udp_port_name),
        wt_port_name: name(flags.wt_port_name),
    })
}

/// `bevygap-demo-server` beside the running executable (both are built into one target dir).
fn default_game_server() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("bevygap-demo-server")))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "bevygap-demo-server".into())
}

impl MatchmakerConfig {
    /// Whether the admin endpoint must demand a bearer token: off loopback, and with the
    /// `local` provider, whose game servers run on this host and could otherwise call it.
    pub fn admin_token_required(&self) -> bool {
        !self.admin_addr.ip().is_loopback() || self.provider == ProviderKind::Local
    }

    /// Gives the admin endpoint a random token when one is required and none was set;
    /// returns it so the operator can be shown it once (the dashboard accepts it in its URL
    /// fragment: `http://<admin>/#token=<token>`).
    pub fn ensure_admin_token(&mut self) -> Option<bevygap_shared::Secret> {
        if self.admin_token.is_some() || !self.admin_token_required() {
            return None;
        }
        let token = bevygap_shared::Secret::new(format!("{:032x}", rand::random::<u128>()));
        self.admin_token = Some(token.clone());
        Some(token)
    }

    /// Refuses the all-zero development key outside development mode: with it anyone can
    /// forge ConnectTokens, so it is never used by accident in production.
    pub fn check_keys(&self, keys: &bevygap_shared::LightyearKeys) -> Result<(), ConfigError> {
        if keys.is_development() && !self.dev_mode {
            return Err(bad(
                "LIGHTYEAR_PRIVATE_KEY / LIGHTYEAR_PRIVATE_KEY_FILE",
                "is unset (the all-zero development key lets anyone forge tokens); set a 32-byte key, \
                 or BEVYGAP_DEV_MODE=true on a development machine",
            ));
        }
        Ok(())
    }

    /// The rules placement works within, for a provider that does (or does not) start
    /// servers on demand: on-demand servers are filled (so empty ones stop), a fleet's servers
    /// share the load.
    pub fn placement_rules(&self, starts_servers: bool) -> crate::placement::PlacementRules {
        use crate::placement::{Packing, PlacementRules};
        let packing = if starts_servers { Packing::Fill } else { Packing::Spread };
        PlacementRules {
            max_servers: self.max_servers,
            server_capacity: self.server_capacity,
            may_launch: starts_servers,
            packing,
        }
    }

    /// The timers of the server phase table.
    pub fn phase_timers(&self) -> crate::servers::PhaseTimers {
        crate::servers::PhaseTimers {
            start_timeout: self.server_start_timeout.as_secs_f64(),
            silence_grace: self.silence_grace.as_secs_f64(),
            heartbeat_timeout: self.heartbeat_timeout.as_secs_f64(),
            // SIGTERM, the stop grace, SIGKILL, then a margin for the record to go.
            stop_timeout: self.stop_grace.as_secs_f64() + 10.0,
        }
    }

    /// The caps of join admission.
    pub fn admission_limits(&self) -> crate::joins::admission::AdmissionLimits {
        crate::joins::admission::AdmissionLimits {
            max_waiting: self.max_waiting,
            max_per_requester: self.max_joins_per_ip,
        }
    }

    /// Settings for tests: ephemeral loopback ports and short timers.
    pub fn for_tests(namespace: &str, game_server_cmd: Vec<String>) -> Self {
        let mut cli = Cli::parse_from(["bevygap-matchmaker"]);
        cli.namespace = namespace.into();
        cli.public_addr = "127.0.0.1:0".parse().expect("literal address");
        cli.admin_addr = "127.0.0.1:0".parse().expect("literal address");
        let mut cfg = cli.validate().expect("test defaults are valid");
        cfg.game_server_cmd = game_server_cmd;
        cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<MatchmakerConfig, ConfigError> {
        let mut all = vec!["bevygap-matchmaker"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("clap parses").validate()
    }

    #[test]
    fn defaults_are_valid() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.public_addr.port(), 7800);
        assert!(c.admin_addr.ip().is_loopback());
        assert!(c.admin_token.is_none());
    }

    #[test]
    fn admin_off_loopback_requires_a_token() {
        let err = parse(&["--admin-addr", "0.0.0.0:15702"]).unwrap_err();
        assert!(err.to_string().contains("BEVYGAP_ADMIN_TOKEN"), "{err}");
        assert!(parse(&["--admin-addr", "0.0.0.0:15702", "--admin-token", "0123456789abcdef"]).is_ok());
        assert!(parse(&["--admin-addr", "0.0.0.0:15702", "--admin-token", "short"]).is_err());
    }

    #[test]
    fn server_credentials_need_a_valid_key_and_a_callout_needs_an_account_seed_and_password() {
        const KEY: &str = "0909090909090909090909090909090909090909090909090909090909090909";
        assert!(parse(&[]).unwrap().server_credentials.is_none(), "off unless configured");
        let err = parse(&["--server-credential-key", "not-hex-and-secret"]).unwrap_err();
        assert!(err.setting.contains("BEVYGAP_SERVER_CREDENTIAL_KEY") && !err.to_string().contains("secret"));
        let seed = nkeys::KeyPair::new_account().seed().unwrap();
        let err = parse(&["--auth-callout-issuer-seed", &seed]).unwrap_err();
        assert!(err.setting.contains("BEVYGAP_SERVER_CREDENTIAL_KEY"), "a callout without a key: {err}");
        let err = parse(&["--server-credential-key", KEY, "--auth-callout-issuer-seed", &seed]).unwrap_err();
        assert!(err.setting.contains("BEVYGAP_AUTH_CALLOUT_PASSWORD"), "{err}");
        let user_seed = nkeys::KeyPair::new_user().seed().unwrap();
        let with_password = |seed: &str| {
            parse(&[
                "--server-credential-key",
                KEY,
                "--auth-callout-issuer-seed",
                seed,
                "--auth-callout-password",
                "change-me-auth",
            ])
        };
        let err = with_password(&user_seed).unwrap_err();
        assert!(err.setting.contains("BEVYGAP_AUTH_CALLOUT_ISSUER_SEED") && !err.to_string().contains(&user_seed));
        let config = with_password(&seed).unwrap();
        let credentials = config.server_credentials.expect("enabled");
        let callout = credentials.callout.as_ref().expect("callout");
        assert_eq!((callout.user.as_str(), callout.account.as_str()), ("auth", "bevygap_bevygap-dev"));
        assert_eq!(credentials.lifetime, Duration::from_secs(336 * 3600));
        let shown = format!("{credentials:?}");
        assert!(!shown.contains(KEY) && !shown.contains(&seed) && !shown.contains("change-me-auth"), "{shown}");
    }

    #[test]
    fn with_servers_on_this_host_the_loopback_admin_gets_a_token_too() {
        let mut local = parse(&[]).unwrap();
        assert!(local.admin_token_required(), "local game servers could call a token-less loopback admin");
        let generated = local.ensure_admin_token().expect("a token is generated");
        assert_eq!(generated.expose().len(), 32);
        assert_eq!(local.admin_token.as_ref().map(|t| t.expose()), Some(generated.expose()));
        assert!(local.ensure_admin_token().is_none(), "generated once");

        let mut fleet = parse(&["--provider", "fleet"]).unwrap();
        assert!(!fleet.admin_token_required() && fleet.ensure_admin_token().is_none());
        let mut chosen = parse(&["--admin-token", "0123456789abcdef"]).unwrap();
        assert!(chosen.ensure_admin_token().is_none(), "an operator's token is kept");
    }

    #[test]
    fn bad_values_name_the_setting() {
        assert!(parse(&["--namespace", "a.b"]).unwrap_err().setting.contains("BEVYGAP_NAMESPACE"));
        assert!(parse(&["--games", "nope"]).unwrap_err().setting.contains("BEVYGAP_GAMES"));
        assert!(parse(&["--max-waiting", "0"]).unwrap_err().setting.contains("BEVYGAP_MAX_WAITING"));
        assert!(parse(&["--nats-replicas", "0"]).unwrap_err().setting.contains("BEVYGAP_NATS_REPLICAS"));
        assert!(parse(&["--nats-replicas", "7"]).unwrap_err().setting.contains("BEVYGAP_NATS_REPLICAS"));
        assert_eq!(parse(&["--nats-replicas", "3"]).unwrap().nats_replicas, 3);
        assert!(parse(&["--lease-secs", "1"]).unwrap_err().setting.contains("BEVYGAP_LEASE_SECS"));
        assert!(parse(&["--replica-name", "a b"]).unwrap_err().setting.contains("BEVYGAP_REPLICA_NAME"));
        assert_eq!(parse(&["--replica-name", "mm-1"]).unwrap().replica_name.as_str(), "mm-1");
        assert!(Cli::try_parse_from(["x", "--public-addr", "nonsense"]).is_err());
    }

    #[test]
    fn the_development_key_needs_development_mode() {
        let dev_key = bevygap_shared::LightyearKeys::development();
        let err = parse(&[]).unwrap().check_keys(&dev_key).unwrap_err();
        assert!(err.setting.contains("LIGHTYEAR_PRIVATE_KEY"), "{err}");
        assert!(parse(&["--dev-mode"]).unwrap().check_keys(&dev_key).is_ok());
        let real = bevygap_shared::LightyearKeys {
            protocol_id: 1,
            private_key: bevygap_shared::PrivateKey::from_bytes([7; 32]),
        };
        assert!(parse(&[]).unwrap().check_keys(&real).is_ok());
    }

    #[test]
    fn provider_edgegap_requires_a_token_and_an_app_named_by_variable() {
        let err = parse(&["--provider", "edgegap", "--edgegap-app", "game"]).unwrap_err();
        assert!(err.setting.contains("BEVYGAP_EDGEGAP_API_TOKEN"), "{err}");
        let err = parse(&["--provider", "edgegap", "--edgegap-api-token", "tok"]).unwrap_err();
        assert!(err.setting.contains("BEVYGAP_EDGEGAP_APP"), "{err}");
        let err = parse(&["--provider", "edgegap", "--edgegap-api-token", "token token x", "--edgegap-app", "g"])
            .unwrap_err();
        assert!(err.setting.contains("BEVYGAP_EDGEGAP_API_TOKEN"), "{err}");
        let base = ["--provider", "edgegap", "--edgegap-api-token", "tok", "--edgegap-app", "g"];
        let with = |extra: &[&'static str]| parse(&[&base[..], extra].concat());
        assert!(with(&["--edgegap-url", "ftp://x"]).unwrap_err().setting.contains("BEVYGAP_EDGEGAP_URL"));
        assert!(with(&["--edgegap-location", "north"]).unwrap_err().setting.contains("BEVYGAP_EDGEGAP_LOCATION"));

        let err = with(&["--edgegap-mode", "seats"]).unwrap_err();
        assert!(err.setting.contains("BEVYGAP_EDGEGAP_MODE"), "{err}");
        let err = with(&["--edgegap-webhook-url", "mm.example.com/s3cr3t"]).unwrap_err();
        assert!(err.setting.contains("BEVYGAP_EDGEGAP_WEBHOOK_URL") && !err.to_string().contains("s3cr3t"), "{err}");
        let c =
            with(&["--edgegap-mode", "sessions", "--edgegap-webhook-url", "https://mm.example.com/s3cr3t"]).unwrap();
        let edgegap = c.edgegap.expect("edgegap settings");
        assert_eq!(edgegap.mode, crate::providers::edgegap::EdgegapMode::Sessions);
        assert!(edgegap.webhook.is_some() && !format!("{edgegap:?}").contains("s3cr3t"));
        let c = with(&["--edgegap-location", "45.5,-73.6"]).unwrap();
        let edgegap = c.edgegap.expect("edgegap settings");
        assert_eq!((edgegap.app.as_str(), edgegap.base_url.as_str()), ("g", "https://api.edgegap.com"));
        assert_eq!(edgegap.version, None);
        assert!(edgegap.location.is_some());
        assert!(parse(&[]).unwrap().edgegap.is_none(), "only the edgegap provider carries its settings");
    }

    #[test]
    fn the_edgegap_token_is_not_in_debug_output() {
        let args = ["x", "--provider", "edgegap", "--edgegap-api-token", "secret-edgegap-123", "--edgegap-app", "g"];
        let cli = Cli::try_parse_from(args).expect("clap parses");
        assert!(!format!("{cli:?}").contains("secret-edgegap-123"));
        let c = cli.validate().unwrap();
        assert!(!format!("{c:?}").contains("secret-edgegap-123"));
    }

    #[test]
    fn admin_token_is_not_in_debug_output() {
        let c = parse(&["--admin-token", "supersecrettoken123"]).unwrap();
        assert!(!format!("{c:?}").contains("supersecrettoken123"));
    }
}
