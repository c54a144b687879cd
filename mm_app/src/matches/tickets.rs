//! A pool's joins as the engine's tickets: a player alone is a ticket; a party is one ticket
//! once every member has joined, with its members' attributes combined. Pure, tested
//! without an App.

use std::collections::BTreeMap;

use bevygap_shared::protocol::TicketAttributes;

use crate::matching::{Ticket, party_attributes, party_latencies};

/// One join waiting in a pool.
#[derive(Debug, Clone)]
pub struct PoolJoin<'a, J> {
    pub join: J,
    pub party: Option<&'a str>,
    pub party_size: u32,
    pub queued_at: f64,
    pub attributes: &'a TicketAttributes,
    pub latencies: &'a BTreeMap<String, f64>,
}

/// What became of a pool's joins.
#[derive(Debug, Clone, PartialEq)]
pub struct Gathered<J> {
    /// Tickets the engine may match: each carries the joins it stands for.
    pub tickets: Vec<Ticket<Vec<J>>>,
    /// Joins of parties whose members disagree on the party size, or that have more members
    /// than the size says: they can never be matched whole.
    pub unmatchable: Vec<J>,
    /// Players in the pool (whole or not), for the `searching` message.
    pub players: u32,
}

/// Groups `pool` into tickets; a party whose members have not all joined yet waits.
pub fn gather<J: Clone>(pool: &[PoolJoin<'_, J>]) -> Gathered<J> {
    let mut tickets = Vec::new();
    let mut unmatchable = Vec::new();
    let mut parties: BTreeMap<&str, Vec<&PoolJoin<'_, J>>> = BTreeMap::new();
    for join in pool {
        match join.party {
            None => tickets.push(ticket(&[join])),
            Some(party) => parties.entry(party).or_default().push(join),
        }
    }
    for members in parties.into_values() {
        let size = members[0].party_size;
        let agree = members.iter().all(|m| m.party_size == size);
        let count = members.len() as u32;
        if !agree || count > size {
            unmatchable.extend(members.iter().map(|m| m.join.clone()));
        } else if count == size {
            tickets.push(ticket(&members));
        }
    }
    Gathered { tickets, unmatchable, players: pool.len() as u32 }
}

fn ticket<J: Clone>(members: &[&PoolJoin<'_, J>]) -> Ticket<Vec<J>> {
    Ticket {
        id: members.iter().map(|m| m.join.clone()).collect(),
        size: members.len() as u32,
        queued_at: members.iter().map(|m| m.queued_at).fold(f64::INFINITY, f64::min),
        attributes: party_attributes(members.iter().map(|m| m.attributes)),
        latencies: party_latencies(members.iter().map(|m| m.latencies)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member<'a>(
        join: u32,
        party: Option<&'a str>,
        party_size: u32,
        attributes: &'a TicketAttributes,
        latencies: &'a BTreeMap<String, f64>,
    ) -> PoolJoin<'a, u32> {
        PoolJoin { join, party, party_size, queued_at: f64::from(join), attributes, latencies }
    }

    #[test]
    fn a_party_is_one_ticket_once_whole_with_its_attributes_combined() {
        let (mut low, mut high) = (TicketAttributes::default(), TicketAttributes::default());
        low.numbers.insert("elo".into(), 1000.0);
        high.numbers.insert("elo".into(), 1400.0);
        let near: BTreeMap<String, f64> = [("eu".to_string(), 20.0), ("us".to_string(), 90.0)].into();
        let far: BTreeMap<String, f64> = [("eu".to_string(), 60.0)].into();
        let pool = [
            member(1, Some("p"), 2, &low, &near),
            member(2, None, 1, &high, &far),
            member(3, Some("p"), 2, &high, &far),
            member(4, Some("q"), 3, &low, &near),
        ];
        let gathered = gather(&pool);
        assert_eq!(gathered.players, 4);
        assert!(gathered.unmatchable.is_empty());
        assert_eq!(gathered.tickets.len(), 2, "the solo player and party p; q waits for its third");
        let party = gathered.tickets.iter().find(|t| t.size == 2).expect("party p");
        assert_eq!(party.id, [1, 3]);
        assert_eq!(party.queued_at, 1.0, "as old as its oldest member");
        assert_eq!(party.attributes.numbers["elo"], 1200.0, "averaged");
        assert_eq!(party.latencies, BTreeMap::from([("eu".to_string(), 60.0)]), "worst, where all measured");
    }

    #[test]
    fn a_party_that_cannot_be_whole_is_unmatchable() {
        let (a, l) = (TicketAttributes::default(), BTreeMap::new());
        let disagree = [member(1, Some("p"), 2, &a, &l), member(2, Some("p"), 3, &a, &l)];
        assert_eq!(gather(&disagree).unmatchable, [1, 2]);
        let too_many = [member(1, Some("p"), 1, &a, &l), member(2, Some("p"), 1, &a, &l)];
        let gathered = gather(&too_many);
        assert_eq!((gathered.unmatchable, gathered.tickets.len()), (vec![1, 2], 0));
    }
}
