//! The fetcher's command-line settings shared by `ratecast` and
//! `ratecast-fetcher`: where the rates come from and how points are written to
//! MongoDB, declared once and flattened into both command lines.

use std::time::Duration;

use clap::Args;
use ratecast_process::parse_duration;
use url::Url;

use crate::http::parse_rates_url;

/// `--rates-url` / `EMCONT_EXCHANGE_RATES_URL`.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Upstream rates URL (Emcont/FXCM JSONP). Unset: simulated rates, logged loudly.
    #[arg(long, env = "EMCONT_EXCHANGE_RATES_URL", value_parser = parse_rates_url)]
    pub rates_url: Option<Url>,
}

/// How the fetcher writes to MongoDB (unused on the in-memory store).
#[derive(Debug, Clone, Args)]
pub struct WriteBufferArgs {
    /// How long MongoDB keeps points (the TTL index), e.g. 7d.
    #[arg(long, env = "MONGO_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub mongo_retention: Duration,

    /// Points buffered while MongoDB is unreachable, in seconds of polling;
    /// the oldest are dropped beyond it.
    #[arg(long, env = "FETCHER_BUFFER_SECONDS", default_value_t = 900)]
    pub buffer_seconds: u32,
}

impl WriteBufferArgs {
    /// The write buffer's capacity in points for `assets` assets.
    pub fn capacity(&self, assets: usize) -> usize {
        (self.buffer_seconds as usize).saturating_mul(assets)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        source: SourceArgs,
        #[command(flatten)]
        write: WriteBufferArgs,
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let cli = ratecast_process::parse_ignoring_env::<Cli, _, _>(["x"]).expect("defaults parse");
        assert_eq!(cli.source.rates_url, None);
        assert_eq!(cli.write.mongo_retention, Duration::from_secs(7 * 86_400));
        assert_eq!(cli.write.capacity(5), 4500);
    }
}
