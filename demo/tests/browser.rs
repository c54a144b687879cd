//! The web demo in headless Chromium against the real matchmaker (local provider, real demo
//! server): the page joins over `fetch`, connects over WebTransport with only the certificate
//! digest the matchmaker sent (no verification bypass), hears the server, and the matchmaker
//! counts the player connected. With a wrong digest the browser refuses the server and the
//! page says so. `scripts/web-demo` builds the page (adding the wasm target and
//! wasm-bindgen-cli when missing); Chromium and playwright-core come from
//! `scripts/ensure-chromium`. Screenshots are kept under the test tmpdir.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use bevygap_testkit::browser::{drive, is_png};
use bevygap_testkit::{KillOnDrop, wait_for_listener};
use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `<target>` of this test run (tests run from `<target>/debug/deps`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    exe.ancestors().nth(3).expect("<target>/debug/deps/<test>").to_path_buf()
}

/// Builds the page with `scripts/web-demo`; its output directory.
fn build_page() -> PathBuf {
    let out = Command::new("bash")
        .arg(workspace().join("scripts/web-demo"))
        .env("CARGO_TARGET_DIR", target_dir())
        .stderr(Stdio::inherit())
        .output()
        .expect("bash runs scripts/web-demo");
    assert!(out.status.success(), "scripts/web-demo failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Serves `dir` over HTTP on loopback (GET only, the files of a static page).
fn serve(dir: PathBuf) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the page");
    let port = listener.local_addr().expect("bound").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let dir = dir.clone();
            std::thread::spawn(move || answer(stream, &dir));
        }
    });
    port
}

fn answer(mut stream: TcpStream, dir: &Path) {
    let mut line = String::new();
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Drain the request head.
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
        header.clear();
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_string();
    let path = if path == "/" { "/index.html".to_string() } else { path };
    let file = dir.join(path.trim_start_matches('/'));
    let safe = !path.contains("..");
    let (status, body) = match std::fs::read(&file) {
        Ok(body) if safe => ("200 OK", body),
        _ => ("404 Not Found", b"not found".to_vec()),
    };
    let kind = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// The real matchmaker (local provider, the real demo server) letting `origin` call it.
fn matchmaker(origin: &str, token: &str) -> (KillOnDrop, String, String) {
    let public = format!("127.0.0.1:{}", bevygap_testkit::free_tcp_port());
    let admin = format!("127.0.0.1:{}", bevygap_testkit::free_tcp_port());
    let demo_server = PathBuf::from(env!("CARGO_BIN_EXE_bevygap-demo-server"));
    let child = Command::new(bevygap_testkit::workspace_binary("bevygap_matchmaker", "bevygap-matchmaker"))
        .env_remove("NATS_URL")
        .env("BEVYGAP_PUBLIC_ADDR", &public)
        .env("BEVYGAP_ADMIN_ADDR", &admin)
        .env("BEVYGAP_ADMIN_TOKEN", token)
        .env("BEVYGAP_CORS_ORIGIN", origin)
        .env("BEVYGAP_GAME_SERVER_CMD", demo_server)
        .env("LIGHTYEAR_PROTOCOL_ID", "7")
        .env("LIGHTYEAR_PRIVATE_KEY", "3c".repeat(32))
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(std::env::temp_dir().join("bevygap-browser-test-matchmaker.log"))
                .expect("a log file"),
        )
        .spawn()
        .expect("the matchmaker starts");
    wait_for_listener(&public, Duration::from_secs(60));
    (KillOnDrop(child), format!("http://{public}"), format!("http://{admin}"))
}

/// Runs the page once in Chromium; the driver's report.
fn play(page: &str, admin: &str, token: &str, shot: &Path) -> Value {
    drive("web_demo.mjs", [OsStr::new(page), OsStr::new(admin), OsStr::new(token), shot.as_os_str()])
}

#[test]
fn the_web_demo_joins_and_plays_over_webtransport_with_the_digest_and_a_wrong_digest_is_refused() {
    let page_dir = build_page();
    let page_port = serve(page_dir);
    let origin = format!("http://127.0.0.1:{page_port}");
    let token = "browser-test-admin-token-0001";
    let (_mm, public, admin) = matchmaker(&origin, token);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-demo");

    let good = play(&format!("{origin}/?matchmaker={public}&name=webby"), &admin, token, &shots.join("connected.png"));
    assert_eq!(good["state"], "Connected", "{good}");
    let log = good["log"].as_str().unwrap_or_default();
    assert!(log.contains("over WebTransport"), "connected over WebTransport: {log}");
    assert!(log.contains("server says: webby joined"), "a game message from the server: {log}");
    assert!(good["connected_players"].as_u64().is_some_and(|n| n >= 1), "the matchmaker counts the player: {good}");
    assert!(is_png(&shots.join("connected.png"), 1_000));

    let bad = play(
        &format!("{origin}/?matchmaker={public}&name=forged&tamper_digest=1"),
        &admin,
        token,
        &shots.join("wrong-digest.png"),
    );
    assert_eq!(bad["state"], "Failed", "a wrong digest must not connect: {bad}");
    let shown = bad["shown_error"].as_str().unwrap_or_default();
    assert!(!shown.is_empty(), "the page shows why: {bad}");
    assert!(!bad["log"].as_str().unwrap_or_default().contains("server says"), "{bad}");
    assert!(is_png(&shots.join("wrong-digest.png"), 1_000));
    eprintln!("web demo screenshots in {}", shots.display());
}
