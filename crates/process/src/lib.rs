//! ratecast-process: what the three binaries (`ratecast`, `ratecast-api`,
//! `ratecast-fetcher`) and the bench tool share about being a process.
//!
//! Log set-up, one-line configuration errors with exit code 2, the shutdown token
//! cancelled by SIGINT/SIGTERM, the Prometheus recorder behind every `/metrics`
//! and the `/healthz` and `/metrics` handlers,
//! binding a listener, the exit code of a failed run, the flags every service
//! takes (declared once here and flattened into each command line), and the
//! start-up loop that retries a service's set-up. Domain logic lives in `ratecast-core`;
//! nothing here knows what a point is beyond the asset list it parses.

pub mod args;
pub mod config;
pub mod error;
pub mod exit;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod shutdown;
pub mod startup;

pub use args::{AssetArgs, LogArgs, MongoArgs};
pub use config::{
    defaults, parse_command_or_exit, parse_duration, parse_ignoring_env, parse_or_exit,
};
pub use error::ErrorChain;
pub use exit::exit_code;
pub use logging::{LogFormat, init_tracing};
pub use net::listen;
pub use shutdown::shutdown_on_signal;
