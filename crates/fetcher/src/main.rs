//! `ratecast-fetcher`: parse the configuration, set up logs, bind the health
//! port, poll until a signal.

use std::{net::TcpListener, process::ExitCode};

use anyhow::Context;
use ratecast_core::cli::{init_tracing, parse_or_exit, shutdown_on_signal};
use ratecast_fetcher::service::{FetcherServiceConfig, run_service};

#[tokio::main]
async fn main() -> ExitCode {
    let config: FetcherServiceConfig = parse_or_exit();
    init_tracing(config.log_format);
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: FetcherServiceConfig) -> anyhow::Result<()> {
    let listener = TcpListener::bind((config.http_host.as_str(), config.http_port))
        .with_context(|| format!("cannot listen on {}:{}", config.http_host, config.http_port))?;
    let shutdown = shutdown_on_signal();
    run_service(config, listener, shutdown)
        .await
        .context("ratecast-fetcher failed")
}
