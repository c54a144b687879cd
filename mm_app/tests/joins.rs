//! Joining through the public endpoint against a real matchmaker, nats-server and game-server
//! processes.

mod support;

use bevygap_matchmaker::tokens::mint::inspect;
use serde_json::{Value, json};
use support::*;

fn ready_of(body: &Value) -> &Value {
    assert!(body.get("error").is_none(), "join failed: {body}");
    let result = &body["result"];
    assert_eq!(result["status"], "ready", "{body}");
    result
}

#[test]
fn one_shot_join_returns_a_token_for_the_right_server() {
    let mm = Matchmaker::start(|_| {});
    let body = mm.join(json!({"game": GAME, "version": VERSION}));
    let ready = ready_of(&body);
    let udp = addr(&ready["addresses"]["udp"]);
    let info = inspect(ready["connect_token"].as_str().unwrap()).expect("a Lightyear ConnectToken");
    assert_eq!(info.protocol_id, test_keys().protocol_id);
    assert_eq!(info.server_addresses, vec![udp], "token addressed to the server's UDP address");
    assert_eq!(info.expires_at - info.created_at, 30);

    let servers = mm.servers();
    assert_eq!(servers.len(), 1);
    assert_eq!(addr(&servers[0]["addresses"]["udp"]), udp);
    let server_id = servers[0]["server_id"].as_str().unwrap().to_string();

    // The grant was written before the token was returned.
    let session = mm.session(ready["session_id"].as_str().unwrap()).expect("session record");
    assert_eq!(session.server_id.as_str(), server_id);
    let client = session.client_ids[0];
    assert!(mm.keys(&mm.kv.clients).contains(&format!("{server_id}.{client}")));
}

#[test]
fn streamed_join_reports_progress_then_ready_and_closes() {
    let mm = Matchmaker::start(|c| {
        c.local.command.extend(["--ready-after-ms".to_string(), "700".to_string()]);
        c.front.keepalive = std::time::Duration::from_millis(200);
    });
    let events = mm.join_stream(json!({"game": GAME, "version": VERSION, "transport": "webtransport"}));
    let statuses: Vec<&str> = events.iter().map(|e| e["result"]["status"].as_str().unwrap_or("error")).collect();
    assert_eq!(statuses.first(), Some(&"queued"), "{events:?}");
    assert!(statuses.contains(&"server_starting"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"ready"), "{statuses:?}");
    let ready = &events.last().unwrap()["result"];
    let wt = addr(&ready["addresses"]["webtransport"]);
    let info = inspect(ready["connect_token"].as_str().unwrap()).unwrap();
    assert_eq!(info.server_addresses, vec![wt], "a webtransport join gets the webtransport address");
    assert!(events.iter().all(|e| e["id"] == 7));
}

#[test]
fn a_waiting_stream_is_kept_alive_and_ends_with_an_error_at_its_deadline() {
    let mm = Matchmaker::start(|c| {
        c.local.command.push("--never-ready".into());
        c.front.keepalive = std::time::Duration::from_millis(200);
        c.joins.deadline = std::time::Duration::from_secs(2);
    });
    let lines = mm.join_stream_lines(json!({"game": GAME, "version": VERSION}));
    assert!(lines.iter().filter(|l| l.starts_with(": keep-alive")).count() >= 3, "{lines:?}");
    let last: Value = serde_json::from_str(lines.iter().rev().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(last["error"]["data"]["code"], "timeout", "{last}");
    mm.wait_for(10, "the abandoned seat to be freed", |mm| mm.servers().iter().all(|s| s["taken"] == 0).then_some(()));
}

#[test]
fn retry_with_the_same_request_id_resumes_the_same_join() {
    let mm = Matchmaker::start(|_| {});
    let params = json!({"game": GAME, "version": VERSION, "request_id": "retry-0123456789"});
    let first = mm.join(params.clone());
    let second = mm.join(params.clone());
    assert_eq!(ready_of(&first)["session_id"], ready_of(&second)["session_id"]);
    assert_eq!(ready_of(&first)["connect_token"], ready_of(&second)["connect_token"]);
    assert_eq!(mm.admin("admin.sessions", json!({}))["sessions"].as_array().unwrap().len(), 1);
    let streamed = mm.join_stream(params);
    assert_eq!(streamed.len(), 1, "a finished join answers a resumed stream at once: {streamed:?}");
    assert_eq!(streamed[0]["result"]["session_id"], ready_of(&first)["session_id"]);
}

#[test]
fn invalid_and_unknown_joins_fail_with_their_codes() {
    let mm = Matchmaker::start(|_| {});
    let body = mm.join(json!({"game": "bad game", "version": VERSION}));
    assert_eq!(body["error"]["data"]["code"], "invalid_request", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("game contains ' '"));
    let body = mm.join(json!({"game": GAME, "version": "9.9"}));
    assert_eq!(body["error"]["data"]["code"], "unknown_game", "{body}");
    assert_eq!(body["error"]["code"], -32002);
    let body = mm.join(json!("not an object"));
    assert_eq!(body["error"]["code"], -32602, "{body}");
    assert!(mm.servers().is_empty(), "no server started for refused joins");
}

#[test]
fn cancel_withdraws_a_waiting_join_and_frees_its_seat() {
    let mm = Matchmaker::start(|c| {
        c.local.command.push("--never-ready".into());
        c.servers.capacity = 1;
        c.servers.max_servers = 1;
    });
    let url = mm.public_url();
    let params = json!({"game": GAME, "version": VERSION, "request_id": "cancel-me-0001"});
    let waiter = std::thread::spawn(move || {
        post(&url, &json!({"jsonrpc": "2.0", "id": 3, "method": "matchmaker.join", "params": params}).to_string(), None)
    });
    mm.wait_for(20, "the seat to be reserved", |mm| mm.servers().first().filter(|s| s["taken"] == 1).map(|_| ()));
    let (_, cancel) = mm.call(&mm.public_url(), "matchmaker.cancel", json!({"request_id": "cancel-me-0001"}));
    assert_eq!(cancel["result"]["cancelled"], true, "{cancel}");
    let (_, body) = waiter.join().unwrap();
    assert_eq!(body["error"]["data"]["code"], "cancelled", "{body}");
    assert_eq!(mm.servers()[0]["taken"], 0, "seat freed");
    let (_, again) = mm.call(&mm.public_url(), "matchmaker.cancel", json!({"request_id": "cancel-me-0001"}));
    assert_eq!(again["result"]["cancelled"], false);
}
