//! ratecast-api: the websocket API over a [`PointStore`].
//!
//! [`run`] wires the three parts: the [`Hub`](hub::Hub) (per-asset window and
//! shared frames), the feed task that keeps it in step with the store, and the
//! actix-web server whose sessions read from it. The caller binds the listener and
//! owns the shutdown token.

pub mod feed;
pub mod hub;
pub mod server;
pub mod session;

use std::{net::TcpListener, sync::Arc};

use ratecast_core::{AssetList, PointStore, StoreError};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use hub::Hub;
pub use server::ServerConfig;
pub use session::SessionConfig;

/// Why the API could not run.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot read the asset list from the store")]
    Assets(#[source] StoreError),
    #[error("the store's assets are not numbered 1..N: {0}")]
    AssetIds(String),
    #[error("HTTP server failed")]
    Server(#[source] std::io::Error),
}

/// Runs the API on `listener` over `store` until `shutdown` is cancelled.
pub async fn run<S: PointStore>(
    listener: TcpListener,
    store: S,
    config: ServerConfig,
    shutdown: CancellationToken,
) -> Result<(), ApiError> {
    let stored = store.assets().await.map_err(ApiError::Assets)?;
    let assets = AssetList::new(stored.iter().map(|a| &*a.name))
        .map_err(|e| ApiError::AssetIds(e.to_string()))?;
    if !assets.iter().zip(&stored).all(|(a, b)| a.id == b.id) {
        return Err(ApiError::AssetIds(format!("{stored:?}")));
    }
    let hub = Arc::new(Hub::new(assets));
    let tasks = TaskTracker::new();
    tasks.spawn(feed::run_feed(hub.clone(), store, shutdown.clone()));
    tasks.close();
    let served = server::serve(listener, hub, config, shutdown.clone()).await;
    shutdown.cancel();
    tasks.wait().await;
    served.map_err(ApiError::Server)
}
