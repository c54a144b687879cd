//! The Bevygap matchmaker: a headless Bevy app in which join requests, game servers, sessions
//! and issued ConnectTokens are entities. Pure modules decide (a join's life, placement, a
//! server's phases, admission); systems gather ECS state, call them and apply the answer; async
//! tasks do the NATS and provider I/O behind two seams and report back through inboxes.
//!
//! # How a join flows
//!
//! 1. **Request.** A player POSTs `matchmaker.join+watch` to the public endpoint. The front
//!    ([`endpoints`], `front.rs`) applies policy (rate, body size, allow-list) and hands typed
//!    params ([`endpoints::params`]) to the [`endpoints::JoinDesk`] with a channel for the
//!    answers (other methods go to bevy_remote's channel).
//! 2. **Admission.** `endpoints/join_methods.rs` takes the desk's calls once per tick, counts
//!    waiting joins once for the batch, and asks the pure check [`joins::admission::admit`]:
//!    unknown game, caps, or a retry that resumes an earlier join. An admitted request becomes
//!    a [`joins::Join`] entity, `Queued`, followed by its stream ([`endpoints::JoinWatchers`]);
//!    every later message is pushed to the stream when the join publishes it.
//! 3. **Placement.** [`placement::plan`] (pure) picks a seat for each queued join, oldest
//!    first: a ready server, else a starting one, else a launch through the provider
//!    ([`providers`], `ServerProvider`), under the server limit. The system applying it is in
//!    `joins/systems.rs`; the join moves to `WaitingForServer` ([`joins::machine`]).
//! 4. **Server ready.** The game server writes its NATS record; the bridge ([`nats_bridge`])
//!    turns it into a `NatsEvent`, and [`servers::phase`] moves the server to `Ready`
//!    (`servers/lifecycle.rs` applies it).
//! 5. **Token.** `joins/systems.rs` mints a Lightyear ConnectToken ([`tokens::mint`]), spawns
//!    the [`tokens::IssuedToken`] and [`sessions::GameSession`], and asks the bridge to store
//!    the client grant: the join is `IssuingToken`.
//! 6. **Ready.** When NATS acknowledges the grant the join turns `Ready` and the stream sends
//!    the token; the game server admits the client because it can read the grant.
//! 7. **Seats freed.** The game server reports the player (`players` bucket); leaving, or the
//!    token expiring unclaimed, ends the token and frees the seat (`tokens/lifecycle.rs`).
//! 8. **Scale to zero.** A server empty past the grace period is stopped
//!    (`servers/lifecycle.rs`); a lost server's waiting joins are placed again.
//!
//! Every step runs in one of the ordered [`schedule::MatchmakerSystems`] sets of one tick.
//!
//! # Plugins
//!
//! Each concern is a plugin that declares the plugins it builds on:
//! [`endpoints::EndpointsPlugin`] → [`joins::JoinsPlugin`] → [`tokens::TokensPlugin`] →
//! [`servers::ServersPlugin`] and [`sessions::SessionsPlugin`]. The two seams are chosen by the
//! app: a provider ([`providers::ProviderPlugin`] with the local provider, or a
//! [`providers::FakeProvider`]) and a NATS bridge ([`nats_bridge::NatsBridgePlugin`], or the
//! in-memory [`nats_bridge::MemoryNatsPlugin`]). So a test can step the whole join flow with
//! no nats-server and no processes:
//!
//! ```
//! use std::sync::Arc;
//! use bevy::prelude::*;
//! use bevygap_matchmaker::joins::JoinsPlugin;
//! use bevygap_matchmaker::nats_bridge::MemoryNatsPlugin;
//! use bevygap_matchmaker::providers::{FakeProvider, ProviderPlugin};
//! use bevygap_matchmaker::servers::ServerSettings;
//!
//! let mut app = App::new();
//! app.add_plugins(MinimalPlugins)
//!     // Each plugin has its own settings, with defaults; this one is told servers seat 4.
//!     .insert_resource(ServerSettings { capacity: 4, ..default() })
//!     .insert_resource(bevygap_matchmaker::tokens::MatchmakerKeys(bevygap_shared::LightyearKeys::development()))
//!     .add_plugins((MemoryNatsPlugin, ProviderPlugin::new(Arc::new(FakeProvider::new())), JoinsPlugin));
//! app.finish();
//! app.cleanup();
//! app.update();
//! ```

// L0 vocabulary
pub mod clock;
pub mod game;
pub mod observe;
pub mod placement;
pub mod schedule;
pub mod wake;
// L1 seams
pub mod fence;
pub mod nats_bridge;
pub mod providers;
// L2 domain
pub mod joins;
pub mod servers;
pub mod tokens;
// L3 edges
pub mod calls;
pub mod endpoints;
pub mod ownership;
pub mod telemetry;
// L4 composition
pub mod app;
pub mod config;
#[cfg(any(test, feature = "harness"))]
pub mod harness;
