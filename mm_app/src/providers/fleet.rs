//! The `fleet` provider: game servers run on the studio's own machines, started by anything
//! (systemd, docker-compose, Kubernetes, a person). Each registers itself by writing its NATS
//! server record (the server plugin does this from env alone, with `BEVYGAP_PROVIDER=fleet`)
//! and heartbeats; the matchmaker adopts it from that record, places players on it, spreads
//! load across the fleet, and never starts or stops a server. A server whose heartbeat stops
//! takes no new players and is forgotten after the silence grace; a draining server finishes
//! its players. When every server of a game is full, the matchmaker publishes on
//! `bevygap.<ns>.fleet.need_capacity.<game>` for an autoscaler.

use bevygap_shared::inbox::InboxSender;
use bevygap_shared::naming::ServerId;

use super::{ProviderError, ProviderEvent, ServerProvider, ServerSpec};

/// The provider of a self-hosted fleet: it starts nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct FleetProvider;

impl ServerProvider for FleetProvider {
    fn name(&self) -> &'static str {
        "fleet"
    }

    fn starts_servers(&self) -> bool {
        false
    }

    /// Never called (placement does not launch for a provider that does not start servers);
    /// answers with a failure rather than pretending.
    fn launch(&self, spec: ServerSpec, events: InboxSender<ProviderEvent>) {
        events.send(ProviderEvent::LaunchFailed { server_id: spec.server_id, error: ProviderError::Unsupported });
    }

    /// Fleet servers are not the matchmaker's to stop; a lost one is only forgotten.
    fn stop(&self, server_id: &ServerId) {
        tracing::debug!(%server_id, "fleet servers are not stopped by the matchmaker");
    }

    fn shutdown_all(&self) {}

    fn running(&self) -> Vec<ServerId> {
        Vec::new()
    }
}
