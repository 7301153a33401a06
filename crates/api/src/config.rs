//! The API's command-line settings shared by `ratecast` and `ratecast-api`:
//! where to listen, heartbeat, limits and shutdown, each a flag with an env var
//! and a default, declared once and flattened into both command lines.

use std::time::Duration;

use clap::Args;
use ratecast_process::parse_duration;

use crate::{
    ServerConfig, SessionConfig,
    server::{HISTORY_TIMEOUT, MAX_CONNECTIONS_PER_WORKER},
};

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address the websocket API binds to.
    #[arg(long, env = "SERVER_HOST", default_value = "0.0.0.0")]
    pub host: String,

    /// Port of the websocket API; 0 picks a free port (logged at start-up).
    #[arg(long, env = "SERVER_PORT", default_value_t = 8080)]
    pub port: u16,

    /// How often the server pings each websocket client.
    #[arg(long, env = "PING_INTERVAL", default_value = "20s", value_parser = parse_duration)]
    pub ping_interval: Duration,

    /// A client that sends nothing (not even a pong) for this long is closed (1000).
    #[arg(long, env = "IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Largest client message in bytes; larger ones close the connection (1009).
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(64..=1_048_576))]
    pub max_message_bytes: u32,

    /// Client messages per second; more are answered `rate_limited`, a flood is closed (1008).
    #[arg(long, env = "RATE_LIMIT", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit: u32,

    /// Client messages allowed in a burst above RATE_LIMIT.
    #[arg(long, env = "RATE_BURST", default_value_t = 40,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_burst: u32,

    /// A client that takes nothing for this long while frames wait for it is closed as a slow consumer (1008).
    #[arg(long, env = "SEND_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub send_timeout: Duration,

    /// Bytes of replies a connection may have waiting to be sent; a reply beyond it
    /// is answered `backpressure` (live points are not queued).
    #[arg(long, env = "MAX_QUEUED_BYTES", default_value_t = 1_048_576,
          value_parser = clap::value_parser!(u32).range(65_536..))]
    pub max_queued_bytes: u32,

    /// `history` queries the process runs at once; more are answered `busy`.
    #[arg(long, env = "MAX_HISTORY_QUERIES", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_history_queries: u32,

    /// Websocket connections per process; further upgrades are answered 503.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 20_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Comma-separated browser origins allowed to connect (e.g. https://rates.example.com);
    /// unset allows any. Clients that send no Origin header are always allowed.
    #[arg(long, env = "ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Shutdown budget: clients are closed with 1001, the process exits within it.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// At shutdown, answer /readyz 503 for this long before closing clients, so a
    /// load balancer probing it stops sending upgrades first (within SHUTDOWN_TIMEOUT).
    #[arg(long, env = "SHUTDOWN_DRAIN", value_parser = parse_duration)]
    pub shutdown_drain: Option<Duration>,

    /// HTTP worker threads; 0 means one per CPU core.
    #[arg(long, env = "API_WORKERS", default_value_t = 0)]
    pub workers: usize,
}

impl ServerArgs {
    pub fn server_config(&self) -> ServerConfig {
        let origins: Vec<String> = self
            .allowed_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        ServerConfig {
            session: SessionConfig {
                ping_interval: self.ping_interval,
                idle_timeout: self.idle_timeout,
                max_message_bytes: self.max_message_bytes as usize,
                send_timeout: self.send_timeout,
                max_queued_bytes: self.max_queued_bytes as usize,
                rate_per_second: self.rate_limit,
                rate_burst: self.rate_burst,
                sse_keepalive: crate::sse::KEEPALIVE,
            },
            workers: self.workers,
            shutdown_timeout: self.shutdown_timeout,
            shutdown_drain: self.shutdown_drain,
            max_connections: self.max_connections as usize,
            max_history_queries: self.max_history_queries as usize,
            allowed_origins: (!origins.is_empty()).then_some(origins),
            max_connections_per_worker: MAX_CONNECTIONS_PER_WORKER,
            readiness_detail: None,
            history_timeout: HISTORY_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    #[test]
    fn defaults_are_the_documented_limits() {
        let config = ratecast_process::parse_ignoring_env::<Cli, _, _>(["x"])
            .expect("defaults")
            .server
            .server_config();
        let session = &config.session;
        assert_eq!(session.ping_interval, Duration::from_secs(20));
        assert_eq!(session.idle_timeout, Duration::from_secs(60));
        assert_eq!(session.max_message_bytes, 4096);
        assert_eq!((session.rate_per_second, session.rate_burst), (20, 40));
        assert_eq!(config.max_connections, 20_000);
        assert_eq!(session.max_queued_bytes, 1_048_576);
        assert_eq!(config.max_history_queries, 8);
        assert_eq!(config.allowed_origins, None);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
        let cli = ratecast_process::parse_ignoring_env::<Cli, _, _>(["x"]).expect("defaults");
        assert_eq!(
            (cli.server.host.as_str(), cli.server.port),
            ("0.0.0.0", 8080)
        );
    }

    #[test]
    fn the_library_defaults_are_the_flags_defaults() {
        let flags = ratecast_process::parse_ignoring_env::<Cli, _, _>(["x"])
            .expect("defaults")
            .server
            .server_config();
        // ServerConfig holds a closure (readiness_detail), so compare what it prints.
        assert_eq!(
            format!("{:?}", ServerConfig::default()),
            format!("{flags:?}")
        );
        assert_eq!(
            format!("{:?}", SessionConfig::default()),
            format!("{:?}", flags.session)
        );
    }

    #[test]
    fn origins_are_a_trimmed_list() {
        let cli = ratecast_process::parse_ignoring_env::<Cli, _, _>([
            "x",
            "--allowed-origins",
            "https://a.example/, http://b.example:8080",
        ])
        .expect("parses");
        assert_eq!(
            cli.server.server_config().allowed_origins,
            Some(vec![
                "https://a.example".to_owned(),
                "http://b.example:8080".to_owned()
            ])
        );
        assert!(
            ratecast_process::parse_ignoring_env::<Cli, _, _>(["x", "--rate-limit", "0"]).is_err()
        );
        assert!(
            ratecast_process::parse_ignoring_env::<Cli, _, _>(["x", "--max-message-bytes", "10"])
                .is_err()
        );
    }
}
