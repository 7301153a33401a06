//! The feed task: keeps the [`Hub`] in step with the store.
//!
//! It follows the store from the start of the history window, applies the
//! snapshot, marks the hub ready and then applies every live point. An interrupted
//! feed marks the hub not ready until it reports that it follows the store again
//! (no point needs to arrive: a quiet fetcher is not an unready API); a feed that lags, must
//! restart or breaks is followed again, after a backoff when it keeps failing. The
//! hub refuses points it already has, so a resync never shows a subscriber a
//! duplicate or an out-of-order point. Expired points leave the window as points
//! arrive and subscribers join (the hub evicts by wall clock on both), so no timer
//! races the feed.

use std::{sync::Arc, time::Duration};

use ratecast_core::{
    LiveFeed, PointStore,
    retry::Backoff,
    store::{FeedError, FeedEvent},
    time::{history_cutoff, unix_now_secs},
};
use ratecast_process::ErrorChain;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::hub::Hub;

/// How long loading the history window and opening the feed may take before it
/// is abandoned and tried again: a backstop for a connection that hangs with no
/// error (the stores' own timeouts are shorter).
const FOLLOW_DEADLINE: Duration = Duration::from_secs(60);

/// Follows `store` into `hub` until `shutdown`.
#[tracing::instrument(name = "feed", skip_all)]
pub async fn run_feed<S: PointStore>(hub: Arc<Hub>, store: S, shutdown: CancellationToken) {
    // Paces following again after failures; reset by a delivered point.
    let mut backoff = Backoff::new();
    let mut wait = None;
    loop {
        if let Some(delay) = wait.take() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
        let follow = tokio::select! {
            () = shutdown.cancelled() => return,
            follow = tokio::time::timeout(
                FOLLOW_DEADLINE,
                store.follow(history_cutoff(unix_now_secs())),
            ) => follow,
        };
        // The clock after the read: what expired while it ran leaves the window.
        let now = unix_now_secs();
        let mut follow = match follow {
            Ok(Ok(follow)) => follow,
            Ok(Err(error)) => {
                hub.set_ready(false);
                let delay = backoff.next_delay();
                warn!(error = %ErrorChain(&error), retry_in = ?delay, "cannot load the history window");
                wait = Some(delay);
                continue;
            }
            Err(_elapsed) => {
                hub.set_ready(false);
                let delay = backoff.next_delay();
                warn!(
                    deadline = ?FOLLOW_DEADLINE,
                    retry_in = ?delay,
                    "loading the history window took too long; abandoned"
                );
                wait = Some(delay);
                continue;
            }
        };
        let snapshot_len = follow.snapshot.len();
        for point in &follow.snapshot {
            hub.apply(point, now);
        }
        hub.set_ready(true);
        info!(
            points = snapshot_len,
            "history window loaded; following live points"
        );
        let mut delivered = false;
        let error = loop {
            // Only shutdown races the feed: a store's `next` need not be cancel-safe.
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                next = follow.feed.next() => next,
            };
            match next {
                Ok(FeedEvent::Resumed) => {
                    if !hub.is_ready() {
                        info!("live feed follows the store again");
                        hub.set_ready(true);
                    }
                }
                Ok(FeedEvent::Point(point)) => {
                    backoff.reset();
                    delivered = true;
                    let now = ratecast_core::time::unix_now();
                    let applied = hub.apply(&point, unix_now_secs());
                    crate::metrics::feed_point(
                        now.as_secs_f64() - point.time as f64,
                        applied.label(),
                    );
                }
                Err(FeedError::Interrupted(error)) => {
                    if hub.is_ready() {
                        warn!(error = %ErrorChain(&error), "live feed interrupted; resuming");
                        hub.set_ready(false);
                    }
                }
                Err(error) => break error,
            }
        };
        // A feed that keeps ending before delivering anything backs off too.
        if !delivered {
            wait = Some(backoff.next_delay());
        }
        match error {
            FeedError::Lagged { missed } => {
                crate::metrics::feed_resync("lagged");
                warn!(missed, "live feed lagged; reloading the window");
            }
            FeedError::Reset(reason) => {
                crate::metrics::feed_resync("reset");
                warn!(reason = %ErrorChain(&reason), "live feed must restart; reloading the window");
            }
            error => {
                crate::metrics::feed_resync("error");
                hub.set_ready(false);
                warn!(error = %ErrorChain(&error), "live feed stopped; following again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use ratecast_core::{
        MemoryStore, SnapshotFeed, StoreError,
        memory::{DEFAULT_RETENTION_SECS, MemoryFeed},
    };
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
            inner: MemoryStore::new(assets, DEFAULT_RETENTION_SECS),
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
}
