//! The database's clock, the one the fetchers and API replicas of a deployment
//! share.
//!
//! Every service judges "is this point from the future?" against it instead of its
//! own clock: a fetcher whose clock runs ahead would otherwise store points that
//! later hide the real ones (the real insert of that second is a duplicate, so no
//! change event follows), and an API replica whose clock lags would refuse every
//! point. The store reads the server's `localTime` with `hello` when it prepares
//! the database and again at most every [`CLOCK_REREAD`] (before an insert, or
//! while the feed follows), and keeps the reading in a [`SharedClock`] that the
//! services read without I/O, carried forward by this host's monotonic clock. A
//! reread is best effort: it waits at most [`CLOCK_READ_TIMEOUT`], a failure keeps
//! the last reading (logged, throttled) and never fails the insert or feed step
//! that asked, and a reading whose round trip took longer than
//! [`MAX_ROUND_TRIP`] is too imprecise to replace one. A skew beyond
//! [`MAX_FUTURE_SECS`] is logged at every reread (a line a minute at most) and
//! published by the services as `ratecast_clock_offset_seconds`.
//!
//! [`SharedClock`]: ratecast_core::time::SharedClock

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use ratecast_core::{
    StoreError,
    time::{MAX_FUTURE_SECS, unix_now_secs},
};
use tracing::{debug, warn};

use crate::{
    Connection, MongoStore,
    documents::{self, Hello, MalformedHello},
    errors::store_error,
};

/// How old the last reading of the server's clock may be before the next insert
/// or feed step reads it again.
pub const CLOCK_REREAD: Duration = Duration::from_secs(60);

/// How long a reread may take before it is given up (the last reading stays).
pub const CLOCK_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest round trip whose reading replaces an earlier one: the reading is
/// taken as made halfway, so its error is at most half the round trip.
pub const MAX_ROUND_TRIP: Duration = Duration::from_secs(1);

/// Why the server's clock could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClockError {
    #[error(transparent)]
    Driver(mongodb::error::Error),
    #[error(transparent)]
    Reply(MalformedHello),
}

impl From<ClockError> for StoreError {
    fn from(error: ClockError) -> Self {
        match error {
            ClockError::Driver(error) => store_error(error),
            ClockError::Reply(error) => StoreError::Other(Box::new(error)),
        }
    }
}

/// When the server's clock was last read, or a read was last tried; `None`
/// before the first.
#[derive(Debug, Default)]
pub(crate) struct LastReading(Mutex<Option<Instant>>);

impl LastReading {
    /// Whether a reading taken at `last` is too old at `now`.
    fn is_due(&self, now: Instant) -> bool {
        ratecast_core::sync::lock(&self.0)
            .is_none_or(|last| now.saturating_duration_since(last) >= CLOCK_REREAD)
    }

    fn record(&self, at: Instant) {
        *ratecast_core::sync::lock(&self.0) = Some(at);
    }

    fn is_never(&self) -> bool {
        ratecast_core::sync::lock(&self.0).is_none()
    }
}

/// What a measured offset says about this host's clock, for the log.
fn skew_warning(offset_ms: i64) -> Option<String> {
    if offset_ms.abs() <= MAX_FUTURE_SECS * 1000 {
        return None;
    }
    let direction = if offset_ms < 0 { "ahead of" } else { "behind" };
    Some(format!(
        "this host's clock is {:.1} s {direction} the database's; points are judged by \
         the database's clock (a fetcher ahead has its future points refused)",
        offset_ms.unsigned_abs() as f64 / 1000.0
    ))
}

impl MongoStore {
    /// Reads the server's clock and wire version with `hello` and records the
    /// clock's reading (unless its round trip was too long to be precise and an
    /// earlier reading exists).
    pub(crate) async fn read_server_clock(
        &self,
        connection: &Connection,
    ) -> Result<Hello, ClockError> {
        let sent = Instant::now();
        let reply = connection
            .db
            .run_command(documents::hello_command())
            .await
            .map_err(ClockError::Driver)?;
        let round_trip = sent.elapsed();
        let hello = documents::parse_hello(&reply).map_err(ClockError::Reply)?;
        let first = self.inner.clock_read.is_never();
        self.inner.clock_read.record(sent);
        if round_trip > MAX_ROUND_TRIP && !first {
            debug!(
                ?round_trip,
                "a slow hello; keeping the last reading of the database's clock"
            );
            return Ok(hello);
        }
        let reference = Duration::from_millis(u64::try_from(hello.local_time_ms).unwrap_or(0));
        self.inner.clock.record(sent + round_trip / 2, reference);
        let offset_ms = self.inner.clock.offset_ms();
        match skew_warning(offset_ms) {
            Some(warning) => warn!(offset_ms, "{warning}"),
            None => debug!(offset_ms, "read the database's clock"),
        }
        Ok(hello)
    }

    /// Reads the server's clock again if the last try is [`CLOCK_REREAD`] old.
    /// Best effort: a failure is logged (throttled) and the last reading kept.
    pub(crate) async fn refresh_clock(&self) {
        if !self.inner.clock_read.is_due(Instant::now()) {
            return;
        }
        self.inner.clock_read.record(Instant::now());
        let read = tokio::time::timeout(CLOCK_READ_TIMEOUT, async {
            let connection = self.connection().await.map_err(store_error)?;
            self.read_server_clock(connection).await?;
            Ok::<_, StoreError>(())
        })
        .await;
        let error = match read {
            Ok(Ok(())) => {
                self.inner.clock_log.success();
                return;
            }
            Ok(Err(error)) => error.to_string(),
            Err(_elapsed) => format!("no answer within {CLOCK_READ_TIMEOUT:?}"),
        };
        if self.inner.clock_log.failure(unix_now_secs()).is_due() {
            warn!(
                %error,
                clock_offset_ms = self.inner.clock.offset_ms(),
                "cannot read the database's clock; keeping the last reading"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_read_again_once_the_last_reading_is_a_minute_old() {
        let last = LastReading::default();
        let now = Instant::now();
        assert!(last.is_due(now), "never read");
        last.record(now);
        assert!(!last.is_due(now + CLOCK_REREAD - Duration::from_millis(1)));
        assert!(last.is_due(now + CLOCK_REREAD));
    }

    #[test]
    fn a_skew_within_the_tolerance_is_not_logged_and_one_beyond_says_which_way() {
        assert_eq!(skew_warning(0), None);
        assert_eq!(skew_warning(MAX_FUTURE_SECS * 1000), None);
        assert_eq!(skew_warning(-MAX_FUTURE_SECS * 1000), None);
        let ahead = skew_warning(-3_600_000).expect("an hour ahead");
        assert!(ahead.contains("3600.0 s ahead of"), "{ahead}");
        let behind = skew_warning(40_000).expect("40 s behind");
        assert!(behind.contains("40.0 s behind"), "{behind}");
    }
}
