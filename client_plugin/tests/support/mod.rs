//! Test harness: a client App as a game builds it and a record of the plugin's messages
//! (stepping and the bare Lightyear app come from `bevygap_testkit`). `fake` is a scripted
//! matchmaker speaking the public protocol.
#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

pub mod fake;

use std::time::Duration;

use bevy::prelude::*;
use bevygap_client_plugin::prelude::*;
use bevygap_testkit::{DEADLINE, expect_step_until};

/// Every message the plugin wrote, in order.
#[derive(Resource, Default, Debug)]
pub struct Seen {
    pub progress: Vec<BevygapProgress>,
    pub failed: Vec<BevygapFailed>,
    pub connected: Vec<BevygapConnected>,
}

fn record(
    mut seen: ResMut<Seen>,
    mut progress: MessageReader<BevygapProgress>,
    mut failed: MessageReader<BevygapFailed>,
    mut connected: MessageReader<BevygapConnected>,
) {
    seen.progress.extend(progress.read().cloned());
    seen.failed.extend(failed.read().cloned());
    seen.connected.extend(connected.read().cloned());
}

/// A Lightyear client App with the plugin, as a game would build it, recording what the
/// plugin tells the game in [`Seen`].
pub fn bevygap_client_app(config: BevygapClientConfig) -> App {
    let mut app = bevygap_testkit::lightyear_client::client_app(|app| {
        app.add_plugins(BevygapClientPlugin::new(config))
            .init_resource::<Seen>()
            .add_systems(Update, record.after(BevygapClientSystems));
    });
    app.update();
    app
}

/// Short timeouts and quick retries so failure tests finish fast.
pub fn fast_config(url: &str) -> BevygapClientConfig {
    let mut config = BevygapClientConfig::new(url, "demo", "1.0");
    config.retry.initial_backoff = Duration::from_millis(20);
    config.retry.max_backoff = Duration::from_millis(100);
    config.retry.max_attempts = 3;
    config.timeouts.http_connect = Duration::from_secs(2);
    config.timeouts.join = Duration::from_secs(20);
    config.timeouts.server_connect = Duration::from_secs(10);
    config
}

pub fn connect(app: &mut App) {
    app.world_mut().commands().bevygap_connect_client();
    app.world_mut().flush();
}

pub fn cancel(app: &mut App) {
    app.world_mut().commands().bevygap_cancel();
    app.world_mut().flush();
}

pub fn state(app: &App) -> BevygapClientState {
    *app.world().resource::<State<BevygapClientState>>().get()
}

pub fn seen(app: &App) -> &Seen {
    app.world().resource::<Seen>()
}

/// Steps the client until it has failed; returns the failure.
pub fn wait_failed(app: &mut App) -> BevygapFailed {
    expect_step_until(&mut [app], DEADLINE, "a failure", |apps| !seen(apps[0]).failed.is_empty());
    let failure = seen(app).failed.last().cloned().expect("a failure");
    app.update();
    assert_eq!(state(app), BevygapClientState::Failed);
    failure
}

/// Forgets recorded messages (between joins in one App).
pub fn clear_seen(app: &mut App) {
    *app.world_mut().resource_mut::<Seen>() = Seen::default();
}
