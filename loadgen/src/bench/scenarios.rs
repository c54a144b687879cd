//! The scenarios themselves (see the table in [`super`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bevygap_shared::nats::NatsServer;
use bevygap_testkit::lightyear_client::{
    ClientConnection, Dial, client_connection, connecting_client_with, disconnect,
};
use bevygap_testkit::{NatsCluster, TimedOut, try_wait_for};

use super::markdown::ms;
use super::procs::{EDGEGAP_TOKEN, FakeEdgegap, GAME, Matchmaker, VERSION, fleet_server};
use super::{BenchError, Options, Table};
use crate::{Load, Plan, Report, percentile, proc, stream};

/// Runs scenario `id` (`a` to `g`).
pub fn run_scenario(id: char, options: &Options) -> Result<Table, BenchError> {
    match id {
        'a' => fleet(options),
        'b' => edgegap(options),
        'c' => end_to_end(options),
        'd' => many_waiting(options),
        'e' => idle(options),
        'f' => replicas(options),
        'g' => callgrind(options),
        other => Err(BenchError::UnknownScenario(other)),
    }
}

/// Seats per fleet server: plenty, so placement never runs out during a load.
const PLENTY: u32 = 1_000_000;
/// How long one simulated player waits for its answer.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

/// A namespace of its own for each matchmaker set, so nothing is shared between scenarios.
fn namespace(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("bench-{tag}-{nanos:08x}")
}

fn plan(targets: Vec<SocketAddr>, pid: Option<u32>, load: Load) -> Plan {
    Plan {
        targets,
        game: GAME.into(),
        version: VERSION.into(),
        mode: None,
        load,
        matchmaker_pid: pid,
        join_timeout: JOIN_TIMEOUT,
    }
}

/// Runs a load against `mm` and returns its report.
fn load(mm: &Matchmaker, load: Load) -> Result<Report, BenchError> {
    Ok(crate::run(&plan(vec![mm.public], Some(mm.pid()), load))?)
}

/// The row of a closed-loop load run [`median_of`] times.
fn median_row(concurrency: u64, runs: usize, (report, low, high): &(Report, f64, f64)) -> Vec<String> {
    let label =
        format!("closed loop, {concurrency} players at a time (median of {runs} runs: {low:.0} to {high:.0} joins/s)");
    load_row(&label, report)
}

/// Runs a load `runs` times and returns the run with the median throughput, with the lowest and
/// highest throughput seen: one run on a shared 2-core machine swings by a third.
fn median_of(mm: &Matchmaker, runs: usize, shape: Load) -> Result<(Report, f64, f64), BenchError> {
    let mut reports = (0..runs.max(1)).map(|_| load(mm, shape)).collect::<Result<Vec<_>, _>>()?;
    reports.sort_by(|a, b| a.ready_per_sec.total_cmp(&b.ready_per_sec));
    let (low, high) = (reports[0].ready_per_sec, reports[reports.len() - 1].ready_per_sec);
    Ok((reports.swap_remove(reports.len() / 2), low, high))
}

/// Fails unless every join of `report` was answered ready.
fn all_ready(report: &Report, what: &str) -> Result<(), BenchError> {
    if report.errors.is_empty() && report.joins_ready == report.joins_sent {
        Ok(())
    } else {
        Err(BenchError::Failed(format!(
            "{what}: {} of {} ready, errors {:?}",
            report.joins_ready, report.joins_sent, report.errors
        )))
    }
}

/// A few joins first: the first placement, connections and allocations are not what a load
/// measures.
fn warm_up(mm: &Matchmaker) -> Result<(), BenchError> {
    let report = load(mm, Load::Closed { joins: 50, concurrency: 4 })?;
    all_ready(&report, "warm-up")
}

/// Waits until the matchmaker sees `n` ready servers.
fn wait_for_servers(mm: &Matchmaker, n: usize, within: Duration) -> Result<(), BenchError> {
    try_wait_for(within, &format!("{n} ready game servers"), || {
        mm.metric("bevygap_servers", &["phase=\"ready\""]).ok().filter(|ready| *ready >= n as f64)
    })?;
    Ok(())
}

/// The matchmaker's CPU time over `secs` of doing nothing asked of it, as a share of one core.
fn cpu_share(pid: u32, secs: f64) -> Result<f64, BenchError> {
    let cpu = || proc::cpu_secs(pid).ok_or_else(|| BenchError::Io(format!("no /proc/{pid}/stat")));
    let before = cpu()?;
    std::thread::sleep(Duration::from_secs_f64(secs));
    Ok((cpu()? - before) / secs)
}

fn secs(value: f64) -> Duration {
    Duration::from_secs_f64(value)
}

fn errors(report: &Report) -> String {
    if report.errors.is_empty() {
        "none".into()
    } else {
        report.errors.iter().map(|(code, n)| format!("{code}: {n}")).collect::<Vec<_>>().join(", ")
    }
}

/// Matchmaker CPU per ready join, in microseconds.
fn cpu_per_join(cpu: Option<f64>, ready: u64) -> String {
    match cpu {
        Some(cpu) if ready > 0 => format!("{:.0} µs", cpu / ready as f64 * 1e6),
        _ => "–".into(),
    }
}

fn load_header() -> Vec<String> {
    [
        "load",
        "ready",
        "joins/s",
        "p50",
        "p90",
        "p99",
        "max",
        "errors",
        "matchmaker CPU per join",
        "load generator CPU",
        "machine busy",
        "matchmaker RSS after",
    ]
    .map(String::from)
    .to_vec()
}

/// How busy the whole machine was during a load.
fn busy(report: &Report) -> String {
    report.machine_busy.map_or("–".into(), |busy| format!("{:.0} %", busy * 100.0))
}

fn load_row(label: &str, report: &Report) -> Vec<String> {
    let l = &report.latency_ms;
    vec![
        label.into(),
        format!("{} / {}", report.joins_ready, report.joins_sent),
        format!("{:.0}", report.ready_per_sec),
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.max),
        errors(report),
        cpu_per_join(report.matchmaker_cpu_secs, report.joins_ready),
        report.loadgen_cpu_secs.map_or("–".into(), |cpu| format!("{cpu:.1} s of {:.1} s", report.wall_secs)),
        busy(report),
        report.matchmaker_rss_mib.map_or("–".into(), |rss| format!("{rss:.0} MiB")),
    ]
}

fn fleet_vars() -> Vec<(&'static str, String)> {
    vec![("BEVYGAP_PROVIDER", "fleet".into())]
}

/// (a) The matchmaker's own cost: two fleet servers with plenty of seats, so a join is
/// admission, placement, a token and its grant in NATS, and the answer.
fn fleet(o: &Options) -> Result<Table, BenchError> {
    let nats = NatsServer::start()?;
    let ns = namespace("a");
    let mm = Matchmaker::start(&o.bins, Some(&nats.url()), &ns, &fleet_vars(), &[])?;
    let _servers: Vec<_> = (1..=2)
        .map(|i| fleet_server(&o.bins, &nats.url(), &ns, &format!("fleet-{i}"), PLENTY))
        .collect::<Result<_, _>>()?;
    wait_for_servers(&mm, 2, secs(30.0))?;
    warm_up(&mm)?;
    let (joins, concurrency, runs) = (o.scale.pick(20_000, 40), o.scale.pick(64, 4), o.scale.pick(5, 1));
    let closed = median_of(&mm, runs, Load::Closed { joins, concurrency })?;
    let (rate, duration) = (o.scale.pick(2000.0, 20.0), o.scale.pick(10.0, 1.0));
    let open = load(&mm, Load::Open { rate, duration: secs(duration) })?;
    Ok(Table {
        title: "(a) Fleet provider: the matchmaker's own cost".into(),
        notes: vec![format!(
            "Two `bevygap-demo-server` fleet servers of {PLENTY} seats each, registered before the load; \
             every join is admitted, placed, given a token whose grant is stored in NATS KV, and answered \
             over its own streamed `matchmaker.join+watch` connection. Targets: 10,000 joins/s; p99 under \
             10 ms at 2,000 joins/s open-loop."
        )],
        header: load_header(),
        rows: vec![
            median_row(concurrency, runs, &closed),
            load_row(&format!("open loop, {rate} joins/s for {duration} s"), &open),
        ],
    })
}

fn edgegap_vars(fake: &FakeEdgegap, capacity: u32, token_ttl: u32) -> Vec<(&'static str, String)> {
    vec![
        ("BEVYGAP_PROVIDER", "edgegap".into()),
        ("BEVYGAP_EDGEGAP_API_TOKEN", EDGEGAP_TOKEN.into()),
        ("BEVYGAP_EDGEGAP_URL", fake.base_url.clone()),
        ("BEVYGAP_EDGEGAP_APP", GAME.into()),
        ("BEVYGAP_SERVER_CAPACITY", capacity.to_string()),
        ("BEVYGAP_TOKEN_TTL_SECS", token_ttl.to_string()),
        ("BEVYGAP_EMPTY_GRACE_SECS", "1".into()),
    ]
}

/// (b) The `edgegap` provider against the fake Edgegap (no added latency, no rate limits):
/// throughput once a deployment runs, and the API calls of one server's whole life.
fn edgegap(o: &Options) -> Result<Table, BenchError> {
    let nats = NatsServer::start()?;
    let fake = FakeEdgegap::start(&o.bins, &nats.url(), &o.work_dir)?;
    let mm = Matchmaker::start(&o.bins, Some(&nats.url()), &namespace("b"), &edgegap_vars(&fake, PLENTY, 600), &[])?;
    warm_up(&mm)?;
    let (joins, concurrency, runs) = (o.scale.pick(10_000, 20), o.scale.pick(64, 4), o.scale.pick(5, 1));
    let closed = median_of(&mm, runs, Load::Closed { joins, concurrency })?;
    drop(mm);

    // One server's life: a join starts a deployment, its token expires unused, the empty
    // deployment is stopped. Requests are counted by the fake, per Edgegap endpoint.
    let before = fake.requests()?;
    let life = Matchmaker::start(&o.bins, Some(&nats.url()), &namespace("b-life"), &edgegap_vars(&fake, 4, 2), &[])?;
    all_ready(&load(&life, Load::Closed { joins: 1, concurrency: 1 })?, "one Edgegap server's join")?;
    try_wait_for(secs(60.0), "the empty deployment to be stopped", || {
        life.metric("bevygap_servers_stopped_total", &[]).ok().filter(|stopped| *stopped >= 1.0)
    })?;
    let after = fake.requests()?;
    let calls = |endpoint: &str| after.get(endpoint).copied().unwrap_or(0) - before.get(endpoint).copied().unwrap_or(0);
    let (create, status, stop) = (calls("create_deployment"), calls("deployment_status"), calls("stop_deployment"));
    let at_start: u64 = after
        .keys()
        .filter(|k| !["create_deployment", "deployment_status", "stop_deployment"].contains(&k.as_str()))
        .map(|k| calls(k))
        .sum();
    let mut life_row = vec![String::new(); load_header().len()];
    life_row[0] = format!(
        "one server's life: {} Edgegap calls (create {create}, status {status}, stop {stop}); the matchmaker's start-up checks made {at_start} more",
        create + status + stop
    );
    Ok(Table {
        title: "(b) Edgegap provider against the fake Edgegap".into(),
        notes: vec![
            "`fake-edgegap` with no added latency (`--step-delay-ms 0 --deploying-delay-ms 0`) and \
             `--no-rate-limits`, deploying the real demo server; one deployment of ample capacity serves \
             the load once the first join started it. Targets: 5,000 joins/s; at most 3 Edgegap calls per \
             server start (create, status until ready, stop)."
                .into(),
        ],
        header: load_header(),
        rows: vec![median_row(concurrency, runs, &closed), life_row],
    })
}

/// Sends one join and connects a real Lightyear client with its token; the time from the
/// request to the client being connected.
fn connect_once(
    runtime: &tokio::runtime::Runtime,
    mm: &Matchmaker,
    version: &str,
    n: usize,
) -> Result<f64, BenchError> {
    let started = Instant::now();
    let request = stream::join_request(GAME, version, &format!("e2e-{}-{n}", std::process::id()), None);
    let (outcome, ready) = runtime.block_on(stream::answer(mm.public, &request));
    let token = ready
        .as_ref()
        .and_then(|r| r.get("connect_token"))
        .and_then(|t| t.as_str())
        .ok_or_else(|| BenchError::Failed(format!("join for {version}: {outcome:?}")))?;
    let token = decode_token(token)?;
    // Connect as a game using the client plugin does.
    let (mut app, client) = connecting_client_with(token, Dial::Udp, bevygap_client_plugin::connect::netcode_config());
    let connected = bevygap_testkit::step_until(&mut [&mut app], secs(20.0), |apps| {
        client_connection(apps[0], client) != ClientConnection::Pending
    });
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    let state = client_connection(&app, client);
    disconnect(&mut app, client);
    bevygap_testkit::step_for(&mut [&mut app], secs(0.1));
    if !connected || state != ClientConnection::Connected {
        return Err(BenchError::Failed(format!("the client for {version} did not connect: {state:?}")));
    }
    Ok(elapsed)
}

fn decode_token(base64: &str) -> Result<lightyear::netcode::ConnectToken, BenchError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64.trim())
        .map_err(|e| BenchError::Failed(format!("a token that is not base64: {e}")))?;
    lightyear::netcode::ConnectToken::try_from_bytes(&bytes)
        .map_err(|e| BenchError::Failed(format!("not a Lightyear connect token: {e:?}")))
}

/// (c) End to end with the `local` provider and real Lightyear clients over UDP: from the
/// join request to the client connected, on a running server and when the server must start.
fn end_to_end(o: &Options) -> Result<Table, BenchError> {
    let (colds, warms) = (o.scale.pick(5, 1), o.scale.pick(20, 2));
    let games: Vec<String> =
        std::iter::once(format!("{GAME}:{VERSION}")).chain((1..=colds).map(|i| format!("{GAME}:cold-{i}"))).collect();
    let demo = o.bins.path("bevygap-demo-server")?;
    let vars = vec![
        ("BEVYGAP_PROVIDER", "local".into()),
        ("BEVYGAP_GAME_SERVER_CMD", demo.display().to_string()),
        ("BEVYGAP_GAMES", games.join(",")),
        ("BEVYGAP_MAX_SERVERS", "16".into()),
        ("BEVYGAP_SERVER_CAPACITY", "64".into()),
        ("BEVYGAP_DEV_MODE", "true".into()),
    ];
    // The matchmaker's own embedded nats-server, as the README's one-machine command runs it.
    let mm = Matchmaker::start(&o.bins, None, &namespace("c"), &vars, &[])?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Io(e.to_string()))?;
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    let mut cold = Vec::new();
    for i in 1..=colds {
        cold.push(connect_once(&runtime, &mm, &format!("cold-{i}"), next())?);
    }
    // The first join of the main version starts its server too.
    cold.push(connect_once(&runtime, &mm, VERSION, next())?);
    let mut warm = Vec::new();
    for _ in 0..warms {
        warm.push(connect_once(&runtime, &mm, VERSION, next())?);
    }
    let row = |label: &str, mut samples: Vec<f64>| {
        samples.sort_by(f64::total_cmp);
        vec![
            label.to_string(),
            samples.len().to_string(),
            ms(percentile(&samples, 0.5)),
            ms(samples.first().copied().unwrap_or(0.0)),
            ms(samples.last().copied().unwrap_or(0.0)),
        ]
    };
    Ok(Table {
        title: "(c) End to end: join → Lightyear client connected".into(),
        notes: vec![
            "`local` provider launching `bevygap-demo-server`, the matchmaker on its embedded nats-server; one \
             player at a time: a streamed join, then a real Lightyear client (UDP, the client plugin's \
             netcode settings) connecting with the token, timed from the join request to Lightyear's \
             `Connected`. A cold start is a version whose server \
             is not running yet (the local provider launches it). The client is stepped every 5 ms, so figures \
             carry up to 5 ms of stepping. Targets: median under 100 ms warm, under 1.5 s cold."
                .into(),
        ],
        header: ["server", "players", "median", "min", "max"].map(String::from).to_vec(),
        rows: vec![row("warm (already running)", warm), row("cold (started for the join)", cold)],
    })
}

/// (d) Many players waiting at once while no server can take them (a fleet with no server);
/// then a server registers and every one of them is served.
fn many_waiting(o: &Options) -> Result<Table, BenchError> {
    let n: u64 = o.scale.pick(10_000, 50);
    let nats = NatsServer::start()?;
    let ns = namespace("d");
    let mut vars = fleet_vars();
    vars.extend([
        ("BEVYGAP_CAPACITY_WAIT_SECS", "600".to_string()),
        ("BEVYGAP_JOIN_DEADLINE_SECS", "600".to_string()),
        ("BEVYGAP_MAX_WAITING", (n + 1000).to_string()),
    ]);
    let mm = Matchmaker::start(&o.bins, Some(&nats.url()), &ns, &vars, &[])?;
    std::thread::sleep(secs(2.0));
    let pid = mm.pid();
    let rss = || proc::rss_mib(pid).ok_or_else(|| BenchError::Io(format!("no /proc/{pid}/status")));
    let rss_before = rss()?;
    let waiting_plan = plan(vec![mm.public], Some(pid), Load::Closed { joins: n, concurrency: n });
    let loader = std::thread::spawn(move || crate::run(&waiting_plan));
    try_wait_for(secs(180.0), &format!("{n} joins waiting"), || {
        mm.metric("bevygap_joins_waiting", &[]).ok().filter(|waiting| *waiting >= n as f64)
    })?;
    std::thread::sleep(secs(1.0));
    let rss_waiting = rss()?;
    let waiting_cpu = cpu_share(pid, o.scale.pick(5.0, 1.0))?;
    let capacity_at = Instant::now();
    let _server = fleet_server(&o.bins, &nats.url(), &ns, "late-1", n as u32 + 100)?;
    let report = loader.join().map_err(|_| BenchError::Failed("the load generator thread panicked".into()))??;
    let served_after = capacity_at.elapsed().as_secs_f64();
    let per_join_kib = (rss_waiting - rss_before) * 1024.0 / n as f64;
    Ok(Table {
        title: "(d) Many players waiting at once".into(),
        notes: vec![format!(
            "`fleet` provider with no server: {n} streamed joins from as many connections, all waiting \
             (`bevygap_joins_waiting`); then a fleet demo server with room for all registers. RSS before the \
             load and with every join waiting; CPU while they wait (keep-alives only). Target: 10,000 waiting \
             under 150 MB RSS, all served once capacity appears."
        )],
        header: [
            "waiting",
            "RSS before",
            "RSS while waiting",
            "per waiting join",
            "CPU while waiting",
            "served",
            "served within",
            "errors",
        ]
        .map(String::from)
        .to_vec(),
        rows: vec![vec![
            n.to_string(),
            format!("{rss_before:.0} MiB"),
            format!("{rss_waiting:.0} MiB"),
            format!("{per_join_kib:.1} KiB"),
            format!("{:.1} % of a core", waiting_cpu * 100.0),
            format!("{} / {}", report.joins_ready, report.joins_sent),
            format!("{served_after:.2} s of the server starting"),
            errors(&report),
        ]],
    })
}

/// (e) Idle: nothing to do, then the same with many live (issued, unclaimed) tokens.
fn idle(o: &Options) -> Result<Table, BenchError> {
    let tokens: u64 = o.scale.pick(10_000, 50);
    let window = o.scale.pick(10.0, 1.0);
    let nats = NatsServer::start()?;
    let ns = namespace("e");
    let mm = Matchmaker::start(&o.bins, Some(&nats.url()), &ns, &fleet_vars(), &[])?;
    let _server = fleet_server(&o.bins, &nats.url(), &ns, "idle-1", PLENTY)?;
    wait_for_servers(&mm, 1, secs(30.0))?;
    std::thread::sleep(secs(2.0));
    let pid = mm.pid();
    let empty = cpu_share(pid, window)?;
    let rss_empty = proc::rss_mib(pid).unwrap_or(0.0);
    let issued = load(&mm, Load::Closed { joins: tokens, concurrency: 64 })?;
    all_ready(&issued, "issuing the live tokens")?;
    std::thread::sleep(secs(2.0));
    let busy = cpu_share(pid, window)?;
    let rss_tokens = proc::rss_mib(pid).unwrap_or(0.0);
    Ok(Table {
        title: "(e) Idle CPU".into(),
        notes: vec![format!(
            "`fleet` provider, one demo server heartbeating every 5 s; CPU over {window} s with nothing \
             asked, then over {window} s more after {tokens} joins left that many live unclaimed tokens \
             (600 s TTL). Target: under 0.5 % of a core."
        )],
        header: ["state", "matchmaker CPU", "matchmaker RSS"].map(String::from).to_vec(),
        rows: vec![
            vec!["nothing to do".into(), format!("{:.2} % of a core", empty * 100.0), format!("{rss_empty:.0} MiB")],
            vec![
                format!("{tokens} live tokens"),
                format!("{:.2} % of a core", busy * 100.0),
                format!("{rss_tokens:.0} MiB"),
            ],
        ],
    })
}

/// (f) One, two and three matchmakers on a three-node NATS cluster, players spread over every
/// replica's endpoint.
fn replicas(o: &Options) -> Result<Table, BenchError> {
    let cluster = NatsCluster::start(3)?;
    if !cluster.wait_for_jetstream(60) {
        let what = "JetStream on the three-node cluster".into();
        return Err(BenchError::Timeout(TimedOut { what, waited: secs(60.0) }));
    }
    let urls = cluster.urls();
    let (joins, concurrency) = (o.scale.pick(5_000, 20), o.scale.pick(64, 4));
    let mut rows = Vec::new();
    let mut single = None;
    let counts = o.scale.pick(vec![1, 2, 3], vec![1, 2]).into_iter().map(|n| (n, false));
    // The last row: two namespaces, one matchmaker each (how placement itself scales out).
    for (count, sharded) in counts.chain([(2, true)]) {
        let shared_ns = namespace(&format!("f{count}"));
        let ns_of = |i: usize| if sharded { namespace(&format!("f-shard{i}")) } else { shared_ns.clone() };
        let namespaces: Vec<String> = (0..count).map(ns_of).collect();
        let mms: Vec<Matchmaker> = namespaces
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                let mut vars = fleet_vars();
                vars.extend([("BEVYGAP_NATS_REPLICAS", "3".to_string()), ("BEVYGAP_REPLICA_NAME", format!("r{i}"))]);
                Matchmaker::start(&o.bins, Some(&urls), ns, &vars, &[])
            })
            .collect::<Result<_, _>>()?;
        let mut distinct = namespaces.clone();
        distinct.dedup();
        let _servers: Vec<_> = distinct
            .iter()
            .flat_map(|ns| (1..=2).map(move |i| (ns, i)))
            .map(|(ns, i)| fleet_server(&o.bins, &urls, ns, &format!("fleet-{i}"), PLENTY))
            .collect::<Result<_, _>>()?;
        for mm in &mms {
            // Through each replica: it answers once the owner is elected and sees the servers.
            try_wait_for(secs(60.0), "a join through every replica", || {
                let report = load(mm, Load::Closed { joins: 10, concurrency: 2 }).ok()?;
                all_ready(&report, "replica warm-up").ok()
            })?;
        }
        let cpu_of = |mms: &[Matchmaker]| mms.iter().filter_map(|mm| proc::cpu_secs(mm.pid())).sum::<f64>();
        let cpu_before = cpu_of(&mms);
        let report =
            crate::run(&plan(mms.iter().map(|mm| mm.public).collect(), None, Load::Closed { joins, concurrency }))?;
        let cpu = cpu_of(&mms) - cpu_before;
        let rate = report.ready_per_sec;
        let base = *single.get_or_insert(rate);
        let l = &report.latency_ms;
        rows.push(vec![
            if sharded { format!("{count}, each owning its own namespace") } else { count.to_string() },
            format!("{} / {}", report.joins_ready, report.joins_sent),
            format!("{rate:.0}"),
            format!("{:.2}×", rate / base.max(f64::EPSILON)),
            ms(l.p50),
            ms(l.p99),
            errors(&report),
            cpu_per_join(Some(cpu), report.joins_ready),
            report.loadgen_cpu_secs.map_or("–".into(), |c| format!("{c:.1} s of {:.1} s", report.wall_secs)),
            busy(&report),
        ]);
    }
    Ok(Table {
        title: "(f) Replicas on a three-node NATS cluster".into(),
        notes: vec![format!(
            "Three nats-server processes routed on loopback, every bucket R3; N `bevygap-matchmaker` \
             replicas in one namespace and two fleet demo servers; {joins} joins, {concurrency} players at a \
             time, spread round-robin over every replica's public endpoint. Only the namespace's lease \
             owner places joins; the others forward each call to it over NATS and relay the answers \
             (README, Replicas). The last row runs two matchmakers that each own a namespace of their \
             own (two fleet servers each) on the same cluster. Target: two replicas at least 1.6× one."
        )],
        header: [
            "replicas",
            "ready",
            "joins/s",
            "vs one",
            "p50",
            "p99",
            "errors",
            "CPU per join (all replicas)",
            "load generator CPU",
            "machine busy",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    })
}

/// The first number of a callgrind output's `summary:` or `totals:` line (instructions).
pub fn callgrind_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("summary:").or_else(|| line.strip_prefix("totals:")))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Asks callgrind in process `pid` to zero its counters (`-z`) or dump them (`-d`).
fn callgrind_control(flag: &str, pid: u32) -> Result<(), BenchError> {
    let status = Command::new("callgrind_control")
        .args([flag, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| BenchError::Start("callgrind_control".into(), e.to_string()))?;
    if status.success() { Ok(()) } else { Err(BenchError::Failed(format!("callgrind_control {flag} {pid}: {status}"))) }
}

/// Dumps callgrind's counters and returns the new dump file.
fn dump(pid: u32, dir: &Path, seen: &mut Vec<PathBuf>) -> Result<PathBuf, BenchError> {
    callgrind_control("-d", pid)?;
    try_wait_for(secs(60.0), "callgrind's dump", || {
        let entries = std::fs::read_dir(dir).ok()?;
        let fresh = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("callgrind.out")))
            .find(|p| {
                !seen.contains(p) && std::fs::read_to_string(p).ok().and_then(|t| callgrind_total(&t)).is_some()
            })?;
        seen.push(fresh.clone());
        Some(fresh)
    })
    .map_err(BenchError::from)
}

fn instructions(path: &Path) -> Result<u64, BenchError> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| callgrind_total(&text))
        .ok_or_else(|| BenchError::Failed(format!("{} has no totals", path.display())))
}

/// Where a dump's instructions went: the inclusive cost of the matchmaker's own functions and
/// of the libraries a join goes through (HTTP, JSON, NATS, logging, token crypto), from
/// `callgrind_annotate`, highest first.
fn top_functions(path: &Path, count: usize) -> Vec<String> {
    const OURS_AND_HEAVY: [&str; 8] = [
        "bevygap_",
        "hyper::proto::h1::dispatch::Dispatcher",
        "tracing_core::event::Event::dispatch",
        "serde_json::ser::",
        "lightyear_netcode::token::ConnectTokenBuilder",
        "tokio::runtime::handle::Handle::spawn",
        "bevy_tasks::usages::tick_global_task_pools",
        "async_nats::jetstream::kv::Store::put",
    ];
    const FRAMES: [&str; 3] = ["bevygap_matchmaker::main", "wakeable_runner", "{{closure}}::{{closure}}"];
    let Ok(out) = Command::new("callgrind_annotate").args(["--inclusive=yes", "--threshold=100"]).arg(path).output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|line| line.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .filter(|line| OURS_AND_HEAVY.iter().any(|m| line.contains(m)) && !FRAMES.iter().any(|f| line.contains(f)))
        .take(count)
        .map(|line| line.split(" [").next().unwrap_or(line).replace("???:", ""))
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// (g) Instructions per join under callgrind: the matchmaker (fleet provider) runs under
/// valgrind; counters are zeroed after a warm-up, dumped after the joins, then zeroed and
/// dumped again over as long with nothing asked, and the difference is divided by the joins.
fn callgrind(o: &Options) -> Result<Table, BenchError> {
    let header = ["joins", "instructions, joins window", "instructions, idle window", "instructions per join"]
        .map(String::from)
        .to_vec();
    if Command::new("valgrind").arg("--version").output().is_err() {
        return Ok(Table {
            title: "(g) Instructions per join (callgrind)".into(),
            notes: vec!["Not measured: valgrind is not installed.".into()],
            header,
            rows: Vec::new(),
        });
    }
    let dir = o.work_dir.join(format!("callgrind-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::Io(e.to_string()))?;
    let nats = NatsServer::start()?;
    let ns = namespace("g");
    let wrapper = vec![
        "valgrind".to_string(),
        "--tool=callgrind".into(),
        format!("--callgrind-out-file={}", dir.join("callgrind.out").display()),
    ];
    let mut vars = fleet_vars();
    vars.push(("BEVYGAP_JOIN_DEADLINE_SECS", "300".into()));
    let mm = Matchmaker::start(&o.bins, Some(&nats.url()), &ns, &vars, &wrapper)?;
    let _server = fleet_server(&o.bins, &nats.url(), &ns, "cg-1", PLENTY)?;
    wait_for_servers(&mm, 1, secs(300.0))?;
    all_ready(&load(&mm, Load::Closed { joins: 20, concurrency: 4 })?, "callgrind warm-up")?;
    let joins: u64 = o.scale.pick(300, 5);
    let pid = mm.pid();
    let mut seen = Vec::new();
    callgrind_control("-z", pid)?;
    let started = Instant::now();
    all_ready(&load(&mm, Load::Closed { joins, concurrency: 4 })?, "callgrind joins")?;
    let window = started.elapsed();
    let loaded = dump(pid, &dir, &mut seen)?;
    callgrind_control("-z", pid)?;
    std::thread::sleep(window);
    let quiet = dump(pid, &dir, &mut seen)?;
    let (with_joins, without) = (instructions(&loaded)?, instructions(&quiet)?);
    let per_join = with_joins.saturating_sub(without) / joins.max(1);
    let mut notes = vec![format!(
        "`valgrind --tool=callgrind` on `bevygap-matchmaker` (fleet provider, one demo server); after a \
         warm-up the counters are zeroed, {joins} joins are sent (4 at a time) and the counters dumped; then \
         zeroed again and dumped after as long a window with nothing asked. Instruction counts repeat for the \
         same binary and inputs whatever else the machine does. Where the joins window's instructions \
         went (inclusive, the matchmaker's functions and the heavy libraries, `callgrind_annotate`):"
    )];
    let top = top_functions(&loaded, 16);
    if !top.is_empty() {
        notes.push(top.iter().map(|line| format!("    {line}")).collect::<Vec<_>>().join("\n"));
    }
    Ok(Table {
        title: "(g) Instructions per join (callgrind)".into(),
        notes,
        header,
        rows: vec![vec![joins.to_string(), with_joins.to_string(), without.to_string(), per_join.to_string()]],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callgrind_totals_are_read_from_summary_or_totals() {
        assert_eq!(callgrind_total("events: Ir\nsummary: 123456\n"), Some(123_456));
        assert_eq!(callgrind_total("events: Ir\nfn=main\n1 2\ntotals: 99 7\n"), Some(99));
        assert_eq!(callgrind_total("events: Ir\n"), None);
    }
}
