//! The API's Prometheus metrics: names, labels and the scrape-time gauges.
//!
//! Hot-path counters (frames and bytes sent) are taken once and cached, so a
//! fan-out to thousands of clients costs one atomic add per frame, not a registry
//! lookup. Everything else is recorded where it happens with the `metrics` macros.
//! `GET /metrics` renders the process recorder the binary installed
//! (`ratecast_process::metrics::install_recorder`) and handed to `run`.

use std::sync::{
    LazyLock,
    atomic::{AtomicUsize, Ordering},
};

use metrics::{Counter, counter, gauge};

use crate::hub::Hub;

static FRAMES_SENT: LazyLock<Counter> =
    LazyLock::new(|| counter!("ratecast_ws_messages_sent_total"));
static BYTES_SENT: LazyLock<Counter> = LazyLock::new(|| counter!("ratecast_ws_bytes_sent_total"));

/// One frame of `bytes` (text, or a ping, pong or close) handed to a client's socket.
pub fn frame_sent(bytes: usize) {
    FRAMES_SENT.increment(1);
    BYTES_SENT.increment(bytes as u64);
}

/// A connection closed, by reason (`slow_consumer`, `idle`, `rate_limited`, …).
pub fn closed(reason: &'static str) {
    counter!("ratecast_ws_closes_total", "reason" => reason).increment(1);
}

/// An upgrade refused before it happened, by reason.
pub fn refused(reason: &'static str) {
    counter!("ratecast_ws_refused_total", "reason" => reason).increment(1);
}

/// A client request, by action (or `invalid` when it did not parse).
pub fn request(action: &'static str) {
    counter!("ratecast_ws_requests_total", "action" => action).increment(1);
}

/// An `error` frame sent in answer to a request, by code.
pub fn request_refused(code: &'static str) {
    counter!("ratecast_ws_errors_total", "code" => code).increment(1);
}

/// A `history` query ended, by outcome (`ok`, `failed`, `timed_out`).
pub fn history_query(outcome: &'static str) {
    counter!("ratecast_history_queries_total", "outcome" => outcome).increment(1);
}

/// A finished `candles` store query, by outcome: `ok`, `failed`, `timed_out`.
pub fn candles_query(outcome: &'static str) {
    counter!("ratecast_candles_queries_total", "outcome" => outcome).increment(1);
}

/// `ratecast_ws_candle_subscriptions_total{interval}`: assets followed as
/// live candles (each asset of a `subscribe` or `add` with `candles`).
pub fn candle_subscription(interval: &'static str) {
    counter!("ratecast_ws_candle_subscriptions_total", "interval" => interval).increment(1);
}

pub fn rate_limited() {
    counter!("ratecast_ws_rate_limited_total").increment(1);
}

pub fn history_served(asset: &str) {
    counter!("ratecast_history_frames_served_total", "asset" => asset.to_owned()).increment(1);
}

pub fn history_built() {
    counter!("ratecast_history_frames_built_total").increment(1);
}

/// A subscriber fell behind (a ring overflowed) and starts catching up.
pub fn lag_catch_up_started() {
    counter!("ratecast_ws_lag_catchups_total").increment(1);
}

/// Points a catching-up subscriber took from the window.
pub fn lag_catch_up_points(points: usize) {
    counter!("ratecast_ws_lag_catchup_points_total").increment(points as u64);
}

/// Websocket connections, from upgrade until the TCP connection ends.
pub fn connections(delta: f64) {
    gauge!("ratecast_ws_connections").increment(delta);
}

/// SSE streams (`GET /v1/stream`), from their start until they end.
pub fn sse_connections(delta: f64) {
    gauge!("ratecast_sse_connections").increment(delta);
}

/// An SSE stream ended, by reason (`client`, `shutdown`, `slow_consumer`).
pub fn sse_closed(reason: &'static str) {
    counter!("ratecast_sse_closes_total", "reason" => reason).increment(1);
}

/// An SSE stream refused before it started, by reason (`max_connections`).
pub fn sse_refused(reason: &'static str) {
    counter!("ratecast_sse_refused_total", "reason" => reason).increment(1);
}

/// TCP connections, from accept until the socket is closed (what
/// `MAX_CONNECTIONS` limits).
pub fn tcp_connections(delta: f64) {
    gauge!("ratecast_connections").increment(delta);
}

/// A connection torn down by the server (`close_timeout`: still open
/// `CLOSE_GRACE` after its close frame was queued; `write_stalled`: its writes
/// made no progress for the send timeout plus that grace).
pub fn torn_down(reason: &'static str) {
    counter!("ratecast_connections_torn_down_total", "reason" => reason).increment(1);
}

/// A point from the live feed reached the hub `lag_seconds` after its second
/// began, and what the hub did with it (`live`, `late`, `duplicate`, `expired`,
/// `future`, `unknown_asset`).
pub fn feed_point(lag_seconds: f64, outcome: &'static str) {
    counter!("ratecast_feed_points_total", "outcome" => outcome).increment(1);
    metrics::histogram!("ratecast_feed_lag_seconds").record(lag_seconds.max(0.0));
}

/// A point of a snapshot (a window load) was refused (`future`,
/// `unknown_asset`): counted like a refused live point, without a lag.
pub fn feed_point_refused(outcome: &'static str) {
    counter!("ratecast_feed_points_total", "outcome" => outcome).increment(1);
}

/// The feed reloaded the window, by cause (`lagged`, `reset`, `error`).
pub fn feed_resync(kind: &'static str) {
    counter!("ratecast_feed_resyncs_total", "kind" => kind).increment(1);
}

/// Gauges read at scrape time: from the hub, and whether `/readyz` answers 200.
/// A scrape changes no state: a window's size counts the points inside the
/// history span now, so a quiet asset's size is current without evicting.
pub fn record_hub(hub: &Hub, ready: bool) {
    let subscribers = hub.subscriber_counts();
    let windows = hub.window_sizes(hub.now_secs());
    // Positive: this host's clock is behind the store's (the database's on MongoDB).
    metrics::gauge!("ratecast_clock_offset_seconds").set(hub.clock().offset_ms() as f64 / 1000.0);
    for ((asset, subscribers), window) in hub.assets().iter().zip(subscribers).zip(windows) {
        let name = asset.name.to_string();
        gauge!("ratecast_ws_subscriptions", "asset" => name.clone()).set(subscribers as f64);
        gauge!("ratecast_window_points", "asset" => name).set(window as f64);
    }
    gauge!("ratecast_ready").set(if ready { 1.0 } else { 0.0 });
}

/// A per-connection buffer reported process-wide: `held` is the sum of what
/// every connection holds in it now, `largest` the most any one connection
/// held since start (what a memory bound is checked against).
pub struct BufferGauges {
    held: &'static str,
    largest: &'static str,
    largest_seen: AtomicUsize,
}

impl BufferGauges {
    pub const fn new(held: &'static str, largest: &'static str) -> Self {
        Self {
            held,
            largest,
            largest_seen: AtomicUsize::new(0),
        }
    }
}

/// One connection's share of a [`BufferGauges`]; dropping it takes the share
/// out of the sum.
pub struct HeldBytes {
    gauges: &'static BufferGauges,
    reported: usize,
}

impl HeldBytes {
    pub fn new(gauges: &'static BufferGauges) -> Self {
        Self {
            gauges,
            reported: 0,
        }
    }

    /// This connection now holds `held` bytes in the buffer.
    pub fn report(&mut self, held: usize) {
        if held == self.reported {
            return;
        }
        gauge!(self.gauges.held).increment(held as f64 - self.reported as f64);
        self.reported = held;
        let largest = &self.gauges.largest_seen;
        if largest.fetch_max(held, Ordering::Relaxed) < held {
            gauge!(self.gauges.largest).set(largest.load(Ordering::Relaxed) as f64);
        }
    }
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        gauge!(self.gauges.held).decrement(self.reported as f64);
    }
}
