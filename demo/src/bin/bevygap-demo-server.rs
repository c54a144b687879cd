//! The demo game server, what every provider starts: Lightyear's server plugins, the demo
//! protocol and game, and `BevygapServerPlugin` configured entirely from the environment (see
//! the server plugin's crate docs). Logs to stderr; exits 0 after a clean shutdown (SIGTERM,
//! drain, matchmaker command), 2 on bad configuration.

use std::time::Duration;

use bevy::app::ScheduleRunnerPlugin;
use bevy::log::LogPlugin;
use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use bevygap_demo::protocol::DemoProtocolPlugin;
use bevygap_demo::server::DemoServerPlugin;
use bevygap_server_plugin::prelude::*;
use lightyear::prelude::server::ServerPlugins;

const TICK: Duration = Duration::from_micros(16_667);

fn main() -> AppExit {
    bevygap_shared::install_crypto_provider();
    let mut app = App::new();
    app.add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(TICK)))
        .add_plugins(LogPlugin { filter: "info,lightyear=warn,aeronet=warn,wgpu=error".into(), ..default() })
        .add_plugins(StatesPlugin)
        .add_plugins(ServerPlugins { tick_duration: TICK })
        .add_plugins(DemoProtocolPlugin);
    let bevygap = match BevygapServerPlugin::from_env() {
        Ok(plugin) => plugin,
        Err(e) => {
            eprintln!("bevygap-demo-server: {e}");
            return AppExit::from_code(2);
        }
    };
    app.add_plugins(bevygap).add_plugins(DemoServerPlugin).add_systems(Update, (log_players, log_phase));
    app.run()
}

fn log_players(mut joined: MessageReader<PlayerJoined>, mut left: MessageReader<PlayerLeft>) {
    for p in joined.read() {
        info!("demo: client {} joined (session {})", p.client_id, p.session_id);
    }
    for p in left.read() {
        info!("demo: client {} left", p.client_id);
    }
}

fn log_phase(phase: Res<State<BevygapServerState>>) {
    if phase.is_changed() {
        info!("demo: phase {:?}", phase.get());
    }
}
