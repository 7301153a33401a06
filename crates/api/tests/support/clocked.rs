//! The API over the memory store, judging time by a clock the test sets: the
//! store's shared clock ([`PointStore::clock`]), which the hub and the live
//! candles read, pinned where a test needs "now" to be.

use std::time::{Duration, Instant};

use super::{ApiServer, memory_store};
use ratecast_api::ServerConfig;
use ratecast_core::{
    Asset, AssetId, AssetList, Candle, Interval, MemoryStore, Point, PointStore, SnapshotFeed,
    StoreError, time::SharedClock,
};

/// The memory store, with a clock the test holds.
struct ClockedStore {
    inner: MemoryStore,
    clock: SharedClock,
}

impl PointStore for ClockedStore {
    type Feed = <MemoryStore as PointStore>::Feed;

    async fn assets(&self) -> Result<Vec<Asset>, StoreError> {
        self.inner.assets().await
    }

    async fn history(&self, asset: AssetId, from: i64, to: i64) -> Result<Vec<Point>, StoreError> {
        self.inner.history(asset, from, to).await
    }

    async fn candles(
        &self,
        asset: AssetId,
        interval: Interval,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Candle>, StoreError> {
        self.inner.candles(asset, interval, from, to, limit).await
    }

    async fn follow(&self, since: i64) -> Result<SnapshotFeed<Self::Feed>, StoreError> {
        self.inner.follow(since).await
    }

    fn clock(&self) -> SharedClock {
        self.clock.clone()
    }
}

/// The API over a memory store whose shared clock the test sets.
pub struct Clocked {
    pub server: ApiServer,
    clock: SharedClock,
}

impl Clocked {
    pub async fn start(assets: &str) -> Self {
        let assets: AssetList = assets.parse().expect("assets");
        let memory = memory_store(&assets);
        let clock = SharedClock::local();
        let store = ClockedStore {
            inner: memory.clone(),
            clock: clock.clone(),
        };
        let server = ApiServer::start_over(assets, memory, store, ServerConfig::default()).await;
        Self { server, clock }
    }

    /// Sets the shared clock to Unix second `now` (it runs on from there).
    pub fn set_now(&self, now: i64) {
        let secs = u64::try_from(now).expect("a time after 1970");
        self.clock.record(Instant::now(), Duration::from_secs(secs));
    }
}
