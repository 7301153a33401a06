//! The feed task: keeps the [`Hub`] in step with the store.
//!
//! It follows the store from the start of the history window, applies the
//! snapshot, marks the hub ready and then applies every live point. When the feed
//! lags or breaks it follows again; the hub refuses points it already has, so a
//! resync never shows a subscriber a duplicate or an out-of-order point.

use std::{sync::Arc, time::Duration};

use ratecast_core::{
    LiveFeed, PointStore,
    store::FeedError,
    time::{history_cutoff, unix_now_secs},
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::hub::Hub;

/// The delay before retry `attempt` (0-based): 100 ms doubling up to 10 s.
pub fn backoff(attempt: u32) -> Duration {
    const FIRST: Duration = Duration::from_millis(100);
    const CAP: Duration = Duration::from_secs(10);
    FIRST.saturating_mul(2u32.saturating_pow(attempt)).min(CAP)
}

/// How often expired points are dropped from the window when no point arrives.
const EVICT_INTERVAL: Duration = Duration::from_secs(1);

/// Follows `store` into `hub` until `shutdown`.
#[tracing::instrument(name = "feed", skip_all)]
pub async fn run_feed<S: PointStore>(hub: Arc<Hub>, store: S, shutdown: CancellationToken) {
    let mut attempt = 0u32;
    loop {
        let now = unix_now_secs();
        let follow = tokio::select! {
            () = shutdown.cancelled() => return,
            follow = store.follow(history_cutoff(now)) => follow,
        };
        let mut follow = match follow {
            Ok(follow) => follow,
            Err(error) => {
                hub.set_ready(false);
                let delay = backoff(attempt);
                attempt = attempt.saturating_add(1);
                warn!(%error, retry_in = ?delay, "cannot load the history window");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(delay) => continue,
                }
            }
        };
        attempt = 0;
        let snapshot_len = follow.snapshot.len();
        for point in &follow.snapshot {
            hub.apply(point, now);
        }
        hub.set_ready(true);
        info!(
            points = snapshot_len,
            "history window loaded; following live points"
        );
        let mut evict = tokio::time::interval(EVICT_INTERVAL);
        let error = loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = evict.tick() => hub.evict_expired(unix_now_secs()),
                next = follow.feed.next() => match next {
                    Ok(point) => {
                        hub.apply(&point, unix_now_secs());
                    }
                    Err(error) => break error,
                },
            }
        };
        match error {
            FeedError::Lagged { missed } => {
                warn!(missed, "live feed lagged; reloading the window");
            }
            error => {
                hub.set_ready(false);
                warn!(%error, "live feed stopped; following again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100ms_and_caps_at_10s() {
        let delays: Vec<u64> = (0..9).map(|a| backoff(a).as_millis() as u64).collect();
        assert_eq!(
            delays,
            vec![100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
        assert_eq!(backoff(u32::MAX), Duration::from_secs(10));
    }
}
