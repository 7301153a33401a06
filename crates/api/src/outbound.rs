//! A connection's outbound side: the websocket response body that writes replies
//! and live points, in small pieces, as fast as the socket takes them.
//!
//! Two sources feed the body ([`OutboundBody`]), both of shared, pre-encoded
//! frames ([`crate::wire`]): a queue of replies the session pushes (bounded in
//! bytes, [`Outbound::fits`]), and the subscription's live points, which the body
//! takes straight from its worker's [`Relay`](crate::relay::Relay) when the
//! socket has room: a point reaches the socket without waking the session task,
//! and a client that stops reading stops taking points instead of growing a
//! queue. Points carry the hub's sequence numbers: one the client's history
//! already had is skipped, and a subscriber that sees a gap (it fell behind a
//! ring, or the relay did) catches up from the hub's window, every point once
//! and in order. Frames go to actix in slices of at most [`CHUNK`] bytes, so
//! its per-connection write buffer never grows past a few KiB (a whole 124 KB
//! `asset_history` handed over at once would stay allocated for the connection's
//! life). Control frames (ping, pong, close) are encoded here too and queued
//! like replies, so they go out between whole frames.
//!
//! Slow consumers: [`Outbound::stalled`] says whether the socket has taken
//! nothing for the send timeout while frames waited for it; the session then
//! closes the connection.
//!
//! Both halves live on the connection's actix worker thread, so the state is an
//! `Rc<RefCell>` with no lock; borrows never cross an `.await`.

use std::{
    cell::{Cell, RefCell},
    collections::VecDeque,
    pin::Pin,
    rc::Rc,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use actix_web::body::{BodySize, MessageBody};
use bytes::Bytes;
use ratecast_core::AssetId;
use tokio::{
    sync::broadcast::{self, error::RecvError},
    time::Instant,
};
use tokio_util::sync::ReusableBoxFuture;

use crate::{
    hub::{Hub, Subscribed, Subscription},
    wire::PointBytes,
};

/// The largest slice handed to the dispatcher at once; the server's
/// `h1_write_buffer_size` is the same, so its write buffer stays under 2 × this.
pub const CHUNK: usize = 8 * 1024;

/// Points a lagging subscriber takes from the hub's window at a time: catching
/// up a 15-minute backlog holds this many handles per subscriber, not 900.
const CATCH_UP_CHUNK: usize = 64;

/// The connection ended: its body was dropped, nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

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
struct Live {
    asset: AssetId,
    points: LivePoints,
    /// The newest time the client has: points not after it are not sent again.
    last_time: Option<i64>,
    /// The hub's sequence number of the last point the client has (in its
    /// history, a catch-up, or live): the next one must be `seq + 1`.
    seq: u64,
    /// Catching up from the hub's window after a gap, a chunk at a time.
    catching_up: bool,
    /// The current catch-up chunk, at most [`CATCH_UP_CHUNK`] points.
    backlog: VecDeque<PointBytes>,
    /// Counts this subscriber in `ratecast_ws_subscriptions` while it lasts.
    _counted: Subscribed,
}

struct State {
    /// Replies and control frames, in order.
    frames: VecDeque<Bytes>,
    /// Bytes in `frames`.
    queued: usize,
    /// Since when frames have waited for the socket with none of their bytes
    /// taken: set when a frame enters an empty queue and each time the body
    /// hands the socket a slice while more waits (the rest of a frame counts).
    waiting_since: Option<Instant>,
    live: Option<Live>,
    /// When the body last handed the socket a slice.
    last_taken: Instant,
    /// The body's task, woken when a frame is pushed or a subscription starts.
    waker: Option<Waker>,
    /// The body was dropped: the connection is over.
    gone: bool,
    /// A close frame is queued: nothing is queued after it, and the body ends
    /// once it is written.
    closing: bool,
}

struct Shared {
    state: RefCell<State>,
    budget: usize,
    hub: Arc<Hub>,
}

/// The session's half: queues replies and sets the subscription.
pub struct Outbound {
    shared: Rc<Shared>,
    /// Live points found waiting at a check: when, and what the body had taken
    /// by then. If a later check finds points still waiting and nothing taken
    /// since, the client has not read for that long.
    points_waiting: Cell<Option<(Instant, Instant)>>,
}

/// The dispatcher's half: the websocket response body.
pub struct OutboundBody {
    shared: Rc<Shared>,
    /// The rest of the frame being written.
    rest: Bytes,
}

impl Outbound {
    /// An outbound side whose reply queue holds at most `budget` bytes (more only
    /// for a single frame), catching subscribers up from `hub`.
    pub fn new(budget: usize, hub: Arc<Hub>) -> Self {
        Self {
            shared: Rc::new(Shared {
                state: RefCell::new(State {
                    frames: VecDeque::new(),
                    queued: 0,
                    waiting_since: None,
                    live: None,
                    last_taken: Instant::now(),
                    waker: None,
                    gone: false,
                    closing: false,
                }),
                budget,
                hub,
            }),
            points_waiting: Cell::new(None),
        }
    }

    /// The websocket response body that writes this side's frames.
    pub fn body(&self) -> OutboundBody {
        OutboundBody {
            shared: self.shared.clone(),
            rest: Bytes::new(),
        }
    }

    /// Queues `frame` whatever the budget (callers check [`Outbound::fits`]).
    pub fn push(&self, frame: Bytes) -> Result<(), Gone> {
        self.update(|state| state.enqueue(frame))
    }

    /// Replaces the subscription: `sub.history` is queued and the points
    /// `points` receives follow it, those numbered after `sub.seq` (the hub's
    /// number at the history) and newer than `sub.last_time` only. `points`
    /// must have been subscribed before the history was taken. Nothing of the
    /// previous subscription is sent after the history.
    pub fn subscribe(
        &self,
        asset: AssetId,
        points: broadcast::Receiver<PointBytes>,
        sub: Subscription,
    ) -> Result<(), Gone> {
        self.update(|state| {
            state.enqueue(sub.history);
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
            state.enqueue(reply(was));
        })
    }

    /// Ends the connection: what was queued and the subscription are dropped
    /// (the frame being written is finished), `close` is the last frame, and the
    /// response ends once it is written.
    pub fn close(&self, close: Bytes) -> Result<(), Gone> {
        self.discard();
        self.update(|state| {
            state.enqueue(close);
            state.closing = true;
        })
    }

    fn update(&self, change: impl FnOnce(&mut State)) -> Result<(), Gone> {
        let waker = {
            let mut state = self.shared.state.borrow_mut();
            if state.gone || state.closing {
                return Err(Gone);
            }
            change(&mut state);
            state.waker.take()
        };
        // Woken with the state released: a waker may poll the body at once.
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Whether `len` more bytes fit the budget (anything fits an empty queue).
    pub fn fits(&self, len: usize) -> bool {
        let state = self.shared.state.borrow();
        state.frames.is_empty() || state.queued + len <= self.shared.budget
    }

    /// Whether the queue holds more than the budget.
    pub fn over_budget(&self) -> bool {
        self.shared.state.borrow().queued > self.shared.budget
    }

    /// Bytes queued and not yet taken by the socket.
    pub fn queued(&self) -> usize {
        self.shared.state.borrow().queued
    }

    pub fn budget(&self) -> usize {
        self.shared.budget
    }

    /// Since when the oldest queued reply has waited for the socket, if one has.
    pub fn waiting_since(&self) -> Option<Instant> {
        self.shared.state.borrow().waiting_since
    }

    /// Whether the socket has taken nothing for `timeout` while frames waited:
    /// a queued reply that old, or live points the hub has and the client was
    /// not given, found at two checks `timeout` apart with nothing taken between
    /// them (a point published a moment before a check is not a stall).
    pub fn stalled(&self, timeout: Duration) -> bool {
        let now = Instant::now();
        let state = self.shared.state.borrow();
        if state
            .waiting_since
            .is_some_and(|since| now.saturating_duration_since(since) >= timeout)
        {
            return true;
        }
        // Points wait when the hub numbered more than the client was given.
        let points_wait = state
            .live
            .as_ref()
            .is_some_and(|live| self.shared.hub.seq(live.asset) > Some(live.seq));
        match (points_wait, self.points_waiting.get()) {
            (false, _) => {
                self.points_waiting.set(None);
                false
            }
            (true, Some((since, taken))) if taken == state.last_taken => {
                now.saturating_duration_since(since) >= timeout
            }
            (true, _) => {
                self.points_waiting.set(Some((now, state.last_taken)));
                false
            }
        }
    }

    /// When to check [`stalled`](Self::stalled) next: while the connection is
    /// subscribed or has replies queued; `None` when nothing can wait.
    pub fn next_check(&self, timeout: Duration) -> Option<Instant> {
        let state = self.shared.state.borrow();
        let reply = state.waiting_since.map(|since| since + timeout);
        let points = state
            .live
            .as_ref()
            .map(|_| match self.points_waiting.get() {
                Some((since, _)) => since + timeout,
                None => Instant::now() + timeout,
            });
        match (reply, points) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Stops sending: drops the queued frames and the subscription (the frame
    /// being written is finished), so the close frame goes out next.
    fn discard(&self) {
        let mut state = self.shared.state.borrow_mut();
        state.frames.clear();
        state.queued = 0;
        state.waiting_since = None;
        state.live = None;
    }
}

impl State {
    fn enqueue(&mut self, frame: Bytes) {
        if self.frames.is_empty() {
            self.waiting_since = Some(Instant::now());
        }
        self.queued += frame.len();
        self.frames.push_back(frame);
    }

    fn dequeue(&mut self) -> Option<Bytes> {
        let frame = self.frames.pop_front()?;
        self.queued -= frame.len();
        if self.frames.is_empty() && self.frames.capacity() > 16 {
            // Give back the room a burst of replies took.
            self.frames = VecDeque::new();
        }
        Some(frame)
    }
}

impl OutboundBody {
    /// The next frame: a queued one first, then the next new live point.
    fn next_frame(&self, cx: &mut Context<'_>) -> Option<Bytes> {
        let mut state = self.shared.state.borrow_mut();
        let frame = match state.dequeue() {
            Some(frame) => Some(frame),
            None => self.next_point(&mut state, cx),
        };
        match &frame {
            Some(frame) => crate::metrics::frame_sent(frame.len()),
            None => state.waker = Some(cx.waker().clone()),
        }
        frame
    }

    /// The subscription's next point after what the client has; after a gap,
    /// the missed points from the hub's window, a chunk at a time.
    fn next_point(&self, state: &mut State, cx: &mut Context<'_>) -> Option<Bytes> {
        let live = state.live.as_mut()?;
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
                let chunk = self
                    .shared
                    .hub
                    .catch_up(live.asset, live.last_time, CATCH_UP_CHUNK)?;
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
                    state.live = None;
                    return None;
                }
            }
        }
    }

    /// Hands out the next slice of `rest`. The dispatcher asks for one only
    /// when its write buffer has room, so each slice is progress: whatever
    /// still waits has waited from now.
    fn slice(&mut self) -> Poll<Option<Result<Bytes, Box<dyn std::error::Error>>>> {
        let len = self.rest.len().min(CHUNK);
        let slice = self.rest.split_to(len);
        let now = Instant::now();
        let mut state = self.shared.state.borrow_mut();
        state.last_taken = now;
        state.waiting_since = (!state.frames.is_empty() || !self.rest.is_empty()).then_some(now);
        Poll::Ready(Some(Ok(slice)))
    }
}

impl MessageBody for OutboundBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = &mut *self;
        if this.rest.is_empty() {
            match this.next_frame(cx) {
                Some(frame) => this.rest = frame,
                // The close frame was the last one: the connection ends.
                None if this.shared.state.borrow().closing => return Poll::Ready(None),
                None => return Poll::Pending,
            }
        }
        this.slice()
    }
}

impl Drop for OutboundBody {
    fn drop(&mut self) {
        let mut state = self.shared.state.borrow_mut();
        state.gone = true;
        state.frames.clear();
        state.queued = 0;
        state.waiting_since = None;
        state.live = None;
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use ratecast_core::Point;

    use super::*;
    use crate::hub::POINT_BUFFER;

    const NOW: i64 = 1_700_000_000;

    fn poll(body: &mut OutboundBody) -> Poll<Option<Bytes>> {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(body)
            .poll_next(&mut cx)
            .map(|chunk| chunk.map(|c| c.expect("no error")))
    }

    /// Every chunk the body has ready now.
    fn drain(body: &mut OutboundBody) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Poll::Ready(Some(chunk)) = poll(body) {
            out.push(chunk);
        }
        out
    }

    /// An outbound side and its body, subscribed to EURUSD of `hub` now.
    fn subscribed(hub: &Arc<Hub>) -> (Outbound, OutboundBody) {
        let outbound = Outbound::new(1 << 20, hub.clone());
        let body = outbound.body();
        let points = hub.points(AssetId(1)).expect("asset");
        let sub = hub.subscribe(AssetId(1), NOW, None).expect("asset");
        outbound.subscribe(AssetId(1), points, sub).expect("open");
        (outbound, body)
    }

    fn hub() -> Arc<Hub> {
        Arc::new(Hub::new("EURUSD".parse().expect("assets")))
    }

    fn point(time: i64) -> Point {
        ratecast_testkit::point(1, "EURUSD", time, 1.0)
    }

    /// The `time` of each point frame among `chunks` (whole frames only).
    fn times(chunks: &[Bytes]) -> Vec<i64> {
        chunks
            .iter()
            .filter_map(|c| {
                let json: serde_json::Value =
                    serde_json::from_slice(crate::wire::payload(c)).ok()?;
                (json["action"] == "point").then(|| json["message"]["time"].as_i64())?
            })
            .collect()
    }

    #[tokio::test]
    async fn a_large_frame_leaves_in_slices_of_at_most_a_chunk_and_frames_stay_whole() {
        let outbound = Outbound::new(1 << 20, hub());
        let mut body = outbound.body();
        let big = Bytes::from(vec![7u8; 3 * CHUNK + 10]);
        outbound.push(big.clone()).expect("open");
        outbound.push(crate::wire::ping_frame()).expect("open");
        let out = drain(&mut body);
        assert!(out.iter().all(|c| c.len() <= CHUNK));
        let bytes: Vec<u8> = out.concat();
        assert_eq!(&bytes[..big.len()], &big[..]);
        assert_eq!(&bytes[big.len()..], &crate::wire::ping_frame()[..]);
        assert_eq!(out.len(), 5, "4 slices, then the ping");
        assert_eq!(outbound.queued(), 0);
    }

    #[tokio::test]
    async fn the_budget_counts_queued_bytes_until_the_socket_takes_them() {
        let outbound = Outbound::new(100, hub());
        let mut body = outbound.body();
        assert!(outbound.fits(1000), "anything fits an empty queue");
        outbound.push(Bytes::from(vec![0u8; 60])).expect("open");
        assert!(outbound.fits(40));
        assert!(!outbound.fits(41));
        assert!(!outbound.over_budget());
        outbound.push(Bytes::from(vec![0u8; 60])).expect("open");
        assert!(outbound.over_budget());
        assert_eq!(outbound.queued(), 120);
        assert!(outbound.waiting_since().is_some());
        assert!(matches!(poll(&mut body), Poll::Ready(Some(_))));
        assert_eq!(outbound.queued(), 60);
        assert!(matches!(poll(&mut body), Poll::Ready(Some(_))));
        assert_eq!(outbound.waiting_since(), None);
    }

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
        assert_eq!(hub.window_sizes(), vec![0]);
        assert!(!outbound.stalled(Duration::ZERO));
        assert!(!outbound.stalled(Duration::ZERO), "nothing waits for it");
        // Nor is one that subscribes to the empty window then.
        let (late, mut late_body) = subscribed(&hub);
        assert_eq!(drain(&mut late_body).len(), 1, "an empty history");
        assert!(!late.stalled(Duration::ZERO));
        assert!(!late.stalled(Duration::ZERO), "nothing waits for it");
    }

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

    #[test]
    fn a_dropped_body_refuses_further_frames() {
        let outbound = Outbound::new(100, hub());
        let body = outbound.body();
        outbound.push(Bytes::from_static(b"x")).expect("open");
        drop(body);
        assert_eq!(outbound.push(Bytes::from_static(b"y")), Err(Gone));
        assert_eq!(outbound.queued(), 0);
    }

    #[test]
    fn closing_finishes_the_frame_being_written_then_sends_only_the_close_and_ends() {
        let outbound = Outbound::new(1 << 20, hub());
        let mut body = outbound.body();
        outbound
            .push(Bytes::from(vec![1u8; CHUNK + 5]))
            .expect("open");
        outbound.push(Bytes::from_static(b"dropped")).expect("open");
        assert!(matches!(poll(&mut body), Poll::Ready(Some(c)) if c.len() == CHUNK));
        let close = crate::wire::close_frame(1001, "bye");
        outbound.close(close.clone()).expect("open");
        assert_eq!(outbound.push(Bytes::from_static(b"late")), Err(Gone));
        assert!(matches!(poll(&mut body), Poll::Ready(Some(c)) if c.len() == 5));
        assert!(matches!(poll(&mut body), Poll::Ready(Some(c)) if c == close));
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
    }
}
