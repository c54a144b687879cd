//! The calls layer: what every transport hands calls to, and the methods they reach. A
//! transport (the HTTP front today, a WebSocket front next) checks and parses a request into a
//! typed [`Call`] and gives it to the [`CallRouter`]; joins go to the [`JoinDesk`], are taken
//! into the app once per tick (`join_methods.rs`) and their progress is pushed back to every
//! stream following them; other methods (cancel, the operator methods in `admin.rs`, the
//! built-in BRP methods) go to bevy_remote. Nothing here knows HTTP, like bevy_remote's
//! `RemotePlugin` apart from its `RemoteHttpPlugin`.

pub mod admin;
pub mod desk;
pub mod envelope;
mod join_methods;
pub mod pacing;
pub mod params;
pub mod router;

use bevy::prelude::*;
use bevy_remote::RemotePlugin;
use bevygap_shared::protocol::{METHOD_CANCEL, METHOD_JOIN, METHOD_JOIN_WATCH};

pub use desk::JoinDesk;
pub use join_methods::JoinWatchers;
pub use router::{Call, CallForwarder, CallRouter, Forwarder};

use crate::joins::JoinsPlugin;
use crate::schedule::{MatchmakerSystems, require};

/// Methods a player may call; everything else is refused on the public listener.
pub const PUBLIC_METHODS: [&str; 3] = [METHOD_JOIN, METHOD_JOIN_WATCH, METHOD_CANCEL];

/// The join desk, the matchmaking and operator methods, and the push of each join's progress
/// to its streams; builds on the join plugin. Transports are separate plugins that need it.
pub struct CallsPlugin;

impl Plugin for CallsPlugin {
    fn build(&self, app: &mut App) {
        require(app, || JoinsPlugin);
        require(app, || crate::matches::MatchesPlugin);
        // Joins come in through the join desk, not bevy_remote (see `desk`).
        let remote = RemotePlugin::default()
            .with_method_main(METHOD_CANCEL, join_methods::cancel)
            .with_method_main(admin::SERVERS, admin::servers)
            .with_method_main(admin::SESSIONS, admin::sessions)
            .with_method_main(admin::STATS, admin::stats)
            .with_method_main(admin::DELETE_SESSION, admin::delete_session)
            .with_method_main(admin::DRAIN_SERVER, admin::drain_server)
            .with_method_main(admin::HISTORY, admin::history);
        app.add_plugins(remote)
            .init_resource::<JoinDesk>()
            .init_resource::<bevygap_shared::inbox::AppWaker>()
            .register_required_components::<crate::joins::Join, JoinWatchers>()
            .add_systems(
                Update,
                (
                    join_methods::take_join_calls.in_set(MatchmakerSystems::Ingest),
                    desk::refuse_join_calls_while_standby.run_if(not(crate::fence::acting)),
                    join_methods::publish_join_progress.in_set(MatchmakerSystems::Cleanup),
                ),
            );
    }
}
