//! Rate-limited reporting of a recurring failure: one line when it starts, a
//! summary at most once per interval while it lasts, one line when it ends.
//!
//! An upstream that is down for a day must not write 86,400 log lines, and an
//! operator must still see that it is down, since when, and why.

/// The state of one failure stream (the upstream, or one asset's quotes).
/// Time is the tick's Unix second, so tests drive it without a clock.
#[derive(Debug, Clone)]
pub struct FailureThrottle {
    /// Seconds between "still failing" summaries.
    interval: i64,
    /// First failing second of the current outage, `None` while healthy.
    failing_since: Option<i64>,
    /// When the last line about this outage was written.
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
    /// The first failure after a healthy period.
    Started,
    /// A periodic summary: `failures` since the last line, outage began at `since`.
    StillFailing { failures: u64, since: i64 },
    /// The first success after an outage of `failures` failed seconds.
    Recovered { failures: u64, since: i64 },
}

impl FailureThrottle {
    pub fn new(interval_secs: i64) -> Self {
        Self {
            interval: interval_secs.max(1),
            failing_since: None,
            last_report: i64::MIN,
            unreported: 0,
            total: 0,
        }
    }

    /// Records a failure at `second`.
    pub fn failure(&mut self, second: i64) -> Report {
        self.total += 1;
        let Some(since) = self.failing_since else {
            self.failing_since = Some(second);
            self.last_report = second;
            self.unreported = 0;
            return Report::Started;
        };
        self.unreported += 1;
        if second.saturating_sub(self.last_report) < self.interval {
            return Report::Quiet;
        }
        self.last_report = second;
        let failures = std::mem::take(&mut self.unreported);
        Report::StillFailing { failures, since }
    }

    /// Records a success; reports recovery if an outage was under way.
    pub fn success(&mut self) -> Report {
        match self.failing_since.take() {
            Some(since) => {
                let failures = std::mem::take(&mut self.total);
                self.unreported = 0;
                Report::Recovered { failures, since }
            }
            None => Report::Quiet,
        }
    }

    /// The first failing second of the current outage, if any.
    pub fn failing_since(&self) -> Option<i64> {
        self.failing_since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_of_failures_reports_once_per_interval() {
        let mut throttle = FailureThrottle::new(60);
        let reports: Vec<Report> = (1000..4600)
            .map(|s| throttle.failure(s))
            .filter(|r| *r != Report::Quiet)
            .collect();
        assert_eq!(reports[0], Report::Started);
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
        let mut throttle = FailureThrottle::new(60);
        assert_eq!(throttle.failure(10), Report::Started);
        assert_eq!(throttle.failure(11), Report::Quiet);
        assert_eq!(
            throttle.success(),
            Report::Recovered {
                failures: 2,
                since: 10
            }
        );
        assert_eq!(throttle.failing_since(), None);
        assert_eq!(throttle.failure(12), Report::Started);
        assert_eq!(throttle.failing_since(), Some(12));
    }
}
