use std::time::Duration;

use bevy::prelude::*;
use bevygap_client_plugin::http::{HttpEvent, HttpRequest, HttpSink, MatchmakerHttp, WebHttp};
use bevygap_client_plugin::prelude::*;
use bevygap_demo::client::{DemoClientPlugin, Journal};
use bevygap_demo::protocol::DemoProtocolPlugin;
use bevygap_demo::{GAME, VERSION};
use bevygap_shared::protocol::Transport;
use lightyear::prelude::client::ClientPlugins;
use wasm_bindgen::prelude::*;

const TICK: Duration = Duration::from_micros(16_667);

/// Starts the game on this page: joins `matchmaker_url` as `name` (with `party`, if any) over
/// WebTransport. `tamper_digest` replaces the certificate digest the matchmaker sends with a
/// wrong one, to show what a player sees when the server's certificate does not match (the
/// browser refuses the connection).
#[wasm_bindgen]
pub fn start(matchmaker_url: String, name: String, party: Option<String>, tamper_digest: bool) {
    console_error_panic_hook::set_once();
    let mut config = BevygapClientConfig::new(matchmaker_url, GAME, VERSION);
    config.transport = Transport::WebTransport;
    config.party = party.filter(|p| !p.is_empty());
    let http = TamperableHttp { tamper_digest };
    App::new()
        .add_plugins(MinimalPlugins.set(bevy::app::ScheduleRunnerPlugin::run_loop(TICK)))
        // Warnings and errors in the browser console.
        .add_plugins(bevy::log::LogPlugin { filter: "warn,bevygap_client_plugin=info".into(), ..default() })
        .add_plugins(ClientPlugins { tick_duration: TICK })
        .add_plugins(DemoProtocolPlugin)
        .add_plugins(BevygapClientPlugin::new(config).with_http(http))
        .add_plugins(DemoClientPlugin {
            name,
            // On a page, a player plays until they close it.
            play_for: Duration::from_secs(24 * 3600),
            expect_others: 0,
            meet_within: Duration::from_secs(24 * 3600),
            wander: true,
            exit_when_done: false,
        })
        .add_systems(Startup, |mut commands: Commands| commands.bevygap_connect_client())
        .add_systems(Update, (show_state, show_failure, show_journal, show_clock).after(BevygapClientSystems))
        .run();
}

/// The browser backend, optionally rewriting the certificate digest of the ready payload.
struct TamperableHttp {
    tamper_digest: bool,
}

impl MatchmakerHttp for TamperableHttp {
    fn post(&self, request: HttpRequest, sink: HttpSink) {
        if !self.tamper_digest {
            return WebHttp.post(request, sink);
        }
        let (inner, events) = HttpSink::channel();
        WebHttp.post(request, inner);
        wasm_bindgen_futures::spawn_local(async move {
            while let Ok(event) = events.recv().await {
                let event = match event {
                    HttpEvent::Body(bytes) => HttpEvent::Body(tampered(&bytes)),
                    other => other,
                };
                if !sink.send(event) {
                    return;
                }
            }
        });
    }
}

/// The body with every `"cert_digest":"<64 hex>"` digest replaced by another valid-looking one.
fn tampered(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let marker = "\"cert_digest\":\"";
    let mut out = String::with_capacity(text.len());
    let mut rest: &str = &text;
    while let Some(at) = rest.find(marker) {
        let start = at + marker.len();
        out.push_str(&rest[..start]);
        let digest: String = rest[start..].chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        out.push_str(&digest.chars().map(|c| if c == '0' { '1' } else { '0' }).collect::<String>());
        rest = &rest[start + digest.len()..];
    }
    out.push_str(rest);
    out.into_bytes()
}

fn body() -> Option<web_sys::HtmlElement> {
    web_sys::window()?.document()?.body()
}

fn show_state(state: Res<State<BevygapClientState>>) {
    if state.is_changed()
        && let Some(body) = body()
    {
        let _ = body.dataset().set("state", &format!("{:?}", state.get()));
    }
}

fn show_failure(mut failed: MessageReader<BevygapFailed>) {
    for failure in failed.read() {
        if let Some(body) = body() {
            let _ = body.dataset().set("error", &format!("{} ({})", failure.message, failure.code));
        }
    }
}

fn show_journal(journal: Res<Journal>) {
    if !journal.is_changed() {
        return;
    }
    let log = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("log"));
    if let Some(log) = log {
        log.set_text_content(Some(&journal.lines.iter().cloned().collect::<Vec<_>>().join("\n")));
    }
}

/// The app's clock on `<body data-seconds>`, once a second: a page whose game stopped says so.
fn show_clock(time: Res<Time<Real>>, mut shown: Local<u64>) {
    let seconds = time.elapsed().as_secs();
    if seconds != *shown
        && let Some(body) = body()
    {
        *shown = seconds;
        let _ = body.dataset().set("seconds", &seconds.to_string());
    }
}
