//! `bevygap-matchmaker`: see `--help`. With no `NATS_URL` it starts its own nats-server and
//! runs game servers as local child processes, so one command gives a working matchmaker on
//! one machine.

use std::process::ExitCode;
use std::sync::Arc;

use bevygap_matchmaker::app::build_app;
use bevygap_matchmaker::config::{Cli, MatchmakerConfig, ProviderKind};
use bevygap_matchmaker::providers::edgegap::{EdgegapProvider, EdgegapProviderConfig};
use bevygap_matchmaker::providers::{FleetProvider, LocalProvider, LocalProviderConfig, ServerProvider};
use bevygap_shared::LightyearKeys;
use bevygap_shared::nats::{NatsConfig, NatsServer};
use clap::Parser;

fn main() -> ExitCode {
    // The local provider's game servers run as this user: a dumpable process's
    // /proc/<pid>/environ (NATS credentials, the server credential key, the Lightyear key…)
    // is readable by any process of the same user. Non-dumpable, it is readable by root only.
    // SAFETY: prctl(2) with constant arguments; it only changes this process's flag.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    bevygap_shared::install_crypto_provider();
    run().unwrap_or_else(|code| code)
}

/// 1. the settings, 2. the keys, 3. NATS (embedded when `NATS_URL` is unset), 4. the provider,
/// 5. the app, run until a signal; every failure is reported and becomes the exit code.
fn run() -> Result<ExitCode, ExitCode> {
    let cli = Cli::parse();
    let issue_for = cli.issue_server_credentials.clone();
    let check_profiles = cli.matches.check_profiles;
    let mut config = cli.validate().map_err(|e| fail(&e, 2))?;
    if let Some(server_id) = issue_for {
        return Ok(print_server_credentials(&config, &server_id));
    }
    if check_profiles {
        for game in config.games.labels() {
            println!("{game}: {}", config.profiles.names(&game).join(", "));
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Shown once on the terminal, never logged and never put in any environment, so the game
    // servers this process starts cannot learn it.
    let generated_admin_token = config.ensure_admin_token();
    let keys = LightyearKeys::from_env().map_err(|e| fail(&e, 2))?;
    config.check_keys(&keys).map_err(|e| fail(&e, 2))?;
    let mut nats_config = NatsConfig::from_env("bevygap-matchmaker").map_err(|e| fail(&e, 2))?;
    let (_embedded, extra_env) = embedded_nats(&config, &mut nats_config)?;
    let provider = provider(&config, &keys, extra_env)?;
    let (public, admin) = (config.front.public_addr, config.front.admin_addr);
    let (mut app, shutdown) = build_app(config, &nats_config, keys, provider, true).map_err(|e| fail(&e, 1))?;
    let runtime = app.world().resource::<bevy_tokio_tasks::TokioTasksRuntime>().runtime();
    runtime.spawn(shut_down_on_signal(shutdown));
    eprintln!("bevygap-matchmaker: players on http://{public}, operators on http://{admin}");
    if let Some(token) = generated_admin_token {
        eprintln!(
            "bevygap-matchmaker: the admin endpoint requires a token (game servers run on this host); \
             this run's: http://{admin}/#token={} (set BEVYGAP_ADMIN_TOKEN to choose one)",
            token.expose()
        );
    }
    Ok(match app.run() {
        bevy::app::AppExit::Success => ExitCode::SUCCESS,
        bevy::app::AppExit::Error(code) => ExitCode::from(code.get()),
    })
}

/// The embedded nats-server, if one was started, and the environment game servers need for it.
type EmbeddedNats = (Option<NatsServer>, Vec<(String, String)>);

/// With no `NATS_URL`, a private nats-server for this matchmaker and its game servers, and the
/// environment its local game servers need to reach it.
fn embedded_nats(config: &MatchmakerConfig, nats_config: &mut NatsConfig) -> Result<EmbeddedNats, ExitCode> {
    if std::env::var_os("NATS_URL").is_some() {
        return Ok((None, Vec::new()));
    }
    let server = NatsServer::start_bin(&config.replicas.nats_server_bin).map_err(|e| fail(&e, 1))?;
    eprintln!("bevygap-matchmaker: NATS_URL is unset; started an embedded nats-server at {}", server.url());
    nats_config.urls = vec![server.url()];
    let env = vec![("NATS_URL".to_string(), server.url())];
    Ok((Some(server), env))
}

/// The provider the settings name.
fn provider(
    config: &MatchmakerConfig,
    keys: &LightyearKeys,
    extra_env: Vec<(String, String)>,
) -> Result<Arc<dyn ServerProvider>, ExitCode> {
    match config.provider {
        ProviderKind::Local => {
            let local = LocalProvider::new(LocalProviderConfig {
                command: config.local.command.clone(),
                namespace: config.namespace.clone(),
                public_ip: config.local.public_ip,
                keys: keys.clone(),
                parent_env: std::env::vars().collect(),
                extra_env,
                stop_grace: config.servers.stop_grace,
            });
            Ok(Arc::new(local.map_err(|e| fail(&e, 1))?))
        }
        ProviderKind::Fleet => Ok(Arc::new(FleetProvider)),
        ProviderKind::Edgegap => edgegap_provider(config).map(|p| p as Arc<dyn ServerProvider>),
    }
}

/// The Edgegap provider, its app checked in the background and its webhook listener bound.
fn edgegap_provider(config: &MatchmakerConfig) -> Result<Arc<EdgegapProvider>, ExitCode> {
    let Some(settings) = config.edgegap.clone() else {
        return Err(fail(&"provider edgegap needs its settings (BEVYGAP_EDGEGAP_*)", 2));
    };
    let client = bevygap_edgegap::EdgegapConfig::new(settings.api_key).with_base_url(settings.base_url);
    let mut edgegap = EdgegapProviderConfig::new(client, settings.app, config.namespace.clone());
    edgegap.version = settings.version;
    edgegap.location = settings.location;
    edgegap.mode = settings.mode;
    edgegap.webhook = settings.webhook;
    edgegap.udp_port_name = settings.udp_port_name;
    edgegap.wt_port_name = settings.wt_port_name;
    let provider = EdgegapProvider::new(edgegap).map_err(|e| fail(&e, 2))?;
    provider.check_app_in_background();
    provider.listen_for_webhooks().map_err(|e| fail(&format!("cannot listen for Edgegap webhooks: {e}"), 1))?;
    Ok(Arc::new(provider))
}

/// Asks the app to stop (stopping the servers it started) on SIGINT or SIGTERM.
async fn shut_down_on_signal(shutdown: bevygap_matchmaker::app::ShutdownHandle) {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else { return };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    shutdown.shutdown();
}

fn fail(error: &dyn std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("bevygap-matchmaker: {error}");
    ExitCode::from(code)
}

/// `--issue-server-credentials <id>`: the env lines a fleet server needs to connect with its
/// own credentials. Printed to stdout only, for the operator to put in that server's secrets.
fn print_server_credentials(config: &MatchmakerConfig, server_id: &str) -> ExitCode {
    let Some(credentials) = &config.server_credentials else {
        return fail(&"--issue-server-credentials needs BEVYGAP_SERVER_CREDENTIAL_KEY", 2);
    };
    let server_id = match bevygap_shared::naming::ServerId::new(server_id) {
        Ok(id) => id,
        Err(e) => return fail(&e, 2),
    };
    for (key, value) in credentials.issue(&server_id).env() {
        println!("{key}={value}");
    }
    ExitCode::SUCCESS
}
