//! Where am I? Works out the server's deployment context once, at startup.
//!
//! Three sources, checked in this order:
//!
//! 1. **Edgegap**: `ARBITRIUM_REQUEST_ID` is set. Public IP and external ports come from the
//!    `ARBITRIUM_*` environment Edgegap injects ([`edgegap`]); the server id is the one the
//!    matchmaker assigned to the deployment, else `edgegap-<request_id>`.
//! 2. **A Bevygap provider** (`local`, `fleet`): `BEVYGAP_SERVER_ID` is set, and everything else
//!    comes from [`ServerEnv`] ([`local`]).
//! 3. **Standalone** for development: neither is set; the same variables apply with
//!    development defaults ([`local::standalone`]).
//!
//! Anything missing or malformed is a [`ContextError`] naming the variable, returned before the
//! app starts rather than a panic deep inside a system.

pub mod edgegap;
pub mod local;

use std::collections::HashMap;
use std::net::SocketAddr;

use bevy::prelude::*;
use bevygap_shared::env::{EnvError, EnvSource};
use bevygap_shared::naming::{Namespace, ServerId};
use bevygap_shared::protocol::{GameName, GameVersion, ServerAddresses, Transport};
use bevygap_shared::server_env::{Endpoint, ServerEnv};

pub use edgegap::{EdgegapContext, EdgegapDeployment, EdgegapPortNames, PortsError};

/// The deployment context could not be worked out from the environment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// A `BEVYGAP_*` (or other plain) variable is missing or malformed.
    #[error("bad server environment: {0}")]
    Env(#[from] EnvError),
    /// The `ARBITRIUM_*` environment of an Edgegap deployment is incomplete or malformed.
    #[error("bad Edgegap environment: {0}")]
    Arbitrium(#[from] bevygap_edgegap::ArbitriumError),
    /// The Edgegap port mapping has no port for any transport this server can serve.
    #[error("Edgegap port mapping: {0}")]
    Ports(#[from] PortsError),
}

/// Where this server came from: what started it and so what it may rely on (an Edgegap
/// deployment has a self-stop URL, a standalone one has no matchmaker). Named "origin" here
/// because the matchmaker calls the thing that starts servers a "provider"; the matchmaker's
/// provider name is what [`ServerOrigin::name`] returns.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerOrigin {
    /// Started by hand (or by a test) with no provider: development defaults.
    Standalone,
    /// Started by the matchmaker's `local` or `fleet` provider (or any other that sets
    /// [`ServerEnv`]); the name is what the provider passed in `BEVYGAP_PROVIDER`.
    Bevygap(String),
    /// Running inside an Edgegap deployment.
    Edgegap(Box<EdgegapDeployment>),
}

impl ServerOrigin {
    /// The name written into the server record (`standalone`, `local`, `fleet`, `edgegap`, …).
    pub fn name(&self) -> &str {
        match self {
            ServerOrigin::Standalone => "standalone",
            ServerOrigin::Bevygap(name) => name,
            ServerOrigin::Edgegap(_) => "edgegap",
        }
    }
}

/// Everything the server knows about itself: identity, what it runs, where it listens and
/// where clients reach it. Inserted as a resource; it does not change after startup.
#[derive(Resource, Debug, Clone)]
pub struct ServerContext {
    /// The NATS namespace (usually the game's app name) shared with the matchmaker.
    pub namespace: Namespace,
    /// This server's id, the key of its records.
    pub server_id: ServerId,
    /// What started it, with details specific to that origin.
    pub origin: ServerOrigin,
    /// The game this server runs.
    pub game: GameName,
    /// The game build this server runs.
    pub version: GameVersion,
    /// Most players this server takes at once.
    pub capacity: u32,
    /// UDP bind and public address, if served.
    pub udp: Option<Endpoint>,
    /// WebTransport bind and public address, if served.
    pub webtransport: Option<Endpoint>,
}

impl ServerContext {
    /// Resolves the context from the process environment.
    pub fn from_env() -> Result<Self, ContextError> {
        Self::from_source(&bevygap_shared::env::ProcessEnv)
    }

    /// Resolves the context from any [`EnvSource`] (tests use maps); see the module docs for
    /// the order of the sources.
    pub fn from_source(env: &dyn EnvSource) -> Result<Self, ContextError> {
        if env.var("ARBITRIUM_REQUEST_ID").is_some() {
            edgegap::resolve(env)
        } else if env.var("BEVYGAP_SERVER_ID").is_some() {
            Ok(local::resolve(env)?)
        } else {
            Ok(local::standalone(env)?)
        }
    }

    /// Builds the context from a provider's [`ServerEnv`].
    pub fn from_server_env(env: ServerEnv, origin: ServerOrigin) -> Self {
        Self {
            namespace: env.namespace,
            server_id: env.server_id,
            origin,
            game: env.game,
            version: env.version,
            capacity: env.capacity,
            udp: env.udp,
            webtransport: env.webtransport,
        }
    }

    /// The endpoint of one transport, if served.
    pub fn endpoint(&self, transport: Transport) -> Option<Endpoint> {
        match transport {
            Transport::Udp => self.udp,
            Transport::WebTransport => self.webtransport,
        }
    }

    /// The transports this server serves.
    pub fn transports(&self) -> impl Iterator<Item = (Transport, Endpoint)> + '_ {
        [Transport::Udp, Transport::WebTransport].into_iter().filter_map(|t| self.endpoint(t).map(|e| (t, e)))
    }

    /// The public addresses as configured (before any port-0 bind is resolved).
    pub fn public_addresses(&self) -> ServerAddresses {
        ServerAddresses { udp: self.udp.map(|e| e.public), webtransport: self.webtransport.map(|e| e.public) }
    }

    /// The Edgegap deployment, when running on Edgegap.
    pub fn edgegap(&self) -> Option<&EdgegapDeployment> {
        match &self.origin {
            ServerOrigin::Edgegap(d) => Some(d),
            _ => None,
        }
    }

    /// IP addresses and names a WebTransport certificate should cover.
    pub fn certificate_names(&self) -> Vec<String> {
        let mut names = vec!["localhost".to_string()];
        let mut push = |addr: SocketAddr| {
            let ip = addr.ip();
            if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
                names.push(ip.to_string());
            }
        };
        if let Some(e) = self.webtransport {
            push(e.bind);
            push(e.public);
        }
        names
    }
}

/// An [`EnvSource`] with some variables replaced or defaulted, so provider-specific resolution
/// can reuse [`ServerEnv`]'s validation and error messages.
pub(crate) struct Layered<'a> {
    pub inner: &'a dyn EnvSource,
    /// Values that win over the environment.
    pub overrides: HashMap<&'static str, String>,
    /// Values used only when the environment has none.
    pub defaults: HashMap<&'static str, String>,
}

impl EnvSource for Layered<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.overrides.get(name).cloned().or_else(|| self.inner.var(name)).or_else(|| self.defaults.get(name).cloned())
    }
}
