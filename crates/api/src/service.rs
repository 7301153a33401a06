//! `ratecast-api` as a service of the multi-process deployment: the API over
//! MongoDB, one change stream per process, any number of replicas.

use std::net::TcpListener;

use clap::Parser;
use ratecast_core::{AssetList, cli::LogFormat, report::ErrorChain};
use ratecast_mongo::MongoStore;
use tokio_util::sync::CancellationToken;

use crate::{ApiError, ServerArgs};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ratecast-api",
    version,
    about = "The ratecast websocket API over MongoDB (run N replicas behind a load balancer).",
    long_about = "The ratecast websocket API over MongoDB.\n\n\
        Serves websocket clients at ws://HOST:PORT/ from a 30-minute window loaded \
        from MongoDB and kept current by one change stream per process. Run any \
        number of replicas behind a load balancer; ratecast-fetcher writes the points.\n\n\
        Every flag can also be set by the environment variable shown with it."
)]
pub struct ApiServiceConfig {
    /// MongoDB replica-set URI (required; change streams need a replica set).
    #[arg(long, env = "MONGO_CONNECTION_URI", hide_env_values = true)]
    pub mongo_uri: String,

    /// MongoDB database name.
    #[arg(long, env = "MONGO_INITDB_DATABASE", default_value = "ratecast")]
    pub mongo_db: String,

    /// Address the websocket API binds to.
    #[arg(long, env = "SERVER_HOST", default_value = "0.0.0.0")]
    pub host: String,

    /// Port of the websocket API; 0 picks a free port (logged at start-up).
    #[arg(long, env = "SERVER_PORT", default_value_t = 8080)]
    pub port: u16,

    /// Comma-separated assets, ids 1..N in this order; must match the fetcher's.
    #[arg(
        long,
        env = "ASSET_LIST",
        default_value = "EURUSD,USDJPY,GBPUSD,AUDUSD,USDCAD"
    )]
    pub assets: AssetList,

    #[command(flatten)]
    pub server: ServerArgs,

    /// Log output: human-readable text or one JSON object per line.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Serves on `listener` while connecting to MongoDB (retrying with backoff);
/// `/readyz` answers 503 until the window is loaded.
pub async fn run_service(
    config: ApiServiceConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ApiError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "websocket API listening on ws://{addr}/");
    }
    let connect = {
        let (assets, shutdown) = (config.assets.clone(), shutdown.clone());
        async move {
            match MongoStore::connect_with_retry(
                &config.mongo_uri,
                &config.mongo_db,
                assets,
                None,
                &shutdown,
            )
            .await
            .map_err(|e| ApiError::Connect(ErrorChain(&e).to_string()))?
            {
                Some(store) => Ok(store),
                // Shut down while connecting: `run` ends on the same token, cleanly.
                None => std::future::pending().await,
            }
        }
    };
    let server = config.server.server_config();
    crate::run(listener, config.assets, connect, server, shutdown).await
}
