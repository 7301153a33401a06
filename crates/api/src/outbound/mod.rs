//! A connection's outbound side: the websocket response body that writes replies
//! and live points, in small pieces, as fast as the socket takes them.
//!
//! The session holds [`Outbound`], actix holds its [`OutboundBody`]. Both halves
//! live on the connection's actix worker thread, so the state they share is an
//! `Rc<RefCell>` with no lock; borrows never cross an `.await`. One file per
//! concern, over that state:
//!
//! - `queue.rs`: the replies and control frames (ping, pong, close) the session
//!   pushes, shared pre-encoded frames ([`crate::wire`]), bounded in bytes
//!   ([`Outbound::fits`]).
//! - `live.rs`: the subscriptions, one per followed asset, whose points the body
//!   takes straight from its worker's [`Relay`](crate::relay::Relay) when the
//!   socket has room: a point
//!   reaches the socket without waking the session task, and a client that
//!   stops reading stops taking points instead of growing a queue. Which points
//!   it sends, and how it catches up after a gap: [the sequence
//!   invariant](crate::hub#the-sequence-invariant).
//! - `stall.rs`: the slow-consumer check ([`Outbound::stalled`]): the socket has
//!   taken nothing for the send timeout while frames waited (a reply, or a
//!   point of any followed asset); the session then closes the connection.
//! - `candle.rs`: live candles, for an asset followed as candles: the fold of
//!   its points into the running candle, closing it, and the seam with the
//!   stored candles a subscription starts from.
//! - `body.rs`: the actix body, which writes queued frames before live points, in
//!   slices of at most [`CHUNK`] bytes.
//!
//! This file owns the shared state and what spans the parts: the body's end
//! (nothing is accepted after it), and closing, which drops what was queued and
//! the subscriptions so the close frame goes out next.

mod body;
pub mod candle;
mod live;
mod queue;
mod stall;
#[cfg(test)]
mod testing;

use std::{cell::RefCell, rc::Rc, sync::Arc, task::Waker};

use bytes::Bytes;
use tokio::time::Instant;

pub use self::{
    body::{CHUNK, OutboundBody},
    live::Joined,
};
use self::{live::Live, queue::Replies, stall::PointsWaiting};
use crate::hub::Hub;

/// How the body frames live points: as the shared websocket frames, or as
/// Server-Sent Events around the same point object ([`crate::sse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Websocket,
    Sse,
}

/// The connection ended: its body was dropped, nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// What the session's half and the body share.
struct Shared {
    state: RefCell<State>,
    /// Where a lagging subscriber catches up from, and how far each followed
    /// asset's numbering is (a stall check compares it with the client's).
    hub: Arc<Hub>,
}

struct State {
    /// Replies and control frames, in order, within their byte budget.
    queue: Replies,
    /// The followed assets, in the client's order, whose points follow the
    /// queued frames: a few small entries, at most one per tracked asset.
    live: Vec<Live>,
    /// The followed asset the body asks for a point first, next time: each in
    /// turn, so one asset's catch-up does not hold back the others.
    turn: usize,
    /// When the body last handed the socket a slice: a stall check that finds
    /// it unchanged knows the client has read nothing since.
    last_taken: Instant,
    /// How live points are framed; everything else is pushed framed already.
    framing: Framing,
    /// The body's task, woken when a frame is pushed or a subscription starts.
    waker: Option<Waker>,
    /// The body was dropped: the connection is over.
    gone: bool,
    /// A close frame is queued: nothing is queued after it, and the body ends
    /// once it is written.
    closing: bool,
}

impl State {
    /// Drops what waits to be sent: queued frames and the subscriptions.
    fn discard(&mut self) {
        self.queue.clear();
        self.live = Vec::new();
    }
}

/// The session's half: queues replies and sets the subscriptions.
pub struct Outbound {
    shared: Rc<Shared>,
    /// What the last stall check found about live points.
    points_waiting: PointsWaiting,
}

impl Outbound {
    /// An outbound side whose reply queue holds at most `budget` bytes (more only
    /// for a single frame), catching subscribers up from `hub`.
    pub fn new(budget: usize, hub: Arc<Hub>) -> Self {
        Self::with_framing(budget, hub, Framing::Websocket)
    }

    /// An outbound side as [`Outbound::new`]'s whose live points are framed
    /// by `framing`.
    pub fn with_framing(budget: usize, hub: Arc<Hub>, framing: Framing) -> Self {
        Self {
            shared: Rc::new(Shared {
                state: RefCell::new(State {
                    queue: Replies::new(budget),
                    live: Vec::new(),
                    turn: 0,
                    last_taken: Instant::now(),
                    framing,
                    waker: None,
                    gone: false,
                    closing: false,
                }),
                hub,
            }),
            points_waiting: PointsWaiting::default(),
        }
    }

    /// The websocket response body that writes this side's frames.
    pub fn body(&self) -> OutboundBody {
        OutboundBody::new(self.shared.clone())
    }

    /// Ends the connection: what was queued and the subscriptions are dropped
    /// (the frame being written is finished), `close` is the last frame, and the
    /// response ends once it is written.
    pub fn close(&self, close: Bytes) -> Result<(), Gone> {
        self.shared.state.borrow_mut().discard();
        self.update(|state| {
            state.queue.push(close);
            state.closing = true;
        })
    }

    /// Applies `change` and wakes the body, unless the connection is over or
    /// closing.
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
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use super::{testing::*, *};

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
