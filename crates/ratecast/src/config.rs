//! The all-in-one's configuration: every flag, its env var and its default.
//!
//! Names are kept from the original service (`EMCONT_EXCHANGE_RATES_URL`,
//! `SERVER_PORT`, …). Values are validated here, while parsing, so a bad one stops
//! start-up with one line naming the flag and its env var (exit code 2).

use std::time::Duration;

use clap::{Parser, ValueEnum};
use ratecast_core::AssetList;
use url::Url;

/// Default assets, ids 1..5 in this order.
pub const DEFAULT_ASSETS: &str = "EURUSD,USDJPY,GBPUSD,AUDUSD,USDCAD";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ratecast",
    version,
    about = "Streams up-to-date exchange rates to websocket clients (fetcher and API in one process).",
    long_about = "Streams up-to-date exchange rates to websocket clients.\n\n\
        This all-in-one binary polls the rates URL once a second and serves websocket \
        clients at ws://HOST:PORT/ from an embedded in-memory store. Without \
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

    /// Log output: human-readable text or one JSON object per line.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn parse_rates_url(value: &str) -> Result<Url, String> {
    if value.trim().is_empty() {
        return Err("it is empty; unset it to serve simulated rates".into());
    }
    let url = Url::parse(value.trim()).map_err(|e| format!("not a URL ({e})"))?;
    match url.scheme() {
        "http" | "https" if url.has_host() => Ok(url),
        "http" | "https" => Err("the URL has no host".into()),
        other => Err(format!("scheme {other:?} is not http or https")),
    }
}

/// Parses `90`, `90s`, `30m`, `24h` or `7d` into a whole number of seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("{value:?} is not a duration like 90s, 30m, 24h or 7d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    match amount.checked_mul(scale) {
        Some(0) => Err("must be greater than zero".into()),
        Some(secs) => Ok(Duration::from_secs(secs)),
        None => Err(format!("{value:?} is too long")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn rates_urls_must_be_http_with_a_host() {
        assert!(parse_rates_url("https://rates.example.com/DataDisplayer").is_ok());
        assert!(parse_rates_url("ftp://x/y").is_err());
        assert!(parse_rates_url("not a url").is_err());
        assert!(parse_rates_url("http://").is_err());
    }

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
