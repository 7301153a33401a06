//! ratecast: the all-in-one service, fetcher and websocket API in one process.
//!
//! [`run`] builds the embedded store, starts the poller on the configured source
//! (the upstream URL, or simulated rates pre-filled with a full history window) and
//! serves the API until the shutdown token is cancelled. `main.rs` only parses the
//! configuration, binds the listener and turns signals into that cancellation.

pub mod config;

use std::net::TcpListener;

use ratecast_api::{ApiError, ServerConfig};
use ratecast_core::{
    MemoryStore, PointSink,
    time::{history_cutoff, unix_now_secs},
};
use ratecast_fetcher::{
    FetchError, HttpSource, HttpSourceConfig, Poller, RateSource, SimulatedSource,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

pub use config::{Config, LogFormat};

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "MONGO_CONNECTION_URI is set, but this build has no MongoDB store yet; \
         unset it to run on the embedded in-memory store"
    )]
    MongoUnsupported,
    #[error("cannot create the upstream HTTP client")]
    HttpClient(#[source] FetchError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("the simulated history could not be stored")]
    Prefill(#[source] ratecast_core::StoreError),
}

/// Runs fetcher and API on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    if config.mongo_uri.is_some() {
        return Err(RunError::MongoUnsupported);
    }
    let retention = i64::try_from(config.memory_retention.as_secs()).unwrap_or(i64::MAX);
    let store = MemoryStore::new(config.assets.clone(), retention);
    let tasks = TaskTracker::new();
    match &config.rates_url {
        Some(url) => {
            let source = HttpSource::new(url.clone(), HttpSourceConfig::default())
                .map_err(RunError::HttpClient)?;
            spawn_poller(&tasks, source, &store, &config, &shutdown);
        }
        None => {
            warn!(
                "EMCONT_EXCHANGE_RATES_URL is not set: serving SIMULATED rates \
                 (a random walk, not market data), with the last 30 minutes pre-filled"
            );
            let source = SimulatedSource::new(&config.assets);
            let now = unix_now_secs();
            let history = source.backfill(&config.assets, history_cutoff(now), now);
            store.insert(&history).await.map_err(RunError::Prefill)?;
            spawn_poller(&tasks, source, &store, &config, &shutdown);
        }
    }
    tasks.close();
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "websocket API listening on ws://{addr}/");
    }
    let served =
        ratecast_api::run(listener, store, ServerConfig::default(), shutdown.clone()).await;
    shutdown.cancel();
    tasks.wait().await;
    info!("stopped");
    Ok(served?)
}

fn spawn_poller<R: RateSource>(
    tasks: &TaskTracker,
    source: R,
    store: &MemoryStore,
    config: &Config,
    shutdown: &CancellationToken,
) {
    let poller = Poller::new(source, store.clone(), config.assets.clone());
    tasks.spawn(poller.run(shutdown.clone()));
}
