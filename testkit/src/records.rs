//! The KV records with test defaults (game `testgame`, version `1.0`, current timestamps):
//! build one, then change what the test is about with struct-update syntax, e.g.
//! `ClientGrant { session_id: "s".into(), ..client_grant("local-1", 7) }`.

use bevygap_shared::naming::ServerId;
use bevygap_shared::protocol::{GameName, GameVersion, ServerAddresses};
use bevygap_shared::records::{ClientGrant, PlayerRecord, ServerRecord, ServerStatus, now_ms};

/// The game every test record is for.
pub const TEST_GAME: &str = "testgame";
/// The version every test record is for.
pub const TEST_VERSION: &str = "1.0";

/// A server id, for ids written in tests.
pub fn server_id(id: &str) -> ServerId {
    ServerId::new(id).unwrap_or_else(|e| panic!("{id:?} is not a valid server id: {e}"))
}

/// The test game's name.
pub fn test_game() -> GameName {
    GameName::new(TEST_GAME).expect("a valid game name")
}

/// The test game's version.
pub fn test_version() -> GameVersion {
    GameVersion::new(TEST_VERSION).expect("a valid game version")
}

/// A grant admitting `client_id` to `server`, issued now, for session `session-<client_id>`,
/// whose token stays usable for 30 s.
pub fn client_grant(server: &str, client_id: u64) -> ClientGrant {
    let now = now_ms();
    ClientGrant {
        client_id,
        server_id: server_id(server),
        session_id: format!("session-{client_id}"),
        game: test_game(),
        version: test_version(),
        issued_at_ms: now,
        token_expires_at_ms: now + 30_000,
    }
}

/// The record of `client_id` connected to `server` now, in session `session-<client_id>`.
pub fn player_record(server: &str, client_id: u64) -> PlayerRecord {
    PlayerRecord {
        client_id,
        server_id: server_id(server),
        session_id: format!("session-{client_id}"),
        connected_at_ms: now_ms(),
        team: None,
    }
}

/// The record of a ready `local` server with 8 seats, started and heard from now, with no
/// addresses or certificate yet.
pub fn server_record(server: &str) -> ServerRecord {
    let now = now_ms();
    ServerRecord {
        server_id: server_id(server),
        game: test_game(),
        version: test_version(),
        provider: "local".into(),
        addresses: ServerAddresses::default(),
        cert_digest: None,
        cert_not_after: None,
        capacity: 8,
        status: ServerStatus::Ready,
        started_at_ms: now,
        heartbeat_at_ms: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_valid_and_agree_with_each_other() {
        let grant = client_grant("local-1", 7);
        let player = player_record("local-1", 7);
        assert_eq!((grant.server_id.as_str(), grant.client_id), ("local-1", 7));
        assert_eq!((&player.server_id, player.client_id, &player.session_id), (&grant.server_id, 7, &grant.session_id));
        assert!(grant.token_expires_at_ms > now_ms(), "a fresh grant's token is still usable");
        let server = server_record("local-1");
        assert_eq!((server.server_id, server.status), (grant.server_id, ServerStatus::Ready));
    }

    #[test]
    #[should_panic(expected = "not a valid server id")]
    fn a_bad_server_id_says_so() {
        server_id("no spaces");
    }
}
