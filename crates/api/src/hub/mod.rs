//! The hub: one topic per asset (`topic.rs`: the asset's numbered live points,
//! its window and shared history frame, catch-up) and what spans the assets:
//! readiness, which points are refused before they reach a window, and the
//! lookups the sessions, relays, feed and metrics use.
//!
//! The hub owns all per-asset state; sessions and relays only read from it. A
//! point is encoded once, outside any lock ([`PointBytes`]), and the window keeps
//! those bytes: live points, catch-ups and histories are all built from them, so
//! nothing is serialized per subscriber. The whole-window history frame is built
//! at most once per change of the window and then shared by every subscriber.
//! The hub does not own sockets or relays, and does not skip or fill anything
//! for a subscriber: that is the subscriber's side of the rule below
//! ([`crate::outbound`]).
//!
//! # The sequence invariant
//!
//! A subscriber receives each point of its asset once and in time order: its
//! history, then live points, with no hole and no duplicate where the two meet,
//! nor after it fell behind. In numbers: a subscriber whose history ends at
//! sequence number N then receives the live points numbered N+1, N+2, …, each
//! exactly once and in that order, whether they reach it through its relay or
//! a catch-up; only those not after its `last_time` are left out (it has them).
//! This is the one place that says why; the feed, the relay, the outbound side
//! and the session link here.
//!
//! - **Numbering.** Each topic numbers the points it pushes live, 1, 2, 3, …,
//!   under its lock, as it places them in its window; the topic's `seq` is the
//!   number of the last one (0: none yet). Only a point newer than every point
//!   the window ever took is pushed and numbered, so the numbers ascend with
//!   time. None is ever reused: a resync of the feed applies the store's points
//!   again, and the window refuses those it holds.
//! - **A subscriber's `seq` and `last_time`** ([`Subscription`]). `seq` is the
//!   number of the last point the client has (in its history, a catch-up or
//!   live): the next one it needs is `seq + 1`. `last_time` is the newest time
//!   it has (its history's newest point, or its `since` if that is later): no
//!   point at or before it is sent again.
//! - **History meets live.** A session first takes a receiver of its worker's
//!   relay, then [`Hub::subscribe`] takes the history and `seq` together, under
//!   the topic's lock. Every point numbered up to `seq` was in the window when
//!   the history was taken (or had left the span, or is not after `since`), and
//!   every point numbered after it is pushed later, so it reaches the receiver
//!   that already listened. The subscriber skips received points numbered up to
//!   `seq` (its relay may still be forwarding older ones): no duplicate; and
//!   takes the others in order: no hole.
//! - **A gap** is a received point numbered above `seq + 1`, or a receiver that
//!   reports it lagged: a ring overflowed on the way ([`POINT_BUFFER`] points,
//!   the topic's or a relay's) and points were skipped. The subscriber then
//!   catches up from the window ([`Hub::catch_up`]): the numbered points after
//!   its `last_time` (the window keeps each point's number), in time order, a
//!   chunk at a time. The chunk that reaches the
//!   newest point carries the topic's `seq`, taken under the same lock
//!   ([`CatchUp::done_at`]): every point numbered up to it is in that chunk or
//!   at or before `last_time` (or has left the span), so the subscriber takes
//!   it as its `seq` and continues live, skipping the numbers the catch-up
//!   covered.
//! - **Resuming with `since`.** A client that reconnects with `since` gets a
//!   history of only the window's points after `since`, built from the same
//!   bytes (or the shared frame, when `since` is older than every point held), with the topic's `seq` taken under the same lock as for any
//!   subscriber; its `last_time` is at least `since`. If this replica's window
//!   does not reach `since` yet (the client came from a replica that was
//!   ahead), the live points up to `since` are numbered and received, and
//!   dropped as not after `last_time`: numbering and catch-up work unchanged.
//! - **Live points only move forward.** A late point (older than the newest the
//!   topic took, and not held yet) goes into the window in time order, so later
//!   histories hold it, but it is neither numbered nor pushed, nor sent by a
//!   catch-up (which sends numbered points only): a subscriber that has a newer
//!   point would see time go backwards, and every subscriber sees the same
//!   stream. With the
//!   drop of live points not after `last_time` (above), what a subscriber sends
//!   stays strictly ascending.

mod topic;

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use bytes::Bytes;
use ratecast_core::{
    AssetId, AssetList, Point,
    protocol::assets_frame,
    throttle::LogThrottle,
    time::{MAX_FUTURE_SECS, SharedClock, history_cutoff},
    window::Placed,
};
use tokio::sync::broadcast;
use tracing::warn;

use self::topic::Topic;
pub use self::topic::{CatchUp, POINT_BUFFER, Seed, Subscribed, Subscription};
use crate::wire::{self, PointBytes};

/// Seconds between log lines about refused future points.
const FUTURE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// What [`Hub::apply`] did with a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Newer than the asset's newest: numbered and pushed to its subscribers.
    Live,
    /// Older than the newest but inside the window: taken in time order for
    /// later histories, not pushed (live points only move forward).
    Late,
    /// That second is held already.
    Duplicate,
    /// Older than the window.
    Expired,
    /// Stamped more than [`MAX_FUTURE_SECS`] after the shared clock: refused.
    Future,
    /// No tracked asset has its id.
    UnknownAsset,
}

impl Applied {
    /// The `outcome` label of `ratecast_feed_points_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Late => "late",
            Self::Duplicate => "duplicate",
            Self::Expired => "expired",
            Self::Future => "future",
            Self::UnknownAsset => "unknown_asset",
        }
    }
}

/// Shared state of all subscribers; one per API process.
pub struct Hub {
    assets: AssetList,
    /// The `assets` answer, encoded once: the list never changes while running.
    assets_frame: Bytes,
    /// One topic per asset, in id order.
    topics: Box<[Topic]>,
    /// Whether the window has been loaded from the store and the feed is live.
    ready: AtomicBool,
    /// Whether the window was ever loaded: until then a subscriber would get an
    /// empty history, so new websocket connections are refused.
    loaded: AtomicBool,
    /// Refused future points, logged so that a skewed fetcher clock writes a
    /// line a minute, not one per point.
    future_log: LogThrottle,
    /// The clock the deployment shares (the store's): what `now` is for the
    /// window's span and for refusing future points.
    clock: SharedClock,
}

impl Hub {
    pub fn new(assets: AssetList) -> Self {
        let topics = assets.iter().cloned().map(Topic::new).collect();
        Self {
            assets_frame: wire::text_frame(assets_frame(&assets).as_bytes()),
            assets,
            topics,
            ready: AtomicBool::new(false),
            loaded: AtomicBool::new(false),
            future_log: LogThrottle::new(FUTURE_LOG_INTERVAL),
            clock: SharedClock::local(),
        }
    }

    /// The hub judging time by `clock` (the store's, [`PointStore::clock`]),
    /// instead of this host's own: an API replica whose clock lags the
    /// database's would otherwise refuse every point as future, and one ahead
    /// would expire points early.
    ///
    /// [`PointStore::clock`]: ratecast_core::PointStore::clock
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The shared clock time is judged by.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The current second by the shared clock.
    pub fn now_secs(&self) -> i64 {
        self.clock.now_secs()
    }

    pub fn assets(&self) -> &AssetList {
        &self.assets
    }

    /// The encoded `assets` frame.
    pub fn assets_frame(&self) -> Bytes {
        self.assets_frame.clone()
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn set_ready(&self, ready: bool) {
        if ready {
            self.loaded.store(true, Ordering::Release);
        }
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether the window was loaded at least once (a later feed interruption
    /// does not unload it: it resumes without losing points).
    pub fn has_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    fn topic(&self, id: AssetId) -> Option<&Topic> {
        self.topics.get(self.assets.index_of(id)?)
    }

    /// Adds a stored point at wall-clock second `now`: a new one is pushed to the
    /// asset's subscribers, a late one only enters the window; points stamped
    /// in the future, already held, expired or of an unknown asset are refused.
    pub fn apply(&self, point: &Point, now: i64) -> Applied {
        let Some(topic) = self.topic(point.asset_id) else {
            return Applied::UnknownAsset;
        };
        if point.time > now.saturating_add(MAX_FUTURE_SECS) {
            self.log_future(point, now);
            return Applied::Future;
        }
        let cutoff = history_cutoff(now);
        if point.time < cutoff {
            return Applied::Expired;
        }
        // Encoded outside the topic's lock; the window keeps it only if taken.
        match topic.place(point.time, PointBytes::encode(point), cutoff) {
            Placed::Newest => Applied::Live,
            Placed::Late => Applied::Late,
            Placed::Duplicate => Applied::Duplicate,
            Placed::Expired => Applied::Expired,
        }
    }

    fn log_future(&self, point: &Point, now: i64) {
        let report = self.future_log.failure(now);
        if report.is_due() {
            warn!(
                asset = %point.asset_name,
                time = point.time,
                now,
                refused = report.failures(),
                clock_offset_ms = self.clock.offset_ms(),
                "refusing points stamped in the future (is the fetcher's clock ahead?); \
                 counted in ratecast_feed_points_total{{outcome=\"future\"}}"
            );
        }
    }

    /// Subscribes to `id` at second `now` (by [`Hub::now_secs`]): its history
    /// frame and the sequence number it ends at. With a `since` inside the
    /// window, the history holds only points after `since` (built for this
    /// subscriber, from the window's shared bytes, outside the lock); without it,
    /// or with one older than every point held, the shared frame of the whole
    /// window.
    /// Take the receiver ([`Hub::points`], or a relay's) first. `None` for an
    /// unknown asset.
    pub fn subscribe(&self, id: AssetId, now: i64, since: Option<i64>) -> Option<Subscription> {
        Some(self.topic(id)?.subscribe(now, since))
    }

    /// For a candle subscriber whose stored candles reach `after` (the time
    /// of their newest point): the window's points after it and the sequence
    /// number live points continue from, as [`Hub::subscribe`] with `since =
    /// after` takes them. Take the receiver first. `None` for an unknown asset.
    pub fn seed(&self, id: AssetId, now: i64, after: i64) -> Option<Seed> {
        Some(self.topic(id)?.seed(now, after))
    }

    /// For a subscriber that lagged: the next `limit` point frames of the window
    /// after `after` (shared bytes, not copies). A subscriber takes them a chunk
    /// at a time, so catching up a long backlog holds little memory per
    /// subscriber. `None` for an unknown asset.
    pub fn catch_up(&self, id: AssetId, after: Option<i64>, limit: usize) -> Option<CatchUp> {
        Some(self.topic(id)?.catch_up(after, limit))
    }

    /// A receiver of every point of `id` pushed live from now on (the
    /// per-worker relays hold one each).
    pub fn points(&self, id: AssetId) -> Option<broadcast::Receiver<PointBytes>> {
        Some(self.topic(id)?.points())
    }

    /// The sequence number of the last point of `id` pushed live: a subscriber
    /// numbered below it has points waiting.
    pub fn seq(&self, id: AssetId) -> Option<u64> {
        Some(self.topic(id)?.seq())
    }

    /// Drops from every window the points that left the history span at
    /// wall-clock second `now`, so a quiet asset's window does not hold them
    /// until its next point or subscriber.
    pub fn evict_expired(&self, now: i64) {
        let cutoff = history_cutoff(now);
        for topic in &self.topics {
            topic.evict_before(cutoff);
        }
    }

    /// Points inside the history span at wall-clock second `now`, per asset in
    /// id order; counting evicts nothing (a `/metrics` scrape changes no state).
    pub fn window_sizes(&self, now: i64) -> Vec<usize> {
        let cutoff = history_cutoff(now);
        self.topics.iter().map(|t| t.len_from(cutoff)).collect()
    }

    /// Current subscribers per asset, in id order.
    pub fn subscriber_counts(&self) -> Vec<usize> {
        self.topics.iter().map(Topic::subscribers).collect()
    }

    /// The newest point of each asset inside the history span at second `now`
    /// (by [`Hub::now_secs`]), in id order; an asset without one is left out.
    pub fn latest(&self, now: i64) -> Vec<PointBytes> {
        let cutoff = history_cutoff(now);
        self.topics
            .iter()
            .filter_map(|topic| topic.newest_from(cutoff))
            .collect()
    }
}

#[cfg(test)]
mod tests;
