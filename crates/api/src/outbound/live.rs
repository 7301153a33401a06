//! The live subscriptions: each followed asset's points, taken from the
//! worker's relay a point at a time when the body asks for one, and after a gap
//! the catch-up from the hub's window, a chunk at a time.
//!
//! A connection follows a few assets (at most the tracked ones, each once): one
//! small [`Live`] per asset in a `Vec`, nothing allocated per asset it does not
//! follow. The body asks the followed assets in turn, one point each, so a
//! catch-up of one does not hold back the others' live points.
//!
//! This file is the subscriber's side of [the sequence
//! invariant](crate::hub#the-sequence-invariant), per asset: each [`Live`]
//! keeps the client's `seq` and `last_time` of its asset and acts on each
//! received point's number. It does not decide
//! when a point is written (the [body](super::body) asks only when the reply
//! queue is empty and the socket has room), nor whether a client that does not
//! take them is stalled ([`super::stall`]).

use std::{
    collections::VecDeque,
    task::{Context, Poll},
};

use bytes::Bytes;
use ratecast_core::{AssetId, Candle, protocol::candle_frame};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::ReusableBoxFuture;

use super::{Gone, Outbound, State, candle::CandleFold};
use crate::{
    hub::{Hub, Subscribed, Subscription},
    wire::{self, PointBytes},
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

/// One followed asset's subscription, which the body delivers.
pub(super) struct Live {
    pub(super) asset: AssetId,
    points: LivePoints,
    /// The newest time the client has (the subscriber's `last_time`).
    pub(super) last_time: Option<i64>,
    /// The number of the last point the client has (the subscriber's `seq`).
    pub(super) seq: u64,
    /// Catching up from the hub's window after a gap, a chunk at a time.
    catching_up: bool,
    /// The current catch-up chunk, at most [`CATCH_UP_CHUNK`] points.
    backlog: VecDeque<PointBytes>,
    /// The hub closed this asset's points: the subscription is dropped.
    ended: bool,
    /// Followed as candles: the points fold into them and candles are sent
    /// instead (boxed: most subscriptions follow points).
    candles: Option<Box<LiveCandles>>,
    /// Counts this subscriber in `ratecast_ws_subscriptions` while it lasts.
    _counted: Subscribed,
}

/// A subscription's candles: the fold and a frame waiting behind the closed
/// candle that a point of a later interval produced.
struct LiveCandles {
    fold: CandleFold,
    next: Option<Bytes>,
}

/// A followed asset's receiver of points (its worker's relay's, taken before
/// its history) and its subscription from the hub: what
/// [`Outbound::subscribe`] and [`Outbound::add`] start from.
pub struct Joined {
    pub points: broadcast::Receiver<PointBytes>,
    pub sub: Subscription,
    /// Followed as candles ([`super::candle`]): `sub.history` is then its
    /// `candle_history` and its points after `sub.last_time` fold into this.
    pub candles: Option<CandleFold>,
}

impl Joined {
    /// Queues the history; returns the subscription whose points follow it, as
    /// [the sequence invariant](crate::hub#the-sequence-invariant) says (so
    /// `points` must have been subscribed before the history was taken).
    fn start(self, state: &mut State) -> Live {
        let Self {
            points,
            sub,
            candles,
        } = self;
        // An SSE stream without a history starts with none.
        if !sub.history.is_empty() {
            state.queue.push(sub.history);
        }
        Live {
            asset: sub.asset.id,
            points: LivePoints::new(points),
            last_time: sub.last_time,
            seq: sub.seq,
            catching_up: false,
            backlog: VecDeque::new(),
            ended: false,
            candles: candles.map(|fold| Box::new(LiveCandles { fold, next: None })),
            _counted: sub.counted,
        }
    }
}

impl Outbound {
    /// Replaces what the connection follows by exactly `joined`, in that
    /// order: each history is queued and that asset's points follow it.
    /// Nothing of a previous subscription is sent after the first history.
    pub fn subscribe(&self, joined: Vec<Joined>) -> Result<(), Gone> {
        self.update(|state| {
            state.live = joined.into_iter().map(|j| j.start(state)).collect();
        })
    }

    /// Follows `joined`'s asset as well, the others untouched: its history is
    /// queued and its points follow it. An asset already followed starts over
    /// from this history (nothing of its previous subscription follows it).
    pub fn add(&self, joined: Joined) -> Result<(), Gone> {
        self.update(|state| {
            let live = joined.start(state);
            match state.live.iter_mut().find(|l| l.asset == live.asset) {
                Some(old) => *old = live,
                None => state.live.push(live),
            }
        })
    }

    /// Stops following `asset` and queues `reply` (given the assets that
    /// stopped: `asset`, or none if it was not followed). No point of it
    /// follows `reply`.
    pub fn remove(
        &self,
        asset: AssetId,
        reply: impl FnOnce(&[AssetId]) -> Bytes,
    ) -> Result<(), Gone> {
        self.update(|state| {
            let before = state.live.len();
            state.live.retain(|live| live.asset != asset);
            let stopped: &[AssetId] = if state.live.len() < before {
                &[asset]
            } else {
                &[]
            };
            state.queue.push(reply(stopped));
        })
    }

    /// Ends every subscription and queues `reply` (given the assets that were
    /// followed, in order). No point follows `reply`.
    pub fn unsubscribe(&self, reply: impl FnOnce(&[AssetId]) -> Bytes) -> Result<(), Gone> {
        self.update(|state| {
            let was: Vec<AssetId> = state.live.drain(..).map(|live| live.asset).collect();
            state.live = Vec::new();
            state.queue.push(reply(&was));
        })
    }

    /// Wakes the body if a followed asset's running candle waits to be closed:
    /// the body then asks the clock ([`super::candle`]). The session calls it
    /// once a second while candles are followed.
    pub fn tick_candles(&self) -> Result<(), Gone> {
        let running = {
            let state = self.shared.state.borrow();
            state.live.iter().any(|live| {
                live.candles
                    .as_ref()
                    .is_some_and(|candles| candles.fold.is_running())
            })
        };
        if running { self.update(|_| {}) } else { Ok(()) }
    }

    /// Whether an asset is followed as candles.
    pub fn follows_candles(&self) -> bool {
        let state = self.shared.state.borrow();
        state.live.iter().any(|live| live.candles.is_some())
    }

    /// The assets this connection follows, in order.
    #[cfg(test)]
    pub fn followed(&self) -> Vec<AssetId> {
        let state = self.shared.state.borrow();
        state.live.iter().map(|live| live.asset).collect()
    }
}

/// What a followed asset has for the client next.
pub(super) enum Outgoing {
    /// A point, shared by every subscriber of its asset.
    Point(PointBytes),
    /// The websocket frame of a `candle` message (an asset followed as candles).
    Candle(Bytes),
}

/// The next point for the client from the followed assets, taken in turn
/// (`turn` is the one to ask first, kept between calls): one asset's point,
/// or after a gap its missed points from the hub's window, a chunk at a time.
/// `None` when none is ready (each relay will wake `cx`) or nothing is followed.
/// The body frames it (a point's websocket frame as is, or an SSE event).
pub(super) fn next_point(
    lives: &mut Vec<Live>,
    turn: &mut usize,
    hub: &Hub,
    cx: &mut Context<'_>,
) -> Option<Outgoing> {
    let count = lives.len();
    let mut found = None;
    for step in 0..count {
        let index = (*turn + step) % count;
        if let Some(frame) = lives.get_mut(index).and_then(|live| live.next(hub, cx)) {
            *turn = (index + 1) % count;
            found = Some(frame);
            break;
        }
    }
    if lives.iter().any(|live| live.ended) {
        lives.retain(|live| !live.ended);
        *turn = 0;
    }
    found
}

impl Live {
    /// This asset's next frame for the client: its next point, or when it is
    /// followed as candles, the next candle those points make (or the clock
    /// closes, once no point waits).
    fn next(&mut self, hub: &Hub, cx: &mut Context<'_>) -> Option<Outgoing> {
        let Some(mut candles) = self.candles.take() else {
            return self.next_point(hub, cx).map(Outgoing::Point);
        };
        let frame = self.next_candle(&mut candles, hub, cx);
        self.candles = Some(candles);
        frame.map(Outgoing::Candle)
    }

    fn next_candle(
        &mut self,
        candles: &mut LiveCandles,
        hub: &Hub,
        cx: &mut Context<'_>,
    ) -> Option<Bytes> {
        let asset = self.asset;
        let interval = candles.fold.interval;
        let frame =
            |candle: &Candle| wire::text_frame(candle_frame(asset, interval, candle).as_bytes());
        loop {
            if let Some(frame) = candles.next.take() {
                return Some(frame);
            }
            let Some(point) = self.next_point(hub, cx) else {
                // No point waits: the clock may close the running candle.
                let closed = candles.fold.on_clock(hub.now_secs());
                return closed.map(|candle| frame(&candle));
            };
            match candles.fold.on_point(point.time, point.value) {
                (Some(closed), running) => {
                    candles.next = running.map(|candle| frame(&candle));
                    return Some(frame(&closed));
                }
                (None, Some(running)) => return Some(frame(&running)),
                (None, None) => {}
            }
        }
    }

    /// This asset's next point for the client; after a gap, the missed points
    /// from the hub's window, a chunk at a time. `None` when none is ready (the
    /// relay will wake `cx`) or the hub closed the asset's points (`ended`).
    fn next_point(&mut self, hub: &Hub, cx: &mut Context<'_>) -> Option<PointBytes> {
        loop {
            if let Some(point) = self.backlog.pop_front() {
                self.last_time = Some(point.time);
                if self.backlog.is_empty() && !self.catching_up {
                    // Give back the chunk's room: most connections never lag again.
                    self.backlog = VecDeque::new();
                }
                return Some(point);
            }
            if self.catching_up {
                let chunk = hub.catch_up(self.asset, self.last_time, CATCH_UP_CHUNK)?;
                crate::metrics::lag_catch_up_points(chunk.frames.len());
                self.backlog.extend(chunk.frames);
                if let Some(seq) = chunk.done_at {
                    self.seq = seq;
                    self.catching_up = false;
                    if self.backlog.is_empty() {
                        // Give back the chunk's room: most connections never lag again.
                        self.backlog = VecDeque::new();
                    }
                }
                continue;
            }
            match self.points.poll(cx) {
                Poll::Pending => return None,
                Poll::Ready(Ok(point)) if point.seq <= self.seq => {}
                Poll::Ready(Ok(point)) if point.seq == self.seq + 1 => {
                    self.seq = point.seq;
                    // Live points only move forward, whatever a history held.
                    if self.last_time.is_none_or(|last| point.time > last) {
                        self.last_time = Some(point.time);
                        return Some(point);
                    }
                }
                // A point was skipped on the way (a ring overflowed).
                Poll::Ready(Ok(_)) | Poll::Ready(Err(RecvError::Lagged(_))) => {
                    crate::metrics::lag_catch_up_started();
                    self.catching_up = true;
                }
                // The hub never drops its senders while serving.
                Poll::Ready(Err(RecvError::Closed)) => {
                    self.ended = true;
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

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
        outbound
            .subscribe(vec![Joined {
                points: late,
                sub,
                candles: None,
            }])
            .expect("open");
        assert_eq!(times(&drain(&mut body)), vec![NOW - 9, NOW - 8]);
        hub.apply(&point(NOW - 7), NOW);
        assert_eq!(times(&drain(&mut body)), vec![NOW - 7], "then live again");
    }

    #[tokio::test]
    async fn each_followed_asset_keeps_its_own_sequence_and_removing_one_leaves_the_other() {
        let hub = Arc::new(Hub::new("EURUSD,USDJPY".parse().expect("assets")));
        let jpy = |time: i64| ratecast_testkit::point(2, "USDJPY", time, 150.0);
        hub.apply(&point(NOW - 500), NOW);
        let outbound = Outbound::new(1 << 20, hub.clone());
        let mut body = outbound.body();
        outbound
            .subscribe(vec![joined(&hub, 1), joined(&hub, 2)])
            .expect("open");
        assert_eq!(drain(&mut body).len(), 2, "a history each");
        // EURUSD bursts past the point ring (a catch-up), USDJPY moves one point.
        let burst = POINT_BUFFER as i64 * 2;
        for t in NOW - burst..NOW {
            hub.apply(&point(t), NOW);
        }
        hub.apply(&jpy(NOW - 1), NOW);
        let out = drain(&mut body);
        let of = |id: u64| -> Vec<i64> {
            out.iter()
                .filter_map(|c| {
                    let json: serde_json::Value =
                        serde_json::from_slice(crate::wire::payload(c)).ok()?;
                    (json["message"]["assetId"] == id).then(|| json["message"]["time"].as_i64())?
                })
                .collect()
        };
        assert_eq!(of(1), (NOW - burst..NOW).collect::<Vec<_>>());
        assert_eq!(of(2), vec![NOW - 1]);
        assert_eq!(outbound.followed(), vec![AssetId(1), AssetId(2)]);
        outbound
            .remove(AssetId(1), |stopped| {
                assert_eq!(stopped, [AssetId(1)]);
                Bytes::from_static(b"removed")
            })
            .expect("open");
        hub.apply(&point(NOW), NOW);
        hub.apply(&jpy(NOW), NOW);
        let out = drain(&mut body);
        assert_eq!(&out[0][..], b"removed");
        assert_eq!(times(&out[1..]), vec![NOW], "USDJPY only");
        assert_eq!(outbound.followed(), vec![AssetId(2)]);
        assert_eq!(
            hub.subscriber_counts(),
            vec![0, 1],
            "the removed one is uncounted"
        );
    }

    #[tokio::test]
    async fn unsubscribing_stops_the_points_after_the_reply() {
        let hub = hub();
        let (outbound, mut body) = subscribed(&hub);
        hub.apply(&point(NOW), NOW);
        outbound
            .unsubscribe(|was| {
                assert_eq!(was, [AssetId(1)]);
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
