//! `ratecast-bench multi` (issue 19): what a client that follows every asset
//! costs the server on ONE connection (`subscribe` with `assetIds`) against the
//! same client on one connection per asset, in one run against one server.
//!
//! Phase A opens N clients that each follow every asset of the server on one
//! connection; phase B opens N × assets connections that each follow one asset
//! with the seed's `subscribe` (the generator's usual spread: connection `k`
//! follows asset `k mod assets`, so each asset has N followers in both phases).
//! Each phase is one [`run_load`] (probe, storm, hold, stop, settle): every
//! connection of A is closed and `--settle` has passed before B probes the
//! server and reads its idle memory again; A goes first, so B, not A, meets a
//! server that has already served a storm. Both phases deliver the same
//! points (each asset's point of each second to each of the N clients), so
//! their costs compare directly.
//!
//! The target ([`MultiReport::target`]): one connection of A costs the server
//! less than two of B, in memory (RSS above idle) and in CPU (per second of
//! hold). A client holds one connection in A and `assets` in B, so this is A's
//! cost per client below `2 / assets` of B's; CPU is compared per delivered
//! message, which is the same ratio when both phases deliver alike and does
//! not flatter a phase that delivered less.
//!
//! This module owns the order of the phases and the comparison; measuring is
//! [`super::load`]'s, the per-phase figures are its [`Report`]s.

use std::fmt;

use ratecast_core::time::unix_now_secs;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{
    BenchError,
    config::{Follow, LoadConfig},
    load::{self, run_load},
    report::Report,
};

/// `ratecast-bench multi`: the flags of `run`, with N as `--clients`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "multi",
    mut_arg("clients", |arg| arg
        .default_value("3600")
        .help("Clients (N). Phase A opens N connections, phase B N × assets (5 by \
            default): 3600 makes 18,000, under the 20,000 open files a process may \
            hold on the benchmark machine (the server and this generator each hold \
            one socket per connection).")),
    mut_arg("label", |arg| arg
        .default_value("ratecast")
        .help("Name of the run; the phases are <label>-multi-<N> and \
            <label>-single-<N × assets>.")),
)]
pub struct MultiConfig {
    /// The load of each phase (`--clients` is N; the rest is `run`'s).
    #[command(flatten)]
    pub load: LoadConfig,
}

impl MultiConfig {
    /// Checks what clap cannot: both phases subscribe and take live points.
    pub fn validate(&self) -> Result<(), String> {
        if self.load.idle || self.load.expect_backlog.is_some() {
            return Err(
                "multi compares subscribers: --idle and --expect-backlog do not apply".into(),
            );
        }
        if self.load.clients == 0 {
            return Err("--clients must be at least 1".into());
        }
        Ok(())
    }
}

/// Both phases of one `multi` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MultiReport {
    pub label: String,
    pub url: String,
    /// Unix seconds at the start of phase A.
    pub started_unix: i64,
    /// N: the clients of each phase.
    pub clients: usize,
    /// The server's assets: what a client of A follows on its one connection,
    /// and how many connections a client of B holds.
    pub assets: usize,
    /// Phase A: N connections, each following every asset.
    pub multi: Report,
    /// Phase B: N × `assets` connections, each following one asset.
    pub single: Report,
}

/// What one phase cost the server, per connection and per client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Connections open at the end of the hold.
    pub connections: u64,
    /// Server RSS at the end of the hold minus before the phase's first client.
    pub kb_per_connection: f64,
    pub kb_per_client: f64,
    /// Server CPU in the hold per `point` message delivered in the hold.
    pub cpu_us_per_message: f64,
    /// Server CPU in the hold per second, per connection (µs of CPU per second).
    pub cpu_us_per_connection_second: f64,
}

impl Cost {
    /// `None` without the server's figures (no `--server-pid`).
    fn of(report: &Report, clients: usize) -> Option<Self> {
        let server = report.server.as_ref()?;
        let connections = report.connect.open_at_end;
        let above_idle = server.steady_rss_kb.saturating_sub(server.idle_rss_kb) as f64;
        let hold_secs = report.delivery.hold_secs.max(f64::EPSILON);
        Some(Self {
            connections,
            kb_per_connection: server.kb_per_connection,
            kb_per_client: above_idle / clients.max(1) as f64,
            cpu_us_per_message: server.cpu_us_per_message,
            cpu_us_per_connection_second: 1e6 * server.hold_cpu_secs
                / hold_secs
                / connections.max(1) as f64,
        })
    }
}

/// One criterion of the target, judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judged {
    /// A's cost per client over B's.
    pub per_client_ratio: f64,
    /// A's cost per connection over B's (the "two single-asset ones": < 2).
    pub per_connection_ratio: f64,
    pub met: bool,
}

impl MultiReport {
    /// The most A may cost per client, as a fraction of B's: one connection of
    /// A (all assets) against two of B, and a client of B holds `assets`.
    pub fn target(&self) -> f64 {
        2.0 / self.assets.max(1) as f64
    }

    pub fn multi_cost(&self) -> Option<Cost> {
        Cost::of(&self.multi, self.clients)
    }

    pub fn single_cost(&self) -> Option<Cost> {
        Cost::of(&self.single, self.clients)
    }

    /// Memory: RSS above idle per client, A over B.
    pub fn memory(&self) -> Option<Judged> {
        let (a, b) = (self.multi_cost()?, self.single_cost()?);
        let per_client_ratio = ratio(a.kb_per_client, b.kb_per_client);
        Some(Judged {
            per_client_ratio,
            per_connection_ratio: ratio(a.kb_per_connection, b.kb_per_connection),
            met: per_client_ratio < self.target(),
        })
    }

    /// CPU: server CPU per delivered message, A over B (per client, at equal
    /// deliveries); per connection, CPU per second of hold.
    pub fn cpu(&self) -> Option<Judged> {
        let (a, b) = (self.multi_cost()?, self.single_cost()?);
        let per_client_ratio = ratio(a.cpu_us_per_message, b.cpu_us_per_message);
        Some(Judged {
            per_client_ratio,
            per_connection_ratio: ratio(
                a.cpu_us_per_connection_second,
                b.cpu_us_per_connection_second,
            ),
            met: per_client_ratio < self.target(),
        })
    }

    /// The comparison as a markdown table: both phases' figures and A / B.
    pub fn table(&self) -> String {
        let (a, b) = (&self.multi, &self.single);
        let mut rows = vec![
            format!(
                "| {} clients, {} assets each | A: one connection per client | B: {} connections per client | A / B |",
                self.clients, self.assets, self.assets
            ),
            "|---|---:|---:|---:|".to_owned(),
        ];
        let mut row = |name: &str, x: String, y: String, r: String| {
            rows.push(format!("| {name} | {x} | {y} | {r} |"));
        };
        row(
            "connections open at the end of the hold",
            a.connect.open_at_end.to_string(),
            b.connect.open_at_end.to_string(),
            format!(
                "{:.2}",
                ratio(a.connect.open_at_end as f64, b.connect.open_at_end as f64)
            ),
        );
        row(
            "full histories / errors / dropped",
            outcome(a),
            outcome(b),
            String::new(),
        );
        row(
            "delivered `point` messages/s (hold)",
            format!("{:.0}", a.delivery.messages_per_sec),
            format!("{:.0}", b.delivery.messages_per_sec),
            format!(
                "{:.2}",
                ratio(a.delivery.messages_per_sec, b.delivery.messages_per_sec)
            ),
        );
        row(
            "missed / duplicate / seam errors",
            errors(a),
            errors(b),
            String::new(),
        );
        if let (Some(ca), Some(cb), Some(sa), Some(sb)) =
            (self.multi_cost(), self.single_cost(), &a.server, &b.server)
        {
            let target = self.target();
            row(
                "server RSS idle → steady (MB)",
                format!("{:.0} → {:.0}", mb(sa.idle_rss_kb), mb(sa.steady_rss_kb)),
                format!("{:.0} → {:.0}", mb(sb.idle_rss_kb), mb(sb.steady_rss_kb)),
                String::new(),
            );
            row(
                "server RSS above idle per connection (KB)",
                format!("{:.1}", ca.kb_per_connection),
                format!("{:.1}", cb.kb_per_connection),
                format!(
                    "{:.2} (target < 2)",
                    ratio(ca.kb_per_connection, cb.kb_per_connection)
                ),
            );
            row(
                "server RSS above idle per client (KB)",
                format!("{:.1}", ca.kb_per_client),
                format!("{:.1}", cb.kb_per_client),
                format!(
                    "**{:.2}** (target < {target:.2})",
                    ratio(ca.kb_per_client, cb.kb_per_client)
                ),
            );
            row(
                "server CPU per delivered message, hold (µs)",
                format!("{:.2}", ca.cpu_us_per_message),
                format!("{:.2}", cb.cpu_us_per_message),
                format!(
                    "**{:.2}** (target < {target:.2})",
                    ratio(ca.cpu_us_per_message, cb.cpu_us_per_message)
                ),
            );
            row(
                "server CPU per connection, hold (µs per second)",
                format!("{:.0}", ca.cpu_us_per_connection_second),
                format!("{:.0}", cb.cpu_us_per_connection_second),
                format!(
                    "{:.2} (target < 2)",
                    ratio(
                        ca.cpu_us_per_connection_second,
                        cb.cpu_us_per_connection_second
                    )
                ),
            );
            row(
                "server CPU, hold: % of a core (kernel part, s)",
                format!(
                    "{:.0} ({:.1} of {:.1} s)",
                    sa.hold_cpu_percent, sa.hold_system_cpu_secs, sa.hold_cpu_secs
                ),
                format!(
                    "{:.0} ({:.1} of {:.1} s)",
                    sb.hold_cpu_percent, sb.hold_system_cpu_secs, sb.hold_cpu_secs
                ),
                format!("{:.2}", ratio(sa.hold_cpu_secs, sb.hold_cpu_secs)),
            );
        }
        row(
            "fan-out delay p50 / p99, hold (ms)",
            p50_p99(&a.fanout_delay),
            p50_p99(&b.fanout_delay),
            format!(
                "{:.2} (p99)",
                ratio(a.fanout_delay.p99_ms, b.fanout_delay.p99_ms)
            ),
        );
        row(
            "time to history p50 / p99, storm (ms; A: to the last of its histories)",
            p50_p99(&a.time_to_history),
            p50_p99(&b.time_to_history),
            format!(
                "{:.2} (p99)",
                ratio(a.time_to_history.p99_ms, b.time_to_history.p99_ms)
            ),
        );
        row(
            "other load in the hold (% of a core)",
            format!("{:.0}", a.machine.hold_other_percent),
            format!("{:.0}", b.machine.hold_other_percent),
            String::new(),
        );
        rows.join("\n") + "\n"
    }
}

impl fmt::Display for MultiReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ratecast-bench multi: {}  {} clients following {} assets each, {}",
            self.label, self.clients, self.assets, self.url
        )?;
        writeln!(
            f,
            "== phase A: {} connections, each following every asset (`assetIds`)",
            self.clients
        )?;
        write!(f, "{}", self.multi)?;
        writeln!(
            f,
            "== phase B: {} connections, each following one asset (`assetId`)",
            self.clients * self.assets
        )?;
        write!(f, "{}", self.single)?;
        writeln!(f, "== A against B")?;
        write!(f, "{}", self.table())?;
        let target = self.target();
        let verdict = |met: bool| if met { "PASS" } else { "FAIL" };
        match (self.memory(), self.cpu()) {
            (Some(memory), Some(cpu)) => {
                writeln!(
                    f,
                    "  {}  memory: one connection of A costs {:.2} × one of B (a client {:.2} × B's; target < {target:.2} × per client, i.e. less than two connections of B)",
                    verdict(memory.met),
                    memory.per_connection_ratio,
                    memory.per_client_ratio
                )?;
                writeln!(
                    f,
                    "  {}  CPU: {:.2} × B's per delivered message (one connection of A per second: {:.2} × one of B; target < {target:.2} × per message, i.e. less than two connections of B)",
                    verdict(cpu.met),
                    cpu.per_client_ratio,
                    cpu.per_connection_ratio
                )
            }
            _ => writeln!(
                f,
                "  no verdict: the server was not sampled (give --server-pid)"
            ),
        }
    }
}

/// Runs phase A, then phase B, against the server of `config.load.url`;
/// `shutdown` (Ctrl-C) cuts the run short.
pub async fn run_multi(
    config: MultiConfig,
    shutdown: CancellationToken,
) -> Result<MultiReport, BenchError> {
    config.validate().map_err(BenchError::Config)?;
    let load = &config.load;
    let server = load::resolve(load).await?;
    let assets = load::probe(load, server, &shutdown).await?.len();
    let clients = load.clients;
    warn_below_fd_limit(clients.saturating_mul(assets));
    let started_unix = unix_now_secs();

    info!(
        clients,
        assets, "phase A: one connection per client, following every asset"
    );
    let multi = run_load(
        phase(load, Follow::EveryAsset, clients, "multi"),
        shutdown.clone(),
    )
    .await?;
    if shutdown.is_cancelled() {
        return Err(BenchError::Config("interrupted after phase A".into()));
    }
    info!(
        connections = clients * assets,
        "phase B: one connection per asset per client"
    );
    let single = run_load(
        phase(load, Follow::OneAsset, clients * assets, "single"),
        shutdown,
    )
    .await?;
    Ok(MultiReport {
        label: load.label.clone(),
        url: load.url.to_string(),
        started_unix,
        clients,
        assets,
        multi,
        single,
    })
}

/// One phase's `run`: `connections` clients following `follow`.
fn phase(load: &LoadConfig, follow: Follow, connections: usize, name: &str) -> LoadConfig {
    let mut phase = load.clone();
    phase.follow = follow;
    phase.clients = connections;
    phase.label = format!("{}-{name}-{connections}", load.label);
    phase.json = None;
    phase
}

/// Phase B holds `connections` sockets here and in the server.
fn warn_below_fd_limit(connections: usize) {
    if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE)
        && soft < connections as u64 + 64
    {
        warn!(
            limit = soft,
            connections, "open-file limit below phase B's connections"
        );
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn outcome(report: &Report) -> String {
    let c = &report.connect;
    format!(
        "{} / {} / {}",
        report.verdict.full_histories,
        c.connect_errors + c.history_failures,
        c.dropped
    )
}

fn errors(report: &Report) -> String {
    let v = &report.verdict;
    format!(
        "{} / {} / {}",
        v.missed + v.missed_at_end,
        v.duplicates,
        v.seam_errors
    )
}

fn p50_p99(summary: &super::latency::LatencySummary) -> String {
    format!("{:.1} / {:.1}", summary.p50_ms, summary.p99_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{DeliveryReport, ServerReport};

    #[test]
    fn n_defaults_to_3600_and_the_run_flags_apply_to_both_phases() {
        let config =
            ratecast_process::parse_ignoring_env::<MultiConfig, _, _>(["multi", "--hold", "10s"])
                .expect("defaults parse");
        assert_eq!(config.load.clients, 3600);
        assert_eq!(config.load.label, "ratecast");
        assert_eq!(config.load.hold, std::time::Duration::from_secs(10));
        assert!(config.validate().is_ok());
        let a = phase(&config.load, Follow::EveryAsset, 3600, "multi");
        let b = phase(&config.load, Follow::OneAsset, 18_000, "single");
        assert_eq!((a.clients, a.follow), (3600, Follow::EveryAsset));
        assert_eq!((b.clients, b.follow), (18_000, Follow::OneAsset));
        assert_eq!(b.label, "ratecast-single-18000");
        assert_eq!(b.hold, a.hold);
    }

    #[test]
    fn idle_backlog_and_zero_clients_are_refused() {
        for args in [
            &["multi", "--idle"][..],
            &["multi", "--expect-backlog", "60s"],
            &["multi", "--clients", "0"],
        ] {
            let config =
                ratecast_process::parse_ignoring_env::<MultiConfig, _, _>(args).expect("parses");
            assert!(config.validate().is_err(), "{args:?}");
        }
    }

    fn phase_report(connections: u64, rss_above_idle_kb: u64, cpu_secs: f64) -> Report {
        Report {
            connect: crate::report::ConnectReport {
                open_at_end: connections,
                ..Default::default()
            },
            delivery: DeliveryReport {
                hold_secs: 10.0,
                hold_messages: 10 * 5 * 100,
                messages_per_sec: 500.0,
                total_messages: 5000,
            },
            server: Some(ServerReport {
                idle_rss_kb: 1000,
                steady_rss_kb: 1000 + rss_above_idle_kb,
                kb_per_connection: rss_above_idle_kb as f64 / connections as f64,
                hold_cpu_secs: cpu_secs,
                cpu_us_per_message: 1e6 * cpu_secs / 5000.0,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn report(multi: Report, single: Report) -> MultiReport {
        MultiReport {
            label: "t".into(),
            url: "ws://127.0.0.1:1/".into(),
            started_unix: 0,
            clients: 100,
            assets: 5,
            multi,
            single,
        }
    }

    #[test]
    fn one_connection_of_a_must_cost_less_than_two_of_b() {
        // B: 500 connections, 20 KB and 10 ms of CPU per second each.
        let single = phase_report(500, 500 * 20, 50.0);
        // A: 100 connections of 30 KB (1.5 × one of B), CPU 0.3 × B's per message.
        let cheap = report(phase_report(100, 100 * 30, 15.0), single.clone());
        let memory = cheap.memory().expect("sampled");
        assert!((memory.per_connection_ratio - 1.5).abs() < 1e-9);
        assert!((memory.per_client_ratio - 0.3).abs() < 1e-9);
        assert!(memory.met);
        let cpu = cheap.cpu().expect("sampled");
        assert!((cpu.per_client_ratio - 0.3).abs() < 1e-9);
        assert!((cpu.per_connection_ratio - 1.5).abs() < 1e-9);
        assert!(cpu.met);
        // A at 2.5 connections' worth of B, in both: missed.
        let dear = report(phase_report(100, 100 * 50, 25.0), single);
        assert!(!dear.memory().expect("sampled").met);
        assert!(!dear.cpu().expect("sampled").met);
        let text = dear.to_string();
        assert!(text.contains("FAIL  memory"), "{text}");
        assert!(text.contains("FAIL  CPU"), "{text}");
        assert!(cheap.to_string().contains("PASS  CPU"));
    }

    #[test]
    fn without_the_server_there_is_no_verdict() {
        let mut multi = phase_report(100, 100, 1.0);
        multi.server = None;
        let unsampled = report(multi, phase_report(500, 500, 1.0));
        assert_eq!(unsampled.memory(), None);
        assert!(unsampled.to_string().contains("no verdict"));
    }
}
