//! Live candles: what a subscription with `candles` sends instead of points.
//!
//! It owns the fold of one followed asset's live points into its running
//! candle ([`CandleFold`]: a few numbers per asset, no points kept), when that
//! candle is closed (by the first point of a later interval, or by the clock
//! [`CLOSE_GRACE_SECS`] after its interval ends, whichever comes first, once),
//! which stored candles a subscription starts from ([`plan`]) and the seam
//! between them and the live points ([`seed`]). It does not decide which
//! points reach the fold: those are exactly the points [the sequence
//! invariant](crate::hub#the-sequence-invariant) gives a subscriber whose
//! `since` is the time of the stored candles' newest point ([`super::live`]).
//!
//! A late point (older than the newest live one) is never pushed live, so it
//! is never folded; neither is a point of an interval whose closed candle was
//! already sent. The `candles` request and `GET /v1/candles`, which read the
//! store afterwards, can differ from the pushed candles by such points only.

use ratecast_core::{
    Candle, Interval,
    candle::{MAX_CANDLE_RANGE_SECS, PAGE_CANDLES},
    time::{HISTORY_SPAN_SECS, MAX_FUTURE_SECS},
};

/// Seconds after an interval's last second before its candle is closed by the
/// clock when no point of a later interval came: a point stamped in the
/// interval's last second still reaches the store and the feed within it.
pub const CLOSE_GRACE_SECS: i64 = 2;

/// Whether the candle of the interval starting at `start` is closed by the
/// clock at `now`.
fn due(interval: Interval, start: i64, now: i64) -> bool {
    interval.last_second(start).saturating_add(CLOSE_GRACE_SECS) < now
}

/// One followed asset's candles of one interval: the running candle and how
/// far the client has closed ones.
#[derive(Debug, Clone)]
pub struct CandleFold {
    pub interval: Interval,
    /// The candle whose interval has points and is not closed yet.
    running: Option<Candle>,
    /// The start of the newest interval whose closed candle the client has
    /// (or the client's `since`): no point at or before its interval is folded.
    closed_through: Option<i64>,
}

impl CandleFold {
    pub fn new(interval: Interval, closed_through: Option<i64>) -> Self {
        Self {
            interval,
            running: None,
            closed_through,
        }
    }

    /// Folds in the point `(time, value)`: the candle closed by it (its
    /// interval is later than the running one's) and the running candle after
    /// it. `(None, None)` for a point of an interval already closed.
    pub fn on_point(&mut self, time: i64, value: f64) -> (Option<Candle>, Option<Candle>) {
        let start = self.interval.start_of(time);
        if self.closed_through.is_some_and(|closed| start <= closed) {
            return (None, None);
        }
        let mut closed = None;
        match &mut self.running {
            Some(candle) if candle.time == start => {
                candle.take(time, value);
                return (None, Some(*candle));
            }
            // Live points only move forward: an older one cannot come.
            Some(candle) if candle.time > start => return (None, None),
            Some(_) => closed = self.close(),
            None => {}
        }
        let candle = Candle::opened(start, time, value, false);
        self.running = Some(candle);
        (closed, Some(candle))
    }

    /// The running candle, closed, if the clock at `now` passed its interval's
    /// end by [`CLOSE_GRACE_SECS`].
    pub fn on_clock(&mut self, now: i64) -> Option<Candle> {
        let start = self.running.as_ref()?.time;
        if due(self.interval, start, now) {
            self.close()
        } else {
            None
        }
    }

    /// Whether a running candle waits to be closed (by a point or the clock).
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    fn close(&mut self) -> Option<Candle> {
        let mut candle = self.running.take()?;
        candle.closed = true;
        self.closed_through = Some(candle.time);
        Some(candle)
    }
}

/// The store read a subscription starts from: the candles starting in
/// `[from, to]` (at most [`PLAN_LIMIT`]), of which the closed ones starting
/// at or after `keep_from` go to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub from: i64,
    /// `now` and the few seconds a point may be stamped ahead of it.
    pub to: i64,
    pub keep_from: i64,
}

/// The most candles a subscription's store read returns: [`PAGE_CANDLES`]
/// intervals, the one before (still in its grace) and the one a point stamped
/// ahead of the clock may start.
pub const PLAN_LIMIT: usize = PAGE_CANDLES as usize + 3;

/// What a subscription of `interval` at `now` reads: with `since` (the time of
/// the newest closed candle the client has), the closed candles after it, at
/// most the newest [`PAGE_CANDLES`]; without, those starting in the last
/// [`HISTORY_SPAN_SECS`]; and always the running candle, however long ago its
/// interval started (a `1d` candle).
pub fn plan(interval: Interval, since: Option<i64>, now: i64) -> Plan {
    let secs = interval.secs();
    let current = interval.start_of(now);
    let oldest = current
        .saturating_sub(PAGE_CANDLES.saturating_mul(secs))
        .max(interval.first_start_from(now.saturating_sub(MAX_CANDLE_RANGE_SECS)));
    let wanted = match since {
        Some(since) => since.saturating_add(1),
        None => now.saturating_sub(HISTORY_SPAN_SECS),
    };
    let keep_from = interval.first_start_from(wanted.max(oldest));
    // The newest interval that may still run: its grace has not passed.
    let running_from = interval.start_of(now.saturating_sub(CLOSE_GRACE_SECS));
    Plan {
        from: keep_from.min(running_from),
        to: now.saturating_add(MAX_FUTURE_SECS),
        keep_from,
    }
}

/// The time after which live points fold in: the newest stored point the
/// read found, or (none found) everything from where it started.
pub fn live_after(plan: Plan, stored: &[Candle]) -> i64 {
    stored
        .last()
        .map_or(plan.from.saturating_sub(1), |candle| candle.last_time)
}

/// The `candle_history` of a subscription and its fold: the `stored` candles
/// of [`plan`]'s read, then `window`, the points held after
/// [`live_after`] ([`Hub::seed`](crate::hub::Hub::seed)), judged at `now`.
/// Every candle but the newest is closed; the newest is the running one unless
/// the clock closed it. `since` is the client's.
pub fn seed(
    interval: Interval,
    plan: Plan,
    stored: Vec<Candle>,
    window: impl IntoIterator<Item = (i64, f64)>,
    now: i64,
    since: Option<i64>,
) -> (Vec<Candle>, CandleFold) {
    let mut fold = CandleFold::new(interval, since);
    let mut history: Vec<Candle> = Vec::with_capacity(stored.len().saturating_add(1));
    for mut candle in stored {
        if let Some(closed) = fold.running.take() {
            history.push(Candle {
                closed: true,
                ..closed
            });
        }
        candle.closed = false;
        fold.closed_through = history.last().map(|c| c.time).max(fold.closed_through);
        fold.running = Some(candle);
    }
    for (time, value) in window {
        if let (Some(closed), _) = fold.on_point(time, value) {
            history.push(closed);
        }
    }
    history.extend(fold.on_clock(now));
    history.retain(|candle| candle.time >= plan.keep_from);
    history.extend(fold.running);
    (history, fold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candle(time: i64, ohlc: [f64; 4], count: u64, closed: bool, last_time: i64) -> Candle {
        Candle {
            time,
            open: ohlc[0],
            high: ohlc[1],
            low: ohlc[2],
            close: ohlc[3],
            count,
            closed,
            last_time,
        }
    }

    #[test]
    fn points_fold_into_open_high_low_close_and_count_and_a_later_interval_closes_the_running_one()
    {
        let mut fold = CandleFold::new(Interval::S5, None);
        assert_eq!(
            fold.on_point(10, 1.5),
            (None, Some(candle(10, [1.5, 1.5, 1.5, 1.5], 1, false, 10)))
        );
        fold.on_point(11, 1.75);
        fold.on_point(12, 1.25);
        assert_eq!(
            fold.on_point(14, 1.5),
            (None, Some(candle(10, [1.5, 1.75, 1.25, 1.5], 4, false, 14)))
        );
        // 15..19 holds nothing: the next point is of 20..24.
        assert_eq!(
            fold.on_point(21, 2.0),
            (
                Some(candle(10, [1.5, 1.75, 1.25, 1.5], 4, true, 14)),
                Some(candle(20, [2.0, 2.0, 2.0, 2.0], 1, false, 21))
            )
        );
        assert_eq!(fold.on_point(9, 3.0), (None, None), "a closed interval");
    }

    #[test]
    fn the_clock_closes_the_running_candle_once_after_its_end_and_the_grace() {
        let mut fold = CandleFold::new(Interval::S5, None);
        assert_eq!(fold.on_clock(100), None, "nothing runs");
        fold.on_point(12, 1.0);
        assert_eq!(fold.on_clock(14), None);
        assert_eq!(fold.on_clock(14 + CLOSE_GRACE_SECS), None, "within grace");
        assert_eq!(
            fold.on_clock(15 + CLOSE_GRACE_SECS),
            Some(candle(10, [1.0; 4], 1, true, 12))
        );
        assert_eq!(fold.on_clock(1_000), None, "closed once");
        assert!(!fold.is_running());
        assert_eq!(
            fold.on_point(14, 2.0),
            (None, None),
            "a late point does not reopen it"
        );
        assert_eq!(
            fold.on_point(15, 2.0),
            (None, Some(candle(15, [2.0; 4], 1, false, 15)))
        );
    }

    #[test]
    fn a_subscription_reads_the_window_or_what_follows_since_and_always_the_running_candle() {
        let now = 999_993_600; // a whole day: 00:00:00 UTC
        let minute = plan(Interval::M1, None, now + 30);
        assert_eq!(minute.keep_from, now - 1_800 + 60);
        assert_eq!(minute.from, minute.keep_from);
        let day = plan(Interval::D1, None, now + 7_200);
        assert_eq!(day.from, now, "the running day");
        assert_eq!(
            day.keep_from,
            now + 86_400,
            "none starts in the last 30 minutes"
        );
        let grace = plan(Interval::H1, None, now + 1);
        assert_eq!(grace.from, now - 3_600, "the last hour is in its grace");
        let since = plan(Interval::S5, Some(now - 10), now + 2);
        assert_eq!(
            since,
            Plan {
                from: now - 5,
                to: now + 2 + MAX_FUTURE_SECS,
                keep_from: now - 5
            }
        );
        let old = plan(Interval::S5, Some(0), now);
        assert_eq!(old.keep_from, now - 5_000, "the newest 1,000 at most");
        let week = plan(Interval::D1, Some(0), now);
        assert_eq!(
            week.keep_from,
            now - MAX_CANDLE_RANGE_SECS,
            "at most a week back"
        );
    }

    #[test]
    fn the_seed_joins_stored_candles_and_window_points_at_the_newest_stored_point() {
        let plan = Plan {
            from: 0,
            to: 20,
            keep_from: 5,
        };
        let stored = vec![
            candle(0, [1.0; 4], 5, true, 4),
            candle(5, [2.0; 4], 2, true, 6),
            candle(10, [3.0; 4], 1, true, 10),
        ];
        assert_eq!(live_after(plan, &stored), 10);
        assert_eq!(live_after(plan, &[]), -1);
        // The window holds 11 and 16 after the stored 10; now is 17.
        let (history, mut fold) =
            seed(Interval::S5, plan, stored, [(11, 4.0), (16, 5.0)], 17, None);
        assert_eq!(
            history,
            vec![
                candle(5, [2.0; 4], 2, true, 6),
                candle(10, [3.0, 4.0, 3.0, 4.0], 2, true, 11),
                candle(15, [5.0; 4], 1, false, 16),
            ],
            "before keep_from dropped; the newest runs"
        );
        assert_eq!(fold.on_point(14, 9.0), (None, None), "closed, none twice");
        assert_eq!(fold.on_clock(19 + CLOSE_GRACE_SECS), None);
        assert_eq!(
            fold.on_clock(20 + CLOSE_GRACE_SECS).map(|c| c.time),
            Some(15)
        );
        // The store said closed, but the grace has not passed: still running.
        let (history, _) = seed(
            Interval::S5,
            plan,
            vec![candle(10, [3.0; 4], 1, true, 14)],
            [],
            15,
            Some(5),
        );
        assert_eq!(history, vec![candle(10, [3.0; 4], 1, false, 14)]);
        let (history, _) = seed(Interval::S5, plan, vec![], [], 15, None);
        assert!(history.is_empty(), "no points, no candle");
    }
}
