//! A connection's outbound queue: encoded websocket frames waiting for the socket,
//! bounded in bytes, and the response body that hands them to actix in small pieces.
//!
//! The session pushes shared, pre-encoded frames ([`crate::wire`]); the HTTP
//! dispatcher pulls them through [`OutboundBody`] in slices of at most [`CHUNK`]
//! bytes, so actix's per-connection write buffer never grows past a few KiB (a
//! whole 124 KB `asset_history` handed over at once would stay allocated for the
//! connection's life). A slice never splits a frame from another frame: a control
//! frame (ping, pong, close, still written by actix-ws) goes out only between data
//! frames.
//!
//! Full-queue policy, in bytes ([`Outbound::budget`]): the session stops taking
//! live points while the queue holds more than the budget (its subscription lags
//! and later catches up from the window), and answers a request whose reply would
//! not fit with a `backpressure` error instead of queueing it. A queue whose
//! oldest frame waits longer than the send timeout is a slow consumer; the
//! session closes it ([`Outbound::waiting_since`]).
//!
//! Both halves live on the connection's actix worker thread, so the state is an
//! `Rc<RefCell>` with no lock; borrows never cross an `.await`.

use std::{
    cell::RefCell,
    collections::VecDeque,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll, Waker},
};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use bytes::Bytes;
use tokio::{sync::Notify, time::Instant};

/// The largest slice handed to the dispatcher at once; the server's
/// `h1_write_buffer_size` is the same, so its write buffer stays under 2 × this.
pub const CHUNK: usize = 8 * 1024;

/// The connection ended: its body was dropped, nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

struct State {
    frames: VecDeque<Bytes>,
    /// Bytes in `frames`.
    queued: usize,
    /// Since when the oldest queued frame has waited for the socket: set when a
    /// frame enters an empty queue and each time the body takes one.
    waiting_since: Option<Instant>,
    /// The body's task, woken when a frame is pushed.
    waker: Option<Waker>,
    /// The body was dropped: the connection is over.
    gone: bool,
}

struct Shared {
    state: RefCell<State>,
    /// Signalled when the queue drains below the budget.
    space: Notify,
    budget: usize,
}

/// The session's half: pushes frames.
pub struct Outbound {
    shared: Rc<Shared>,
}

/// The dispatcher's half: the websocket response body.
pub struct OutboundBody {
    shared: Rc<Shared>,
    /// actix-ws's own body (ping, pong, close). Kept, never dropped early: its
    /// drop is what ends actix-ws's read side.
    control: BoxBody,
    /// The rest of the frame being written.
    rest: Bytes,
}

impl Outbound {
    /// A queue of at most `budget` bytes (more only for a single frame).
    pub fn new(budget: usize) -> Self {
        Self {
            shared: Rc::new(Shared {
                state: RefCell::new(State {
                    frames: VecDeque::new(),
                    queued: 0,
                    waiting_since: None,
                    waker: None,
                    gone: false,
                }),
                space: Notify::new(),
                budget,
            }),
        }
    }

    /// The response body that drains this queue ahead of `control`, actix-ws's
    /// own body.
    pub fn body(&self, control: BoxBody) -> OutboundBody {
        OutboundBody {
            shared: self.shared.clone(),
            control,
            rest: Bytes::new(),
        }
    }

    /// Queues `frame` whatever the budget (callers check [`Outbound::fits`] for
    /// replies and [`Outbound::over_budget`] for live points).
    pub fn push(&self, frame: Bytes) -> Result<(), Gone> {
        let mut state = self.shared.state.borrow_mut();
        if state.gone {
            return Err(Gone);
        }
        if state.frames.is_empty() {
            state.waiting_since = Some(Instant::now());
        }
        state.queued += frame.len();
        state.frames.push_back(frame);
        if let Some(waker) = state.waker.take() {
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

    /// Since when the oldest queued frame has waited; `None` when nothing waits.
    pub fn waiting_since(&self) -> Option<Instant> {
        self.shared.state.borrow().waiting_since
    }

    /// Resolves once the queue drained below the budget after being over it.
    pub async fn space(&self) {
        self.shared.space.notified().await;
    }

    /// Drops every queued frame (the one being written is finished): a closing
    /// connection sends its close frame next instead of a backlog.
    pub fn discard(&self) {
        let mut state = self.shared.state.borrow_mut();
        state.frames.clear();
        state.queued = 0;
        state.waiting_since = None;
    }
}

impl OutboundBody {
    /// The next queued frame, registering the task for a wake-up if there is none.
    fn next_frame(&self, cx: &Context<'_>) -> Option<Bytes> {
        let mut state = self.shared.state.borrow_mut();
        let Some(frame) = state.frames.pop_front() else {
            state.waker = Some(cx.waker().clone());
            return None;
        };
        let was_over = state.queued > self.shared.budget;
        state.queued -= frame.len();
        state.waiting_since = (!state.frames.is_empty()).then(Instant::now);
        if was_over && state.queued <= self.shared.budget {
            self.shared.space.notify_one();
        }
        Some(frame)
    }

    /// Hands out the next slice of `rest`.
    fn slice(&mut self) -> Poll<Option<Result<Bytes, Box<dyn std::error::Error>>>> {
        let len = self.rest.len().min(CHUNK);
        Poll::Ready(Some(Ok(self.rest.split_to(len))))
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
            if let Some(frame) = this.next_frame(cx) {
                this.rest = frame;
            } else {
                // Control frames go out only between data frames.
                match Pin::new(&mut this.control).poll_next(cx) {
                    Poll::Ready(Some(Ok(bytes))) => this.rest = bytes,
                    other => return other,
                }
            }
        }
        if this.rest.is_empty() {
            // An empty chunk from actix-ws; ask again rather than end the body.
            cx.waker().wake_by_ref();
            return Poll::Pending;
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
        drop(state);
        // A session waiting for space finds the connection gone instead.
        self.shared.space.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use actix_web::body::BoxBody;

    use super::*;

    fn poll(body: &mut OutboundBody) -> Poll<Option<Bytes>> {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(body)
            .poll_next(&mut cx)
            .map(|chunk| chunk.map(|c| c.expect("no error")))
    }

    fn control(chunks: &[&'static [u8]]) -> BoxBody {
        let stream = futures_util::stream::iter(
            chunks
                .iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c)))
                .collect::<Vec<_>>(),
        );
        BoxBody::new(actix_web::body::BodyStream::new(stream))
    }

    #[tokio::test]
    async fn a_large_frame_leaves_in_slices_of_at_most_a_chunk_before_any_control_frame() {
        let outbound = Outbound::new(1 << 20);
        let mut body = outbound.body(control(&[b"PING"]));
        let big = Bytes::from(vec![7u8; 3 * CHUNK + 10]);
        outbound.push(big.clone()).expect("open");
        outbound.push(Bytes::from_static(b"small")).expect("open");
        let mut out = Vec::new();
        while let Poll::Ready(Some(chunk)) = poll(&mut body) {
            assert!(chunk.len() <= CHUNK, "{}", chunk.len());
            out.push(chunk);
        }
        let bytes: Vec<u8> = out.concat();
        assert_eq!(&bytes[..big.len()], &big[..]);
        assert_eq!(&bytes[big.len()..], b"smallPING");
        assert_eq!(out.len(), 6, "4 slices, the small frame, then control");
        assert_eq!(outbound.queued(), 0);
    }

    #[tokio::test]
    async fn the_budget_counts_queued_bytes_until_the_socket_takes_them() {
        let outbound = Outbound::new(100);
        let mut body = outbound.body(control(&[]));
        assert!(outbound.fits(1000), "anything fits an empty queue");
        outbound.push(Bytes::from(vec![0u8; 60])).expect("open");
        assert!(outbound.fits(40));
        assert!(!outbound.fits(41));
        assert!(!outbound.over_budget());
        outbound.push(Bytes::from(vec![0u8; 60])).expect("open");
        assert!(outbound.over_budget());
        assert_eq!(outbound.queued(), 120);
        let first_wait = outbound.waiting_since().expect("a frame waits");
        assert!(matches!(poll(&mut body), Poll::Ready(Some(_))));
        assert_eq!(outbound.queued(), 60);
        assert!(!outbound.over_budget());
        assert!(outbound.waiting_since().expect("one still waits") >= first_wait);
        // Draining below the budget signalled the session.
        tokio::time::timeout(std::time::Duration::from_secs(1), outbound.space())
            .await
            .expect("space was signalled");
        assert!(matches!(poll(&mut body), Poll::Ready(Some(_))));
        assert_eq!(outbound.waiting_since(), None);
    }

    #[test]
    fn a_dropped_body_refuses_further_frames() {
        let outbound = Outbound::new(100);
        let body = outbound.body(control(&[]));
        outbound.push(Bytes::from_static(b"x")).expect("open");
        drop(body);
        assert_eq!(outbound.push(Bytes::from_static(b"y")), Err(Gone));
        assert_eq!(outbound.queued(), 0);
    }

    #[test]
    fn discarding_keeps_the_frame_being_written_whole() {
        let outbound = Outbound::new(1 << 20);
        let mut body = outbound.body(control(&[b"CLOSE"]));
        outbound
            .push(Bytes::from(vec![1u8; CHUNK + 5]))
            .expect("open");
        outbound.push(Bytes::from_static(b"dropped")).expect("open");
        assert!(matches!(poll(&mut body), Poll::Ready(Some(c)) if c.len() == CHUNK));
        outbound.discard();
        assert!(matches!(poll(&mut body), Poll::Ready(Some(c)) if c.len() == 5));
        assert!(matches!(poll(&mut body), Poll::Ready(Some(c)) if &c[..] == b"CLOSE"));
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
    }
}
