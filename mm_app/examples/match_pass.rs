//! One pass of the match engine over a synthetic pool, no network: 10,000 waiting tickets with
//! an elo, a mode and latencies to five regions (each player near one), for a 1v1 and a 4v4
//! profile with expansions. Prints how many matched and how long the pass took.
//!
//! `cargo run --release -p bevygap_matchmaker --example match_pass [tickets]`; for instruction
//! counts, run it under `valgrind --tool=callgrind --toggle-collect='*form_matches*'`.

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
    let regions = ["eu", "us", "asia", "sa", "oc"];
    (0..n)
        .map(|id| {
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
            Ticket { id, size: 1, queued_at: rng.next() * 30.0, attributes, latencies }
        })
        .collect()
}

fn main() {
    let n = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
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
