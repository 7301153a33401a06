//! The one rule for logging a failure that repeats: one line when it starts, at
//! most one summary per interval while it lasts (with how many failures it
//! covers), and, for callers that report successes, one line when it ends.
//!
//! An upstream down for a day must not write 86,400 lines, a store outage must
//! not write one per query, and an operator must still see that it is failing,
//! since when, and why. [`LogThrottle`] only decides when a line is due; the
//! caller writes it (and counts every failure in a metric, throttled or not).
//!
//! Time is passed in as a Unix second, so tests drive it without a clock. The
//! methods take `&self`: the state sits behind a lock held for a few
//! instructions, never across an `.await`, so one throttle can be shared by
//! every task of a process (e.g. all sessions' `history` queries).

use std::{sync::Mutex, time::Duration};

/// The throttle of one failure stream (the upstream, one asset's quotes, the
/// store's refusals…).
#[derive(Debug)]
pub struct LogThrottle {
    /// Seconds between two lines about one outage.
    interval: u64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// First failing second of the current outage, `None` while healthy.
    failing_since: Option<i64>,
    /// When the last line about this outage was due.
    last_report: i64,
    /// Failures since `last_report`, for the next summary.
    unreported: u64,
    /// Failures since `failing_since`, for the recovery line.
    total: u64,
}

/// What the caller should log for this event, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Nothing: the outage was reported recently.
    Quiet,
    /// The first failures (`failures` of them) after a healthy period.
    Started { failures: u64 },
    /// A periodic summary: `failures` since the last line (this one included),
    /// in an outage that began at `since`.
    StillFailing { failures: u64, since: i64 },
    /// The first success after an outage of `failures` failures since `since`.
    Recovered { failures: u64, since: i64 },
}

impl Report {
    /// Whether a failure line is due now ([`Started`](Self::Started) or
    /// [`StillFailing`](Self::StillFailing)).
    pub fn is_due(&self) -> bool {
        matches!(self, Self::Started { .. } | Self::StillFailing { .. })
    }

    /// The failures the due line reports (0 when none is due).
    pub fn failures(&self) -> u64 {
        match self {
            Self::Started { failures }
            | Self::StillFailing { failures, .. }
            | Self::Recovered { failures, .. } => *failures,
            Self::Quiet => 0,
        }
    }
}

impl LogThrottle {
    /// A throttle writing at most one line per `interval` (at least a second)
    /// about one outage.
    pub const fn new(interval: Duration) -> Self {
        let secs = interval.as_secs();
        Self {
            interval: if secs == 0 { 1 } else { secs },
            state: Mutex::new(State {
                failing_since: None,
                last_report: i64::MIN,
                unreported: 0,
                total: 0,
            }),
        }
    }

    /// Records one failure at Unix second `now`.
    pub fn failure(&self, now: i64) -> Report {
        self.failures(1, now)
    }

    /// Records `count` failures at Unix second `now` (e.g. the points of one
    /// batch a store refused).
    pub fn failures(&self, count: u64, now: i64) -> Report {
        let mut state = crate::sync::lock(&self.state);
        state.total = state.total.saturating_add(count);
        let Some(since) = state.failing_since else {
            state.failing_since = Some(now);
            state.last_report = now;
            state.unreported = 0;
            return Report::Started { failures: count };
        };
        state.unreported = state.unreported.saturating_add(count);
        let elapsed = now.saturating_sub(state.last_report);
        if elapsed < 0 || elapsed.unsigned_abs() < self.interval {
            return Report::Quiet;
        }
        state.last_report = now;
        let failures = std::mem::take(&mut state.unreported);
        Report::StillFailing { failures, since }
    }

    /// Records a success: reports recovery if an outage was under way, and the
    /// next failure starts a new one.
    pub fn success(&self) -> Report {
        let mut state = crate::sync::lock(&self.state);
        match state.failing_since.take() {
            Some(since) => {
                let failures = std::mem::take(&mut state.total);
                state.unreported = 0;
                Report::Recovered { failures, since }
            }
            None => Report::Quiet,
        }
    }

    /// The first failing second of the current outage, if any.
    pub fn failing_since(&self) -> Option<i64> {
        crate::sync::lock(&self.state).failing_since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn an_hour_of_failures_reports_once_per_interval() {
        let throttle = LogThrottle::new(MINUTE);
        let reports: Vec<Report> = (1000..4600)
            .map(|s| throttle.failure(s))
            .filter(Report::is_due)
            .collect();
        assert_eq!(reports[0], Report::Started { failures: 1 });
        assert_eq!(
            reports[1],
            Report::StillFailing {
                failures: 60,
                since: 1000
            }
        );
        assert_eq!(reports.len(), 60, "one start line and 59 summaries");
        assert_eq!(
            throttle.success(),
            Report::Recovered {
                failures: 3600,
                since: 1000
            }
        );
        assert_eq!(throttle.success(), Report::Quiet);
    }

    #[test]
    fn a_new_outage_starts_fresh() {
        let throttle = LogThrottle::new(MINUTE);
        assert_eq!(throttle.failure(10), Report::Started { failures: 1 });
        assert_eq!(throttle.failure(11), Report::Quiet);
        assert_eq!(
            throttle.success(),
            Report::Recovered {
                failures: 2,
                since: 10
            }
        );
        assert_eq!(throttle.failing_since(), None);
        assert_eq!(throttle.failure(12), Report::Started { failures: 1 });
        assert_eq!(throttle.failing_since(), Some(12));
    }

    #[test]
    fn counted_failures_are_summed_into_the_next_line() {
        let throttle = LogThrottle::new(MINUTE);
        assert_eq!(throttle.failures(3, 0).failures(), 3, "logged at once");
        let quiet: Vec<Report> = (1..60).map(|s| throttle.failures(2, s)).collect();
        assert!(quiet.iter().all(|r| *r == Report::Quiet), "{quiet:?}");
        assert_eq!(
            throttle.failures(1, 60),
            Report::StillFailing {
                failures: 119,
                since: 0
            },
            "59 × 2 + 1"
        );
        assert_eq!(throttle.failures(1, 61), Report::Quiet);
        assert_eq!(
            throttle.failures(5, 3600).failures(),
            6,
            "after a quiet hour: at once, with what was left unreported"
        );
    }

    #[test]
    fn a_clock_that_steps_back_stays_quiet_and_a_zero_interval_is_a_second() {
        let throttle = LogThrottle::new(Duration::ZERO);
        assert!(throttle.failure(100).is_due());
        assert_eq!(throttle.failure(50), Report::Quiet);
        assert_eq!(throttle.failure(100), Report::Quiet);
        assert!(throttle.failure(101).is_due());
    }

    #[test]
    fn one_throttle_shared_by_threads_reports_each_failure_once() {
        let throttle = std::sync::Arc::new(LogThrottle::new(MINUTE));
        let reported: u64 = (0..4)
            .map(|_| {
                let throttle = throttle.clone();
                std::thread::spawn(move || {
                    (0..1000)
                        .map(|s| throttle.failure(s / 10).failures())
                        .sum::<u64>()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().expect("the thread ends"))
            .sum();
        let left = match throttle.success() {
            Report::Recovered { failures, .. } => failures,
            other => panic!("expected a recovery, got {other:?}"),
        };
        assert_eq!(left, 4000, "every failure is in the outage's total");
        assert!(reported <= 4000, "no failure is reported twice");
    }
}
