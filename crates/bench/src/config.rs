//! The `ratecast-bench` command line: the load generator's knobs, the baseline
//! server's, and the report table. Values are checked here, while parsing.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};
use ratecast_core::{AssetList, asset::DEFAULT_ASSETS};
use ratecast_process::parse_duration;
use url::Url;

#[derive(Debug, Parser)]
#[command(
    name = "ratecast-bench",
    version,
    about = "Load generator for ratecast's websocket API, and the baseline server it is compared with.",
    long_about = "Load generator for ratecast's websocket API, and the baseline server it is compared with.\n\n\
        `run` opens N websocket clients at a given rate, subscribes each to one asset, holds them \
        and reports connect errors, time to history, fan-out delay, delivered messages/s, \
        missed/duplicate/seam errors and, with --server-pid, the server's memory and CPU. \
        `baseline-server` serves the same protocol subset with a minimal tokio-tungstenite \
        broadcast server, so both can be measured with the same generator. \
        See docs/benchmarks.md and scripts/bench.sh."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the load generator against a server and report.
    Run(Box<LoadConfig>),
    /// Serve the minimal tokio-tungstenite broadcast server used as the baseline.
    BaselineServer(BaselineConfig),
    /// Print saved JSON reports as one markdown table.
    Table {
        /// JSON reports written by `run --json`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// The load generator's settings.
#[derive(Debug, Clone, Parser)]
#[command(name = "run")]
pub struct LoadConfig {
    /// Websocket URL of the server under test.
    #[arg(long, env = "BENCH_URL", default_value = "ws://127.0.0.1:8080/")]
    pub url: Url,

    /// Clients to open (each holds one socket).
    #[arg(long, env = "BENCH_CLIENTS", default_value_t = 1000)]
    pub clients: usize,

    /// Connect ramp: new clients per second.
    #[arg(long, env = "BENCH_RAMP", default_value_t = 1000.0, value_parser = parse_rate)]
    pub ramp: f64,

    /// How long to hold every client after the last one got its history
    /// (the steady-state window), e.g. 60s.
    #[arg(long, env = "BENCH_HOLD", default_value = "60s", value_parser = parse_duration)]
    pub hold: Duration,

    /// Spread client sockets over this many source addresses 127.0.0.2, .3, …
    /// (at most 250), past the ~28k ephemeral ports of one address; 0 lets the
    /// kernel choose (127.0.0.1).
    #[arg(long, env = "BENCH_SOURCE_IPS", default_value_t = 64, value_parser = clap::value_parser!(u8).range(0..=250))]
    pub source_ips: u8,

    /// Pid of the server process, to report its RSS and CPU (Linux /proc).
    #[arg(long, env = "BENCH_SERVER_PID")]
    pub server_pid: Option<u32>,

    /// Also write the report as JSON to this file.
    #[arg(long, env = "BENCH_JSON")]
    pub json: Option<PathBuf>,

    /// Name of the run in the report (e.g. `ratecast` or `baseline`).
    #[arg(long, env = "BENCH_LABEL", default_value = "server")]
    pub label: String,

    /// Points a full history holds (1800 on the simulated source). A history
    /// shorter by at most one point still counts as full: the current second's
    /// point may not be stored yet when the subscribe is handled.
    #[arg(long, env = "BENCH_EXPECT_HISTORY", default_value_t = 1800)]
    pub expect_history: usize,

    /// Interval of the progress lines on stderr.
    #[arg(long, env = "BENCH_PROGRESS", default_value = "5s", value_parser = parse_duration)]
    pub progress: Duration,

    /// Time allowed for TCP connect plus websocket handshake, per client.
    #[arg(long, env = "BENCH_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Time allowed from `subscribe` to the complete `asset_history`, per client.
    #[arg(long, env = "BENCH_HISTORY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub history_timeout: Duration,

    /// Time to wait for the server to accept the first connection.
    #[arg(long, env = "BENCH_READY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub ready_timeout: Duration,

    /// After closing every client, wait this long before reading the server's
    /// memory again (does it return to idle?).
    #[arg(long, env = "BENCH_SETTLE", default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,
}

impl LoadConfig {
    /// A full history is at least this long (see `--expect-history`).
    pub fn full_history_len(&self) -> usize {
        self.expect_history.saturating_sub(1)
    }
}

/// The baseline server's settings.
#[derive(Debug, Clone, Parser)]
#[command(name = "baseline-server")]
pub struct BaselineConfig {
    /// Address to bind.
    #[arg(long, env = "BASELINE_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port; 0 picks a free one (logged).
    #[arg(long, env = "BASELINE_PORT", default_value_t = 8090)]
    pub port: u16,

    /// Comma-separated assets; their ids are 1..N in this order.
    #[arg(long, env = "BASELINE_ASSETS", default_value = DEFAULT_ASSETS)]
    pub assets: AssetList,
}

fn parse_rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{value:?} is not a positive number of clients per second"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_defaults_are_the_standard_step() {
        let config = LoadConfig::try_parse_from(["run"]).expect("defaults parse");
        assert_eq!(config.clients, 1000);
        assert_eq!(config.ramp, 1000.0);
        assert_eq!(config.hold, Duration::from_secs(60));
        assert_eq!(config.source_ips, 64);
        assert_eq!(config.full_history_len(), 1799);
    }

    #[test]
    fn a_zero_ramp_and_too_many_source_addresses_are_refused() {
        assert!(LoadConfig::try_parse_from(["run", "--ramp", "0"]).is_err());
        assert!(LoadConfig::try_parse_from(["run", "--source-ips", "251"]).is_err());
    }
}
