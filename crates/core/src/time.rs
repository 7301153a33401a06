//! Wall-clock time in Unix seconds, the unit of every point's `time`.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
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

/// The clock the services of one deployment share: a reference clock that every
/// service reads (the database's on MongoDB, read by the store with `hello`),
/// carried forward between readings by this host's monotonic clock. Before any
/// reading, and where this host is the reference (the embedded store, one
/// process), it is the local wall clock.
///
/// Whether a point is "in the future" is judged against this clock, never the
/// local one alone: a fetcher whose clock runs ahead would otherwise store points
/// that hide the real ones later, and an API whose clock lags would refuse every
/// point. Carried by the monotonic clock, a reading stays right when this host's
/// wall clock is stepped (NTP, an operator) until the next one. Clones share one
/// reading.
#[derive(Debug, Clone, Default)]
pub struct SharedClock {
    reading: Arc<Mutex<Option<Reading>>>,
}

/// The reference clock read `reference` (Unix time) when this host's monotonic
/// clock read `at`.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    reference: Duration,
}

impl SharedClock {
    /// A clock that is its own reference until a reading says otherwise.
    pub fn local() -> Self {
        Self::default()
    }

    /// Records a reading: the reference clock read `reference` (Unix time) when
    /// this host's monotonic clock read `at` (e.g. halfway through the round
    /// trip that fetched it).
    pub fn record(&self, at: Instant, reference: Duration) {
        *crate::sync::lock(&self.reading) = Some(Reading { at, reference });
    }

    /// Records a reference clock `offset_ms` ahead of this host's wall clock now
    /// (negative: behind).
    pub fn set_offset(&self, offset_ms: i64) {
        self.record(Instant::now(), shift(unix_now(), offset_ms));
    }

    /// Unix time now by the reference clock.
    pub fn now(&self) -> Duration {
        let reading = *crate::sync::lock(&self.reading);
        match reading {
            Some(Reading { at, reference }) => reference.saturating_add(at.elapsed()),
            None => unix_now(),
        }
    }

    /// The reference clock minus this host's wall clock, in milliseconds:
    /// positive when the local clock is behind.
    pub fn offset_ms(&self) -> i64 {
        as_ms(self.now()).saturating_sub(as_ms(unix_now()))
    }

    /// The current Unix second by the reference clock.
    pub fn now_secs(&self) -> i64 {
        as_secs(self.now())
    }

    /// The Unix second by the reference clock when the local wall clock reads
    /// `local` (a moment close to now).
    pub fn at(&self, local: Duration) -> i64 {
        as_secs(self.reference(local))
    }

    /// Unix time by the reference clock when the local wall clock reads `local`
    /// (a moment close to now; never before the epoch).
    pub fn reference(&self, local: Duration) -> Duration {
        shift(local, self.offset_ms())
    }

    /// The latest `time` a point may carry now ([`MAX_FUTURE_SECS`] ahead).
    pub fn latest_acceptable(&self) -> i64 {
        self.now_secs().saturating_add(MAX_FUTURE_SECS)
    }
}

/// `time` moved by `offset_ms`, never before the epoch.
fn shift(time: Duration, offset_ms: i64) -> Duration {
    let offset = Duration::from_millis(offset_ms.unsigned_abs());
    if offset_ms >= 0 {
        time.saturating_add(offset)
    } else {
        time.saturating_sub(offset)
    }
}

fn as_ms(time: Duration) -> i64 {
    i64::try_from(time.as_millis()).unwrap_or(i64::MAX)
}

fn as_secs(time: Duration) -> i64 {
    i64::try_from(time.as_secs()).unwrap_or(i64::MAX)
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
        shared.set_offset(-60_000);
        assert!(
            (-60_002..=-59_998).contains(&clock.offset_ms()),
            "clones share one reading: {}",
            clock.offset_ms()
        );
    }

    #[test]
    fn a_reading_is_carried_forward_by_the_monotonic_clock() {
        let clock = SharedClock::local();
        let reference = Duration::from_secs(2_000_000_000);
        let two_seconds_ago = Instant::now()
            .checked_sub(Duration::from_secs(2))
            .expect("the monotonic clock has run for 2 s");
        clock.record(two_seconds_ago, reference);
        let now = clock.now();
        assert!(
            now >= reference + Duration::from_secs(2) && now < reference + Duration::from_secs(3),
            "{now:?}"
        );
        assert_eq!(clock.now_secs(), 2_000_000_002);
        assert_eq!(clock.latest_acceptable(), 2_000_000_002 + MAX_FUTURE_SECS);
    }
}
