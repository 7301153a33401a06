//! The rate-source contract: one call, the current quote of every symbol it knows;
//! and the source a fetcher is configured with.

use std::{collections::HashMap, future::Future};

use ratecast_core::AssetList;
use tracing::warn;
use url::Url;

use crate::{HttpSource, HttpSourceConfig, SimulatedSource, emcont::ParseError};

/// The quotes of one fetch, by upstream symbol. A symbol whose quote could not be
/// read is kept with its error, so the poller can say which asset it skipped and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quotes {
    by_symbol: HashMap<String, Result<f64, QuoteError>>,
}

impl Quotes {
    /// Records `symbol`'s mid value; the first quote of a symbol wins.
    pub fn insert(&mut self, symbol: String, quote: Result<f64, QuoteError>) {
        self.by_symbol.entry(symbol).or_insert(quote);
    }

    /// The mid value of `symbol`, or why there is none.
    pub fn get(&self, symbol: &str) -> Result<f64, QuoteError> {
        self.by_symbol
            .get(symbol)
            .cloned()
            .unwrap_or(Err(QuoteError::Missing))
    }

    pub fn len(&self) -> usize {
        self.by_symbol.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_symbol.is_empty()
    }
}

impl FromIterator<(String, Result<f64, QuoteError>)> for Quotes {
    fn from_iter<I: IntoIterator<Item = (String, Result<f64, QuoteError>)>>(iter: I) -> Self {
        let mut quotes = Self::default();
        for (symbol, quote) in iter {
            quotes.insert(symbol, quote);
        }
        quotes
    }
}

/// Why one symbol's quote was skipped this second.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    #[error("symbol absent from the upstream body")]
    Missing,
    #[error("{field} is missing")]
    MissingField { field: &'static str },
    #[error("{field} is not a number: {raw}")]
    NotNumeric { field: &'static str, raw: String },
    #[error("bid {bid} / ask {ask} give no finite positive mid price")]
    Unusable { bid: String, ask: String },
}

impl QuoteError {
    /// A stable label for counting skipped quotes by cause.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::MissingField { .. } => "missing_field",
            Self::NotNumeric { .. } => "not_numeric",
            Self::Unusable { .. } => "unusable",
        }
    }
}

/// Why a whole fetch failed: no asset gets a point this second.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("upstream timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("cannot connect to upstream")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("upstream answered HTTP {0}")]
    Status(u16),
    #[error("upstream body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading the upstream body failed")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("request to upstream failed")]
    Request(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("upstream body is not a rates document")]
    Parse(#[from] ParseError),
}

impl FetchError {
    /// A stable label for counting failures by cause.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Connect(_) => "connect",
            Self::Status(_) => "status",
            Self::TooLarge { .. } => "too_large",
            Self::Body(_) => "body",
            Self::Request(_) => "request",
            Self::Parse(_) => "parse",
        }
    }
}

/// Where quotes come from.
pub trait RateSource: Send + Sync + 'static {
    /// The current quotes. Called once per tick, never concurrently with itself.
    fn fetch(&self) -> impl Future<Output = Result<Quotes, FetchError>> + Send;

    /// A one-line description for the start-up log (e.g. the URL).
    fn describe(&self) -> String;
}

/// The source a fetcher runs on: the configured upstream, or simulated rates.
pub enum ConfiguredSource {
    Http(HttpSource),
    Simulated(SimulatedSource),
}

impl ConfiguredSource {
    /// The upstream at `url`, or, without one, simulated rates for `assets`
    /// (logged as a warning: they are not market data).
    pub fn new(url: Option<&Url>, assets: &AssetList) -> Result<Self, FetchError> {
        match url {
            Some(url) => Ok(Self::Http(HttpSource::new(
                url.clone(),
                HttpSourceConfig::default(),
            )?)),
            None => {
                warn!(
                    "EMCONT_EXCHANGE_RATES_URL is not set: using SIMULATED rates \
                     (a random walk, not market data)"
                );
                Ok(Self::Simulated(SimulatedSource::new(assets)))
            }
        }
    }
}

impl RateSource for ConfiguredSource {
    async fn fetch(&self) -> Result<Quotes, FetchError> {
        match self {
            Self::Http(source) => source.fetch().await,
            Self::Simulated(source) => source.fetch().await,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Http(source) => source.describe(),
            Self::Simulated(source) => source.describe(),
        }
    }
}
