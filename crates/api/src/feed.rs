//! The feed task: keeps the [`Hub`] in step with the store.
//!
//! It follows the store from the start of the history window, applies the
//! snapshot, marks the hub ready and then applies every live point. An interrupted
//! feed marks the hub not ready until it reports that it follows the store again
//! (no point needs to arrive: a quiet fetcher is not an unready API); a feed that
//! lags, must restart or breaks is followed again, after a backoff when it keeps
//! failing. A resync applies points the hub already has: it refuses them, so
//! nothing is numbered twice ([the sequence
//! invariant](crate::hub#the-sequence-invariant)). Expired points leave a window
//! when a point arrives for its asset or a subscriber joins it, and every window
//! once a second while points arrive (the hub evicts by wall clock), so no timer
//! races the feed.
//!
//! Each step is a method of [`Feed`] that tests call directly ([`Feed::follow`],
//! [`Feed::load`], [`Feed::apply_event`], [`Feed::ended`]); [`run_feed`] is the
//! loop that races them with shutdown and sleeps between follows.

use std::{ops::ControlFlow, sync::Arc, time::Duration};

use ratecast_core::{
    LiveFeed, PointStore, SnapshotFeed,
    retry::Backoff,
    store::{FeedError, FeedEvent},
    time::{history_cutoff, unix_now},
};
use ratecast_process::ErrorChain;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::hub::{Applied, Hub};

/// How long loading the history window and opening the feed may take before it
/// is abandoned and tried again: a backstop for a connection that hangs with no
/// error (the stores' own timeouts are shorter).
const FOLLOW_DEADLINE: Duration = Duration::from_secs(60);

/// Follows `store` into `hub` until `shutdown`.
#[tracing::instrument(name = "feed", skip_all)]
pub async fn run_feed<S: PointStore>(hub: Arc<Hub>, store: S, shutdown: CancellationToken) {
    let mut feed = Feed::new(hub, store);
    let mut wait = None;
    loop {
        if let Some(delay) = wait.take() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
        let followed = tokio::select! {
            () = shutdown.cancelled() => return,
            followed = feed.follow() => followed,
        };
        let mut live = match followed {
            Ok(live) => live,
            Err(delay) => {
                wait = Some(delay);
                continue;
            }
        };
        let ended = loop {
            // Only shutdown races the feed: a store's `next` need not be cancel-safe.
            let event = tokio::select! {
                () = shutdown.cancelled() => return,
                event = live.next() => event,
            };
            if let ControlFlow::Break(error) = feed.apply_event(event, unix_now()) {
                break error;
            }
        };
        wait = feed.ended(ended);
    }
}

/// The feed's state from one step to the next.
pub struct Feed<S> {
    hub: Arc<Hub>,
    store: S,
    /// Paces following again after failures; reset by a delivered point.
    backoff: Backoff,
    /// Whether the current follow delivered a point: one that keeps ending
    /// before delivering anything is followed again only after a backoff.
    delivered: bool,
    /// The second every window last dropped its expired points, so a quiet
    /// asset's window is trimmed once a second while other points arrive.
    evicted_at: i64,
}

impl<S: PointStore> Feed<S> {
    pub fn new(hub: Arc<Hub>, store: S) -> Self {
        Self {
            hub,
            store,
            backoff: Backoff::new(),
            delivered: false,
            evicted_at: i64::MIN,
        }
    }

    /// Loads the history window and opens the live feed, within
    /// [`FOLLOW_DEADLINE`]. On failure the hub is not ready, and the error is
    /// how long to wait before trying again.
    pub async fn follow(&mut self) -> Result<S::Feed, Duration> {
        let followed = tokio::time::timeout(
            FOLLOW_DEADLINE,
            self.store.follow(history_cutoff(self.hub.now_secs())),
        )
        .await;
        // The clock after the read: what expired while it ran leaves the window.
        let now = self.hub.now_secs();
        match followed {
            Ok(Ok(followed)) => Ok(self.load(followed, now)),
            Ok(Err(error)) => {
                self.hub.set_ready(false);
                let delay = self.backoff.next_delay();
                warn!(error = %ErrorChain(&error), retry_in = ?delay, "cannot load the history window");
                Err(delay)
            }
            Err(_elapsed) => {
                self.hub.set_ready(false);
                let delay = self.backoff.next_delay();
                warn!(
                    deadline = ?FOLLOW_DEADLINE,
                    retry_in = ?delay,
                    "loading the history window took too long; abandoned"
                );
                Err(delay)
            }
        }
    }

    /// Applies a follow's snapshot at wall-clock second `now` and marks the hub
    /// ready; returns the live feed that continues it.
    pub fn load<F>(&mut self, followed: SnapshotFeed<F>, now: i64) -> F {
        for point in &followed.snapshot {
            let applied = self.hub.apply(point, now);
            if matches!(applied, Applied::Future | Applied::UnknownAsset) {
                // Refusals count wherever the point came from; the rest of a
                // snapshot is the window being loaded again, not news.
                crate::metrics::feed_point_refused(applied.label());
            }
        }
        self.hub.set_ready(true);
        self.delivered = false;
        info!(
            points = followed.snapshot.len(),
            "history window loaded; following live points"
        );
        followed.feed
    }

    /// One event of the live feed, received at `now` (Unix time by this host's
    /// clock; judged by the hub's shared clock): a point goes
    /// to the hub, an interruption or a resumption sets readiness. `Break` with
    /// the error that ends this follow.
    pub fn apply_event(
        &mut self,
        event: Result<FeedEvent, FeedError>,
        now: Duration,
    ) -> ControlFlow<FeedError> {
        match event {
            Ok(FeedEvent::Resumed) => {
                if !self.hub.is_ready() {
                    info!("live feed follows the store again");
                    self.hub.set_ready(true);
                }
            }
            Ok(FeedEvent::Point(point)) => {
                self.backoff.reset();
                self.delivered = true;
                let now = self.hub.clock().reference(now);
                let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
                let applied = self.hub.apply(&point, now_secs);
                crate::metrics::feed_point(now.as_secs_f64() - point.time as f64, applied.label());
                if now_secs > self.evicted_at {
                    self.hub.evict_expired(now_secs);
                    self.evicted_at = now_secs;
                }
            }
            Err(FeedError::Interrupted(error)) => {
                if self.hub.is_ready() {
                    warn!(error = %ErrorChain(&error), "live feed interrupted; resuming");
                    self.hub.set_ready(false);
                }
            }
            Err(error) => return ControlFlow::Break(error),
        }
        ControlFlow::Continue(())
    }

    /// The follow ended with `error`: counted and logged. Returns how long to
    /// wait before following again: nothing after a follow that delivered a
    /// point, a backoff after one that did not.
    pub fn ended(&mut self, error: FeedError) -> Option<Duration> {
        match error {
            // Not ready until the window is loaded again (`load`): until then
            // this replica misses points that a subscriber would not get.
            FeedError::Lagged { missed } => {
                self.hub.set_ready(false);
                crate::metrics::feed_resync("lagged");
                warn!(missed, "live feed lagged; reloading the window");
            }
            FeedError::Reset(reason) => {
                self.hub.set_ready(false);
                crate::metrics::feed_resync("reset");
                warn!(reason = %ErrorChain(&reason), "live feed must restart; reloading the window");
            }
            error => {
                crate::metrics::feed_resync("error");
                self.hub.set_ready(false);
                warn!(error = %ErrorChain(&error), "live feed stopped; following again");
            }
        }
        (!self.delivered).then(|| self.backoff.next_delay())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use ratecast_core::{AssetId, MemoryStore, Point, StoreError, memory::MemoryFeed};
    use ratecast_testkit::TEST_RETENTION_SECS;
    use ratecast_testkit::rigged::{Rig, Rigged};

    use super::*;

    /// A store whose first `follow` never answers (a connection that hangs
    /// with no error); later ones are the memory store's.
    struct HangsOnce {
        inner: MemoryStore,
        hung: AtomicBool,
    }

    impl Rig for HangsOnce {
        type Feed = MemoryFeed;

        fn inner(&self) -> &MemoryStore {
            &self.inner
        }

        async fn follow(&self, since: i64) -> Result<SnapshotFeed<MemoryFeed>, StoreError> {
            if !self.hung.swap(true, Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
            self.inner.follow(since).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_follow_that_hangs_is_abandoned_at_the_deadline_and_tried_again() {
        let assets: ratecast_core::AssetList = "EURUSD".parse().expect("assets");
        let hub = Arc::new(Hub::new(assets.clone()));
        let store = Rigged(HangsOnce {
            inner: MemoryStore::new(assets, TEST_RETENTION_SECS),
            hung: AtomicBool::new(false),
        });
        let shutdown = CancellationToken::new();
        let feed = tokio::spawn(run_feed(hub.clone(), store, shutdown.clone()));
        let start = tokio::time::Instant::now();
        while !hub.is_ready() {
            assert!(
                start.elapsed() < FOLLOW_DEADLINE * 2,
                "never followed again"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            start.elapsed() >= FOLLOW_DEADLINE,
            "ready only after the hung follow was abandoned"
        );
        shutdown.cancel();
        feed.await.expect("the feed ends at shutdown");
    }

    const NOW: i64 = 1_700_000_000;

    /// A feed of a memory store over `assets`, and its hub.
    fn feed(assets: &str) -> (Arc<Hub>, Feed<MemoryStore>) {
        let assets: ratecast_core::AssetList = assets.parse().expect("assets");
        let hub = Arc::new(Hub::new(assets.clone()));
        let store = MemoryStore::new(assets, TEST_RETENTION_SECS);
        (hub.clone(), Feed::new(hub, store))
    }

    /// A follow whose snapshot is `points` (the live feed is not used here).
    fn followed(points: Vec<Point>) -> SnapshotFeed<()> {
        SnapshotFeed {
            snapshot: points,
            feed: (),
        }
    }

    fn eurusd(time: i64) -> Result<FeedEvent, FeedError> {
        Ok(FeedEvent::Point(ratecast_testkit::point(
            1, "EURUSD", time, 1.0,
        )))
    }

    /// Unix time at second `secs`.
    fn at(secs: i64) -> Duration {
        Duration::from_secs(u64::try_from(secs).expect("after 1970"))
    }

    fn interrupted() -> Result<FeedEvent, FeedError> {
        Err(FeedError::Interrupted(StoreError::Unavailable(
            "connection reset".into(),
        )))
    }

    #[test]
    fn an_interrupted_feed_is_unready_until_it_says_it_follows_the_store_again() {
        let (hub, mut feed) = feed("EURUSD");
        feed.load(followed(vec![]), NOW);
        assert!(hub.is_ready());
        assert!(feed.apply_event(interrupted(), at(NOW)).is_continue());
        assert!(!hub.is_ready());
        assert!(feed.apply_event(eurusd(NOW), at(NOW)).is_continue());
        assert_eq!(hub.seq(AssetId(1)), Some(1), "the point was applied");
        assert!(!hub.is_ready(), "a point alone is not news that it resumed");
        assert!(
            feed.apply_event(Ok(FeedEvent::Resumed), at(NOW))
                .is_continue()
        );
        assert!(hub.is_ready());
    }

    #[test]
    fn a_follow_that_ends_before_delivering_a_point_backs_off_and_one_that_delivered_does_not() {
        /// The feed lags: the follow ends; how long before the next one.
        fn end(feed: &mut Feed<MemoryStore>) -> Option<Duration> {
            match feed.apply_event(Err(FeedError::Lagged { missed: 3 }), at(NOW)) {
                ControlFlow::Break(error) => feed.ended(error),
                ControlFlow::Continue(()) => panic!("a lagged feed ends its follow"),
            }
        }
        let (hub, mut feed) = feed("EURUSD");
        feed.load(followed(vec![]), NOW);
        let first = end(&mut feed).expect("backs off");
        feed.load(followed(vec![]), NOW);
        let second = end(&mut feed).expect("backs off");
        assert!(second > first, "longer each time: {first:?}, {second:?}");
        assert!(
            !hub.is_ready(),
            "not ready until the window is loaded again"
        );
        feed.load(followed(vec![]), NOW);
        assert!(feed.apply_event(eurusd(NOW), at(NOW)).is_continue());
        assert_eq!(end(&mut feed), None, "followed again at once");
    }

    #[test]
    fn a_quiet_assets_expired_points_leave_its_window_while_other_points_arrive() {
        let (hub, mut feed) = feed("EURUSD,USDJPY");
        let old = ratecast_testkit::point(1, "EURUSD", NOW - 100, 1.0);
        feed.load(followed(vec![old]), NOW);
        assert_eq!(hub.window_sizes(NOW), vec![1, 0]);
        let later = NOW + 1750;
        let usdjpy = ratecast_testkit::point(2, "USDJPY", later, 150.0);
        assert!(
            feed.apply_event(Ok(FeedEvent::Point(usdjpy)), at(later))
                .is_continue()
        );
        assert_eq!(
            hub.window_sizes(NOW),
            vec![0, 1],
            "EURUSD's point left the span before USDJPY's arrived: evicted"
        );
    }

    #[test]
    fn a_feed_that_must_reload_is_unready_until_the_window_is_loaded_again() {
        for error in [
            FeedError::Lagged { missed: 3 },
            FeedError::Reset(StoreError::Unavailable("resume point lost".into())),
        ] {
            let (hub, mut feed) = feed("EURUSD");
            feed.load(followed(vec![]), NOW);
            assert!(feed.apply_event(eurusd(NOW), at(NOW)).is_continue());
            assert!(hub.is_ready());
            let ControlFlow::Break(error) = feed.apply_event(Err(error), at(NOW)) else {
                panic!("the follow ends");
            };
            feed.ended(error);
            assert!(!hub.is_ready(), "/readyz 503 while the window reloads");
            assert!(hub.has_loaded(), "connections are still accepted");
            feed.load(followed(vec![]), NOW);
            assert!(hub.is_ready());
        }
    }

    #[test]
    fn points_are_judged_by_the_shared_clock_not_this_hosts() {
        let (hub, mut feed) = feed("EURUSD");
        // This host's clock lags the database's by 10 s: points stamped by the
        // database's second are 10 s "ahead" of it.
        let clock = hub.clock().clone();
        clock.set_offset(10_000);
        feed.load(followed(vec![]), NOW + 10);
        assert!(feed.apply_event(eurusd(NOW + 8), at(NOW)).is_continue());
        assert_eq!(hub.seq(AssetId(1)), Some(1), "live, not refused as future");
        // And one ahead of the shared clock is refused.
        assert!(feed.apply_event(eurusd(NOW + 16), at(NOW)).is_continue());
        assert_eq!(hub.seq(AssetId(1)), Some(1), "refused as future");
    }

    #[test]
    fn refusals_in_a_snapshot_are_counted_like_live_ones() {
        let recorder = ratecast_process::metrics::standalone_recorder();
        let handle = recorder.handle();
        let (hub, mut feed) = feed("EURUSD");
        let snapshot = vec![
            ratecast_testkit::point(1, "EURUSD", NOW - 1, 1.0),
            ratecast_testkit::point(1, "EURUSD", NOW + 60, 1.0),
            ratecast_testkit::point(1, "EURUSD", NOW + 61, 1.0),
        ];
        metrics::with_local_recorder(&recorder, || feed.load(followed(snapshot), NOW));
        assert_eq!(hub.window_sizes(NOW), vec![1]);
        let page = handle.render();
        assert!(
            page.contains(r#"ratecast_feed_points_total{outcome="future"} 2"#),
            "{page}"
        );
        assert!(
            !page.contains(r#"outcome="live""#),
            "a reload is not news: {page}"
        );
    }
}
