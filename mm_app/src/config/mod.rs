//! Composition of the matchmaker's settings: the command line (flags with env-var fallbacks;
//! `--help` lists them in one section per concern, each with its default) is validated at
//! start, so a bad value stops the program with a message naming it, into one settings value
//! per plugin. [`MatchmakerConfig`] only carries them to [`MatchmakerConfig::insert_into`]; no
//! system reads it.

mod cli;
mod credentials;
mod edgegap;
mod endpoints;
mod joins;
mod local;
mod matches;
mod replicas;
mod servers;
mod tokens;

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::Duration;

use bevy::prelude::*;
use bevygap_shared::Secret;
use bevygap_shared::naming::Namespace;
use clap::ValueEnum;

pub use cli::Cli;
pub use credentials::CredentialArgs;
pub use edgegap::{EdgegapArgs, EdgegapSettings};
pub use endpoints::EndpointArgs;
pub use joins::JoinArgs;
pub use local::{LocalArgs, LocalSettings};
pub use matches::MatchArgs;
pub use replicas::{ReplicaArgs, ReplicaSettings};
pub use servers::ServerArgs;
pub use tokens::TokenArgs;

use crate::endpoints::FrontSettings;
use crate::game::GameCatalog;
use crate::joins::JoinSettings;
use crate::matches::MatchSettings;
use crate::matching::ProfileSet;
use crate::servers::{ServerCredentialConfig, ServerSettings};
use crate::tokens::TokenSettings;

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

/// A setting that failed validation; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct ConfigError {
    /// The flag and its environment variable.
    pub setting: &'static str,
    /// What is wrong with it (never the value of a secret).
    pub reason: String,
}

/// A [`ConfigError`] for `setting`.
fn bad(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError { setting, reason: reason.into() }
}

/// Wraps a secret flag value as soon as clap reads it.
fn secret(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value))
}

/// A settings default as clap's default of a `NonZero` flag (settings defaults are never 0).
fn nonzero_usize(value: usize) -> NonZeroUsize {
    NonZeroUsize::new(value).unwrap_or(NonZeroUsize::MIN)
}

/// See [`nonzero_usize`].
fn nonzero_u32(value: u32) -> NonZeroU32 {
    NonZeroU32::new(value).unwrap_or(NonZeroU32::MIN)
}

/// A settings default duration as clap's default of a whole-seconds `NonZero` flag.
fn nonzero_secs(value: Duration) -> NonZeroU64 {
    NonZeroU64::new(value.as_secs()).unwrap_or(NonZeroU64::MIN)
}

/// Everything the matchmaker runs with, one settings value per concern.
#[derive(Debug, Clone)]
pub struct MatchmakerConfig {
    /// The NATS namespace every bucket and subject derives from.
    pub namespace: Namespace,
    /// The games served.
    pub games: GameCatalog,
    /// Both HTTP endpoints.
    pub front: FrontSettings,
    /// Join deadlines and admission caps.
    pub joins: JoinSettings,
    /// The modes of each game version.
    pub profiles: ProfileSet,
    /// How often the match engine runs.
    pub matches: MatchSettings,
    /// What ConnectTokens say.
    pub tokens: TokenSettings,
    /// Server sizes, limits and timers.
    pub servers: ServerSettings,
    /// Which provider starts servers.
    pub provider: ProviderKind,
    /// The `local` provider's command and address.
    pub local: LocalSettings,
    /// Settings of the `edgegap` provider; `Some` exactly when it is the provider.
    pub edgegap: Option<EdgegapSettings>,
    /// Buckets, the lease and this replica's name.
    pub replicas: ReplicaSettings,
    /// Per-server NATS credentials, if enabled.
    pub server_credentials: Option<ServerCredentialConfig>,
    /// Log line format.
    pub log_format: LogFormat,
    /// Development mode (`BEVYGAP_DEV_MODE`).
    pub dev_mode: bool,
}

impl MatchmakerConfig {
    /// Hands each plugin its settings, as resources, before the plugins are added.
    pub fn insert_into(&self, app: &mut App) {
        app.insert_resource(self.games.clone())
            .insert_resource(self.profiles.clone())
            .insert_resource(self.matches)
            .insert_resource(self.front.clone())
            .insert_resource(self.joins.clone())
            .insert_resource(self.tokens)
            .insert_resource(self.servers.clone());
        if let Some(credentials) = &self.server_credentials {
            app.insert_resource(credentials.clone());
        }
    }

    /// Whether the admin endpoint must demand a bearer token: off loopback, and with the
    /// `local` provider, whose game servers run on this host and could otherwise call it.
    pub fn admin_token_required(&self) -> bool {
        !self.front.admin_addr.ip().is_loopback() || self.provider == ProviderKind::Local
    }

    /// Gives the admin endpoint a random token when one is required and none was set;
    /// returns it so the operator can be shown it once (the dashboard accepts it in its URL
    /// fragment: `http://<admin>/#token=<token>`).
    pub fn ensure_admin_token(&mut self) -> Option<Secret> {
        if self.front.admin_token.is_some() || !self.admin_token_required() {
            return None;
        }
        let token = Secret::new(format!("{:032x}", rand::random::<u128>()));
        self.front.admin_token = Some(token.clone());
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

    /// Settings for tests and embedding, built from each plugin's defaults (never from the
    /// environment): both endpoints on ephemeral loopback ports, game `demo:1.0`, and
    /// `game_server_cmd` as the local provider's command.
    ///
    /// # Panics
    /// If `namespace` is not a valid namespace (a test's own literal).
    pub fn for_tests(namespace: &str, game_server_cmd: Vec<String>) -> Self {
        Self {
            namespace: Namespace::new(namespace).expect("a test's namespace"),
            games: GameCatalog::parse("demo:1.0").expect("literal catalog"),
            front: FrontSettings::loopback(),
            joins: JoinSettings::default(),
            profiles: ProfileSet::default(),
            matches: MatchSettings::default(),
            tokens: TokenSettings::default(),
            servers: ServerSettings::default(),
            provider: ProviderKind::Local,
            local: LocalSettings { command: game_server_cmd, ..LocalSettings::default() },
            edgegap: None,
            replicas: ReplicaSettings::default(),
            server_credentials: None,
            log_format: LogFormat::Text,
            dev_mode: false,
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    use clap::{CommandFactory, FromArgMatches};

    /// The command line with every env-var fallback removed, so a developer's `BEVYGAP_*`
    /// environment cannot change what these tests see.
    fn try_cli(args: &[&str]) -> Result<Cli, clap::Error> {
        let command = Cli::command().mut_args(|arg| arg.env(None::<&str>));
        let matches =
            command.try_get_matches_from(std::iter::once("bevygap-matchmaker").chain(args.iter().copied()))?;
        Cli::from_arg_matches(&matches)
    }

    fn parse(args: &[&str]) -> Result<MatchmakerConfig, ConfigError> {
        try_cli(args).expect("clap parses").validate()
    }

    /// Whether clap refuses `args`, naming `flag`.
    fn refused(args: &[&str], flag: &str) -> bool {
        try_cli(args).is_err_and(|e| e.to_string().contains(flag))
    }

    #[test]
    fn the_flags_defaults_are_the_plugins_defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.joins, JoinSettings::default());
        assert_eq!(c.tokens, TokenSettings::default());
        assert_eq!(c.servers, ServerSettings::default());
        let front = FrontSettings::default();
        assert_eq!((c.front.public_addr, c.front.admin_addr), (front.public_addr, front.admin_addr));
        assert_eq!((c.front.max_body_bytes, c.front.rate_burst), (front.max_body_bytes, front.rate_burst));
        assert_eq!(c.local.public_ip, LocalSettings::default().public_ip);
        assert_eq!(c.replicas.lease_ttl, ReplicaSettings::default().lease_ttl);
    }

    #[test]
    fn every_flag_but_one_falls_back_to_a_bevygap_variable() {
        let command = Cli::command();
        let mut without = Vec::new();
        for arg in command.get_arguments().filter(|a| a.get_long().is_some()) {
            let long = arg.get_long().unwrap_or_default();
            match arg.get_env().and_then(|e| e.to_str()) {
                Some(env) => assert!(env.starts_with("BEVYGAP_"), "--{long} reads {env}"),
                None => without.push(long),
            }
        }
        // The one-shot credential printer and the profile check are actions, not settings.
        assert_eq!(without, ["issue-server-credentials", "check-profiles"]);
    }

    #[test]
    fn help_shows_one_section_per_concern() {
        let help = Cli::command().render_long_help().to_string();
        for heading in [
            "Endpoints:",
            "Joins:",
            "Tokens:",
            "Game servers:",
            "Matches:",
            "Local provider:",
            "Edgegap provider:",
            "NATS and replicas:",
            "Server credentials:",
        ] {
            assert!(help.contains(heading), "no {heading} section in --help:\n{help}");
        }
        let joins = help.find("Joins:").expect("section");
        let servers = help.find("Game servers:").expect("section");
        let deadline = help.find("--join-deadline-secs").expect("flag");
        assert!(joins < deadline && deadline < servers, "--join-deadline-secs is under Joins");
    }

    /// Set by [`for_tests_ignores_the_environment`] in the copy of this test binary it runs.
    const HERMETIC_CHILD: &str = "BEVYGAP_TEST_HERMETIC_CHILD";

    #[test]
    fn for_tests_ignores_the_environment() {
        let config = MatchmakerConfig::for_tests("hermetic", Vec::new());
        if std::env::var_os(HERMETIC_CHILD).is_some() {
            // The child: its environment sets every variable below to a non-default value.
            assert_eq!(config.joins, JoinSettings::default());
            assert_eq!(config.servers, ServerSettings::default());
            assert_eq!(config.tokens, TokenSettings::default());
            assert_eq!(config.front.rate_burst, FrontSettings::default().rate_burst);
            assert_eq!(config.provider, ProviderKind::Local);
            assert!(!config.dev_mode);
            // The control: the variables are live here, and the command line reads them.
            use clap::Parser as _;
            let from_env = Cli::try_parse_from(["bevygap-matchmaker"]).expect("clap parses").validate().expect("valid");
            assert_eq!(from_env.joins.limits.max_waiting, 3, "BEVYGAP_MAX_WAITING is set in this process");
            return;
        }
        // The parent runs this very test again in a child with the variables set: setting them
        // here would race other tests' threads.
        let exe = std::env::current_exe().expect("the test binary");
        let output = std::process::Command::new(exe)
            .args(["--exact", "config::tests::for_tests_ignores_the_environment", "--test-threads=1"])
            .env(HERMETIC_CHILD, "1")
            .env("BEVYGAP_MAX_WAITING", "3")
            .env("BEVYGAP_JOIN_DEADLINE_SECS", "7")
            .env("BEVYGAP_SERVER_CAPACITY", "2")
            .env("BEVYGAP_TOKEN_TTL_SECS", "9")
            .env("BEVYGAP_RATE_BURST", "1")
            .env("BEVYGAP_PROVIDER", "fleet")
            .env("BEVYGAP_DEV_MODE", "true")
            .output()
            .expect("the test binary runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "the child saw the environment:\n{stdout}");
        assert!(stdout.contains("1 passed"), "the child ran the test:\n{stdout}");
    }

    #[test]
    fn defaults_are_valid() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.front.public_addr.port(), 7800);
        assert!(c.front.admin_addr.ip().is_loopback());
        assert!(c.front.admin_token.is_none());
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
        assert_eq!(local.front.admin_token.as_ref().map(|t| t.expose()), Some(generated.expose()));
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
        assert!(refused(&["--max-waiting", "0"], "--max-waiting"));
        assert!(refused(&["--server-capacity", "0"], "--server-capacity"));
        assert!(refused(&["--token-ttl-secs", "0"], "--token-ttl-secs"));
        assert!(refused(&["--server-credential-hours", "0"], "--server-credential-hours"));
        assert!(refused(&["--nats-replicas", "0"], "--nats-replicas"));
        assert!(refused(&["--nats-replicas", "7"], "--nats-replicas"));
        assert_eq!(parse(&["--nats-replicas", "3"]).unwrap().replicas.nats_replicas, 3);
        assert!(refused(&["--lease-secs", "1"], "--lease-secs"));
        assert!(parse(&["--replica-name", "a b"]).unwrap_err().setting.contains("BEVYGAP_REPLICA_NAME"));
        assert_eq!(parse(&["--replica-name", "mm-1"]).unwrap().replicas.replica_name.as_str(), "mm-1");
        assert!(refused(&["--public-addr", "nonsense"], "--public-addr"));
        let c = parse(&["--join-deadline-secs", "20"]).unwrap();
        assert_eq!(c.servers.capacity_wait, Duration::from_secs(20), "the capacity wait follows the deadline");
    }

    #[test]
    fn the_profiles_file_is_read_checked_and_must_name_served_games() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/profiles.example.json");
        let config = parse(&["--profiles", example]).expect("the example is valid");
        assert!(config.profiles.get("demo:1.0", Some("duel")).is_some());
        assert!(parse(&[]).unwrap().profiles.get("demo:1.0", Some("duel")).is_none(), "no file: drop_in only");
        let err = parse(&["--profiles", example, "--games", "other:2"]).unwrap_err();
        assert!(err.setting.contains("BEVYGAP_PROFILES") && err.reason.contains("demo:1.0"), "{err}");
        let dir = std::env::temp_dir().join(format!("bevygap-profiles-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let bad = dir.join("bad.json");
        let text = std::fs::read_to_string(example)
            .expect("example")
            .replace(r#""min_size": 1, "max_size": 1"#, r#""min_size": 2, "max_size": 1"#);
        std::fs::write(&bad, text).expect("write");
        let err = parse(&["--profiles", bad.to_str().expect("utf-8 path")]).unwrap_err();
        assert!(err.reason.contains("demo:1.0[0].teams"), "the field is named: {err}");
        let err = parse(&["--profiles", dir.join("missing.json").to_str().expect("path")]).unwrap_err();
        assert!(err.reason.contains("cannot read"), "{err}");
        let err = parse(&["--profiles", example, "--join-deadline-secs", "45"]).unwrap_err();
        assert!(err.reason.contains("ranked_2v2: max_wait_secs 45"), "{err}");
        let config = parse(&["--profiles", example, "--match-interval-ms", "250"]).expect("valid");
        assert_eq!(config.matches.pass_interval, Duration::from_millis(250));
        assert_eq!(parse(&[]).unwrap().matches, MatchSettings::default());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_development_key_needs_development_mode() {
        let dev_key = bevygap_shared::LightyearKeys::development();
        let err = parse(&[]).unwrap().check_keys(&dev_key).unwrap_err();
        assert!(err.setting.contains("LIGHTYEAR_PRIVATE_KEY"), "{err}");
        let dev = parse(&["--dev-mode"]).unwrap();
        assert!(dev.check_keys(&dev_key).is_ok());
        assert!(dev.joins.trust_client_ip && !parse(&[]).unwrap().joins.trust_client_ip, "dev mode believes client_ip");
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
        let cli = try_cli(&args[1..]).expect("clap parses");
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
