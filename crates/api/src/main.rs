//! `ratecast-api`: parse the configuration, set up logs, bind, serve until a signal.

use std::process::ExitCode;

use anyhow::Context;
use ratecast_api::service::{ApiArgs, run_service};
use ratecast_process::{
    exit_code, init_tracing, listen, metrics::install_recorder, parse_or_exit, shutdown_on_signal,
};

/// jemalloc, with its background thread, gives freed memory back to the OS
/// within seconds, so a replica's RSS comes back down after a reconnect storm
/// (glibc's malloc keeps it; see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args: ApiArgs = parse_or_exit();
    init_tracing(args.log.format);
    exit_code(serve(args).await)
}

async fn serve(args: ApiArgs) -> anyhow::Result<()> {
    let listener = listen(&args.server.host, args.server.port).await?;
    let metrics = install_recorder();
    let shutdown = shutdown_on_signal();
    run_service(listener, args, metrics, shutdown)
        .await
        .context("ratecast-api failed")
}
