//! Stores that misbehave on purpose: the memory store, except for a `follow`
//! the test replaces (one that never answers, a live feed the test scripts), to
//! see how the API copes.

use std::future::Future;

use ratecast_core::{
    Asset, AssetId, Candle, Interval, LiveFeed, MemoryStore, Point, PointStore, SnapshotFeed,
    StoreError,
};

/// How a misbehaving store follows; every other read goes to [`Rig::inner`].
pub trait Rig: Send + Sync + 'static {
    type Feed: LiveFeed;

    /// The store the reads not replaced go to.
    fn inner(&self) -> &MemoryStore;

    /// [`PointStore::follow`].
    fn follow(
        &self,
        since: i64,
    ) -> impl Future<Output = Result<SnapshotFeed<Self::Feed>, StoreError>> + Send;
}

/// A [`Rig`] as a [`PointStore`].
pub struct Rigged<R>(pub R);

impl<R: Rig> PointStore for Rigged<R> {
    type Feed = R::Feed;

    async fn assets(&self) -> Result<Vec<Asset>, StoreError> {
        self.0.inner().assets().await
    }

    async fn history(&self, asset: AssetId, from: i64, to: i64) -> Result<Vec<Point>, StoreError> {
        self.0.inner().history(asset, from, to).await
    }

    async fn candles(
        &self,
        asset: AssetId,
        interval: Interval,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Candle>, StoreError> {
        self.0
            .inner()
            .candles(asset, interval, from, to, limit)
            .await
    }

    async fn follow(&self, since: i64) -> Result<SnapshotFeed<R::Feed>, StoreError> {
        self.0.follow(since).await
    }
}
