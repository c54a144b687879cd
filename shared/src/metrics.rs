//! The process's Prometheus recorder. The `metrics` facade has one global recorder per
//! process, so the matchmaker and the server plugin (which a test may run in one process)
//! install it through this one function and render the same page.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Histogram buckets in seconds: from a millisecond (placement) to a minute (cold starts).
pub const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0];

/// The `Content-Type` of a page in the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The process's Prometheus recorder, installed on first use. `None` if the program installed
/// another recorder first (its own exporter then has the series; ours serve no page).
pub fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(&BUCKETS).ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!("metrics are not recorded here: {e}");
                    None
                }
            }
        })
        .clone()
}
