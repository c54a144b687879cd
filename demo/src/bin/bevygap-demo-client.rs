//! The demo game client: joins through the matchmaker with `BevygapClientPlugin` and plays the
//! demo game. Headless (the default) it wanders for a while, prints each step on stdout and
//! leaves; with `--window` (built with `--features window`) a person plays until the window
//! closes.
//!
//! ```text
//! bevygap-demo-client [--name alice] [--matchmaker http://127.0.0.1:7800]
//!                     [--transport udp|webtransport] [--party friends]
//!                     [--expect-others 1] [--play-secs 5] [--window]
//! ```
//!
//! Players with the same `--party` are placed on the same server when it has the seats.
//!
//! `BEVYGAP_*` variables of the client plugin override the matchmaker settings. Exits 0 after
//! leaving having met the players it expected, 1 if the join failed or they never came, 2 on
//! bad arguments.

use std::time::Duration;

use bevy::app::ScheduleRunnerPlugin;
use bevy::log::LogPlugin;
use bevy::prelude::*;
use bevygap_client_plugin::prelude::*;
use bevygap_demo::client::DemoClientPlugin;
use bevygap_demo::protocol::DemoProtocolPlugin;
use bevygap_demo::{GAME, VERSION};
use bevygap_shared::protocol::Transport;
use lightyear::prelude::client::ClientPlugins;

const TICK: Duration = Duration::from_micros(16_667);

struct Args {
    name: String,
    matchmaker: String,
    transport: Transport,
    party: Option<String>,
    expect_others: usize,
    play_for: Duration,
    window: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        name: format!("player-{:04}", std::process::id() % 10_000),
        matchmaker: "http://127.0.0.1:7800".into(),
        transport: Transport::Udp,
        party: None,
        expect_others: 0,
        play_for: Duration::from_secs(5),
        window: false,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--name" => parsed.name = value()?,
            "--matchmaker" => parsed.matchmaker = value()?,
            "--party" => parsed.party = Some(value()?),
            "--window" if cfg!(feature = "window") => parsed.window = true,
            "--window" => return Err("--window needs a build with `--features window`".into()),
            "--transport" => {
                parsed.transport = match value()?.as_str() {
                    "udp" => Transport::Udp,
                    "webtransport" => Transport::WebTransport,
                    other => return Err(format!("--transport: expected udp or webtransport, got {other:?}")),
                }
            }
            "--expect-others" => {
                let text = value()?;
                parsed.expect_others = text.parse().map_err(|_| format!("--expect-others: {text:?} is not a count"))?;
            }
            "--play-secs" => {
                let text = value()?;
                let secs: f64 = text.parse().map_err(|_| format!("--play-secs: {text:?} is not a number"))?;
                parsed.play_for = Duration::try_from_secs_f64(secs).map_err(|e| format!("--play-secs: {e}"))?;
            }
            other => return Err(format!("unknown argument {other:?} (see the file's docs for usage)")),
        }
    }
    Ok(parsed)
}

fn main() -> AppExit {
    bevygap_shared::install_crypto_provider();
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("bevygap-demo-client: {e}");
            return AppExit::from_code(2);
        }
    };
    let mut config = BevygapClientConfig::new(&args.matchmaker, GAME, VERSION);
    config.transport = args.transport;
    config.party = args.party;
    let config = match config.with_env_overrides() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("bevygap-demo-client: {e}");
            return AppExit::from_code(2);
        }
    };
    let mut app = App::new();
    let log = LogPlugin { filter: "warn,lightyear=error,aeronet=error,wgpu=error".into(), ..default() };
    if args.window {
        add_window(&mut app, &args.name, log);
    } else {
        app.add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(TICK))).add_plugins(log);
    }
    app.add_plugins(ClientPlugins { tick_duration: TICK })
        .add_plugins(DemoProtocolPlugin)
        .add_plugins(BevygapClientPlugin::new(config))
        .add_plugins(DemoClientPlugin {
            name: args.name,
            // A person plays until the window closes.
            play_for: if args.window { Duration::from_secs(24 * 3600) } else { args.play_for },
            expect_others: args.expect_others,
            meet_within: if args.window { Duration::from_secs(24 * 3600) } else { Duration::from_secs(30) },
            wander: !args.window,
            exit_when_done: !args.window,
        })
        .add_systems(Startup, |mut commands: Commands| commands.bevygap_connect_client())
        .run()
}

#[cfg(feature = "window")]
fn add_window(app: &mut App, name: &str, log: LogPlugin) {
    let window = Window { title: format!("Bevygap demo: {name}"), ..default() };
    app.add_plugins(DefaultPlugins.set(WindowPlugin { primary_window: Some(window), ..default() }).set(log))
        .add_plugins(bevygap_demo::window::DemoWindowPlugin);
}

#[cfg(not(feature = "window"))]
fn add_window(_: &mut App, _: &str, _: LogPlugin) {
    unreachable!("--window is refused at parse time without the feature");
}
