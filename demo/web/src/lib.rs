//! The demo game client in the browser (see `index.html` beside this crate and
//! `scripts/web-demo`, which builds both into a static page): [`start`] runs the same
//! [`DemoClientPlugin`](bevygap_demo::client::DemoClientPlugin) as the terminal client, joins
//! through the matchmaker with the client plugin's `fetch` backend, connects over WebTransport
//! with the certificate digest the matchmaker sent, and shows each step and every chat line
//! on the page. The page's `<body>` carries `data-state` (the client state) and `data-error`
//! (why it failed) for people and tests alike.
//!
//! Natively this crate is empty.

#[cfg(target_arch = "wasm32")]
mod page;

#[cfg(target_arch = "wasm32")]
pub use page::start;
