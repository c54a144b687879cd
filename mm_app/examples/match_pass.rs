//! The match engine alone, no network, on synthetic players with an elo, a mode and latencies
//! to five regions (each player near one), for a 1v1 and a 4v4 profile with expansions every
//! 10 s.
//!
//! - `cargo run --release -p bevygap_matchmaker --example match_pass [tickets]`: one pass over
//!   a pool of `tickets` (10,000) waiting 0 to 30 s; prints how many matched and how long the
//!   pass took. For instruction counts, run it under
//!   `valgrind --tool=callgrind --toggle-collect='*form_matches*'`.
//! - `… --example match_pass -- --simulate [secs] [arrivals/s]`: the pool over time (120 s,
//!   1,000 players a second, starting from 10,000 waiting), a pass every 100 ms as the
//!   matchmaker runs it; prints per-pass time (median, p99, max), CPU and peak memory, matched
//!   players per second, time to match (median, p90, p99), the elo spread within matches and
//!   the rule violations found by checking every match again (must be 0).

use std::time::Instant;

use bevygap_matchmaker::matching::{
    Attributes, Profile, ProfileKind, Rule, RuleKind, Step, Teams, Ticket, form_matches,
};

/// A small deterministic generator, so every run sees the same pool.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn profile(team_size: u32) -> Profile {
    let rule = |name: &str, kind, expansions| Rule { name: name.into(), kind, expansions };
    Profile {
        name: format!("{team_size}v{team_size}"),
        kind: ProfileKind::Match,
        teams: Teams { count: 2, min_size: team_size, max_size: team_size, expansions: vec![] },
        max_wait_secs: 60.0,
        rules: vec![
            rule(
                "elo",
                RuleKind::NumberDifference { attribute: "elo".into(), max_difference: 50.0 },
                vec![Step { after_secs: 10.0, limit: 100.0 }, Step { after_secs: 20.0, limit: 200.0 }],
            ),
            rule("mode", RuleKind::StringEquality { attribute: "mode".into() }, vec![]),
            rule(
                "ping",
                RuleKind::Latencies { max_latency: 80.0, max_difference: 40.0 },
                vec![Step { after_secs: 10.0, limit: 120.0 }],
            ),
        ],
    }
}

fn pool(n: u32) -> Vec<Ticket<u32>> {
    let mut rng = Lcg(7);
    (0..n)
        .map(|id| {
            let queued_at = rng_wait(&mut rng);
            player(&mut rng, id, queued_at)
        })
        .collect()
}

fn rng_wait(rng: &mut Lcg) -> f64 {
    rng.next() * 30.0
}

/// One synthetic player, queued at `queued_at`.
fn player(rng: &mut Lcg, id: u32, queued_at: f64) -> Ticket<u32> {
    let regions = ["eu", "us", "asia", "sa", "oc"];
    let mut attributes = Attributes::default();
    attributes.numbers.insert("elo".into(), (rng.next() * 3000.0).round());
    attributes.strings.insert("mode".into(), if rng.next() < 0.5 { "ranked" } else { "casual" }.into());
    let home = (rng.next() * regions.len() as f64) as usize;
    let latencies = regions
        .iter()
        .enumerate()
        .map(|(r, name)| {
            let ms = if r == home { 10.0 + rng.next() * 30.0 } else { 60.0 + rng.next() * 190.0 };
            (name.to_string(), ms)
        })
        .collect();
    Ticket { id, size: 1, queued_at, attributes, latencies }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--simulate") {
        let secs = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(120.0);
        let rate = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1000.0);
        for team_size in [1, 4] {
            simulate(&profile(team_size), secs, rate);
        }
        return;
    }
    let n = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let tickets = pool(n);
    for team_size in [1, 4] {
        let profile = profile(team_size);
        let start = Instant::now();
        let formed = form_matches(&profile, &tickets, 30.0);
        let took = start.elapsed();
        let players: usize = formed.iter().map(|m| m.teams.iter().map(Vec::len).sum::<usize>()).sum();
        println!(
            "{}: {} matches, {players} of {n} players matched, one pass in {:.2} ms",
            profile.name,
            formed.len(),
            took.as_secs_f64() * 1000.0
        );
    }
}

/// Seconds between two passes, as the matchmaker's default.
const PASS_SECS: f64 = 0.1;

/// The pool over `secs` simulated seconds with `rate` arrivals a second.
fn simulate(profile: &Profile, secs: f64, rate: f64) {
    let mut rng = Lcg(11);
    let mut next_id = 0u32;
    // Start from a full pool, as if the matchmaker had been running: waits of 0 to 30 s.
    let mut waiting: Vec<Ticket<u32>> = (0..10_000)
        .map(|_| {
            next_id += 1;
            let wait = rng_wait(&mut rng);
            player(&mut rng, next_id, 30.0 - wait)
        })
        .collect();
    let (mut passes, mut to_match, mut spreads) = (Vec::new(), Vec::new(), Vec::new());
    let (mut violations, mut matched_players) = (0usize, 0usize);
    let cpu_before = cpu_secs();
    let mut now = 30.0;
    let end = now + secs;
    while now < end {
        now += PASS_SECS;
        for _ in 0..(rate * PASS_SECS) as u32 {
            next_id += 1;
            let arrival = now - rng.next() * PASS_SECS;
            waiting.push(player(&mut rng, next_id, arrival));
        }
        let start = Instant::now();
        let formed = form_matches(profile, &waiting, now);
        passes.push(start.elapsed().as_secs_f64() * 1000.0);
        let mut gone = std::collections::HashSet::new();
        for m in &formed {
            let members: Vec<&Ticket<u32>> =
                m.teams.iter().flatten().filter_map(|id| waiting.iter().find(|t| t.id == *id)).collect();
            violations += broken_rules(profile, &members, m.location.as_deref(), m.teams.len(), now);
            let elos: Vec<f64> = members.iter().map(|t| t.attributes.numbers["elo"]).collect();
            spreads.push(elos.iter().copied().fold(f64::MIN, f64::max) - elos.iter().copied().fold(f64::MAX, f64::min));
            for t in &members {
                to_match.push(now - t.queued_at);
                gone.insert(t.id);
            }
            matched_players += members.len();
        }
        waiting.retain(|t| !gone.contains(&t.id));
    }
    let cpu = cpu_secs() - cpu_before;
    println!(
        "{} over {secs} s at {rate}/s: pass median {:.2} ms, p99 {:.2} ms, max {:.2} ms; process CPU {:.1} s; \
         peak RSS {} MiB; {:.0} matched players/s; time to match median {:.1} s, p90 {:.1} s, p99 {:.1} s; \
         elo spread median {:.0}, p99 {:.0}; {} left waiting; rule violations {violations}",
        profile.name,
        quantile(&mut passes, 0.5),
        quantile(&mut passes, 0.99),
        quantile(&mut passes, 1.0),
        cpu,
        peak_rss_mib(),
        matched_players as f64 / secs,
        quantile(&mut to_match, 0.5),
        quantile(&mut to_match, 0.9),
        quantile(&mut to_match, 0.99),
        quantile(&mut spreads, 0.5),
        quantile(&mut spreads, 0.99),
        waiting.len(),
    );
}

/// The rules a formed match breaks at each member's own stage, counted again from the
/// tickets (independent of the engine's own bookkeeping).
fn broken_rules(profile: &Profile, members: &[&Ticket<u32>], location: Option<&str>, teams: usize, now: f64) -> usize {
    let mut broken = 0;
    if teams != profile.teams.count as usize {
        broken += 1;
    }
    for rule in &profile.rules {
        let limit = |t: &Ticket<u32>| rule.limit_at(now - t.queued_at);
        match &rule.kind {
            RuleKind::NumberDifference { attribute, .. } => {
                for a in members {
                    for b in members {
                        let (x, y) = (a.attributes.numbers[attribute], b.attributes.numbers[attribute]);
                        if (x - y).abs() > limit(a).min(limit(b)) + 1e-9 {
                            broken += 1;
                        }
                    }
                }
            }
            RuleKind::StringEquality { attribute } => {
                let first = members.first().and_then(|t| t.attributes.strings.get(attribute));
                broken += members.iter().filter(|t| t.attributes.strings.get(attribute) != first).count();
            }
            RuleKind::Latencies { max_difference, .. } => {
                let Some(at) = location else {
                    broken += 1;
                    continue;
                };
                let pings: Vec<f64> =
                    members.iter().map(|t| t.latencies.get(at).copied().unwrap_or(f64::INFINITY)).collect();
                broken += members.iter().zip(&pings).filter(|(t, ms)| **ms > limit(t)).count();
                let spread =
                    pings.iter().copied().fold(f64::MIN, f64::max) - pings.iter().copied().fold(f64::MAX, f64::min);
                if spread > *max_difference + 1e-9 {
                    broken += 1;
                }
            }
            RuleKind::Intersection { .. } => {}
        }
    }
    broken
}

fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

/// This process's CPU time (user and system), in seconds.
fn cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// This process's peak resident memory, in MiB.
fn peak_rss_mib() -> u64 {
    // SAFETY: as above.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as u64 / 1024
}
