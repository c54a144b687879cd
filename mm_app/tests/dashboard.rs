//! The operator dashboard in a real headless Chromium (Debian's, driven by playwright-core from
//! `testkit/browser`; `scripts/ensure-chromium` installs both): after scripted joins against a
//! real matchmaker the page loads with the admin token, its charts draw the joins from the
//! metrics history, search and sorting work on ids shown as strings, and the drain button
//! drains the server. Screenshots are kept under the target directory's test tmpdir.
//! Its own binary: the metrics recorder is global to the process.

mod support;

use std::path::PathBuf;

use bevygap_testkit::browser::{drive, is_png};
use serde_json::json;
use support::*;

#[test]
fn the_dashboard_charts_the_joins_finds_and_sorts_ids_and_drains_a_server_in_chromium() {
    let mm = Matchmaker::start(|c| {
        c.servers.capacity = 4;
        c.tokens.ttl_secs = 120; // the seats stay taken while the page is looked at
    });
    let token = mm.admin_token().expect("the local provider's admin endpoint has a token").to_string();
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let body = mm.join(json!({"game": GAME, "version": VERSION}));
        assert_eq!(body["result"]["status"], "ready", "{body}");
        sessions.push(body["result"]["session_id"].as_str().unwrap_or_default().to_string());
    }
    let refused = mm.join(json!({"game": "nope", "version": VERSION}));
    assert_eq!(refused["error"]["data"]["code"], "unknown_game");
    let servers = mm.servers();
    assert_eq!(servers.len(), 1, "{servers:?}");
    let server_id = servers[0]["server_id"].as_str().unwrap_or_default().to_string();

    // The history takes a point every five seconds; wait for the one that holds the joins.
    let history = mm.wait_for(30, "a history point with the joins", |mm| {
        let history = mm.admin("admin.history", json!({}));
        let points = history["points"].as_array().cloned().unwrap_or_default();
        let ready: f64 = points.iter().filter_map(|p| p["joins_ready_per_sec"].as_f64()).sum();
        (ready > 0.0).then_some(history)
    });
    let points = history["points"].as_array().cloned().unwrap_or_default();
    let refused_rate: f64 = points.iter().filter_map(|p| p["joins_refused_per_sec"].as_f64()).sum();
    assert!(refused_rate > 0.0, "the refused join is charted too: {history}");
    assert!(points.iter().any(|p| p["wait_p50_secs"].as_f64().is_some_and(|w| w > 0.0)), "{history}");

    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    let _ = std::fs::remove_dir_all(&out);
    let report = drive("dashboard.mjs", [mm.admin_url().as_str(), &token, &server_id, &out.display().to_string()]);
    eprintln!("dashboard screenshots in {}", out.display());

    assert_eq!(report["errors"], json!([]), "no page or console errors: {report}");
    assert_eq!(report["requests"], json!([mm.admin_url()]), "nothing loaded from anywhere else: {report}");
    assert!(!report["address_bar"].as_str().unwrap_or_default().contains(&token), "token kept out of the URL");
    assert_eq!(report["title"], "Bevygap matchmaker");
    let charts = &report["charts"];
    for (chart, series) in [
        ("chart-joins", "joins_ready_per_sec"),
        ("chart-wait", "wait_p50_secs"),
        ("chart-servers", "servers_ready"),
        ("chart-seats", "seats_taken"),
    ] {
        let drawn = charts[chart]["series"].as_array().cloned().unwrap_or_default();
        assert!(drawn.contains(&json!(series)), "{chart} draws {series}: {report}");
        // Something above the zero line (y = 150 in the 170-high chart).
        assert!(charts[chart]["top_y"].as_f64().is_some_and(|y| y < 150.0), "{chart} shows data: {report}");
    }
    assert_eq!(report["stats"]["servers_ready"], "1", "{report}");
    assert_eq!(report["stats"]["tokens_unclaimed"], "3", "{report}");
    let row = report["server_row"].as_array().cloned().unwrap_or_default();
    assert_eq!(row.first(), Some(&json!(server_id)), "the id exactly as the matchmaker has it: {report}");
    assert_eq!(row.get(2), Some(&json!("ready")));
    assert_eq!(row.get(4), Some(&json!("3/4")), "seats taken of capacity: {report}");

    // Every session shown, by its exact id; search finds one; a click on the heading sorts.
    let mut shown: Vec<String> =
        serde_json::from_value(report["session_ids"].clone()).expect("session ids are strings");
    let ascending = shown.clone();
    shown.sort();
    sessions.sort();
    assert_eq!(shown, sessions, "{report}");
    assert_eq!(report["searched"], json!([ascending[1]]), "{report}");
    let descending: Vec<String> = ascending.iter().rev().cloned().collect();
    assert_eq!(report["sorted_desc"], json!(descending), "{report}");

    // The drain button drained the server: the page shows it, and so does the matchmaker.
    assert_ne!(report["after_drain"], "ready", "{report}");
    // (Its three seats keep it until their tokens end.)
    let phase = mm.servers().first().map(|s| s["phase"].as_str().unwrap_or_default().to_string());
    assert_eq!(phase.as_deref(), Some("draining"), "drained");

    for shot in ["dashboard.png", "dashboard-drained.png"] {
        assert!(is_png(&out.join(shot), 10_000), "{shot} saved as a PNG screenshot");
    }
}
