//! ratecast-fetcher: turns an upstream rates URL into one stored point per asset per second.
//!
//! A [`RateSource`] yields the current quotes (the Emcont/FXCM JSONP feed over HTTP,
//! or a simulated random walk); the [`Poller`] asks it once per wall-clock second and
//! writes the resulting points into a [`PointSink`](ratecast_core::PointSink).
//! Failures skip seconds, they never invent values and never stop the poller.

pub mod buffer;
pub mod clock;
pub mod config;
pub mod emcont;
pub mod health;
pub mod http;
pub mod metrics;
pub mod poller;
pub mod service;
pub mod simulated;
pub mod source;

pub use buffer::BufferedSink;
pub use clock::{Clock, SystemClock};
pub use config::{SourceArgs, WriteBufferArgs};
pub use health::UpstreamHealth;
pub use http::{HttpSource, HttpSourceConfig};
pub use poller::{Poller, TickReport};
pub use service::{prepare_mongo, write_buffer};
pub use simulated::SimulatedSource;
pub use source::{ConfiguredSource, FetchError, QuoteError, Quotes, RateSource};
