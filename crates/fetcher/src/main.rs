//! `ratecast-fetcher`: parse the configuration, set up logs, bind the health
//! port, poll until a signal.

use std::process::ExitCode;

use anyhow::Context;
use ratecast_fetcher::service::{FetcherArgs, run_service};
use ratecast_process::{exit_code, init_tracing, listen, parse_or_exit, shutdown_on_signal};

/// jemalloc, with its background thread, gives freed memory back to the OS
/// within seconds, so a replica's RSS comes back down after a reconnect storm
/// (glibc's malloc keeps it; see docs/benchmarks.md).
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
    let shutdown = shutdown_on_signal();
    run_service(args, listener, shutdown)
        .await
        .context("ratecast-fetcher failed")
}
