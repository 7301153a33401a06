//! The catch-up after a backlog flush (`run --expect-backlog`, issue 9): when the
//! flush was first seen, how long until every subscriber had its newest point,
//! and what the server spent meanwhile.
//!
//! The scenario (see `backlog-server`): the server stops writing at second O,
//! every client subscribes and gets a history ending at O, then O+1 … O+B (B =
//! `--expect-backlog`) arrive at once as ordinary `point` messages, then one
//! point a second as usual. A client *waits* for the flush when its history ends
//! at the oldest history end of the run (O: the server wrote nothing since, so
//! every client that subscribed before the flush has exactly that end); a client
//! whose history ends later subscribed after the flush began (a *late
//! subscriber*) and is not measured. A waiting client's flushed points are its
//! live points up to O+B; it is *current* when it receives O+B. The flush is
//! *observed* at the first arrival of a flushed point at any waiting client.
//!
//! While the run goes on, [`CatchUp`] keeps a few shared counters so a watcher
//! can read the server's CPU and memory when the flush is observed and when
//! every waiting client is current; each client keeps its own
//! [`CatchUpOutcome`] (three words), and [`summarize`] judges them at the end.
//! Missed, duplicate and out-of-order flushed points are the verdict's business,
//! as for any live point.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use ratecast_core::sync::lock;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{
    latency::{Latency, LatencySummary},
    procfs::ProcSample,
    verdict::ClientOutcome,
};

/// How often the watcher looks at the counters: the CPU readings are at most
/// this late (and `/proc` counts CPU in 10 ms ticks anyway).
const WATCH_EVERY: Duration = Duration::from_millis(10);

/// What one client saw of the flush.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUpOutcome {
    /// Flushed points received (live points after the history, up to O+B).
    pub received: u64,
    /// When the first of them arrived (µs since the run's epoch).
    pub first_at: Option<u64>,
    /// When the newest flushed point (O+B) or a later one arrived.
    pub current_at: Option<u64>,
}

/// The run-wide counters of the catch-up, shared by every client.
#[derive(Debug)]
pub struct CatchUp {
    /// Seconds per asset the flush holds (B).
    pub backlog_secs: i64,
    /// The oldest history end seen so far (O once every client subscribed).
    outage_end: AtomicI64,
    /// History end → clients holding such a history that did not drop before
    /// being current: the waiting clients are the entry of `outage_end`.
    by_history_end: Mutex<BTreeMap<i64, u64>>,
    /// First arrival (µs) of a flushed point at a waiting client; `u64::MAX` before.
    first_flushed: AtomicU64,
    /// Waiting clients that are current.
    current: AtomicU64,
    /// Set when every client has subscribed: the waiting set is final.
    storm_over: AtomicBool,
    /// The server at the flush and when every waiting client was current.
    samples: Mutex<(Option<ProcSample>, Option<ProcSample>)>,
}

impl CatchUp {
    pub fn new(backlog: Duration) -> Self {
        Self {
            backlog_secs: i64::try_from(backlog.as_secs()).unwrap_or(i64::MAX),
            outage_end: AtomicI64::new(i64::MAX),
            by_history_end: Mutex::default(),
            first_flushed: AtomicU64::new(u64::MAX),
            current: AtomicU64::new(0),
            storm_over: AtomicBool::new(false),
            samples: Mutex::default(),
        }
    }

    /// A client received a history ending at `last`.
    pub fn on_history(&self, last: i64) {
        self.outage_end.fetch_min(last, Ordering::Relaxed);
        *lock(&self.by_history_end).entry(last).or_default() += 1;
    }

    /// A client with a history ending at `history_last` received the live point
    /// `time` at `at` (after [`ClientOutcome::take_live`]).
    pub fn on_live(&self, history_last: i64, outcome: &mut CatchUpOutcome, time: i64, at: u64) {
        let newest = history_last.saturating_add(self.backlog_secs);
        let waiting = history_last <= self.outage_end.load(Ordering::Relaxed);
        if time > history_last && time <= newest {
            outcome.received += 1;
            if outcome.first_at.is_none() {
                outcome.first_at = Some(at);
                if waiting {
                    self.first_flushed.fetch_min(at, Ordering::Relaxed);
                }
            }
        }
        if time >= newest && outcome.current_at.is_none() {
            outcome.current_at = Some(at);
            if waiting {
                self.current.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A client lost its connection: if it was not current yet, nobody waits for it.
    pub fn on_dropped(&self, history_last: i64, outcome: &CatchUpOutcome) {
        if outcome.current_at.is_none()
            && let Some(count) = lock(&self.by_history_end).get_mut(&history_last)
        {
            *count = count.saturating_sub(1);
        }
    }

    /// Every client has subscribed (or failed): the waiting set is final.
    pub fn end_storm(&self) {
        self.storm_over.store(true, Ordering::Relaxed);
    }

    /// The oldest history end seen (O), once any client has a history.
    pub fn outage_end(&self) -> Option<i64> {
        Some(self.outage_end.load(Ordering::Relaxed)).filter(|&end| end != i64::MAX)
    }

    /// A flushed point reached a waiting client.
    pub fn flush_observed(&self) -> bool {
        self.first_flushed.load(Ordering::Relaxed) != u64::MAX
    }

    /// Every waiting client still connected is current (and there is one).
    pub fn all_current(&self) -> bool {
        if !self.storm_over.load(Ordering::Relaxed) {
            return false;
        }
        let Some(end) = self.outage_end() else {
            return false;
        };
        let waiting = lock(&self.by_history_end).get(&end).copied().unwrap_or(0);
        waiting > 0 && self.current.load(Ordering::Relaxed) >= waiting
    }

    /// For the progress line: waiting clients current / waiting clients.
    pub fn progress(&self) -> String {
        let waiting = self
            .outage_end()
            .and_then(|end| lock(&self.by_history_end).get(&end).copied())
            .unwrap_or(0);
        format!(
            " flushed={} current={}/{}",
            self.flush_observed(),
            self.current.load(Ordering::Relaxed),
            waiting
        )
    }

    /// Reads the server (`sample`) when the flush is observed and when every
    /// waiting client is current; runs until then (or until aborted).
    pub async fn watch(&self, sample: impl Fn() -> Option<ProcSample>) {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        while !self.flush_observed() {
            tick.tick().await;
        }
        lock(&self.samples).0 = sample();
        while !self.all_current() {
            tick.tick().await;
        }
        lock(&self.samples).1 = sample();
    }

    /// Waits until every waiting client is current, or `deadline`.
    pub async fn wait_all_current(&self, deadline: Instant) -> bool {
        while !self.all_current() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    /// The server readings at the flush and when every waiting client was current.
    pub fn samples(&self) -> (Option<ProcSample>, Option<ProcSample>) {
        *lock(&self.samples)
    }
}

/// The catch-up figures of a run (`--expect-backlog`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BacklogReport {
    /// Seconds per asset the flush was expected to hold (`--expect-backlog`).
    pub expected_secs: i64,
    /// The newest second of the waiting clients' histories (Unix s): where the
    /// server stopped writing.
    pub outage_end: Option<i64>,
    /// The newest flushed second (`outage_end + expected_secs`).
    pub newest_flushed: Option<i64>,
    /// Clients whose history ended at `outage_end`: they waited for the flush.
    pub waiting_clients: u64,
    /// Clients whose history ended later: they subscribed after the flush began
    /// and are not measured (0 in a sound run).
    pub late_subscribers: u64,
    /// Waiting clients that received the newest flushed point.
    pub current_clients: u64,
    /// Waiting clients that did not receive exactly `expected_secs` flushed points.
    pub incomplete_clients: u64,
    /// Flushed `point` messages delivered to waiting clients.
    pub messages: u64,
    /// First arrival of a flushed point at any client, Unix ms.
    pub flush_observed_unix_ms: Option<f64>,
    /// The flush was observed before every client had subscribed (raise the
    /// server's --flush-after): the figures then mix the storm in.
    pub flush_during_storm: bool,
    /// From the flush observed until the last waiting client was current; none
    /// when some waiting client never was.
    pub all_current_ms: Option<f64>,
    /// Per waiting client: from the flush observed until it was current.
    pub catch_up: LatencySummary,
    /// Fan-out delay of the flushed points (each point's arrivals against its first).
    pub fanout_delay: LatencySummary,
    /// Server CPU from the flush observed until every waiting client was current.
    pub server_cpu_secs: Option<f64>,
    /// The kernel's part of it.
    pub server_system_cpu_secs: Option<f64>,
    /// Server RSS when the flush was observed and when every client was current.
    pub rss_at_flush_kb: Option<u64>,
    pub rss_when_current_kb: Option<u64>,
}

/// What the run needs besides the outcomes to judge the catch-up.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    /// Unix time of the run's epoch (µs 0 of every arrival).
    pub epoch_unix: Duration,
    /// When the storm ended (µs since the epoch).
    pub storm_end_us: u64,
}

/// Judges every client's catch-up at the end of a run.
pub fn summarize(
    outcomes: &[ClientOutcome],
    backlog_secs: i64,
    clock: RunClock,
    samples: (Option<ProcSample>, Option<ProcSample>),
    fanout_delay: LatencySummary,
) -> BacklogReport {
    let history_end = |o: &ClientOutcome| o.history.as_ref().and_then(|h| h.last);
    let outage_end = outcomes.iter().filter_map(history_end).min();
    let mut report = BacklogReport {
        expected_secs: backlog_secs,
        outage_end,
        newest_flushed: outage_end.map(|end| end.saturating_add(backlog_secs)),
        fanout_delay,
        ..BacklogReport::default()
    };
    let Some(outage_end) = outage_end else {
        return report;
    };
    let waiting: Vec<&CatchUpOutcome> = outcomes
        .iter()
        .filter(|o| history_end(o) == Some(outage_end))
        .map(|o| &o.catch_up)
        .collect();
    report.waiting_clients = waiting.len() as u64;
    report.late_subscribers = outcomes
        .iter()
        .filter(|o| history_end(o).is_some_and(|end| end > outage_end))
        .count() as u64;
    report.messages = waiting.iter().map(|c| c.received).sum();
    report.incomplete_clients = waiting
        .iter()
        .filter(|c| c.received != backlog_secs.unsigned_abs())
        .count() as u64;
    report.current_clients = waiting.iter().filter(|c| c.current_at.is_some()).count() as u64;
    let Some(observed) = waiting.iter().filter_map(|c| c.first_at).min() else {
        return report;
    };
    report.flush_observed_unix_ms =
        Some((clock.epoch_unix + Duration::from_micros(observed)).as_secs_f64() * 1e3);
    report.flush_during_storm = observed < clock.storm_end_us;
    let mut catch_up = Latency::new();
    for at in waiting.iter().filter_map(|c| c.current_at) {
        catch_up.record(at.saturating_sub(observed));
    }
    report.catch_up = catch_up.summary();
    let last_current = waiting.iter().filter_map(|c| c.current_at).max();
    if report.current_clients == report.waiting_clients
        && let Some(last) = last_current
    {
        report.all_current_ms = Some(last.saturating_sub(observed) as f64 / 1e3);
    }
    if let (Some(flush), Some(current)) = samples {
        report.server_cpu_secs = Some(current.cpu.saturating_sub(flush.cpu).as_secs_f64());
        report.server_system_cpu_secs = Some(
            current
                .system_cpu
                .saturating_sub(flush.system_cpu)
                .as_secs_f64(),
        );
        report.rss_when_current_kb = Some(current.rss_kb);
    }
    report.rss_at_flush_kb = samples.0.map(|s| s.rss_kb);
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::HistoryScan;

    const BACKLOG: i64 = 3;

    fn history(last: i64) -> HistoryScan {
        HistoryScan {
            count: 10,
            first: Some(last - 9),
            last: Some(last),
            ascending: true,
            consecutive: true,
            asset_id: Some(1),
        }
    }

    /// A client with a history ending at `last` that received `(time, at)`.
    fn client(catch_up: &CatchUp, last: i64, live: &[(i64, u64)]) -> ClientOutcome {
        let mut outcome = ClientOutcome::new(0);
        outcome.history = Some(history(last));
        catch_up.on_history(last);
        for &(time, at) in live {
            outcome.take_live(time);
            catch_up.on_live(last, &mut outcome.catch_up, time, at);
        }
        outcome
    }

    const CLOCK: RunClock = RunClock {
        epoch_unix: Duration::from_secs(1_000),
        storm_end_us: 10,
    };

    #[test]
    fn every_waiting_client_is_timed_from_the_first_flushed_arrival_to_its_newest_point() {
        let catch_up = CatchUp::new(Duration::from_secs(BACKLOG as u64));
        let fast = client(&catch_up, 100, &[(101, 1_000), (102, 1_100), (103, 1_200)]);
        let slow = client(
            &catch_up,
            100,
            &[(101, 1_500), (102, 2_000), (103, 5_000), (104, 6_000)],
        );
        catch_up.end_storm();
        assert!(catch_up.flush_observed() && catch_up.all_current());
        let report = summarize(
            &[fast, slow],
            BACKLOG,
            CLOCK,
            (None, None),
            LatencySummary::default(),
        );
        assert_eq!(report.outage_end, Some(100));
        assert_eq!(report.newest_flushed, Some(103));
        assert_eq!((report.waiting_clients, report.current_clients), (2, 2));
        assert_eq!((report.late_subscribers, report.incomplete_clients), (0, 0));
        assert_eq!(
            report.messages, 6,
            "the point after the flush is not a flushed one"
        );
        assert_eq!(report.flush_observed_unix_ms, Some(1_000_001.0));
        assert!(!report.flush_during_storm);
        assert_eq!(report.all_current_ms, Some(4.0));
        assert_eq!(report.catch_up.count, 2);
        let max = report.catch_up.max_ms;
        assert!((max - 4.0).abs() < 0.01, "max {max} ms (0.1 % resolution)");
    }

    #[test]
    fn a_client_that_subscribed_after_the_flush_is_late_and_not_waited_for() {
        let catch_up = CatchUp::new(Duration::from_secs(BACKLOG as u64));
        let waiting = client(&catch_up, 100, &[(101, 20), (102, 21)]);
        let late = client(&catch_up, 103, &[(104, 30)]);
        catch_up.end_storm();
        assert!(!catch_up.all_current(), "the waiting client lacks 103");
        let report = summarize(
            &[waiting, late],
            BACKLOG,
            CLOCK,
            (None, None),
            LatencySummary::default(),
        );
        assert_eq!((report.waiting_clients, report.late_subscribers), (1, 1));
        assert_eq!((report.current_clients, report.incomplete_clients), (0, 1));
        assert_eq!(report.all_current_ms, None);
        assert_eq!(report.messages, 2);
    }

    #[test]
    fn a_client_that_dropped_before_being_current_is_not_waited_for() {
        let catch_up = CatchUp::new(Duration::from_secs(BACKLOG as u64));
        client(&catch_up, 100, &[(101, 20), (102, 21), (103, 22)]);
        let dropped = client(&catch_up, 100, &[(101, 25)]);
        catch_up.on_dropped(100, &dropped.catch_up);
        catch_up.end_storm();
        assert!(catch_up.all_current());
    }

    #[test]
    fn a_flush_seen_before_the_storm_ended_is_flagged_and_no_flush_is_no_figures() {
        let catch_up = CatchUp::new(Duration::from_secs(BACKLOG as u64));
        let early = client(&catch_up, 100, &[(101, 5), (102, 6), (103, 7)]);
        let report = summarize(
            &[early],
            BACKLOG,
            CLOCK,
            (None, None),
            LatencySummary::default(),
        );
        assert!(report.flush_during_storm);
        let quiet = client(&CatchUp::new(Duration::from_secs(3)), 100, &[]);
        let report = summarize(
            &[quiet],
            BACKLOG,
            CLOCK,
            (None, None),
            LatencySummary::default(),
        );
        assert_eq!(report.flush_observed_unix_ms, None);
        assert_eq!(report.all_current_ms, None);
        assert_eq!(report.incomplete_clients, 1);
    }

    #[test]
    fn server_cpu_and_memory_are_read_between_the_two_samples() {
        let sample = |cpu_ms, system_ms, rss_kb| ProcSample {
            cpu: Duration::from_millis(cpu_ms),
            system_cpu: Duration::from_millis(system_ms),
            rss_kb,
            peak_rss_kb: rss_kb,
        };
        let catch_up = CatchUp::new(Duration::from_secs(BACKLOG as u64));
        let done = client(&catch_up, 100, &[(101, 20), (102, 21), (103, 22)]);
        let samples = (Some(sample(1_000, 400, 10)), Some(sample(3_500, 1_400, 12)));
        let report = summarize(&[done], BACKLOG, CLOCK, samples, LatencySummary::default());
        assert_eq!(report.server_cpu_secs, Some(2.5));
        assert_eq!(report.server_system_cpu_secs, Some(1.0));
        assert_eq!(
            (report.rss_at_flush_kb, report.rss_when_current_kb),
            (Some(10), Some(12))
        );
    }
}
