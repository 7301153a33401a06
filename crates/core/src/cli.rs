//! Command-line plumbing shared by the `ratecast`, `ratecast-api` and
//! `ratecast-fetcher` binaries: log set-up, one-line configuration errors with
//! exit code 2, and turning SIGINT/SIGTERM into a shutdown token.

use std::{io::IsTerminal, time::Duration};

use clap::{CommandFactory, FromArgMatches, ValueEnum, error::ErrorKind};
use tracing_subscriber::EnvFilter;

/// Log output format (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Sets up `tracing` on stderr; `RUST_LOG` filters (default `info`).
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Parses flags and env into `C`. `--help`/`--version` print and exit 0; a bad
/// value prints one line naming the flag and its env var and exits with code 2.
pub fn parse_or_exit<C: CommandFactory + FromArgMatches>() -> C {
    let command = C::command();
    let name = command.get_name().to_owned();
    let parsed = command
        .clone()
        .try_get_matches()
        .and_then(|mut matches| C::from_arg_matches_mut(&mut matches));
    match parsed {
        Ok(config) => config,
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            error.exit()
        }
        Err(error) => {
            eprintln!("{name}: {}", one_line(&command, &error));
            std::process::exit(2);
        }
    }
}

/// clap's first error line, plus the env var of the offending flag.
fn one_line(command: &clap::Command, error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    // clap puts the names of missing arguments on the lines after the first.
    let first = rendered
        .split("\n\n")
        .next()
        .unwrap_or("error: invalid configuration")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let env = error
        .get(clap::error::ContextKind::InvalidArg)
        .map(|arg| arg.to_string())
        .and_then(|arg| {
            let long = arg
                .trim_start_matches("--")
                .split([' ', '='])
                .next()?
                .to_owned();
            let found = command
                .get_arguments()
                .find(|a| a.get_long() == Some(long.as_str()))?
                .get_env()?
                .to_string_lossy()
                .into_owned();
            Some(found)
        });
    match env {
        Some(env) => format!("{first} (flag or env {env})"),
        None => first,
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

/// A shutdown token cancelled on the first Ctrl-C or SIGTERM; the one token a
/// binary hands to its library's `run`. Needs a tokio runtime.
pub fn shutdown_on_signal() -> tokio_util::sync::CancellationToken {
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown_signal().await;
            shutdown.cancel();
        }
    });
    shutdown
}

/// Resolves on the first Ctrl-C or SIGTERM (logging which).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}

/// The process's Prometheus recorder, installed on first use; `/metrics`
/// endpoints render it. Call it at start-up, before anything records: metric
/// handles taken before a recorder exists stay no-ops.
pub fn prometheus() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        const SECONDS: &[f64] = &[
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        handle
    })
}

/// Connections the kernel queues before the server accepts them. std's default
/// (128) overflows in a reconnect storm after a restart; 4096 does not.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds `host:port` for a server, with [`LISTEN_BACKLOG`]. Needs a tokio runtime.
pub async fn bind(host: &str, port: u16) -> std::io::Result<std::net::TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr) {
            Ok(()) => return socket.listen(LISTEN_BACKLOG)?.into_std(),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "the host resolved to no address",
        )
    }))
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
}
