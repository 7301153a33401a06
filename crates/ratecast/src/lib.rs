//! ratecast: the all-in-one service, fetcher and websocket API in one process.
//!
//! [`run`] picks the store (MongoDB when `MONGO_CONNECTION_URI` is set, the
//! embedded in-memory store otherwise), starts the poller on the configured
//! source (the upstream URL, or simulated rates, pre-filled with up to a day of
//! history on the memory store) beside the API, and serves until the shutdown
//! token is cancelled. `main.rs` only parses the configuration, binds the
//! listener and turns signals into that cancellation.

pub mod config;
pub mod watch;

use std::{future::Future, net::TcpListener, sync::Arc};

use ratecast_api::{ReadinessDetail, ServerConfig, StartupError};
use ratecast_core::{MemoryStore, PointSink, PointStore, StoreError, time::unix_now_secs};
use ratecast_fetcher::{
    ConfiguredSource, FetchError, Poller, UpstreamHealth, prepare_mongo, write_buffer,
};
use ratecast_mongo::{MongoStore, SetupError};
use ratecast_process::{ErrorChain, metrics::PrometheusHandle};
use tokio::sync::oneshot;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

pub use config::Config;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot create the upstream HTTP client")]
    HttpClient(#[source] FetchError),
    #[error(transparent)]
    Mongo(#[from] SetupError),
    #[error(transparent)]
    Api(#[from] ratecast_api::ApiError),
    #[error("the simulated history could not be stored")]
    Prefill(#[source] StoreError),
}

/// The fetcher's half of the process: the upstream's health (shown in
/// `/readyz`) and the tasks it runs, stopped by the shared shutdown token.
#[derive(Clone)]
struct Fetcher {
    health: Arc<UpstreamHealth>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Fetcher {
    /// Starts polling `source` into `sink`.
    fn spawn_poller<K: PointSink>(&self, source: ConfiguredSource, sink: K, config: &Config) {
        let poller = Poller::with_health(
            source,
            sink,
            config.assets.list.clone(),
            self.health.clone(),
        );
        self.tasks.spawn(poller.run(self.shutdown.clone()));
    }
}

/// Runs fetcher and API on `listener` until `shutdown` is cancelled; `/metrics`
/// renders `metrics` (the recorder the binary installed).
pub async fn run(
    listener: TcpListener,
    config: Config,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "websocket API listening on ws://{addr}/");
    }
    let source = ConfiguredSource::new(config.source.rates_url.as_ref(), &config.assets.list)
        .map_err(RunError::HttpClient)?;
    let fetcher = Fetcher {
        health: Arc::new(UpstreamHealth::new(config.assets.list.len())),
        tasks: TaskTracker::new(),
        shutdown,
    };
    let api = Api { listener, metrics };
    match config.mongo.uri.clone() {
        Some(uri) => run_on_mongo(config, &uri, source, fetcher, api).await,
        None => run_in_memory(config, source, fetcher, api).await,
    }
}

/// The API's half: what the binary handed in for it.
struct Api {
    listener: TcpListener,
    metrics: PrometheusHandle,
}

/// How far back simulated rates are pre-filled on the embedded store: the
/// store's retention, at most a day, so a new client gets a full 30-minute
/// history and the candle ranges of the chart page up to a day have data.
const SIMULATED_PREFILL_MAX_SECS: i64 = 86_400;

/// Simulated points are generated and stored an hour at a time, so the
/// pre-fill never holds more than an hour of them beside the store.
const PREFILL_CHUNK_SECS: i64 = 3_600;

/// The embedded store: simulated rates are pre-filled with up to a day of
/// history (the retention, if shorter), so the first subscriber sees 30
/// minutes at once and the chart's candle ranges are not empty.
async fn run_in_memory(
    config: Config,
    source: ConfiguredSource,
    fetcher: Fetcher,
    api: Api,
) -> Result<(), RunError> {
    info!("store: embedded in-memory (not persistent)");
    let retention = i64::try_from(config.memory_retention.as_secs()).unwrap_or(i64::MAX);
    let store = MemoryStore::new(config.assets.list.clone(), retention);
    if let ConfiguredSource::Simulated(simulated) = &source {
        let span = retention.clamp(1, SIMULATED_PREFILL_MAX_SECS);
        let mut stored = 0;
        let mut from = unix_now_secs() - span + 1;
        // Up to the current second, which moves while a day is generated: the
        // poller starts at the next one, so the history has no hole.
        loop {
            let now = unix_now_secs();
            if from > now {
                break;
            }
            let to = (from + PREFILL_CHUNK_SECS - 1).min(now);
            let points = simulated.backfill(&config.assets.list, from, to);
            store.insert(&points).await.map_err(RunError::Prefill)?;
            stored += points.len();
            from = to + 1;
        }
        info!(
            points = stored,
            seconds = span,
            "pre-filled the simulated rates' history"
        );
    }
    fetcher.spawn_poller(source, store.clone(), &config);
    serve(
        config,
        api,
        store,
        std::future::ready(Ok(Some(()))),
        &fetcher,
    )
    .await
}

/// MongoDB: the API serves at once (`/readyz` 503) while a set-up task beside
/// it prepares the database, retried with backoff; then the fetcher starts
/// writing through its buffer and the API loads its window.
async fn run_on_mongo(
    config: Config,
    uri: &str,
    source: ConfiguredSource,
    fetcher: Fetcher,
    api: Api,
) -> Result<(), RunError> {
    info!(database = %config.mongo.db, "store: MongoDB");
    let store = MongoStore::new(uri, &config.mongo.db, config.assets.list.clone())?;
    let sink = write_buffer(
        store.clone(),
        &config.write,
        config.assets.list.len(),
        &fetcher.tasks,
        &fetcher.shutdown,
    );
    let (prepared_tx, prepared) = oneshot::channel::<Result<(), SetupError>>();
    fetcher.tasks.spawn({
        let (store, fetcher, config) = (store.clone(), fetcher.clone(), config.clone());
        async move {
            match prepare_mongo(&store, &sink, &config.write, &fetcher.shutdown).await {
                Ok(Some(())) => {
                    fetcher.spawn_poller(source, sink, &config);
                    let _ = prepared_tx.send(Ok(()));
                }
                Ok(None) => {}
                Err(error) => {
                    let _ = prepared_tx.send(Err(error));
                }
            }
        }
    });
    // The API loads its window once the set-up succeeded; a failed set-up
    // stops it. Shut down while connecting: the API ends on the same token.
    let startup = async move {
        match prepared.await {
            Ok(Ok(())) => Ok(Some(())),
            Ok(Err(error)) => Err(StartupError::from(error)),
            Err(_shut_down) => Ok(None),
        }
    };
    serve(config, api, store, startup, &fetcher).await
}

/// Serves the API over `store` until shutdown, then waits for the fetcher.
async fn serve<S, F>(
    config: Config,
    api: Api,
    store: S,
    startup: F,
    fetcher: &Fetcher,
) -> Result<(), RunError>
where
    S: PointStore,
    F: Future<Output = Result<Option<()>, StartupError>> + Send + 'static,
{
    let health = fetcher.health.clone();
    let served = ratecast_api::run(
        api.listener,
        config.assets.list,
        store,
        startup,
        ServerConfig {
            readiness_detail: Some(ReadinessDetail(Arc::new(move || {
                health.describe(unix_now_secs())
            }))),
            ..config.server.server_config()
        },
        api.metrics,
        fetcher.shutdown.clone(),
    )
    .await;
    fetcher.shutdown.cancel();
    fetcher.tasks.close();
    fetcher.tasks.wait().await;
    if let Err(error) = &served {
        warn!(error = %ErrorChain(error), "API stopped with an error");
    }
    info!("stopped");
    Ok(served?)
}
