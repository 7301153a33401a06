//! ratecast-api: the websocket API over a [`PointStore`].
//!
//! [`run`] wires the three parts: the [`Hub`](hub::Hub) (per-asset window and
//! shared frames), the feed task that keeps it in step with the store, and the
//! actix-web server whose sessions read from it. The caller binds the listener and
//! owns the shutdown token.

pub mod config;
pub mod feed;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod server;
pub mod service;
pub mod session;

use std::{future::Future, net::TcpListener, sync::Arc};

use ratecast_core::{AssetList, PointStore};
use tokio_util::sync::CancellationToken;

pub use config::ServerArgs;
pub use hub::Hub;
pub use server::{ReadinessDetail, ServerConfig};
pub use session::SessionConfig;

/// Why the API could not run.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot connect to the store: {0}")]
    Connect(String),
    #[error("HTTP server failed")]
    Server(#[source] std::io::Error),
    #[error("the feed task failed: {0}")]
    Task(String),
}

/// Runs the API on `listener` until `shutdown` is cancelled.
///
/// The server answers at once (`/readyz` says 503); `connect` yields the store
/// (retrying as it sees fit) and the window is then loaded from it. If `connect`
/// fails, the server shuts down and the error is returned.
pub async fn run<S, C>(
    listener: TcpListener,
    assets: AssetList,
    connect: C,
    config: ServerConfig,
    shutdown: CancellationToken,
) -> Result<(), ApiError>
where
    S: PointStore,
    C: Future<Output = Result<S, ApiError>> + Send + 'static,
{
    // Install the recorder before anything records (see `metrics`).
    ratecast_core::cli::prometheus();
    let hub = Arc::new(Hub::new(assets));
    let feed = tokio::spawn({
        let (hub, shutdown) = (hub.clone(), shutdown.clone());
        async move {
            let store = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                store = connect => store,
            };
            let store = match store {
                Ok(store) => Arc::new(store),
                Err(error) => {
                    shutdown.cancel();
                    return Err(error);
                }
            };
            hub.set_store(store.clone());
            feed::run_feed(hub, store, shutdown).await;
            Ok(())
        }
    });
    let served = server::serve(listener, hub, config, shutdown.clone()).await;
    shutdown.cancel();
    let fed = feed.await.map_err(|e| ApiError::Task(e.to_string()))?;
    served.map_err(ApiError::Server)?;
    fed
}
