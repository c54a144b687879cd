//! Calls a standby receives are served by the owner: the standby publishes the call on the
//! namespace's calls subject with a reply inbox; the owner (the only replica subscribed that
//! answers) runs it through its own join desk or bevy_remote channel and relays every answer
//! back, with a keep-alive each second, until the last one.
//!
//! 1. **Forward.** The standby publishes the [`Call`] and waits up to a second for
//!    [`Relay::Accepted`]; silence means no owner yet (a take-over in progress): it tries
//!    again, until the call's deadline.
//! 2. **Relay.** The owner sends [`Relay::Result`] for each answer and [`Relay::Alive`]
//!    every second, and [`Relay::End`] after the last one.
//! 3. **Fail over.** Three seconds without a word mean the owner died: the standby sends the
//!    same call again, and the next owner takes it up. A join carries its request id, so the
//!    player's stream goes on as one join (placed again by the new owner).
//! 4. **Become the owner.** If this replica took the lease meanwhile, the call is served
//!    here.
//!
//! The owner trusts what a forwarded call says of its caller (address, parsed params):
//! only matchmaker users may publish on the calls subject (see `assets/nats/bevygap.conf`),
//! and the forwarding replica's front applied the same policy the owner's would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bevy_remote::{BrpError, BrpResult};
use bevygap_shared::protocol::ErrorCode;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::calls::envelope::code_error;
use crate::calls::pacing::{Paced, paced};
use crate::calls::{Call, CallRouter, Forwarder};
use crate::fence::LeaseHold;

/// How long a forwarder waits for the owner to accept a call.
const ACCEPT_WAIT: Duration = Duration::from_secs(1);
/// How long the owner may stay silent before the forwarder takes it for dead.
const OWNER_SILENCE: Duration = Duration::from_secs(3);
/// How often the owner says it is still working on a call.
const ALIVE_EVERY: Duration = Duration::from_secs(1);

/// What the owner sends back on the reply inbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "relay", rename_all = "snake_case")]
pub enum Relay {
    Accepted,
    Alive,
    Result { result: Result<Value, BrpError> },
    End,
}

/// What forwarding needs: the NATS client, the calls subject and this replica's lease.
#[derive(bevy::prelude::Resource, Clone)]
pub struct Forwarding {
    pub client: async_nats::Client,
    pub subject: String,
    pub hold: Arc<LeaseHold>,
}

impl Forwarder for Forwarding {
    fn serves_here(&self) -> bool {
        self.hold.acting()
    }

    fn forward(&self, router: CallRouter, call: Call, answers: async_channel::Sender<BrpResult>, until: Instant) {
        tokio::spawn(forward_call(router, self.clone(), call, answers, until));
    }
}

/// The forwarder's side of one call (see the module docs).
async fn forward_call(
    router: CallRouter,
    forward: Forwarding,
    call: Call,
    tx: async_channel::Sender<BrpResult>,
    until: Instant,
) {
    let Ok(payload) = serde_json::to_vec(&call) else { return };
    while Instant::now() < until && !tx.is_closed() {
        if forward.hold.acting() {
            // This replica took the lease meanwhile: serve the call here.
            if let Some(rx) = router.serve_here(call).await {
                while let Ok(result) = rx.recv().await {
                    if tx.send(result).await.is_err() {
                        return;
                    }
                }
            }
            return;
        }
        // A one-shot call ends with its first answer; only joins and watches can go silent
        // after one, and both may be sent again (a join resumes by its request id).
        if relay_once(&forward, &call, payload.clone(), &tx).await == Attempt::Done {
            return;
        }
        tracing::debug!(method = call.method(), "no answer from the owner; trying again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[derive(PartialEq, Eq)]
enum Attempt {
    /// The call got its last answer, or its caller left.
    Done,
    /// The owner did not accept it, or went silent.
    OwnerSilent,
}

async fn relay_once(
    forward: &Forwarding,
    call: &Call,
    payload: Vec<u8>,
    tx: &async_channel::Sender<BrpResult>,
) -> Attempt {
    let inbox = forward.client.new_inbox();
    let Ok(mut replies) = forward.client.subscribe(inbox.clone()).await else { return Attempt::OwnerSilent };
    if forward.client.publish_with_reply(forward.subject.clone(), inbox, payload.into()).await.is_err() {
        return Attempt::OwnerSilent;
    }
    let mut wait = ACCEPT_WAIT;
    loop {
        let Ok(Some(message)) = tokio::time::timeout(wait, replies.next()).await else {
            return Attempt::OwnerSilent;
        };
        if message.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            // Nobody is subscribed: no replica owns the namespace at this moment.
            return Attempt::OwnerSilent;
        }
        wait = OWNER_SILENCE;
        match serde_json::from_slice::<Relay>(&message.payload) {
            Ok(Relay::Accepted | Relay::Alive) => {}
            Ok(Relay::Result { result }) => {
                let last = call.is_last(&result);
                if tx.send(result).await.is_err() || last {
                    return Attempt::Done;
                }
            }
            Ok(Relay::End) => return Attempt::Done,
            Err(e) => tracing::warn!("an undecodable answer from the owner was ignored: {e}"),
        }
    }
}

/// The owner's side: answers the calls other replicas forward, for as long as this replica
/// owns the namespace (a replica that lost it stays silent, so forwarders go elsewhere).
pub async fn serve_forwarded_calls(router: CallRouter, forward: Forwarding, deadline: Duration) {
    let mut calls = loop {
        match forward.client.subscribe(forward.subject.clone()).await {
            Ok(calls) => break calls,
            Err(e) => {
                tracing::warn!("cannot subscribe to forwarded calls: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    while let Some(message) = calls.next().await {
        if !forward.hold.acting() {
            continue;
        }
        let Some(reply) = message.reply else { continue };
        let client = forward.client.clone();
        match serde_json::from_slice::<Call>(&message.payload) {
            Ok(call) => {
                tokio::spawn(relay_answers(router.clone(), forward.clone(), call, reply.to_string(), deadline));
            }
            Err(e) => {
                tracing::warn!("a malformed forwarded call was refused: {e}");
                let refused = Relay::Result { result: Err(code_error(ErrorCode::InvalidRequest)) };
                publish(&client, &reply, &refused).await;
                publish(&client, &reply, &Relay::End).await;
            }
        }
    }
}

/// Runs one forwarded call here and relays its answers.
async fn relay_answers(router: CallRouter, forward: Forwarding, call: Call, reply: String, deadline: Duration) {
    let client = &forward.client;
    let Some(rx) = router.serve_here(call.clone()).await else {
        let busy = Relay::Result { result: Err(code_error(ErrorCode::Unavailable)) };
        publish(client, &reply, &busy).await;
        publish(client, &reply, &Relay::End).await;
        return;
    };
    publish(client, &reply, &Relay::Accepted).await;
    let mut events = std::pin::pin!(paced(rx, ALIVE_EVERY, Some(deadline)));
    while let Some(event) = events.next().await {
        match event {
            Paced::Answer(result) => {
                let last = call.is_last(&result);
                publish(client, &reply, &Relay::Result { result }).await;
                if last {
                    break;
                }
            }
            // No longer the owner: go silent, the forwarder tries the next one.
            Paced::KeepAlive if !forward.hold.acting() => return,
            Paced::KeepAlive => publish(client, &reply, &Relay::Alive).await,
            Paced::Deadline => break,
        }
    }
    publish(client, &reply, &Relay::End).await;
}

async fn publish(client: &async_nats::Client, subject: &str, relay: &Relay) {
    let Ok(bytes) = serde_json::to_vec(relay) else { return };
    if let Err(e) = client.publish(subject.to_string(), bytes.into()).await {
        tracing::debug!("cannot relay an answer: {e}");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn relays_round_trip() {
        let result = Relay::Result { result: Ok(json!({"status": "queued"})) };
        let text = serde_json::to_string(&result).expect("encodes");
        assert!(
            matches!(serde_json::from_str::<Relay>(&text), Ok(Relay::Result { result: Ok(v) }) if v["status"] == "queued")
        );
        let refused = Relay::Result { result: Err(code_error(ErrorCode::Unavailable)) };
        let text = serde_json::to_string(&refused).expect("encodes");
        assert!(
            matches!(serde_json::from_str::<Relay>(&text), Ok(Relay::Result { result: Err(e) }) if e.data.is_some())
        );
    }
}
