//! Where a call goes once a transport has checked and parsed it: into this replica's join
//! desk (joins) or bevy_remote channel (everything else) while it owns the namespace, else to
//! the owner through a [`Forwarder`] (the NATS relay in [`crate::ownership`]). Calls stay
//! typed all the way into the app; only the relay between replicas serialises them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bevy::prelude::Resource;
use bevy_remote::{BrpMessage, BrpResult};
use bevygap_shared::inbox::AppWaker;
use bevygap_shared::protocol::{METHOD_JOIN, METHOD_JOIN_WATCH};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::desk::JoinDesk;
use super::envelope::is_terminal_join_result;
use super::params::JoinCall;

/// How long a call waits for room at the join desk or in bevy_remote's small mailbox.
const QUEUE_WAIT: Duration = Duration::from_secs(2);
/// Answers a non-join call may have waiting (a watching BRP method streams many).
const ANSWERS_PER_CALL: usize = 64;

/// One call, as a transport hands it on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Call {
    /// `matchmaker.join` (`watch: false`: only the terminal answer is wanted) or
    /// `matchmaker.join+watch`. Boxed: a join carries its ticket (attributes, latencies).
    Join { watch: bool, call: Box<JoinCall> },
    /// Any other method, served by bevy_remote with its JSON params.
    Remote { method: String, params: Option<Value> },
}

impl Call {
    /// The JSON-RPC method name.
    pub fn method(&self) -> &str {
        match self {
            Call::Join { watch: true, .. } => METHOD_JOIN_WATCH,
            Call::Join { watch: false, .. } => METHOD_JOIN,
            Call::Remote { method, .. } => method,
        }
    }

    /// Whether `result` is the call's last answer: a join's terminal message, the single
    /// answer of a plain method; a watching BRP method (`…+watch`) never ends by itself.
    pub fn is_last(&self, result: &BrpResult) -> bool {
        match self {
            Call::Join { .. } => is_terminal_join_result(result),
            Call::Remote { method, .. } => !method.contains("+watch"),
        }
    }
}

/// Serves calls this replica does not own: implemented by the cross-replica relay.
pub trait Forwarder: Send + Sync + 'static {
    /// Whether this replica serves calls itself now (it owns the namespace).
    fn serves_here(&self) -> bool;
    /// Sends `call` to the owner and relays its answers into `answers` until the last one,
    /// `until` at the latest; `router` serves it here if this replica becomes the owner
    /// meanwhile.
    fn forward(&self, router: CallRouter, call: Call, answers: async_channel::Sender<BrpResult>, until: Instant);
}

/// The forwarder of this replica, when it shares its namespace with others.
#[derive(Resource, Clone)]
pub struct CallForwarder(pub Arc<dyn Forwarder>);

/// Where a transport sends a call (see the module docs).
#[derive(Clone)]
pub struct CallRouter {
    remote: async_channel::Sender<BrpMessage>,
    joins: JoinDesk,
    waker: AppWaker,
    forwarder: Option<Arc<dyn Forwarder>>,
}

impl CallRouter {
    /// A router into this app's `remote` channel and join desk, forwarding through
    /// `forwarder` while this replica is not the owner (`None`: every call is served here).
    pub fn new(
        remote: async_channel::Sender<BrpMessage>,
        joins: JoinDesk,
        waker: AppWaker,
        forwarder: Option<Arc<dyn Forwarder>>,
    ) -> Self {
        Self { remote, joins, waker, forwarder }
    }

    /// Sends a call on its way; its answers arrive on the returned channel, which closes after
    /// the last. `None`: this replica cannot take the call now (its mailbox stayed full).
    /// `deadline` bounds how long a forwarded call is tried.
    pub async fn dispatch(&self, call: Call, deadline: Duration) -> Option<async_channel::Receiver<BrpResult>> {
        match &self.forwarder {
            Some(forwarder) if !forwarder.serves_here() => {
                let (tx, rx) = async_channel::bounded(ANSWERS_PER_CALL);
                forwarder.forward(self.clone(), call, tx, Instant::now() + deadline);
                Some(rx)
            }
            _ => self.serve_here(call).await,
        }
    }

    /// Puts a call into this replica's join desk (joins) or bevy_remote channel (the rest).
    pub async fn serve_here(&self, call: Call) -> Option<async_channel::Receiver<BrpResult>> {
        let rx = match call {
            Call::Join { call, .. } => self.joins.submit(*call, QUEUE_WAIT).await.ok()?,
            Call::Remote { method, params } => {
                let (tx, rx) = async_channel::bounded(ANSWERS_PER_CALL);
                let message = BrpMessage { method, params, sender: tx };
                let queued = tokio::time::timeout(QUEUE_WAIT, self.remote.send(message)).await;
                if !matches!(queued, Ok(Ok(()))) {
                    return None;
                }
                rx
            }
        };
        self.waker.wake();
        Some(rx)
    }
}

#[cfg(test)]
mod tests {
    use bevygap_shared::protocol::{ErrorCode, JoinRequest};
    use serde_json::json;

    use super::*;
    use crate::calls::envelope::code_error;
    use crate::calls::params::Caller;

    /// A join call for `demo:1.0` from `ip`.
    fn join(watch: bool, ip: &str) -> Call {
        let call =
            JoinCall { caller: Caller { ip: ip.parse().expect("literal") }, request: JoinRequest::new("demo", "1.0") };
        Call::Join { watch, call: Box::new(call) }
    }

    #[test]
    fn joins_end_on_their_terminal_answer_and_plain_methods_on_their_first() {
        let join = join(true, "192.0.2.1");
        assert_eq!(join.method(), METHOD_JOIN_WATCH);
        assert!(!join.is_last(&Ok(json!({"status": "queued"}))));
        assert!(join.is_last(&Ok(json!({"status": "ready"}))));
        assert!(join.is_last(&Err(code_error(ErrorCode::Timeout))));
        let servers = Call::Remote { method: "admin.servers".into(), params: None };
        assert!(servers.is_last(&Ok(json!([]))));
        let watch = Call::Remote { method: "world.get_components+watch".into(), params: None };
        assert!(!watch.is_last(&Ok(json!({}))));
    }

    #[test]
    fn a_call_round_trips_as_json_for_the_relay() {
        let call = join(false, "2001:db8::1");
        let text = serde_json::to_string(&call).expect("encodes");
        assert_eq!(serde_json::from_str::<Call>(&text).expect("decodes"), call);
    }
}
