//! The native backend: blocking ureq on a thread per call. Calls are rare (one per join
//! attempt, one per cancel) and a streamed join spends its life waiting on the socket, so a
//! dedicated thread is simpler and kinder to Bevy's task pools than blocking one of them.

use std::io::{ErrorKind, Read};

use super::{HttpEvent, HttpRequest, HttpSink, MatchmakerHttp};

/// ureq 3 with rustls (for `https://` matchmakers).
#[derive(Debug, Clone, Copy, Default)]
pub struct NativeHttp;

impl MatchmakerHttp for NativeHttp {
    fn post(&self, request: HttpRequest, sink: HttpSink) {
        let spawned = std::thread::Builder::new().name("bevygap-matchmaker-http".into()).spawn({
            let sink = sink.clone();
            move || run(request, &sink)
        });
        if let Err(e) = spawned {
            sink.send(HttpEvent::Failed(format!("cannot start the HTTP thread: {e}")));
        }
    }
}

fn run(request: HttpRequest, sink: &HttpSink) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(request.connect_timeout))
        .timeout_per_read(Some(request.idle_timeout))
        .timeout_global(Some(request.total_timeout))
        .build()
        .into();
    let response = agent
        .post(&request.url)
        .header("content-type", "application/json")
        .header("accept", "text/event-stream, application/json")
        .send(request.body.as_str());
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            sink.send(HttpEvent::Failed(e.to_string()));
            return;
        }
    };
    let event_stream = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
    if !sink.send(HttpEvent::Head { status: response.status().as_u16(), event_stream }) {
        return;
    }
    let mut reader = response.into_body().into_reader();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => {
                sink.send(HttpEvent::End);
                return;
            }
            Ok(n) => {
                if !sink.send(HttpEvent::Body(buf[..n].to_vec())) {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                sink.send(HttpEvent::Failed(e.to_string()));
                return;
            }
        }
    }
}
