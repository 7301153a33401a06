//! `ratecast-bench`: parse the command line, set up logs, run the load generator,
//! the baseline server or the backlog server, or the one-against-five
//! connections comparison (`multi`), print a report, table or comparison.

use std::process::ExitCode;

use anyhow::Context;
use ratecast_bench::{
    self as bench, BacklogConfig, BaselineConfig, Cli, Command, FloodConfig, HostileConfig,
    LoadConfig,
};
use ratecast_process::{
    LogFormat, exit_code, init_tracing, listen, parse_or_exit, shutdown_on_signal,
};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = parse_or_exit();
    init_tracing(LogFormat::Text);
    let shutdown = shutdown_on_signal();
    let result = match cli.command {
        Command::Run(config) => load(*config, shutdown).await,
        Command::BaselineServer(config) => baseline(config, shutdown).await,
        Command::BacklogServer(config) => backlog(*config, shutdown).await,
        Command::Flood(config) => flood(config, shutdown).await,
        Command::Candles(config) => bench::candles::run_candles_bench(config)
            .await
            .map(|report| print!("{report}"))
            .context("candles benchmark failed"),
        Command::Hostile(config) => hostile(*config, shutdown).await,
        Command::Multi(config) => multi(*config, shutdown).await,
        Command::HostileTable { files } => bench::hostile_table(&files)
            .map(|table| print!("{table}"))
            .context("cannot build the table"),
        Command::Table { files } => bench::table(&files)
            .map(|table| print!("{table}"))
            .context("cannot build the table"),
        Command::Compare { ratecast, baseline } => bench::compare_files(&ratecast, &baseline)
            .map(|comparison| print!("{comparison}"))
            .context("cannot compare the reports"),
    };
    exit_code(result)
}

async fn load(config: LoadConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let limit = bench::raise_fd_limit().context("cannot raise the open-file limit")?;
    if limit < config.clients as u64 + 64 {
        tracing::warn!(
            limit,
            clients = config.clients,
            "open-file limit below the client count"
        );
    }
    let json = config.json.clone();
    let report = bench::run_load(config, shutdown)
        .await
        .context("benchmark failed")?;
    print!("{report}");
    if let Some(path) = json {
        bench::write_json(&report, &path)?;
        tracing::info!(path = %path.display(), "report written");
    }
    Ok(())
}

async fn baseline(config: BaselineConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    bench::raise_fd_limit().context("cannot raise the open-file limit")?;
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    bench::baseline::serve_baseline(listener, config.assets, shutdown)
        .await
        .context("baseline server failed")
}

async fn flood(config: FloodConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    bench::raise_fd_limit().context("cannot raise the open-file limit")?;
    let report = bench::flood::run_flood(config, shutdown)
        .await
        .context("flood failed")?;
    print!("{report}");
    Ok(())
}

async fn hostile(config: HostileConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    bench::raise_fd_limit().context("cannot raise the open-file limit")?;
    let json = config.load.json.clone();
    let report = bench::run_hostile(config, shutdown)
        .await
        .context("hostile run failed")?;
    print!("{report}");
    if let Some(path) = json {
        bench::write_json(&report, &path)?;
        tracing::info!(path = %path.display(), "report written");
    }
    Ok(())
}

async fn multi(
    config: bench::multi::MultiConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    bench::raise_fd_limit().context("cannot raise the open-file limit")?;
    let json = config.load.json.clone();
    let report = bench::multi::run_multi(config, shutdown)
        .await
        .context("multi run failed")?;
    print!("{report}");
    if let Some(path) = json {
        bench::write_json(&report, &path)?;
        tracing::info!(path = %path.display(), "report written");
    }
    Ok(())
}

async fn backlog(config: BacklogConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    bench::raise_fd_limit().context("cannot raise the open-file limit")?;
    let listener = listen(&config.server.host, config.server.port).await?;
    tracing::info!(addr = %listener.local_addr()?, "backlog server listening");
    let metrics = ratecast_process::metrics::install_recorder();
    bench::backlog_server::serve_backlog(listener, config, metrics, shutdown)
        .await
        .context("backlog server failed")
}
