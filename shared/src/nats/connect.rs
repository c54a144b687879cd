use std::sync::Arc;
use std::time::Duration;

use async_nats::rustls;
use async_nats::{ConnectOptions, Event};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::watch;

use super::config::{CaSource, NatsAuth, NatsConfig};

/// Why connecting to NATS failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// The `.creds` file (its path, the I/O error) could not be read.
    #[error("NATS_CREDS_FILE: cannot read {0}")]
    CredsFile(String, #[source] std::io::Error),
    /// The CA bundle named by `var` is unusable.
    #[error("{var}: cannot use the CA certificate: {reason}")]
    Ca { var: &'static str, reason: String },
    /// The configuration holds credentials twice (in a URL and as the auth mode), differently.
    #[error("NATS configuration: {0}")]
    Credentials(&'static str),
    /// The first connection failed (with [`InitialConnect::FailFast`]); `urls` are shown
    /// without credentials.
    #[error("cannot connect to NATS at {urls}: {source}")]
    Connect {
        urls: String,
        #[source]
        source: async_nats::ConnectError,
    },
}

/// Whether the client currently has a live connection; watch it with
/// [`NatsConnection::status`] to show or react to outages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "bevy", derive(bevy::reflect::Reflect))]
pub enum LinkStatus {
    Connecting,
    Connected,
    Disconnected,
    Closed,
}

/// What to do when the first connection attempt fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialConnect {
    /// Return the error: for the matchmaker, which cannot do anything without NATS.
    FailFast,
    /// Return at once and keep trying in the background: for game servers, which must keep
    /// running (and reconcile later) through a NATS outage.
    RetryInBackground,
}

/// A NATS client plus an observable link status. Reconnects are automatic and unlimited;
/// subscriptions are restored and publishes buffered while disconnected.
#[derive(Clone, Debug)]
pub struct NatsConnection {
    client: async_nats::Client,
    status: watch::Receiver<LinkStatus>,
}

impl NatsConnection {
    /// Connects as configured. Must run inside a tokio runtime.
    pub async fn connect(config: &NatsConfig, initial: InitialConnect) -> Result<Self, NatsError> {
        let (tx, rx) = watch::channel(LinkStatus::Connecting);
        let tx = Arc::new(tx);
        let events = tx.clone();
        // Credentials never travel inside the URLs handed to async-nats: it ignores them there and
        // logs server URLs (with their password) at debug level.
        let (urls, auth) = config.server_urls_and_auth().map_err(NatsError::Credentials)?;
        let mut opts = auth_options(&auth)
            .await?
            .name(config.client_name.clone())
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(Duration::from_secs(5)))
            .max_reconnects(None)
            .reconnect_delay_callback(|attempt| Duration::from_millis((50u64 << attempt.min(6)).min(2_000)))
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    let status = match event {
                        Event::Connected => LinkStatus::Connected,
                        Event::Disconnected => LinkStatus::Disconnected,
                        Event::Closed => LinkStatus::Closed,
                        other => {
                            tracing::debug!("nats event: {other}");
                            return;
                        }
                    };
                    tracing::info!("nats link {status:?}");
                    events.send_replace(status);
                }
            });
        if let Some(ca) = &config.ca {
            opts = opts.tls_client_config(tls_config(ca)?);
        }
        if config.require_tls {
            opts = opts.require_tls(true);
        }
        if let Some(prefix) = &config.inbox_prefix {
            opts = opts.custom_inbox_prefix(prefix.as_str());
        }
        if initial == InitialConnect::RetryInBackground {
            opts = opts.retry_on_initial_connect();
        }
        let client = opts.connect(urls.as_slice()).await.map_err(|source| NatsError::Connect {
            urls: urls.iter().map(|u| super::redact_url(u)).collect::<Vec<_>>().join(","),
            source,
        })?;
        if client.connection_state() == async_nats::connection::State::Connected {
            tx.send_replace(LinkStatus::Connected);
        }
        Ok(Self { client, status: rx })
    }

    /// The underlying client, for publishing, requests and JetStream.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// A JetStream context on this connection.
    pub fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.client.clone())
    }

    /// The current link status.
    pub fn link_status(&self) -> LinkStatus {
        *self.status.borrow()
    }

    /// A receiver that changes whenever the link goes up or down.
    pub fn status(&self) -> watch::Receiver<LinkStatus> {
        self.status.clone()
    }
}

async fn auth_options(auth: &NatsAuth) -> Result<ConnectOptions, NatsError> {
    Ok(match auth {
        NatsAuth::None => ConnectOptions::new(),
        NatsAuth::UserPassword { user, password } => {
            ConnectOptions::with_user_and_password(user.clone(), password.expose().to_string())
        }
        NatsAuth::Token(token) => ConnectOptions::with_token(token.expose().to_string()),
        NatsAuth::NKey(seed) => ConnectOptions::with_nkey(seed.expose().to_string()),
        NatsAuth::CredsFile(path) => ConnectOptions::with_credentials_file(path.clone())
            .await
            .map_err(|e| NatsError::CredsFile(path.display().to_string(), e))?,
    })
}

/// Builds a rustls config trusting exactly the given CA, with the ring provider chosen
/// explicitly so it works even when another crate also compiles in aws-lc-rs.
fn tls_config(ca: &CaSource) -> Result<rustls::ClientConfig, NatsError> {
    let (var, pem) = match ca {
        CaSource::File(path) => (
            "NATS_CA_FILE",
            std::fs::read(path)
                .map_err(|e| NatsError::Ca { var: "NATS_CA_FILE", reason: format!("{}: {e}", path.display()) })?,
        ),
        CaSource::Pem(text) => ("NATS_CA_PEM", text.as_bytes().to_vec()),
    };
    let bad = |reason: String| NatsError::Ca { var, reason };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("malformed PEM: {e}")))?;
        roots.add(cert).map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate found in the PEM".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
