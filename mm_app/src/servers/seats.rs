//! Seat bookkeeping for one game server: plain Rust, tested without an App.

use std::collections::BTreeMap;

use bevy::prelude::*;

/// Where one seat is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Reflect)]
#[type_path = "bevygap"]
pub enum Seat {
    /// Promised to a join (token issued or about to be); the player has not connected yet.
    Reserved,
    /// The game server reports the player connected.
    Occupied,
}

/// The seats of one game server, keyed by Lightyear client id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Component, Reflect)]
#[reflect(Component)]
#[type_path = "bevygap"]
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
}
