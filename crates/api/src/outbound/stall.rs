//! Stall detection, the slow-consumer policy's test: has the socket taken
//! nothing for the send timeout while frames waited for it?
//!
//! Two things can wait: a queued reply (the [queue](super::queue) knows since
//! when), and live points of any followed asset the hub has numbered and the
//! client was not given
//! (they wait in the relay, not here, so two checks a timeout apart must both
//! find them with no slice taken between). The session asks at
//! [`Outbound::next_check`] and closes a stalled connection (1008 "slow
//! consumer"); this file only answers.

use std::{cell::Cell, time::Duration};

use tokio::time::Instant;

use super::Outbound;

/// Live points found waiting at a check: when, and what the body had taken by
/// then. If a later check finds points still waiting and nothing taken since,
/// the client has not read for that long.
#[derive(Default)]
pub(super) struct PointsWaiting(Cell<Option<(Instant, Instant)>>);

impl Outbound {
    /// Whether the socket has taken nothing for `timeout` while frames waited:
    /// a queued reply that old, or live points the hub has and the client was
    /// not given, found at two checks `timeout` apart with nothing taken between
    /// them (a point published a moment before a check is not a stall).
    pub fn stalled(&self, timeout: Duration) -> bool {
        let now = Instant::now();
        let state = self.shared.state.borrow();
        if state
            .queue
            .waiting_since()
            .is_some_and(|since| now.saturating_duration_since(since) >= timeout)
        {
            return true;
        }
        // Points wait when the hub numbered more of a followed asset than the
        // client was given.
        let points_wait = state
            .live
            .iter()
            .any(|live| self.shared.hub.seq(live.asset) > Some(live.seq));
        let waiting = &self.points_waiting.0;
        match (points_wait, waiting.get()) {
            (false, _) => {
                waiting.set(None);
                false
            }
            (true, Some((since, taken))) if taken == state.last_taken => {
                now.saturating_duration_since(since) >= timeout
            }
            (true, _) => {
                waiting.set(Some((now, state.last_taken)));
                false
            }
        }
    }

    /// When to check [`stalled`](Self::stalled) next: while the connection
    /// follows an asset or has replies queued; `None` when nothing can wait.
    pub fn next_check(&self, timeout: Duration) -> Option<Instant> {
        let state = self.shared.state.borrow();
        let reply = state.queue.waiting_since().map(|since| since + timeout);
        let points = (!state.live.is_empty()).then(|| match self.points_waiting.0.get() {
            Some((since, _)) => since + timeout,
            None => Instant::now() + timeout,
        });
        match (reply, points) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use bytes::Bytes;

    use super::{
        super::{CHUNK, testing::*},
        *,
    };

    #[tokio::test(start_paused = true)]
    async fn each_slice_taken_is_progress_and_the_rest_of_a_frame_can_stall() {
        let timeout = Duration::from_secs(10);
        let outbound = Outbound::new(1 << 20, hub());
        let mut body = outbound.body();
        outbound
            .push(Bytes::from(vec![0u8; 4 * CHUNK]))
            .expect("open");
        for _ in 0..3 {
            tokio::time::advance(timeout / 2).await;
            assert!(matches!(poll(&mut body), Poll::Ready(Some(_))));
            assert!(
                !outbound.stalled(timeout),
                "a slow reader, not a stalled one"
            );
        }
        tokio::time::advance(timeout).await;
        assert!(
            outbound.stalled(timeout),
            "the frame's last slice waited the whole timeout"
        );
        assert!(matches!(poll(&mut body), Poll::Ready(Some(_))));
        assert_eq!(outbound.waiting_since(), None, "nothing left waits");
    }

    #[tokio::test]
    async fn a_subscriber_with_every_point_is_not_stalled_after_the_window_empties() {
        let hub = hub();
        hub.apply(&point(NOW - 5), NOW);
        let (outbound, mut body) = subscribed(&hub);
        hub.apply(&point(NOW), NOW);
        assert_eq!(drain(&mut body).len(), 2, "the history and the point");
        // An hour later every point has expired; nothing new arrived.
        hub.evict_expired(NOW + 3600);
        assert_eq!(hub.window_sizes(NOW), vec![0]);
        assert!(!outbound.stalled(Duration::ZERO));
        assert!(!outbound.stalled(Duration::ZERO), "nothing waits for it");
        // Nor is one that subscribes to the empty window then.
        let (late, mut late_body) = subscribed(&hub);
        assert_eq!(drain(&mut late_body).len(), 1, "an empty history");
        assert!(!late.stalled(Duration::ZERO));
        assert!(!late.stalled(Duration::ZERO), "nothing waits for it");
    }
}
