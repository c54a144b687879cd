//! How join calls reach the ECS: a channel of typed calls, each carrying the channel its
//! answers go back on. The app drains it once per tick and pushes each join's progress to its
//! streams when the progress changes.
//!
//! Joins used to be bevy_remote watching methods. bevy_remote runs every watching handler again
//! on every tick until its stream is dropped, so N players waiting cost N handler runs (and N
//! params decodes) per tick, and each tick delivered at most one message per stream. With this
//! desk a waiting join costs nothing until it has news. bevy_remote still serves everything
//! else (cancel, the admin methods and the built-in BRP methods).

use bevy::prelude::*;
use bevy_remote::BrpResult;

use super::envelope::code_error;
use super::params::JoinCall;
use bevygap_shared::protocol::ErrorCode;

/// Calls that may wait to be taken (the app takes them all on every tick); a front waits
/// briefly for room beyond this. The buffer is allocated up front.
const CAPACITY: usize = 4_096;
/// Answers one stream may have waiting to be sent: more than a join ever publishes (queued,
/// then finding a server and a server starting for each of up to four servers, then its
/// answer), so a stream whose reader lags never loses its last message. Kept small: the
/// channel's buffer is allocated up front for every waiting player.
const ANSWERS_PER_STREAM: usize = 12;

/// One join call and where its answers go; the channel closes after the last answer.
pub struct JoinTicket {
    pub call: JoinCall,
    pub answers: async_channel::Sender<BrpResult>,
}

/// The channel join calls take into the app (shared by both endpoints and by calls forwarded
/// from other replicas).
#[derive(Resource, Clone)]
pub struct JoinDesk {
    sender: async_channel::Sender<JoinTicket>,
    receiver: async_channel::Receiver<JoinTicket>,
}

impl Default for JoinDesk {
    fn default() -> Self {
        let (sender, receiver) = async_channel::bounded(CAPACITY);
        Self { sender, receiver }
    }
}

/// Why a call did not reach the desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeskError {
    /// The desk stayed full for longer than the caller would wait.
    #[error("the matchmaker is too busy to take the join")]
    Busy,
}

impl JoinDesk {
    /// Hands a join call to the app.
    pub async fn submit(
        &self,
        call: JoinCall,
        wait: std::time::Duration,
    ) -> Result<async_channel::Receiver<BrpResult>, DeskError> {
        let (answers, rx) = async_channel::bounded(ANSWERS_PER_STREAM);
        match tokio::time::timeout(wait, self.sender.send(JoinTicket { call, answers })).await {
            Ok(Ok(())) => Ok(rx),
            _ => Err(DeskError::Busy),
        }
    }

    /// The next call waiting, if any.
    pub fn take(&self) -> Option<JoinTicket> {
        self.receiver.try_recv().ok()
    }

    /// Whether no call is waiting.
    pub fn is_empty(&self) -> bool {
        self.receiver.is_empty()
    }
}

/// Answers every waiting call with `unavailable`: a replica that is not the owner does not
/// place joins (its fronts forward them; this catches calls taken as the lease was lost).
pub fn refuse_join_calls_while_standby(desk: Res<JoinDesk>) {
    while let Some(ticket) = desk.take() {
        let _ = ticket.answers.try_send(Err(code_error(ErrorCode::Unavailable)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_desk_reports_busy_after_the_wait() {
        let desk = JoinDesk::default();
        let call = JoinCall {
            caller: crate::calls::params::Caller { ip: "192.0.2.1".parse().expect("literal") },
            request: bevygap_shared::protocol::JoinRequest::new("demo", "1.0"),
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
        let mut kept = Vec::new();
        for _ in 0..CAPACITY {
            kept.push(runtime.block_on(desk.submit(call.clone(), std::time::Duration::ZERO)).expect("room"));
        }
        let full = runtime.block_on(desk.submit(call.clone(), std::time::Duration::from_millis(5)));
        assert_eq!(full.err(), Some(DeskError::Busy));
        assert!(desk.take().is_some_and(|t| t.call == call));
    }
}
