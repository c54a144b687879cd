//! Matches: which waiting tickets of a profile play together, as one pure function from the
//! pool to [`FormedMatch`]es, written like [`placement`](crate::placement): plain data in,
//! decisions out, no ECS and no I/O. The glue gathers each pool, calls [`form_matches`], and
//! places every formed match as one unit.
//!
//! The rules of a pass, each checked by the property tests below:
//! - **Every rule holds at each ticket's own stage**: a ticket that waited past an expansion
//!   accepts the relaxed limit; one that did not still gets its strict limit from everyone in
//!   its match.
//! - **Parties stay whole**: a ticket (a party) goes to one team of one match.
//! - **Team sizes stay in bounds**: at most `max_size`; a match forms when every team is full,
//!   or, below that, when the oldest ticket's wait allows a smaller size (the team expansions,
//!   then `min_size` at `max_wait_secs`), never below `min_size`.
//! - **No ticket is in two matches.**
//! - **Oldest first**: the oldest waiting ticket anchors the next match, and candidates join
//!   in age order, so an older ticket that fits a match is never passed over for a younger one.
//! - **A pool that can form a match forms one.**
//!
//! ```
//! use bevygap_matchmaker::matching::*;
//!
//! let duel = Profile {
//!     name: "duel".into(),
//!     kind: ProfileKind::Match,
//!     teams: Teams { count: 2, min_size: 1, max_size: 1, expansions: vec![] },
//!     max_wait_secs: 30.0,
//!     rules: vec![Rule {
//!         name: "elo".into(),
//!         kind: RuleKind::NumberDifference { attribute: "elo".into(), max_difference: 100.0 },
//!         expansions: vec![Step { after_secs: 10.0, limit: 300.0 }],
//!     }],
//! };
//! let player = |id, elo: f64, queued_at| {
//!     let mut attributes = Attributes::default();
//!     attributes.numbers.insert("elo".into(), elo);
//!     Ticket { id, size: 1, queued_at, attributes, latencies: Latencies::new() }
//! };
//! let pool = [player("ann", 1000.0, 0.0), player("bob", 1250.0, 0.0)];
//! assert!(form_matches(&duel, &pool, 5.0).is_empty(), "250 apart: too far while both are strict");
//! let formed = form_matches(&duel, &pool, 11.0);
//! assert_eq!(formed[0].teams, [vec!["ann"], vec!["bob"]], "both waited past the expansion");
//! ```

mod profile;
mod profile_set;
mod ticket;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;

pub use profile::{
    MAX_TEAM_SIZE, MAX_TEAMS, Profile, ProfileError, ProfileKind, Rule, RuleKind, Step, Teams, stage_in,
};
pub use profile_set::{DEFAULT_PROFILE, ProfileSet};
pub use ticket::{Attributes, Latencies, Ticket, party_attributes, party_latencies};

/// A match the pass formed.
#[derive(Debug, Clone, PartialEq)]
pub struct FormedMatch<T> {
    /// The tickets of each team.
    pub teams: Vec<Vec<T>>,
    /// Where to run it, chosen by the latency rule (the shared location with the lowest worst
    /// latency).
    pub location: Option<String>,
    /// The values every player shares, per intersection rule.
    pub shared: BTreeMap<String, BTreeSet<String>>,
}

impl Profile {
    /// The team size a match may form with once its oldest ticket waited `wait` seconds.
    pub fn formable_team_size(&self, wait: f64) -> u32 {
        if wait >= self.max_wait_secs {
            return self.teams.min_size;
        }
        let relaxed = self.teams.expansions.iter().take_while(|s| s.after_secs <= wait).last();
        relaxed.map_or(self.teams.max_size, |s| s.limit as u32).max(self.teams.min_size)
    }
}

/// What one rule reads of one ticket.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Number(f64),
    /// A string, as its number among the pass's distinct strings (equal strings, equal numbers).
    Text(u32),
    List(&'a BTreeSet<String>),
    /// The ticket's latency per location of the pass (`INFINITY` where it measured none).
    Latency(&'a [f64]),
    Missing,
}

/// A ticket as one pass reads it.
struct Entry<'a> {
    size: u32,
    /// Position in age order (0: the oldest).
    age_rank: usize,
    /// Per rule: the limit at this ticket's stage, and the value the rule reads (windows of
    /// one flat array per pass, so a pass allocates two vectors, not two per ticket).
    limits: &'a [f64],
    values: &'a [Value<'a>],
}

/// The locations named in a pass, at most 64 (a latency mask is a `u64`).
struct Locations<'a> {
    names: Vec<&'a str>,
}

impl<'a> Locations<'a> {
    fn of<T>(tickets: &'a [Ticket<T>]) -> Self {
        let all: BTreeSet<&str> = tickets.iter().flat_map(|t| t.latencies.keys().map(String::as_str)).collect();
        Self { names: all.into_iter().take(64).collect() }
    }

    /// Appends the ticket's latency at each location of the pass (`INFINITY` where it
    /// measured none).
    fn push_row(&self, latencies: &Latencies, out: &mut Vec<f64>) {
        out.extend(self.names.iter().map(|name| latencies.get(*name).copied().unwrap_or(f64::INFINITY)));
    }
}

/// Forms every match the pool allows now: oldest ticket first, each anchoring a match of the
/// oldest tickets compatible with everyone already in it.
pub fn form_matches<T: Clone>(profile: &Profile, tickets: &[Ticket<T>], now: f64) -> Vec<FormedMatch<T>> {
    let mut order: Vec<usize> = (0..tickets.len()).collect();
    order.sort_by(|&a, &b| tickets[a].queued_at.total_cmp(&tickets[b].queued_at).then(a.cmp(&b)));
    let locations = Locations::of(tickets);
    let (width, rules) = (locations.names.len(), profile.rules.len());
    let mut rows: Vec<f64> = Vec::with_capacity(tickets.len() * width);
    let mut limits: Vec<f64> = Vec::with_capacity(tickets.len() * rules);
    for ticket in tickets {
        locations.push_row(&ticket.latencies, &mut rows);
        let wait = now - ticket.queued_at;
        limits.extend(profile.rules.iter().map(|rule| rule.limit_at(wait)));
    }
    let mut strings = HashMap::new();
    let mut values: Vec<Value> = Vec::with_capacity(tickets.len() * rules);
    for (i, ticket) in tickets.iter().enumerate() {
        let row = &rows[i * width..(i + 1) * width];
        push_values(profile, ticket, row, &mut strings, &mut values);
    }
    let mut entries: Vec<Entry> = tickets
        .iter()
        .enumerate()
        .map(|(i, t)| Entry {
            size: t.size.max(1),
            age_rank: 0,
            limits: &limits[i * rules..(i + 1) * rules],
            values: &values[i * rules..(i + 1) * rules],
        })
        .collect();
    for (rank, &i) in order.iter().enumerate() {
        entries[i].age_rank = rank;
    }
    let mut index = NumberIndex::new(profile, &entries, &order);
    let mut matched = vec![false; tickets.len()];
    let mut formed = Vec::new();
    // One group, emptied for each anchor: a pass allocates no group per ticket.
    let mut group = Group::empty(profile, &locations);
    for &anchor in &order {
        if matched[anchor] || entries[anchor].size > profile.teams.max_size {
            continue;
        }
        if !group.restart(anchor, &entries) {
            continue;
        }
        let mut visits = 0;
        index.visit_candidates(anchor, &entries, &matched, |candidate| {
            group.try_add(candidate, &entries);
            visits += 1;
            if group.is_full() || visits == MAX_VISITS { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        });
        let oldest_wait = group.members.iter().map(|&m| now - tickets[m].queued_at).fold(0.0, f64::max);
        if !group.may_form(profile.formable_team_size(oldest_wait)) {
            continue;
        }
        prefer_older(&mut group, anchor, &mut index, &entries, &matched, &locations);
        for &m in &group.members {
            matched[m] = true;
            index.remove(m, &entries);
        }
        formed.push(group.to_match(profile, tickets, &locations));
    }
    formed
}

/// Candidates one anchor looks at, oldest first, before it gives up for this pass: a lonely
/// ticket in a large pool must not cost a scan of everything within its limits on every pass.
const MAX_VISITS: usize = 512;

/// Older candidates each member's greedy pass may have missed (a failed anchor, passed over
/// while an incompatible older ticket blocked it) at most this many per member are tried.
const SWAP_CANDIDATES: usize = 64;

/// Puts an older waiting ticket in place of a younger member of the same size wherever the
/// match stays valid, youngest members first, until no such swap is left, so no ticket is
/// passed over for a younger one it could have replaced. Every swap lowers the match's total
/// age rank, so this ends.
///
/// Until a swap changes the members, only tickets older than the anchor need a look (earlier
/// anchors that formed nothing): every waiting ticket younger than the anchor was offered to
/// this group in age order, before any younger member, and refused by members still in it.
fn prefer_older(
    group: &mut Group<'_>,
    anchor: usize,
    index: &mut NumberIndex,
    entries: &[Entry],
    matched: &[bool],
    locations: &Locations,
) {
    let mut before = entries[anchor].age_rank;
    while let Some(swapped) = swap_one_older(group, before, index, entries, matched, locations) {
        *group = swapped;
        before = usize::MAX;
    }
}

/// The group with one younger member replaced by an older waiting ticket, if any fits.
fn swap_one_older<'p>(
    group: &Group<'p>,
    before: usize,
    index: &mut NumberIndex,
    entries: &[Entry],
    matched: &[bool],
    locations: &Locations,
) -> Option<Group<'p>> {
    let mut by_age = group.members.clone();
    by_age.sort_unstable_by_key(|&m| std::cmp::Reverse(entries[m].age_rank));
    for young in by_age {
        let keeper = group.members.iter().copied().find(|&m| m != young)?;
        let mut older = Vec::new();
        index.visit_candidates(keeper, entries, matched, |o| {
            if entries[o].age_rank >= entries[young].age_rank.min(before) || older.len() == SWAP_CANDIDATES {
                return ControlFlow::Break(());
            }
            let others = group.members.iter().filter(|&&m| m != young);
            if entries[o].size == entries[young].size
                && !group.members.contains(&o)
                && pairs_keep_rules(group.profile, o, others, entries)
            {
                older.push(o);
            }
            ControlFlow::Continue(())
        });
        for candidate in older {
            // The older ticket takes the younger one's place in its team.
            let mut seats: Vec<(usize, usize)> = group
                .members
                .iter()
                .zip(&group.team_of)
                .map(|(&m, &team)| (if m == young { candidate } else { m }, team))
                .collect();
            seats.sort_unstable_by_key(|&(m, _)| entries[m].age_rank);
            if let Some(swapped) = Group::of(group.profile, locations, &seats, entries) {
                return Some(swapped);
            }
        }
    }
    None
}

/// Whether `candidate` keeps the pairwise rules (number differences, string equalities) with
/// each of `members`: a check that allocates nothing, made before a group is rebuilt.
fn pairs_keep_rules<'m>(
    profile: &Profile,
    candidate: usize,
    members: impl Iterator<Item = &'m usize> + Clone,
    entries: &[Entry],
) -> bool {
    let c = &entries[candidate];
    profile.rules.iter().enumerate().all(|(r, rule)| {
        match (&rule.kind, c.values[r]) {
        (RuleKind::NumberDifference { .. }, Value::Number(x)) => members.clone().all(|&m| {
            matches!(entries[m].values[r], Value::Number(y) if (x - y).abs() <= c.limits[r].min(entries[m].limits[r]))
        }),
        (RuleKind::StringEquality { .. }, Value::Text(s)) => {
            members.clone().all(|&m| matches!(entries[m].values[r], Value::Text(t) if t == s))
        }
        (_, Value::Missing) => false,
        _ => true,
    }
    })
}

/// Appends what each rule reads of `ticket` (`row`: its latency per location of the pass).
fn push_values<'a, T>(
    profile: &Profile,
    ticket: &'a Ticket<T>,
    row: &'a [f64],
    strings: &mut HashMap<&'a str, u32>,
    out: &mut Vec<Value<'a>>,
) {
    for rule in &profile.rules {
        out.push(match &rule.kind {
            RuleKind::NumberDifference { attribute, .. } => ticket
                .attributes
                .numbers
                .get(attribute)
                .copied()
                .filter(|v| v.is_finite())
                .map_or(Value::Missing, Value::Number),
            RuleKind::StringEquality { attribute } => {
                ticket.attributes.strings.get(attribute).map_or(Value::Missing, |s| {
                    let next = strings.len() as u32;
                    Value::Text(*strings.entry(s.as_str()).or_insert(next))
                })
            }
            RuleKind::Intersection { attribute, .. } => {
                ticket.attributes.lists.get(attribute).map_or(Value::Missing, Value::List)
            }
            RuleKind::Latencies { .. } => Value::Latency(row),
        });
    }
}

/// The tickets in buckets, each bucket in age order, so a ticket's candidates come oldest
/// first from the few buckets that can hold one, lazily, and a pass never sorts or scans the
/// whole pool per ticket. Tickets are first split by their string-equality values (a ticket
/// only ever meets tickets with the same strings), then bucketed by the first number rule's
/// value (one bucket when there is none). A ticket missing a string or that number can match
/// no one and is left out.
struct NumberIndex {
    rule: Option<usize>,
    width: f64,
    lowest: i64,
    /// Buckets per partition.
    span: usize,
    /// Each ticket's partition (`NOT_INDEXED` for one left out).
    partition_of: Vec<u32>,
    /// Per partition, `span` buckets of its waiting tickets in age order (a matched ticket is
    /// taken out): partition `p`'s bucket `b` is `buckets[p * span + b]`.
    buckets: Vec<Vec<usize>>,
    /// The merge of one visit's buckets (kept between visits: its memory is reused).
    heap: std::collections::BinaryHeap<std::cmp::Reverse<(usize, usize, usize)>>,
}

/// The partition of a ticket [`NumberIndex`] leaves out.
const NOT_INDEXED: u32 = u32::MAX;

/// Most buckets an index holds in all (more distinct values share edge buckets, which costs
/// visits, never correctness: each candidate's value is checked).
const MAX_BUCKETS: usize = 1 << 20;

impl NumberIndex {
    fn new(profile: &Profile, entries: &[Entry], order: &[usize]) -> Self {
        let rule = profile.rules.iter().position(|r| matches!(r.kind, RuleKind::NumberDifference { .. }));
        let value = |i: usize| match rule.map(|r| entries[i].values[r]) {
            Some(Value::Number(v)) => Some(v),
            Some(_) => None,
            None => Some(0.0),
        };
        let partition_of = partitions(profile, entries, |i| value(i).is_some());
        let partitions = partition_of.iter().filter(|&&p| p != NOT_INDEXED).max().map_or(0, |&p| p as usize + 1);
        // A bucket is as wide as the rule's base limit, so a window spans a few buckets.
        let width = rule
            .and_then(|r| match profile.rules[r].kind {
                RuleKind::NumberDifference { max_difference, .. } => Some(max_difference),
                _ => None,
            })
            .filter(|w| *w >= 1.0)
            .unwrap_or(1.0);
        let bucket_of = |v: f64| (v / width).floor() as i64;
        let keys: Vec<i64> = order.iter().filter_map(|&i| value(i)).map(bucket_of).collect();
        let lowest = keys.iter().copied().min().unwrap_or(0);
        let highest = keys.iter().copied().max().unwrap_or(0);
        let most = (MAX_BUCKETS / partitions.max(1)).max(1);
        let span = usize::try_from(highest - lowest).unwrap_or(0).min(most - 1) + 1;
        let mut index = Self {
            rule,
            width,
            lowest,
            span,
            partition_of,
            buckets: vec![Vec::new(); span * partitions],
            heap: std::collections::BinaryHeap::new(),
        };
        for &i in order {
            if let Some(slot) = index.slot_of(i, entries) {
                index.buckets[slot].push(i);
            }
        }
        index
    }

    /// The bucket `value` falls in, within a partition.
    fn bucket(&self, value: f64) -> usize {
        ((value / self.width).floor() as i64 - self.lowest).clamp(0, self.span as i64 - 1) as usize
    }

    /// Where ticket `i` is kept, if it is.
    fn slot_of(&self, i: usize, entries: &[Entry]) -> Option<usize> {
        let partition = *self.partition_of.get(i).filter(|&&p| p != NOT_INDEXED)? as usize;
        let b = match self.rule.map(|r| entries[i].values[r]) {
            Some(Value::Number(v)) => self.bucket(v),
            Some(_) => return None,
            None => 0,
        };
        Some(partition * self.span + b)
    }

    /// Takes a matched ticket out of its bucket, so no later pass over the bucket meets it.
    fn remove(&mut self, i: usize, entries: &[Entry]) {
        let Some(slot) = self.slot_of(i, entries) else { return };
        let list = &mut self.buckets[slot];
        if let Ok(at) = list.binary_search_by_key(&entries[i].age_rank, |&j| entries[j].age_rank) {
            list.remove(at);
        }
    }

    /// Calls `visit` with the unmatched tickets that may match `anchor` on the indexed rules
    /// (its strings, and the number within its limit), oldest first, until it breaks.
    fn visit_candidates(
        &mut self,
        anchor: usize,
        entries: &[Entry],
        matched: &[bool],
        mut visit: impl FnMut(usize) -> ControlFlow<()>,
    ) {
        let Some(&partition) = self.partition_of.get(anchor).filter(|&&p| p != NOT_INDEXED) else { return };
        let (lo, hi, range) = match self.rule {
            Some(r) => {
                let Value::Number(x) = entries[anchor].values[r] else { return };
                let limit = entries[anchor].limits[r];
                (self.bucket(x - limit), self.bucket(x + limit), Some((r, x - limit, x + limit)))
            }
            None => (0, self.span - 1, None),
        };
        let first = partition as usize * self.span;
        let Self { buckets, heap, .. } = self;
        heap.clear();
        for (b, bucket) in buckets.iter().enumerate().take(first + hi + 1).skip(first + lo) {
            if let Some(&oldest) = bucket.first() {
                heap.push(std::cmp::Reverse((entries[oldest].age_rank, b, 0)));
            }
        }
        while let Some(std::cmp::Reverse((_, b, at))) = heap.pop() {
            let i = buckets[b][at];
            if let Some(&next) = buckets[b].get(at + 1) {
                heap.push(std::cmp::Reverse((entries[next].age_rank, b, at + 1)));
            }
            let in_range = range.is_none_or(
                |(r, low, high)| matches!(entries[i].values[r], Value::Number(v) if (low..=high).contains(&v)),
            );
            if i == anchor || matched[i] || !in_range {
                continue;
            }
            if visit(i).is_break() {
                return;
            }
        }
    }
}

/// Each ticket's partition: tickets with the same value for every string-equality rule share
/// one, numbered densely from 0; a ticket missing one of those strings, or for which `indexed`
/// says no, gets [`NOT_INDEXED`].
fn partitions(profile: &Profile, entries: &[Entry], indexed: impl Fn(usize) -> bool) -> Vec<u32> {
    let string_rules: Vec<usize> = profile
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.kind, RuleKind::StringEquality { .. }))
        .map(|(i, _)| i)
        .collect();
    let mut ids: HashMap<Vec<u32>, u32> = HashMap::new();
    let mut key = Vec::with_capacity(string_rules.len());
    (0..entries.len())
        .map(|i| {
            key.clear();
            for &r in &string_rules {
                match entries[i].values[r] {
                    Value::Text(t) => key.push(t),
                    _ => return NOT_INDEXED,
                }
            }
            if !indexed(i) {
                return NOT_INDEXED;
            }
            if let Some(&id) = ids.get(&key) {
                return id;
            }
            let id = ids.len() as u32;
            ids.insert(key.clone(), id);
            id
        })
        .collect()
}

/// A match being gathered.
struct Group<'p> {
    profile: &'p Profile,
    members: Vec<usize>,
    /// Team of each member, and players per team.
    team_of: Vec<usize>,
    team_sizes: Vec<u32>,
    /// Per intersection rule, the values every member shares.
    shared: Vec<Option<BTreeSet<String>>>,
    /// Locations that count for every member (latency rule), with each location's lowest and
    /// highest latency so far.
    locations: u64,
    lowest: Vec<f64>,
    highest: Vec<f64>,
}

/// The mask of all `n` locations of a pass.
fn every_location(n: usize) -> u64 {
    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
}

impl<'p> Group<'p> {
    /// A group with no member yet.
    fn empty(profile: &'p Profile, locations: &Locations) -> Self {
        let n = locations.names.len();
        Group {
            profile,
            members: Vec::new(),
            team_of: Vec::new(),
            team_sizes: vec![0; profile.teams.count as usize],
            shared: vec![None; profile.rules.len()],
            locations: every_location(n),
            lowest: vec![f64::INFINITY; n],
            highest: vec![f64::NEG_INFINITY; n],
        }
    }

    /// Empties the group and starts it again with `anchor` alone; false if `anchor` cannot
    /// keep the rules even alone.
    fn restart(&mut self, anchor: usize, entries: &[Entry]) -> bool {
        let n = self.lowest.len();
        self.members.clear();
        self.team_of.clear();
        self.team_sizes.fill(0);
        self.shared.fill(None);
        self.locations = every_location(n);
        self.lowest.fill(f64::INFINITY);
        self.highest.fill(f64::NEG_INFINITY);
        self.try_add_to(anchor, 0, entries)
    }

    /// A group of exactly these members in these teams, if they keep every rule together and
    /// fit.
    fn of(profile: &'p Profile, locations: &Locations, seats: &[(usize, usize)], entries: &[Entry]) -> Option<Self> {
        let mut group = Self::empty(profile, locations);
        seats.iter().all(|&(m, team)| group.try_add_to(m, team, entries)).then_some(group)
    }

    /// Adds `candidate` to the least-filled team it fits if it keeps every rule, at every
    /// member's stage.
    fn try_add(&mut self, candidate: usize, entries: &[Entry]) -> bool {
        self.team_for(entries[candidate].size).is_some_and(|team| self.try_add_to(candidate, team, entries))
    }

    /// Adds `candidate` to `team` if it fits there and keeps every rule, at every member's
    /// stage.
    fn try_add_to(&mut self, candidate: usize, team: usize, entries: &[Entry]) -> bool {
        let c = &entries[candidate];
        if self.team_sizes.get(team).is_none_or(|&n| n + c.size > self.profile.teams.max_size) {
            return false;
        }
        // The cheap pairwise rules first, then the latency mask; only a candidate that passes
        // both pays for the intersections (which allocate).
        if !pairs_keep_rules(self.profile, candidate, self.members.iter(), entries) {
            return false;
        }
        let mut locations = self.locations;
        for (r, rule) in self.profile.rules.iter().enumerate() {
            if let (RuleKind::Latencies { max_difference, .. }, Value::Latency(row)) = (&rule.kind, c.values[r]) {
                locations &= self.locations_within(row, c.limits[r], *max_difference);
                if locations == 0 {
                    return false;
                }
            }
        }
        let mut shared: Vec<(usize, BTreeSet<String>)> = Vec::new();
        for (r, rule) in self.profile.rules.iter().enumerate() {
            if let (RuleKind::Intersection { .. }, Value::List(list)) = (&rule.kind, c.values[r]) {
                let now_shared: BTreeSet<String> = match &self.shared[r] {
                    Some(so_far) => so_far.intersection(list).cloned().collect(),
                    None => list.clone(),
                };
                let needed = self.members.iter().map(|&m| entries[m].limits[r]).fold(c.limits[r], f64::max);
                if (now_shared.len() as f64) < needed {
                    return false;
                }
                shared.push((r, now_shared));
            }
        }
        if let Some(row) = self.latency_row(c) {
            for (l, &latency) in row.iter().enumerate() {
                self.lowest[l] = self.lowest[l].min(latency);
                self.highest[l] = self.highest[l].max(latency);
            }
        }
        for (r, now_shared) in shared {
            self.shared[r] = Some(now_shared);
        }
        self.locations = locations;
        self.members.push(candidate);
        self.team_of.push(team);
        self.team_sizes[team] += c.size;
        true
    }

    /// The locations that count for a ticket with `row` at its `max_latency`, and keep every
    /// member within `max_difference` there.
    fn locations_within(&self, row: &[f64], max_latency: f64, max_difference: f64) -> u64 {
        let mut mask = 0u64;
        for (l, &latency) in row.iter().enumerate() {
            let low = self.lowest[l].min(latency);
            let high = self.highest[l].max(latency);
            if latency <= max_latency && high - low <= max_difference {
                mask |= 1 << l;
            }
        }
        mask
    }

    fn latency_row<'e>(&self, entry: &Entry<'e>) -> Option<&'e [f64]> {
        entry.values.iter().find_map(|v| match v {
            Value::Latency(row) => Some(*row),
            _ => None,
        })
    }

    /// The least-filled team with room for `size` players.
    fn team_for(&self, size: u32) -> Option<usize> {
        let max = self.profile.teams.max_size;
        self.team_sizes.iter().enumerate().filter(|&(_, &n)| n + size <= max).min_by_key(|&(_, &n)| n).map(|(t, _)| t)
    }

    fn is_full(&self) -> bool {
        self.team_sizes.iter().all(|&n| n == self.profile.teams.max_size)
    }

    /// Whether the gathered tickets make a match with every team at least `team_size` big.
    fn may_form(&self, team_size: u32) -> bool {
        let floor = team_size.max(self.profile.teams.min_size);
        self.is_full() || self.team_sizes.iter().all(|&n| n >= floor)
    }

    fn to_match<T: Clone>(&self, profile: &Profile, tickets: &[Ticket<T>], locations: &Locations) -> FormedMatch<T> {
        let mut teams = vec![Vec::new(); profile.teams.count as usize];
        for (&member, &team) in self.members.iter().zip(&self.team_of) {
            teams[team].push(tickets[member].id.clone());
        }
        let has_latency_rule = profile.rules.iter().any(|r| matches!(r.kind, RuleKind::Latencies { .. }));
        let location = has_latency_rule
            .then(|| {
                (0..locations.names.len())
                    .filter(|l| self.locations & (1 << l) != 0)
                    .min_by(|&a, &b| self.highest[a].total_cmp(&self.highest[b]).then(a.cmp(&b)))
                    .map(|l| locations.names[l].to_string())
            })
            .flatten();
        let shared = profile
            .rules
            .iter()
            .zip(&self.shared)
            .filter_map(|(rule, shared)| Some((rule.name.clone(), shared.clone()?)))
            .collect();
        FormedMatch { teams, location, shared }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn ticket(id: u32, size: u32, queued_at: f64) -> Ticket<u32> {
        Ticket { id, size, queued_at, attributes: Attributes::default(), latencies: Latencies::new() }
    }

    fn with_elo(mut t: Ticket<u32>, elo: f64) -> Ticket<u32> {
        t.attributes.numbers.insert("elo".into(), elo);
        t
    }

    fn profile(count: u32, min_size: u32, max_size: u32, rules: Vec<Rule>) -> Profile {
        Profile {
            name: "test".into(),
            kind: ProfileKind::Match,
            teams: Teams { count, min_size, max_size, expansions: Vec::new() },
            max_wait_secs: 60.0,
            rules,
        }
    }

    fn elo_rule(max_difference: f64, expansions: Vec<Step>) -> Rule {
        Rule {
            name: "elo".into(),
            kind: RuleKind::NumberDifference { attribute: "elo".into(), max_difference },
            expansions,
        }
    }

    fn latency_rule(max_latency: f64, max_difference: f64) -> Rule {
        Rule { name: "ping".into(), kind: RuleKind::Latencies { max_latency, max_difference }, expansions: Vec::new() }
    }

    /// The rules checked from scratch, for a set of tickets at `now`: every rule at each
    /// ticket's own stage, and the latency location, if any, good for everyone.
    fn keeps_rules(profile: &Profile, members: &[&Ticket<u32>], location: Option<&str>, now: f64) -> bool {
        profile.rules.iter().all(|rule| {
            let limit = |t: &Ticket<u32>| rule.limit_at(now - t.queued_at);
            match &rule.kind {
                RuleKind::NumberDifference { attribute, .. } => members.iter().all(|a| {
                    members.iter().all(|b| {
                        match (a.attributes.numbers.get(attribute), b.attributes.numbers.get(attribute)) {
                            (Some(x), Some(y)) => (x - y).abs() <= limit(a) + 1e-9,
                            _ => false,
                        }
                    })
                }),
                RuleKind::StringEquality { attribute } => {
                    let first = members[0].attributes.strings.get(attribute);
                    first.is_some() && members.iter().all(|m| m.attributes.strings.get(attribute) == first)
                }
                RuleKind::Intersection { attribute, .. } => {
                    let lists: Option<Vec<&BTreeSet<String>>> =
                        members.iter().map(|m| m.attributes.lists.get(attribute)).collect();
                    let Some(lists) = lists else { return false };
                    let shared = lists[0].iter().filter(|v| lists.iter().all(|l| l.contains(*v))).count();
                    members.iter().all(|m| shared as f64 >= limit(m))
                }
                RuleKind::Latencies { max_difference, .. } => {
                    let good = |l: &str| {
                        let lat: Option<Vec<f64>> = members.iter().map(|m| m.latencies.get(l).copied()).collect();
                        let Some(lat) = lat else { return false };
                        let (lo, hi) =
                            lat.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)));
                        members.iter().zip(&lat).all(|(m, &x)| x <= limit(m)) && hi - lo <= *max_difference
                    };
                    location.is_some_and(good)
                }
            }
        })
    }

    #[test]
    fn four_tickets_make_a_2v2_and_a_party_stays_on_one_team() {
        let p = profile(2, 2, 2, Vec::new());
        let pool = [ticket(1, 2, 0.0), ticket(2, 1, 1.0), ticket(3, 1, 2.0)];
        let formed = form_matches(&p, &pool, 3.0);
        assert_eq!(formed.len(), 1);
        assert_eq!(formed[0].teams, [vec![1], vec![2, 3]], "the party of two is one team");
        let too_big = [ticket(1, 3, 0.0), ticket(2, 1, 0.0)];
        assert!(form_matches(&p, &too_big, 100.0).is_empty(), "a party larger than a team never plays");
    }

    #[test]
    fn an_elo_expansion_lets_a_waiting_pair_match_after_its_time() {
        let p = profile(2, 1, 1, vec![elo_rule(100.0, vec![Step { after_secs: 10.0, limit: 300.0 }])]);
        let pool = [with_elo(ticket(1, 1, 0.0), 1000.0), with_elo(ticket(2, 1, 5.0), 1250.0)];
        assert!(form_matches(&p, &pool, 12.0).is_empty(), "the younger one is still strict");
        assert_eq!(form_matches(&p, &pool, 15.0).len(), 1, "both relaxed");
    }

    #[test]
    fn a_smaller_match_forms_only_at_its_expansion_or_max_wait_and_never_below_min() {
        let mut p = profile(2, 1, 2, Vec::new());
        let pool = [ticket(1, 1, 0.0), ticket(2, 1, 0.0)];
        assert!(form_matches(&p, &pool, 10.0).is_empty(), "waits for 2v2");
        assert_eq!(form_matches(&p, &pool, 60.0)[0].teams, [vec![1], vec![2]], "1v1 at max_wait");
        p.teams.expansions = vec![Step { after_secs: 5.0, limit: 1.0 }];
        assert_eq!(form_matches(&p, &pool, 6.0).len(), 1, "1v1 after the team expansion");
        assert!(form_matches(&p, &pool[..1], 600.0).is_empty(), "one player is never a match of two teams");
    }

    #[test]
    fn the_latency_rule_plays_at_the_best_location_everyone_shares() {
        let p = profile(2, 1, 1, vec![latency_rule(100.0, 30.0)]);
        let lat = |pairs: &[(&str, f64)]| pairs.iter().map(|(l, v)| (l.to_string(), *v)).collect::<Latencies>();
        let mut a = ticket(1, 1, 0.0);
        a.latencies = lat(&[("paris", 20.0), ("frankfurt", 35.0), ("tokyo", 250.0)]);
        let mut b = ticket(2, 1, 0.0);
        b.latencies = lat(&[("paris", 80.0), ("frankfurt", 40.0), ("tokyo", 90.0)]);
        let formed = form_matches(&p, &[a.clone(), b.clone()], 1.0);
        assert_eq!(formed[0].location.as_deref(), Some("frankfurt"), "paris is 60 ms apart, tokyo too far for a");
        b.latencies = lat(&[("tokyo", 90.0)]);
        assert!(form_matches(&p, &[a, b], 1.0).is_empty(), "no location good for both");
    }

    #[test]
    fn an_intersection_sends_the_shared_values_and_a_string_must_be_equal() {
        let maps = Rule {
            name: "maps".into(),
            kind: RuleKind::Intersection { attribute: "maps".into(), min_shared: 1 },
            expansions: Vec::new(),
        };
        let mode = Rule {
            name: "mode".into(),
            kind: RuleKind::StringEquality { attribute: "mode".into() },
            expansions: Vec::new(),
        };
        let p = profile(2, 1, 1, vec![maps, mode]);
        let player = |id, maps: &[&str], mode: &str| {
            let mut t = ticket(id, 1, f64::from(id));
            t.attributes.lists.insert("maps".into(), maps.iter().map(|m| m.to_string()).collect());
            t.attributes.strings.insert("mode".into(), mode.into());
            t
        };
        let pool = [
            player(1, &["dust", "port"], "ranked"),
            player(2, &["port", "ice"], "casual"),
            player(3, &["port"], "ranked"),
        ];
        let formed = form_matches(&p, &pool, 5.0);
        assert_eq!(formed[0].teams, [vec![1], vec![3]], "2 plays another mode");
        assert_eq!(formed[0].shared["maps"], BTreeSet::from(["port".to_string()]));
    }

    #[test]
    fn profiles_are_checked_with_errors_that_name_the_field() {
        let mut p = profile(2, 3, 2, Vec::new());
        assert_eq!(p.validate("profiles[0]").unwrap_err().field, "profiles[0].teams");
        p.teams.min_size = 1;
        p.rules = vec![elo_rule(100.0, vec![Step { after_secs: 10.0, limit: 50.0 }])];
        let err = p.validate("profiles[0]").unwrap_err();
        assert_eq!(err.field, "profiles[0].rules[0].expansions[0]", "{err}");
        p.rules = vec![elo_rule(100.0, vec![Step { after_secs: 10.0, limit: 200.0 }]), elo_rule(5.0, Vec::new())];
        assert_eq!(p.validate("p").unwrap_err().field, "p.rules[1].name", "names are unique");
        p.rules.pop();
        assert!(p.validate("p").is_ok());
        p.name = "two words".into();
        assert_eq!(p.validate("p").unwrap_err().field, "p.name", "a profile is named as a join's mode is");
        p.name = "test".into();
        assert_eq!(p.stage_at(9.0), 0);
        assert_eq!(p.stage_at(10.0), 1);
    }

    #[test]
    fn party_attributes_average_numbers_and_intersect_lists() {
        let member = |elo: f64, maps: &[&str]| {
            let mut a = Attributes::default();
            a.numbers.insert("elo".into(), elo);
            a.lists.insert("maps".into(), maps.iter().map(|m| m.to_string()).collect());
            a.strings.insert("platform".into(), if elo > 1500.0 { "pc" } else { "console" }.into());
            a
        };
        let party = party_attributes([&member(1000.0, &["a", "b"]), &member(2000.0, &["b", "c"])]);
        assert_eq!(party.numbers["elo"], 1500.0);
        assert_eq!(party.lists["maps"], BTreeSet::from(["b".to_string()]));
        assert!(party.strings.is_empty(), "members disagree on the platform");
        let worst = party_latencies([
            &Latencies::from([("eu".to_string(), 20.0), ("us".to_string(), 90.0)]),
            &Latencies::from([("eu".to_string(), 45.0)]),
        ]);
        assert_eq!(worst, Latencies::from([("eu".to_string(), 45.0)]));
    }

    /// A pool of up to 24 tickets (parties of 1 to 3) with elo, a mode, maps and latencies to
    /// three locations, and a profile of 1 to 3 teams of up to 3 with some of the four rules.
    fn arb_case() -> impl Strategy<Value = (Profile, Vec<Ticket<u32>>, f64)> {
        let tickets = prop::collection::vec(
            (
                1u32..=3,
                0u32..40,
                800u32..1400,
                0usize..2,
                prop::collection::btree_set(0usize..4, 0..3),
                prop::collection::vec(10u32..200, 3),
            ),
            0..24,
        );
        let rules = (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>());
        (1u32..=3, 1u32..=3, 0u32..=3, rules, tickets, 0u32..40).prop_map(|(count, max, min_less, which, raw, now)| {
            let min = max.saturating_sub(min_less).max(1);
            let mut rules = Vec::new();
            if which.0 {
                rules.push(elo_rule(100.0, vec![Step { after_secs: 15.0, limit: 250.0 }]));
            }
            if which.1 {
                rules.push(Rule {
                    name: "mode".into(),
                    kind: RuleKind::StringEquality { attribute: "mode".into() },
                    expansions: Vec::new(),
                });
            }
            if which.2 {
                let kind = RuleKind::Intersection { attribute: "maps".into(), min_shared: 1 };
                rules.push(Rule { name: "maps".into(), kind, expansions: Vec::new() });
            }
            if which.3 {
                let mut rule = latency_rule(80.0, 50.0);
                rule.expansions = vec![Step { after_secs: 30.0, limit: 150.0 }];
                rules.push(rule);
            }
            let mut p = profile(count, min, max, rules);
            p.max_wait_secs = 50.0;
            let names = ["dust", "port", "ice", "lava"];
            let tickets = raw
                .into_iter()
                .enumerate()
                .map(|(i, (size, queued_at, elo, mode, maps, lat))| {
                    let mut t = with_elo(ticket(i as u32, size, f64::from(queued_at)), f64::from(elo));
                    t.attributes.strings.insert("mode".into(), ["ranked", "casual"][mode].into());
                    t.attributes.lists.insert("maps".into(), maps.into_iter().map(|m| names[m].to_string()).collect());
                    t.latencies =
                        ["eu", "us", "asia"].iter().zip(lat).map(|(l, v)| (l.to_string(), f64::from(v))).collect();
                    t
                })
                .collect();
            (p, tickets, f64::from(now) + 40.0)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn every_match_keeps_every_rule_and_the_team_bounds_and_no_ticket_is_used_twice((p, pool, now) in arb_case()) {
            let by_id: HashMap<u32, &Ticket<u32>> = pool.iter().map(|t| (t.id, t)).collect();
            let mut seen = std::collections::HashSet::new();
            for m in form_matches(&p, &pool, now) {
                prop_assert_eq!(m.teams.len(), p.teams.count as usize);
                let members: Vec<&Ticket<u32>> = m.teams.iter().flatten().map(|id| by_id[id]).collect();
                for t in &members {
                    prop_assert!(seen.insert(t.id), "ticket {} in two matches (or teams)", t.id);
                }
                prop_assert!(keeps_rules(&p, &members, m.location.as_deref(), now), "{:?}", m);
                let oldest = members.iter().map(|t| now - t.queued_at).fold(0.0, f64::max);
                let sizes: Vec<u32> = m.teams.iter().map(|team| team.iter().map(|id| by_id[id].size).sum()).collect();
                let full = sizes.iter().all(|&n| n == p.teams.max_size);
                for n in sizes {
                    prop_assert!(n <= p.teams.max_size && n >= p.teams.min_size);
                    prop_assert!(full || n >= p.formable_team_size(oldest), "formed early: {:?}", m);
                }
            }
        }

        #[test]
        fn no_older_ticket_is_passed_over_for_a_younger_one_it_could_replace((p, pool, now) in arb_case()) {
            let formed = form_matches(&p, &pool, now);
            let by_id: HashMap<u32, &Ticket<u32>> = pool.iter().map(|t| (t.id, t)).collect();
            let matched: std::collections::HashSet<u32> = formed.iter().flat_map(|m| m.teams.iter().flatten().copied()).collect();
            for m in &formed {
                let members: Vec<&Ticket<u32>> = m.teams.iter().flatten().map(|id| by_id[id]).collect();
                for young in &members {
                    for older in pool.iter().filter(|o| !matched.contains(&o.id) && o.queued_at < young.queued_at && o.size == young.size) {
                        let swapped: Vec<&Ticket<u32>> = members.iter().map(|t| if t.id == young.id { older } else { *t }).collect();
                        let location_ok = |l: Option<&str>| keeps_rules(&p, &swapped, l, now);
                        let any_location = ["eu", "us", "asia"].iter().any(|l| location_ok(Some(l)));
                        let fits = if p.rules.iter().any(|r| matches!(r.kind, RuleKind::Latencies { .. })) { any_location } else { location_ok(None) };
                        prop_assert!(!fits, "ticket {} waited longer than {} and fits {:?}", older.id, young.id, m);
                    }
                }
            }
        }

        #[test]
        fn a_pool_with_a_compatible_pair_forms_a_duel(elos in prop::collection::vec((800u32..1400, 0u32..40), 0..40), now in 40u32..80) {
            let p = profile(2, 1, 1, vec![elo_rule(100.0, vec![Step { after_secs: 20.0, limit: 250.0 }])]);
            let pool: Vec<Ticket<u32>> = elos.iter().enumerate().map(|(i, (elo, at))| with_elo(ticket(i as u32, 1, f64::from(*at)), f64::from(*elo))).collect();
            let now = f64::from(now);
            let some_pair = pool.iter().any(|a| pool.iter().any(|b| a.id != b.id && keeps_rules(&p, &[a, b], None, now)));
            prop_assert_eq!(!form_matches(&p, &pool, now).is_empty(), some_pair);
        }
    }
}
