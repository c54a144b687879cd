//! The game server's own Prometheus page, off by default: set `BEVYGAP_METRICS_ADDR` (for
//! example `0.0.0.0:9100`) and `GET /metrics` there answers with players, capacity, whether it
//! admits players, the NATS link, and admissions by outcome and refusal reason, next to
//! Lightyear's own series.
//!
//! The page has no authentication: it says nothing secret (no ids, no addresses), but bind it
//! to an interface only your monitoring reaches. Counters are recorded whether or not the page
//! is served (the `metrics` facade drops them when no recorder is installed).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bevy::prelude::*;
use bevygap_shared::nats::LinkStatus;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::admission::Refusal;
use crate::api::{BevygapServerState, BevygapStatus};
use crate::context::ServerContext;

/// Where the page is served; `None` (the default) serves none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: Option<SocketAddr>,
}

/// Why the page cannot be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    #[error("cannot listen for /metrics on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(
        "BEVYGAP_METRICS_ADDR is set, but the game installed its own metrics recorder first; \
         serve the page from that recorder's exporter instead"
    )]
    RecorderTaken,
}

/// The bound page, made when the plugin is configured so a bad address fails set-up.
#[derive(Clone)]
pub(crate) struct MetricsPage {
    listener: Arc<TcpListener>,
    handle: PrometheusHandle,
}

impl MetricsPage {
    pub(crate) fn bind(config: &MetricsConfig) -> Result<Option<Self>, MetricsError> {
        let Some(addr) = config.listen else { return Ok(None) };
        let handle = bevygap_shared::metrics::prometheus().ok_or(MetricsError::RecorderTaken)?;
        let listener = TcpListener::bind(addr).map_err(|source| MetricsError::Bind { addr, source })?;
        Ok(Some(Self { listener: Arc::new(listener), handle }))
    }
}

/// Where the page is served (the bound address, so port 0 resolves), present only when it is.
#[derive(Resource, Debug, Clone, Copy)]
pub struct MetricsEndpoint {
    pub addr: SocketAddr,
}

/// Serves the page (when configured) and keeps the gauges current.
pub(crate) struct ServerMetricsPlugin {
    pub(crate) page: Option<MetricsPage>,
}

impl Plugin for ServerMetricsPlugin {
    fn build(&self, app: &mut App) {
        let Some(page) = &self.page else { return };
        match page.listener.local_addr() {
            Ok(addr) => {
                info!("metrics on http://{addr}/metrics");
                app.insert_resource(MetricsEndpoint { addr });
            }
            Err(e) => warn!("the metrics listener has no address: {e}"),
        }
        let page = page.clone();
        if let Err(e) = std::thread::Builder::new().name("bevygap-metrics".into()).spawn(move || serve(page)) {
            error!("cannot serve /metrics: {e}");
        }
        app.add_systems(Last, sample_gauges);
    }
}

/// One scrape at a time is plenty for a monitoring system; a slow client is cut off by the
/// socket timeouts.
fn serve(page: MetricsPage) {
    for stream in page.listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(e) = answer(stream, &page.handle) {
                    debug!("metrics request: {e}");
                }
            }
            Err(e) => {
                warn!("metrics listener: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// The longest request head read.
const MAX_REQUEST: usize = 8 * 1024;

fn answer(mut stream: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let request_line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
    let (status, content_type, body) = route(&request_line, handle);
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// The answer to one request line.
fn route(request_line: &str, handle: &PrometheusHandle) -> (&'static str, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some("/metrics")) => ("200 OK", bevygap_shared::metrics::CONTENT_TYPE, handle.render()),
        (Some("GET"), _) => ("404 Not Found", "text/plain", "only /metrics is served here\n".into()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET /metrics is served here\n".into()),
    }
}

/// A client was admitted.
pub(crate) fn admitted() {
    metrics::counter!("bevygap_server_admissions_total", "outcome" => "admitted", "reason" => "none").increment(1);
}

/// A client was refused, with the reason as a label.
pub(crate) fn refused(reason: &'static str) {
    metrics::counter!("bevygap_server_admissions_total", "outcome" => "refused", "reason" => reason).increment(1);
}

impl Refusal {
    /// The `reason` label of a refusal.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::NotAdmitting => "not_admitting",
            Refusal::Full(_) => "full",
            Refusal::AlreadyConnected => "already_connected",
            Refusal::GrantUsed => "grant_used",
            Refusal::NoGrant => "no_grant",
            Refusal::WrongServer(_) => "wrong_server",
        }
    }
}

fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

/// Players, capacity, admitting and the NATS link, whenever they change.
fn sample_gauges(status: Res<BevygapStatus>, phase: Res<State<BevygapServerState>>, ctx: Res<ServerContext>) {
    if !(status.is_changed() || phase.is_changed()) {
        return;
    }
    metrics::gauge!("bevygap_server_players").set(status.players.len() as f64);
    metrics::gauge!("bevygap_server_capacity").set(f64::from(ctx.capacity));
    metrics::gauge!("bevygap_server_admitting").set(flag(phase.admits_players()));
    metrics::gauge!("bevygap_server_nats_connected").set(flag(status.nats == Some(LinkStatus::Connected)));
}
