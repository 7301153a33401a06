//! ratecast-process: what the three binaries (`ratecast`, `ratecast-api`,
//! `ratecast-fetcher`) and the bench tool share about being a process.
//!
//! Log set-up, one-line configuration errors with exit code 2, the shutdown token
//! cancelled by SIGINT/SIGTERM, the Prometheus recorder behind every `/metrics`,
//! binding a listener, the exit code of a failed run, the flags every service
//! takes (declared once here and flattened into each command line), and the
//! retry loop around a service's start-up. Domain logic lives in `ratecast-core`;
//! nothing here knows what a point is beyond the asset list it parses.

pub mod args;
pub mod config;
pub mod error;
pub mod exit;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod retry;
pub mod shutdown;

pub use args::{AssetArgs, LogArgs, MongoArgs};
pub use config::{parse_duration, parse_or_exit};
pub use error::ErrorChain;
pub use exit::exit_code;
pub use logging::{LogFormat, init_tracing};
pub use net::{bind, listen};
pub use shutdown::shutdown_on_signal;
