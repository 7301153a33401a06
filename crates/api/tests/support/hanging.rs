//! A store whose range reads (`history` and `candles`) never answer, for the
//! tests of what a stuck store costs: the deadline, the per-connection and
//! process-wide query limits, and a session that keeps flowing meanwhile.
//! Everything else is the memory store's.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use ratecast_api::ServerConfig;
use ratecast_core::{
    AssetId, AssetList, Candle, Interval, MemoryStore, Point, PointStore, SnapshotFeed, StoreError,
};

use super::{ApiServer, memory_store};

/// The memory store, with range reads that hang, counted as they arrive.
#[derive(Clone)]
pub struct HangingReads {
    inner: MemoryStore,
    calls: Arc<AtomicUsize>,
}

impl HangingReads {
    async fn hang<T>(&self) -> Result<T, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

impl PointStore for HangingReads {
    type Feed = <MemoryStore as PointStore>::Feed;

    async fn assets(&self) -> Result<Vec<ratecast_core::Asset>, StoreError> {
        self.inner.assets().await
    }

    async fn history(&self, _: AssetId, _: i64, _: i64) -> Result<Vec<Point>, StoreError> {
        self.hang().await
    }

    async fn candles(
        &self,
        _: AssetId,
        _: Interval,
        _: i64,
        _: i64,
        _: usize,
    ) -> Result<Vec<Candle>, StoreError> {
        self.hang().await
    }

    async fn follow(&self, since: i64) -> Result<SnapshotFeed<Self::Feed>, StoreError> {
        self.inner.follow(since).await
    }
}

/// The API over [`HangingReads`] of `assets`, and how many range reads reached it.
pub async fn start_hanging(assets: &str, config: ServerConfig) -> (ApiServer, Arc<AtomicUsize>) {
    let assets: AssetList = assets.parse().expect("assets");
    let memory = memory_store(&assets);
    let calls = Arc::new(AtomicUsize::new(0));
    let hanging = HangingReads {
        inner: memory.clone(),
        calls: calls.clone(),
    };
    let server = ApiServer::start_over(assets, memory, hanging, config).await;
    (server, calls)
}

/// Waits until `count` range reads reached the store.
pub async fn wait_for_calls(calls: &AtomicUsize, count: usize) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while calls.load(Ordering::SeqCst) < count {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the queries reached the store");
}
