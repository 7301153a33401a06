//! The poller's clock: wall-clock seconds, and where the next tick falls.
//!
//! Ticks fall on second boundaries of the wall clock, computed afresh each time,
//! so the loop never drifts (an hour is 3600 ticks), and a tick never repeats or
//! goes back before the last one, even if the clock does. The [`Clock`] is
//! injected so tests run an hour in a moment.

use std::time::Duration;

use ratecast_core::time;

/// Wall-clock time since the Unix epoch; injected so tests can run an hour in a moment.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Duration;
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        time::unix_now()
    }
}

/// The next tick after `now`: its Unix second and how long to wait for it.
/// Never repeats or goes back before `last`, even if the clock does.
pub fn next_tick(now: Duration, last: Option<i64>) -> (i64, Duration) {
    let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let boundary = now_secs.saturating_add(1);
    let second = last.map_or(boundary, |last| boundary.max(last + 1));
    let target = Duration::from_secs(u64::try_from(second).unwrap_or(u64::MAX));
    (second, target.saturating_sub(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_tick_lands_on_the_next_second_boundary() {
        assert_eq!(
            next_tick(Duration::from_millis(10_250), None),
            (11, Duration::from_millis(750))
        );
        assert_eq!(
            next_tick(Duration::from_secs(10), None),
            (11, Duration::from_secs(1))
        );
        // A clock that went back must not repeat a stamped second.
        assert_eq!(
            next_tick(Duration::from_millis(9_500), Some(11)),
            (12, Duration::from_millis(2_500))
        );
        // A late loop skips ahead instead of catching up with stale stamps.
        assert_eq!(
            next_tick(Duration::from_millis(15_100), Some(11)),
            (16, Duration::from_millis(900))
        );
    }
}
