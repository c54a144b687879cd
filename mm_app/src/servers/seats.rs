//! Seat bookkeeping for one game server, and the choice of server for a new player. Plain
//! Rust, tested without an App.

use std::collections::BTreeMap;

use bevy::prelude::*;

/// Where one seat is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Reflect)]
pub enum Seat {
    /// Promised to a join (token issued or about to be); the player has not connected yet.
    Reserved,
    /// The game server reports the player connected.
    Occupied,
}

/// The seats of one game server, keyed by Lightyear client id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Component, Reflect)]
#[reflect(Component)]
pub struct SeatBook {
    pub capacity: u32,
    seats: BTreeMap<u64, Seat>,
}

/// No seat is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("server is full")]
pub struct Full;

impl SeatBook {
    /// An empty book with `capacity` seats.
    pub fn new(capacity: u32) -> Self {
        Self { capacity, seats: BTreeMap::new() }
    }

    /// Seats taken, reserved or occupied.
    pub fn taken(&self) -> u32 {
        self.seats.len() as u32
    }

    /// Seats still free.
    pub fn free(&self) -> u32 {
        self.capacity.saturating_sub(self.taken())
    }

    /// Whether nobody holds or is promised a seat.
    pub fn is_empty(&self) -> bool {
        self.seats.is_empty()
    }

    /// Players the server reports connected.
    pub fn occupied(&self) -> u32 {
        self.seats.values().filter(|s| **s == Seat::Occupied).count() as u32
    }

    /// Promises a seat to `client_id`.
    pub fn reserve(&mut self, client_id: u64) -> Result<(), Full> {
        if self.seats.contains_key(&client_id) {
            return Ok(());
        }
        if self.free() == 0 {
            return Err(Full);
        }
        self.seats.insert(client_id, Seat::Reserved);
        Ok(())
    }

    /// Marks `client_id` connected. A player the matchmaker did not place (e.g. admitted
    /// before a matchmaker restart) still takes a seat, even past capacity: the seat is real.
    pub fn occupy(&mut self, client_id: u64) {
        self.seats.insert(client_id, Seat::Occupied);
    }

    /// Frees `client_id`'s seat; returns whether it held one.
    pub fn release(&mut self, client_id: u64) -> bool {
        self.seats.remove(&client_id).is_some()
    }

    /// The state of `client_id`'s seat.
    pub fn seat(&self, client_id: u64) -> Option<Seat> {
        self.seats.get(&client_id).copied()
    }

    /// Every client id holding a seat.
    pub fn clients(&self) -> impl Iterator<Item = u64> + '_ {
        self.seats.keys().copied()
    }
}

/// How far along a candidate server is, for placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    Starting,
}

/// Picks the server for one more player: a ready server before a starting one (no waiting),
/// and among those the fullest with a free seat, so players fill servers before new ones are
/// started and emptier servers can drain and stop.
pub fn choose_server<K: Copy>(candidates: impl IntoIterator<Item = (K, Readiness, u32, u32)>) -> Option<K> {
    candidates
        .into_iter()
        .filter(|(_, _, taken, capacity)| taken < capacity)
        .min_by_key(|(_, readiness, taken, _)| (*readiness == Readiness::Starting, std::cmp::Reverse(*taken)))
        .map(|(key, ..)| key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_up_to_capacity_and_releases() {
        let mut book = SeatBook::new(2);
        book.reserve(1).unwrap();
        book.reserve(1).unwrap();
        book.reserve(2).unwrap();
        assert_eq!(book.reserve(3), Err(Full));
        assert_eq!(book.free(), 0);
        book.occupy(1);
        assert_eq!(book.occupied(), 1);
        assert!(book.release(2));
        assert!(!book.release(2));
        assert_eq!(book.free(), 1);
        assert!(!book.is_empty());
        book.release(1);
        assert!(book.is_empty());
    }

    #[test]
    fn fills_ready_servers_first_then_the_fullest() {
        let pick = choose_server([
            ("starting", Readiness::Starting, 0, 4),
            ("ready-empty", Readiness::Ready, 0, 4),
            ("ready-busy", Readiness::Ready, 3, 4),
            ("ready-full", Readiness::Ready, 4, 4),
        ]);
        assert_eq!(pick, Some("ready-busy"));
        assert_eq!(choose_server([("s", Readiness::Starting, 1, 4), ("f", Readiness::Ready, 4, 4)]), Some("s"));
        assert_eq!(choose_server([("f", Readiness::Ready, 4, 4)]), None);
    }
}
