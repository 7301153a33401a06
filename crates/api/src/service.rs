//! One `ratecast-api` replica of the multi-process deployment: its command line
//! and its wiring over MongoDB (one change stream per process; run any number of
//! replicas behind a load balancer). The routes and the server lifecycle are in
//! [`server`](crate::server); the binary only parses [`ApiArgs`] and calls
//! [`run_service`].

use std::net::TcpListener;

use clap::Parser;
use ratecast_mongo::{MongoStore, SetupError};
use ratecast_process::{
    AssetArgs, LogArgs, MongoArgs, metrics::PrometheusHandle, startup::retry_transient,
};
use tokio_util::sync::CancellationToken;

use crate::{ApiError, ServerArgs, StartupError};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ratecast-api",
    version,
    about = "The ratecast websocket API over MongoDB (run N replicas behind a load balancer).",
    long_about = "The ratecast websocket API over MongoDB.\n\n\
        Serves websocket clients at ws://HOST:PORT/ from a 30-minute window loaded \
        from MongoDB and kept current by one change stream per process. Run any \
        number of replicas behind a load balancer; ratecast-fetcher writes the points.\n\n\
        Every flag can also be set by the environment variable shown with it.",
    mut_arg("mongo_uri", ratecast_process::args::required_mongo_uri)
)]
pub struct ApiArgs {
    #[command(flatten)]
    pub mongo: MongoArgs,

    #[command(flatten)]
    pub assets: AssetArgs,

    #[command(flatten)]
    pub server: ServerArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

/// Why the `ratecast-api` service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("MONGO_CONNECTION_URI is required")]
    NoMongoUri,
    #[error(transparent)]
    Mongo(#[from] SetupError),
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Serves on `listener` at once while MongoDB is set up (retried with backoff);
/// `/readyz` answers 503 until the window is loaded; `/metrics` renders `metrics`.
pub async fn run_service(
    listener: TcpListener,
    args: ApiArgs,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let uri = args.mongo.uri.as_deref().ok_or(ServiceError::NoMongoUri)?;
    let store = MongoStore::new(uri, &args.mongo.db, args.assets.list.clone())?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "websocket API listening on ws://{addr}/");
    }
    let startup = {
        let (store, shutdown) = (store.clone(), shutdown.clone());
        async move {
            retry_transient(
                "connecting to MongoDB",
                &shutdown,
                SetupError::is_transient,
                || store.prepare_reader(),
            )
            .await
            .map_err(StartupError::from)
        }
    };
    let config = args.server.server_config();
    crate::run(
        listener,
        args.assets.list,
        store,
        startup,
        config,
        metrics,
        shutdown,
    )
    .await?;
    Ok(())
}
