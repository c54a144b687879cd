//! The `bevygap-matchmaker` command line: a few flags of its own and one flattened group per
//! concern, each of which validates itself into its plugin's settings.

use clap::Parser;

use super::credentials::CredentialArgs;
use super::edgegap::EdgegapArgs;
use super::endpoints::EndpointArgs;
use super::joins::JoinArgs;
use super::local::LocalArgs;
use super::matches::MatchArgs;
use super::replicas::ReplicaArgs;
use super::servers::ServerArgs;
use super::tokens::TokenArgs;
use super::{ConfigError, LogFormat, MatchmakerConfig, ProviderKind, bad};
use crate::game::GameCatalog;
use bevygap_shared::naming::Namespace;

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
    /// Provider that starts game servers.
    #[arg(long, env = "BEVYGAP_PROVIDER", value_enum, default_value_t = ProviderKind::Local)]
    pub provider: ProviderKind,
    /// Log line format on stderr: `text`, or `json` (one object per line) for a log pipeline.
    #[arg(long, env = "BEVYGAP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Development mode: honour a client-supplied client_ip, and allow the all-zero
    /// development Lightyear key.
    #[arg(long, env = "BEVYGAP_DEV_MODE", default_value_t = false)]
    pub dev_mode: bool,
    /// Prints NATS_USER and NATS_PASSWORD for a self-hosted (fleet) server with this id, from
    /// BEVYGAP_SERVER_CREDENTIAL_KEY, and exits: how an operator admits a fleet server.
    #[arg(long, value_name = "SERVER_ID")]
    pub issue_server_credentials: Option<String>,
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    #[command(flatten)]
    pub joins: JoinArgs,
    #[command(flatten)]
    pub matches: MatchArgs,
    #[command(flatten)]
    pub tokens: TokenArgs,
    #[command(flatten)]
    pub servers: ServerArgs,
    #[command(flatten)]
    pub local: LocalArgs,
    #[command(flatten)]
    pub edgegap: EdgegapArgs,
    #[command(flatten)]
    pub replicas: ReplicaArgs,
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

impl Cli {
    /// Checks every setting and composes the settings of each plugin.
    pub fn validate(self) -> Result<MatchmakerConfig, ConfigError> {
        let namespace =
            Namespace::new(&self.namespace).map_err(|e| bad("--namespace / BEVYGAP_NAMESPACE", e.to_string()))?;
        let games = GameCatalog::parse(&self.games).map_err(|e| bad("--games / BEVYGAP_GAMES", e))?;
        let joins = self.joins.validate(self.dev_mode);
        let profiles = self.matches.validate(&games, &joins)?;
        let matches = self.matches.settings();
        let edgegap = match self.provider {
            ProviderKind::Edgegap => Some(self.edgegap.validate()?),
            ProviderKind::Local | ProviderKind::Fleet => None,
        };
        Ok(MatchmakerConfig {
            front: self.endpoints.validate()?,
            tokens: self.tokens.validate(),
            servers: self.servers.validate(joins.deadline),
            local: self.local.validate()?,
            replicas: self.replicas.validate()?,
            server_credentials: self.credentials.validate(&namespace)?,
            joins,
            profiles,
            matches,
            edgegap,
            namespace,
            games,
            provider: self.provider,
            log_format: self.log_format,
            dev_mode: self.dev_mode,
        })
    }
}
