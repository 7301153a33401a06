//! `ratecast-bench`: the load generator that measures fan-out at scale, and the
//! minimal baseline server it is compared with (issue 4, docs/benchmarks.md).
//!
//! [`load::run_load`] opens N websocket clients at a ramp rate, holds them and
//! returns a [`Report`]: connect errors, time to history, fan-out delay,
//! delivered messages/s, missed/duplicate/seam counts and the server's RSS and
//! CPU; with `--idle` the clients never subscribe, with `--expect-backlog` it
//! measures the catch-up after a backlog flush ([`catchup`]), which
//! [`backlog_server::serve_backlog`] plays on the real API.
//! [`baseline::serve_baseline`] is the comparison server; [`compare`] sets a
//! ratecast report beside the baseline's of the same step.
//! [`hostile::run_hostile`] runs the same subscribers without and then beside
//! clients that attack the websocket transport ([`attack`], on the wire written
//! by hand in [`raw_ws`]) and judges the server against issue 15's targets
//! ([`hostile_report`]). [`multi::run_multi`] runs the same clients following
//! every asset on one connection, then one asset per connection, and compares
//! what each costs the server (issue 19). The binary
//! `ratecast-bench` only parses [`config::Cli`] and calls these. This crate is a
//! tool, not part of the product, and knows nothing of the ratecast server's internals: it speaks the wire protocol
//! and reads `/proc`, so it measures any server of the protocol (the backlog
//! server only wires the API library to a store it writes into).

pub mod admission;
pub mod arrivals;
pub mod attack;
pub mod backlog_server;
pub mod baseline;
pub mod candles;
pub mod catchup;
pub mod client;
pub mod compare;
pub mod config;
pub mod flood;
pub mod frames;
pub mod hostile;
pub mod hostile_report;
pub mod latency;
pub mod load;
pub mod multi;
pub mod procfs;
pub mod raw_ws;
pub mod report;
pub mod tcp_table;
pub mod verdict;

use std::{fs, io, path::Path};

pub use config::{
    BacklogConfig, BaselineConfig, Cli, Command, FloodConfig, HostileConfig, LoadConfig,
};
pub use hostile::run_hostile;
pub use hostile_report::HostileReport;
pub use load::run_load;
pub use report::Report;

/// Why a benchmark could not run or report.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Config(String),
    #[error("{0} is not a ws://host:port/ URL")]
    Url(String),
    #[error("cannot resolve {url}")]
    Resolve {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("the server did not answer `assets` in time: {0}")]
    Probe(String),
    #[error("cannot write the report to {path}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the report {path}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a ratecast-bench report of this kind")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Raises the soft limit of open files to the hard limit (each client is a
/// socket); returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    rlimit::increase_nofile_limit(hard)
}

/// Writes `report` (a run's or a hostile run's) as pretty JSON to `path`,
/// creating its directory.
pub fn write_json(report: &impl serde::Serialize, path: &Path) -> Result<(), BenchError> {
    let write_error = |source| BenchError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(write_error)?;
    }
    let json = serde_json::to_string_pretty(report).map_err(|e| write_error(e.into()))?;
    fs::write(path, json + "\n").map_err(write_error)
}

/// Reads a report saved by `run --json` (or, typed so, by `hostile --json`).
pub fn read_report<R: serde::de::DeserializeOwned>(path: &Path) -> Result<R, BenchError> {
    let text = fs::read_to_string(path).map_err(|source| BenchError::Read {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| BenchError::Parse {
        path: path.display().to_string(),
        source,
    })
}

/// Reads saved reports and renders them as one markdown table.
pub fn table(paths: &[impl AsRef<Path>]) -> Result<String, BenchError> {
    let mut table = String::from(report::TABLE_HEADER);
    for path in paths {
        table.push('\n');
        table.push_str(&read_report::<Report>(path.as_ref())?.table_row());
    }
    table.push('\n');
    Ok(table)
}

/// Reads saved hostile reports and renders them as one markdown table.
pub fn hostile_table(paths: &[impl AsRef<Path>]) -> Result<String, BenchError> {
    let mut table = String::from(hostile_report::TABLE_HEADER);
    for path in paths {
        table.push('\n');
        table.push_str(&read_report::<HostileReport>(path.as_ref())?.table_row());
    }
    table.push('\n');
    Ok(table)
}

/// Reads two saved reports of one step and renders their comparison
/// (ratios `ratecast / baseline`).
pub fn compare_files(ratecast: &Path, baseline: &Path) -> Result<String, BenchError> {
    Ok(compare::render(
        &read_report::<Report>(ratecast)?,
        &read_report::<Report>(baseline)?,
    ))
}
