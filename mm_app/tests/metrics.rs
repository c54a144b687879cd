//! `GET /metrics` on the admin endpoint, scraped after scripted joins against a real
//! matchmaker (real nats-server, stand-in game servers): each named series moved as the joins
//! did. One test in its own binary: the `metrics` recorder is global to the process.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

/// The value of the one series named `name` whose labels include every `labels` pair.
fn value(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    page.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
        let matches = series_name == name
            && labels.iter().all(|(label, wanted)| series_labels.contains(&format!("{label}=\"{wanted}\"")));
        matches.then(|| value.parse().ok()).flatten()
    })
}

fn scrape(mm: &Matchmaker, token: Option<&str>) -> (u16, String) {
    let mut request = agent().get(format!("{}/metrics", mm.admin_url()));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let mut response = request.call().expect("scrape");
    (response.status().as_u16(), response.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn metrics_count_joins_by_outcome_servers_by_stage_and_seats_as_they_happen() {
    let mm = Matchmaker::start(|c| {
        c.servers.capacity = 4;
        c.tokens.ttl_secs = 1; // the unused tokens expire during the test
        c.servers.empty_grace = Duration::from_secs(1);
    });
    let token = mm.admin_token().expect("the local provider's admin endpoint has a token").to_string();
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let body = mm.join(json!({"game": GAME, "version": VERSION}));
        assert_eq!(body["result"]["status"], "ready", "{body}");
        sessions.push(mm.session(body["result"]["session_id"].as_str().unwrap_or_default()).expect("session record"));
    }
    // One of the three players connects (its server reports it) and leaves again.
    let first = &sessions[0];
    mm.player_joins(first.server_id.as_str(), first.client_ids[0], &first.session_id);
    let refused = mm.join(json!({"game": "nope", "version": VERSION}));
    assert_eq!(refused["error"]["data"]["code"], "unknown_game");

    let (status, _) = scrape(&mm, None);
    assert_eq!(status, 401, "metrics need the admin token like every admin request");
    let page = mm.wait_for(10, "the gauges to be sampled", |mm| {
        let (_, page) = scrape(mm, Some(&token));
        let sampled = value(&page, "bevygap_seats_taken", &[]) == Some(3.0)
            && value(&page, "bevygap_players_connected", &[]) == Some(1.0);
        sampled.then_some(page)
    });
    assert_eq!(value(&page, "bevygap_joins_total", &[("outcome", "ready")]), Some(3.0), "{page}");
    assert_eq!(value(&page, "bevygap_joins_total", &[("outcome", "refused"), ("code", "unknown_game")]), Some(1.0));
    assert_eq!(value(&page, "bevygap_join_duration_seconds_count", &[("outcome", "ready")]), Some(3.0));
    assert_eq!(value(&page, "bevygap_join_queue_seconds_count", &[]), Some(3.0));
    assert_eq!(value(&page, "bevygap_join_placement_seconds_count", &[]), Some(3.0));
    assert_eq!(value(&page, "bevygap_servers_launched_total", &[("provider", "local")]), Some(1.0));
    assert_eq!(value(&page, "bevygap_server_start_seconds_count", &[("provider", "local")]), Some(1.0));
    let start = value(&page, "bevygap_server_start_seconds_sum", &[("provider", "local")]).expect("a start time");
    assert!(start > 0.0 && start < 30.0, "{start}");
    // The first join waited for its server to start; the placement stage holds that wait.
    let placement = value(&page, "bevygap_join_placement_seconds_sum", &[]).expect("placement times");
    assert!(placement >= start * 0.5 && placement < 30.0, "{placement} vs a {start} s start");
    assert_eq!(value(&page, "bevygap_servers", &[("phase", "ready")]), Some(1.0));
    assert_eq!(value(&page, "bevygap_seats_capacity", &[]), Some(4.0));
    assert_eq!(value(&page, "bevygap_joins_waiting", &[]), Some(0.0));
    assert_eq!(value(&page, "bevygap_replica_owner", &[]), Some(1.0));
    assert!(page.contains("# TYPE bevygap_join_duration_seconds histogram"), "histograms, not summaries");
    assert_eq!(value(&page, "bevygap_token_to_connect_seconds_count", &[]), Some(1.0), "{page}");
    let claimed = value(&page, "bevygap_token_to_connect_seconds_sum", &[]).expect("a connect time");
    assert!(claimed > 0.0 && claimed < 10.0, "{claimed}");
    mm.player_leaves(first.server_id.as_str(), first.client_ids[0]);

    // The other two never connect: their tokens expire, their seats are freed, the server is stopped.
    let page = mm.wait_for(30, "the empty server to be stopped", |mm| {
        let (_, page) = scrape(mm, Some(&token));
        (value(&page, "bevygap_servers_stopped_total", &[("provider", "local")]) == Some(1.0)).then_some(page)
    });
    assert_eq!(value(&page, "bevygap_tokens_expired_unclaimed_total", &[]), Some(2.0), "{page}");
    // A server that ends because it was asked to is stopped, not lost.
    let ended = mm.wait_for(20, "the stopped server to be gone", |mm| {
        let (_, page) = scrape(mm, Some(&token));
        (value(&page, "bevygap_servers", &[("phase", "other")]) == Some(0.0) && mm.servers().is_empty()).then_some(page)
    });
    assert_eq!(value(&ended, "bevygap_servers_lost_total", &[("provider", "local")]), None, "{ended}");
    assert!(!page.contains("server_id") && !page.contains("request_id"), "no unbounded labels");
}
