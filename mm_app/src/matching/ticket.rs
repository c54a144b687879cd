//! A ticket: one player, or one party that plays together, with what the rules compare.

use std::collections::BTreeMap;

/// What a player (or a party) says about itself: the rules read these by name. The wire's
/// type itself, bounded and checked on arrival, so the engine reads a join's attributes as
/// they came.
pub use bevygap_shared::protocol::TicketAttributes as Attributes;

/// A party's attributes from its members', the way Edgegap and FlexMatch combine them:
/// numbers averaged (over the members that have one), strings kept when every member agrees,
/// lists intersected (what every member accepts).
pub fn party_attributes<'a>(members: impl IntoIterator<Item = &'a Attributes>) -> Attributes {
    let members: Vec<&Attributes> = members.into_iter().collect();
    let Some(first) = members.first() else { return Attributes::default() };
    let mut sums: BTreeMap<&str, (f64, u32)> = BTreeMap::new();
    for (name, value) in members.iter().flat_map(|m| &m.numbers) {
        let entry = sums.entry(name).or_default();
        *entry = (entry.0 + value, entry.1 + 1);
    }
    let numbers = sums.into_iter().map(|(name, (sum, n))| (name.to_string(), sum / f64::from(n))).collect();
    let strings = first
        .strings
        .iter()
        .filter(|(name, value)| members.iter().all(|m| m.strings.get(*name) == Some(*value)))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let lists = first
        .lists
        .iter()
        .map(|(name, values)| {
            let shared = values
                .iter()
                .filter(|v| members.iter().all(|m| m.lists.get(name).is_some_and(|l| l.contains(*v))))
                .cloned()
                .collect();
            (name.clone(), shared)
        })
        .collect();
    Attributes { numbers, strings, lists }
}

/// Round trips in milliseconds, by location name.
pub type Latencies = BTreeMap<String, f64>;

/// A party's latencies from its members': per location, the worst member's, and only the
/// locations every member measured.
pub fn party_latencies<'a>(members: impl IntoIterator<Item = &'a Latencies>) -> Latencies {
    let members: Vec<&Latencies> = members.into_iter().collect();
    let Some(first) = members.first() else { return Latencies::new() };
    first
        .keys()
        .filter_map(|location| {
            let worst = members.iter().map(|m| m.get(location).copied()).try_fold(0.0f64, |w, l| Some(w.max(l?)))?;
            Some((location.clone(), worst))
        })
        .collect()
}

/// One ticket in a pool: `size` players who go to one team together.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket<T> {
    pub id: T,
    /// Players on the ticket (a party's members).
    pub size: u32,
    /// When it entered the pool (matchmaker clock, seconds).
    pub queued_at: f64,
    pub attributes: Attributes,
    pub latencies: Latencies,
}
