//! What the public and admin endpoints let through: method allow-list, limits, admin token,
//! CORS, client IP handling, and secrets kept out of BRP.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

#[test]
fn the_public_endpoint_refuses_every_brp_builtin_and_admin_method() {
    let mm = Matchmaker::start(|c| c.front.rate_burst = 1000);
    let discovered = mm.admin("rpc.discover", json!(null));
    let methods: Vec<String> = discovered["methods"]
        .as_array()
        .expect("rpc.discover lists methods")
        .iter()
        .filter_map(|m| m["name"].as_str().map(str::to_string))
        .collect();
    for expected in ["world.query", "world.despawn_entity", "world.insert_resources", "schedule.graph", "admin.servers"]
    {
        assert!(methods.iter().any(|m| m == expected), "{expected} missing from {methods:?}");
    }
    let public_ok = ["matchmaker.join", "matchmaker.join+watch", "matchmaker.cancel"];
    let mut refused = 0;
    for method in methods.iter().map(String::as_str).chain(["rpc.discover", "world.query"]) {
        if public_ok.contains(&method) {
            continue;
        }
        let (status, body) = mm.call(&mm.public_url(), method, json!({}));
        assert_eq!(status, 200);
        assert_eq!(body["error"]["code"], -32601, "{method} must be refused: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("not available"), "{body}");
        refused += 1;
    }
    assert!(refused >= 20, "only {refused} methods checked");
}

#[test]
fn operators_see_live_state_over_brp_without_secrets() {
    let mm = Matchmaker::start(|_| {});
    let body = mm.join(json!({"game": GAME, "version": VERSION}));
    assert_eq!(body["result"]["status"], "ready", "{body}");
    let query = json!({"data": {"components": ["bevygap::GameServer"]}});
    let servers = mm.admin("world.query", query);
    let rows = servers.as_array().expect("query rows");
    assert_eq!(rows.len(), 1, "{servers}");
    let server = &rows[0]["components"]["bevygap::GameServer"];
    assert_eq!(server["game"]["game"], GAME);
    assert!(server["id"].as_str().is_some_and(|id| id.starts_with("local-")), "{server}");

    let resources = mm.admin("world.list_resources", json!(null)).to_string();
    for secret in ["MatchmakerKeys", "MatchmakerConfig", "PrivateKey", "Nats"] {
        assert!(!resources.contains(secret), "{secret} is exposed over BRP: {resources}");
    }
    let joins = mm.admin("world.query", json!({"data": {"components": ["bevygap::Join"], "option": "all"}}));
    assert_eq!(joins.as_array().map(Vec::len), Some(1), "{joins}");
    let token = body["result"]["connect_token"].as_str().unwrap();
    assert!(!joins.to_string().contains(token), "the join's ConnectToken is not reflected: {joins}");
}

#[test]
fn oversized_bodies_are_refused() {
    let mm = Matchmaker::start(|c| c.front.max_body_bytes = 512);
    let padding = "x".repeat(1000);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join", "params": {"game": GAME, "version": VERSION, "pad": padding}});
    let (status, response) = post(&mm.public_url(), &body.to_string(), None);
    assert_eq!(status, 413);
    assert!(response["error"]["message"].as_str().unwrap().contains("512 bytes"), "{response}");
    let (status, response) = post(&mm.public_url(), "{not json", None);
    assert_eq!(status, 200);
    assert_eq!(response["error"]["code"], -32700);
}

#[test]
fn each_ip_is_rate_limited() {
    let mm = Matchmaker::start(|c| {
        c.front.rate_burst = 3;
        c.front.rate_per_minute = 1;
    });
    for _ in 0..3 {
        let (status, _) = mm.call(&mm.public_url(), "matchmaker.cancel", json!({"request_id": "nope-nope-nope"}));
        assert_eq!(status, 200);
    }
    let (status, body) = mm.call(&mm.public_url(), "matchmaker.cancel", json!({"request_id": "nope-nope-nope"}));
    assert_eq!(status, 429);
    assert_eq!(body["error"]["data"]["code"], "rate_limited", "{body}");
    let (status, _) = mm.call(&mm.admin_url(), "admin.stats", json!({}));
    assert_eq!(status, 200, "the admin endpoint is not rate limited");
}

#[test]
fn waiting_joins_are_capped() {
    let mm = Matchmaker::start(|c| {
        c.joins.limits.max_waiting = 1;
        c.local.command.push("--never-ready".into());
    });
    let url = mm.public_url();
    let first = std::thread::spawn(move || {
        let params = json!({"game": GAME, "version": VERSION, "request_id": "waiting-first-1"});
        post(&url, &json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join", "params": params}).to_string(), None)
    });
    mm.wait_for(20, "the first join to wait", |mm| {
        (mm.admin("admin.stats", json!({}))["joins_waiting"] == 1).then_some(())
    });
    let body = mm.join(json!({"game": GAME, "version": VERSION}));
    assert_eq!(body["error"]["data"]["code"], "too_many_waiting", "{body}");
    mm.call(&mm.public_url(), "matchmaker.cancel", json!({"request_id": "waiting-first-1"}));
    let (_, first) = first.join().unwrap();
    assert_eq!(first["error"]["data"]["code"], "cancelled");
}

#[test]
fn a_join_names_its_mode_and_one_that_cannot_be_matched_is_refused_by_name() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/profiles.example.json");
    let profiles = std::fs::read_to_string(example).expect("the example profiles");
    let mm = Matchmaker::start(move |c| {
        c.profiles = bevygap_matchmaker::matching::ProfileSet::from_json(&profiles).expect("valid");
    });
    let body = mm.join(json!({"game": GAME, "version": VERSION, "mode": "ranked"}));
    assert_eq!(body["error"]["data"]["code"], "invalid_request", "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("not a profile")), "{body}");
    let body = mm.join(json!({"game": GAME, "version": VERSION, "mode": "ranked_2v2", "party": "p1",
                              "attributes": {"numbers": {"elo": 1200}}}));
    assert_eq!(body["error"]["data"]["code"], "invalid_request", "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("party_size")), "{body}");
    let body = mm.join(json!({"game": GAME, "version": VERSION, "latencies": {"eu": -5}}));
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("latencies.eu")), "{body}");
    let body = mm.join(json!({"game": GAME, "version": VERSION, "mode": "drop_in", "transport": "udp"}));
    assert_eq!(body["result"]["status"], "ready", "drop_in places as before: {body}");
}

#[test]
fn the_admin_endpoint_off_loopback_requires_its_token() {
    let token = "an-admin-token-0123456789";
    let mm = Matchmaker::start(|c| {
        c.front.admin_addr = "0.0.0.0:0".parse().unwrap();
        c.front.admin_token = Some(bevygap_shared::Secret::new(token));
    });
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "admin.stats"}).to_string();
    let (status, response) = post(&mm.admin_url(), &body, None);
    assert_eq!(status, 401, "{response}");
    let (status, _) = post(&mm.admin_url(), &body, Some("wrong-token-wrong-token-xx"));
    assert_eq!(status, 401);
    let (status, response) = post(&mm.admin_url(), &body, Some(token));
    assert_eq!(status, 200);
    assert!(response["result"]["servers_ready"].is_number(), "{response}");
}

#[test]
fn cors_preflight_gets_the_configured_origin() {
    let mm = Matchmaker::start(|c| c.front.cors_origin = Some("https://game.example".into()));
    let response = agent()
        .options(&mm.public_url())
        .header("origin", "https://game.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .header("access-control-request-private-network", "true")
        .call()
        .expect("preflight");
    assert_eq!(response.status().as_u16(), 204);
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    assert_eq!(header("access-control-allow-origin").as_deref(), Some("https://game.example"));
    assert_eq!(header("access-control-allow-headers").as_deref(), Some("content-type"));
    assert_eq!(header("access-control-allow-private-network").as_deref(), Some("true"), "Chrome's PNA preflight");
    assert_eq!(header("access-control-max-age").as_deref(), Some("600"));
}

fn ticket_ip(mm: &Matchmaker, request_id: &str) -> Value {
    let rows = mm.admin("world.query", json!({"data": {"components": ["bevygap::Join"]}}));
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| &r["components"]["bevygap::Join"])
        .find(|t| t["request_id"] == request_id)
        .map(|t| t["client_ip"].clone())
        .expect("ticket present")
}

#[test]
fn the_player_ip_is_the_peer_unless_in_development_mode() {
    let mm = Matchmaker::start(|_| {});
    mm.join(json!({"game": GAME, "version": VERSION, "request_id": "ip-check-0001", "client_ip": "203.0.113.9"}));
    assert_eq!(ticket_ip(&mm, "ip-check-0001"), json!("127.0.0.1"), "client_ip is ignored outside development mode");
    drop(mm);
    let dev = Matchmaker::start(|c| c.joins.trust_client_ip = true); // what BEVYGAP_DEV_MODE sets
    dev.join(json!({"game": GAME, "version": VERSION, "request_id": "ip-check-0002", "client_ip": "203.0.113.9"}));
    assert_eq!(ticket_ip(&dev, "ip-check-0002"), json!("203.0.113.9"));
}

#[test]
fn the_admin_endpoint_serves_the_dashboard_and_the_public_one_does_not() {
    let mm = Matchmaker::start(|_| {});
    let mut page = agent().get(&mm.admin_url()).call().expect("dashboard");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.body_mut().read_to_string().expect("html");
    assert!(html.contains("Bevygap matchmaker") && html.contains("admin.servers"), "{html}");
    let mut public = agent().get(&mm.public_url()).call().expect("public GET");
    let body = public.body_mut().read_to_string().unwrap_or_default();
    assert!(!body.contains("<html"), "the public endpoint must not serve the dashboard");
}

#[test]
fn with_game_servers_on_this_host_the_loopback_admin_endpoint_demands_its_token() {
    // The local provider runs game servers here: a token-less loopback admin would let any of
    // them drain, stop or inspect everything.
    let mm = Matchmaker::start(|_| {});
    let token = mm.admin_token().expect("a token was generated").to_string();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "admin.stats"}).to_string();
    let port = mm.addrs.admin.port();
    let same_origin = [("host", format!("127.0.0.1:{port}")), ("origin", format!("http://127.0.0.1:{port}"))];
    let (status, _) = post_with(&mm.admin_url(), &body, &same_origin);
    assert_eq!(status, 401, "a local process without the token is refused");
    let (status, _) = post(&mm.admin_url(), &body, None);
    assert_eq!(status, 401);
    let (status, response) = post(&mm.admin_url(), &body, Some(&token));
    assert_eq!(status, 200, "{response}");
}

#[test]
fn web_pages_cannot_drive_the_loopback_admin_endpoint() {
    // A fleet's servers run elsewhere: its loopback admin needs no token, only same-origin.
    let mm = Matchmaker::start_fleet(|_| {});
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "admin.stats"}).to_string();
    let port = mm.addrs.admin.port();
    let (status, _) = post_with(&mm.admin_url(), &body, &[("origin", "https://evil.example".into())]);
    assert_eq!(status, 403, "a cross-site request is refused");
    let (status, _) = post_with(&mm.admin_url(), &body, &[("host", format!("evil.example:{port}"))]);
    assert_eq!(status, 403, "a DNS-rebound request is refused");
    let same_origin = [("host", format!("127.0.0.1:{port}")), ("origin", format!("http://127.0.0.1:{port}"))];
    let (status, response) = post_with(&mm.admin_url(), &body, &same_origin);
    assert_eq!(status, 200, "the dashboard's own requests work: {response}");
    let (status, _) = post(&mm.admin_url(), &body, None);
    assert_eq!(status, 200, "tools without an Origin work");
}

fn join_from(mm: &Matchmaker, ip: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join", "params": params}).to_string();
    post_with(&mm.public_url(), &body, &[("x-forwarded-for", ip.into())]).1
}

#[test]
fn a_request_id_belongs_to_the_address_that_made_it() {
    let mm = Matchmaker::start(|c| c.front.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]);
    let params = json!({"game": GAME, "version": VERSION, "request_id": "owned-request-01"});
    let mine = join_from(&mm, "203.0.113.1", params.clone());
    assert_eq!(mine["result"]["status"], "ready", "{mine}");
    let stolen = join_from(&mm, "203.0.113.2", params.clone());
    assert_eq!(stolen["error"]["data"]["code"], "invalid_request", "another address cannot resume it: {stolen}");
    assert!(!stolen.to_string().contains(mine["result"]["connect_token"].as_str().unwrap()));
    let changed = join_from(
        &mm,
        "203.0.113.1",
        json!({"game": GAME, "version": VERSION, "request_id": "owned-request-01", "transport": "webtransport"}),
    );
    assert_eq!(changed["error"]["data"]["code"], "invalid_request", "a resume must ask for the same thing: {changed}");
    let again = join_from(&mm, "203.0.113.1", params);
    assert_eq!(again["result"]["session_id"], mine["result"]["session_id"]);
}

#[test]
fn one_address_cannot_hold_many_waiting_joins() {
    let mm = Matchmaker::start(|c| {
        c.front.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.joins.limits.max_per_requester = 2;
        c.local.command.push("--never-ready".into());
    });
    let url = mm.public_url();
    let waiters: Vec<_> = (0..2)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let params = json!({"game": GAME, "version": VERSION, "request_id": format!("hoard-{i:010}")});
                let body =
                    json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join", "params": params}).to_string();
                post_with(&url, &body, &[("x-forwarded-for", "198.51.100.7".into())])
            })
        })
        .collect();
    mm.wait_for(20, "two joins waiting", |mm| (mm.admin("admin.stats", json!({}))["joins_waiting"] == 2).then_some(()));
    let third = join_from(&mm, "198.51.100.7", json!({"game": GAME, "version": VERSION}));
    assert_eq!(third["error"]["data"]["code"], "rate_limited", "{third}");
    let (_, foreign_cancel) = post_with(
        &mm.public_url(),
        &json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.cancel", "params": {"request_id": "hoard-0000000000"}}).to_string(),
        &[("x-forwarded-for", "198.51.100.8".into())],
    );
    assert_eq!(foreign_cancel["result"]["cancelled"], false, "another address cannot cancel it");
    for i in 0..2 {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.cancel", "params": {"request_id": format!("hoard-{i:010}")}});
        let (_, cancel) = post_with(&mm.public_url(), &body.to_string(), &[("x-forwarded-for", "198.51.100.7".into())]);
        assert_eq!(cancel["result"]["cancelled"], true, "{cancel}");
    }
    for waiter in waiters {
        assert_eq!(waiter.join().unwrap().1["error"]["data"]["code"], "cancelled");
    }
}

#[test]
fn ready_but_unclaimed_seats_count_against_their_address_until_the_player_connects() {
    let mm = Matchmaker::start(|c| {
        c.front.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.joins.limits.max_per_requester = 2;
    });
    let params = || json!({"game": GAME, "version": VERSION});
    let first = join_from(&mm, "198.51.100.20", params());
    let second = join_from(&mm, "198.51.100.20", params());
    assert_eq!(
        (first["result"]["status"].as_str(), second["result"]["status"].as_str()),
        (Some("ready"), Some("ready"))
    );
    let third = join_from(&mm, "198.51.100.20", params());
    assert_eq!(third["error"]["data"]["code"], "rate_limited", "two unused tokens already hold seats: {third}");
    assert_eq!(join_from(&mm, "198.51.100.21", params())["result"]["status"], "ready", "other addresses are served");

    let session = mm.session(first["result"]["session_id"].as_str().unwrap()).expect("session");
    mm.player_joins(session.server_id.as_str(), session.client_ids[0], &session.session_id);
    mm.wait_for(10, "the player to count as connected", |mm| (mm.servers()[0]["connected"] == 1).then_some(()));
    let fourth = join_from(&mm, "198.51.100.20", params());
    assert_eq!(fourth["result"]["status"], "ready", "a used token no longer counts: {fourth}");
}

#[test]
fn per_address_limits_key_ipv6_by_slash_64_and_trust_proxy_ranges_and_every_forwarded_line() {
    let mm = Matchmaker::start(|c| {
        c.front.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        c.joins.limits.max_per_requester = 1;
        c.local.command.push("--never-ready".into());
    });
    let url = mm.public_url();
    let waiter = std::thread::spawn(move || {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join", "params": {"game": GAME, "version": VERSION}});
        post_with(&url, &body.to_string(), &[("x-forwarded-for", "2001:db8:1:2::1".into())])
    });
    mm.wait_for(20, "one join waiting", |mm| (mm.admin("admin.stats", json!({}))["joins_waiting"] == 1).then_some(()));
    let same_64 = join_from(&mm, "2001:db8:1:2:ffff::9", json!({"game": GAME, "version": VERSION}));
    assert_eq!(same_64["error"]["data"]["code"], "rate_limited", "one /64 is one address: {same_64}");

    // A client-written header line first, the proxy's own line last: the last one is the truth.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "matchmaker.join", "params": {"game": GAME, "version": VERSION, "request_id": "forwarded-line-01"}});
    let (_, spoofed) = post_with(
        &mm.public_url(),
        &body.to_string(),
        &[("x-forwarded-for", "2001:db8:9:9::1".into()), ("x-forwarded-for", "2001:db8:1:2::77".into())],
    );
    assert_eq!(spoofed["error"]["data"]["code"], "rate_limited", "the appended line decides: {spoofed}");
    drop(waiter); // ends with the matchmaker
}

/// A raw TCP connection to `addr` from the loopback address `from` (127.0.0.x: each is its own
/// client address).
fn connect_from(from: [u8; 4], addr: std::net::SocketAddr) -> std::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind((from, 0).into()).expect("bind a loopback source address");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let stream = rt.block_on(socket.connect(addr)).expect("connects");
    let stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
}

/// Whether the server closed `stream` within `within` (a read returns end of file).
fn closed_within(stream: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    stream.set_read_timeout(Some(within)).expect("timeout");
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a response; keep reading until the server closes or time runs out
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn cancel_over(stream: &mut std::net::TcpStream) {
    use std::io::Write;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"matchmaker.cancel","params":{"request_id":"nothing-to-cancel"}}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("request sent");
}

/// Sends a cancel over `stream` and reads the start of its answer: once it is there, the server
/// has accepted the connection (and counted it against its address). The connection is kept
/// alive afterwards, silent until the idle timeout closes it.
fn answered_over(stream: &mut std::net::TcpStream) -> [u8; 12] {
    cancel_over(stream);
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut response = [0u8; 12];
    std::io::Read::read_exact(stream, &mut response).expect("an answer");
    response
}

#[test]
fn one_address_cannot_hold_every_connection_and_silent_ones_are_closed() {
    let mm = Matchmaker::start(|c| {
        c.front.max_connections_per_ip = 3;
        c.front.idle_timeout = Duration::from_secs(3);
    });
    let addr = mm.addrs.public;
    let mut held: Vec<_> = (0..3).map(|_| connect_from([127, 0, 0, 2], addr)).collect();
    // Answered, so counted: the server holds all three when the fourth connects.
    for stream in &mut held {
        assert_eq!(&answered_over(stream), b"HTTP/1.1 200", "the first three connections are served");
    }
    let mut fourth = connect_from([127, 0, 0, 2], addr);
    assert!(closed_within(&mut fourth, Duration::from_millis(1500)), "a fourth connection from one address is refused");

    let mut other = connect_from([127, 0, 0, 3], addr);
    assert_eq!(&answered_over(&mut other), b"HTTP/1.1 200", "another address is served");

    // Kept alive after its answer but silent since: closed after the idle timeout.
    let started = std::time::Instant::now();
    assert!(closed_within(&mut other, Duration::from_secs(6)), "an idle keep-alive connection is closed");
    assert!(started.elapsed() >= Duration::from_secs(2), "not before the idle timeout");
    let mut silent = connect_from([127, 0, 0, 4], addr);
    assert!(closed_within(&mut silent, Duration::from_secs(6)), "a connection that never speaks is closed");
}
