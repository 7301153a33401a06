//! The `ratecast-bench` command line: the load generator's knobs, the baseline
//! server's, and the report table. Values are checked here, while parsing.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};
use ratecast_api::ServerArgs;
use ratecast_core::{AssetList, asset::DEFAULT_ASSETS, time::HISTORY_SPAN_SECS};
use ratecast_process::{AssetArgs, parse_duration};
use url::Url;

use crate::attack::Attack;

#[derive(Debug, Parser)]
#[command(
    name = "ratecast-bench",
    version,
    about = "Load generator for ratecast's websocket API, and the baseline server it is compared with.",
    long_about = "Load generator for ratecast's websocket API, and the baseline server it is compared with.\n\n\
        `run` opens N websocket clients at a given rate, subscribes each to one asset, holds them \
        and reports connect errors, time to history, fan-out delay, delivered messages/s, \
        missed/duplicate/seam errors and, with --server-pid, the server's memory and CPU \
        (`run --idle`: clients that never subscribe, for the memory of an idle connection; \
        `run --expect-backlog`: the catch-up after a backlog flush). \
        `baseline-server` serves the same protocol subset with a minimal tokio-tungstenite \
        broadcast server, so both can be measured with the same generator. \
        `backlog-server` runs the real ratecast API over an in-memory store that flushes a \
        backlog of buffered points in one insert, as a fetcher does after a store outage. \
        `multi` measures N clients following every asset on one connection against N x 5 \
        single-asset connections, in one run. \
        `table` and `compare` render saved JSON reports. \
        See docs/benchmarks.md, scripts/bench.sh and scripts/bench-backlog.sh."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the load generator against a server and report.
    Run(Box<LoadConfig>),
    /// Serve the minimal tokio-tungstenite broadcast server used as the baseline.
    BaselineServer(BaselineConfig),
    /// Serve the real ratecast API over an in-memory store that flushes a backlog
    /// of buffered points in one insert (the catch-up scenario of `run --expect-backlog`).
    ///
    /// The API is the library the product binaries run, with their flags. Timeline,
    /// in Unix seconds, with S the start and F = S + --flush-after the flush second:
    /// at start the store holds simulated points for every second of
    /// (S - 1800, F - backlog], so a client that subscribes before the flush gets a
    /// history ending at F - backlog; nothing is written until F; at the start of
    /// second F the points of F - backlog + 1 … F (backlog × assets points) are
    /// stored in ONE insert, as a fetcher flushing its buffer after a store outage
    /// does, and the flush is logged with its time (`flushed the backlog`,
    /// flush_unix_ms); from F + 1 on one simulated point per asset per second is
    /// stored, as the all-in-one's poller does. The flush is on a timer, so a
    /// script knows when it comes; --flush-after may not exceed --backlog (the
    /// outage starts at or before the start). Measure it with `ratecast-bench run
    /// --expect-backlog <backlog>`; see scripts/bench-backlog.sh.
    BacklogServer(Box<BacklogConfig>),
    /// Flood a server with `history` requests that are never read and report its
    /// memory (with --server-pid): the bound of the API's per-connection budget.
    Flood(FloodConfig),
    /// One asset's day as raw points (`history`, 24 pages) against the same day
    /// as 1-minute candles (`candles`, 2 pages), from the real API over a memory
    /// store holding the full day, in one run: time to the last page and bytes,
    /// both ways, judged against issue 18's targets (>= 20x fewer bytes, faster).
    Candles(crate::candles::CandlesBenchConfig),
    /// Issue 19's comparison, in one run against one server: phase A, N clients
    /// each following every asset (5) on ONE connection (`subscribe` with
    /// `assetIds`); then phase B, N x 5 connections following one asset each
    /// (the seed's `subscribe`, the assets spread evenly). Each phase is a `run`
    /// (probe, storm, --hold, stop, --settle), so every client of A is closed
    /// and the server has settled before B starts; the server's idle memory is
    /// read again at the start of B. Reports both runs and their ratios: server
    /// RSS above idle and CPU per delivered message, per connection and per
    /// client, delivered messages/s, fan-out delay, time to history; and the
    /// target: one connection of A costs less than two of B, i.e. A's cost per
    /// client is below 2/5 of B's, in memory and in CPU.
    Multi(Box<crate::multi::MultiConfig>),
    /// Measure N ordinary subscribers without, then beside, K hostile clients
    /// that break the websocket transport (issue 15), and judge the server
    /// against the targets.
    ///
    /// One run, two phases of the same shape after an unmeasured warm-up storm:
    /// each is a `run` of --subscribers clients (probe, storm, --hold, stop,
    /// --settle). In the attack phase the K attackers connect first and attack
    /// until the end of the hold (and past it until each was closed or attacked
    /// for --close-within plus 2 s); a probe tries to admit a fresh client
    /// during the hold. Reported per
    /// phase: the server's RSS (sampled every 100 ms: start, peak, end) and CPU
    /// per delivered message, the subscribers' fan-out p50/p99, time to history
    /// p99, messages, missed and duplicate points, connect errors, and the
    /// probe's time to admission; per attacker: whether and when (from the start
    /// of its attack) the server closed it (Close frame code and reason, HTTP
    /// answer) or tore the connection down (EOF, reset, failed write, its end
    /// of the connection shut down or gone from /proc/net/tcp). Targets: RSS
    /// growth (attack-phase peak minus calm-phase peak) at most 1 MB per
    /// attacker; fan-out p99 with the attack at most 1.5 × without; every
    /// attacker closed or torn down within --close-within. Raw sockets, masked
    /// frames built by hand. The server's RSS passing --rss-ceiling aborts the
    /// attack phase. See scripts/bench-hostile.sh.
    Hostile(Box<HostileConfig>),
    /// Print saved JSON reports of `hostile --json` as one markdown table.
    HostileTable {
        /// JSON reports written by `hostile --json`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print saved JSON reports as one markdown table.
    Table {
        /// JSON reports written by `run --json`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Compare two saved JSON reports of the same step (ratecast and the baseline):
    /// a markdown table of both figures and their ratio (first / second).
    Compare {
        /// The report of the server under test (e.g. ratecast-1000.json).
        ratecast: PathBuf,
        /// The report it is compared with (e.g. baseline-1000.json).
        baseline: PathBuf,
    },
}

/// The load generator's settings.
#[derive(Debug, Clone, Parser)]
#[command(name = "run")]
pub struct LoadConfig {
    /// Websocket URL of the server under test.
    #[arg(long, env = "BENCH_URL", default_value = "ws://127.0.0.1:8080/")]
    pub url: Url,

    /// Clients to open (each holds one socket); `hostile` calls them subscribers.
    #[arg(
        long,
        alias = "subscribers",
        env = "BENCH_CLIENTS",
        default_value_t = 1000
    )]
    pub clients: usize,

    /// Connect ramp: new clients per second.
    #[arg(long, env = "BENCH_RAMP", default_value_t = 1000.0, value_parser = parse_rate)]
    pub ramp: f64,

    /// How long to hold every client after the last one got its history
    /// (the steady-state window), e.g. 60s.
    #[arg(long, env = "BENCH_HOLD", default_value = "60s", value_parser = parse_duration)]
    pub hold: Duration,

    /// Spread client sockets over this many source addresses 127.0.0.2, .3, …
    /// (at most 250), past the ~28k ephemeral ports of one address; 0 lets the
    /// kernel choose (127.0.0.1).
    #[arg(long, env = "BENCH_SOURCE_IPS", default_value_t = 64, value_parser = clap::value_parser!(u8).range(0..=250))]
    pub source_ips: u8,

    /// Pid of the server process, to report its RSS and CPU (Linux /proc).
    #[arg(long, env = "BENCH_SERVER_PID")]
    pub server_pid: Option<u32>,

    /// Also write the report as JSON to this file.
    #[arg(long, env = "BENCH_JSON")]
    pub json: Option<PathBuf>,

    /// Name of the run in the report (e.g. `ratecast` or `baseline`).
    #[arg(long, env = "BENCH_LABEL", default_value = "server")]
    pub label: String,

    /// Points a full history holds (1800 on the simulated source). A history
    /// shorter by at most one point still counts as full: the current second's
    /// point may not be stored yet when the subscribe is handled.
    #[arg(long, env = "BENCH_EXPECT_HISTORY", default_value_t = 1800)]
    pub expect_history: usize,

    /// Interval of the progress lines on stderr.
    #[arg(long, env = "BENCH_PROGRESS", default_value = "5s", value_parser = parse_duration)]
    pub progress: Duration,

    /// Time allowed for TCP connect plus websocket handshake, per client.
    #[arg(long, env = "BENCH_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Time allowed from `subscribe` to the complete `asset_history`, per client.
    #[arg(long, env = "BENCH_HISTORY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub history_timeout: Duration,

    /// Time to wait for the server to accept the first connection.
    #[arg(long, env = "BENCH_READY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub ready_timeout: Duration,

    /// After closing every client, wait this long before reading the server's
    /// memory again (does it return to idle?).
    #[arg(long, env = "BENCH_SETTLE", default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,

    /// Idle connections: clients connect and never subscribe (they only answer
    /// the server's pings), so the server's memory per connection is that of a
    /// connection without subscription or history. Time to history and fan-out
    /// are then empty, and no history is expected.
    #[arg(long, env = "BENCH_RUN_IDLE", conflicts_with = "expect_backlog")]
    pub idle: bool,

    /// Backlog flush scenario (`backlog-server --backlog` of the same length, e.g.
    /// 900s): every client's history ends where the server stopped writing, then
    /// this many seconds of points per asset arrive at once as ordinary `point`
    /// messages. Reports when the flush was first seen, how long until every
    /// client had the newest flushed point, per-client catch-up times and the
    /// server CPU in between; histories shorter by the outage count as full. The
    /// hold lasts at least --hold and until every client is current (at most
    /// --catch-up-timeout), then 10 s more.
    #[arg(long, env = "BENCH_EXPECT_BACKLOG", value_parser = parse_backlog)]
    pub expect_backlog: Option<Duration>,

    /// With --expect-backlog: the longest the hold is extended to wait for the
    /// flush and for every client to become current.
    #[arg(long, env = "BENCH_CATCH_UP_TIMEOUT", default_value = "10m", value_parser = parse_duration)]
    pub catch_up_timeout: Duration,

    /// What each client's one connection follows. Not a flag of `run` (always
    /// one asset there): `multi` sets it for its phase of many assets.
    #[arg(skip)]
    pub follow: Follow,
}

/// What each client's one connection follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Follow {
    /// One asset, client `k` the `k mod assets`-th of the `assets` reply,
    /// subscribed with the seed's `assetId`.
    #[default]
    OneAsset,
    /// Every asset of the `assets` reply, in one `subscribe` with `assetIds`.
    EveryAsset,
}

impl LoadConfig {
    /// A full history is at least this long (see `--expect-history`).
    pub fn full_history_len(&self) -> usize {
        self.expect_history.saturating_sub(1)
    }
}

/// The `hostile` run's settings: the subscribers' are those of `run`
/// (`--subscribers` is `--clients`), the attack's are added.
#[derive(Debug, Clone, Parser)]
#[command(name = "hostile")]
pub struct HostileConfig {
    /// The ordinary subscribers, measured without and then with the attack.
    #[command(flatten)]
    pub load: LoadConfig,

    /// The attack.
    #[arg(long, env = "HOSTILE_ATTACK", value_enum)]
    pub attack: Attack,

    /// Attacking connections in the attack phase.
    #[arg(long, env = "HOSTILE_ATTACKERS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub attackers: u32,

    /// Safety for a shared machine: when the server's RSS passes this (e.g.
    /// 2G, 512M), the attack phase is aborted and the attackers disconnect.
    #[arg(long = "rss-ceiling", env = "HOSTILE_RSS_CEILING", default_value = "2G",
          value_parser = parse_kib)]
    pub rss_ceiling_kb: u64,

    /// The target: the server closes or tears down every attacker within this
    /// long of the start of its attack (issue 15: 5 s).
    #[arg(long, env = "HOSTILE_CLOSE_WITHIN", default_value = "5s", value_parser = parse_duration)]
    pub close_within: Duration,
}

impl HostileConfig {
    /// Checks what clap cannot: the subscribers subscribe, and the server is known.
    pub fn validate(&self) -> Result<u32, String> {
        if self.load.idle || self.load.expect_backlog.is_some() {
            return Err(
                "hostile subscribers subscribe: --idle and --expect-backlog do not apply".into(),
            );
        }
        self.load.server_pid.ok_or_else(|| {
            "hostile measures the server's memory and CPU: --server-pid is required".into()
        })
    }
}

/// A size in KiB from `2G`, `512M`, `640K` or a plain number of bytes
/// (binary units; a trailing `B` or `iB` is allowed).
fn parse_kib(value: &str) -> Result<u64, String> {
    let bad = || format!("{value:?} is not a size like 2G, 512M or 640K");
    let text = value.trim();
    let text = text
        .strip_suffix("iB")
        .or_else(|| text.strip_suffix('B'))
        .unwrap_or(text);
    let (number, unit) = match text.char_indices().last() {
        Some((at, unit)) if unit.is_ascii_alphabetic() => (&text[..at], Some(unit)),
        _ => (text, None),
    };
    let number: f64 = number.trim().parse().map_err(|_| bad())?;
    let kib = match unit.map(|u| u.to_ascii_uppercase()) {
        None => number / 1024.0,
        Some('K') => number,
        Some('M') => number * 1024.0,
        Some('G') => number * 1024.0 * 1024.0,
        Some('T') => number * 1024.0 * 1024.0 * 1024.0,
        Some(_) => return Err(bad()),
    };
    if kib.is_finite() && kib >= 1.0 {
        Ok(kib as u64)
    } else {
        Err(bad())
    }
}

/// The backlog server's settings: the real API's flags (`ratecast --help`), the
/// assets, and the outage to simulate.
#[derive(Debug, Clone, Parser)]
#[command(name = "backlog-server")]
pub struct BacklogConfig {
    #[command(flatten)]
    pub server: ServerArgs,

    #[command(flatten)]
    pub assets: AssetArgs,

    /// Seconds of buffered points per asset flushed at once (at most 1800, the
    /// history span).
    #[arg(long, env = "BACKLOG_SECS", default_value = "900s", value_parser = parse_backlog)]
    pub backlog: Duration,

    /// When the flush comes, after the start (leave time for the clients to
    /// subscribe); at most --backlog.
    #[arg(long, env = "BACKLOG_FLUSH_AFTER", default_value = "60s", value_parser = parse_duration)]
    pub flush_after: Duration,

    /// How far back the store holds points at the start (at least the 1800 s
    /// history span, at most a day): `history` requests reach that far (e.g. 1d
    /// for `ratecast-bench flood`).
    #[arg(long, env = "BACKLOG_STORED_HISTORY", default_value = "1800s", value_parser = parse_duration)]
    pub stored_history: Duration,
}

/// The `history` flood's settings.
#[derive(Debug, Clone, Parser)]
#[command(name = "flood")]
pub struct FloodConfig {
    /// Websocket URL of the server under test.
    #[arg(long, env = "BENCH_URL", default_value = "ws://127.0.0.1:8080/")]
    pub url: Url,

    /// Flooding clients, each one socket that never reads.
    #[arg(long, env = "FLOOD_CLIENTS", default_value_t = 20)]
    pub clients: usize,

    /// `history` requests each client sends.
    #[arg(long, env = "FLOOD_REQUESTS", default_value_t = 40)]
    pub requests: u32,

    /// Time between a client's requests.
    #[arg(long, env = "FLOOD_INTERVAL", default_value = "50ms", value_parser = parse_duration_ms)]
    pub interval: Duration,

    /// The range each request asks for: the last SPAN seconds (at most a day).
    #[arg(long, env = "FLOOD_SPAN", default_value = "1d", value_parser = parse_duration)]
    pub span: Duration,

    /// The asset id asked for.
    #[arg(long, env = "FLOOD_ASSET", default_value_t = 1)]
    pub asset: u32,

    /// How long the clients keep their sockets open after their last request.
    #[arg(long, env = "FLOOD_HOLD", default_value = "10s", value_parser = parse_duration)]
    pub hold: Duration,

    /// Pid of the server process, to report its memory (Linux /proc).
    #[arg(long, env = "BENCH_SERVER_PID")]
    pub server_pid: Option<u32>,
}

/// A duration in milliseconds (`50ms`) or as `parse_duration` takes it.
fn parse_duration_ms(value: &str) -> Result<Duration, String> {
    match value.trim().strip_suffix("ms") {
        Some(ms) => ms
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("{value:?} is not a number of milliseconds like 50ms")),
        None => parse_duration(value),
    }
}

impl BacklogConfig {
    /// Checks what clap cannot: the flush comes after the outage began.
    pub fn validate(&self) -> Result<(), String> {
        if !(HISTORY_SPAN_SECS.unsigned_abs()..=86_400).contains(&self.stored_history.as_secs()) {
            return Err("--stored-history must be between 1800 s and a day".into());
        }
        if self.flush_after > self.backlog {
            return Err(format!(
                "--flush-after ({} s) exceeds --backlog ({} s): the outage would start after the \
                 server did; raise --backlog or lower --flush-after",
                self.flush_after.as_secs(),
                self.backlog.as_secs()
            ));
        }
        Ok(())
    }
}

/// The baseline server's settings.
#[derive(Debug, Clone, Parser)]
#[command(name = "baseline-server")]
pub struct BaselineConfig {
    /// Address to bind.
    #[arg(long, env = "BASELINE_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port; 0 picks a free one (logged).
    #[arg(long, env = "BASELINE_PORT", default_value_t = 8090)]
    pub port: u16,

    /// Comma-separated assets; their ids are 1..N in this order.
    #[arg(long, env = "BASELINE_ASSETS", default_value = DEFAULT_ASSETS)]
    pub assets: AssetList,
}

/// A backlog length: 1 s to the history span (1800 s).
fn parse_backlog(value: &str) -> Result<Duration, String> {
    let backlog = parse_duration(value)?;
    let span = HISTORY_SPAN_SECS.unsigned_abs();
    if (1..=span).contains(&backlog.as_secs()) {
        Ok(backlog)
    } else {
        Err(format!("{value:?} is not a backlog of 1 to {span} seconds"))
    }
}

fn parse_rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{value:?} is not a positive number of clients per second"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_defaults_are_the_standard_step() {
        let config = ratecast_process::parse_ignoring_env::<LoadConfig, _, _>(["run"])
            .expect("defaults parse");
        assert_eq!(config.clients, 1000);
        assert_eq!(config.ramp, 1000.0);
        assert_eq!(config.hold, Duration::from_secs(60));
        assert_eq!(config.source_ips, 64);
        assert_eq!(config.full_history_len(), 1799);
    }

    #[test]
    fn idle_and_backlog_runs_are_flags_of_run_and_exclude_each_other() {
        let idle = ratecast_process::parse_ignoring_env::<LoadConfig, _, _>(["run", "--idle"])
            .expect("--idle parses");
        assert!(idle.idle && idle.expect_backlog.is_none());
        let backlog = ratecast_process::parse_ignoring_env::<LoadConfig, _, _>([
            "run",
            "--expect-backlog",
            "15m",
        ])
        .expect("--expect-backlog parses");
        assert_eq!(backlog.expect_backlog, Some(Duration::from_secs(900)));
        assert!(
            ratecast_process::parse_ignoring_env::<LoadConfig, _, _>([
                "run",
                "--idle",
                "--expect-backlog",
                "9"
            ])
            .is_err()
        );
        assert!(
            ratecast_process::parse_ignoring_env::<LoadConfig, _, _>([
                "run",
                "--expect-backlog",
                "1801"
            ])
            .is_err()
        );
        assert!(
            ratecast_process::parse_ignoring_env::<LoadConfig, _, _>([
                "run",
                "--expect-backlog",
                "0"
            ])
            .is_err()
        );
    }

    #[test]
    fn the_backlog_server_defaults_to_fifteen_minutes_flushed_after_one() {
        let config =
            ratecast_process::parse_ignoring_env::<BacklogConfig, _, _>(["backlog-server"])
                .expect("defaults parse");
        assert_eq!(config.backlog, Duration::from_secs(900));
        assert_eq!(config.flush_after, Duration::from_secs(60));
        assert_eq!(config.assets.list.len(), 5);
        assert!(config.validate().is_ok());
        let late = ratecast_process::parse_ignoring_env::<BacklogConfig, _, _>([
            "backlog-server",
            "--backlog",
            "30s",
            "--flush-after",
            "31s",
        ])
        .expect("parses");
        assert!(late.validate().is_err());
    }

    #[test]
    fn a_hostile_run_takes_the_run_flags_with_subscribers_and_its_attack() {
        let config = ratecast_process::parse_ignoring_env::<HostileConfig, _, _>([
            "hostile",
            "--url",
            "ws://127.0.0.1:9/",
            "--server-pid",
            "42",
            "--attack",
            "giant-frame",
            "--subscribers",
            "500",
            "--hold",
            "10s",
            "--attackers",
            "4",
            "--rss-ceiling",
            "3G",
        ])
        .expect("valid hostile flags");
        assert_eq!(config.attack, Attack::GiantFrame);
        assert_eq!(config.load.clients, 500);
        assert_eq!(config.load.hold, Duration::from_secs(10));
        assert_eq!(config.attackers, 4);
        assert_eq!(config.rss_ceiling_kb, 3 * 1024 * 1024);
        assert_eq!(config.close_within, Duration::from_secs(5));
        assert_eq!(config.validate(), Ok(42));
        let no_pid = ratecast_process::parse_ignoring_env::<HostileConfig, _, _>([
            "hostile",
            "--attack",
            "pong-flood",
        ])
        .expect("parses");
        assert!(no_pid.validate().is_err());
        assert!(
            ratecast_process::parse_ignoring_env::<HostileConfig, _, _>([
                "hostile", "--attack", "nope"
            ])
            .is_err()
        );
        assert!(
            ratecast_process::parse_ignoring_env::<HostileConfig, _, _>([
                "hostile",
                "--attack",
                "ping-flood",
                "--attackers",
                "0"
            ])
            .is_err()
        );
    }

    #[test]
    fn sizes_are_read_in_binary_units() {
        assert_eq!(parse_kib("2G"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_kib("512MiB"), Ok(512 * 1024));
        assert_eq!(parse_kib("640k"), Ok(640));
        assert_eq!(parse_kib("1.5G"), Ok(3 * 512 * 1024));
        assert_eq!(parse_kib("1048576"), Ok(1024));
        assert!(parse_kib("lots").is_err());
        assert!(parse_kib("2X").is_err());
        assert!(parse_kib("0").is_err());
    }

    #[test]
    fn a_zero_ramp_and_too_many_source_addresses_are_refused() {
        assert!(
            ratecast_process::parse_ignoring_env::<LoadConfig, _, _>(["run", "--ramp", "0"])
                .is_err()
        );
        assert!(
            ratecast_process::parse_ignoring_env::<LoadConfig, _, _>([
                "run",
                "--source-ips",
                "251"
            ])
            .is_err()
        );
    }
}
