//! The WebTransport certificate: generated at boot, pinned by digest, never silently expired.
//!
//! Browsers accept a self-signed certificate for WebTransport only through
//! `serverCertificateHashes`, and only if it is ECDSA P-256 and valid for at most 14 days. So
//! each server generates its own at boot ([`ServerCertificate::generate`]) and publishes the
//! SHA-256 digest in its server record, from where the matchmaker hands it to clients.
//!
//! A certificate cannot be swapped under a running Lightyear WebTransport server without
//! dropping its sessions, so instead of rotating, the server drains
//! [`CertificateConfig::drain_before`] ahead of expiry (no new players; the matchmaker places
//! them on a fresh server) and shuts down [`CertificateConfig::stop_before`] ahead of it.

use std::time::{Duration, SystemTime};

use bevy::prelude::*;
use bevygap_shared::protocol::CertDigest;
use lightyear::webtransport::prelude::Identity;
use wtransport::tls::{Certificate, CertificateChain, PrivateKey};

use crate::api::{BevygapServerState, ServerControl};

/// Longest validity browsers (and wtransport's client) accept for a pinned certificate.
pub const MAX_VALIDITY: Duration = Duration::from_secs(14 * 24 * 3600);

/// The certificate could not be generated or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The configured validity breaks the 14-day rule.
    #[error("certificate validity {0:?} (including the clock-skew margin) exceeds the 14 days browsers accept")]
    TooLong(Duration),
    /// Key or certificate generation failed.
    #[error("cannot generate the WebTransport certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The generated certificate does not parse as one WebTransport accepts.
    #[error("the generated certificate is not usable by WebTransport: {0}")]
    Invalid(#[from] wtransport::tls::error::InvalidCertificate),
    /// The digest is not a SHA-256 digest (a bug in the hashing library).
    #[error("the certificate digest is {0} bytes long, not the 32 of SHA-256")]
    DigestLength(usize),
}

/// How long certificates last and when the server acts before they end; a resource while the
/// plugin runs.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateConfig {
    /// How far in the past the certificate starts, for clients whose clocks lag.
    pub backdate: Duration,
    /// How long after generation the certificate ends. `backdate + validity` must not exceed
    /// [`MAX_VALIDITY`].
    pub validity: Duration,
    /// Start draining this long before the end.
    pub drain_before: Duration,
    /// Shut down (disconnecting whoever is left) this long before the end.
    pub stop_before: Duration,
}

impl Default for CertificateConfig {
    fn default() -> Self {
        Self {
            backdate: Duration::from_secs(3600),
            validity: Duration::from_secs(13 * 24 * 3600),
            drain_before: Duration::from_secs(24 * 3600),
            stop_before: Duration::from_secs(600),
        }
    }
}

/// What the server should do about its certificate at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateAction {
    /// Plenty of time left.
    Keep,
    /// Close to the end: stop admitting, let players finish.
    Drain,
    /// About to end: shut down now.
    Stop,
}

impl CertificateConfig {
    /// The action due at `now` for a certificate ending at `not_after`.
    pub fn action(&self, not_after: SystemTime, now: SystemTime) -> CertificateAction {
        let left = not_after.duration_since(now).unwrap_or(Duration::ZERO);
        if left <= self.stop_before {
            CertificateAction::Stop
        } else if left <= self.drain_before {
            CertificateAction::Drain
        } else {
            CertificateAction::Keep
        }
    }
}

/// A self-signed ECDSA P-256 certificate and its key, with the digest clients pin.
#[derive(Clone)]
pub struct ServerCertificate {
    der: Vec<u8>,
    key_der: Vec<u8>,
    /// SHA-256 of the DER certificate, lowercase hex without colons.
    pub digest: CertDigest,
    /// Start of validity (backdated).
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
}

impl std::fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCertificate")
            .field("digest", &self.digest)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ServerCertificate {
    /// Generates a certificate for `names` (DNS names or IP addresses) per `config`.
    pub fn generate(names: &[String], config: &CertificateConfig) -> Result<Self, CertificateError> {
        let total = config.backdate + config.validity;
        if total > MAX_VALIDITY {
            return Err(CertificateError::TooLong(total));
        }
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(names.to_vec())?;
        // Whole seconds, as X.509 stores them, so the fields below match the DER exactly.
        let now =
            time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        let span = |d: Duration| time::Duration::seconds(d.as_secs() as i64);
        params.not_before = now - span(config.backdate);
        params.not_after = now + span(config.validity);
        let cert = params.self_signed(&key)?;
        let der = cert.der().to_vec();
        let hash = ring::digest::digest(&ring::digest::SHA256, &der);
        let hash: [u8; 32] =
            hash.as_ref().try_into().map_err(|_| CertificateError::DigestLength(hash.as_ref().len()))?;
        Ok(Self {
            der,
            key_der: key.serialize_der(),
            digest: CertDigest::from_bytes(&hash),
            not_before: params.not_before.into(),
            not_after: params.not_after.into(),
        })
    }

    /// The certificate in DER form.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Unix seconds of the end of validity, as published in the server record.
    pub fn not_after_unix(&self) -> u64 {
        self.not_after.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    /// The TLS identity for Lightyear's `WebTransportServerIo`.
    pub fn identity(&self) -> Result<Identity, CertificateError> {
        let cert = Certificate::from_der(self.der.clone())?;
        Ok(Identity::new(CertificateChain::single(cert), PrivateKey::from_der_pkcs8(self.key_der.clone())))
    }
}

/// The WebTransport certificate in use, when the server serves WebTransport.
#[derive(Resource, Debug, Clone)]
pub struct WebTransportCertificate(pub ServerCertificate);

/// Inserts the certificate and acts on its approaching end.
pub struct CertificatePlugin {
    /// The generated certificate; `None` when WebTransport is not served.
    pub certificate: Option<ServerCertificate>,
    /// When to drain and stop.
    pub config: CertificateConfig,
}

impl Plugin for CertificatePlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(self.config);
        if let Some(cert) = &self.certificate {
            app.insert_resource(WebTransportCertificate(cert.clone()));
            app.add_systems(
                Update,
                act_on_certificate_expiry.run_if(bevy::time::common_conditions::on_real_timer(Duration::from_secs(1))),
            );
        }
    }
}

/// Drains, then stops, as the certificate approaches its end.
fn act_on_certificate_expiry(
    cert: Res<WebTransportCertificate>,
    config: Res<CertificateConfig>,
    phase: Res<State<BevygapServerState>>,
    mut control: MessageWriter<ServerControl>,
) {
    match config.action(cert.0.not_after, SystemTime::now()) {
        CertificateAction::Keep => {}
        CertificateAction::Drain if matches!(phase.get(), BevygapServerState::Starting | BevygapServerState::Ready) => {
            warn!("the WebTransport certificate ends at {:?}: draining", cert.0.not_after);
            control.write(ServerControl::Drain { reason: "certificate expiring".into() });
        }
        CertificateAction::Drain => {}
        CertificateAction::Stop if *phase.get() != BevygapServerState::ShuttingDown => {
            warn!("the WebTransport certificate is about to end: shutting down");
            control.write(ServerControl::Shutdown { reason: "certificate expiring".into() });
        }
        CertificateAction::Stop => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_pinnable_p256_certificate_of_at_most_14_days() {
        let cert =
            ServerCertificate::generate(&["localhost".into(), "127.0.0.1".into()], &CertificateConfig::default())
                .unwrap();
        let (_, x509) = x509_parser::parse_x509_certificate(cert.der()).unwrap();
        let validity = x509.validity();
        let span = validity.not_after.timestamp() - validity.not_before.timestamp();
        assert!(span <= MAX_VALIDITY.as_secs() as i64, "validity {span}s exceeds 14 days");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!(validity.not_before.timestamp() < now - 60, "must start in the past for clock skew");
        assert_eq!(validity.not_after.timestamp() as u64, cert.not_after_unix());
        let spki = &x509.tbs_certificate.subject_pki.algorithm;
        let curve = spki.parameters.as_ref().and_then(|p| p.as_oid().ok()).unwrap();
        assert_eq!(curve, x509_parser::oid_registry::OID_EC_P256);

        // The published digest is what wtransport computes for the same certificate.
        let identity = cert.identity().unwrap();
        let theirs = identity.certificate_chain().as_slice()[0].hash();
        assert_eq!(CertDigest::from_bytes(theirs.as_ref()), cert.digest);
    }

    #[test]
    fn refuses_configs_browsers_would_reject() {
        let config = CertificateConfig { validity: MAX_VALIDITY, ..Default::default() };
        assert!(matches!(
            ServerCertificate::generate(&["localhost".into()], &config),
            Err(CertificateError::TooLong(_))
        ));
    }

    #[test]
    fn drains_then_stops_before_the_end() {
        let config = CertificateConfig::default();
        let end = SystemTime::now() + Duration::from_secs(10 * 24 * 3600);
        let at = |left: Duration| end - left;
        assert_eq!(config.action(end, at(Duration::from_secs(2 * 24 * 3600))), CertificateAction::Keep);
        assert_eq!(config.action(end, at(Duration::from_secs(3600))), CertificateAction::Drain);
        assert_eq!(config.action(end, at(Duration::from_secs(60))), CertificateAction::Stop);
        assert_eq!(config.action(end, end + Duration::from_secs(5)), CertificateAction::Stop);
    }
}
