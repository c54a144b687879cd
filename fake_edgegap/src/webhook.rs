//! Outgoing webhooks: Edgegap POSTs JSON and ignores the answer, giving up
//! after 10 s. Each POST runs on its own thread so a slow receiver never
//! stalls the lifecycle.

use std::time::Duration;

/// Edgegap's documented webhook timeout.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// POSTs `body` to `url` in the background; failures are only logged.
pub fn fire(url: String, body: serde_json::Value) {
    let spawned = std::thread::Builder::new().name("fake-edgegap-webhook".into()).spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(WEBHOOK_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        match agent.post(&url).send_json(&body) {
            Ok(resp) => {
                tracing::debug!(url, status = resp.status().as_u16(), "webhook delivered")
            }
            Err(err) => tracing::warn!(url, error = %err, "webhook failed"),
        }
    });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "could not start webhook thread");
    }
}
