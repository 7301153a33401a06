//! The hub: per asset, the 30-minute window, the shared `asset_history` frame and
//! the broadcast of encoded `point` frames, together one topic per asset.
//!
//! The hub owns all per-asset state; sessions only read from it. Each asset has one
//! small mutex held for a few microseconds (never across `.await`): applying a point
//! numbers it in the asset's sequence, and subscribing takes the history and the
//! sequence number under the same lock, so a subscriber's history and its first
//! live point meet with no hole and no duplicate (its points arrive through its
//! worker's [`Relay`](crate::relay::Relay), numbered). A point is encoded once,
//! outside the lock ([`PointBytes`]), and the window keeps those bytes: live
//! points, catch-ups and histories are all built from them, so nothing is
//! serialized per subscriber.
//! The whole-window history frame is built at most once per change of the window
//! and then shared by every subscriber.

use std::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering},
};

use bytes::Bytes;
use ratecast_core::{
    Asset, AssetId, AssetList, Point,
    protocol::assets_frame,
    time::{MAX_FUTURE_SECS, history_cutoff},
    window::{Placed, Window},
};
use tokio::sync::broadcast;
use tracing::warn;

use crate::wire::{self, PointBytes};

/// Point frames buffered per asset for subscribers, shared by all of them.
///
/// The buffer is one ring per asset, so its memory does not grow with the number
/// of subscribers. A subscriber more than this many points behind (a burst, e.g.
/// a fetcher flushing a backlog after a store outage) misses frames; its outbound
/// body sees the gap and catches up from the window with [`Hub::catch_up`], so the
/// client still receives every point once and in order. Slow-consumer policy:
/// only a client that does not take a frame within the send timeout is closed
/// (1008 "slow consumer", see `SessionConfig::send_timeout`).
pub const POINT_BUFFER: usize = 64;

/// Seconds between log lines about refused future points.
const FUTURE_LOG_INTERVAL_SECS: i64 = 60;

/// What [`Hub::apply`] did with a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Newer than the asset's newest: pushed to its subscribers.
    Live,
    /// Older than the newest but inside the window: taken in time order for
    /// later histories, not pushed (live points only move forward).
    Late,
    /// That second is held already.
    Duplicate,
    /// Older than the window.
    Expired,
    /// Stamped more than [`MAX_FUTURE_SECS`] after the API's clock: refused.
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
    /// History frames built so far (each then shared by many subscribers).
    history_builds: AtomicU64,
    /// When a refused future point was last logged, so a skewed fetcher clock
    /// writes a line a minute, not one per point.
    future_logged: AtomicI64,
}

/// One asset's subscription topic: what a subscriber of that asset gets.
struct Topic {
    asset: Asset,
    state: Mutex<TopicState>,
    /// Current subscribers, for `ratecast_ws_subscriptions` (they listen on their
    /// worker's relay, not on the topic's broadcast).
    subscribers: Arc<AtomicUsize>,
}

struct TopicState {
    window: Window<PointBytes>,
    /// The encoded history of `window`, built on the first subscribe after a
    /// change and shared until the next one.
    history: Option<Bytes>,
    points: broadcast::Sender<PointBytes>,
    /// Points pushed live so far: each broadcast point carries its number, so a
    /// subscriber that joined at `seq` knows which ones it must get.
    seq: u64,
}

/// One counted subscriber of an asset; dropping it uncounts it.
pub struct Subscribed(Arc<AtomicUsize>);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A chunk of a lagging subscriber's catch-up.
pub struct CatchUp {
    /// The next points after the subscriber's newest, ascending.
    pub frames: Vec<PointBytes>,
    /// When these reach the newest point: the sequence number they end at (the
    /// broadcast points numbered up to it are among them or older). `None` when
    /// more remain.
    pub done_at: Option<u64>,
}

/// What a subscriber gets: the history so far and where live points continue.
pub struct Subscription {
    pub asset: Asset,
    /// The encoded `asset_history` frame.
    pub history: Bytes,
    /// The sequence number of the last point pushed before `history` was taken:
    /// the subscriber gets exactly the points numbered after it.
    pub seq: u64,
    /// Counts the subscriber until dropped.
    pub counted: Subscribed,
    /// The newest time the client has (history or `since`): a catch-up
    /// continues after it and live points not after it are not sent again.
    pub last_time: Option<i64>,
}

impl Hub {
    pub fn new(assets: AssetList) -> Self {
        let topics = assets
            .iter()
            .map(|asset| Topic {
                asset: asset.clone(),
                state: Mutex::new(TopicState {
                    window: Window::new(),
                    history: None,
                    points: broadcast::channel(POINT_BUFFER).0,
                    seq: 0,
                }),
                subscribers: Arc::default(),
            })
            .collect();
        Self {
            assets_frame: wire::text_frame(assets_frame(&assets).as_bytes()),
            assets,
            topics,
            ready: AtomicBool::new(false),
            loaded: AtomicBool::new(false),
            history_builds: AtomicU64::new(0),
            future_logged: AtomicI64::new(i64::MIN),
        }
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

    /// How many history frames were built (not served) so far.
    pub fn history_builds(&self) -> u64 {
        self.history_builds.load(Ordering::Relaxed)
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
        // Encode outside the lock; `place` keeps it only if the point is taken.
        let mut encoded = PointBytes::encode(point);
        let mut state = topic.lock();
        state.window.evict_before(cutoff);
        let placed = state.window.place(point.time, || encoded.clone());
        match placed {
            Placed::Newest => {
                // Only points pushed live are numbered.
                state.seq += 1;
                encoded.seq = state.seq;
                state.history = None;
                // An error only means nobody is subscribed to this asset right now.
                let _ = state.points.send(encoded);
                Applied::Live
            }
            Placed::Late => {
                state.history = None;
                Applied::Late
            }
            Placed::Duplicate => Applied::Duplicate,
            Placed::Expired => Applied::Expired,
        }
    }

    fn log_future(&self, point: &Point, now: i64) {
        let last = self.future_logged.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= FUTURE_LOG_INTERVAL_SECS
            && self
                .future_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            warn!(
                asset = %point.asset_name,
                time = point.time,
                now,
                "refusing a point stamped in the future (is the fetcher's clock ahead?); \
                 counted in ratecast_feed_points_total{{outcome=\"future\"}}"
            );
        }
    }

    /// Subscribes to `id`: its history frame and a receiver of every later
    /// point. With `since`, the history holds only points after `since` (built
    /// for this subscriber, from the window's shared bytes, outside the lock);
    /// without it, the shared frame of the whole window. `None` for an unknown
    /// asset.
    pub fn subscribe(&self, id: AssetId, now: i64, since: Option<i64>) -> Option<Subscription> {
        let topic = self.topic(id)?;
        let mut state = topic.lock();
        if state.window.evict_before(history_cutoff(now)) {
            state.history = None;
        }
        let from = since.map_or(i64::MIN, |since| since.saturating_add(1));
        // A client resuming from `since` already has everything up to it, even if
        // this replica's window does not reach that far yet.
        let last_time = state.window.newest_held().max(since);
        let seq = state.seq;
        topic.subscribers.fetch_add(1, Ordering::Relaxed);
        let counted = Subscribed(topic.subscribers.clone());
        let history = match since {
            Some(_) => {
                let missed: Vec<PointBytes> =
                    state.window.since(from).map(|(_, p)| p.clone()).collect();
                drop(state);
                wire::history_frame(missed.iter())
            }
            None => match &state.history {
                Some(frame) => frame.clone(),
                None => {
                    let frame = wire::history_frame(state.window.since(i64::MIN).map(|(_, p)| p));
                    self.history_builds.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::history_built();
                    state.history = Some(frame.clone());
                    frame
                }
            },
        };
        Some(Subscription {
            asset: topic.asset.clone(),
            history,
            seq,
            counted,
            last_time,
        })
    }

    /// For a subscriber that lagged: the next `limit` point frames of the window
    /// after `after` (shared bytes, not copies). A subscriber takes them a chunk
    /// at a time, so catching up a long backlog holds little memory per
    /// subscriber. `None` for an unknown asset.
    pub fn catch_up(&self, id: AssetId, after: Option<i64>, limit: usize) -> Option<CatchUp> {
        let topic = self.topic(id)?;
        let state = topic.lock();
        let from = after.map_or(i64::MIN, |t| t.saturating_add(1));
        let mut frames: Vec<PointBytes> = state
            .window
            .since(from)
            .take(limit.saturating_add(1))
            .map(|(_, p)| p.clone())
            .collect();
        let done_at = if frames.len() > limit {
            frames.truncate(limit);
            None
        } else {
            Some(state.seq)
        };
        Some(CatchUp { frames, done_at })
    }

    /// A receiver of every point of `id` pushed live from now on (the
    /// per-worker relays hold one each).
    pub fn points(&self, id: AssetId) -> Option<broadcast::Receiver<PointBytes>> {
        Some(self.topic(id)?.lock().points.subscribe())
    }

    /// The sequence number of the last point of `id` pushed live: a subscriber
    /// numbered below it has points waiting.
    pub fn seq(&self, id: AssetId) -> Option<u64> {
        Some(self.topic(id)?.lock().seq)
    }

    /// Drops points that left the history span, so memory stays bounded and a
    /// quiet asset's history does not go stale.
    pub fn evict_expired(&self, now: i64) {
        for topic in &self.topics {
            let mut state = topic.lock();
            if state.window.evict_before(history_cutoff(now)) {
                state.history = None;
            }
        }
    }

    /// Points held per asset, in id order.
    pub fn window_sizes(&self) -> Vec<usize> {
        self.topics.iter().map(|t| t.lock().window.len()).collect()
    }

    /// Current subscribers per asset, in id order.
    pub fn subscriber_counts(&self) -> Vec<usize> {
        self.topics
            .iter()
            .map(|t| t.subscribers.load(Ordering::Relaxed))
            .collect()
    }
}

impl Topic {
    fn lock(&self) -> MutexGuard<'_, TopicState> {
        ratecast_core::sync::lock(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use ratecast_core::time::HISTORY_SPAN_SECS;
    use serde_json::Value;

    use super::*;
    use crate::wire::payload;

    const NOW: i64 = 1_700_000_000;

    fn hub() -> Hub {
        Hub::new("EURUSD,USDJPY".parse().expect("valid"))
    }

    fn point(asset: u32, time: i64, value: f64) -> Point {
        Point {
            asset_id: AssetId(asset),
            asset_name: if asset == 1 { "EURUSD" } else { "USDJPY" }.into(),
            time,
            value,
        }
    }

    /// Subscribes as a session does: the receiver first, then the history.
    fn subscribe(
        hub: &Hub,
        id: u32,
        now: i64,
        since: Option<i64>,
    ) -> (Subscription, broadcast::Receiver<PointBytes>) {
        let points = hub.points(AssetId(id)).expect("known asset");
        let sub = hub.subscribe(AssetId(id), now, since).expect("known asset");
        (sub, points)
    }

    fn json(frame: &[u8]) -> Value {
        serde_json::from_slice(payload(frame)).expect("frames are JSON")
    }

    fn history_times(frame: &[u8]) -> Vec<i64> {
        json(frame)["message"]["points"]
            .as_array()
            .expect("points array")
            .iter()
            .map(|p| p["time"].as_i64().expect("time"))
            .collect()
    }

    #[test]
    fn history_then_live_points_meet_without_hole_or_duplicate() {
        let hub = hub();
        hub.apply(&point(1, NOW - 2, 1.0), NOW);
        hub.apply(&point(1, NOW - 1, 1.1), NOW);
        let (sub, mut points) = subscribe(&hub, 1, NOW, None);
        assert_eq!(hub.apply(&point(1, NOW, 1.2), NOW), Applied::Live);
        assert_eq!(history_times(&sub.history), vec![NOW - 2, NOW - 1]);
        let live = points.try_recv().expect("the next point is queued");
        assert_eq!(live.time, NOW);
        assert_eq!(json(&live.frame)["message"]["time"], NOW);
        assert!(points.try_recv().is_err(), "nothing else");
    }

    #[test]
    fn stale_and_repeated_points_are_not_pushed() {
        let hub = hub();
        let (_sub, mut points) = subscribe(&hub, 2, NOW, None);
        assert_eq!(hub.apply(&point(2, NOW, 150.0), NOW), Applied::Live);
        assert_eq!(hub.apply(&point(2, NOW, 151.0), NOW), Applied::Duplicate);
        assert_eq!(
            hub.apply(&point(2, NOW - 2000, 149.0), NOW),
            Applied::Expired
        );
        assert_eq!(hub.apply(&point(9, NOW, 1.0), NOW), Applied::UnknownAsset);
        assert!(points.try_recv().is_ok());
        assert!(points.try_recv().is_err());
    }

    #[test]
    fn a_late_point_enters_later_histories_in_time_order_but_is_not_pushed() {
        let hub = hub();
        for t in [NOW - 3, NOW - 1, NOW] {
            hub.apply(&point(1, t, 1.0), NOW);
        }
        let (_sub, mut points) = subscribe(&hub, 1, NOW, None);
        assert_eq!(hub.apply(&point(1, NOW - 2, 1.5), NOW), Applied::Late);
        assert!(points.try_recv().is_err(), "live points only move forward");
        let later = hub.subscribe(AssetId(1), NOW, None).expect("asset");
        assert_eq!(
            history_times(&later.history),
            vec![NOW - 3, NOW - 2, NOW - 1, NOW]
        );
        assert_eq!(hub.history_builds(), 2, "the late point rebuilt the frame");
        assert_eq!(
            (hub.seq(AssetId(1)), later.seq),
            (Some(3), 3),
            "only points pushed live are numbered"
        );
    }

    #[test]
    fn a_subscriber_is_counted_until_its_subscription_is_dropped() {
        let hub = hub();
        let first = hub.subscribe(AssetId(1), NOW, None).expect("asset");
        let second = hub.subscribe(AssetId(1), NOW, None).expect("asset");
        let other = hub.subscribe(AssetId(2), NOW, None).expect("asset");
        assert_eq!(hub.subscriber_counts(), vec![2, 1]);
        drop(first);
        drop(other);
        assert_eq!(hub.subscriber_counts(), vec![1, 0]);
        drop(second.counted);
        assert_eq!(hub.subscriber_counts(), vec![0, 0]);
    }

    #[test]
    fn a_point_stamped_in_the_future_is_refused_and_real_points_keep_flowing() {
        let hub = hub();
        let (_sub, mut points) = subscribe(&hub, 1, NOW, None);
        assert_eq!(
            hub.apply(&point(1, NOW + MAX_FUTURE_SECS + 1, 9.9), NOW),
            Applied::Future
        );
        assert_eq!(
            hub.apply(&point(1, NOW + MAX_FUTURE_SECS, 1.0), NOW),
            Applied::Live,
            "a clock a few seconds ahead is tolerated"
        );
        let (_other, mut other_points) = subscribe(&hub, 2, NOW, None);
        assert_eq!(hub.apply(&point(2, NOW, 150.0), NOW), Applied::Live);
        assert_eq!(other_points.try_recv().expect("pushed").time, NOW);
        assert_eq!(
            points.try_recv().expect("pushed").time,
            NOW + MAX_FUTURE_SECS
        );
    }

    #[test]
    fn the_history_frame_is_built_once_per_change_and_shared() {
        let hub = hub();
        hub.apply(&point(1, NOW, 1.0), NOW);
        let a = hub.subscribe(AssetId(1), NOW, None).expect("asset").history;
        let b = hub.subscribe(AssetId(1), NOW, None).expect("asset").history;
        assert_eq!(hub.history_builds(), 1);
        assert_eq!(a.as_ptr(), b.as_ptr(), "same bytes, not a copy");
        hub.apply(&point(1, NOW + 1, 1.1), NOW + 1);
        let c = hub
            .subscribe(AssetId(1), NOW + 1, None)
            .expect("asset")
            .history;
        assert_eq!(hub.history_builds(), 2);
        assert_eq!(history_times(&c), vec![NOW, NOW + 1]);
    }

    #[test]
    fn since_limits_the_history_to_what_a_reconnecting_client_missed() {
        let hub = hub();
        for t in NOW - 10..=NOW {
            hub.apply(&point(1, t, 1.0), NOW);
        }
        let sub = hub
            .subscribe(AssetId(1), NOW, Some(NOW - 3))
            .expect("asset");
        assert_eq!(history_times(&sub.history), vec![NOW - 2, NOW - 1, NOW]);
        let caught_up = hub.subscribe(AssetId(1), NOW, Some(NOW)).expect("asset");
        assert!(history_times(&caught_up.history).is_empty());
        assert_eq!(
            hub.history_builds(),
            0,
            "filtered histories do not replace the shared one"
        );
    }

    #[test]
    fn a_lagged_subscriber_catches_up_from_the_window_a_chunk_at_a_time_with_the_shared_frames() {
        let hub = hub();
        hub.apply(&point(1, NOW - 100, 1.0), NOW);
        let (sub, mut points) = subscribe(&hub, 1, NOW, None);
        assert_eq!((sub.last_time, sub.seq), (Some(NOW - 100), 1));
        for t in NOW - 99..=NOW {
            hub.apply(&point(1, t, 1.0), NOW);
        }
        assert!(matches!(
            points.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
        let mut times = Vec::new();
        let mut after = sub.last_time;
        let done_at = loop {
            let chunk = hub.catch_up(AssetId(1), after, 30).expect("asset");
            assert!(chunk.frames.len() <= 30);
            times.extend(chunk.frames.iter().map(|f| f.time));
            after = chunk.frames.last().map(|f| f.time).or(after);
            if let Some(seq) = chunk.done_at {
                break seq;
            }
        };
        assert_eq!(times, (NOW - 99..=NOW).collect::<Vec<_>>());
        assert_eq!(done_at, 101, "the hub pushed 101 points");
        let first = hub.catch_up(AssetId(1), sub.last_time, 30).expect("asset");
        let again = hub.catch_up(AssetId(1), sub.last_time, 30).expect("asset");
        assert_eq!(
            first.frames[0].frame.as_ptr(),
            again.frames[0].frame.as_ptr(),
            "catch-ups share the window's bytes"
        );
    }

    #[test]
    fn history_holds_only_the_last_1800_seconds() {
        let hub = hub();
        for t in NOW - 2000..=NOW {
            hub.apply(&point(1, t, 1.0), NOW);
        }
        let times = history_times(&hub.subscribe(AssetId(1), NOW, None).expect("asset").history);
        assert_eq!(times.len(), HISTORY_SPAN_SECS as usize);
        assert_eq!(times.first(), Some(&(NOW - 1799)));
        // Later, with no new points, expired ones leave the window and the frame.
        let later = history_times(
            &hub.subscribe(AssetId(1), NOW + 1000, None)
                .expect("asset")
                .history,
        );
        assert_eq!(later.first(), Some(&(NOW - 799)));
        hub.evict_expired(NOW + 5000);
        assert_eq!(hub.window_sizes(), vec![0, 0]);
    }
}
