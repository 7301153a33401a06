//! The actix response body: the dispatcher's half of the outbound side.
//!
//! When the dispatcher has room it polls the body, which hands it the next
//! slice of the frame being written; between frames it takes a queued one
//! ([`super::queue`]) before the subscription's next point ([`super::live`]),
//! so replies and control frames go out between whole frames. Frames go to
//! actix in slices of at most [`CHUNK`] bytes, so its per-connection write
//! buffer never grows past a few KiB (a whole 124 KB `asset_history` handed
//! over at once would stay allocated for the connection's life). Each slice is
//! progress for the [stall check](super::stall). The body ends after a close
//! frame; dropping it ends the outbound side ([`Gone`](super::Gone)).

use std::{
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
};

use actix_web::body::{BodySize, MessageBody};
use bytes::Bytes;
use tokio::time::Instant;

use super::{
    Framing, Shared,
    live::{self, Outgoing},
};

/// The largest slice handed to the dispatcher at once; the server's
/// `h1_write_buffer_size` is the same, so its write buffer stays under 2 × this.
pub const CHUNK: usize = 8 * 1024;

/// The dispatcher's half: the websocket response body.
pub struct OutboundBody {
    shared: Rc<Shared>,
    /// The rest of the frame being written.
    rest: Bytes,
}

impl OutboundBody {
    pub(super) fn new(shared: Rc<Shared>) -> Self {
        Self {
            shared,
            rest: Bytes::new(),
        }
    }

    /// The next frame: a queued one first, then the next new live point.
    fn next_frame(&self, cx: &mut Context<'_>) -> Option<Bytes> {
        let mut state = self.shared.state.borrow_mut();
        let state = &mut *state;
        let frame = match state.queue.pop() {
            Some(frame) => Some(frame),
            None => live::next_point(&mut state.live, &mut state.turn, &self.shared.hub, cx).map(
                |next| match (next, state.framing) {
                    (Outgoing::Point(point), Framing::Websocket) => point.frame,
                    // The id names where the client is in every followed asset,
                    // this point included.
                    (Outgoing::Point(point), Framing::Sse) => crate::sse::point_event(
                        &point,
                        state.live.iter().map(|live| (live.asset, live.last_time)),
                    ),
                    (Outgoing::Candle(frame), Framing::Websocket) => frame,
                    // A stream follows points only (`GET /v1/stream` has no
                    // candles); were it to follow candles, each would be a
                    // `candle` event of the message object.
                    (Outgoing::Candle(frame), Framing::Sse) => crate::sse::candle_event(&frame),
                },
            ),
        };
        match &frame {
            Some(frame) => crate::metrics::frame_sent(frame.len()),
            None => state.waker = Some(cx.waker().clone()),
        }
        frame
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
        state.queue.slice_taken(now, !self.rest.is_empty());
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
        state.discard();
    }
}

#[cfg(test)]
mod tests {
    use super::{
        super::{Outbound, testing::*},
        *,
    };

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
}
