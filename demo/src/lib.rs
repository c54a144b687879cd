//! # bevygap_demo
//!
//! The demo game: a small Lightyear game that uses the two Bevygap plugins exactly as their
//! docs tell a game developer to. Players have a name and a position on a plane and can chat;
//! the server keeps the roster and sends it to everyone a few times a second.
//!
//! - [`protocol`]: the messages and the channel, registered the same on both sides.
//! - [`server`]: the game on the server ([`server::DemoServerPlugin`]), next to
//!   `BevygapServerPlugin` in `bevygap-demo-server`, the binary every provider starts.
//! - [`client`]: the game on the client ([`client::DemoClientPlugin`]), next to
//!   `BevygapClientPlugin` in `bevygap-demo-client`, which joins through the matchmaker, plays
//!   for a while and prints each step (queued, starting, connecting, playing, who it meets,
//!   what they say) on the terminal.
//!
//! - [`window`] (feature `window`): the client in a window for people, `bevygap-demo-client
//!   --window`: the board, the players, the join's steps and the chat, steered with the keyboard.
//!
//! `scripts/demo` runs the matchmaker with two demo clients that meet on one server.

pub mod client;
pub mod protocol;
#[cfg(not(target_arch = "wasm32"))]
pub mod server;
#[cfg(feature = "window")]
pub mod window;

/// The game name and version the demo registers with the matchmaker's embedded defaults.
pub const GAME: &str = "demo";
pub const VERSION: &str = "1.0";
