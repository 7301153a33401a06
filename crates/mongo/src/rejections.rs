//! Throttled reporting of points MongoDB refused for good (a document validator, a
//! value the server will not store): the first refusal of a quiet period is logged
//! at once, later ones are summed into at most one line per [`INTERVAL`].
//!
//! Refused points are counted by the writer (`InsertReport::rejected`, which the
//! fetcher exports as a metric); this only decides when a log line is due. Time is
//! passed in, so tests drive it without a clock.

use std::time::{Duration, Instant};

/// The shortest time between two lines about refused points.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// When the last line was written and what happened since.
#[derive(Debug, Default)]
pub struct RejectionLog {
    /// When the last line was written; `None` before the first refusal.
    last_line: Option<Instant>,
    /// Refusals since the last line, reported in the next one.
    unreported: u64,
}

impl RejectionLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `count` refused points at `now`. Returns how many points the line
    /// to write now should report, or `None` when no line is due yet.
    pub fn record(&mut self, count: u64, now: Instant) -> Option<u64> {
        self.unreported = self.unreported.saturating_add(count);
        let due = self
            .last_line
            .is_none_or(|last| now.saturating_duration_since(last) >= INTERVAL);
        if !due {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_refusal_is_logged_at_once_and_later_ones_once_a_minute_with_their_sum() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut log = RejectionLog::new();
        assert_eq!(log.record(1, at(0)), Some(1));
        let quiet: Vec<Option<u64>> = (1..60).map(|s| log.record(2, at(s))).collect();
        assert!(quiet.iter().all(Option::is_none), "{quiet:?}");
        assert_eq!(log.record(1, at(60)), Some(119), "59 × 2 + 1");
        assert_eq!(log.record(1, at(61)), None);
    }

    #[test]
    fn a_refusal_after_a_quiet_hour_is_logged_at_once() {
        let start = Instant::now();
        let mut log = RejectionLog::new();
        assert_eq!(log.record(3, start), Some(3));
        assert_eq!(log.record(5, start + Duration::from_secs(3600)), Some(5));
    }
}
