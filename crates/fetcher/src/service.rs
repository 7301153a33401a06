//! `ratecast-fetcher` as a service of the multi-process deployment: poll the
//! upstream once a second into MongoDB through the write buffer, and answer
//! health checks on a small HTTP port.
//!
//! Two fetchers may run at once for high availability: the store's unique
//! (asset, time) key turns the second one's inserts into ignored duplicates.

use std::{
    net::TcpListener,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use actix_web::{App, HttpResponse, HttpServer, http::header::ContentType, web};
use clap::Parser;
use ratecast_mongo::{MongoStore, SetupError};
use ratecast_process::{
    AssetArgs, ErrorChain, LogArgs, MongoArgs, http, metrics::PrometheusHandle,
    startup::retry_transient,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

use crate::{
    BufferedSink, ConfiguredSource, Poller, SourceArgs, UpstreamHealth, WriteBufferArgs,
    source::FetchError,
};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ratecast-fetcher",
    version,
    about = "The ratecast fetcher: polls the rates URL once a second into MongoDB.",
    long_about = "The ratecast fetcher: polls the rates URL once a second into MongoDB.\n\n\
        Points wait in a bounded buffer while MongoDB is unreachable and are written \
        in order when it is back. Without EMCONT_EXCHANGE_RATES_URL it writes \
        SIMULATED rates (a random walk, not market data).\n\n\
        Every flag can also be set by the environment variable shown with it.",
    mut_arg("mongo_uri", ratecast_process::args::required_mongo_uri)
)]
pub struct FetcherArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub mongo: MongoArgs,

    #[command(flatten)]
    pub assets: AssetArgs,

    #[command(flatten)]
    pub write: WriteBufferArgs,

    /// Address of the health and metrics endpoints (/healthz, /readyz, /metrics).
    #[arg(long, env = "FETCHER_HTTP_HOST", default_value = "0.0.0.0")]
    pub http_host: String,

    /// Port of the health and metrics endpoints.
    #[arg(long, env = "FETCHER_HTTP_PORT", default_value_t = 8081)]
    pub http_port: u16,

    #[command(flatten)]
    pub log: LogArgs,
}

/// Why the fetcher service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("MONGO_CONNECTION_URI is required")]
    NoMongoUri,
    #[error("MongoDB set-up failed")]
    Mongo(#[from] SetupError),
    #[error("cannot create the upstream HTTP client")]
    HttpClient(#[source] FetchError),
    #[error("health endpoint server failed")]
    Health(#[source] std::io::Error),
}

/// What `/readyz` reports, all of it made before the server starts.
struct Health {
    /// The write buffer: its backlog says whether MongoDB takes the points.
    sink: BufferedSink,
    /// Set once MongoDB is connected and indexed (the poller starts then, so
    /// the buffer holds nothing before).
    prepared: AtomicBool,
    /// Points buffered beyond which the fetcher is not ready.
    backlog_limit: usize,
    /// The upstream's status, reported by the poller.
    upstream: Arc<UpstreamHealth>,
}

/// Points buffered beyond which the fetcher reports itself not ready: a few
/// seconds' worth is normal write latency, more means the store is not taking them.
const READY_BACKLOG_SECONDS: usize = 5;

/// Runs the fetcher until `shutdown`: health endpoints on `health_listener`
/// (metrics rendered from `metrics`), MongoDB set up with retries, then the
/// poller.
pub async fn run_service(
    health_listener: TcpListener,
    args: FetcherArgs,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let uri = args.mongo.uri.as_deref().ok_or(ServiceError::NoMongoUri)?;
    let store = MongoStore::new(uri, &args.mongo.db, args.assets.list.clone())?;
    let source = ConfiguredSource::new(args.source.rates_url.as_ref(), &args.assets.list)
        .map_err(ServiceError::HttpClient)?;
    let assets = args.assets.list.len();
    let tasks = TaskTracker::new();
    let health = Arc::new(Health {
        sink: write_buffer(store.clone(), &args.write, assets, &tasks, &shutdown),
        prepared: AtomicBool::new(false),
        backlog_limit: READY_BACKLOG_SECONDS * assets,
        upstream: Arc::new(UpstreamHealth::new(assets)),
    });
    let server =
        health_server(health_listener, health.clone(), metrics).map_err(ServiceError::Health)?;
    let server_handle = server.handle();
    let server_task = tokio::spawn(server);
    let result = poll_into_mongo(&args, &store, source, &health, &shutdown).await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    let (_, stopped) = tokio::join!(server_handle.stop(true), server_task);
    if let Ok(Err(error)) = stopped {
        warn!(error = %ErrorChain(&error), "health endpoint server failed");
    }
    result
}

async fn poll_into_mongo(
    args: &FetcherArgs,
    store: &MongoStore,
    source: ConfiguredSource,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<(), ServiceError> {
    if prepare_mongo(store, &health.sink, &args.write, shutdown)
        .await?
        .is_none()
    {
        return Ok(());
    }
    health.prepared.store(true, Ordering::Release);
    Poller::with_health(
        source,
        health.sink.clone(),
        args.assets.list.clone(),
        health.upstream.clone(),
    )
    .run(shutdown.clone())
    .await;
    Ok(())
}

/// The write buffer into MongoDB, its flusher on `tasks`. It stores nothing
/// until the poller starts, after [`prepare_mongo`].
pub fn write_buffer(
    store: MongoStore,
    write: &WriteBufferArgs,
    assets: usize,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> BufferedSink {
    BufferedSink::spawn(store, write.capacity(assets), tasks, shutdown.clone())
}

/// Prepares MongoDB for the writes of `buffer` (connect, seed the assets,
/// indexes and retention), retried while the failure is transient. `None`
/// when `shutdown` came first.
pub async fn prepare_mongo(
    store: &MongoStore,
    buffer: &BufferedSink,
    write: &WriteBufferArgs,
    shutdown: &CancellationToken,
) -> Result<Option<()>, SetupError> {
    let prepared = retry_transient(
        "connecting to MongoDB",
        shutdown,
        SetupError::is_transient,
        || store.prepare_writer(write.mongo_retention),
    )
    .await?;
    if prepared.is_some() {
        info!(
            buffer_points = buffer.capacity(),
            "writing points to MongoDB"
        );
    }
    Ok(prepared)
}

fn health_server(
    listener: TcpListener,
    health: Arc<Health>,
    metrics: PrometheusHandle,
) -> std::io::Result<actix_web::dev::Server> {
    let health = web::Data::from(health);
    let metrics = web::Data::new(metrics);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(health.clone())
            .app_data(metrics.clone())
            .route("/healthz", web::get().to(http::healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(http::metrics))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}

async fn readyz(health: web::Data<Health>) -> HttpResponse {
    let unavailable = |text: String| {
        HttpResponse::ServiceUnavailable()
            .content_type(ContentType::plaintext())
            .body(text)
    };
    // The upstream's status is a detail line: a failing upstream is worth
    // seeing, but restarting the fetcher would not fix it.
    let upstream = health
        .upstream
        .describe(ratecast_core::time::unix_now_secs());
    if !health.prepared.load(Ordering::Acquire) {
        return unavailable(format!("not ready: connecting to MongoDB\n{upstream}\n"));
    }
    match health.sink.len() {
        buffered if buffered > health.backlog_limit => unavailable(format!(
            "not ready: {buffered} points buffered, MongoDB is not taking them\n{upstream}\n"
        )),
        _ => HttpResponse::Ok()
            .content_type(ContentType::plaintext())
            .body(format!("ready\n{upstream}\n")),
    }
}
