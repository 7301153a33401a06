//! ratecast-api: the websocket API over a [`PointStore`].
//!
//! [`run`] wires the three parts: the [`Hub`](hub::Hub) (per-asset window and
//! shared frames), the feed task that keeps it in step with the store, and the
//! actix-web server whose sessions read from it and query the store's history.
//! The caller binds the listener, hands in the store and owns the shutdown token;
//! [`service`] is the `ratecast-api` binary's wiring over MongoDB.

pub mod config;
pub mod feed;
pub mod history;
pub mod hub;
pub mod inbound;
pub mod limits;
pub mod metrics;
pub mod outbound;
pub mod relay;
pub mod rest;
pub mod server;
pub mod service;
pub mod session;
pub mod sse;
pub mod transport;
pub mod wire;

use std::{future::Future, net::TcpListener, sync::Arc};

use ratecast_core::{AssetList, PointStore};
use ratecast_process::metrics::PrometheusHandle;
use tokio_util::sync::CancellationToken;

pub use config::ServerArgs;
pub use hub::Hub;
pub use server::{ReadinessDetail, ServerConfig};
pub use session::SessionConfig;

/// A failure of what must succeed before the window is loaded (e.g. the
/// store's set-up), with its cause chain.
pub type StartupError = Box<dyn std::error::Error + Send + Sync>;

/// Why the API could not run.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("start-up failed")]
    Startup(#[source] StartupError),
    #[error("HTTP server failed")]
    Server(#[source] std::io::Error),
    #[error("the feed task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Runs the API over `store` on `listener` until `shutdown` is cancelled;
/// `/metrics` renders `metrics` (the recorder the binary installed).
///
/// The server answers at once (`/readyz` says 503 and upgrades are refused);
/// once `startup` succeeds (e.g. the store's set-up, retried as the caller sees
/// fit) the window is loaded from the store and followed. If `startup` fails,
/// the server shuts down and the error is returned; if it ends with `None`
/// (shut down before it was done), the server ends on `shutdown` as usual.
pub async fn run<S, F>(
    listener: TcpListener,
    assets: AssetList,
    store: S,
    startup: F,
    config: ServerConfig,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> Result<(), ApiError>
where
    S: PointStore,
    F: Future<Output = Result<Option<()>, StartupError>> + Send + 'static,
{
    let hub = Arc::new(Hub::new(assets).with_clock(store.clock()));
    let store = Arc::new(store);
    // The feed keeps clients served until the server has closed them (a drain
    // may keep them a while after shutdown starts), so it stops after `serve`.
    let feed_stop = CancellationToken::new();
    let feed = tokio::spawn({
        let (hub, store, shutdown) = (hub.clone(), store.clone(), shutdown.clone());
        let feed_stop = feed_stop.clone();
        async move {
            let started = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                started = startup => started,
            };
            match started {
                Ok(Some(())) => {}
                Ok(None) => return Ok(()),
                Err(error) => {
                    shutdown.cancel();
                    return Err(ApiError::Startup(error));
                }
            }
            feed::run_feed(hub, store, feed_stop).await;
            Ok(())
        }
    });
    let served = server::serve(listener, hub, store, config, metrics, shutdown.clone()).await;
    shutdown.cancel();
    feed_stop.cancel();
    let fed = feed.await.map_err(ApiError::Task)?;
    served.map_err(ApiError::Server)?;
    fed
}
