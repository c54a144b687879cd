//! Keeps the provider's seats in line with the seat books, for providers that hold each
//! player's seat themselves ([`ServerProvider::confirms_seats`]): every seat reserved is
//! taken at the provider, every seat freed (by whatever path: the player left, the token
//! expired, the join failed) is given back, and a seat the provider refuses fails its join.
//!
//! [`ServerProvider::confirms_seats`]: crate::providers::ServerProvider::confirms_seats

use std::collections::HashMap;
use std::net::IpAddr;

use bevy::prelude::*;
use bevygap_shared::protocol::{ErrorCode, JoinError};

use super::FailJoin;
use super::machine::Join;
use crate::providers::{ProviderEvent, ProviderHandle, SeatSpec};
use crate::servers::{GameServer, ProviderSeats, SeatBook, SeatRefused};
use bevygap_shared::inbox::Inbox;

/// Tells the provider of seats taken and freed since the last tick (only servers whose seat
/// book changed are looked at).
pub fn sync_provider_seats(
    mut servers: Query<(&GameServer, &SeatBook, &mut ProviderSeats), Changed<SeatBook>>,
    joins: Query<&Join>,
    provider: Res<ProviderHandle>,
    events: Res<Inbox<ProviderEvent>>,
) {
    if servers.is_empty() {
        return;
    }
    // The address of every seated player, gathered once per tick that needs it.
    let addresses: HashMap<u64, IpAddr> =
        joins.iter().filter_map(|join| Some((join.phase().seat()?.client_id, join.client_ip.parse().ok()?))).collect();
    for (server, book, mut seats) in &mut servers {
        let clients: Vec<u64> = book.clients().collect();
        let changes = seats.reconcile(&clients, |client_id| addresses.get(&client_id).copied());
        for (client_id, player_ip) in changes.take {
            let seat = SeatSpec {
                server_id: server.id.clone(),
                game: server.game.game.clone(),
                version: server.game.version.clone(),
                client_id,
                player_ip,
            };
            provider.0.take_seat(seat, events.sender());
        }
        for (client_id, external_id) in changes.free {
            provider.0.free_seat(&server.id, client_id, external_id.as_deref());
        }
    }
}

/// Fails the join whose seat the provider refused.
pub fn fail_refused_seats(
    mut refused: MessageReader<SeatRefused>,
    joins: Query<(Entity, &Join)>,
    mut failures: MessageWriter<FailJoin>,
) {
    for SeatRefused { server, client_id, reason } in refused.read() {
        let holder = joins.iter().find(|(_, join)| {
            join.phase().seat().is_some_and(|seat| seat.server == *server && seat.client_id == *client_id)
        });
        if let Some((entity, _)) = holder {
            let error = JoinError::new(ErrorCode::ServerFailed, reason.clone());
            failures.write(FailJoin { join: entity, error });
        }
    }
}
