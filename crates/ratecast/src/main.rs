//! `ratecast`: parse the configuration, set up logs, bind, run until a signal.

use std::process::ExitCode;

use anyhow::Context;
use ratecast::{
    Config,
    config::{Cli, Command},
};
use ratecast_process::{
    exit_code, init_tracing, listen, metrics::install_recorder, shutdown_on_signal,
};

/// jemalloc, with its background thread, gives freed memory back to the OS
/// within seconds, so a replica's RSS comes back down after a reconnect storm
/// (glibc's malloc keeps it; see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse_or_exit();
    init_tracing(cli.serve.log.format);
    let result = match cli.command {
        Some(Command::Watch(args)) => watch(args).await,
        None => serve(cli.serve).await,
    };
    exit_code(result)
}

async fn watch(args: ratecast::watch::WatchArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_on_signal();
    ratecast::watch::run(args, std::io::stdout(), shutdown)
        .await
        .context("ratecast watch failed")
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = listen(&config.server.host, config.server.port).await?;
    let metrics = install_recorder();
    let shutdown = shutdown_on_signal();
    ratecast::run(listener, config, metrics, shutdown)
        .await
        .context("ratecast failed")
}
