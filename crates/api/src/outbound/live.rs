//! The live subscription: one asset's points, taken from the worker's relay a
//! point at a time when the body asks for one, and after a gap the catch-up from
//! the hub's window, a chunk at a time.
//!
//! This file is the subscriber's side of [the sequence
//! invariant](crate::hub#the-sequence-invariant): it keeps the client's `seq`
//! and `last_time` and acts on each received point's number. It does not decide
//! when a point is written (the [body](super::body) asks only when the reply
//! queue is empty and the socket has room), nor whether a client that does not
//! take them is stalled ([`super::stall`]).

use std::{
    collections::VecDeque,
    task::{Context, Poll},
};

use bytes::Bytes;
use ratecast_core::AssetId;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::ReusableBoxFuture;

use super::{Gone, Outbound};
use crate::{
    hub::{Hub, Subscribed, Subscription},
    wire::PointBytes,
};

/// Points a lagging subscriber takes from the hub's window at a time: catching
/// up a 15-minute backlog holds this many handles per subscriber, not 900.
const CATCH_UP_CHUNK: usize = 64;

/// A receiver of the hub's point frames, polled from `poll_next`.
struct LivePoints {
    /// The pending `recv`, kept across polls so the broadcast keeps our waker.
    next: ReusableBoxFuture<
        'static,
        (
            Result<PointBytes, RecvError>,
            broadcast::Receiver<PointBytes>,
        ),
    >,
}

async fn receive(
    mut points: broadcast::Receiver<PointBytes>,
) -> (
    Result<PointBytes, RecvError>,
    broadcast::Receiver<PointBytes>,
) {
    let received = points.recv().await;
    (received, points)
}

impl LivePoints {
    fn new(points: broadcast::Receiver<PointBytes>) -> Self {
        Self {
            next: ReusableBoxFuture::new(receive(points)),
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<PointBytes, RecvError>> {
        let (received, points) = std::task::ready!(self.next.poll(cx));
        self.next.set(receive(points));
        Poll::Ready(received)
    }
}

/// The subscription the body delivers.
pub(super) struct Live {
    pub(super) asset: AssetId,
    points: LivePoints,
    /// The newest time the client has (the subscriber's `last_time`).
    last_time: Option<i64>,
    /// The number of the last point the client has (the subscriber's `seq`).
    pub(super) seq: u64,
    /// Catching up from the hub's window after a gap, a chunk at a time.
    catching_up: bool,
    /// The current catch-up chunk, at most [`CATCH_UP_CHUNK`] points.
    backlog: VecDeque<PointBytes>,
    /// Counts this subscriber in `ratecast_ws_subscriptions` while it lasts.
    _counted: Subscribed,
}

impl Outbound {
    /// Replaces the subscription: `sub.history` is queued and the points
    /// `points` receives follow it, as [the sequence
    /// invariant](crate::hub#the-sequence-invariant) says (so `points` must
    /// have been subscribed before the history was taken). Nothing of the
    /// previous subscription is sent after the history.
    pub fn subscribe(
        &self,
        asset: AssetId,
        points: broadcast::Receiver<PointBytes>,
        sub: Subscription,
    ) -> Result<(), Gone> {
        self.update(|state| {
            state.queue.push(sub.history);
            state.live = Some(Live {
                asset,
                points: LivePoints::new(points),
                last_time: sub.last_time,
                seq: sub.seq,
                catching_up: false,
                backlog: VecDeque::new(),
                _counted: sub.counted,
            });
        })
    }

    /// Ends the subscription and queues `reply`; returns the asset that was
    /// followed. No point follows `reply`.
    pub fn unsubscribe(&self, reply: impl FnOnce(Option<AssetId>) -> Bytes) -> Result<(), Gone> {
        self.update(|state| {
            let was = state.live.take().map(|live| live.asset);
            state.queue.push(reply(was));
        })
    }
}

/// The subscription's next point for the client; after a gap, the missed
/// points from the hub's window, a chunk at a time. `None` when none is ready
/// (the relay will wake `cx`) or there is no subscription.
pub(super) fn next_point(
    subscription: &mut Option<Live>,
    hub: &Hub,
    cx: &mut Context<'_>,
) -> Option<Bytes> {
    let live = subscription.as_mut()?;
    loop {
        if let Some(point) = live.backlog.pop_front() {
            live.last_time = Some(point.time);
            if live.backlog.is_empty() && !live.catching_up {
                // Give back the chunk's room: most connections never lag again.
                live.backlog = VecDeque::new();
            }
            return Some(point.frame);
        }
        if live.catching_up {
            let chunk = hub.catch_up(live.asset, live.last_time, CATCH_UP_CHUNK)?;
            crate::metrics::lag_catch_up_points(chunk.frames.len());
            live.backlog.extend(chunk.frames);
            if let Some(seq) = chunk.done_at {
                live.seq = seq;
                live.catching_up = false;
                if live.backlog.is_empty() {
                    // Give back the chunk's room: most connections never lag again.
                    live.backlog = VecDeque::new();
                }
            }
            continue;
        }
        match live.points.poll(cx) {
            Poll::Pending => return None,
            Poll::Ready(Ok(point)) if point.seq <= live.seq => {}
            Poll::Ready(Ok(point)) if point.seq == live.seq + 1 => {
                live.seq = point.seq;
                // Live points only move forward, whatever a history held.
                if live.last_time.is_none_or(|last| point.time > last) {
                    live.last_time = Some(point.time);
                    return Some(point.frame);
                }
            }
            // A point was skipped on the way (a ring overflowed).
            Poll::Ready(Ok(_)) | Poll::Ready(Err(RecvError::Lagged(_))) => {
                crate::metrics::lag_catch_up_started();
                live.catching_up = true;
            }
            // The hub never drops its senders while serving.
            Poll::Ready(Err(RecvError::Closed)) => {
                *subscription = None;
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{super::testing::*, *};
    use crate::hub::POINT_BUFFER;

    #[tokio::test]
    async fn live_points_follow_the_history_and_only_move_forward() {
        let hub = hub();
        hub.apply(&point(NOW - 2), NOW);
        let (outbound, mut body) = subscribed(&hub);
        hub.apply(&point(NOW - 1), NOW);
        hub.apply(&point(NOW - 3), NOW); // late: never pushed
        hub.apply(&point(NOW), NOW);
        let out = drain(&mut body);
        assert_eq!(out.len(), 3, "the history, then two points");
        assert_eq!(times(&out), vec![NOW - 1, NOW]);
        assert!(
            !outbound.stalled(Duration::ZERO),
            "the client has the newest point"
        );
    }

    #[tokio::test]
    async fn a_subscriber_that_lagged_catches_up_from_the_window_once_and_in_order() {
        let hub = hub();
        hub.apply(&point(NOW - 500), NOW);
        let (outbound, mut body) = subscribed(&hub);
        assert_eq!(drain(&mut body).len(), 1, "the history");
        let burst = POINT_BUFFER as i64 * 3;
        for t in NOW - burst..NOW {
            hub.apply(&point(t), NOW);
        }
        // The socket took nothing while the burst came: points wait, seen at a
        // first check; a second check with nothing taken between is a stall.
        assert!(!outbound.stalled(Duration::ZERO));
        assert!(outbound.stalled(Duration::ZERO));
        let out = drain(&mut body);
        assert!(!outbound.stalled(Duration::ZERO), "it took them: no stall");
        assert_eq!(times(&out), (NOW - burst..NOW).collect::<Vec<_>>());
        hub.apply(&point(NOW), NOW);
        assert_eq!(times(&drain(&mut body)), vec![NOW]);
    }

    #[tokio::test]
    async fn a_gap_in_the_sequence_numbers_is_filled_from_the_window() {
        let hub = hub();
        hub.apply(&point(NOW - 10), NOW);
        let outbound = Outbound::new(1 << 20, hub.clone());
        let mut body = outbound.body();
        let sub = hub.subscribe(AssetId(1), NOW, None).expect("asset");
        hub.apply(&point(NOW - 9), NOW);
        // A receiver that joined late, as a relay that skipped a point.
        let late = hub.points(AssetId(1)).expect("asset");
        hub.apply(&point(NOW - 8), NOW);
        outbound.subscribe(AssetId(1), late, sub).expect("open");
        assert_eq!(times(&drain(&mut body)), vec![NOW - 9, NOW - 8]);
        hub.apply(&point(NOW - 7), NOW);
        assert_eq!(times(&drain(&mut body)), vec![NOW - 7], "then live again");
    }

    #[tokio::test]
    async fn unsubscribing_stops_the_points_after_the_reply() {
        let hub = hub();
        let (outbound, mut body) = subscribed(&hub);
        hub.apply(&point(NOW), NOW);
        outbound
            .unsubscribe(|was| {
                assert_eq!(was, Some(AssetId(1)));
                Bytes::from_static(b"bye")
            })
            .expect("open");
        hub.apply(&point(NOW + 1), NOW + 1);
        let out = drain(&mut body);
        assert_eq!(
            &out[1][..],
            b"bye",
            "the reply before anything queued later"
        );
        assert_eq!(out.len(), 2, "history, reply; no point after unsubscribing");
    }
}
