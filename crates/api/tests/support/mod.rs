//! The API alone on 127.0.0.1:0 for this crate's black-box tests: over a memory
//! store the test writes into, or over a store a test rigs around it.

#![allow(dead_code)] // Each test file uses part of it.

use ratecast_api::{ApiError, ServerConfig};
use ratecast_core::{AssetList, MemoryStore, Point, PointSink, PointStore};
use ratecast_testkit::{Client, TEST_RETENTION_SECS, spawn_server};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The API running over a store the test reaches through `store`.
pub struct ApiServer {
    pub addr: std::net::SocketAddr,
    /// The memory store behind the server (a rigged store's inner one).
    pub store: MemoryStore,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), ApiError>>,
}

/// A memory store of `assets` with the tests' retention.
pub fn memory_store(assets: &AssetList) -> MemoryStore {
    MemoryStore::new(assets.clone(), TEST_RETENTION_SECS)
}

impl ApiServer {
    /// The API over a memory store of `assets`, with the binary's defaults.
    pub async fn start(assets: &str) -> Self {
        Self::start_with(assets, ServerConfig::default()).await
    }

    pub async fn start_with(assets: &str, config: ServerConfig) -> Self {
        let assets: AssetList = assets.parse().expect("valid asset list");
        let memory = memory_store(&assets);
        Self::start_over(assets, memory.clone(), memory, config).await
    }

    /// The API over `store`, which wraps `memory` (e.g. a rigged store).
    pub async fn start_over<S: PointStore>(
        assets: AssetList,
        memory: MemoryStore,
        store: S,
        config: ServerConfig,
    ) -> Self {
        let server = spawn_server(move |listener, shutdown| {
            ratecast_api::run(
                listener,
                assets,
                store,
                std::future::ready(Ok(Some(()))),
                config,
                ratecast_process::metrics::install_recorder(),
                shutdown,
            )
        })
        .await;
        Self {
            addr: server.addr,
            store: memory,
            shutdown: server.shutdown,
            task: server.task,
        }
    }

    pub async fn insert(&self, points: &[Point]) {
        self.store.insert(points).await.expect("memory insert");
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Cancels the server and waits until it returned cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(ratecast_testkit::WAIT, self.task)
            .await
            .expect("the server returned in time")
            .expect("server task")
            .expect("the server ran cleanly");
    }
}
pub mod clocked;
pub mod hanging;
pub mod scripted;

/// The `time` of each point of a history or page.
pub fn times(points: &[serde_json::Value]) -> Vec<i64> {
    points
        .iter()
        .map(|p| p["time"].as_i64().expect("integer time"))
        .collect()
}
