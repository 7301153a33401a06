//! The all-in-one's configuration: every flag, its env var and its default.
//!
//! Names are kept from the original service (`EMCONT_EXCHANGE_RATES_URL`,
//! `SERVER_PORT`, …). Values are validated here, while parsing, so a bad one stops
//! start-up with one line naming the flag and its env var (exit code 2).
//!
//! `ratecast watch` shares the command line but not the serve settings: under
//! it, the serve flags read nothing from the environment ([`Cli::command_for`]),
//! so a `SERVER_PORT` meant for a server cannot stop a watcher.

use std::{ffi::OsString, time::Duration};

use clap::{Args, CommandFactory, Parser};
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

impl Cli {
    /// The command line of this process, or one line and exit code 2
    /// ([`ratecast_process::parse_or_exit`]), read by [`Cli::command_for`].
    pub fn parse_or_exit() -> Self {
        let argv: Vec<OsString> = std::env::args_os().collect();
        ratecast_process::parse_command_or_exit(Self::command_for(&argv), argv)
    }

    /// The parser for `argv`: the whole command line, except that under `watch`
    /// the serve flags read no environment. The log format stays: `watch`
    /// logs too. Flags given on the command line are read either way.
    pub fn command_for(argv: &[OsString]) -> clap::Command {
        let watching = matches!(
            ratecast_process::parse_ignoring_env::<Self, _, _>(argv),
            Ok(Self {
                command: Some(Command::Watch(_)),
                ..
            })
        );
        let command = Self::command();
        if !watching {
            return command;
        }
        let used_by_watch: Vec<clap::Id> = LogArgs::augment_args(clap::Command::new("log"))
            .get_arguments()
            .map(|arg| arg.get_id().clone())
            .collect();
        command.mut_args(|arg| {
            if used_by_watch.contains(arg.get_id()) {
                arg
            } else {
                arg.env(None)
            }
        })
    }
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
        let config = ratecast_process::parse_ignoring_env::<Config, _, _>(["ratecast"])
            .expect("defaults parse");
        assert_eq!(config.server.port, 8080);
        assert_eq!(config.server.host, "0.0.0.0");
        assert_eq!(config.assets.list.to_string(), DEFAULT_ASSETS);
        assert_eq!(config.mongo.uri, None);
        assert_eq!(config.mongo.db, "ratecast");
        assert_eq!(config.memory_retention, Duration::from_secs(86_400));
    }

    /// The env vars the top-level flags read for `argv`.
    fn env_vars(argv: &[&str]) -> Vec<String> {
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        Cli::command_for(&argv)
            .get_arguments()
            .filter_map(|arg| Some(arg.get_env()?.to_string_lossy().into_owned()))
            .collect()
    }

    #[test]
    fn watch_reads_the_log_format_and_no_serve_setting_from_the_environment() {
        let serving = env_vars(&["ratecast", "--assets", "EURUSD"]);
        for var in ["SERVER_PORT", "SERVER_HOST", "ASSET_LIST", "LOG_FORMAT"] {
            assert!(serving.contains(&var.to_owned()), "{var}: {serving:?}");
        }
        assert_eq!(env_vars(&["ratecast", "watch", "EURUSD"]), ["LOG_FORMAT"]);
        assert_eq!(
            env_vars(&["ratecast", "--log-format", "json", "watch"]),
            ["LOG_FORMAT"]
        );
    }
}
