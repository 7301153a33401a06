//! The embedded in-memory store: the default store of the all-in-one binary.
//!
//! It keeps every asset's points for a bounded retention (default 24 h) in one
//! time-ordered deque per asset, and publishes each accepted batch on a bounded
//! broadcast channel for [`follow`](PointStore::follow). Inserting and snapshotting
//! take the same short lock, which is what makes a snapshot and its feed gapless.
//! It is not persistent: a restart starts empty.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::broadcast;

use crate::{
    asset::{Asset, AssetId, AssetList},
    candle::{self, Candle, Interval},
    point::Point,
    store::{
        FeedError, FeedEvent, InsertReport, LiveFeed, PointSink, PointStore, SnapshotFeed,
        StoreError,
    },
    time::{MAX_FUTURE_SECS, unix_now_secs},
};

/// Accepted batches buffered for followers. A follower more than this many
/// inserts behind gets [`FeedError::Lagged`] and must follow again; the bound
/// keeps a stalled follower from holding memory.
const FEED_CAPACITY: usize = 1024;

/// The in-memory store. Clones share the same data.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    assets: AssetList,
    /// Points older than the newest stored time minus this are dropped.
    retention_secs: i64,
    state: Mutex<State>,
    /// Every accepted batch, sent while `state` is locked so followers see
    /// batches in insertion order and exactly once relative to their snapshot.
    feed: broadcast::Sender<Arc<[Point]>>,
}

struct State {
    /// `(time, value)` ascending by time, one deque per asset in id order.
    series: Vec<VecDeque<(i64, f64)>>,
    /// The newest time ever stored: the reference point of retention, so memory
    /// stays bounded whatever the wall clock says.
    newest: i64,
}

impl MemoryStore {
    pub fn new(assets: AssetList, retention_secs: i64) -> Self {
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        let state = State {
            series: vec![VecDeque::new(); assets.len()],
            newest: i64::MIN,
        };
        Self {
            inner: Arc::new(Inner {
                assets,
                retention_secs: retention_secs.max(1),
                state: Mutex::new(state),
                feed,
            }),
        }
    }

    pub fn asset_list(&self) -> &AssetList {
        &self.inner.assets
    }

    /// The number of points held, all assets together.
    pub fn len(&self) -> usize {
        self.lock().series.iter().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.inner.state)
    }

    fn points_of(&self, asset: &Asset, pairs: impl Iterator<Item = (i64, f64)>) -> Vec<Point> {
        pairs
            .map(|(time, value)| Point {
                asset_id: asset.id,
                asset_name: asset.name.clone(),
                time,
                value,
            })
            .collect()
    }
}

impl State {
    /// Stores one point; `Ok(true)` if new, `Ok(false)` if its second is taken.
    fn insert(&mut self, index: usize, time: i64, value: f64) -> bool {
        let series = &mut self.series[index];
        match series.back() {
            Some(&(last, _)) if time > last => series.push_back((time, value)),
            None => series.push_back((time, value)),
            Some(_) => {
                let at = series.partition_point(|&(t, _)| t < time);
                if series.get(at).is_some_and(|&(t, _)| t == time) {
                    return false;
                }
                series.insert(at, (time, value));
            }
        }
        self.newest = self.newest.max(time);
        true
    }

    fn evict_before(&mut self, cutoff: i64) {
        for series in &mut self.series {
            while series.front().is_some_and(|&(t, _)| t < cutoff) {
                series.pop_front();
            }
        }
    }
}

impl PointSink for MemoryStore {
    async fn insert(&self, points: &[Point]) -> Result<InsertReport, StoreError> {
        let assets = &self.inner.assets;
        let indexes = points
            .iter()
            .map(|p| {
                assets
                    .index_of(p.asset_id)
                    .ok_or(StoreError::UnknownAsset(p.asset_id))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut report = InsertReport::default();
        let mut accepted = Vec::with_capacity(points.len());
        // Retention counts back from the newest point, so one stamped in the
        // future (a clock ahead) would expire every real point: refuse it.
        let latest = unix_now_secs().saturating_add(MAX_FUTURE_SECS);
        let mut state = self.lock();
        for (point, index) in points.iter().zip(indexes) {
            let cutoff = state.newest.saturating_sub(self.inner.retention_secs);
            if point.time > latest {
                report.rejected += 1;
            } else if point.time <= cutoff {
                report.expired += 1;
            } else if state.insert(index, point.time, point.value) {
                report.inserted += 1;
                accepted.push(point.clone());
            } else {
                report.duplicates += 1;
            }
        }
        let cutoff = state.newest.saturating_sub(self.inner.retention_secs);
        state.evict_before(cutoff + 1);
        if !accepted.is_empty() {
            // No receiver is not an error: nobody follows yet.
            let _ = self.inner.feed.send(accepted.into());
        }
        Ok(report)
    }
}

impl PointStore for MemoryStore {
    type Feed = MemoryFeed;

    async fn assets(&self) -> Result<Vec<Asset>, StoreError> {
        Ok(self.inner.assets.iter().cloned().collect())
    }

    async fn history(&self, asset: AssetId, from: i64, to: i64) -> Result<Vec<Point>, StoreError> {
        let assets = &self.inner.assets;
        let (Some(index), Some(asset)) = (assets.index_of(asset), assets.get(asset)) else {
            return Ok(Vec::new());
        };
        let pairs: Vec<(i64, f64)> = {
            let state = self.lock();
            let series = &state.series[index];
            let start = series.partition_point(|&(t, _)| t < from);
            series
                .range(start..)
                .take_while(|&&(t, _)| t <= to)
                .copied()
                .collect()
        };
        Ok(self.points_of(asset, pairs.into_iter()))
    }

    /// Summarised under the lock, straight from the deque: the points are
    /// never copied, and the lock is held for one pass over the range.
    async fn candles(
        &self,
        asset: AssetId,
        interval: Interval,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Candle>, StoreError> {
        let Some(index) = self.inner.assets.index_of(asset) else {
            return Ok(Vec::new());
        };
        let (first, last) = candle::point_range(interval, from, to);
        let now = PointStore::clock(self).now_secs();
        let state = self.lock();
        let series = &state.series[index];
        let start = series.partition_point(|&(t, _)| t < first);
        let points = series
            .range(start..)
            .take_while(|&&(t, _)| t <= last)
            .copied();
        Ok(candle::summarise(interval, points, now, limit))
    }

    async fn follow(&self, since: i64) -> Result<SnapshotFeed<MemoryFeed>, StoreError> {
        let (pairs, rx) = {
            let state = self.lock();
            let pairs: Vec<Vec<(i64, f64)>> = state
                .series
                .iter()
                .map(|series| {
                    let start = series.partition_point(|&(t, _)| t < since);
                    series.range(start..).copied().collect()
                })
                .collect();
            (pairs, self.inner.feed.subscribe())
        };
        let snapshot = self
            .inner
            .assets
            .iter()
            .zip(pairs)
            .flat_map(|(asset, pairs)| self.points_of(asset, pairs.into_iter()))
            .collect();
        Ok(SnapshotFeed {
            snapshot,
            feed: MemoryFeed {
                rx,
                batch: Arc::from([]),
                next: 0,
            },
        })
    }
}

/// The live feed of a [`MemoryStore`]: accepted batches, one point at a time.
pub struct MemoryFeed {
    rx: broadcast::Receiver<Arc<[Point]>>,
    batch: Arc<[Point]>,
    /// Index in `batch` of the next point to hand out.
    next: usize,
}

impl LiveFeed for MemoryFeed {
    async fn next(&mut self) -> Result<FeedEvent, FeedError> {
        loop {
            if let Some(point) = self.batch.get(self.next) {
                self.next += 1;
                return Ok(FeedEvent::Point(point.clone()));
            }
            match self.rx.recv().await {
                Ok(batch) => {
                    self.batch = batch;
                    self.next = 0;
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    return Err(FeedError::Lagged { missed });
                }
                Err(broadcast::error::RecvError::Closed) => return Err(FeedError::Closed),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;

    /// Longer than any test's points are old (the default is the binary's
    /// `--memory-retention` flag; `core` cannot use testkit's value).
    const RETENTION_SECS: i64 = 86_400;

    fn store() -> MemoryStore {
        MemoryStore::new(conformance::assets(), RETENTION_SECS)
    }

    async fn fresh_store() -> Option<MemoryStore> {
        Some(store())
    }

    crate::store_conformance_tests!(fresh_store);

    fn point(asset: u32, time: i64) -> Point {
        Point {
            asset_id: AssetId(asset),
            asset_name: if asset == 1 { "EURUSD" } else { "USDJPY" }.into(),
            time,
            value: 1.0,
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]
        #[test]
        fn candles_equal_an_offline_recomputation_of_random_points_with_gaps(
            case in conformance::candle_cases()
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(case.check(&store()));
        }
    }

    #[tokio::test]
    async fn memory_is_bounded_by_retention() {
        let store = MemoryStore::new(conformance::assets(), 100);
        for t in 0..1000 {
            store
                .insert(&[point(1, t), point(2, t)])
                .await
                .expect("insert");
        }
        // Times 900..=999 are within 100 s of the newest (999).
        assert_eq!(store.len(), 200);
        let report = store.insert(&[point(1, 850)]).await.expect("insert");
        assert_eq!(report.expired, 1);
        assert_eq!(
            store.history(AssetId(1), 0, 2000).await.expect("history")[0].time,
            900
        );
    }

    #[tokio::test]
    async fn a_point_stamped_in_the_future_is_rejected_and_expires_nothing() {
        let store = MemoryStore::new(conformance::assets(), 100);
        let now = unix_now_secs();
        store.insert(&[point(1, now - 10)]).await.expect("insert");
        let report = store
            .insert(&[point(1, now + 3600), point(2, now)])
            .await
            .expect("insert");
        assert_eq!((report.rejected, report.inserted), (1, 1));
        let held = store
            .history(AssetId(1), 0, i64::MAX)
            .await
            .expect("history");
        assert_eq!(held.len(), 1, "the real point did not expire");
        assert_eq!(held[0].time, now - 10);
    }

    #[tokio::test]
    async fn unknown_assets_are_refused_before_anything_is_stored() {
        let store = store();
        let err = store
            .insert(&[point(1, 10), point(7, 10)])
            .await
            .expect_err("unknown asset");
        assert!(matches!(err, StoreError::UnknownAsset(AssetId(7))));
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn a_follower_that_falls_behind_is_told_to_resync() {
        let store = store();
        let mut follow = store.follow(0).await.expect("follow");
        for t in 0..(FEED_CAPACITY as i64 + 10) {
            store.insert(&[point(1, t)]).await.expect("insert");
        }
        assert!(matches!(
            follow.feed.next().await,
            Err(FeedError::Lagged { .. })
        ));
    }
}
