//! The `players` bucket: one record per connected player, keyed `<server_id>.<client_id>`.

use bevy::prelude::*;
use bevygap_shared::records::{MatchTeam, PlayerRecord};

use crate::api::{PlayerJoined, PlayerLeft};
use crate::context::ServerContext;
use crate::nats_link::{NatsLink, ToNats};

/// Forwards joins and leaves to the NATS task, in the order they happened.
pub(crate) fn forward_player_changes(
    ctx: Res<ServerContext>,
    link: Res<NatsLink>,
    status: Res<crate::api::BevygapStatus>,
    game_match: Option<Res<crate::matched::BevygapMatch>>,
    mut joined: MessageReader<PlayerJoined>,
    mut left: MessageReader<PlayerLeft>,
) {
    // Joins and leaves of one frame are applied joins first: a client that joined and left in
    // the same frame ends up deleted, which is the truth.
    for join in joined.read() {
        let connected_at_ms = status
            .players
            .get(&join.client_id)
            .map(|p| p.connected_at_ms)
            .unwrap_or_else(bevygap_shared::records::now_ms);
        let team = game_match.as_deref().and_then(|m| {
            let team = m.team_of(join.client_id)? as u32;
            Some(MatchTeam { match_id: m.match_id.clone(), team })
        });
        link.send(ToNats::PlayerJoined(PlayerRecord {
            client_id: join.client_id,
            server_id: ctx.server_id.clone(),
            session_id: join.session_id.clone(),
            connected_at_ms,
            team,
        }));
    }
    for leave in left.read() {
        link.send(ToNats::PlayerLeft(leave.client_id));
    }
}
