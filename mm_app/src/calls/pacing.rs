//! The answers of one call as a transport relays them: each answer, a keep-alive while none
//! comes, and an optional deadline. Shared by the HTTP front (server-sent events) and the
//! owner relaying a forwarded call over NATS.

use std::time::Duration;

use bevy_remote::BrpResult;
use futures::Stream;

/// What a relay sends next.
#[derive(Debug)]
pub enum Paced {
    /// An answer of the call.
    Answer(BrpResult),
    /// Nothing came for a keep-alive period.
    KeepAlive,
    /// The deadline passed; the stream ends after this.
    Deadline,
}

/// The answers on `rx` paced with a [`Paced::KeepAlive`] every `every` and, if given, a
/// [`Paced::Deadline`] once `deadline` has passed. Ends when `rx` closes or after the
/// deadline. Must be polled within the tokio runtime.
pub fn paced(
    rx: async_channel::Receiver<BrpResult>,
    every: Duration,
    deadline: Option<Duration>,
) -> impl Stream<Item = Paced> {
    let start = tokio::time::Instant::now();
    let tick = tokio::time::interval_at(start + every, every);
    let end = deadline.map(|d| Box::pin(tokio::time::sleep_until(start + d)));
    futures::stream::unfold(Some((rx, tick, end)), |state| async move {
        let (rx, mut tick, mut end) = state?;
        let ends = async {
            match end.as_mut() {
                Some(end) => end.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = rx.recv() => result.ok().map(|r| (Paced::Answer(r), Some((rx, tick, end)))),
            _ = tick.tick() => Some((Paced::KeepAlive, Some((rx, tick, end)))),
            () = ends => Some((Paced::Deadline, None)),
        }
    })
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn answers_come_paced_with_keepalives_until_the_deadline() {
        let (tx, rx) = async_channel::bounded(4);
        tx.send(Ok(json!(1))).await.expect("open");
        let events: Vec<Paced> = paced(rx, Duration::from_millis(20), Some(Duration::from_millis(200))).collect().await;
        let (first, rest) = events.split_first().expect("events");
        let (last, between) = rest.split_last().expect("more events");
        assert!(matches!(first, Paced::Answer(Ok(_))) && matches!(last, Paced::Deadline), "{events:?}");
        assert!(!between.is_empty() && between.iter().all(|e| matches!(e, Paced::KeepAlive)), "{events:?}");
        drop(tx);
    }

    #[tokio::test]
    async fn without_a_deadline_it_ends_when_the_answers_end() {
        let (tx, rx) = async_channel::bounded(4);
        tx.send(Ok(json!(1))).await.expect("open");
        drop(tx);
        let events: Vec<Paced> = paced(rx, Duration::from_secs(60), None).collect().await;
        assert!(matches!(events.as_slice(), [Paced::Answer(Ok(_))]), "{events:?}");
    }
}
