//! Candles: the stored points of one asset summarised per UTC-aligned interval.
//!
//! It owns the [`Interval`]s a client may ask for, the [`Candle`] a store
//! returns, the paging of a long range ([`page`]) and [`summarise`], the one
//! computation of candles from ascending points that the memory store runs.
//! The MongoDB store computes the same candles in the database (an aggregation
//! in `ratecast-mongo`); the conformance suite holds both to the same answers.
//! It knows nothing of the wire: the `candles` request and its reply live in
//! [`protocol`](crate::protocol).
//!
//! A candle's `time` is the first second of its interval: Unix seconds are UTC,
//! so an interval starts at `time - time.rem_euclid(secs)`. Intervals without a
//! point have no candle (nothing is invented). `closed` is judged by the
//! store's clock ([`PointStore::clock`](crate::PointStore::clock), the
//! deployment's shared clock): an interval is closed once its last second has
//! passed.

use std::{fmt, str::FromStr};

/// The most candles one reply (and one store read) holds.
pub const PAGE_CANDLES: i64 = 1_000;

/// The widest range one `candles` request may cover: the longest retention of
/// any store (MongoDB keeps points 7 days), so a wider range could only add
/// intervals the store no longer holds.
pub const MAX_CANDLE_RANGE_SECS: i64 = 7 * 86_400;

/// A candle length a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interval {
    S5,
    M1,
    M5,
    M15,
    H1,
    H4,
    D1,
}

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 7] = [
        Self::S5,
        Self::M1,
        Self::M5,
        Self::M15,
        Self::H1,
        Self::H4,
        Self::D1,
    ];

    /// The interval's length in seconds.
    pub fn secs(self) -> i64 {
        match self {
            Self::S5 => 5,
            Self::M1 => 60,
            Self::M5 => 300,
            Self::M15 => 900,
            Self::H1 => 3_600,
            Self::H4 => 14_400,
            Self::D1 => 86_400,
        }
    }

    /// The name on the wire: `5s`, `1m`, `5m`, `15m`, `1h`, `4h`, `1d`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S5 => "5s",
            Self::M1 => "1m",
            Self::M5 => "5m",
            Self::M15 => "15m",
            Self::H1 => "1h",
            Self::H4 => "4h",
            Self::D1 => "1d",
        }
    }

    /// The first second of the interval that holds `time` (UTC-aligned).
    pub fn start_of(self, time: i64) -> i64 {
        time - time.rem_euclid(self.secs())
    }

    /// The first interval start at or after `time`.
    pub fn first_start_from(self, time: i64) -> i64 {
        let start = self.start_of(time);
        if start == time {
            start
        } else {
            start.saturating_add(self.secs())
        }
    }

    /// The last second of the interval that starts at `start`.
    pub fn last_second(self, start: i64) -> i64 {
        start.saturating_add(self.secs() - 1)
    }

    /// Whether the interval starting at `start` is over at `now` (Unix seconds).
    pub fn is_closed(self, start: i64, now: i64) -> bool {
        self.last_second(start) < now
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`Interval`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown interval {0:?}; expected one of 5s, 1m, 5m, 15m, 1h, 4h, 1d")]
pub struct UnknownInterval(pub String);

impl FromStr for Interval {
    type Err = UnknownInterval;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|interval| interval.as_str() == text)
            .ok_or_else(|| UnknownInterval(text.to_owned()))
    }
}

/// The points of one interval of one asset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candle {
    /// The first second of the interval (UTC-aligned).
    pub time: i64,
    /// The value of the interval's first point.
    pub open: f64,
    pub high: f64,
    pub low: f64,
    /// The value of the interval's last point.
    pub close: f64,
    /// How many points the interval holds (at least one).
    pub count: u64,
    /// False for the interval still running by the store's clock.
    pub closed: bool,
    /// The time of the interval's last point. Not on the wire: a live candle
    /// subscription folds in exactly the points after it (`ratecast-api`).
    pub last_time: i64,
}

impl Candle {
    /// The candle of the interval starting at `start` whose first point is
    /// `(time, value)`.
    pub fn opened(start: i64, time: i64, value: f64, closed: bool) -> Self {
        Self {
            time: start,
            open: value,
            high: value,
            low: value,
            close: value,
            count: 1,
            closed,
            last_time: time,
        }
    }

    /// Takes the interval's next point `(time, value)`, later than every
    /// point it holds.
    pub fn take(&mut self, time: i64, value: f64) {
        self.high = self.high.max(value);
        self.low = self.low.min(value);
        self.close = value;
        self.count += 1;
        self.last_time = time;
    }
}

/// The stored points a read of the candles starting in `[from, to]` covers:
/// every point of those intervals, so no candle is cut by the range.
pub fn point_range(interval: Interval, from: i64, to: i64) -> (i64, i64) {
    (
        interval.first_start_from(from),
        interval.last_second(interval.start_of(to)),
    )
}

/// The part of `[from, to]` one reply covers (at most [`PAGE_CANDLES`]
/// intervals), and where the next page starts when the range goes further.
pub fn page(interval: Interval, from: i64, to: i64) -> (i64, Option<i64>) {
    page_of(interval, from, to, PAGE_CANDLES)
}

/// As [`page`], for a page of at most `count` intervals (at least one).
pub fn page_of(interval: Interval, from: i64, to: i64, count: i64) -> (i64, Option<i64>) {
    let first = interval.first_start_from(from);
    let reach = (count.max(1) - 1).saturating_mul(interval.secs());
    let page_to = to.min(interval.last_second(first.saturating_add(reach)));
    (page_to, (page_to < to).then(|| page_to.saturating_add(1)))
}

/// The candles of ascending `(time, value)` points, at most `limit`, judged
/// closed at `now`. Points must be ascending by time (as stores hold them).
pub fn summarise(
    interval: Interval,
    points: impl IntoIterator<Item = (i64, f64)>,
    now: i64,
    limit: usize,
) -> Vec<Candle> {
    let mut candles: Vec<Candle> = Vec::new();
    for (time, value) in points {
        let start = interval.start_of(time);
        match candles.last_mut() {
            Some(candle) if candle.time == start => candle.take(time, value),
            _ => {
                if candles.len() == limit {
                    break;
                }
                candles.push(Candle::opened(
                    start,
                    time,
                    value,
                    interval.is_closed(start, now),
                ));
            }
        }
    }
    candles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_from_and_print_to_their_wire_names() {
        let names: Vec<String> = Interval::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["5s", "1m", "5m", "15m", "1h", "4h", "1d"]);
        for interval in Interval::ALL {
            assert_eq!(interval.as_str().parse(), Ok(interval));
        }
        for bad in ["", "1s", "1M", "60s", "1 m", "1D", "1m "] {
            assert!(bad.parse::<Interval>().is_err(), "{bad:?}");
        }
        let secs: Vec<i64> = Interval::ALL.iter().map(|i| i.secs()).collect();
        assert_eq!(secs, [5, 60, 300, 900, 3_600, 14_400, 86_400]);
    }

    #[test]
    fn intervals_are_aligned_to_utc() {
        // 2026-12-04 16:52:50 UTC.
        let t = 1_796_403_170;
        assert_eq!(Interval::S5.start_of(t), 1_796_403_170);
        assert_eq!(Interval::M1.start_of(t), 1_796_403_120);
        assert_eq!(Interval::M15.start_of(t), 1_796_402_700);
        assert_eq!(Interval::H4.start_of(t), 1_796_400_000, "16:00 UTC");
        assert_eq!(Interval::D1.start_of(t), 1_796_342_400, "midnight UTC");
        assert_eq!(Interval::M1.start_of(-1), -60, "before the epoch too");
        assert_eq!(Interval::M1.first_start_from(61), 120);
        assert_eq!(Interval::M1.first_start_from(120), 120);
    }

    #[test]
    fn an_interval_is_closed_once_its_last_second_has_passed() {
        assert!(!Interval::M1.is_closed(120, 120));
        assert!(!Interval::M1.is_closed(120, 179));
        assert!(Interval::M1.is_closed(120, 180));
    }

    #[test]
    fn candles_hold_first_max_min_last_and_count_and_skip_empty_intervals() {
        let points = [
            (60, 1.5),
            (61, 1.7),
            (62, 1.2),
            (119, 1.4),
            (240, 2.0), // 180..239 holds nothing
            (299, 2.5),
            (300, 3.0),
        ];
        let candles = summarise(Interval::M1, points, 300, 10);
        let candle = |time, open, high, low, close, count, closed, last_time| Candle {
            time,
            open,
            high,
            low,
            close,
            count,
            closed,
            last_time,
        };
        assert_eq!(
            candles,
            vec![
                candle(60, 1.5, 1.7, 1.2, 1.4, 4, true, 119),
                candle(240, 2.0, 2.5, 2.0, 2.5, 2, true, 299),
                candle(300, 3.0, 3.0, 3.0, 3.0, 1, false, 300),
            ]
        );
        assert_eq!(summarise(Interval::M1, points, 300, 2), candles[..2]);
        assert!(summarise(Interval::M1, points, 300, 0).is_empty());
    }

    #[test]
    fn a_read_covers_whole_intervals_and_a_long_range_is_paged() {
        assert_eq!(point_range(Interval::M1, 61, 130), (120, 179));
        assert_eq!(point_range(Interval::M1, 60, 60), (60, 119));
        assert_eq!(page(Interval::M1, 0, 59), (59, None));
        assert_eq!(page(Interval::M1, 0, 86_399), (59_999, Some(60_000)));
        assert_eq!(page(Interval::M1, 60_000, 86_399), (86_399, None));
        assert_eq!(page(Interval::M1, 30, 86_399), (60_059, Some(60_060)));
        assert_eq!(
            page(Interval::D1, 0, MAX_CANDLE_RANGE_SECS),
            (MAX_CANDLE_RANGE_SECS, None)
        );
        assert_eq!(page(Interval::D1, i64::MAX - 10, i64::MAX).1, None);
        // A smaller page: three 5-minute candles from 0, then the next from 900.
        assert_eq!(page_of(Interval::M5, 0, 3_600, 3), (899, Some(900)));
        assert_eq!(
            page_of(Interval::M5, 0, 3_600, 0),
            (299, Some(300)),
            "at least one"
        );
    }
}
