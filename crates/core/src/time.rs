//! Wall-clock time in Unix seconds, the unit of every point's `time`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The length of the history a subscriber receives: the last 30 minutes.
pub const HISTORY_SPAN_SECS: i64 = 1800;

/// How far ahead of the local clock a point may be stamped: a fetcher's clock a
/// little ahead of the API's is normal, a point further in the future is refused
/// (it would otherwise make every real point look old).
pub const MAX_FUTURE_SECS: i64 = 5;

/// Time since the Unix epoch; a clock before 1970 reads as the epoch.
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// The current Unix second.
pub fn unix_now_secs() -> i64 {
    i64::try_from(unix_now().as_secs()).unwrap_or(i64::MAX)
}

/// The oldest `time` that still belongs to the history window at `now`:
/// the window is `(now - HISTORY_SPAN_SECS, now]`, at most 1800 one-second points.
pub fn history_cutoff(now: i64) -> i64 {
    now - HISTORY_SPAN_SECS + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_window_is_the_last_1800_seconds() {
        assert_eq!(history_cutoff(10_000), 8_201);
    }
}
