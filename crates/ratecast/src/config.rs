//! The all-in-one's configuration: every flag, its env var and its default.
//!
//! Names are kept from the original service (`EMCONT_EXCHANGE_RATES_URL`,
//! `SERVER_PORT`, …). Values are validated here, while parsing, so a bad one stops
//! start-up with one line naming the flag and its env var (exit code 2).

use std::time::Duration;

use clap::Parser;
use ratecast_core::{
    AssetList,
    cli::{LogFormat, parse_duration},
};
use ratecast_fetcher::http::parse_rates_url;
use url::Url;

/// Default assets, ids 1..5 in this order.
pub const DEFAULT_ASSETS: &str = "EURUSD,USDJPY,GBPUSD,AUDUSD,USDCAD";

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
    /// Upstream rates URL (Emcont/FXCM JSONP). Unset: simulated rates, logged loudly.
    #[arg(long, env = "EMCONT_EXCHANGE_RATES_URL", value_parser = parse_rates_url)]
    pub rates_url: Option<Url>,

    /// MongoDB replica-set URI. Unset: the embedded in-memory store.
    #[arg(long, env = "MONGO_CONNECTION_URI", hide_env_values = true)]
    pub mongo_uri: Option<String>,

    /// MongoDB database name (used with --mongo-uri).
    #[arg(long, env = "MONGO_INITDB_DATABASE", default_value = "ratecast")]
    pub mongo_db: String,

    /// How long MongoDB keeps points (TTL index; used with --mongo-uri).
    #[arg(long, env = "MONGO_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub mongo_retention: Duration,

    /// Points the fetcher buffers while MongoDB is unreachable, in seconds of
    /// polling (used with --mongo-uri); the oldest are dropped beyond it.
    #[arg(long, env = "FETCHER_BUFFER_SECONDS", default_value_t = 900)]
    pub buffer_seconds: u32,

    /// Address the websocket API binds to.
    #[arg(long, env = "SERVER_HOST", default_value = "0.0.0.0")]
    pub host: String,

    /// Port of the websocket API; 0 picks a free port (logged at start-up).
    #[arg(long, env = "SERVER_PORT", default_value_t = 8080)]
    pub port: u16,

    /// Comma-separated assets to track; their ids are 1..N in this order.
    #[arg(long, env = "ASSET_LIST", default_value = DEFAULT_ASSETS)]
    pub assets: AssetList,

    /// How long the in-memory store keeps points (e.g. 90s, 30m, 24h, 7d).
    #[arg(long, env = "MEMORY_RETENTION", default_value = "24h", value_parser = parse_duration)]
    pub memory_retention: Duration,

    #[command(flatten)]
    pub server: ratecast_api::ServerArgs,

    /// Log output: human-readable text or one JSON object per line.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_table() {
        let config = Config::try_parse_from(["ratecast"]).expect("defaults parse");
        assert_eq!(config.port, 8080);
        assert_eq!(config.host, "0.0.0.0");
        assert_eq!(config.assets.to_string(), DEFAULT_ASSETS);
        assert_eq!(config.mongo_db, "ratecast");
        assert_eq!(config.memory_retention, Duration::from_secs(86_400));
    }
}
