//! The report of one run: a serde struct written as JSON, rendered as a
//! human-readable block, and as markdown table rows comparing several runs.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use super::{catchup::BacklogReport, latency::LatencySummary, procfs::ThreadCpu, verdict::Verdict};

/// Everything one run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub label: String,
    pub url: String,
    /// Unix seconds at the start of the run.
    pub started_unix: i64,
    pub clients: usize,
    pub ramp_per_sec: f64,
    /// Distinct source addresses the clients were spread over (0: kernel's choice).
    pub source_ips: u8,
    pub connect: ConnectReport,
    /// From `subscribe` sent to the complete `asset_history` received.
    pub time_to_history: LatencySummary,
    /// Fan-out delay of points first delivered during the hold (steady state).
    pub fanout_delay: LatencySummary,
    /// Fan-out delay of points first delivered during the subscribe storm.
    pub fanout_delay_ramp: LatencySummary,
    /// Receive time minus the point's second (`time`), for points received
    /// during the hold: it includes where in its second the point was made,
    /// so it compares runs on one server rather than measuring a latency.
    #[serde(default)]
    pub point_age: LatencySummary,
    pub delivery: DeliveryReport,
    pub verdict: Verdict,
    pub server: Option<ServerReport>,
    pub generator: GeneratorReport,
    /// How busy the machine was during the hold, and with what.
    #[serde(default)]
    pub machine: MachineReport,
    /// Error messages seen (connect, history, dropped, error frames) and counts.
    pub errors: BTreeMap<String, u64>,
    /// The clients never subscribed (`--idle`): no history or point was
    /// expected, and the server's memory is that of idle connections.
    #[serde(default)]
    pub idle: bool,
    /// The catch-up after a backlog flush (`--expect-backlog`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<BacklogReport>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectReport {
    pub attempted: u64,
    pub connected: u64,
    pub connect_errors: u64,
    /// Clients that received their `asset_history`.
    pub histories: u64,
    /// Connected clients that got no history (refused, closed, timed out).
    pub history_failures: u64,
    /// Clients that lost their connection after their history, before the stop.
    pub dropped: u64,
    /// Connections open at the end of the hold.
    pub open_at_end: u64,
    /// From the first connect to every client having its history (or failed).
    pub ramp_secs: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// Measured length of the hold.
    pub hold_secs: f64,
    /// Live point messages received during the hold.
    pub hold_messages: u64,
    /// `hold_messages / hold_secs`.
    pub messages_per_sec: f64,
    /// Live point messages received in the whole run.
    pub total_messages: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerReport {
    pub pid: u32,
    /// RSS before the first client connected.
    pub idle_rss_kb: u64,
    /// RSS when every client had its history (end of the storm).
    pub rss_after_ramp_kb: u64,
    /// RSS at the end of the hold.
    pub steady_rss_kb: u64,
    /// Peak RSS of the process (VmHWM).
    pub peak_rss_kb: u64,
    /// RSS after every client closed and `--settle` passed.
    pub rss_after_close_kb: u64,
    /// `(steady - idle) / open connections`.
    pub kb_per_connection: f64,
    /// CPU time during the storm and during the hold.
    pub ramp_cpu_secs: f64,
    pub hold_cpu_secs: f64,
    /// The kernel's part of `hold_cpu_secs` (socket writes and loopback TCP).
    #[serde(default)]
    pub hold_system_cpu_secs: f64,
    /// Hold CPU as a percentage of one core (200 % is both cores of this machine).
    pub hold_cpu_percent: f64,
    /// Hold CPU divided by the point messages delivered during the hold.
    pub cpu_us_per_message: f64,
    /// Hold CPU per thread name, busiest first.
    pub hold_threads: Vec<ThreadCpu>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GeneratorReport {
    pub rss_kb: u64,
    pub peak_rss_kb: u64,
    pub hold_cpu_secs: f64,
}

/// The machine during the hold: server and generator share it with whatever
/// else runs, and the other load is measured so a disturbed run can be told.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MachineReport {
    pub cores: usize,
    /// Busy CPU of the whole machine, in % of one core.
    pub hold_busy_percent: f64,
    /// The part of it taken by processes other than the server and the generator.
    pub hold_other_percent: f64,
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn lat(summary: &LatencySummary) -> String {
    format!(
        "p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  (n={})",
        summary.p50_ms, summary.p99_ms, summary.max_ms, summary.count
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.connect;
        let v = &self.verdict;
        let d = &self.delivery;
        writeln!(
            f,
            "ratecast-bench: {}  {} clients{}, ramp {}/s, hold {:.0} s, {}",
            self.label,
            self.clients,
            if self.idle {
                " (idle: connected, never subscribed)"
            } else {
                ""
            },
            self.ramp_per_sec,
            d.hold_secs,
            self.url
        )?;
        writeln!(
            f,
            "  connect      attempted {}  connected {}  errors {}  history {}  no history {}  dropped {}  open at end {}  (storm took {:.1} s)",
            c.attempted,
            c.connected,
            c.connect_errors,
            c.histories,
            c.history_failures,
            c.dropped,
            c.open_at_end,
            c.ramp_secs
        )?;
        writeln!(
            f,
            "  history      full {}  short {} (shortest {})  time to history {}",
            v.full_histories,
            v.short_histories,
            v.shortest_history.map_or("-".to_owned(), |s| s.to_string()),
            lat(&self.time_to_history)
        )?;
        writeln!(f, "  fan-out      hold {}", lat(&self.fanout_delay))?;
        writeln!(f, "               storm {}", lat(&self.fanout_delay_ramp))?;
        writeln!(
            f,
            "  point age    hold {}  (receive time minus the point's second)",
            lat(&self.point_age)
        )?;
        writeln!(
            f,
            "  delivery     {:.0} msg/s in the hold ({} messages), {} in the whole run",
            d.messages_per_sec, d.hold_messages, d.total_messages
        )?;
        writeln!(
            f,
            "  correctness  missed {} (+{} at the end)  duplicates {}  seam errors {}  foreign {}  source gaps {}",
            v.missed, v.missed_at_end, v.duplicates, v.seam_errors, v.foreign_points, v.source_gaps
        )?;
        if let Some(s) = &self.server {
            writeln!(
                f,
                "  server       pid {}  RSS idle {:.1} MB, after storm {:.1} MB, steady {:.1} MB ({:.1} KB/connection), peak {:.1} MB, after close {:.1} MB",
                s.pid,
                mb(s.idle_rss_kb),
                mb(s.rss_after_ramp_kb),
                mb(s.steady_rss_kb),
                s.kb_per_connection,
                mb(s.peak_rss_kb),
                mb(s.rss_after_close_kb)
            )?;
            writeln!(
                f,
                "               CPU storm {:.1} s, hold {:.1} s ({:.1} s in the kernel; {:.0} % of a core), {:.2} µs per delivered message",
                s.ramp_cpu_secs,
                s.hold_cpu_secs,
                s.hold_system_cpu_secs,
                s.hold_cpu_percent,
                s.cpu_us_per_message
            )?;
            let threads: Vec<String> = s
                .hold_threads
                .iter()
                .take(6)
                .map(|t| format!("{} {:.1} s", t.name, t.cpu_secs))
                .collect();
            writeln!(
                f,
                "               hold CPU by thread: {}",
                threads.join(", ")
            )?;
        }
        writeln!(
            f,
            "  generator    RSS {:.1} MB (peak {:.1} MB), CPU in the hold {:.1} s",
            mb(self.generator.rss_kb),
            mb(self.generator.peak_rss_kb),
            self.generator.hold_cpu_secs
        )?;
        writeln!(
            f,
            "  machine      {} cores, {:.0} % of a core busy in the hold, {:.0} % of it other processes",
            self.machine.cores, self.machine.hold_busy_percent, self.machine.hold_other_percent
        )?;
        if let Some(backlog) = &self.backlog {
            write_backlog(f, backlog)?;
        }
        for (error, count) in &self.errors {
            writeln!(f, "  error        {count} × {error}")?;
        }
        Ok(())
    }
}

fn or_dash<T: fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn write_backlog(f: &mut fmt::Formatter<'_>, b: &BacklogReport) -> fmt::Result {
    writeln!(
        f,
        "  backlog      {} s per asset after second {} (newest flushed {}); flush observed at {} (Unix ms){}",
        b.expected_secs,
        or_dash(b.outage_end),
        or_dash(b.newest_flushed),
        or_dash(b.flush_observed_unix_ms.map(|ms| format!("{ms:.0}"))),
        if b.flush_during_storm {
            ", DURING THE STORM (raise --flush-after)"
        } else {
            ""
        }
    )?;
    writeln!(
        f,
        "               waiting clients {}, current {}, incomplete {}, late subscribers {}; {} flushed messages delivered",
        b.waiting_clients, b.current_clients, b.incomplete_clients, b.late_subscribers, b.messages
    )?;
    writeln!(
        f,
        "               every client current {} after the flush; per client catch-up {}",
        or_dash(b.all_current_ms.map(|ms| format!("{ms:.1} ms"))),
        lat(&b.catch_up)
    )?;
    writeln!(
        f,
        "               flushed points' fan-out {}",
        lat(&b.fanout_delay)
    )?;
    writeln!(
        f,
        "               server from the flush until every client was current: CPU {} ({} in the kernel), RSS {} → {} MB",
        or_dash(b.server_cpu_secs.map(|s| format!("{s:.2} s"))),
        or_dash(b.server_system_cpu_secs.map(|s| format!("{s:.2} s"))),
        or_dash(b.rss_at_flush_kb.map(|kb| format!("{:.1}", mb(kb)))),
        or_dash(b.rss_when_current_kb.map(|kb| format!("{:.1}", mb(kb)))),
    )
}

/// The header of [`Report::table_row`].
pub const TABLE_HEADER: &str = "| run | clients | connected / errors / dropped | full histories | time to history p50 / p99 / max (ms) | fan-out delay p50 / p99 / max (ms) | msg/s | missed / dup / seam | server RSS idle → steady → after close (MB) | KB / conn | server CPU (% of a core) | µs / msg | other load (% of a core) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|";

impl Report {
    /// One markdown row for the comparison table.
    pub fn table_row(&self) -> String {
        let c = &self.connect;
        let v = &self.verdict;
        let t = &self.time_to_history;
        let d = &self.fanout_delay;
        let (memory, per_conn, cpu, per_msg) = match &self.server {
            Some(s) => (
                format!(
                    "{:.0} → {:.0} → {:.0}",
                    mb(s.idle_rss_kb),
                    mb(s.steady_rss_kb),
                    mb(s.rss_after_close_kb)
                ),
                format!("{:.1}", s.kb_per_connection),
                format!("{:.0}", s.hold_cpu_percent),
                format!("{:.2}", s.cpu_us_per_message),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        format!(
            "| {} | {} | {} / {} / {} | {} | {:.1} / {:.1} / {:.1} | {:.1} / {:.1} / {:.1} | {:.0} | {} / {} / {} | {} | {} | {} | {} | {:.0} |",
            self.label,
            self.clients,
            c.connected,
            c.connect_errors + c.history_failures,
            c.dropped,
            if self.idle {
                "idle".to_owned()
            } else {
                v.full_histories.to_string()
            },
            t.p50_ms,
            t.p99_ms,
            t.max_ms,
            d.p50_ms,
            d.p99_ms,
            d.max_ms,
            self.delivery.messages_per_sec,
            v.missed + v.missed_at_end,
            v.duplicates,
            v.seam_errors,
            memory,
            per_conn,
            cpu,
            per_msg,
            self.machine.hold_other_percent
        )
    }
}
