//! `scripts/demo` as a newcomer runs it, headless: the real matchmaker with its embedded
//! defaults (its own nats-server, demo servers as child processes) and two real demo clients
//! that join over HTTP, connect over UDP with Lightyear, meet on one server, chat and leave;
//! then two more matched into a duel by the example profiles, on a server the game knew their
//! teams on; then the empty servers are stopped. Runs the script itself, on binaries already
//! built.

use std::path::Path;
use std::process::Command;

/// The `[name] …` lines a client printed.
fn lines_of<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("[{name}] ");
    out.lines().filter_map(|l| l.strip_prefix(prefix.as_str())).collect()
}

/// The value after `marker` up to the next space, in the first line holding it.
fn after<'a>(lines: &[&'a str], marker: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| l.split(marker).nth(1)).and_then(|rest| rest.split_whitespace().next())
}

#[test]
fn two_demo_clients_meet_on_one_server_chat_and_leave_and_the_server_is_stopped() {
    let client = Path::new(env!("CARGO_BIN_EXE_bevygap-demo-client"));
    let bin_dir = client.parent().expect("the binaries' directory");
    bevygap_testkit::workspace_binary("bevygap_matchmaker", "bevygap-matchmaker");
    assert!(bin_dir.join("bevygap-demo-server").exists(), "the demo server is built beside the client");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/demo");
    let output = Command::new("bash")
        .arg(&script)
        .env("BEVYGAP_DEMO_BIN_DIR", bin_dir)
        .env("BEVYGAP_PUBLIC_ADDR", format!("127.0.0.1:{}", bevygap_testkit::free_tcp_port()))
        .env("BEVYGAP_ADMIN_ADDR", format!("127.0.0.1:{}", bevygap_testkit::free_tcp_port()))
        .env("BEVYGAP_EMPTY_GRACE_SECS", "1")
        .env("BEVYGAP_DEMO_PLAY_SECS", "2")
        .env_remove("LIGHTYEAR_PRIVATE_KEY")
        .output()
        .expect("bash runs the demo script");
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the demo failed:\n{out}\n{err}");

    let alice = lines_of(&out, "alice");
    let bob = lines_of(&out, "bob");
    for (me, lines, other) in [("alice", &alice, "bob"), ("bob", &bob, "alice")] {
        // Each step of the join shows, in order.
        let steps: Vec<&str> = ["WaitingForServer:", "Connecting:", "playing on ", "I am client ", "meets ", "leaves:"]
            .into_iter()
            .filter(|step| lines.iter().any(|l| l.starts_with(step)))
            .collect();
        assert_eq!(steps.len(), 6, "{me} showed every step: {lines:?}");
        let meets = lines.iter().find(|l| l.starts_with("meets ")).copied().unwrap_or_default();
        assert!(meets.starts_with(&format!("meets {other} (client ")), "{me}: {meets}");
        let greeting = format!("{other} says: hi {me}, I am {other}!");
        assert!(lines.contains(&greeting.as_str()), "{me} heard {other}: {lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("leaves: met 1 player(s)")), "{lines:?}");
    }
    // One server for both, and each knows the other by its real client id.
    assert_eq!(after(&alice, "playing on "), after(&bob, "playing on "), "{out}");
    assert_eq!(after(&alice, "(client ").map(|id| id.trim_end_matches(')')), after(&bob, "I am client "));
    assert_eq!(after(&bob, "(client ").map(|id| id.trim_end_matches(')')), after(&alice, "I am client "));
    assert!(out.contains("demo: the empty servers were stopped"), "{out}");

    // The duel: both matched into one match on opposite teams, on one server, meeting there.
    let (carol, dave) = (lines_of(&out, "carol"), lines_of(&out, "dave"));
    let matched = |lines: &[&str]| {
        let line = lines.iter().find(|l| l.starts_with("matched into ")).unwrap_or_else(|| panic!("{lines:?}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        (words.get(2).map(|w| w.to_string()), words.get(5).map(|w| w.to_string()))
    };
    let ((carol_match, carol_team), (dave_match, dave_team)) = (matched(&carol), matched(&dave));
    assert_eq!(carol_match, dave_match, "one match: {out}");
    assert_ne!(carol_team, dave_team, "opposite teams: {out}");
    assert_eq!(after(&carol, "playing on "), after(&dave, "playing on "), "{out}");
    assert!(carol.iter().any(|l| l.starts_with("meets dave (client ")), "{carol:?}");
    let told = format!("carol joined duel {} on team", carol_match.as_deref().unwrap_or_default());
    assert!(dave.iter().chain(&carol).any(|l| l.contains(&told)), "the game server knew the teams: {out}");
}
