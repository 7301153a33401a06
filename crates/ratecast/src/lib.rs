//! ratecast: the all-in-one service, fetcher and websocket API in one process.
//!
//! [`run`] picks the store (MongoDB when `MONGO_CONNECTION_URI` is set, the
//! embedded in-memory store otherwise), starts the poller on the configured
//! source (the upstream URL, or simulated rates, pre-filled with a full history
//! window on the memory store) and serves the API until the shutdown token is
//! cancelled. `main.rs` only parses the configuration, binds the listener and
//! turns signals into that cancellation.

pub mod bench;
pub mod config;
pub mod watch;

use std::{future::Future, net::TcpListener, sync::Arc};

use ratecast_api::{ApiError, ReadinessDetail, ServerConfig};
use ratecast_core::{
    MemoryStore, PointSink, PointStore,
    report::ErrorChain,
    time::{history_cutoff, unix_now_secs},
};
use ratecast_fetcher::{
    BufferedSink, FetchError, HttpSource, HttpSourceConfig, Poller, RateSource, SimulatedSource,
    UpstreamHealth,
};
use ratecast_mongo::MongoStore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

pub use config::Config;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
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
    // Install the metrics recorder before the fetcher or the API records.
    ratecast_core::cli::prometheus();
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "websocket API listening on ws://{addr}/");
    }
    match config.mongo_uri.clone() {
        Some(uri) => run_on_mongo(config, uri, listener, shutdown).await,
        None => run_in_memory(config, listener, shutdown).await,
    }
}

async fn run_in_memory(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    info!("store: embedded in-memory (not persistent)");
    let retention = i64::try_from(config.memory_retention.as_secs()).unwrap_or(i64::MAX);
    let store = MemoryStore::new(config.assets.clone(), retention);
    let tasks = TaskTracker::new();
    let health = Arc::new(UpstreamHealth::new(config.assets.len()));
    start_poller(&config, &store, true, &health, &tasks, &shutdown).await?;
    let connect = std::future::ready(Ok(store));
    serve(config, listener, connect, health, tasks, shutdown).await
}

async fn run_on_mongo(
    config: Config,
    uri: String,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    info!(database = %config.mongo_db, "store: MongoDB");
    let tasks = TaskTracker::new();
    let health = Arc::new(UpstreamHealth::new(config.assets.len()));
    // The API answers (/healthz, /readyz 503) while MongoDB is being reached;
    // the poller starts once it is.
    let connect = {
        let (config, tasks, shutdown) = (config.clone(), tasks.clone(), shutdown.clone());
        let health = health.clone();
        async move {
            let connected = MongoStore::connect_with_retry(
                &uri,
                &config.mongo_db,
                config.assets.clone(),
                Some(config.mongo_retention),
                &shutdown,
            )
            .await;
            let store = match connected {
                Ok(Some(store)) => store,
                // Shut down while connecting: the API's own shutdown ends
                // this future, cleanly; nothing to report.
                Ok(None) => std::future::pending().await,
                Err(error) => return Err(ApiError::Connect(ErrorChain(&error).to_string())),
            };
            let capacity = config.buffer_seconds as usize * config.assets.len();
            let sink = BufferedSink::spawn(store.clone(), capacity, &tasks, shutdown.clone());
            start_poller(&config, &sink, false, &health, &tasks, &shutdown)
                .await
                .map_err(|error| ApiError::Connect(ErrorChain(&error).to_string()))?;
            Ok(store)
        }
    };
    serve(config, listener, connect, health, tasks, shutdown).await
}

/// Starts the poller into `sink`; with simulated rates and `prefill`, first stores
/// a full history window so the first subscriber sees 30 minutes at once.
async fn start_poller<K: PointSink + Clone>(
    config: &Config,
    sink: &K,
    prefill: bool,
    health: &Arc<UpstreamHealth>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<(), RunError> {
    match &config.rates_url {
        Some(url) => {
            let source = HttpSource::new(url.clone(), HttpSourceConfig::default())
                .map_err(RunError::HttpClient)?;
            spawn_poller(tasks, source, sink, health, config, shutdown);
        }
        None => {
            warn!(
                "EMCONT_EXCHANGE_RATES_URL is not set: serving SIMULATED rates \
                 (a random walk, not market data)"
            );
            let source = SimulatedSource::new(&config.assets);
            if prefill {
                let now = unix_now_secs();
                let history = source.backfill(&config.assets, history_cutoff(now), now);
                sink.insert(&history).await.map_err(RunError::Prefill)?;
                info!(
                    points = history.len(),
                    "pre-filled the last 30 minutes with simulated rates"
                );
            }
            spawn_poller(tasks, source, sink, health, config, shutdown);
        }
    }
    Ok(())
}

fn spawn_poller<R: RateSource, K: PointSink + Clone>(
    tasks: &TaskTracker,
    source: R,
    sink: &K,
    health: &Arc<UpstreamHealth>,
    config: &Config,
    shutdown: &CancellationToken,
) {
    let poller = Poller::with_health(source, sink.clone(), config.assets.clone(), health.clone());
    tasks.spawn(poller.run(shutdown.clone()));
}

/// Serves the API over the store `connect` yields, then waits for the
/// fetcher's tasks.
async fn serve<S, C>(
    config: Config,
    listener: TcpListener,
    connect: C,
    health: Arc<UpstreamHealth>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) -> Result<(), RunError>
where
    S: PointStore,
    C: Future<Output = Result<S, ApiError>> + Send + 'static,
{
    let served = ratecast_api::run(
        listener,
        config.assets,
        connect,
        ServerConfig {
            readiness_detail: Some(ReadinessDetail(Arc::new(move || {
                health.describe(unix_now_secs())
            }))),
            ..config.server.server_config()
        },
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    if let Err(error) = &served {
        warn!(error = %ErrorChain(error), "API stopped with an error");
    }
    info!("stopped");
    Ok(served?)
}
