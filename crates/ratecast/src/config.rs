//! The all-in-one's configuration: every flag, its env var and its default.
//!
//! Names are kept from the original service (`EMCONT_EXCHANGE_RATES_URL`,
//! `SERVER_PORT`, …). Values are validated here, while parsing, so a bad one stops
//! start-up with one line naming the flag and its env var (exit code 2).

use std::time::Duration;

use clap::Parser;
use ratecast_api::ServerArgs;
use ratecast_fetcher::{SourceArgs, WriteBufferArgs};
use ratecast_process::{AssetArgs, LogArgs, MongoArgs, parse_duration};

/// The `ratecast` command line: serve (the default) or an operator tool.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ratecast",
    version,
    about = "Streams up-to-date exchange rates to websocket clients (fetcher and API in one process).",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Print live rates in the terminal from any ratecast deployment.
    Watch(crate::watch::WatchArgs),
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ratecast",
    version,
    about = "Streams up-to-date exchange rates to websocket clients (fetcher and API in one process).",
    long_about = "Streams up-to-date exchange rates to websocket clients.\n\n\
        This all-in-one binary polls the rates URL once a second and serves websocket \
        clients at ws://HOST:PORT/ from an embedded in-memory store, or from MongoDB \
        when MONGO_CONNECTION_URI is set. Without \
        EMCONT_EXCHANGE_RATES_URL it serves SIMULATED rates (a random walk, not market data).\n\n\
        Every flag can also be set by the environment variable shown with it."
)]
pub struct Config {
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub mongo: MongoArgs,

    // Used on MongoDB only.
    #[command(flatten)]
    pub write: WriteBufferArgs,

    #[command(flatten)]
    pub server: ServerArgs,

    #[command(flatten)]
    pub assets: AssetArgs,

    /// How long the in-memory store keeps points (e.g. 90s, 30m, 24h, 7d).
    #[arg(long, env = "MEMORY_RETENTION", default_value = "24h", value_parser = parse_duration)]
    pub memory_retention: Duration,

    #[command(flatten)]
    pub log: LogArgs,
}

#[cfg(test)]
mod tests {
    use ratecast_core::asset::DEFAULT_ASSETS;

    use super::*;

    #[test]
    fn defaults_match_the_documented_table() {
        let config = Config::try_parse_from(["ratecast"]).expect("defaults parse");
        assert_eq!(config.server.port, 8080);
        assert_eq!(config.server.host, "0.0.0.0");
        assert_eq!(config.assets.list.to_string(), DEFAULT_ASSETS);
        assert_eq!(config.mongo.uri, None);
        assert_eq!(config.mongo.db, "ratecast");
        assert_eq!(config.memory_retention, Duration::from_secs(86_400));
    }
}
