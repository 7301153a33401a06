//! One websocket connection: parse client frames, answer them, forward the points
//! of the followed assets, keep the connection alive and close it with a reason.
//!
//! The loop has one shape: `select!` over {shutdown, client frame, `history`
//! or `candles` answer, slow-consumer check, heartbeat tick}; every way out is a `break`
//! with an [`Exit`], and the close frame is sent once, after the loop. Live
//! points do not pass through it: the connection's [`Outbound`] body takes them
//! from its worker's relay when the socket has room, each once and in order
//! ([the sequence invariant](crate::hub#the-sequence-invariant)). Nothing in the
//! loop waits on anything but its branches: replies are queued without waiting,
//! and a `history` or `candles` query runs beside the loop (one per connection,
//! either kind), so points,
//! pings and shutdown keep flowing while the store answers, or does not.
//! Nothing a client sends can panic it: bad input is answered with an `error`
//! frame and the connection stays open. Client frames arrive decoded and
//! already charged to the rate limit ([`crate::inbound`]); once the close frame
//! is queued, the session waits for the connection to end and tears it down if
//! it does not within [`CLOSE_GRACE`] ([`crate::transport`]).

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::{FutureExt, Stream};

use ratecast_core::{
    Asset, AssetId, Candle, Interval,
    candle::{self, PAGE_CANDLES},
    protocol::{
        ClientRequest, ErrorCode, Follow, RequestError, candle_history_frame, candles_frame,
        error_frame, parse_request, range_frame, unsubscribed_frame,
    },
};
use tokio::time::{Instant, MissedTickBehavior, Sleep};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::{
    history::{Answered, HistoryQueries, NotStarted, page},
    hub::{Hub, Subscription},
    inbound::{Ended, Inbound, InboundStream, Refusal},
    outbound::{
        Joined, Outbound,
        candle::{self as live_candle, PLAN_LIMIT, Plan},
    },
    relay::Relay,
    transport::{CLOSE_GRACE, ConnectionHandle},
    wire,
};

/// How often a session that follows candles lets its body ask the clock
/// whether a running candle is closed ([`live_candle::CLOSE_GRACE_SECS`]).
const CANDLE_CLOCK: Duration = Duration::from_secs(1);

/// Per-connection limits and timers.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// How often the server pings.
    pub ping_interval: Duration,
    /// A connection that sends nothing (not even a pong) for this long is closed.
    pub idle_timeout: Duration,
    /// Largest client message accepted; a frame that would take a message past
    /// it closes the connection with 1009 at its header.
    pub max_message_bytes: usize,
    /// A queued frame the client does not take within this time marks it a slow
    /// consumer: the connection is closed rather than left holding memory.
    pub send_timeout: Duration,
    /// Bytes of replies a connection may have queued for its socket (see [`Outbound`]).
    pub max_queued_bytes: usize,
    /// Inbound frames (every kind, empty ones too) allowed per second, sustained…
    pub rate_per_second: u32,
    /// …and in a burst. See [`crate::limits`] for bytes and what happens beyond.
    pub rate_burst: u32,
    /// How often an SSE stream gets a keep-alive comment ([`crate::sse::KEEPALIVE`]
    /// unless a test sets it; not a flag).
    pub sse_keepalive: Duration,
}

impl Default for SessionConfig {
    /// The binary's defaults (see [`ServerConfig`](crate::ServerConfig)'s).
    fn default() -> Self {
        crate::ServerConfig::default().session
    }
}

/// Why a session ended; the close frame, if any, is derived from it.
#[derive(Debug)]
enum Exit {
    /// The client sent Close or the TCP stream ended: answer with a normal close.
    ClientGone,
    Shutdown,
    Idle,
    SlowConsumer,
    TooBig,
    RateLimited,
    InvalidUtf8,
    Protocol(&'static str),
}

impl From<Ended> for Exit {
    fn from(ended: Ended) -> Self {
        match ended {
            Ended::Gone => Self::ClientGone,
            Ended::Refused(Refusal::TooBig) => Self::TooBig,
            Ended::Refused(Refusal::Flood) => Self::RateLimited,
            Ended::Refused(Refusal::InvalidUtf8) => Self::InvalidUtf8,
            Ended::Refused(Refusal::Protocol(why)) => Self::Protocol(why),
        }
    }
}

impl Exit {
    /// The `reason` label of `ratecast_ws_closes_total`.
    fn label(&self) -> &'static str {
        match self {
            Self::ClientGone => "client",
            Self::Shutdown => "shutdown",
            Self::Idle => "idle",
            Self::SlowConsumer => "slow_consumer",
            Self::TooBig => "too_big",
            Self::RateLimited => "rate_limited",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::Protocol(_) => "protocol",
        }
    }

    /// The close frame, with its code and reason.
    fn close_frame(&self) -> Bytes {
        const NORMAL: u16 = 1000;
        const AWAY: u16 = 1001;
        const PROTOCOL: u16 = 1002;
        const INVALID_DATA: u16 = 1007;
        const POLICY: u16 = 1008;
        const SIZE: u16 = 1009;
        let (code, reason) = match self {
            Self::ClientGone => (NORMAL, ""),
            Self::Shutdown => (AWAY, "going away: server shutting down"),
            Self::Idle => (NORMAL, "idle timeout"),
            Self::SlowConsumer => (POLICY, "slow consumer"),
            Self::TooBig => (SIZE, "message too big"),
            Self::RateLimited => (POLICY, "rate limit exceeded"),
            Self::InvalidUtf8 => (INVALID_DATA, "invalid UTF-8"),
            Self::Protocol(text) => (PROTOCOL, *text),
        };
        wire::close_frame(code, reason)
    }
}

/// What every session of the process shares.
pub struct Shared {
    pub hub: Arc<Hub>,
    pub history: HistoryQueries,
    pub config: SessionConfig,
}

/// A `history` or `candles` query running beside the loop: its answer and the
/// request it answers.
type PendingHistory = Pin<Box<dyn Future<Output = QueryAnswer>>>;

/// The answer of a connection's query, with the request it answers.
enum QueryAnswer {
    History(Answered, HistoryRequest),
    Candles(Answered<Vec<Candle>>, CandlesRequest),
    /// The stored candles a subscription with `candles` starts from, per asset.
    Follow(Vec<Answered<Vec<Candle>>>, FollowRequest),
}

/// A `subscribe` or `add` with `candles` whose stored candles are being read.
struct FollowRequest {
    /// Each asset, in the client's order, with what its read covers.
    follows: Vec<(Follow, Plan)>,
    interval: Interval,
    /// `add` (one asset, the others untouched) rather than `subscribe`.
    add: bool,
}

/// The page of a `candles` request being answered.
struct CandlesRequest {
    asset: Asset,
    interval: Interval,
    from: i64,
    to: i64,
    next: Option<i64>,
}

/// The page of a `history` request being answered.
struct HistoryRequest {
    asset: Asset,
    from: i64,
    to: i64,
    next: Option<i64>,
}

/// One connection's state, owned by its loop.
struct Connection<'a> {
    shared: &'a Shared,
    outbound: Outbound,
    /// This connection's `history` or `candles` query, if one runs.
    history: Option<PendingHistory>,
    /// The running query is a subscription's (`candles` option): other
    /// subscription changes wait for its `candle_history` (refused `busy`), so
    /// they cannot be overtaken by it.
    following: bool,
    /// Fires when a frame may have waited `send_timeout` for the socket. Armed
    /// while the connection follows an asset or has replies queued, at the earliest
    /// time a frame could have waited that long, so a client that keeps up costs
    /// one timer reset per `send_timeout`, not one per frame.
    stall: Pin<Box<Sleep>>,
    stall_armed: bool,
}

/// Drives one connection until it ends: the loop, the close frame, then the
/// wait for the TCP connection to end (torn down after [`CLOSE_GRACE`]).
pub async fn run_session<S, E>(
    shared: Arc<Shared>,
    outbound: Outbound,
    mut inbound: InboundStream<S>,
    connection: ConnectionHandle,
    shutdown: CancellationToken,
) where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let config = &shared.config;
    let mut last_heard = Instant::now();
    let mut heartbeat = tokio::time::interval_at(
        on_the_grid(Instant::now() + config.ping_interval, config.ping_interval),
        config.ping_interval,
    );
    let mut candle_clock = tokio::time::interval_at(
        on_the_grid(Instant::now() + CANDLE_CLOCK, CANDLE_CLOCK),
        CANDLE_CLOCK,
    );
    candle_clock.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // Registered once for the session's life, not once per loop turn.
    let mut shutting_down = std::pin::pin!(shutdown.cancelled());
    let mut conn = Connection {
        shared: &shared,
        outbound,
        history: None,
        following: false,
        stall: Box::pin(tokio::time::sleep(Duration::ZERO)),
        stall_armed: false,
    };
    let exit = loop {
        let step = tokio::select! {
            biased;
            () = &mut shutting_down => Err(Exit::Shutdown),
            inbound = inbound.next() => {
                last_heard = Instant::now();
                inbound.map_err(Exit::from).and_then(|inbound| conn.on_inbound(inbound))
            }
            answer = pending_history(&mut conn.history) => {
                conn.history = None;
                match answer {
                    QueryAnswer::History(answered, request) => {
                        conn.deliver_history((answered, request))
                    }
                    QueryAnswer::Candles(answered, request) => {
                        conn.deliver_candles(answered, request)
                    }
                    QueryAnswer::Follow(answers, request) => conn.deliver_follow(answers, request),
                }
            }
            () = &mut conn.stall, if conn.stall_armed => conn.check_stall(),
            _ = candle_clock.tick(), if conn.outbound.follows_candles() => {
                conn.outbound.tick_candles().map_err(|_gone| Exit::ClientGone)
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() >= config.idle_timeout {
                    Err(Exit::Idle)
                } else {
                    conn.heartbeat()
                }
            }
        };
        if let Err(exit) = step {
            break exit;
        }
        if !conn.stall_armed {
            conn.arm_stall();
        }
    };
    debug!(?exit, "session ended");
    crate::metrics::closed(exit.label());
    // The close frame goes next, not the backlog (the frame being written is
    // finished first, to keep the stream valid), and the response ends after
    // it. `Gone` means the client left already: nothing is left to send.
    let _ = conn.outbound.close(exit.close_frame());
    // Nothing more is read: actix-http drains what the client still sends.
    drop(inbound);
    connection.linger(CLOSE_GRACE).await;
}

/// `at`, rounded up to the process-wide grid of whole seconds (or of `period`,
/// when that is shorter) of the timer clock.
///
/// Every session's pings and slow-consumer checks fall on this grid, so a
/// worker thread wakes once a second for all of its sessions' timers rather
/// than once per session timer (thousands of wake-ups a second at 19,000
/// connections, each a context switch). A timer fires at most one step late.
pub(crate) fn on_the_grid(at: Instant, period: Duration) -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let step = period
        .clamp(Duration::from_millis(1), Duration::from_secs(1))
        .as_nanos();
    let since = at.saturating_duration_since(epoch).as_nanos();
    let offset = since.div_ceil(step).saturating_mul(step);
    epoch + Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX))
}

/// The answer of the running query; pending forever when none runs.
async fn pending_history(history: &mut Option<PendingHistory>) -> QueryAnswer {
    match history {
        Some(query) => query.await,
        None => std::future::pending().await,
    }
}

impl Connection<'_> {
    fn config(&self) -> &SessionConfig {
        &self.shared.config
    }

    /// Queues an encoded frame for the socket.
    fn send(&mut self, frame: Bytes) -> Result<(), Exit> {
        self.outbound.push(frame).map_err(|_gone| Exit::ClientGone)
    }

    /// Queues an `error` frame (small: it is queued whatever the budget).
    fn send_error(&mut self, error: &RequestError) -> Result<(), Exit> {
        crate::metrics::request_refused(error.code.as_str());
        self.send(wire::text_frame(error_frame(error).as_bytes()))
    }

    /// Queues a reply if it fits the connection's budget, or a `backpressure`
    /// error instead.
    fn send_reply(&mut self, reply: Bytes) -> Result<(), Exit> {
        if self.outbound.fits(reply.len()) {
            self.send(reply)
        } else {
            self.send_backpressure()
        }
    }

    /// Refuses a request whose reply would not fit the connection's budget.
    fn send_backpressure(&mut self) -> Result<(), Exit> {
        let error = RequestError::new(
            ErrorCode::Backpressure,
            format!(
                "{} bytes are waiting to be sent to this connection (at most {}); \
                 read them, then retry",
                self.outbound.queued(),
                self.outbound.budget()
            ),
        );
        self.send_error(&error)
    }

    /// Arms the slow-consumer check, if anything can wait for the socket.
    fn arm_stall(&mut self) {
        if let Some(deadline) = self.outbound.next_check(self.config().send_timeout) {
            let timeout = self.config().send_timeout;
            self.stall.as_mut().reset(on_the_grid(deadline, timeout));
            self.stall_armed = true;
        }
    }

    /// The slow-consumer check: close a connection whose socket has not taken a
    /// waiting frame within the send timeout (re-armed after the loop turn).
    fn check_stall(&mut self) -> Result<(), Exit> {
        self.stall_armed = false;
        if self.outbound.stalled(self.config().send_timeout) {
            Err(Exit::SlowConsumer)
        } else {
            Ok(())
        }
    }

    /// The ping tick.
    fn heartbeat(&mut self) -> Result<(), Exit> {
        self.send(wire::ping_frame())
    }

    fn on_inbound(&mut self, inbound: Inbound) -> Result<(), Exit> {
        match inbound {
            Inbound::Text(text) => {
                match record_request(parse_request(&text, self.shared.hub.assets())) {
                    Ok(request) => self.on_request(request),
                    Err(error) => self.send_error(&error),
                }
            }
            Inbound::Binary => self.send_error(&RequestError::new(
                ErrorCode::BinaryNotSupported,
                "binary frames are not supported; send JSON text frames",
            )),
            Inbound::RateLimited => {
                crate::metrics::rate_limited();
                self.send_error(&RequestError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "more than {} frames a second; this message was dropped",
                        self.config().rate_per_second
                    ),
                ))
            }
            Inbound::Ping(payload) => self.send(wire::pong_frame(&payload)),
            Inbound::Pong => Ok(()),
            Inbound::Close(_) => Err(Exit::ClientGone),
        }
    }

    fn on_request(&mut self, request: ClientRequest) -> Result<(), Exit> {
        if self.following && changes_subscriptions(&request) {
            return self.send_error(&RequestError::new(
                ErrorCode::Busy,
                "a subscription with candles is being prepared; send the next subscription \
                 change after its candle_history",
            ));
        }
        match request {
            ClientRequest::Assets => {
                let frame = self.shared.hub.assets_frame();
                self.send_reply(frame)
            }
            ClientRequest::Subscribe { asset, since } => self.subscribe(&[Follow { asset, since }]),
            ClientRequest::SubscribeMany(follows) => self.subscribe(&follows),
            ClientRequest::Add(follow) => self.add(&follow),
            ClientRequest::SubscribeCandles { follows, interval } => {
                self.start_follow(follows, interval, false)
            }
            ClientRequest::AddCandles { follow, interval } => {
                self.start_follow(vec![follow], interval, true)
            }
            ClientRequest::Remove(asset) => self
                .outbound
                .remove(asset.id, unsubscribed)
                .map_err(|_gone| Exit::ClientGone),
            ClientRequest::Unsubscribe => self
                .outbound
                .unsubscribe(unsubscribed)
                .map_err(|_gone| Exit::ClientGone),
            ClientRequest::History { asset, from, to } => self.start_history(asset, from, to),
            ClientRequest::Candles {
                asset,
                interval,
                from,
                to,
            } => self.start_candles(asset, interval, from, to),
        }
    }

    /// Follows exactly `follows`: a history for each, in order, then their
    /// points. Refused as a whole (the current subscriptions stay) when the
    /// histories would not fit the connection's budget.
    fn subscribe(&mut self, follows: &[Follow]) -> Result<(), Exit> {
        if self.outbound.over_budget() {
            // Refused before a history is built for a client that is not reading.
            return self.send_backpressure();
        }
        let Some(joined) = self.join(follows) else {
            return self.send_unknown_asset();
        };
        let bytes = joined.iter().map(|j| j.sub.history.len()).sum();
        if !self.outbound.fits(bytes) {
            return self.send_backpressure();
        }
        for j in &joined {
            crate::metrics::history_served(&j.sub.asset.name);
        }
        // The old subscriptions end where the first new history is queued: no
        // point of an asset no longer followed can follow it.
        self.outbound
            .subscribe(joined)
            .map_err(|_gone| Exit::ClientGone)
    }

    /// Follows one more asset (or starts one followed over), the others
    /// untouched; refused, as `subscribe`, when its history would not fit.
    fn add(&mut self, follow: &Follow) -> Result<(), Exit> {
        if self.outbound.over_budget() {
            return self.send_backpressure();
        }
        let Some(joined) = self
            .join(std::slice::from_ref(follow))
            .and_then(|mut j| j.pop())
        else {
            return self.send_unknown_asset();
        };
        if !self.outbound.fits(joined.sub.history.len()) {
            return self.send_backpressure();
        }
        crate::metrics::history_served(&joined.sub.asset.name);
        self.outbound.add(joined).map_err(|_gone| Exit::ClientGone)
    }

    /// Joins each asset of `follows`: the worker's relay first, then the
    /// history, the order the sequence invariant needs (`crate::hub`). `None`
    /// if the hub does not track one (the parser already refused those).
    fn join(&self, follows: &[Follow]) -> Option<Vec<Joined>> {
        let hub = &self.shared.hub;
        let relay = Relay::for_this_thread(hub);
        let now = hub.now_secs();
        follows
            .iter()
            .map(|follow| {
                let points = relay.subscribe(hub, follow.asset.id)?;
                let sub = hub.subscribe(follow.asset.id, now, follow.since)?;
                Some(Joined {
                    points,
                    sub,
                    candles: None,
                })
            })
            .collect()
    }

    fn send_unknown_asset(&mut self) -> Result<(), Exit> {
        self.send_error(&RequestError::new(ErrorCode::UnknownAsset, "unknown asset"))
    }

    /// Starts a `history` query beside the loop, or refuses it at once.
    fn start_history(&mut self, asset: Asset, from: i64, to: i64) -> Result<(), Exit> {
        if self.history.is_some() {
            return self.send_error(&RequestError::new(
                ErrorCode::Busy,
                "the previous history request of this connection is still being answered; \
                 send the next one after its reply",
            ));
        }
        if self.outbound.over_budget() {
            return self.send_backpressure();
        }
        let (page_to, next) = page(from, to);
        match self.shared.history.start(asset.id, from, page_to) {
            Ok(query) => {
                let request = HistoryRequest {
                    asset,
                    from,
                    to: page_to,
                    next,
                };
                self.history =
                    Some(Box::pin(query.map(move |answered| {
                        QueryAnswer::History(answered, request)
                    })));
                Ok(())
            }
            Err(NotStarted::ServerBusy) => self.send_error(&RequestError::new(
                ErrorCode::Busy,
                "the server is answering as many history requests as it allows; retry shortly",
            )),
        }
    }

    /// Sends the answer of this connection's `history` query.
    fn deliver_history(
        &mut self,
        (answered, request): (Answered, HistoryRequest),
    ) -> Result<(), Exit> {
        let HistoryRequest {
            asset,
            from,
            to,
            next,
        } = request;
        let failure = match answered {
            Answered::Points(points) => {
                crate::metrics::history_query("ok");
                let frame = range_frame(&asset, from, to, &points, next);
                return self.send_reply(wire::text_frame(frame.as_bytes()));
            }
            // Logged (throttled) by the query itself.
            Answered::Failed(_) => "failed",
            Answered::TimedOut => "timed_out",
        };
        crate::metrics::history_query(failure);
        self.send_error(&RequestError::new(
            ErrorCode::Unavailable,
            "history is unavailable right now; retry shortly",
        ))
    }
}

/// The `unsubscribed` reply naming the assets that `unsubscribe` or `remove` stopped.
fn unsubscribed(stopped: &[AssetId]) -> Bytes {
    wire::text_frame(unsubscribed_frame(stopped).as_bytes())
}

impl Connection<'_> {
    /// Refuses a store query (a `candles` request, a subscription with
    /// `candles`) at once when this connection's one query is still being
    /// answered (`busy`) or its reply budget is spent (`backpressure`).
    fn refuse_query(&mut self) -> Option<Result<(), Exit>> {
        if self.history.is_some() {
            return Some(self.send_error(&RequestError::new(
                ErrorCode::Busy,
                "the previous history or candles request of this connection is still being \
                 answered; send the next one after its reply",
            )));
        }
        if self.outbound.over_budget() {
            return Some(self.send_backpressure());
        }
        None
    }

    /// Starts a `candles` query for the first page of the request beside the
    /// loop, or refuses it at once, exactly as [`start_history`](Self::start_history):
    /// one query per connection (either kind), the reply budget, the
    /// process-wide slots.
    fn start_candles(
        &mut self,
        asset: Asset,
        interval: Interval,
        from: i64,
        to: i64,
    ) -> Result<(), Exit> {
        if let Some(refused) = self.refuse_query() {
            return refused;
        }
        let (page_to, next) = candle::page(interval, from, to);
        let limit = usize::try_from(PAGE_CANDLES).unwrap_or(usize::MAX);
        match self
            .shared
            .history
            .start_candles(asset.id, interval, (from, page_to), limit)
        {
            Ok(query) => {
                let request = CandlesRequest {
                    asset,
                    interval,
                    from,
                    to: page_to,
                    next,
                };
                self.history =
                    Some(Box::pin(query.map(move |answered| {
                        QueryAnswer::Candles(answered, request)
                    })));
                Ok(())
            }
            Err(NotStarted::ServerBusy) => self.send_error(&RequestError::new(
                ErrorCode::Busy,
                "the server is answering as many history and candles requests as it allows; \
                 retry shortly",
            )),
        }
    }

    /// Sends the answer of this connection's `candles` query.
    fn deliver_candles(
        &mut self,
        answered: Answered<Vec<Candle>>,
        request: CandlesRequest,
    ) -> Result<(), Exit> {
        let CandlesRequest {
            asset,
            interval,
            from,
            to,
            next,
        } = request;
        let failure = match answered {
            Answered::Points(candles) => {
                crate::metrics::candles_query("ok");
                let frame = candles_frame(&asset, interval, (from, to), &candles, next);
                return self.send_reply(wire::text_frame(frame.as_bytes()));
            }
            // Logged (throttled) by the query itself.
            Answered::Failed(_) => "failed",
            Answered::TimedOut => "timed_out",
        };
        crate::metrics::candles_query(failure);
        self.send_error(&RequestError::new(
            ErrorCode::Unavailable,
            "candles are unavailable right now; retry shortly",
        ))
    }
}

impl Connection<'_> {
    /// Starts the store reads a subscription with `candles` starts from (one
    /// per asset, each under a process-wide slot, all beside the loop as this
    /// connection's one query), or refuses it at once as a `candles` request.
    fn start_follow(
        &mut self,
        follows: Vec<Follow>,
        interval: Interval,
        add: bool,
    ) -> Result<(), Exit> {
        if let Some(refused) = self.refuse_query() {
            return refused;
        }
        let now = self.shared.hub.now_secs();
        let mut reads = Vec::with_capacity(follows.len());
        let mut planned = Vec::with_capacity(follows.len());
        for follow in follows {
            let plan = live_candle::plan(interval, follow.since, now);
            let read = self.shared.history.start_candles(
                follow.asset.id,
                interval,
                (plan.from, plan.to),
                PLAN_LIMIT,
            );
            match read {
                Ok(read) => reads.push(read),
                // The reads started so far give their slots back as they drop.
                Err(NotStarted::ServerBusy) => {
                    return self.send_error(&RequestError::new(
                        ErrorCode::Busy,
                        "the server is answering as many history and candles requests as it \
                         allows; retry shortly",
                    ));
                }
            }
            planned.push((follow, plan));
        }
        let request = FollowRequest {
            follows: planned,
            interval,
            add,
        };
        self.following = true;
        self.history = Some(Box::pin(
            futures_util::future::join_all(reads)
                .map(move |answers| QueryAnswer::Follow(answers, request)),
        ));
        Ok(())
    }

    /// Follows the assets of an answered subscription with `candles`: per
    /// asset, its relay first, then the window's points after its stored
    /// candles with the sequence number live points continue from (the seam
    /// of [`live_candle`]), its `candle_history`, then its candles. Refused as
    /// a whole (the current subscriptions stay) when a read failed or the
    /// histories would not fit the connection's budget.
    fn deliver_follow(
        &mut self,
        answers: Vec<Answered<Vec<Candle>>>,
        request: FollowRequest,
    ) -> Result<(), Exit> {
        self.following = false;
        let FollowRequest {
            follows,
            interval,
            add,
        } = request;
        let mut stored = Vec::with_capacity(answers.len());
        let mut failure = None;
        for answered in answers {
            match answered {
                Answered::Points(candles) => {
                    crate::metrics::candles_query("ok");
                    stored.push(candles);
                }
                // Logged (throttled) by the query itself.
                Answered::Failed(_) => failure = Some("failed"),
                Answered::TimedOut => failure = Some("timed_out"),
            }
        }
        if let Some(failure) = failure {
            crate::metrics::candles_query(failure);
            return self.send_error(&RequestError::new(
                ErrorCode::Unavailable,
                "candles are unavailable right now; retry shortly",
            ));
        }
        let hub = &self.shared.hub;
        let relay = Relay::for_this_thread(hub);
        let now = hub.now_secs();
        let mut joined = Vec::with_capacity(follows.len());
        for ((follow, plan), candles) in follows.into_iter().zip(stored) {
            let id = follow.asset.id;
            let after = live_candle::live_after(plan, &candles);
            // The receiver first, then the seed: the order the sequence
            // invariant needs (`crate::hub`).
            let Some(points) = relay.subscribe(hub, id) else {
                return self.send_unknown_asset();
            };
            let Some(seed) = hub.seed(id, now, after) else {
                return self.send_unknown_asset();
            };
            let (history, fold) =
                live_candle::seed(interval, plan, candles, seed.points, now, follow.since);
            let frame = candle_history_frame(id, interval, &history);
            joined.push(Joined {
                points,
                sub: Subscription {
                    asset: follow.asset,
                    history: wire::text_frame(frame.as_bytes()),
                    seq: seed.seq,
                    counted: seed.counted,
                    last_time: seed.last_time,
                },
                candles: Some(fold),
            });
        }
        let bytes = joined.iter().map(|j| j.sub.history.len()).sum();
        if !self.outbound.fits(bytes) {
            return self.send_backpressure();
        }
        for _ in &joined {
            crate::metrics::candle_subscription(interval.as_str());
        }
        let done = match (add, joined.pop()) {
            (true, Some(one)) => self.outbound.add(one),
            (_, last) => {
                joined.extend(last);
                self.outbound.subscribe(joined)
            }
        };
        done.map_err(|_gone| Exit::ClientGone)
    }
}

/// Whether `request` changes what the connection follows.
fn changes_subscriptions(request: &ClientRequest) -> bool {
    matches!(
        request,
        ClientRequest::Subscribe { .. }
            | ClientRequest::SubscribeMany(_)
            | ClientRequest::Add(_)
            | ClientRequest::Remove(_)
            | ClientRequest::Unsubscribe
            | ClientRequest::SubscribeCandles { .. }
            | ClientRequest::AddCandles { .. }
    )
}

/// Records a parsed request in `ratecast_ws_requests_total`, by action.
fn record_request(
    request: Result<ClientRequest, RequestError>,
) -> Result<ClientRequest, RequestError> {
    crate::metrics::request(match &request {
        Ok(ClientRequest::Assets) => "assets",
        Ok(
            ClientRequest::Subscribe { .. }
            | ClientRequest::SubscribeMany(_)
            | ClientRequest::SubscribeCandles { .. },
        ) => "subscribe",
        Ok(ClientRequest::Add(_) | ClientRequest::AddCandles { .. }) => "add",
        Ok(ClientRequest::Remove(_)) => "remove",
        Ok(ClientRequest::Unsubscribe) => "unsubscribe",
        Ok(ClientRequest::History { .. }) => "history",
        Ok(ClientRequest::Candles { .. }) => "candles",
        Err(_) => "invalid",
    });
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fall_on_a_shared_grid_at_most_one_step_late() {
        let now = Instant::now();
        for (offset_ms, period) in [
            (0, Duration::from_secs(20)),
            (1, Duration::from_secs(20)),
            (999, Duration::from_secs(10)),
            (1_000, Duration::from_secs(10)),
            (12_345, Duration::from_millis(100)),
        ] {
            let at = now + Duration::from_millis(offset_ms);
            let on = on_the_grid(at, period);
            let step = period.min(Duration::from_secs(1));
            assert!(on >= at, "never early");
            assert!(on - at < step, "at most one step late");
            let other = on_the_grid(at + step / 3, period);
            assert!(other == on || other == on + step, "on the same grid");
        }
    }
}
