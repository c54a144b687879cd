//! The Bevygap matchmaker: a headless Bevy app in which join requests, game servers, sessions
//! and issued ConnectTokens are entities. Pure modules decide (a join's life, placement, a
//! server's phases, admission); systems gather ECS state, call them and apply the answer; async
//! tasks do the NATS and provider I/O behind two seams and report back through inboxes.
//!
//! # How a join flows
//!
//! 1. **Request.** A player POSTs `matchmaker.join+watch` to the public endpoint. The HTTP front
//!    ([`endpoints`], `front.rs`) lets it through its [`endpoints::gatekeeper`] (rate, body size,
//!    methods, CORS), parses typed params ([`calls::params`]) and hands a typed
//!    [`calls::Call`] to the [`calls::CallRouter`]: join calls go to the [`calls::JoinDesk`]
//!    with a channel for the answers, other methods to bevy_remote; on a standby replica the
//!    router forwards the call to the owner instead ([`ownership`], the only place a call is
//!    serialised).
//! 2. **Admission.** `calls/join_methods.rs` takes the desk's calls once per tick, counts
//!    waiting joins once for the batch, and asks the pure check [`joins::admission::admit`]:
//!    unknown game, caps ([`joins::JoinSettings`]), or a retry that resumes an earlier join. An
//!    admitted request becomes a [`joins::Join`] entity, `Queued`, followed by its stream
//!    ([`calls::JoinWatchers`]); every later message is pushed to the stream when the join
//!    publishes it.
//! 3. **Placement.** [`placement::plan`] (pure) picks a seat for each queued join, oldest
//!    first: a ready server, else a starting one, else a launch (naming the joins it is for)
//!    through the provider ([`providers`], `ServerProvider`), under the server limit.
//!    `joins/systems.rs` applies it with the [`servers::ServerLauncher`]; the join moves to
//!    `WaitingForServer` ([`joins::machine`]). A join of a `match` mode waits in its pool
//!    instead: the pass runs the engine ([`matching`]) over it, and the formed match is hosted
//!    as one unit on a server of its own ([`placement::plan_matches`], [`matches`]); its
//!    record is stored before any of its players' tokens go out.
//! 4. **Server ready.** The game server writes its NATS record; the bridge ([`nats_bridge`])
//!    reports it as a [`nats_bridge::ServerReported`] Message, and [`servers::phase`] moves the
//!    server to `Ready` (`servers/lifecycle.rs` applies it).
//! 5. **Token.** `joins/issuance.rs` mints a Lightyear ConnectToken and spawns the
//!    [`tokens::IssuedToken`] and [`tokens::GameSession`] through the
//!    [`tokens::issuer::TokenIssuer`], and asks the bridge to store the client grant: the join
//!    is `IssuingToken`.
//! 6. **Ready.** When NATS acknowledges the grant ([`nats_bridge::GrantStored`]) the join turns
//!    `Ready` and the stream sends the token; the game server admits the client because it can
//!    read the grant.
//! 7. **Seats freed.** The game server reports the player (`players` bucket); leaving, or the
//!    token expiring unclaimed, ends the token and frees the seat (`tokens/lifecycle.rs`).
//! 8. **Scale to zero.** A server empty past the grace period is stopped
//!    (`servers/lifecycle.rs`); a lost server's waiting joins are placed again.
//!
//! Every step runs in one of the ordered [`schedule::MatchmakerSystems`] sets of one tick,
//! and only on the replica that owns the namespace ([`fence::acting`]).
//!
//! # Layers
//!
//! A module imports only from its own layer or below, and talks upward only through Messages
//! (`tests/layering.rs` ranks every module and fails on an upward import):
//! - **L0 vocabulary**, pure decisions and types: [`clock`], [`game`], [`observe`], [`wake`],
//!   [`schedule`], [`placement`], [`matching`] (the match engine: profiles, tickets, rules).
//! - **L1 seams**: [`fence`] (the lease as the systems see it), [`nats_bridge`], [`providers`].
//! - **L2 domain**, each on the one before: [`servers`] → [`tokens`] (sessions included) →
//!   [`joins`] → [`matches`] (formed matches, placed as one unit).
//! - **L3 edges**: [`telemetry`], [`calls`] (below every transport and the relay),
//!   [`ownership`] (the lease and the relay between replicas), [`endpoints`] (the HTTP front).
//! - **L4 composition**: [`config`], [`app`], `harness` (feature `harness`), and `main.rs`.
//!
//! # Plugins and their settings
//!
//! Each concern is a plugin that declares the plugins it builds on:
//! [`endpoints::HttpFrontPlugin`] → [`calls::CallsPlugin`] → [`joins::JoinsPlugin`] →
//! [`tokens::TokensPlugin`] → [`servers::ServersPlugin`]. Each owns a small settings resource
//! with defaults ([`servers::ServerSettings`], [`tokens::TokenSettings`],
//! [`joins::JoinSettings`], [`endpoints::FrontSettings`], [`game::GameCatalog`]); the command
//! line is only composition ([`config`]). The two seams are chosen by the app: a provider
//! ([`providers::ProviderPlugin`] with the local, fleet or Edgegap provider, or the test
//! `FakeProvider`) and a NATS bridge ([`nats_bridge::NatsBridgePlugin`], or the in-memory
//! `MemoryNatsPlugin`; both test stand-ins come with the `harness` feature). So a test can
//! step the whole join flow with no nats-server and no processes:
//!
//! ```
//! # #[cfg(feature = "harness")] {
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
//! assert_eq!(app.world().resource::<ServerSettings>().capacity, 4);
//! # }
//! ```

// L0 vocabulary
pub mod clock;
pub mod game;
pub mod matching;
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
pub mod matches;
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
