//! Bookkeeping of what the KV buckets *should* hold for this server, and what still has to be
//! written or deleted to get them there. Plain Rust, driven by the NATS worker, so outages are
//! just "nothing was acknowledged yet": when the link returns, everything pending is flushed.

use std::collections::{BTreeMap, BTreeSet};

use bevygap_shared::records::{PlayerRecord, ServerRecord};

/// One write to bring KV in line with the book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    /// Write (or rewrite) the server record.
    PutServer(ServerRecord),
    /// Remove the server record.
    DeleteServer,
    /// Write (or rewrite) one player's record.
    PutPlayer(PlayerRecord),
    /// Remove the record of this client id.
    DeletePlayer(u64),
}

/// Desired records plus what has not been acknowledged yet.
#[derive(Debug, Default)]
pub struct RecordBook {
    server: Option<ServerRecord>,
    server_pending: bool,
    /// Whether a server record may exist in KV (a put was at least attempted).
    server_maybe_written: bool,
    retired: bool,
    players: BTreeMap<u64, PlayerRecord>,
    players_pending: BTreeSet<u64>,
    /// Players whose record may exist in KV.
    players_maybe_written: BTreeSet<u64>,
    /// Players who left and whose record may still exist.
    players_to_delete: BTreeSet<u64>,
}

impl RecordBook {
    /// The server record changed (status, addresses): write it.
    pub fn set_server(&mut self, record: ServerRecord) {
        if self.retired {
            return;
        }
        self.server = Some(record);
        self.server_pending = true;
    }

    /// Heartbeat: re-put the server record.
    pub fn touch_server(&mut self) {
        if self.server.is_some() && !self.retired {
            self.server_pending = true;
        }
    }

    /// A player connected.
    pub fn player_joined(&mut self, record: PlayerRecord) {
        if self.retired {
            return;
        }
        let id = record.client_id;
        self.players_to_delete.remove(&id);
        self.players.insert(id, record);
        self.players_pending.insert(id);
    }

    /// A player left, however it left.
    pub fn player_left(&mut self, client_id: u64) {
        self.players.remove(&client_id);
        self.players_pending.remove(&client_id);
        if self.players_maybe_written.contains(&client_id) {
            self.players_to_delete.insert(client_id);
        }
    }

    /// Refresh: re-put every live player record before its TTL runs out.
    pub fn touch_players(&mut self) {
        self.players_pending.extend(self.players.keys().copied());
    }

    /// After a reconnect: KV may have lost or expired anything, so rewrite it all.
    pub fn touch_all(&mut self) {
        self.touch_server();
        self.touch_players();
    }

    /// Shutting down: every record is to be removed; later changes are ignored.
    pub fn retire(&mut self) {
        let ids: Vec<u64> = self.players.keys().copied().collect();
        for id in ids {
            self.player_left(id);
        }
        self.retired = true;
        self.server_pending = self.server_maybe_written;
    }

    /// The writes still needed: deletes first, then player puts, then the server record.
    pub fn pending(&self) -> Vec<KvOp> {
        let mut ops: Vec<KvOp> = self.players_to_delete.iter().map(|id| KvOp::DeletePlayer(*id)).collect();
        ops.extend(self.players_pending.iter().filter_map(|id| self.players.get(id)).cloned().map(KvOp::PutPlayer));
        if self.server_pending {
            match (&self.server, self.retired) {
                (_, true) => ops.push(KvOp::DeleteServer),
                (Some(record), false) => ops.push(KvOp::PutServer(record.clone())),
                (None, false) => {}
            }
        }
        ops
    }

    /// Call before sending `op`: a put that times out may still have landed.
    pub fn attempting(&mut self, op: &KvOp) {
        match op {
            KvOp::PutServer(_) => self.server_maybe_written = true,
            KvOp::PutPlayer(record) => {
                self.players_maybe_written.insert(record.client_id);
            }
            KvOp::DeleteServer | KvOp::DeletePlayer(_) => {}
        }
    }

    /// Call when NATS acknowledged `op`.
    pub fn done(&mut self, op: &KvOp) {
        match op {
            KvOp::PutServer(_) => self.server_pending = false,
            KvOp::DeleteServer => {
                self.server_pending = false;
                self.server_maybe_written = false;
            }
            KvOp::PutPlayer(record) => {
                self.players_pending.remove(&record.client_id);
            }
            KvOp::DeletePlayer(id) => {
                self.players_to_delete.remove(id);
                self.players_maybe_written.remove(id);
            }
        }
    }

    /// Whether KV matches the book.
    pub fn is_settled(&self) -> bool {
        self.pending().is_empty()
    }

    /// Client ids of the players currently connected.
    pub fn live_players(&self) -> impl Iterator<Item = u64> + '_ {
        self.players.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use bevygap_testkit::records::{player_record, server_record};

    use super::*;

    fn server() -> ServerRecord {
        server_record("s")
    }

    /// The same record for the same player every time, so ops compare equal.
    fn player(id: u64) -> PlayerRecord {
        PlayerRecord { connected_at_ms: 1, ..player_record("s", id) }
    }

    /// Acknowledges everything pending, as a healthy NATS would.
    fn flush(book: &mut RecordBook) -> Vec<KvOp> {
        let ops = book.pending();
        for op in &ops {
            book.attempting(op);
            book.done(op);
        }
        ops
    }

    #[test]
    fn players_who_leave_during_an_outage_are_deleted_on_reconnect() {
        let mut book = RecordBook::default();
        book.set_server(server());
        book.player_joined(player(1));
        book.player_joined(player(2));
        assert_eq!(flush(&mut book).len(), 3);
        assert!(book.is_settled());

        // Outage: player 1 leaves and player 3 joins; nothing is acknowledged.
        book.player_left(1);
        book.player_joined(player(3));
        let pending = book.pending();
        for op in &pending {
            book.attempting(op); // sent into the void
        }
        // Reconnect: rewrite everything, delete the leaver.
        book.touch_all();
        let ops = flush(&mut book);
        assert_eq!(ops[0], KvOp::DeletePlayer(1));
        assert!(ops.contains(&KvOp::PutPlayer(player(2))));
        assert!(ops.contains(&KvOp::PutPlayer(player(3))));
        assert!(matches!(ops.last(), Some(KvOp::PutServer(_))));
        assert_eq!(book.live_players().collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn a_player_never_written_needs_no_delete() {
        let mut book = RecordBook::default();
        book.player_joined(player(1));
        book.player_left(1);
        assert!(book.is_settled());
        book.player_joined(player(2));
        book.player_left(2);
        book.player_joined(player(2)); // reconnect before anything was written
        assert_eq!(book.pending(), vec![KvOp::PutPlayer(player(2))]);
    }

    #[test]
    fn retiring_removes_everything_and_ignores_later_changes() {
        let mut book = RecordBook::default();
        book.set_server(server());
        book.player_joined(player(1));
        flush(&mut book);
        book.retire();
        book.player_joined(player(9));
        book.set_server(server());
        assert_eq!(book.pending(), vec![KvOp::DeletePlayer(1), KvOp::DeleteServer]);
        flush(&mut book);
        assert!(book.is_settled());

        let mut quiet = RecordBook::default();
        quiet.retire();
        assert!(quiet.is_settled(), "nothing written, nothing to remove");
    }
}
