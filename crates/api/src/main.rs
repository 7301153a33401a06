//! `ratecast-api`: parse the configuration, set up logs, bind, serve until a signal.

use std::process::ExitCode;

use anyhow::Context;
use ratecast_api::service::{ApiServiceConfig, run_service};
use ratecast_core::cli::{bind, init_tracing, parse_or_exit, shutdown_on_signal};

#[tokio::main]
async fn main() -> ExitCode {
    let config: ApiServiceConfig = parse_or_exit();
    init_tracing(config.log_format);
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: ApiServiceConfig) -> anyhow::Result<()> {
    let listener = bind(&config.host, config.port)
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let shutdown = shutdown_on_signal();
    run_service(config, listener, shutdown)
        .await
        .context("ratecast-api failed")
}
