//! A scripted matchmaker on a real socket: JSON-RPC over HTTP/1.1, streamed joins as
//! server-sent events, `matchmaker.cancel`, and every call recorded for assertions (and every
//! streamed join the client hung up on).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bevygap_shared::protocol::ErrorCode;
use lightyear::netcode::ConnectToken;
use serde_json::{Value, json};

pub const PROTOCOL_ID: u64 = 0x5EED;
pub const KEY: [u8; 32] = [9; 32];

/// One step of a streamed answer.
#[derive(Debug, Clone)]
pub enum Step {
    /// `data:` with this JSON-RPC `result`.
    Result(Value),
    /// `data:` with the JSON-RPC error for this code (and `data.code`, as the matchmaker sends).
    Error(ErrorCode),
    /// Keep-alives for this long, stopping early if the client went away.
    Wait(Duration),
}

/// How to answer one join call.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `200 text/event-stream` with these steps, then the connection closes.
    Stream(Vec<Step>),
    /// A plain JSON body with this status.
    Json(u16, Value),
    /// Close the connection without answering.
    Hangup,
}

/// A recorded call.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub params: Value,
}

type Script = dyn Fn(usize, &Value) -> Reply + Send + Sync;

pub struct FakeMatchmaker {
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
    hung_up: Arc<Mutex<Vec<String>>>,
}

impl FakeMatchmaker {
    /// Serves on a free loopback port; `script(n, params)` answers the n-th join call (from 0).
    pub fn start(script: impl Fn(usize, &Value) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake matchmaker");
        Self::serve(listener, script)
    }

    /// Serves on `listener` (for tests that start the server late, on a known port).
    pub fn serve(listener: TcpListener, script: impl Fn(usize, &Value) -> Reply + Send + Sync + 'static) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let hung_up = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let (recorded, recorded_hangups) = (calls.clone(), hung_up.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (calls, hung_up, script) = (recorded.clone(), recorded_hangups.clone(), script.clone());
                std::thread::spawn(move || handle(stream, &calls, &hung_up, &*script));
            }
        });
        Self { addr, calls, hung_up }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.method == method).collect()
    }

    /// The request ids of every join call, in order.
    pub fn join_request_ids(&self) -> Vec<String> {
        self.calls_of("matchmaker.join+watch")
            .iter()
            .map(|c| c.params["request_id"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The request ids of the streamed joins whose client went away before the stream's last
    /// step (a keep-alive or a result could not be written), in the order noticed.
    pub fn hung_up_joins(&self) -> Vec<String> {
        self.hung_up.lock().unwrap().clone()
    }

    /// Waits (without stepping any App) until `method` was called `n` times.
    pub fn wait_for_calls(&self, method: &str, n: usize) {
        let what = format!("{method} to be called {n} times");
        let called = bevygap_testkit::try_wait_for(Duration::from_secs(20), &what, || {
            (self.calls_of(method).len() >= n).then_some(())
        });
        if let Err(timed_out) = called {
            panic!("{timed_out}: {:?}", self.calls());
        }
    }
}

fn handle(stream: TcpStream, calls: &Mutex<Vec<Call>>, hung_up: &Mutex<Vec<String>>, script: &Script) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let method = request["method"].as_str().unwrap_or_default().to_string();
    let params = request["params"].clone();
    let id = request["id"].clone();
    let nth = {
        let mut calls = calls.lock().unwrap();
        calls.push(Call { method: method.clone(), params: params.clone() });
        calls.iter().filter(|c| c.method == method).count() - 1
    };
    let reply = match method.as_str() {
        "matchmaker.join+watch" => script(nth, &params),
        "matchmaker.cancel" => Reply::Json(200, json!({"jsonrpc": "2.0", "id": id, "result": {"cancelled": true}})),
        _ => Reply::Json(
            200,
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}}),
        ),
    };
    let mut out = stream;
    match reply {
        Reply::Hangup => {}
        Reply::Json(status, body) => {
            let body = body.to_string();
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = out.write_all(head.as_bytes()).and_then(|_| out.write_all(body.as_bytes()));
        }
        Reply::Stream(steps) => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";
            if out.write_all(head.as_bytes()).is_err() {
                return;
            }
            for step in steps {
                let written = match step {
                    Step::Result(result) => send(&mut out, &json!({"jsonrpc": "2.0", "id": id, "result": result})),
                    Step::Error(code) => send(&mut out, &json!({"jsonrpc": "2.0", "id": id, "error": error(code)})),
                    Step::Wait(d) => keep_alive(&mut out, d),
                };
                if !written {
                    hung_up.lock().unwrap().push(params["request_id"].as_str().unwrap_or_default().to_string());
                    return;
                }
            }
        }
    }
}

fn send(out: &mut TcpStream, message: &Value) -> bool {
    out.write_all(format!("data: {message}\n\n").as_bytes()).and_then(|_| out.flush()).is_ok()
}

fn keep_alive(out: &mut TcpStream, total: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < total {
        if out.write_all(b": keep-alive\n\n").and_then(|_| out.flush()).is_err() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// The JSON-RPC error object the matchmaker sends for `code`.
pub fn error(code: ErrorCode) -> Value {
    json!({"code": code.rpc_code(), "message": code.message(), "data": {"code": code}})
}

pub fn progress(status: &str, params: &Value) -> Step {
    Step::Result(json!({"status": status, "request_id": params["request_id"]}))
}

/// A ready result with a real ConnectToken for a UDP server at `server`.
pub fn ready(server: SocketAddr, params: &Value, client_id: u64) -> Step {
    let token = ConnectToken::build(server, PROTOCOL_ID, client_id, KEY)
        .expire_seconds(30)
        .timeout_seconds(5)
        .generate()
        .expect("token");
    let token = base64::engine::general_purpose::STANDARD.encode(token.try_into_bytes().expect("token bytes"));
    Step::Result(json!({
        "status": "ready",
        "connect_token": token,
        "transport": "udp",
        "addresses": {"udp": server.to_string()},
        "request_id": params["request_id"],
        "session_id": "session-1",
        "token_expires_in_secs": 30,
    }))
}
