//! Flags every ratecast service takes, declared once and flattened into each
//! binary's command line (`#[command(flatten)]`), so a name, an env var, a default
//! and a help text cannot drift apart between binaries.

use clap::{Arg, Args};
use ratecast_core::{AssetList, asset::DEFAULT_ASSETS};

use crate::LogFormat;

/// `--assets` / `ASSET_LIST`.
#[derive(Debug, Clone, Args)]
pub struct AssetArgs {
    /// Comma-separated assets to track, as the upstream names them; their ids are
    /// 1..N in this order. The fetcher and the API must use the same list.
    #[arg(long = "assets", env = "ASSET_LIST", default_value = DEFAULT_ASSETS)]
    pub list: AssetList,
}

/// `--mongo-uri` / `MONGO_CONNECTION_URI` and `--mongo-db` / `MONGO_INITDB_DATABASE`.
///
/// The URI is optional here because the all-in-one runs without MongoDB;
/// `ratecast-api` and `ratecast-fetcher` make it required on their command line
/// (`#[command(mut_arg("mongo_uri", …))]`).
#[derive(Debug, Clone, Args)]
pub struct MongoArgs {
    /// MongoDB replica-set URI. Unset: the embedded in-memory store.
    #[arg(
        long = "mongo-uri",
        id = "mongo_uri",
        env = "MONGO_CONNECTION_URI",
        hide_env_values = true
    )]
    pub uri: Option<String>,

    /// MongoDB database name.
    #[arg(
        long = "mongo-db",
        env = "MONGO_INITDB_DATABASE",
        default_value = "ratecast"
    )]
    pub db: String,
}

/// Makes `--mongo-uri` required, for the services that only run on MongoDB:
/// `#[command(mut_arg("mongo_uri", ratecast_process::args::required_mongo_uri))]`.
pub fn required_mongo_uri(arg: Arg) -> Arg {
    arg.required(true)
        .help("MongoDB replica-set URI (required; change streams need a replica set).")
}

/// `--log-format` / `LOG_FORMAT`.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log output: human-readable text or one JSON object per line.
    #[arg(long = "log-format", env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub format: LogFormat,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Optional {
        #[command(flatten)]
        mongo: MongoArgs,
        #[command(flatten)]
        assets: AssetArgs,
        #[command(flatten)]
        log: LogArgs,
    }

    #[derive(Parser)]
    #[command(mut_arg("mongo_uri", required_mongo_uri))]
    struct Required {
        #[command(flatten)]
        mongo: MongoArgs,
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let parsed = crate::parse_ignoring_env::<Optional, _, _>(["x"]).expect("defaults parse");
        assert_eq!(parsed.mongo.uri, None);
        assert_eq!(parsed.mongo.db, "ratecast");
        assert_eq!(parsed.assets.list.to_string(), DEFAULT_ASSETS);
        assert_eq!(parsed.log.format, LogFormat::Text);
    }

    #[test]
    fn a_binary_can_make_the_mongo_uri_required() {
        assert!(crate::parse_ignoring_env::<Required, _, _>(["x"]).is_err());
        let parsed =
            crate::parse_ignoring_env::<Required, _, _>(["x", "--mongo-uri", "mongodb://h/"])
                .expect("the uri is given");
        assert_eq!(parsed.mongo.uri.as_deref(), Some("mongodb://h/"));
    }
}
