//! Seats as a provider holds them, for providers that account for each player themselves
//! (Edgegap's sessions mode: one Edgegap session per seated player). The [`SeatBook`] stays
//! the matchmaker's truth; [`ProviderSeats`] mirrors which of its seats the provider was told
//! of and which it confirmed, so a token is issued only for a confirmed seat and every freed
//! seat is given back. Plain Rust, tested without an App.
//!
//! [`SeatBook`]: super::SeatBook

use std::collections::BTreeMap;
use std::net::IpAddr;

use bevy::prelude::*;

/// One seat as the provider knows it.
#[derive(Debug, Clone, PartialEq, Eq, Reflect)]
#[type_path = "bevygap"]
pub enum ProviderSeat {
    /// The provider was asked to hold it and has not answered yet.
    Asked,
    /// The provider holds it under this id (an Edgegap session id).
    Confirmed { external_id: String },
    /// A seat this process never asked for (a player the server reported after a matchmaker
    /// restart; the earlier process held it). Tokens need no confirmation for it, and the
    /// provider cleans it up with the server.
    Untracked,
}

/// The seats of one server as the provider holds them.
#[derive(Component, Debug, Clone, Default, PartialEq, Eq, Reflect)]
#[reflect(Component)]
#[type_path = "bevygap"]
pub struct ProviderSeats {
    seats: BTreeMap<u64, ProviderSeat>,
}

/// What the provider must be told so its seats match the seat book.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeatChanges {
    /// Seats to take: client id and the player's address.
    pub take: Vec<(u64, IpAddr)>,
    /// Seats to give back, with the provider's id for them when it confirmed one.
    pub free: Vec<(u64, Option<String>)>,
}

impl ProviderSeats {
    /// Brings the mirror in line with the seat book's `clients`: a new seat whose player's
    /// address is known (`ip_of`) is to be taken, one without is [`ProviderSeat::Untracked`];
    /// a seat gone from the book is to be freed (unless it was untracked).
    pub fn reconcile(&mut self, clients: &[u64], ip_of: impl Fn(u64) -> Option<IpAddr>) -> SeatChanges {
        let mut changes = SeatChanges::default();
        for &client_id in clients {
            if self.seats.contains_key(&client_id) {
                continue;
            }
            match ip_of(client_id) {
                Some(ip) => {
                    self.seats.insert(client_id, ProviderSeat::Asked);
                    changes.take.push((client_id, ip));
                }
                None => {
                    self.seats.insert(client_id, ProviderSeat::Untracked);
                }
            }
        }
        let gone: Vec<u64> = self.seats.keys().copied().filter(|c| !clients.contains(c)).collect();
        for client_id in gone {
            match self.seats.remove(&client_id) {
                Some(ProviderSeat::Confirmed { external_id }) => changes.free.push((client_id, Some(external_id))),
                Some(ProviderSeat::Asked) => changes.free.push((client_id, None)),
                Some(ProviderSeat::Untracked) | None => {}
            }
        }
        changes
    }

    /// A seat an earlier matchmaker process had the provider hold (after a restart), known by
    /// the provider's id for it: it is given back like any other when freed.
    pub fn adopt_confirmed(&mut self, client_id: u64, external_id: String) {
        self.seats.entry(client_id).or_insert(ProviderSeat::Confirmed { external_id });
    }

    /// The provider confirmed a seat; false if the seat is no longer wanted (freed meanwhile).
    pub fn confirm(&mut self, client_id: u64, external_id: String) -> bool {
        match self.seats.get_mut(&client_id) {
            Some(seat @ ProviderSeat::Asked) => {
                *seat = ProviderSeat::Confirmed { external_id };
                true
            }
            _ => false,
        }
    }

    /// Whether a token may be issued for this seat.
    pub fn may_issue(&self, client_id: u64) -> bool {
        matches!(self.seats.get(&client_id), Some(ProviderSeat::Confirmed { .. } | ProviderSeat::Untracked))
    }

    /// Seats the provider was asked to hold (asked or confirmed), with its id for confirmed
    /// ones: what to give back when the server is gone.
    pub fn held(&self) -> impl Iterator<Item = (u64, Option<&str>)> + '_ {
        self.seats.iter().filter_map(|(client_id, seat)| match seat {
            ProviderSeat::Asked => Some((*client_id, None)),
            ProviderSeat::Confirmed { external_id } => Some((*client_id, Some(external_id.as_str()))),
            ProviderSeat::Untracked => None,
        })
    }

    /// The provider's id for a confirmed seat.
    pub fn external_id(&self, client_id: u64) -> Option<&str> {
        match self.seats.get(&client_id) {
            Some(ProviderSeat::Confirmed { external_id }) => Some(external_id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

    #[test]
    fn new_seats_are_taken_once_and_issue_only_when_confirmed() {
        let mut seats = ProviderSeats::default();
        let changes = seats.reconcile(&[1, 2], |_| Some(IP));
        assert_eq!(changes, SeatChanges { take: vec![(1, IP), (2, IP)], free: vec![] });
        assert!(!seats.may_issue(1), "asked, not yet confirmed");
        assert_eq!(seats.reconcile(&[1, 2], |_| Some(IP)), SeatChanges::default(), "asked once");
        assert!(seats.confirm(1, "a1cb46bc7f15-S".into()));
        assert!(seats.may_issue(1) && !seats.may_issue(2) && !seats.may_issue(9));
        assert_eq!(seats.external_id(1), Some("a1cb46bc7f15-S"));
    }

    #[test]
    fn freed_seats_are_given_back_and_a_late_confirmation_is_refused() {
        let mut seats = ProviderSeats::default();
        seats.reconcile(&[1, 2], |_| Some(IP));
        seats.confirm(1, "one".into());
        let changes = seats.reconcile(&[], |_| Some(IP));
        assert_eq!(changes.free, vec![(1, Some("one".into())), (2, None)], "confirmed and still-asked seats alike");
        assert!(!seats.confirm(2, "two".into()), "the seat was freed before the provider answered");
        assert!(!seats.may_issue(2));
    }

    #[test]
    fn a_seat_held_before_a_restart_is_given_back_by_its_provider_id() {
        let mut seats = ProviderSeats::default();
        seats.adopt_confirmed(7, "a1cb46bc7f15-S".into());
        assert_eq!(seats.reconcile(&[7], |_| None), SeatChanges::default(), "known, so not untracked");
        assert!(seats.may_issue(7));
        assert_eq!(seats.reconcile(&[], |_| None).free, vec![(7, Some("a1cb46bc7f15-S".into()))]);
    }

    #[test]
    fn seats_without_a_known_player_address_are_untracked_never_taken_nor_freed() {
        let mut seats = ProviderSeats::default();
        let changes = seats.reconcile(&[5], |_| None);
        assert_eq!(changes, SeatChanges::default());
        assert!(seats.may_issue(5), "an adopted player's seat needs no confirmation");
        assert_eq!(seats.reconcile(&[], |_| None), SeatChanges::default(), "nothing to give back");
    }
}
