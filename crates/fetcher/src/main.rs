//! `ratecast-fetcher`: parse the configuration, set up logs, bind the health
//! port, poll until a signal.

use std::process::ExitCode;

use anyhow::Context;
use ratecast_fetcher::service::{FetcherArgs, run_service};
use ratecast_process::{
    exit_code, init_tracing, listen, metrics::install_recorder, parse_or_exit, shutdown_on_signal,
};

/// jemalloc, as in `ratecast` and `ratecast-api` (where it is chosen for the
/// websocket side: see docs/benchmarks.md), so the fetcher code runs on the
/// same allocator here as in the all-in-one.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args: FetcherArgs = parse_or_exit();
    init_tracing(args.log.format);
    exit_code(serve(args).await)
}

async fn serve(args: FetcherArgs) -> anyhow::Result<()> {
    let listener = listen(&args.http_host, args.http_port).await?;
    let metrics = install_recorder();
    let shutdown = shutdown_on_signal();
    run_service(listener, args, metrics, shutdown)
        .await
        .context("ratecast-fetcher failed")
}
