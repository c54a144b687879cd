//! Placement: which seat each waiting player gets, as one pure function from the queue and the
//! servers to [`Decision`]s. No ECS, no I/O: the `place_queued_joins` system gathers the
//! inputs, calls [`plan`], and applies what it decides (reserve seats, ask the provider to
//! launch, answer refusals).
//!
//! The rules, each checked by the property tests below:
//! - **Oldest join first**, per game: a younger join never gets a seat an older one waits for.
//! - **Never overfill**: reservations on a server never exceed its free seats.
//! - **Fill before launching**: a ready server before a starting one, and a new server only
//!   when no server of that game (ready or starting) has a free seat. With
//!   [`Packing::Fill`] (providers that start servers on demand) the fullest server first, so
//!   empty ones can stop; with [`Packing::Spread`] (a fixed fleet) the emptiest first.
//! - **Parties play together**: a join of a party goes to a server of its game where its party
//!   already has a seat (placed earlier, or earlier in the same plan) whenever that server has
//!   a free seat; otherwise the rules above choose.
//! - **Never above the server limit**: launches stop at `max_servers` live servers, and a
//!   provider that cannot start servers never launches.
//! - A join that cannot be placed waits; once past its deadline it is refused with
//!   `no_capacity`.
//!
//! This is where placement grows: several matchmaker replicas run it on the partition they
//! own.
//!
//! ```
//! use bevygap_matchmaker::placement::*;
//!
//! let queued = [QueuedJoin { join: "alice", game: "demo", queued_at: 0.0, deadline: 60.0, party: None }];
//! let servers = [OpenServer {
//!     server: "s1",
//!     game: "demo",
//!     readiness: Readiness::Ready,
//!     taken: 3,
//!     capacity: 4,
//!     parties: vec![],
//! }];
//! let rules = PlacementRules::on_demand(8, 4);
//! let decisions = plan(&queued, &servers, 1, &rules, 1.0);
//! assert_eq!(decisions, [Decision::Reserve { join: "alice", on: Target::Existing("s1"), readiness: Readiness::Ready }]);
//! ```

use bevygap_shared::protocol::ErrorCode;

/// How far along a server is, for placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Reported ready: a player placed there gets a token at once.
    Ready,
    /// Launched but not ready: a player placed there waits for it.
    Starting,
}

/// A join waiting for a seat.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedJoin<J, G> {
    pub join: J,
    pub game: G,
    /// When it was queued; the oldest is served first.
    pub queued_at: f64,
    /// When it must be answered.
    pub deadline: f64,
    /// The party it plays with, if any.
    pub party: Option<String>,
}

/// A server that takes players (starting or ready), with its seat counts.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenServer<S, G> {
    pub server: S,
    pub game: G,
    pub readiness: Readiness,
    /// Seats reserved or occupied.
    pub taken: u32,
    pub capacity: u32,
    /// The parties with a seat here.
    pub parties: Vec<String>,
}

/// Which server of those with a free seat gets the next player.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Packing {
    /// The fullest: players fill servers, so emptier ones can drain and stop (on-demand
    /// providers, which pay per running server).
    #[default]
    Fill,
    /// The emptiest: load is spread over servers that run anyway (a fixed fleet).
    Spread,
}

/// The rules placement works within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacementRules {
    /// Most live servers at once (all games together).
    pub max_servers: usize,
    /// Seats on a newly launched server.
    pub server_capacity: u32,
    /// Whether servers may be launched at all (a fleet provider cannot).
    pub may_launch: bool,
    pub packing: Packing,
}

impl PlacementRules {
    /// Rules for an on-demand provider: launch up to `max_servers` of `server_capacity` seats,
    /// filling servers first.
    pub fn on_demand(max_servers: usize, server_capacity: u32) -> Self {
        Self { max_servers, server_capacity, may_launch: true, packing: Packing::Fill }
    }
}

/// The server a reservation is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target<S> {
    /// A server that already exists.
    Existing(S),
    /// The n-th server launched by this plan (see [`Decision::Launch`]).
    New(usize),
}

/// Why a join keeps waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// Every server of its game is full and no more may be launched.
    AtServerLimit,
    /// Every server of its game is full and the provider does not launch servers (a fleet):
    /// more capacity must come from outside.
    NeedCapacity,
}

impl WaitReason {
    /// Why nothing could be placed under `rules` with every server full.
    fn under(rules: &PlacementRules) -> Self {
        if rules.may_launch { WaitReason::AtServerLimit } else { WaitReason::NeedCapacity }
    }
}

/// What to do; decisions come in order (a launch before the reservations on it).
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<J, S, G> {
    /// Launch a server for `game`, for the `joins` reserved on it (a provider that chooses a
    /// location starts it near them); reservations refer to it as `Target::New(index)`.
    Launch { game: G, index: usize, joins: Vec<J> },
    /// Reserve a seat for `join` on `on`.
    Reserve { join: J, on: Target<S>, readiness: Readiness },
    /// Leave `join` queued.
    Wait { join: J, why: WaitReason },
    /// Answer `join` with an error.
    Refuse { join: J, code: ErrorCode },
}

struct Slot<S, G> {
    target: Target<S>,
    game: G,
    readiness: Readiness,
    taken: u32,
    capacity: u32,
    parties: Vec<String>,
}

/// Places `queued` joins on `servers` (those that take players), launching servers while
/// `live_servers` (every server not stopping, of any game) is under the limit. `now` decides
/// which unplaced joins are past their deadline.
pub fn plan<J: Clone, S: Clone, G: Clone + PartialEq>(
    queued: &[QueuedJoin<J, G>],
    servers: &[OpenServer<S, G>],
    live_servers: usize,
    rules: &PlacementRules,
    now: f64,
) -> Vec<Decision<J, S, G>> {
    let mut order: Vec<&QueuedJoin<J, G>> = queued.iter().collect();
    order.sort_by(|a, b| a.queued_at.total_cmp(&b.queued_at));
    let mut slots: Vec<Slot<S, G>> = servers
        .iter()
        .map(|s| Slot {
            target: Target::Existing(s.server.clone()),
            game: s.game.clone(),
            readiness: s.readiness,
            taken: s.taken,
            capacity: s.capacity,
            parties: s.parties.clone(),
        })
        .collect();
    let mut live = live_servers;
    // Where each launch of this plan sits in `decisions`, by its index.
    let mut launches: Vec<usize> = Vec::new();
    let mut decisions = Vec::with_capacity(order.len());
    for queued in order {
        let found = party_slot(&slots, &queued.game, queued.party.as_deref())
            .or_else(|| best_slot(&slots, &queued.game, rules.packing));
        let slot = match found {
            Some(slot) => slot,
            None if rules.may_launch && live < rules.max_servers && rules.server_capacity > 0 => {
                let index = launches.len();
                launches.push(decisions.len());
                decisions.push(Decision::Launch { game: queued.game.clone(), index, joins: Vec::new() });
                slots.push(Slot {
                    target: Target::New(index),
                    game: queued.game.clone(),
                    readiness: Readiness::Starting,
                    taken: 0,
                    capacity: rules.server_capacity,
                    parties: Vec::new(),
                });
                live += 1;
                slots.len() - 1
            }
            None if now > queued.deadline => {
                decisions.push(Decision::Refuse { join: queued.join.clone(), code: ErrorCode::NoCapacity });
                continue;
            }
            None => {
                let why = WaitReason::under(rules);
                decisions.push(Decision::Wait { join: queued.join.clone(), why });
                continue;
            }
        };
        let slot = &mut slots[slot];
        slot.taken += 1;
        if let Some(party) = &queued.party
            && !slot.parties.contains(party)
        {
            slot.parties.push(party.clone());
        }
        if let Target::New(index) = slot.target
            && let Some(Decision::Launch { joins, .. }) = decisions.get_mut(launches[index])
        {
            joins.push(queued.join.clone());
        }
        decisions.push(Decision::Reserve {
            join: queued.join.clone(),
            on: slot.target.clone(),
            readiness: slot.readiness,
        });
    }
    decisions
}

/// The slot of `game` where `party` already has a seat and a seat is free.
fn party_slot<S, G: PartialEq>(slots: &[Slot<S, G>], game: &G, party: Option<&str>) -> Option<usize> {
    let party = party?;
    slots.iter().position(|s| s.game == *game && s.taken < s.capacity && s.parties.iter().any(|p| p == party))
}

/// The slot for one more player of `game`: a ready server before a starting one (no waiting),
/// and among those the fullest ([`Packing::Fill`]) or the one with the most free seats
/// ([`Packing::Spread`]).
fn best_slot<S, G: PartialEq>(slots: &[Slot<S, G>], game: &G, packing: Packing) -> Option<usize> {
    let open = slots.iter().enumerate().filter(|(_, s)| s.game == *game && s.taken < s.capacity);
    let starting = |s: &Slot<S, G>| s.readiness == Readiness::Starting;
    match packing {
        Packing::Fill => open.min_by_key(|(_, s)| (starting(s), std::cmp::Reverse(s.taken))),
        Packing::Spread => open.min_by_key(|(_, s)| (starting(s), std::cmp::Reverse(s.capacity - s.taken))),
    }
    .map(|(i, _)| i)
}

/// A formed match waiting for a server of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedMatch<M, G> {
    pub id: M,
    pub game: G,
    /// Seats it needs: every player of every team.
    pub players: u32,
    /// When it formed; the oldest match is placed first.
    pub formed_at: f64,
    /// When it must be answered (its earliest player's deadline).
    pub deadline: f64,
}

/// What to do with a formed match; decisions come in order (a launch before the match
/// hosted on it).
#[derive(Debug, Clone, PartialEq)]
pub enum MatchDecision<M, S, G> {
    /// Launch a server for `game` to host `for_match`; it is `Target::New(index)`.
    Launch { game: G, index: usize, for_match: M },
    /// Seat every player of `game_match` on `on`, which hosts nothing else.
    Host { game_match: M, on: Target<S>, readiness: Readiness },
    /// Leave it waiting.
    Wait { game_match: M, why: WaitReason },
    /// Answer every player of it with an error.
    Refuse { game_match: M, code: ErrorCode },
}

/// Places each formed match, oldest first, as one unit: on one server that hosts nothing
/// else (an empty one of its game with a seat for every player, ready before starting), or on
/// a server launched for it. `empty_servers` are the servers of any game that take players and
/// have none; a match larger than any server can hold is refused at once.
pub fn plan_matches<M: Clone, S: Clone, G: Clone + PartialEq>(
    matches: &[QueuedMatch<M, G>],
    empty_servers: &[OpenServer<S, G>],
    live_servers: usize,
    rules: &PlacementRules,
    now: f64,
) -> Vec<MatchDecision<M, S, G>> {
    let mut order: Vec<&QueuedMatch<M, G>> = matches.iter().collect();
    order.sort_by(|a, b| a.formed_at.total_cmp(&b.formed_at));
    let mut free: Vec<&OpenServer<S, G>> = empty_servers.iter().filter(|s| s.taken == 0).collect();
    free.sort_by_key(|s| s.readiness == Readiness::Starting);
    let mut live = live_servers;
    let mut launched = 0;
    let mut decisions = Vec::with_capacity(order.len());
    for queued in order {
        let game_match = queued.id.clone();
        if let Some(at) = free.iter().position(|s| s.game == queued.game && s.capacity >= queued.players) {
            let server = free.remove(at);
            let on = Target::Existing(server.server.clone());
            decisions.push(MatchDecision::Host { game_match, on, readiness: server.readiness });
            continue;
        }
        let launchable = rules.may_launch && rules.server_capacity >= queued.players;
        if launchable && live < rules.max_servers {
            let game = queued.game.clone();
            decisions.push(MatchDecision::Launch { game, index: launched, for_match: game_match.clone() });
            decisions.push(MatchDecision::Host {
                game_match,
                on: Target::New(launched),
                readiness: Readiness::Starting,
            });
            launched += 1;
            live += 1;
        } else if now > queued.deadline || (rules.may_launch && !launchable) {
            // Past its deadline, or larger than any server this provider launches.
            decisions.push(MatchDecision::Refuse { game_match, code: ErrorCode::NoCapacity });
        } else {
            let why = WaitReason::under(rules);
            decisions.push(MatchDecision::Wait { game_match, why });
        }
    }
    decisions
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    type Plan = Vec<Decision<u32, u32, u8>>;

    fn join(join: u32, game: u8, queued_at: f64) -> QueuedJoin<u32, u8> {
        QueuedJoin { join, game, queued_at, deadline: queued_at + 60.0, party: None }
    }

    fn server(server: u32, game: u8, readiness: Readiness, taken: u32, capacity: u32) -> OpenServer<u32, u8> {
        OpenServer { server, game, readiness, taken, capacity, parties: Vec::new() }
    }

    const LIMITS: PlacementRules =
        PlacementRules { max_servers: 2, server_capacity: 2, may_launch: true, packing: Packing::Fill };

    #[test]
    fn fills_ready_servers_first_then_the_fullest() {
        let servers = [
            server(1, 0, Readiness::Starting, 0, 4),
            server(2, 0, Readiness::Ready, 0, 4),
            server(3, 0, Readiness::Ready, 3, 4),
            server(4, 0, Readiness::Ready, 4, 4),
        ];
        let decisions = plan(&[join(7, 0, 0.0)], &servers, 4, &LIMITS, 0.0);
        assert_eq!(decisions, [Decision::Reserve { join: 7, on: Target::Existing(3), readiness: Readiness::Ready }]);
    }

    #[test]
    fn a_new_server_is_filled_before_another_is_launched_and_the_limit_holds() {
        let queued: Vec<_> = (0..5).map(|i| join(i, 0, f64::from(i))).collect();
        let decisions: Plan = plan(&queued, &[], 0, &LIMITS, 0.0);
        let new = |n| Target::New(n);
        assert_eq!(
            decisions,
            [
                Decision::Launch { game: 0, index: 0, joins: vec![0, 1] },
                Decision::Reserve { join: 0, on: new(0), readiness: Readiness::Starting },
                Decision::Reserve { join: 1, on: new(0), readiness: Readiness::Starting },
                Decision::Launch { game: 0, index: 1, joins: vec![2, 3] },
                Decision::Reserve { join: 2, on: new(1), readiness: Readiness::Starting },
                Decision::Reserve { join: 3, on: new(1), readiness: Readiness::Starting },
                Decision::Wait { join: 4, why: WaitReason::AtServerLimit },
            ]
        );
    }

    #[test]
    fn the_oldest_join_is_served_first_and_an_overdue_unplaceable_join_is_refused() {
        let queued = [
            join(1, 0, 5.0),
            join(2, 0, 1.0),
            QueuedJoin { join: 3, game: 0, queued_at: 0.0, deadline: 2.0, party: None },
        ];
        let servers = [server(9, 0, Readiness::Ready, 0, 1)];
        let decisions = plan(&queued, &servers, 1, &PlacementRules::on_demand(1, 1), 3.0);
        assert_eq!(
            decisions,
            [
                Decision::Reserve { join: 3, on: Target::Existing(9), readiness: Readiness::Ready },
                Decision::Wait { join: 2, why: WaitReason::AtServerLimit },
                Decision::Wait { join: 1, why: WaitReason::AtServerLimit },
            ],
            "join 3 is overdue but a seat was free, so it is placed rather than refused"
        );
        let decisions: Plan = plan(&queued[2..], &[], 1, &PlacementRules::on_demand(1, 1), 3.0);
        assert_eq!(decisions, [Decision::Refuse { join: 3, code: ErrorCode::NoCapacity }]);
    }

    #[test]
    fn a_fleet_spreads_players_and_never_launches() {
        let rules = PlacementRules { may_launch: false, packing: Packing::Spread, ..PlacementRules::on_demand(8, 4) };
        let servers = [server(1, 0, Readiness::Ready, 3, 4), server(2, 0, Readiness::Ready, 1, 4)];
        let queued = [join(1, 0, 0.0), join(2, 0, 1.0), join(3, 0, 2.0), join(4, 0, 3.0), join(5, 0, 4.0)];
        let decisions: Plan = plan(&queued, &servers, 2, &rules, 0.0);
        let on = |s| Target::Existing(s);
        assert_eq!(
            decisions,
            [
                Decision::Reserve { join: 1, on: on(2), readiness: Readiness::Ready },
                Decision::Reserve { join: 2, on: on(2), readiness: Readiness::Ready },
                Decision::Reserve { join: 3, on: on(1), readiness: Readiness::Ready },
                Decision::Reserve { join: 4, on: on(2), readiness: Readiness::Ready },
                Decision::Wait { join: 5, why: WaitReason::NeedCapacity },
            ]
        );
    }

    #[test]
    fn a_party_plays_together_even_on_a_fleet_that_spreads_players() {
        let fleet = PlacementRules { max_servers: 4, server_capacity: 4, may_launch: false, packing: Packing::Spread };
        let in_party = |mut j: QueuedJoin<u32, u8>| {
            j.party = Some("friends".into());
            j
        };
        let target = |plan: &Plan, who: u32| {
            plan.iter().find_map(|d| match d {
                Decision::Reserve { join, on: Target::Existing(s), .. } if *join == who => Some(*s),
                _ => None,
            })
        };
        // Arriving together: both on one server; a player without a party is spread elsewhere.
        let servers = [server(1, 0, Readiness::Ready, 0, 4), server(2, 0, Readiness::Ready, 0, 4)];
        let queued = [in_party(join(10, 0, 1.0)), in_party(join(11, 0, 2.0)), join(12, 0, 3.0)];
        let decided = plan(&queued, &servers, 2, &fleet, 3.0);
        assert_eq!(target(&decided, 10), target(&decided, 11), "{decided:?}");
        assert_ne!(target(&decided, 12), target(&decided, 10), "{decided:?}");
        // Arriving later: to the server where the party sits, though another is emptier.
        let mut with_party = server(1, 0, Readiness::Ready, 2, 4);
        with_party.parties = vec!["friends".into()];
        let servers = [with_party.clone(), server(2, 0, Readiness::Ready, 0, 4)];
        assert_eq!(target(&plan(&[in_party(join(13, 0, 4.0))], &servers, 2, &fleet, 4.0), 13), Some(1));
        // Unless it is full: then the usual rule.
        with_party.taken = 4;
        let servers = [with_party, server(2, 0, Readiness::Ready, 0, 4)];
        assert_eq!(target(&plan(&[in_party(join(14, 0, 5.0))], &servers, 2, &fleet, 5.0), 14), Some(2));
    }

    #[test]
    fn games_never_share_servers() {
        let servers = [server(1, 0, Readiness::Ready, 0, 4)];
        let decisions = plan(&[join(1, 1, 0.0)], &servers, 1, &LIMITS, 0.0);
        assert_eq!(decisions[0], Decision::Launch { game: 1, index: 0, joins: vec![1] });
    }

    fn formed(id: u32, game: u8, players: u32, formed_at: f64) -> QueuedMatch<u32, u8> {
        QueuedMatch { id, game, players, formed_at, deadline: formed_at + 60.0 }
    }

    #[test]
    fn a_match_takes_an_empty_server_of_its_game_or_a_new_one_and_never_shares() {
        let servers = [
            server(1, 0, Readiness::Ready, 1, 8),    // has a player: not for a match
            server(2, 1, Readiness::Ready, 0, 8),    // another game
            server(3, 0, Readiness::Starting, 0, 8), // empty, starting
            server(4, 0, Readiness::Ready, 0, 2),    // empty, ready, too small for 4
            server(5, 0, Readiness::Ready, 0, 4),    // empty, ready, fits
        ];
        let matches = [formed(10, 0, 4, 1.0), formed(11, 0, 4, 0.0), formed(12, 0, 4, 2.0)];
        let rules = PlacementRules::on_demand(6, 4);
        let decisions = plan_matches(&matches, &servers, 5, &rules, 2.0);
        assert_eq!(
            decisions,
            [
                MatchDecision::Host { game_match: 11, on: Target::Existing(5), readiness: Readiness::Ready },
                MatchDecision::Host { game_match: 10, on: Target::Existing(3), readiness: Readiness::Starting },
                MatchDecision::Launch { game: 0, index: 0, for_match: 12 },
                MatchDecision::Host { game_match: 12, on: Target::New(0), readiness: Readiness::Starting },
            ],
            "oldest first, ready before starting, one match per server"
        );
    }

    #[test]
    fn a_match_waits_at_the_limit_and_is_refused_past_its_deadline_or_when_no_server_fits() {
        let rules = PlacementRules::on_demand(1, 4);
        let decisions: Vec<MatchDecision<u32, u32, u8>> = plan_matches(&[formed(1, 0, 2, 0.0)], &[], 1, &rules, 1.0);
        assert_eq!(decisions, [MatchDecision::Wait { game_match: 1, why: WaitReason::AtServerLimit }]);
        let decisions: Vec<MatchDecision<u32, u32, u8>> = plan_matches(&[formed(1, 0, 2, 0.0)], &[], 1, &rules, 61.0);
        assert_eq!(decisions, [MatchDecision::Refuse { game_match: 1, code: ErrorCode::NoCapacity }]);
        let decisions: Vec<MatchDecision<u32, u32, u8>> = plan_matches(&[formed(1, 0, 5, 0.0)], &[], 0, &rules, 1.0);
        assert_eq!(decisions, [MatchDecision::Refuse { game_match: 1, code: ErrorCode::NoCapacity }], "5 > 4 seats");
        let fleet = PlacementRules { may_launch: false, packing: Packing::Spread, ..rules };
        let decisions: Vec<MatchDecision<u32, u32, u8>> = plan_matches(&[formed(1, 0, 2, 0.0)], &[], 0, &fleet, 1.0);
        assert_eq!(decisions, [MatchDecision::Wait { game_match: 1, why: WaitReason::NeedCapacity }]);
    }

    /// Queued joins, open servers, live servers and rules.
    type Input = (Vec<QueuedJoin<u32, u8>>, Vec<OpenServer<u32, u8>>, usize, PlacementRules);

    fn arb_input() -> impl Strategy<Value = Input> {
        let joins =
            prop::collection::vec((0u8..3, 0u32..50, 0u32..100, prop::option::of(0u8..3)), 0..40).prop_map(|v| {
                v.into_iter()
                    .enumerate()
                    .map(|(i, (game, at, deadline, party))| QueuedJoin {
                        join: i as u32,
                        game,
                        queued_at: f64::from(at),
                        deadline: f64::from(deadline),
                        party: party.map(|p| format!("p{p}")),
                    })
                    .collect::<Vec<_>>()
            });
        let servers = prop::collection::vec((0u8..3, any::<bool>(), 0u32..6, 0u32..6, prop::option::of(0u8..3)), 0..8)
            .prop_map(|v| {
                v.into_iter()
                    .enumerate()
                    .map(|(i, (game, ready, taken, capacity, party))| OpenServer {
                        server: i as u32,
                        game,
                        readiness: if ready { Readiness::Ready } else { Readiness::Starting },
                        taken,
                        capacity,
                        parties: party.map(|p| format!("p{p}")).into_iter().collect(),
                    })
                    .collect::<Vec<_>>()
            });
        (joins, servers, 0usize..4, 1usize..10, 1u32..5, any::<bool>(), any::<bool>()).prop_map(
            |(joins, servers, extra, max, cap, may_launch, spread)| {
                let live = servers.len() + extra;
                let packing = if spread { Packing::Spread } else { Packing::Fill };
                (joins, servers, live, PlacementRules { max_servers: max, server_capacity: cap, may_launch, packing })
            },
        )
    }

    /// Seats reserved per target, and the game of every launched server.
    fn tally(decisions: &Plan) -> (HashMap<Target<u32>, u32>, Vec<u8>) {
        let mut reserved = HashMap::new();
        let mut launches = Vec::new();
        for d in decisions {
            match d {
                Decision::Reserve { on, .. } => *reserved.entry(*on).or_insert(0) += 1,
                Decision::Launch { game, index, joins } => {
                    assert_eq!(*index, launches.len(), "launch indexes count up");
                    let on_it = decisions
                        .iter()
                        .filter(|d| matches!(d, Decision::Reserve { on: Target::New(i), .. } if i == index));
                    let reserved: Vec<u32> = on_it
                        .filter_map(|d| match d {
                            Decision::Reserve { join, .. } => Some(*join),
                            _ => None,
                        })
                        .collect();
                    assert_eq!(joins, &reserved, "a launch names exactly the joins reserved on it");
                    launches.push(*game);
                }
                _ => {}
            }
        }
        (reserved, launches)
    }

    proptest! {
        #[test]
        fn every_join_gets_exactly_one_answer((joins, servers, live, rules) in arb_input(), now in 0u32..120) {
            let decisions = plan(&joins, &servers, live, &rules, f64::from(now));
            let mut answered: Vec<u32> = decisions.iter().filter_map(|d| match d {
                Decision::Reserve { join, .. } | Decision::Wait { join, .. } | Decision::Refuse { join, .. } => Some(*join),
                Decision::Launch { .. } => None,
            }).collect();
            answered.sort_unstable();
            let expected: Vec<u32> = joins.iter().map(|j| j.join).collect();
            prop_assert_eq!(answered, expected);
        }

        #[test]
        fn never_more_reservations_than_free_seats((joins, servers, live, rules) in arb_input()) {
            let decisions = plan(&joins, &servers, live, &rules, 0.0);
            let (reserved, _) = tally(&decisions);
            for (target, count) in reserved {
                let free = match target {
                    Target::Existing(s) => servers[s as usize].capacity.saturating_sub(servers[s as usize].taken),
                    Target::New(_) => rules.server_capacity,
                };
                prop_assert!(count <= free, "{count} reservations on {target:?} with {free} free seats");
            }
        }

        #[test]
        fn never_above_the_server_limit((joins, servers, live, rules) in arb_input()) {
            let decisions = plan(&joins, &servers, live, &rules, 0.0);
            let (_, launches) = tally(&decisions);
            prop_assert!(launches.len() <= rules.max_servers.saturating_sub(live));
            prop_assert!(rules.may_launch || launches.is_empty(), "a provider that cannot launch never does");
        }

        #[test]
        fn never_a_launch_while_a_server_of_that_game_has_room((joins, servers, live, rules) in arb_input()) {
            let decisions = plan(&joins, &servers, live, &rules, 0.0);
            let (reserved, launches) = tally(&decisions);
            for (index, game) in launches.iter().enumerate() {
                for (s, server) in servers.iter().enumerate().filter(|(_, s)| s.game == *game) {
                    let after = server.taken + reserved.get(&Target::Existing(s as u32)).copied().unwrap_or(0);
                    prop_assert!(after >= server.capacity, "launched for game {game} while server {s} had room");
                }
                for (earlier, _) in launches.iter().enumerate().take(index).filter(|(_, g)| *g == game) {
                    let filled = reserved.get(&Target::New(earlier)).copied().unwrap_or(0);
                    prop_assert_eq!(filled, rules.server_capacity, "new server {} was not full", earlier);
                }
            }
        }

        #[test]
        fn oldest_join_first_per_game((joins, servers, live, rules) in arb_input()) {
            let decisions = plan(&joins, &servers, live, &rules, 0.0);
            let placed: Vec<u32> = decisions.iter().filter_map(|d| match d {
                Decision::Reserve { join, .. } => Some(*join),
                _ => None,
            }).collect();
            for waiting in decisions.iter().filter_map(|d| match d {
                Decision::Wait { join, .. } | Decision::Refuse { join, .. } => Some(&joins[*join as usize]),
                _ => None,
            }) {
                for younger in joins.iter().filter(|j| j.game == waiting.game && j.queued_at > waiting.queued_at) {
                    prop_assert!(!placed.contains(&younger.join), "join {} placed while older {} waits", younger.join, waiting.join);
                }
            }
        }
    }
}
