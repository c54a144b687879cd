//! The `servers` bucket record: who this server is, where clients reach it, and its status.

use bevy::prelude::*;
use bevygap_shared::protocol::ServerAddresses;
use bevygap_shared::records::{ServerRecord, ServerStatus};

use crate::api::{BevygapServerState, BevygapStatus};
use crate::certificate::{ServerCertificate, WebTransportCertificate};
use crate::context::ServerContext;
use crate::nats_link::{NatsLink, ToNats};

/// Unix milliseconds at which the plugin started.
#[derive(Resource, Debug, Clone, Copy)]
pub struct StartedAt(pub u64);

/// Builds the record for the current state. `heartbeat_at_ms` is set when it is written.
pub fn server_record(
    ctx: &ServerContext,
    addresses: ServerAddresses,
    status: ServerStatus,
    cert: Option<&ServerCertificate>,
    started_at_ms: u64,
) -> ServerRecord {
    ServerRecord {
        server_id: ctx.server_id.clone(),
        game: ctx.game.clone(),
        version: ctx.version.clone(),
        provider: ctx.origin.name().to_string(),
        addresses,
        cert_digest: cert.map(|c| c.digest.clone()),
        cert_not_after: cert.map(ServerCertificate::not_after_unix),
        capacity: ctx.capacity,
        status,
        started_at_ms,
        heartbeat_at_ms: started_at_ms,
    }
}

/// Sends the record whenever status or addresses change (the NATS task re-puts it on every
/// heartbeat by itself). Stops at shutdown, when the record is being removed.
pub(crate) fn publish_server_record(
    ctx: Res<ServerContext>,
    status: Res<BevygapStatus>,
    phase: Res<State<BevygapServerState>>,
    cert: Option<Res<WebTransportCertificate>>,
    started: Res<StartedAt>,
    link: Res<NatsLink>,
    mut last: Local<Option<(ServerStatus, ServerAddresses)>>,
) {
    if *phase.get() == BevygapServerState::ShuttingDown {
        return;
    }
    let addresses = if status.listening { status.addresses.clone() } else { ctx.public_addresses() };
    let current = (phase.record_status(), addresses);
    if last.as_ref() == Some(&current) {
        return;
    }
    let record = server_record(&ctx, current.1.clone(), current.0, cert.as_deref().map(|c| &c.0), started.0);
    info!("server record: {:?} at {:?}", record.status, record.addresses);
    link.send(ToNats::Server(record));
    *last = Some(current);
}
