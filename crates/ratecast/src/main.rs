//! `ratecast`: parse the configuration, set up logs, bind, run until a signal.

use std::{net::TcpListener, process::ExitCode};

use anyhow::Context;
use ratecast::Config;
use ratecast_core::cli::{init_tracing, parse_or_exit, shutdown_signal};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let config: Config = parse_or_exit();
    init_tracing(config.log_format);
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind((config.host.as_str(), config.port))
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown_signal().await;
            shutdown.cancel();
        }
    });
    ratecast::run(config, listener, shutdown)
        .await
        .context("ratecast failed")
}
