//! The reply queue and its budget: the frames the session pushes (replies and
//! control frames, in order) until the body takes them, bounded in bytes.
//!
//! A client that asks faster than it reads is refused rather than buffered: the
//! session checks [`Outbound::fits`] (or [`Outbound::over_budget`]) before it
//! queues a reply and answers `backpressure` instead; small frames (errors,
//! control frames) are queued whatever the budget. The queue also knows how
//! long its frames have waited with none of their bytes taken, which is what
//! the [stall check](super::stall) reads. Live points are not queued here: the
//! body takes them from the [subscription](super::live) only when the queue is
//! empty.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::time::Instant;

use super::{Gone, Outbound};
use crate::metrics::{BufferGauges, HeldBytes};

/// What connections hold of queued replies.
static REPLY_QUEUE: BufferGauges = BufferGauges::new(
    "ratecast_ws_reply_queue_bytes",
    "ratecast_ws_reply_queue_largest_bytes",
);

/// The replies and control frames the session queued, in order.
pub(super) struct Replies {
    frames: VecDeque<Bytes>,
    /// Bytes in `frames`.
    queued: usize,
    /// `queued`, as reported to the gauges.
    held: HeldBytes,
    /// The most bytes `frames` may hold (more only for a single frame).
    budget: usize,
    /// Since when frames have waited for the socket with none of their bytes
    /// taken: set when a frame enters an empty queue and each time the body
    /// hands the socket a slice while more waits (the rest of a frame counts).
    waiting_since: Option<Instant>,
}

impl Replies {
    pub(super) fn new(budget: usize) -> Self {
        Self {
            frames: VecDeque::new(),
            queued: 0,
            held: HeldBytes::new(&REPLY_QUEUE),
            budget,
            waiting_since: None,
        }
    }

    /// Queues `frame` whatever the budget.
    pub(super) fn push(&mut self, frame: Bytes) {
        if self.frames.is_empty() {
            self.waiting_since = Some(Instant::now());
        }
        self.queued += frame.len();
        self.held.report(self.queued);
        self.frames.push_back(frame);
    }

    /// The oldest queued frame, no longer counted against the budget.
    pub(super) fn pop(&mut self) -> Option<Bytes> {
        let frame = self.frames.pop_front()?;
        self.queued -= frame.len();
        self.held.report(self.queued);
        if self.frames.is_empty() && self.frames.capacity() > 16 {
            // Give back the room a burst of replies took.
            self.frames = VecDeque::new();
        }
        Some(frame)
    }

    /// Drops every queued frame.
    pub(super) fn clear(&mut self) {
        self.frames.clear();
        self.queued = 0;
        self.held.report(0);
        self.waiting_since = None;
    }

    /// The socket took a slice at `now`: whatever still waits (a queued frame,
    /// or the rest of the frame being written when `rest_waits`) has waited
    /// from now.
    pub(super) fn slice_taken(&mut self, now: Instant, rest_waits: bool) {
        self.waiting_since = (!self.frames.is_empty() || rest_waits).then_some(now);
    }

    pub(super) fn waiting_since(&self) -> Option<Instant> {
        self.waiting_since
    }
}

impl Outbound {
    /// Queues `frame` whatever the budget (callers check [`Outbound::fits`]).
    pub fn push(&self, frame: Bytes) -> Result<(), Gone> {
        self.update(|state| state.queue.push(frame))
    }

    /// Whether `len` more bytes fit the budget (anything fits an empty queue).
    pub fn fits(&self, len: usize) -> bool {
        let state = self.shared.state.borrow();
        let queue = &state.queue;
        queue.frames.is_empty() || queue.queued + len <= queue.budget
    }

    /// Whether the queue holds more than the budget.
    pub fn over_budget(&self) -> bool {
        let state = self.shared.state.borrow();
        state.queue.queued > state.queue.budget
    }

    /// Bytes queued and not yet taken by the socket.
    pub fn queued(&self) -> usize {
        self.shared.state.borrow().queue.queued
    }

    pub fn budget(&self) -> usize {
        self.shared.state.borrow().queue.budget
    }

    /// Since when the oldest queued reply has waited for the socket, if one has.
    pub fn waiting_since(&self) -> Option<Instant> {
        self.shared.state.borrow().queue.waiting_since
    }
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use super::{super::testing::*, *};

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
}
