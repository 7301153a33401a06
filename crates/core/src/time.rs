//! Wall-clock time in Unix seconds, the unit of every point's `time`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// The length of the history a subscriber receives: the last 30 minutes.
pub const HISTORY_SPAN_SECS: i64 = 1800;

/// How far ahead of the shared clock ([`SharedClock`]) a point may be stamped: a
/// fetcher's clock a little ahead is normal, a point further in the future is
/// refused (it would otherwise make every real point look old, and on MongoDB
/// take the place of the real point of that second).
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

/// The clock the services of one deployment share: the local clock corrected by
/// the offset to a reference clock that every service reads, the database's on
/// MongoDB (measured by the store with `hello`). Where the local clock is the
/// reference (the embedded store, one process) the offset stays 0.
///
/// Whether a point is "in the future" is judged against this clock, never the
/// local one alone: a fetcher whose clock runs ahead would otherwise store points
/// that hide the real ones later, and an API whose clock lags would refuse every
/// point. Clones share one offset.
#[derive(Debug, Clone, Default)]
pub struct SharedClock {
    /// Reference minus local, in milliseconds.
    offset_ms: Arc<AtomicI64>,
}

impl SharedClock {
    /// A clock that is its own reference (offset 0 until [`set_offset`] says
    /// otherwise).
    ///
    /// [`set_offset`]: Self::set_offset
    pub fn local() -> Self {
        Self::default()
    }

    /// Records a measured offset: the reference's reading minus the local one.
    pub fn set_offset(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }

    /// The reference's reading minus the local clock's, in milliseconds: positive
    /// when the local clock is behind.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// The current Unix second by the reference clock.
    pub fn now_secs(&self) -> i64 {
        self.at(unix_now())
    }

    /// The Unix second by the reference clock when the local clock reads `local`.
    pub fn at(&self, local: Duration) -> i64 {
        let local_ms = i64::try_from(local.as_millis()).unwrap_or(i64::MAX);
        local_ms.saturating_add(self.offset_ms()).div_euclid(1000)
    }

    /// Unix time by the reference clock when the local clock reads `local`
    /// (never before the epoch).
    pub fn reference(&self, local: Duration) -> Duration {
        let offset = Duration::from_millis(self.offset_ms().unsigned_abs());
        if self.offset_ms() >= 0 {
            local.saturating_add(offset)
        } else {
            local.saturating_sub(offset)
        }
    }

    /// The latest `time` a point may carry now ([`MAX_FUTURE_SECS`] ahead).
    pub fn latest_acceptable(&self) -> i64 {
        self.now_secs().saturating_add(MAX_FUTURE_SECS)
    }
}

/// The offset of a reference clock that read `reference` while the local clock
/// went from `sent` to `received`: the reading is taken as made halfway through
/// the round trip, so the error is at most half the round trip.
pub fn clock_offset_ms(sent: Duration, received: Duration, reference: Duration) -> i64 {
    let as_ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let midpoint = as_ms(sent).saturating_add(as_ms(received.saturating_sub(sent)) / 2);
    as_ms(reference).saturating_sub(midpoint)
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

    #[test]
    fn the_shared_clock_reads_the_local_clock_plus_the_offset() {
        let clock = SharedClock::local();
        let local = Duration::from_millis(1_000_000_400);
        assert_eq!(clock.at(local), 1_000_000);
        clock.set_offset(3_600_000);
        assert_eq!(clock.at(local), 1_003_600, "a local clock an hour behind");
        clock.set_offset(-700);
        assert_eq!(
            clock.at(local),
            999_999,
            "seconds are floored, never rounded up"
        );
        let shared = clock.clone();
        shared.set_offset(0);
        assert_eq!(clock.offset_ms(), 0, "clones share one offset");
    }

    #[test]
    fn an_offset_is_measured_from_the_middle_of_the_round_trip() {
        let ms = Duration::from_millis;
        // Sent at 1000, answered at 1040: the reference read 4600 at local 1020.
        assert_eq!(clock_offset_ms(ms(1000), ms(1040), ms(4600)), 3580);
        // A reference behind the local clock gives a negative offset.
        assert_eq!(clock_offset_ms(ms(10_000), ms(10_000), ms(9_000)), -1000);
        // A local clock stepped back during the trip does not underflow.
        assert_eq!(clock_offset_ms(ms(500), ms(400), ms(500)), 0);
    }
}
